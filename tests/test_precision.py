"""Tests for dl4keras.training.precision, against Keras's own policies and loss scaling."""

import warnings

import keras
import numpy as np
import pytest
from backend_utils import value_and_gradient

from dl4keras.training import precision as mp


@pytest.fixture(autouse=True)
def _restore_policy():
    before = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(before)
    keras.backend.clear_session()


def _model(hidden="float32", output="float32"):
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="relu", dtype=hidden),
            keras.layers.Dense(3, activation="softmax", dtype=output),
        ]
    )


def _quiet(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mp.check_mixed_precision(model)


# ---------------------------------------------------------------- mixed_precision


def test_set_policy_sets_the_global_policy_as_a_call():
    scope = mp.mixed_precision("mixed_bfloat16")
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    layer = keras.layers.Dense(2)
    assert (layer.compute_dtype, layer.variable_dtype) == ("bfloat16", "float32")
    assert scope.previous.name == "float32"
    assert scope.policy.name == "mixed_bfloat16"
    scope.restore()
    assert keras.config.dtype_policy().name == "float32"


def test_set_policy_scopes_and_restores_the_previous_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    with mp.mixed_precision("mixed_float16") as scope:
        assert keras.config.dtype_policy().name == "mixed_float16"
        inside = keras.layers.Dense(2)
        with mp.mixed_precision("float32"):  # nested scopes unwind in order
            assert keras.config.dtype_policy().name == "float32"
        assert keras.config.dtype_policy().name == "mixed_float16"
    assert isinstance(scope, mp.PolicyScope)
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert inside.compute_dtype == "float16"  # layers keep the policy they were built with


def test_set_policy_restores_the_policy_on_an_exception():
    with pytest.raises(ZeroDivisionError):
        with mp.mixed_precision("mixed_float16"):
            assert keras.config.dtype_policy().name == "mixed_float16"
            1 / 0  # noqa: B018
    assert keras.config.dtype_policy().name == "float32"


def test_set_policy_accepts_a_dtype_policy():
    with mp.mixed_precision(keras.DTypePolicy("mixed_bfloat16")):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"


@pytest.mark.parametrize("bad", ["mixed_float32", "float8", "int32", "fp16", None, 16])
def test_set_policy_rejects_unknown_names_listing_the_allowed_ones(bad):
    with pytest.raises(ValueError) as info:
        mp.mixed_precision(bad)
    message = str(info.value)
    assert "argument `policy`" in message and f"policy={bad!r}" in message
    for name in mp.POLICIES:
        assert repr(name) in message
    assert keras.config.dtype_policy().name == "float32"  # nothing was set


def test_the_allowed_policies_are_the_ones_keras_accepts():
    for name in mp.POLICIES:
        assert keras.DTypePolicy(name).name == name
    with pytest.raises(ValueError):
        keras.DTypePolicy("mixed_float32")


# ---------------------------------------------------------------- loss scaling


def _float16_gradient(optimizer=None):
    """The gradient of a float16 computation whose true gradient is 1e-8 per weight.

    A `mixed_float16` Dense layer (float32 kernel, float16 compute) sees inputs
    of 1e-4 and its output is weighted by 1e-4, so d loss / d kernel = 1e-8:
    below float16's smallest subnormal (6e-8). With `optimizer`, the loss is
    scaled with `optimizer.scale_loss` before the gradient is taken. The
    gradient is the backend's own (TensorFlow, JAX or PyTorch autodiff), taken
    through `stateless_call` of a model around the layer (the model calls the
    layer, which casts its float32 kernel and inputs to float16).
    """
    layer = keras.layers.Dense(1, use_bias=False, dtype="mixed_float16")
    model = keras.Sequential([keras.Input((64,)), layer])
    x = keras.ops.full((1, 64), 1e-4)
    if optimizer is not None:
        optimizer.build([layer.kernel])  # its loss scale exists before JAX traces `loss_of`

    def loss_of(kernel):
        y, _ = model.stateless_call([kernel], [], x)
        assert keras.backend.standardize_dtype(y.dtype) == "float16"
        loss = keras.ops.sum(y * keras.ops.convert_to_tensor(1e-4, "float16"))
        if optimizer is not None:
            loss = optimizer.scale_loss(loss)
        return loss

    _, (gradient,) = value_and_gradient(loss_of, keras.ops.convert_to_numpy(layer.kernel))
    return layer, gradient


def test_a_float16_gradient_underflows_to_zero_without_loss_scaling():
    _, gradient = _float16_gradient()
    assert gradient.shape == (64, 1)
    assert not np.any(gradient)  # every one of the 64 gradients is 0


def test_loss_scale_optimizer_keeps_the_float16_gradient():
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1000.0))
    layer, scaled = _float16_gradient(optimizer)
    scale = optimizer.initial_scale  # 2**15
    unscaled = scaled / scale
    np.testing.assert_allclose(unscaled, 1e-8, rtol=2e-3)  # float16's own rounding
    before = keras.ops.convert_to_numpy(layer.kernel)
    gradients = [keras.ops.convert_to_tensor(scaled)]
    # Unscales, then steps the inner SGD.
    if keras.backend.backend() == "jax":
        # Keras 3.15 bug: on JAX, the stateful `LossScaleOptimizer.apply` fails outside a
        # jitted step (UnexpectedTracerError: it assigns variables inside the branches of
        # `ops.cond`, which JAX traces). JAX's trainer calls `stateless_apply`; so do we.
        (after,), _ = optimizer.stateless_apply(
            [v.value for v in optimizer.variables], gradients, [layer.kernel.value]
        )
        after = keras.ops.convert_to_numpy(after)
    else:
        optimizer.apply(gradients, [layer.kernel])
        after = keras.ops.convert_to_numpy(layer.kernel)
    np.testing.assert_allclose(before - after, 1000.0 * 1e-8, rtol=2e-3)


