"""Tests for dl4keras.training.lr_finder: the range test against hand computations.

Per-batch losses are checked against losses computed in NumPy from the weights
each batch started with, the sweep against the learning rate the optimizer
really had, the smoothing and the stop rule against their formulas, and the
restore against a snapshot of every model and optimizer variable.
"""

import math

import keras
import matplotlib
import numpy as np
import pytest

from dl4keras.training.lr_finder import LRFinder, batch_losses, find_learning_rate
from dl4keras.training.schedules import OneCycle

matplotlib.use("Agg")


def regression(n=256, features=8, noise=0.1, seed=0):
    """Standardized linear regression: x ~ N(0, 1), y = x @ w + noise scaled to unit variance."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = x @ rng.normal(size=(features, 1)) + noise * rng.normal(size=(n, 1))
    return x, ((y - y.mean()) / y.std()).astype("float32")


def linear(features=8, seed=0, optimizer=None):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((features,)), keras.layers.Dense(1)])
    model.compile(optimizer or keras.optimizers.SGD(0.01), "mse")
    return model


class Recorder(keras.callbacks.Callback):
    """Records the weights and learning rate at each batch start, and the batch-end logs."""

    def __init__(self):
        super().__init__()
        self.weights, self.rates, self.means, self.epochs = [], [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(len(self.means))

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append(self.model.get_weights())
        self.rates.append(float(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        self.means.append(float(logs["loss"]))


def hand_losses(x, y, weights, batch_size):
    """MSE of each batch (shuffle=False order, epoch after epoch) at its starting weights."""
    starts = list(range(0, len(x), batch_size))
    losses = []
    for i, (kernel, bias) in enumerate(weights):
        s = starts[i % len(starts)]
        xb, yb = x[s : s + batch_size], y[s : s + batch_size]
        losses.append(float(np.mean((xb @ kernel + bias - yb) ** 2)))
    return np.array(losses)


# ---------------------------------------------------------------- batch_losses


def test_batch_losses_by_hand():
    np.testing.assert_allclose(batch_losses([4.0, 3.0, 2.0]), [4.0, 2.0, 0.0])
    np.testing.assert_allclose(batch_losses([4.0, 3.0, 2.0], [2, 2, 1]), [4.0, 2.0, -2.0])
    assert batch_losses([]).shape == (0,)


def test_batch_losses_recover_the_losses_of_a_real_fit():
    x, y = regression(n=40)
    model = linear()
    recorder = Recorder()
    batch_size = 16  # batches of 16, 16 and 8: the running mean is weighted by batch size
    model.fit(x, y, batch_size=batch_size, epochs=2, shuffle=False, verbose=0, callbacks=[recorder])
    want = hand_losses(x, y, recorder.weights, batch_size)
    assert len(want) == 6
    sizes = [16, 16, 8]
    got = np.concatenate([batch_losses(recorder.means[s : s + 3], sizes) for s in recorder.epochs])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # The running means themselves are not the batch losses ...
    assert not np.allclose(recorder.means, want, rtol=1e-3)
    # ... and equal weights get the short last batch of each epoch wrong.
    unweighted = batch_losses(recorder.means[:3])
    np.testing.assert_allclose(unweighted[:2], want[:2], rtol=1e-5)
    assert not np.isclose(unweighted[2], want[2], rtol=1e-3)


@pytest.mark.parametrize(
    "means, sizes, argument",
    [
        ([[1.0, 2.0]], None, "running_means"),
        ([1.0, 2.0], [1, 2, 3], "batch_sizes"),
        ([1.0, 2.0], [1, 0], "batch_sizes"),
    ],
)
def test_batch_losses_bad_arguments(means, sizes, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        batch_losses(means, sizes)


# ---------------------------------------------------------------- the sweep


def test_sweep_is_exponential_between_the_bounds():
    finder = LRFinder(1e-6, 1.0, num_steps=13)
    rates = finder.sweep()
    assert len(rates) == 13
    assert rates[0] == pytest.approx(1e-6) and rates[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(rates[1:] / rates[:-1], 10**0.5, rtol=1e-9)


def test_fit_records_the_sweep_the_true_losses_and_the_smoothing():
    x, y = regression(n=40)
    model = linear()
    finder = LRFinder(1e-4, 1e-1, num_steps=9, smoothing=0.9, divergence_factor=100.0)
    recorder = Recorder()  # runs after the finder: sees the rate the finder set
    history = model.fit(
        x, y, batch_size=16, epochs=10, shuffle=False, verbose=0, callbacks=[finder, recorder]
    )
    assert len(history.history["loss"]) == 3  # 3 batches per epoch: stopped after 9 batches
    assert not finder.diverged
    np.testing.assert_allclose(finder.learning_rates, finder.sweep())
    np.testing.assert_allclose(recorder.rates, finder.learning_rates, rtol=1e-6)
    np.testing.assert_allclose(finder.losses, hand_losses(x, y, recorder.weights, 16), rtol=1e-5)
    average, smoothed = 0.0, []
    for i, loss in enumerate(finder.losses):
        average = 0.9 * average + 0.1 * loss
        smoothed.append(average / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(finder.smoothed_losses, smoothed, rtol=1e-12)


def test_the_sweep_uses_its_learning_rates_for_the_updates():
    """SGD without momentum: w_after = w_before - lr * gradient, lr recovered per batch."""
    x, y = regression(n=32, features=1)
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.compile(keras.optimizers.SGD(0.5), "mse")
    finder = LRFinder(1e-3, 1e-1, num_steps=5, divergence_factor=100.0)
    recorder = Recorder()
    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0, callbacks=[finder, recorder])
    kernels = [float(w[0][0, 0]) for w in recorder.weights]
    for i in range(3):  # batches 0-3 of the first epoch (the 4th has no recorded end weight)
        xb, yb = x[8 * i : 8 * i + 8, 0], y[8 * i : 8 * i + 8, 0]
        gradient = np.mean(2 * xb * (kernels[i] * xb - yb))
        used = (kernels[i] - kernels[i + 1]) / gradient
        assert used == pytest.approx(finder.learning_rates[i], rel=1e-4)


def test_stops_when_the_loss_diverges():
    x, y = regression()
    model = linear()
    finder = LRFinder(1e-3, 1e3, num_steps=60, smoothing=0.5, divergence_factor=4.0)
    model.fit(x, y, batch_size=16, epochs=10, verbose=0, callbacks=[finder])
    assert finder.diverged
    n = len(finder.smoothed_losses)
    assert 2 < n < 60
    smoothed = np.array(finder.smoothed_losses)
    best_before = np.minimum.accumulate(smoothed)
    # The last point is the first to pass 4 x the best so far (or is not finite).
    assert not np.isfinite(smoothed[-1]) or smoothed[-1] > 4.0 * best_before[-2]
    assert np.all(smoothed[1:-1] <= 4.0 * best_before[:-2])
    assert finder.learning_rates[-1] < 1e3


def test_stops_at_a_non_finite_loss():
    finder = LRFinder(1e-3, 1.0, num_steps=10)
    model = linear(features=1)
    finder.set_model(model)
    finder.on_train_begin()
    finder.on_epoch_begin(0)
    finder.on_train_batch_begin(0)
    finder.on_train_batch_end(0, {"loss": 1.0})
    finder.on_train_batch_begin(1)
    finder.on_train_batch_end(1, {"loss": float("nan")})
    assert finder.diverged and model.stop_training
    finder.on_train_end()


# ---------------------------------------------------------------- leaving no trace


def _snapshot(model):
    return (
        [keras.ops.convert_to_numpy(v) for v in model.variables],
        [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables],
        float(model.optimizer.learning_rate),
    )


def _max_difference(a, b):
    return max(float(np.max(np.abs(u - v))) if u.size else 0.0 for u, v in zip(a, b))


def bn_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "mse")
    return model


def test_restores_weights_optimizer_state_and_learning_rate_exactly():
    x, y = regression()
    model = bn_model()
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # Adam moments and BN statistics set
    before = _snapshot(model)
    assert int(model.optimizer.iterations) == 8
    finder = find_learning_rate(model, x, y, batch_size=16, num_steps=30)
    assert len(finder.losses) >= 3
    after = _snapshot(model)
    assert len(after[0]) == len(before[0]) and len(after[1]) == len(before[1])
    assert _max_difference(before[0], after[0]) == 0.0
    assert _max_difference(before[1], after[1]) == 0.0
    assert after[2] == before[2] == pytest.approx(3e-3)
    assert int(model.optimizer.iterations) == 8


def test_training_after_the_range_test_is_as_without_it():
    x, y = regression()
    tested, untouched = bn_model(), bn_model()
    find_learning_rate(tested, x, y, batch_size=16, num_steps=20)
    for model in (tested, untouched):
        model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    assert _max_difference(
        [np.array(v) for v in tested.variables], [np.array(v) for v in untouched.variables]
    ) == pytest.approx(0.0, abs=1e-6)


def test_restores_an_unbuilt_optimizer_to_its_first_state():
    x, y = regression()
    model = bn_model()
    reference = bn_model()
    reference.optimizer.build(reference.trainable_variables)
    find_learning_rate(model, x, y, batch_size=16, num_steps=10)
    assert (
        _max_difference(
            [np.array(v) for v in model.optimizer.variables],
            [np.array(v) for v in reference.optimizer.variables],
        )
        == 0.0
    )


# ---------------------------------------------------------------- the suggestion


def _curve_finder(rates, smoothed):
    finder = LRFinder(min(rates), max(rates), num_steps=len(rates))
    finder.learning_rates, finder.smoothed_losses = list(rates), list(smoothed)
    finder.losses = list(smoothed)
    return finder


def test_suggestion_rules_by_hand():
    rates = 10.0 ** np.arange(-6, 1)  # one point per decade, 1e-6 ... 1
    finder = _curve_finder(rates, [2.0, 1.99, 1.9, 1.2, 0.9, 0.8, 5.0])
    # steepest decade before the minimum (index 5): 1e-4 -> 1e-3, a fall of 0.7
    assert finder.suggestion() == pytest.approx(math.sqrt(1e-4 * 1e-3))
    assert finder.suggestion("minimum") == pytest.approx(1e-2)
    fine = 10.0 ** np.linspace(-4, 0, 41)  # ten points per decade: windows of ten steps
    smoothed = np.concatenate([np.full(15, 1.0), np.linspace(1.0, 0.2, 11), np.full(15, 0.2)])
    smoothed[-1] = 9.0
    smoothed[25:40] = np.linspace(0.2, 0.1, 15)  # keeps falling slowly up to the minimum
    finder = _curve_finder(fine, smoothed)
    assert finder.suggestion() == pytest.approx(math.sqrt(fine[15] * fine[25]), rel=1e-6)
    assert finder.suggestion("minimum") == pytest.approx(fine[39] / 10)


def test_suggestion_skips_the_first_tenth_of_the_points():
    rates = 10.0 ** np.linspace(-6, 0, 20)
    smoothed = np.concatenate([[0.1, 0.9], np.full(8, 1.0), np.linspace(1.0, 0.4, 9), [9.0]])
    finder = _curve_finder(rates, smoothed)  # the lucky first batch (0.1) is not the minimum
    assert finder.suggestion("minimum") == pytest.approx(rates[18] / 10)
    assert rates[2] < finder.suggestion() < rates[18]


def test_suggestion_ignores_non_finite_points():
    rates = 10.0 ** np.arange(-5, 1)
    finder = _curve_finder(rates, [1.0, 0.9, 0.5, 0.3, 0.2, float("inf")])
    assert finder.suggestion("minimum") == pytest.approx(1e-2)


def test_suggestion_errors():
    with pytest.raises(ValueError, match="at least 3 recorded points"):
        LRFinder().suggestion()
    rates = 10.0 ** np.arange(-3, 1)
    with pytest.raises(ValueError, match="did not fall over any decade"):
        _curve_finder(rates, [1.0, 2.0, 3.0, 9.0]).suggestion()
    with pytest.raises(ValueError, match="argument `method`"):
        _curve_finder(rates, [1.0, 0.5, 0.4, 9.0]).suggestion("valley")


@pytest.mark.parametrize("method", ["steepest", "minimum"])
def test_suggestion_on_standardized_linear_regression_with_sgd(method):
    """For this problem SGD diverges above lr ~ 1 (the Hessian of the MSE is ~ 2 I)."""
    x, y = regression(n=512)
    model = linear()
    finder = find_learning_rate(model, x, y, batch_size=16, num_steps=100)
    assert finder.diverged and finder.learning_rates[-1] < 10.0
    suggested = finder.suggestion(method)
    assert 1e-3 < suggested < 1.0
    # Training with the suggestion learns the problem; with a hundredth of it, much less.
    losses = {}
    for factor in (1.0, 0.01):
        model = linear(optimizer=keras.optimizers.SGD(suggested * factor))
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        losses[factor] = history.history["loss"][-1]
    assert losses[1.0] < 0.05 < losses[0.01]


def test_suggestion_on_a_classification_problem_with_adam():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(512, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(
        keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    finder = find_learning_rate(model, x, y, batch_size=16, min_learning_rate=1e-6, num_steps=80)
    for method in ("steepest", "minimum"):
        assert 1e-4 < finder.suggestion(method) < 1.0


# ---------------------------------------------------------------- refused set-ups


def test_an_optimizer_with_a_schedule_is_refused_with_advice():
    x, y = regression(n=32)
    model = linear(optimizer=keras.optimizers.Adam(OneCycle(1e-2, total_steps=10)))
    with pytest.raises(ValueError, match=r"schedule.*float learning rate.*suggestion"):
        find_learning_rate(model, x, y, batch_size=8, num_steps=5)
    assert int(model.optimizer.iterations) == 0  # refused before any step


def test_gradient_accumulation_and_steps_per_execution_are_refused():
    x, y = regression(n=32)
    model = linear(optimizer=keras.optimizers.SGD(0.01, gradient_accumulation_steps=2))
    with pytest.raises(ValueError, match="gradient_accumulation_steps=2"):
        find_learning_rate(model, x, y, batch_size=8, num_steps=5)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse", steps_per_execution=2)
    with pytest.raises(ValueError, match="steps_per_execution=2"):
        find_learning_rate(model, x, y, batch_size=8, num_steps=5)


def test_find_learning_rate_needs_a_compiled_model_and_no_epochs():
    x, y = regression(n=32)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled model"):
        find_learning_rate(model, x, y)
    finder = LRFinder()
    finder.set_model(model)
    with pytest.raises(ValueError, match="compiled model"):
        finder.on_train_begin()
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="epochs"):
        find_learning_rate(model, x, y, epochs=3)


def test_find_learning_rate_takes_a_dataset_and_more_callbacks():
    import tensorflow as tf  # Keras fits a tf.data.Dataset on every backend

    x, y = regression(n=64)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)  # 4 batches per epoch
    model = linear()
    seen = []
    extra = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))
    finder = find_learning_rate(model, dataset, num_steps=10, callbacks=[extra])
    assert len(finder.losses) == 10 and len(seen) == 10
    np.testing.assert_allclose(finder.learning_rates, finder.sweep())


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(min_learning_rate=0.0), "min_learning_rate"),
        (dict(min_learning_rate=-1e-3), "min_learning_rate"),
        (dict(max_learning_rate=1e-8), "max_learning_rate"),  # below min: min >= max
        (dict(min_learning_rate=0.1, max_learning_rate=0.1), "max_learning_rate"),
        (dict(max_learning_rate=float("inf")), "max_learning_rate"),
        (dict(num_steps=1), "num_steps"),
        (dict(num_steps=10.0), "num_steps"),
        (dict(smoothing=1.0), "smoothing"),
        (dict(smoothing=-0.1), "smoothing"),
        (dict(divergence_factor=1.0), "divergence_factor"),
        (dict(divergence_factor="4"), "divergence_factor"),
    ],
)
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`.*Received: .*{argument}="):
        LRFinder(**kwargs)


# ---------------------------------------------------------------- the plot


def test_plot_draws_the_curve_on_a_log_axis_and_marks_the_suggestion():
    import matplotlib.pyplot as plt

    rates = 10.0 ** np.arange(-6, 1)
    finder = _curve_finder(rates, [2.0, 1.99, 1.9, 1.2, 0.9, 0.8, 5.0])
    ax = finder.plot()
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "learning rate"
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[1].get_xdata(), rates)
    np.testing.assert_allclose(lines[1].get_ydata(), finder.smoothed_losses)
    marker = lines[-1]
    assert marker.get_xdata()[0] == pytest.approx(finder.suggestion())
    assert "suggestion" in marker.get_label()
    assert ax.get_ylim()[1] < 5.0  # the divergence does not flatten the curve
    _, given = plt.subplots()
    assert _curve_finder(rates, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0]).plot(ax=given) is given
    plt.close("all")


def test_works_and_restores_under_mixed_precision_loss_scaling():
    """compile wraps the optimizer in a LossScaleOptimizer under mixed_float16."""
    x, y = regression(n=128)
    policy = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_float16")
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((8,)), keras.layers.Dense(8), keras.layers.Dense(1, dtype="float32")]
        )
        model.compile(keras.optimizers.Adam(1e-3), "mse")
    finally:
        keras.config.set_dtype_policy(policy)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    model.fit(x, y, batch_size=32, verbose=0)
    before = _snapshot(model)
    finder = find_learning_rate(model, x, y, batch_size=16, num_steps=20)
    assert len(finder.losses) >= 3
    after = _snapshot(model)
    assert _max_difference(before[0], after[0]) == 0.0
    assert _max_difference(before[1], after[1]) == 0.0
    assert after[2] == before[2]


def test_find_learning_rate_restores_the_model_when_fit_is_interrupted():
    x, y = regression(n=64)
    model = linear()
    before = _snapshot(model)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        find_learning_rate(model, x, y, batch_size=8, num_steps=20, callbacks=[Interrupt()])
    after = _snapshot(model)
    assert _max_difference(before[0], after[0]) == 0.0
    assert _max_difference(before[1], after[1]) == 0.0
    assert after[2] == before[2]
