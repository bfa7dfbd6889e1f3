"""Tests for dl4keras.training.schedules: values against hand formulas, Keras's own behaviour.

`OneCycle` is checked against PyTorch's `OneCycleLR` formula written out in
NumPy, `warmup_cosine` against the linear-then-cosine formula, and
`PerUpdateSchedule` by training: the learning rate each real update used is
recovered from the weight change of plain SGD under gradient accumulation.
"""

import math

import keras
import numpy as np
import pytest

import dl4keras  # noqa: F401  (registers the serializable classes)
from dl4keras.training.schedules import OneCycle, PerUpdateSchedule, per_update, warmup_cosine


def torch_one_cycle(step, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final=1e4):
    """PyTorch's `OneCycleLR.get_lr` (cos, two phases), steps past the end held at the end."""
    initial = max_lr / div_factor
    minimum = initial / final
    phases = [
        (float(pct_start * total_steps) - 1, initial, max_lr),
        (float(total_steps - 1), max_lr, minimum),
    ]
    step = min(step, total_steps - 1)
    start_step = 0.0
    for i, (end_step, start_lr, end_lr) in enumerate(phases):
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return end_lr + (start_lr - end_lr) / 2.0 * (math.cos(math.pi * pct) + 1)
        start_step = end_step


# ---------------------------------------------------------------- OneCycle


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(max_learning_rate=0.1, total_steps=10),
        dict(max_learning_rate=3e-3, total_steps=1000, pct_start=0.25),
        dict(max_learning_rate=1.0, total_steps=37, pct_start=0.5, div_factor=10.0, final=100.0),
    ],
)
def test_one_cycle_matches_pytorch_formula(kwargs):
    final = kwargs.pop("final", 1e4)
    schedule = OneCycle(**kwargs, final_div_factor=final)
    total = kwargs["total_steps"]
    steps = sorted(set(np.linspace(0, total + 5, 60).astype(int)) | {0, total - 1, total})
    got = [float(schedule(step)) for step in steps]
    want = [
        torch_one_cycle(
            step,
            kwargs["max_learning_rate"],
            total,
            kwargs.get("pct_start", 0.3),
            kwargs.get("div_factor", 25.0),
            final,
        )
        for step in steps
    ]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


def test_one_cycle_endpoints_and_peak():
    schedule = OneCycle(0.2, total_steps=100, pct_start=0.3, div_factor=20.0, final_div_factor=50.0)
    assert float(schedule(0)) == pytest.approx(0.2 / 20)
    assert float(schedule(29)) == pytest.approx(0.2)  # peak at pct_start * total_steps - 1
    assert float(schedule(99)) == pytest.approx(0.2 / 20 / 50)
    assert float(schedule(10_000)) == pytest.approx(0.2 / 20 / 50)  # constant after the end
    values = np.array([float(schedule(s)) for s in range(100)])
    assert np.all(np.diff(values[:30]) > 0) and np.all(np.diff(values[29:]) < 0)
    assert values.max() == pytest.approx(0.2)
    assert schedule.initial_learning_rate == pytest.approx(0.01)
    assert schedule.final_learning_rate == pytest.approx(0.0002)
    assert schedule.peak_step == pytest.approx(29.0)


def test_one_cycle_takes_a_scalar_tensor_step_and_returns_float32():
    schedule = OneCycle(0.1, total_steps=10)
    # The step as an optimizer gives it: a non-trainable integer variable (on PyTorch,
    # Keras 3.15 cannot make a trainable integer one: torch refuses gradients for it).
    counter = keras.Variable(4, dtype="int64", trainable=False)
    for step in (keras.ops.convert_to_tensor(4, "int64"), counter):
        value = schedule(step)
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
        assert float(value) == pytest.approx(torch_one_cycle(4, 0.1, 10), rel=1e-6)


