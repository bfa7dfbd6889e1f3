"""Tests for dl4keras.dann: gradient reversal, the lambda schedule and the DANN model."""

import math

import keras
import numpy as np
import pytest
from backend_utils import value_and_gradient
from keras import ops

from dl4keras import dann
from dl4keras.dann import DANN, DANNSchedule, GradientReversal, dann_inputs, dann_lambda

SIZE = 8


def features():
    """A tiny feature extractor on 8x8 RGB images."""
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
            keras.layers.Flatten(),
        ],
        name="features",
    )


def domains(n=32, seed=0):
    """Source: dark images, labels 0/1; target: bright images."""
    rng = np.random.default_rng(seed)
    x_source = rng.uniform(0, 0.5, (n, SIZE, SIZE, 3)).astype("float32")
    y_source = rng.integers(0, 2, n)
    x_source[y_source == 1, :4] += 0.5  # label 1: a brighter top half
    x_target = rng.uniform(0.5, 1.0, (n, SIZE, SIZE, 3)).astype("float32")
    return x_source, y_source, x_target


def tiny_dann(seed=0, **kwargs):
    """A built DANN whose weights come from NumPy: the same numbers on every backend."""
    model = DANN(features(), num_classes=2, domain_units=(8,), **kwargs)
    model.build(((None, SIZE, SIZE, 3), (None, SIZE, SIZE, 3)))
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        shape = tuple(weight.shape)
        if len(shape) < 2:  # biases
            weight.assign(np.zeros(shape))
            continue
        receptive = math.prod(shape[:-2])
        limit = math.sqrt(6 / (receptive * (shape[-2] + shape[-1])))  # Glorot uniform
        weight.assign(rng.uniform(-limit, limit, shape))
    return model


