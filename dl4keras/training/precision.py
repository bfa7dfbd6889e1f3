"""Mixed precision with Keras's dtype policies: a scoped policy, a model check, float formats.

Keras does mixed precision itself; this module adds only the pieces it lacks:

- `mixed_precision(policy)`: sets Keras's global dtype policy, like
  `keras.config.set_dtype_policy`, and is also a context manager that puts
  the previous policy back on exit (Keras has no policy scope);
- `check_mixed_precision(model)`: the mistakes that make mixed precision
  silently wrong: an output that is not float32 (a float16 softmax or loss
  loses precision and can overflow), weights stored in 16 bits (a policy
  `"float16"` instead of `"mixed_float16"`), and float16 computations without
  loss scaling (small gradients underflow to zero);
- `float_formats()`: the float32, float16 and bfloat16 formats side by side,
  computed with `ml_dtypes.finfo` (ml_dtypes, which defines `bfloat16` for
  NumPy, is a dependency of Keras and TensorFlow).

What stays Keras's: the policies themselves (`"mixed_float16"`: compute in
float16, variables in float32; `"mixed_bfloat16"`: the same with bfloat16,
whose float32-sized exponent needs no loss scaling), a layer's own
`dtype="float32"`, and loss scaling with
`keras.optimizers.LossScaleOptimizer`. `model.compile` wraps the optimizer in
a `LossScaleOptimizer` by itself, but only when the *model's* policy is
`"mixed_float16"`; a custom training loop must call
`loss = optimizer.scale_loss(loss)` before taking gradients (the
`LossScaleOptimizer` unscales them in `apply`).

Mixed precision pays off on GPUs with tensor cores and on TPUs; on a CPU it
is usually *slower* than float32 (DESIGN.md measures Conv2D 3-12x slower).

Examples:
    ```python
    import keras
    from dl4keras.training.precision import check_mixed_precision, mixed_precision

    with mixed_precision("mixed_bfloat16"):
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8, activation="relu"),
                keras.layers.Dense(3, activation="softmax", dtype="float32"),
            ]
        )
    print(keras.config.dtype_policy().name)  # float32: restored on exit
    print(model.layers[0].compute_dtype, model.outputs[0].dtype)  # bfloat16 float32
    print(check_mixed_precision(model))  # []
    ```
"""

from __future__ import annotations

import warnings

import keras
import ml_dtypes
import numpy as np

from dl4keras import _validation

__all__ = [
    "POLICIES",
    "PolicyScope",
    "check_mixed_precision",
    "float_formats",
    "mixed_precision_problems",
    "mixed_precision",
]

POLICIES = ("float32", "float16", "bfloat16", "float64", "mixed_float16", "mixed_bfloat16")
"""The floating-point dtype policies Keras accepts by name."""

_HALF = ("float16", "bfloat16")


def _policy(policy):
    if isinstance(policy, keras.DTypePolicy):
        name = policy.name
        if name in POLICIES:
            return policy
    elif isinstance(policy, str) and policy in POLICIES:
        return keras.DTypePolicy(policy)
    raise _validation.invalid(
        "policy",
        "a `keras.DTypePolicy` or one of " + ", ".join(repr(p) for p in POLICIES),
        policy,
    )


class PolicyScope:
    """The global dtype policy set by `mixed_precision`, and the one it replaced.

    Using it as a context manager restores `previous` on exit, also when the
    block raises. Outside a `with` block it does nothing more: the policy
    stays set, as after `keras.config.set_dtype_policy`.

    Args:
        policy: the `keras.DTypePolicy` to set.

    Attributes:
        policy: the policy set.
        previous: the global policy before, restored by `restore()` and on
            leaving a `with` block.

    Examples:
        >>> import keras
        >>> from dl4keras.training.precision import mixed_precision
        >>> scope = mixed_precision("mixed_float16")
        >>> scope
        <PolicyScope policy='mixed_float16' previous='float32'>
        >>> keras.config.dtype_policy().name
        'mixed_float16'
        >>> scope.restore()
        >>> keras.config.dtype_policy().name
        'float32'
    """

    def __init__(self, policy):
        self.policy = _policy(policy)
        self.previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.policy)

    def restore(self):
        """Sets the global dtype policy back to `previous`."""
        keras.config.set_dtype_policy(self.previous)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.restore()
        return False

    def __repr__(self):
        return f"<PolicyScope policy={self.policy.name!r} previous={self.previous.name!r}>"