def test_one_cycle_config_round_trip():
    schedule = OneCycle(0.05, 200, pct_start=0.4, div_factor=5.0, final_div_factor=10.0, name="oc")
    config = schedule.get_config()
    assert config == {
        "max_learning_rate": 0.05,
        "total_steps": 200,
        "pct_start": 0.4,
        "div_factor": 5.0,
        "final_div_factor": 10.0,
        "name": "oc",
    }
    clone = OneCycle.from_config(config)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule)
    )
    assert isinstance(restored, OneCycle)
    for copy in (clone, restored):
        assert copy.get_config() == config
        for step in (0, 50, 79, 150, 199):
            assert float(copy(step)) == float(schedule(step))


def _regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], "float32")).astype("float32")


def test_one_cycle_in_compile_fit_and_keras_file(tmp_path):
    x, y = _regression()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    schedule = OneCycle(0.05, total_steps=8)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0)  # 8 steps: the whole cycle
    assert int(model.optimizer.iterations) == 8
    assert float(model.optimizer.learning_rate) == pytest.approx(schedule.final_learning_rate)
    path = tmp_path / "one_cycle.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    saved = loaded.optimizer.get_config()["learning_rate"]
    assert saved["registered_name"] == "dl4keras>OneCycle"
    assert saved["config"] == schedule.get_config()
    assert int(loaded.optimizer.iterations) == 8
    assert float(loaded.optimizer.learning_rate) == pytest.approx(schedule.final_learning_rate)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(max_learning_rate=0.0), "max_learning_rate"),
        (dict(max_learning_rate=-1.0), "max_learning_rate"),
        (dict(max_learning_rate="0.1"), "max_learning_rate"),
        (dict(total_steps=0), "total_steps"),
        (dict(total_steps=10.0), "total_steps"),
        (dict(total_steps=True), "total_steps"),
        (dict(pct_start=0.0), "pct_start"),
        (dict(pct_start=1.0), "pct_start"),
        (dict(pct_start=-0.2), "pct_start"),
        (dict(div_factor=0.0), "div_factor"),
        (dict(final_div_factor=-5.0), "final_div_factor"),
    ],
)
def test_one_cycle_bad_arguments(kwargs, argument):
    arguments = {"max_learning_rate": 0.1, "total_steps": 100, **kwargs}
    value = arguments[argument]
    with pytest.raises(ValueError, match=f"argument `{argument}`.*Received: {argument}={value!r}"):
        OneCycle(**arguments)


@pytest.mark.parametrize(
    "total_steps, pct_start",
    [
        (5, 0.3),  # peak at step 0.5: a warm-up shorter than one step
        (1, 0.5),
        (10, 0.95),  # peak at step 8.5: less than one step of decay before step 9
        (3, 0.9),
    ],
)
def test_one_cycle_warmup_must_fit_in_the_schedule(total_steps, pct_start):
    with pytest.raises(ValueError, match=r"warms up.*at least 1.*total_steps - 2") as info:
        OneCycle(0.1, total_steps=total_steps, pct_start=pct_start)
    assert f"pct_start={pct_start!r}, total_steps={total_steps!r}" in str(info.value)


def test_one_cycle_shortest_valid_schedules():
    OneCycle(0.1, total_steps=3, pct_start=2 / 3)  # peak at step 1, end at step 2
    OneCycle(0.1, total_steps=10, pct_start=0.2)  # peak at step 1


# ---------------------------------------------------------------- warmup_cosine


def test_warmup_cosine_values():
    peak, total, warmup, alpha, start = 2e-3, 50, 10, 0.1, 1e-4
    schedule = warmup_cosine(peak, total, warmup, alpha=alpha, initial_learning_rate=start)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)
    config = schedule.get_config()
    assert config["decay_steps"] == total - warmup
    assert config["warmup_steps"] == warmup and config["warmup_target"] == peak

    def hand(step):
        if step < warmup:
            return start + (peak - start) * step / warmup
        fraction = min(step - warmup, total - warmup) / (total - warmup)
        return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * fraction)) + alpha)

    assert float(schedule(0)) == pytest.approx(start)
    assert float(schedule(warmup)) == pytest.approx(peak)
    assert float(schedule(total)) == pytest.approx(alpha * peak)
    assert float(schedule(10 * total)) == pytest.approx(alpha * peak)
    for step in range(0, total + 3):
        assert float(schedule(step)) == pytest.approx(hand(step), rel=1e-5), step