# ---------------------------------------------------------------- check_mixed_precision


def test_check_flags_a_float16_output_and_warns():
    with mp.mixed_precision("mixed_float16"):
        model = _model(hidden="mixed_float16", output="mixed_float16")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="the output is float16, not float32"):
        problems = mp.check_mixed_precision(model)
    assert len(problems) == 1
    assert 'dtype="float32"' in problems[0]


def test_check_flags_float16_layers_without_loss_scaling():
    # mixed_float16 on the layers only: the model's policy is float32, and
    # compile does not wrap the optimizer in a LossScaleOptimizer.
    model = _model(hidden="mixed_float16", output="float32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    problems = _quiet(model)
    assert len(problems) == 1
    assert "does not scale the loss" in problems[0] and "LossScaleOptimizer" in problems[0]


def test_check_reminds_custom_loops_to_scale_the_loss_before_compile():
    with mp.mixed_precision("mixed_float16"):
        model = _model(output="float32")
    (problem,) = _quiet(model)
    assert "not compiled" in problem and "optimizer.scale_loss" in problem


def test_check_flags_weights_stored_in_16_bits():
    with mp.mixed_precision("bfloat16"):
        model = _model(output="float32")
    (problem,) = _quiet(model)
    assert "weights in 16 bits" in problem and "'bfloat16'" in problem


def test_check_is_silent_on_mixed_float16_compiled_with_automatic_loss_scaling():
    with mp.mixed_precision("mixed_float16"):
        model = _model(output="float32")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert mp.check_mixed_precision(model) == []


def test_check_accepts_a_static_loss_scale_factor():
    model = _model(hidden="mixed_float16", output="float32")
    model.compile(keras.optimizers.Adam(loss_scale_factor=1024.0), "mse")
    assert _quiet(model) == []


def test_check_is_silent_on_mixed_bfloat16_with_a_float32_output():
    with mp.mixed_precision("mixed_bfloat16"):
        model = _model(output="float32")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mp.check_mixed_precision(model) == []


def test_check_looks_inside_nested_models():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, dtype="mixed_float16")])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.Dense(1)])
    outer.compile(optimizer="sgd", loss="mse")
    (problem,) = _quiet(outer)
    assert "1 layer(s) compute in float16" in problem


def test_check_rejects_a_non_model():
    with pytest.raises(ValueError, match="argument `model`"):
        mp.check_mixed_precision(keras.layers.Dense(1))


# ---------------------------------------------------------------- float_formats

# IEEE 754 binary32 / binary16 and Google's bfloat16, written as powers of two.
KNOWN = {
    "float32": dict(
        bits=32,
        exponent_bits=8,
        mantissa_bits=23,
        max=(2 - 2.0**-23) * 2.0**127,
        smallest_normal=2.0**-126,
        smallest_subnormal=2.0**-149,
        eps=2.0**-23,
        decimal_digits=6,
    ),
    "float16": dict(
        bits=16,
        exponent_bits=5,
        mantissa_bits=10,
        max=65504.0,
        smallest_normal=2.0**-14,
        smallest_subnormal=2.0**-24,
        eps=2.0**-10,
        decimal_digits=3,
    ),
    "bfloat16": dict(
        bits=16,
        exponent_bits=8,
        mantissa_bits=7,
        max=(2 - 2.0**-7) * 2.0**127,
        smallest_normal=2.0**-126,
        smallest_subnormal=2.0**-133,
        eps=2.0**-7,
        decimal_digits=2,
    ),
}


def test_float_formats_match_the_ieee_values():
    table = mp.float_formats()
    assert [row["name"] for row in table] == ["float32", "float16", "bfloat16"]
    for row in table:
        expected = KNOWN[row["name"]]
        assert set(row) == {"name", *expected}
        for key, value in expected.items():
            assert row[key] == value, (row["name"], key, row[key], value)
            assert type(row[key]) is type(value)
        assert row["bits"] == 1 + row["exponent_bits"] + row["mantissa_bits"]


def test_float_formats_agree_with_the_arrays_keras_computes_in():
    ops = keras.ops

    def read(tensor):
        """A float32, float16 or bfloat16 value, exactly, as a Python float.

        Through float32, which holds all three exactly (not float64: JAX has none by default).
        """
        return float(ops.convert_to_numpy(ops.cast(tensor, "float32")))

    def computed(dtype, value):
        """`1 + value` computed in `dtype` by the backend, read back exactly."""
        total = ops.add(ops.ones((), dtype=dtype), ops.cast(value, dtype))
        assert keras.backend.standardize_dtype(total.dtype) == dtype
        return read(total)

    for row in mp.float_formats():
        eps = row["eps"]
        assert computed(row["name"], eps) == 1 + eps  # the next number after 1
        assert computed(row["name"], eps / 4) == 1.0  # rounds back to 1
        big = ops.convert_to_tensor(row["max"], row["name"])  # exact in its own format
        assert read(big) == row["max"]
        assert not np.isfinite(read(ops.multiply(big, ops.cast(2, row["name"]))))