def mixed_precision(policy):
    """Sets Keras's global dtype policy; as a context manager, only for a block.

    `mixed_precision("mixed_bfloat16")` on its own line sets the policy for
    every layer created afterwards, as `keras.config.set_dtype_policy` does.
    `with mixed_precision("mixed_float16"): ...` sets it for the layers built
    inside the block and restores the previous policy on exit, also when the
    block raises (a call that is also a context manager, like
    `torch.set_grad_enabled`). Layers keep the policy they were created
    with; give the output layer `dtype="float32"`.

    Args:
        policy: one of `"mixed_float16"`, `"mixed_bfloat16"` (mixed
            precision: compute in 16 bits, variables in float32),
            `"float32"`, `"float16"`, `"bfloat16"`, `"float64"` (one dtype for
            both), or a `keras.DTypePolicy`.

    Returns:
        A `PolicyScope`: the policy set and the previous one, usable in a
        `with` statement.

    Raises:
        ValueError: if `policy` is not one of the names above.

    Examples:
        >>> import keras
        >>> from dl4keras.training.precision import mixed_precision
        >>> with mixed_precision("mixed_float16"):
        ...     layer = keras.layers.Dense(2)
        >>> layer.compute_dtype, layer.variable_dtype, keras.config.dtype_policy().name
        ('float16', 'float32', 'float32')
    """
    return PolicyScope(policy)


def _layers(model):
    """`model` and every layer inside it, nested models and layers included."""
    flatten = getattr(model, "_flatten_layers", None)  # Keras's own walk over sublayers
    if callable(flatten):
        return list(flatten(include_self=True, recursive=True))
    found = [model]
    for layer in getattr(model, "layers", []):
        found.extend(_layers(layer))
    return found


def _loss_scaled(optimizer):
    """Whether `optimizer` scales the loss: a `LossScaleOptimizer` or a `loss_scale_factor`."""
    return isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or (
        getattr(optimizer, "loss_scale_factor", None) is not None
    )


def mixed_precision_problems(model):
    """The problems `check_mixed_precision` reports, without the warnings.

    Args:
        model: a `keras.Model`.

    Returns:
        A list of strings, one per problem; empty when all is right.

    Raises:
        ValueError: if `model` is not a `keras.Model`.

    Examples:
        >>> import keras
        >>> from dl4keras.training.precision import mixed_precision_problems
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> mixed_precision_problems(model)
        []
    """
    if not isinstance(model, keras.Model):
        raise _validation.invalid("model", "a `keras.Model`", model)
    problems = []
    layers = [layer for layer in _layers(model) if not isinstance(layer, keras.layers.InputLayer)]
    outputs = getattr(model, "outputs", None) or []
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    for i, output in enumerate(outputs):
        dtype = keras.backend.standardize_dtype(output.dtype)
        if dtype != "float32" and dtype in _HALF:
            which = f"output {i}" if len(outputs) > 1 else "the output"
            problems.append(
                f"{which} is {dtype}, not float32: give the output layer "
                f'`dtype="float32"` (a {dtype} softmax and loss lose precision; '
                "float16 can also overflow)."
            )
    half_variables = sorted(
        {
            layer.dtype_policy.name
            for layer in layers
            if layer.weights and layer.dtype_policy.variable_dtype in _HALF
        }
    )
    if half_variables:
        names = ", ".join(repr(n) for n in half_variables)
        problems.append(
            f"some layers store their weights in 16 bits (policy {names}): updates "
            "smaller than the weights' precision are lost. Use the mixed policy "
            '("mixed_float16" or "mixed_bfloat16"): it computes in 16 bits and keeps '
            "float32 weights."
        )
    float16 = [layer.name for layer in layers if layer.compute_dtype == "float16"]
    if float16:
        optimizer = getattr(model, "optimizer", None)
        where = f"{len(float16)} layer(s) compute in float16 (e.g. {float16[0]!r})"
        if optimizer is None:
            problems.append(
                f"{where} and the model is not compiled: small gradients underflow to "
                "zero in float16 without loss scaling. `compile` wraps the optimizer in a "
                "`keras.optimizers.LossScaleOptimizer` only when the model's policy is "
                '"mixed_float16"; a custom training loop must wrap it itself and call '
                "`loss = optimizer.scale_loss(loss)` before taking gradients."
            )
        elif not _loss_scaled(optimizer):
            problems.append(
                f"{where} but the optimizer {type(optimizer).__name__} does not scale the "
                "loss: small gradients underflow to zero in float16. Wrap it, "
                "`keras.optimizers.LossScaleOptimizer(optimizer)`, before `compile` "
                f"(compile does it by itself only when the model's policy is "
                f'"mixed_float16"; this model\'s is {model.dtype_policy.name!r}).'
            )
    return problems