def test_warmup_cosine_zero_warmup_starts_at_the_peak():
    schedule = warmup_cosine(1e-3, total_steps=20, warmup_steps=0)
    assert float(schedule(0)) == pytest.approx(1e-3)
    assert float(schedule(20)) == pytest.approx(0.0, abs=1e-12)


def test_keras_cosine_decay_ignores_warmup_steps_without_warmup_target():
    """The measured pitfall `warmup_cosine` documents (Keras 3.15)."""
    plain = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100, warmup_steps=10)
    assert float(plain(0)) == pytest.approx(1e-3)  # no warm-up at all: the decay starts at once
    assert float(plain(5)) < 1e-3
    assert float(warmup_cosine(1e-3, 110, 10)(0)) == 0.0


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(peak_learning_rate=0.0), "peak_learning_rate"),
        (dict(total_steps=0), "total_steps"),
        (dict(warmup_steps=-1), "warmup_steps"),
        (dict(warmup_steps=2.0), "warmup_steps"),
        (dict(alpha=1.5), "alpha"),
        (dict(alpha=-0.1), "alpha"),
        (dict(initial_learning_rate=-1e-3), "initial_learning_rate"),
    ],
)
def test_warmup_cosine_bad_arguments(kwargs, argument):
    arguments = {"peak_learning_rate": 1e-3, "total_steps": 100, "warmup_steps": 10, **kwargs}
    with pytest.raises(ValueError, match=f"argument `{argument}`.*Received: {argument}="):
        warmup_cosine(**arguments)


@pytest.mark.parametrize("warmup_steps", [100, 150])
def test_warmup_cosine_warmup_longer_than_the_schedule(warmup_steps):
    with pytest.raises(ValueError, match="warmup longer than the schedule") as info:
        warmup_cosine(1e-3, total_steps=100, warmup_steps=warmup_steps)
    assert f"warmup_steps={warmup_steps}, total_steps=100" in str(info.value)


# ---------------------------------------------------------------- PerUpdateSchedule


def halving(start=0.1):
    """A schedule whose value differs at every step: start * 0.5 ** step."""
    return keras.optimizers.schedules.ExponentialDecay(start, decay_steps=1, decay_rate=0.5)