def loss_and_variable_gradients(loss_fn, variables):
    """`loss_fn()` and its gradients with respect to Keras `variables`, as NumPy.

    TensorFlow: a gradient tape; JAX: `jax.value_and_grad` of the variables' values
    swapped in with a `keras.StatelessScope`; PyTorch: `torch.autograd.grad` on the
    variables' tensors.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        grads = tape.gradient(loss, variables)
    elif backend == "jax":
        import jax

        def stateless_loss(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return loss_fn()

        loss, grads = jax.value_and_grad(stateless_loss)([v.value for v in variables])
    elif backend == "torch":
        import torch

        loss = loss_fn()
        grads = torch.autograd.grad(loss, [v.value for v in variables])
    else:  # pragma: no cover
        raise ValueError(f"unknown Keras backend {backend!r}")
    return ops.convert_to_numpy(loss), [ops.convert_to_numpy(g) for g in grads]


# ------------------------------------------------------------------ schedule


def test_dann_lambda_is_the_paper_formula():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.3, gamma=5.0) == pytest.approx(2 / (1 + math.exp(-1.5)) - 1)
    values = dann_lambda(np.linspace(0, 1, 11))
    assert values.shape == (11,) and np.all(np.diff(values) > 0)
    assert values[-1] == pytest.approx(0.99991, abs=1e-5)
    with pytest.raises(ValueError, match=r"`progress` must be in \[0, 1\], got 1.5"):
        dann_lambda(1.5)
    with pytest.raises(ValueError, match="`gamma` must be positive, got 0"):
        dann_lambda(0.5, gamma=0)


# ------------------------------------------------------------- the layer


@pytest.mark.parametrize("lambda_", [0.7, 0.0, 2.5])
def test_gradient_reversal_is_identity_forward_and_negates_gradient(lambda_):
    layer = GradientReversal(lambda_=lambda_)
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    upstream = np.random.default_rng(1).normal(size=(3, 5)).astype("float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    _, (grad,) = value_and_gradient(lambda t: ops.sum(ops.multiply(layer(t), upstream)), x)
    np.testing.assert_allclose(grad, -lambda_ * upstream, rtol=1e-6)


def test_gradient_reversal_lambda_is_a_settable_variable():
    layer = GradientReversal(lambda_=1.0)
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == 1
    layer.lambda_.assign(0.25)
    _, (grad,) = value_and_gradient(lambda t: ops.sum(layer(t)), np.ones((2, 2)))
    np.testing.assert_allclose(grad, -0.25)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_gradient_reversal_inside_fit(jit_compile):
    """One SGD step on mse(w * x, 1) from w = 0: +0.2 normally, -0.2 reversed."""
    for reverse, expected in ((False, 0.2), (True, -0.2)):
        dense = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
        stack = [keras.Input((1,)), dense] + ([GradientReversal(1.0)] if reverse else [])
        model = keras.Sequential(stack)
        model.compile(keras.optimizers.SGD(0.1), "mse", jit_compile=jit_compile)
        model.fit(np.ones((1, 1)), np.ones((1, 1)), epochs=1, verbose=0)
        assert dense.kernel.numpy().item() == pytest.approx(expected)


def test_gradient_reversal_serializes(tmp_path):
    layer = GradientReversal(lambda_=0.5, name="grl")
    clone = GradientReversal.from_config(layer.get_config())
    assert clone.name == "grl" and float(clone.lambda_.numpy()) == 0.5
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), GradientReversal(0.5)])
    model.layers[-1].lambda_.assign(0.8)  # the current value is saved with the weights
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.layers[-1], GradientReversal)
    assert float(loaded.layers[-1].lambda_.numpy()) == pytest.approx(0.8)


@pytest.mark.parametrize("bad", ["1", None, float("nan"), True])
def test_gradient_reversal_bad_lambda(bad):
    with pytest.raises(ValueError, match="`lambda_` must be"):
        GradientReversal(lambda_=bad)


# --------------------------------------------------------------- the model


@pytest.mark.parametrize("run_eagerly", [True, False])
def test_dann_trains_with_the_schedule_and_logs_domain_accuracy(run_eagerly):
    """The schedule's values reach every step, also in a compiled step (on JAX, in the
    middle of an epoch the variables live outside the model: the callback syncs them)."""
    x_source, y_source, x_target = domains()
    model = tiny_dann()
    model.compile(keras.optimizers.Adam(1e-2), run_eagerly=run_eagerly)
    schedule = DANNSchedule(anneal_lr=True)
    history = model.fit(
        *dann_inputs(x_source, y_source, x_target, seed=0),
        batch_size=8,
        epochs=2,
        callbacks=[schedule],
        verbose=0,
    )
    logs = history.history
    assert set(logs) >= {"loss", "label_loss", "domain_loss", "accuracy", "domain_accuracy"}
    assert all(np.isfinite(v) for v in logs["loss"])
    assert all(0.0 <= v <= 1.0 for v in logs["domain_accuracy"])
    # 8 steps: the last batch started at progress 7/8, lambda and lr follow the paper.
    assert logs["dann_lambda"][-1] == pytest.approx(dann_lambda(7 / 8))
    assert float(model.gradient_reversal.lambda_.numpy()) == pytest.approx(dann_lambda(7 / 8))
    assert logs["lr"][-1] == pytest.approx(1e-2 / (1 + 10 * 7 / 8) ** 0.75, rel=1e-5)
    # One input: the classifier alone.
    result = model.evaluate(x_source, y_source, verbose=0, return_dict=True)
    assert set(result) == {"loss", "label_loss", "accuracy"}
    logits = ops.convert_to_numpy(model(x_target[:3]))
    assert logits.shape == (3, 2)
    np.testing.assert_allclose(ops.convert_to_numpy(model.classifier(x_target[:3])), logits)


def test_reversed_domain_gradient_reaches_the_feature_extractor():
    """d(loss)/d(features weights) = d(label loss) - lambda * d(domain loss), exactly."""
    x_source, y_source, x_target = domains(8)
    model = tiny_dann()
    model((x_source, x_target))
    weights = model.feature_extractor.trainable_weights

    def gradients(lambda_):
        model.gradient_reversal.lambda_.assign(lambda_)

        def loss():
            y_pred = model((x_source, x_target), training=True)
            return model.compute_loss(y=y_source, y_pred=y_pred)

        return loss_and_variable_gradients(loss, weights)[1]

    # The domain loss of the features, computed by hand without any reversal:
    # binary cross-entropy from logits z, max(z, 0) - z * t + log(1 + exp(-|z|)).
    is_target = np.r_[np.zeros(8), np.ones(8)].astype("float32")

    def domain_loss():
        feats = model.feature_extractor(np.concatenate([x_source, x_target]))
        z = model.domain_head(feats)[:, 0]
        return ops.mean(ops.relu(z) - ops.multiply(z, is_target) + ops.log1p(ops.exp(-ops.abs(z))))

    _, domain_grads = loss_and_variable_gradients(domain_loss, weights)
    for g1, g0, gd in zip(gradients(1.0), gradients(0.0), domain_grads):
        np.testing.assert_allclose(g1 - g0, -gd, atol=1e-6)


def test_reversal_trains_features_to_confuse_a_fixed_domain_head():
    """With the domain head frozen, lambda=1 raises the domain loss; lambda=0 does not."""
    x_source, y_source, x_target = domains()
    final = {}
    for lambda_ in (0.0, 1.0):
        model = tiny_dann(lambda_=lambda_)
        model.domain_head.trainable = False
        model.compile(keras.optimizers.SGD(0.05), run_eagerly=True)
        history = model.fit((x_source, x_target), y_source, batch_size=8, epochs=3, verbose=0)
        final[lambda_] = history.history["domain_loss"][-1]
    assert final[1.0] > final[0.0] + 0.05


def test_dann_saves_and_loads(tmp_path):
    x_source, y_source, x_target = domains(8)
    model = tiny_dann(label_units=(4,), domain_weight=0.5, lambda_=0.3)
    model.compile("adam")
    model((x_source, x_target))
    model.optimizer.build(model.trainable_variables)  # as after training
    model.save(tmp_path / "dann.keras")
    loaded = keras.saving.load_model(tmp_path / "dann.keras", safe_mode=True)
    assert isinstance(loaded, DANN) and loaded.compiled
    assert (loaded.num_classes, loaded.label_units, loaded.domain_weight) == (2, (4,), 0.5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(loaded(x_target)), ops.convert_to_numpy(model(x_target)), atol=1e-6
    )
    assert float(loaded.gradient_reversal.lambda_.numpy()) == pytest.approx(0.3)


def test_dann_inputs_pairs_every_target_image():
    x_source, y_source, x_target = domains(10)
    (xs, xt), ys = dann_inputs(x_source, y_source, x_target[:4], seed=0)
    assert xs is x_source and xt.shape == x_source.shape
    np.testing.assert_array_equal(ys, y_source)
    flat = {tuple(row.ravel()[:3]) for row in xt}
    assert flat == {tuple(row.ravel()[:3]) for row in x_target[:4]}
    with pytest.raises(ValueError, match="same shape"):
        dann_inputs(x_source, y_source, x_target[:, :4])
    with pytest.raises(ValueError, match="10 source images but 3 labels"):
        dann_inputs(x_source, y_source[:3], x_target)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"num_classes": 1}, "`num_classes` must be an integer >= 2, got 1"),
        ({"domain_units": (0,)}, "`domain_units` must be positive integers"),
        ({"domain_weight": -1.0}, "`domain_weight` must be >= 0, got -1.0"),
    ],
)
def test_dann_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DANN(features(), **{"num_classes": 2, **kwargs})


def test_dann_compile_and_schedule_errors():
    with pytest.raises(ValueError, match="do not pass `loss`"):
        tiny_dann().compile("adam", loss="mse")
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    plain.compile("sgd", "mse")
    with pytest.raises(ValueError, match="needs a model with a `GradientReversal` layer"):
        plain.fit(np.ones((2, 2)), np.ones((2, 1)), verbose=0, callbacks=[DANNSchedule()])
    with pytest.raises(ValueError, match="`total_steps` must be a positive integer"):
        DANNSchedule(total_steps=0)


def test_public_names():
    assert set(dann.__all__) == {
        "DANN",
        "DANNSchedule",
        "GradientReversal",
        "dann_inputs",
        "dann_lambda",
    }