def check_mixed_precision(model):
    """Checks that a model is set up for mixed precision training; warns for each problem.

    Looks for the mistakes that make mixed precision silently wrong:

    - an output that is not float32 (the output layer needs `dtype="float32"`);
    - layers that *store* their weights in 16 bits (policy `"float16"` or
      `"bfloat16"` instead of a mixed one);
    - a layer computing in float16 while the model's optimizer does not scale
      the loss (not a `keras.optimizers.LossScaleOptimizer`, no
      `loss_scale_factor`), or the model is not compiled yet (then a custom
      loop must call `optimizer.scale_loss`). bfloat16 needs no loss scaling:
      its exponent has float32's range.

    Args:
        model: a `keras.Model` (the output check needs a functional or
            Sequential model, whose `outputs` are known; call it after
            `compile` to check the optimizer).

    Returns:
        A list of strings, one per problem (each also emitted as a
        `UserWarning`); empty when all is right.

    Raises:
        ValueError: if `model` is not a `keras.Model`.

    Examples:
        ```python
        import warnings

        import keras
        from dl4keras.training.precision import check_mixed_precision

        # mixed_float16 set on the layers only: compile does not add loss scaling
        model = keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(8, dtype="mixed_float16"),
                keras.layers.Dense(1, dtype="mixed_float16"),
            ]
        )
        model.compile(optimizer="adam", loss="mse")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            problems = check_mixed_precision(model)
        print(len(problems))  # 2: a float16 output, no loss scaling
        ```
    """
    problems = mixed_precision_problems(model)
    for problem in problems:
        warnings.warn(problem, UserWarning, stacklevel=2)
    return problems


def float_formats():
    """The float32, float16 and bfloat16 formats, computed with `ml_dtypes.finfo`.

    Returns:
        A list of three dicts, one per format, with the keys `"name"`,
        `"bits"`, `"exponent_bits"`, `"mantissa_bits"` (stored fraction bits),
        `"max"` (largest finite value), `"smallest_normal"`,
        `"smallest_subnormal"`, `"eps"` (machine epsilon: the gap between
        1 and the next number) and `"decimal_digits"` (decimal digits
        represented exactly, `finfo.precision`); numbers as Python floats
        and ints.

    Examples:
        >>> from dl4keras.training.precision import float_formats
        >>> for f in float_formats():
        ...     print(f"{f['name']:9} {f['exponent_bits']} {f['mantissa_bits']:2} {f['max']:.3g}")
        float32   8 23 3.4e+38
        float16   5 10 6.55e+04
        bfloat16  8  7 3.39e+38
    """
    table = []
    for name, dtype in (
        ("float32", np.float32),
        ("float16", np.float16),
        ("bfloat16", ml_dtypes.bfloat16),
    ):
        info = ml_dtypes.finfo(dtype)
        table.append(
            {
                "name": name,
                "bits": int(info.bits),
                "exponent_bits": int(info.nexp),
                "mantissa_bits": int(info.nmant),
                "max": float(info.max),
                "smallest_normal": float(info.smallest_normal),
                "smallest_subnormal": float(info.smallest_subnormal),
                "eps": float(info.eps),
                "decimal_digits": int(info.precision),
            }
        )
    return table