def test_per_update_schedule_values():
    inner = OneCycle(0.1, total_steps=10)
    schedule = PerUpdateSchedule(inner, accumulation_steps=3)
    assert schedule.schedule is inner and schedule.accumulation_steps == 3
    for step in range(40):
        assert float(schedule(step)) == float(inner(step // 3)), step
    tensor_step = keras.ops.convert_to_tensor(7, "int64")
    assert float(schedule(tensor_step)) == float(inner(2))
    identity = PerUpdateSchedule(inner, 1)
    assert [float(identity(s)) for s in range(12)] == [float(inner(s)) for s in range(12)]


def _learning_rates_of_updates(schedule, k, updates=2):
    """Trains w -> SGD on (w * x - y)^2, batch 1, `k` micro-batches per update.

    Returns the learning rate each real update used, recovered from the weight
    change: w_after = w_before - lr * mean of the k micro-batch gradients, all
    taken at w_before (the weights do not move while gradients accumulate).
    """
    x = np.linspace(0.5, 1.5, k * updates).astype("float32")[:, None]
    y = (0.3 * x - 0.2).astype("float32")
    model = keras.Sequential(
        [keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")]
    )
    model.compile(keras.optimizers.SGD(schedule, gradient_accumulation_steps=k), "mse")
    kernels = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            # Through `self.model`: on JAX, that puts the training state back into the
            # model's variables (mid-epoch they are not up to date otherwise).
            kernel = self.model.layers[0].kernel
            kernels.append(float(keras.ops.convert_to_numpy(kernel)[0, 0]))

    model.fit(x, y, batch_size=1, epochs=1, shuffle=False, verbose=0, callbacks=[Record()])
    rates, w = [], 1.0
    for n in range(updates):
        micro = slice(n * k, (n + 1) * k)
        assert kernels[n * k : (n + 1) * k - 1] == [w] * (k - 1)  # no move while accumulating
        gradient = np.mean(2 * x[micro, 0] * (w * x[micro, 0] - y[micro, 0]))
        w_after = kernels[(n + 1) * k - 1]
        rates.append((w - w_after) / gradient)
        w = w_after
    return rates


@pytest.mark.parametrize("k", [2, 3])
def test_per_update_schedule_gives_update_n_the_rate_of_step_n(k):
    rates = _learning_rates_of_updates(PerUpdateSchedule(halving(), k), k)
    np.testing.assert_allclose(rates, [0.1, 0.05], rtol=1e-4)  # schedule(0), schedule(1)


@pytest.mark.parametrize("k", [2, 3])
def test_without_the_wrapper_keras_reads_the_schedule_at_the_micro_batch(k):
    """Keras 3.15: update n gets schedule(n * k + k - 1), even the first one."""
    rates = _learning_rates_of_updates(halving(), k)
    np.testing.assert_allclose(rates, [0.1 * 0.5 ** (k - 1), 0.1 * 0.5 ** (2 * k - 1)], rtol=1e-4)


def test_per_update_schedule_config_round_trip():
    for inner in (halving(0.2), OneCycle(0.1, total_steps=10, name="inner")):
        schedule = PerUpdateSchedule(inner, 4)
        config = schedule.get_config()
        assert config["accumulation_steps"] == 4
        assert config["schedule"] == keras.optimizers.schedules.serialize(inner)
        restored = keras.optimizers.schedules.deserialize(
            keras.optimizers.schedules.serialize(schedule)
        )
        assert isinstance(restored, PerUpdateSchedule)
        assert type(restored.schedule) is type(inner)
        assert restored.get_config() == config
        for step in range(0, 45, 3):
            assert float(restored(step)) == float(schedule(step))


def test_per_update_schedule_in_a_keras_file(tmp_path):
    x, y = _regression(32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    schedule = PerUpdateSchedule(OneCycle(0.05, total_steps=4, pct_start=0.5), 2)
    model.compile(keras.optimizers.AdamW(schedule, gradient_accumulation_steps=2), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "per_update.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    saved = loaded.optimizer.get_config()["learning_rate"]
    assert saved["registered_name"] == "dl4keras>PerUpdateSchedule"
    assert saved["config"]["schedule"]["registered_name"] == "dl4keras>OneCycle"
    assert float(loaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)


@pytest.mark.parametrize(
    "schedule, steps, argument",
    [
        (0.1, 2, "schedule"),
        (lambda step: 0.1, 2, "schedule"),
        (halving(), 0, "accumulation_steps"),
        (halving(), 2.0, "accumulation_steps"),
        (halving(), None, "accumulation_steps"),
    ],
)
def test_per_update_schedule_bad_arguments(schedule, steps, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`.*Received: {argument}="):
        PerUpdateSchedule(schedule, steps)


def test_per_update():
    inner = halving()
    assert per_update(inner, None) is inner
    assert per_update(inner, 1) is inner
    wrapped = per_update(inner, 4)
    assert isinstance(wrapped, PerUpdateSchedule) and wrapped.schedule is inner
    assert wrapped.accumulation_steps == 4
    with pytest.raises(ValueError, match="argument `schedule`"):
        per_update(0.1, None)
    with pytest.raises(ValueError, match="argument `accumulation_steps`"):
        per_update(inner, -2)
