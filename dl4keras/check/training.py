"""Self-check of tutorial 06's exercise: a training set-up (accumulation, policy, schedule)."""

from __future__ import annotations

from dl4keras.check import _common

__all__ = ["training_setup"]


# ---------------------------------------------------------------- training set-up


class _SetupReport:
    """The verdicts of `training_setup`: PASS, FAIL (with a fix) and WARN lines."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.lines = []
        self.failed = []
        self.warned = []
        self.passed = 0

    def add(self, verdict, topic, text, fix=None):
        self.lines += _common.wrapped(f"[{verdict}] ", f"{topic}: {text}")
        if fix:
            self.lines += _common.wrapped("  FIX: ", fix)
        if verdict == "FAIL":
            self.failed.append(topic)
        elif verdict == "WARN":
            self.warned.append(topic)
        else:
            self.passed += 1

    def finish(self, header):
        total = self.passed + len(self.failed)
        if self.failed:
            end = f"{self.passed}/{total} checks pass; fix: {', '.join(self.failed)}."
        else:
            end = f"All {total} checks pass" + (
                f" ({len(self.warned)} warning{'s' * (len(self.warned) > 1)} above)."
                if self.warned
                else ": the set-up is right."
            )
        if self.verbose:
            print("\n".join([*_common.wrapped("", header), *self.lines, *_common.wrapped("", end)]))
        return not self.failed


def _describe_schedule(schedule):
    """`(name, has_warmup)` of a learning-rate schedule (`has_warmup` None: unknown)."""
    import keras

    from dl4keras.training.schedules import OneCycle

    name = type(schedule).__name__
    if isinstance(schedule, keras.optimizers.schedules.CosineDecay):
        target = getattr(schedule, "warmup_target", None)
        steps = getattr(schedule, "warmup_steps", 0)
        if target is None or not steps:
            return name, False
        return f"{name} (warm-up to {target:g} over {steps} steps)", True
    if isinstance(schedule, OneCycle):
        return f"{name} (warm-up to {schedule.max_learning_rate:g})", True
    return name, None


def training_setup(
    model, batch_size, effective_batch_size=256, policy="mixed_bfloat16", verbose=True
):
    """Checks a compiled model's set-up for gradient accumulation and mixed precision.

    The self-check of tutorial 06's exercise "make it fit": reach an
    effective batch of `effective_batch_size` with micro-batches of
    `batch_size` (Keras's `gradient_accumulation_steps`), train in the dtype
    `policy`, with a warm-up + cosine schedule that is right under
    accumulation. It inspects the model and its optimizer (it trains
    nothing) and names the usual mistakes, each with its fix:

    - **accumulation**: `effective_batch_size` not a multiple of
      `batch_size`, or the optimizer's `gradient_accumulation_steps` not
      `effective_batch_size / batch_size`;
    - **dtype policy**: the layers not built under `policy` (a policy only
      applies to layers created while it is set);
    - **output**: the model's output not float32 (the output layer needs
      `dtype="float32"`);
    - **loss scaling**: float16 computations and an optimizer that does not
      scale the loss (`keras.optimizers.LossScaleOptimizer`);
    - **learning rate**: a schedule not wrapped for accumulation (Keras
      advances schedules every micro-batch: wrap it in
      `dl4keras.training.schedules.PerUpdateSchedule`, or `per_update`, with
      the same `accumulation_steps`), or a wrapper with other steps than the
      optimizer's. A constant learning rate, or a `CosineDecay` without a
      warm-up (`warmup_target` unset: `warmup_steps` is then ignored), gives
      a warning line.

    Args:
        model: the compiled `keras.Model`.
        batch_size: the micro-batch size given to `model.fit`.
        effective_batch_size: the examples per optimizer update wanted.
        policy: the dtype policy wanted, e.g. `"mixed_bfloat16"`.
        verbose: print the feedback.

    Returns:
        `True` if no check fails (warnings allowed), `False` otherwise.

    Raises:
        ValueError: if `model` is not a `keras.Model`, a batch size is not a
            positive integer, or `policy` is not a floating-point policy name.

    Examples:
        >>> import keras
        >>> from dl4keras import check, training
        >>> with training.mixed_precision("mixed_bfloat16"):
        ...     model = keras.Sequential(
        ...         [
        ...             keras.Input((8,)),
        ...             keras.layers.Dense(16, activation="relu"),
        ...             keras.layers.Dense(3, activation="softmax", dtype="float32"),
        ...         ]
        ...     )
        >>> warm = training.warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
        >>> model.compile(
        ...     keras.optimizers.AdamW(
        ...         training.per_update(warm, 8), gradient_accumulation_steps=8
        ...     ),
        ...     "sparse_categorical_crossentropy",
        ... )
        >>> check.training_setup(model, batch_size=32)  # doctest: +ELLIPSIS
        Checking the training set-up: micro-batches of 32, effective batch 256,
        policy 'mixed_bfloat16' ...
        [PASS] accumulation: 8 micro-batches of 32 = 256 examples per update
        [PASS] dtype policy: the layers compute in bfloat16 ('mixed_bfloat16')
        [PASS] output: float32
        [PASS] loss scaling: not needed: bfloat16 has float32's exponent range
        [PASS] learning rate: PerUpdateSchedule(accumulation_steps=8) over
               CosineDecay (warm-up to 0.001 over 10 steps)
        All 5 checks pass: the set-up is right.
        True
        >>> # the same schedule not wrapped: Keras advances it every micro-batch
        >>> model.compile(keras.optimizers.AdamW(warm, gradient_accumulation_steps=8), "mse")
        >>> check.training_setup(model, batch_size=32)  # doctest: +ELLIPSIS
        Checking the training set-up: ...
        [FAIL] learning rate: the schedule is not wrapped for accumulation: Keras
               advances it every micro-batch, so its warm-up and decay run 8x too
               fast
          FIX: ...training.per_update(schedule, 8)...
        4/5 checks pass; fix: learning rate.
        False
    """
    import keras

    from dl4keras import _validation
    from dl4keras.training.precision import POLICIES
    from dl4keras.training.schedules import PerUpdateSchedule

    if not isinstance(model, keras.Model):
        raise _validation.invalid("model", "a compiled `keras.Model`", model)
    batch_size = _validation.positive_int("batch_size", batch_size)
    effective = _validation.positive_int("effective_batch_size", effective_batch_size)
    _validation.one_of("policy", policy, POLICIES)
    wanted = keras.DTypePolicy(policy)
    report = _SetupReport(verbose)
    header = (
        f"Checking the training set-up: micro-batches of {batch_size}, effective batch "
        f"{effective}, policy {policy!r} ..."
    )

    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    steps = (getattr(inner, "gradient_accumulation_steps", None) or 1) if inner else None

    # 1. gradient accumulation
    if optimizer is None:
        report.add(
            "FAIL",
            "compile",
            "the model is not compiled: there is no optimizer to check",
            "model.compile(optimizer=..., loss=...) first, then run this check.",
        )
    elif effective % batch_size:
        report.add(
            "FAIL",
            "accumulation",
            f"the effective batch {effective} is not a multiple of the micro-batch "
            f"{batch_size}: no number of accumulation steps reaches it",
            f"use a micro-batch that divides {effective} (e.g. "
            f"{max(d for d in range(1, batch_size + 1) if effective % d == 0)}).",
        )
    elif steps != effective // batch_size:
        needed = effective // batch_size
        report.add(
            "FAIL",
            "accumulation",
            f"gradient_accumulation_steps={steps if steps > 1 else None}: {steps} x "
            f"{batch_size} = {steps * batch_size} examples per update, not {effective}",
            f"give the optimizer gradient_accumulation_steps={needed} "
            f"({effective} / {batch_size}), e.g. keras.optimizers.AdamW(..., "
            f"gradient_accumulation_steps={needed}).",
        )
    else:
        report.add(
            "PASS",
            "accumulation",
            f"{steps} micro-batches of {batch_size} = {effective} examples per update",
        )

    # 2. dtype policy of the layers (the output layer may differ: it should be float32)
    output_layers = set()
    outputs = getattr(model, "outputs", None) or []
    for tensor in outputs:
        history = getattr(tensor, "_keras_history", None)
        if history is not None:
            output_layers.add(id(history[0]))
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if layer.weights and not isinstance(layer, keras.Model)
    ]
    hidden = [layer for layer in layers if id(layer) not in output_layers] or layers
    other = [layer for layer in hidden if layer.dtype_policy.name != policy]
    if other:
        names = sorted({layer.dtype_policy.name for layer in other})
        report.add(
            "FAIL",
            "dtype policy",
            f"{len(other)} of {len(hidden)} layers (the output layer aside) use "
            f"{', '.join(map(repr, names))}, not {policy!r} (e.g. {other[0].name!r})",
            f'build the model after training.mixed_precision("{policy}"), or inside '
            f'`with training.mixed_precision("{policy}"):`: layers keep the policy they were '
            "built with, so setting it after building changes nothing.",
        )
    else:
        report.add(
            "PASS",
            "dtype policy",
            f"the layers compute in {wanted.compute_dtype} ({policy!r})",
        )

    # 3. output dtype
    dtypes = [keras.backend.standardize_dtype(t.dtype) for t in outputs]
    wrong = [d for d in dtypes if d != "float32"]
    if wrong:
        report.add(
            "FAIL",
            "output",
            f"the output is {wrong[0]}, not float32: the softmax and the loss lose precision",
            'give the output layer dtype="float32", e.g. keras.layers.Dense(10, '
            'activation="softmax", dtype="float32").',
        )
    elif dtypes:
        report.add("PASS", "output", "float32")

    # 4. loss scaling
    float16 = [layer for layer in layers if layer.compute_dtype == "float16"]
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or (
        getattr(optimizer, "loss_scale_factor", None) is not None
    )
    if float16 and optimizer is not None and not scaled:
        report.add(
            "FAIL",
            "loss scaling",
            f"{len(float16)} layer(s) compute in float16 but the optimizer does not scale "
            "the loss: small gradients underflow to zero",
            "wrap the optimizer, keras.optimizers.LossScaleOptimizer(optimizer), or set "
            'the policy with training.mixed_precision("mixed_float16") before building the '
            "model: compile adds loss scaling only when the model's policy is "
            "mixed_float16.",
        )
    elif float16 and optimizer is not None:
        report.add("PASS", "loss scaling", f"{type(optimizer).__name__} scales the loss")
    elif optimizer is not None and wanted.compute_dtype == "bfloat16":
        report.add("PASS", "loss scaling", "not needed: bfloat16 has float32's exponent range")
    elif optimizer is not None:
        report.add("PASS", "loss scaling", "not needed: no layer computes in float16")

    # 5. learning rate under accumulation
    if inner is not None:
        # Keras keeps the schedule itself (not its current value) in `_learning_rate`.
        rate = getattr(inner, "_learning_rate", None)
        if isinstance(rate, PerUpdateSchedule):
            described, warmup = _describe_schedule(rate.schedule)
            if rate.accumulation_steps != steps:
                report.add(
                    "FAIL",
                    "learning rate",
                    f"PerUpdateSchedule(accumulation_steps={rate.accumulation_steps}) but the "
                    f"optimizer accumulates {steps} micro-batches per update: the schedule "
                    f"runs {steps / rate.accumulation_steps:g}x too fast",
                    f"wrap the schedule with the optimizer's steps: "
                    f"training.per_update(schedule, {steps}).",
                )
            else:
                report.add(
                    "PASS",
                    "learning rate",
                    f"PerUpdateSchedule(accumulation_steps={steps}) over {described}",
                )
        elif isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            described, warmup = _describe_schedule(rate)
            if steps > 1:
                report.add(
                    "FAIL",
                    "learning rate",
                    "the schedule is not wrapped for accumulation: Keras advances it every "
                    f"micro-batch, so its warm-up and decay run {steps}x too fast",
                    "write the schedule in updates and wrap it: "
                    f"training.per_update(schedule, {steps}) "
                    f"(a PerUpdateSchedule with accumulation_steps={steps}).",
                )
            else:
                report.add("PASS", "learning rate", f"{described}, no accumulation to correct")
        else:
            warmup = None
            value = float(keras.ops.convert_to_numpy(inner.learning_rate))
            report.add(
                "WARN",
                "learning rate",
                f"a constant learning rate ({value:g}) where a warm-up + cosine schedule was asked",
                "training.per_update(training.warmup_cosine(peak, total_updates, "
                f"warmup_steps), {steps}) as the optimizer's learning rate.",
            )
        if warmup is False:
            report.add(
                "WARN",
                "warm-up",
                f"{described} has no warm-up: CosineDecay ignores warmup_steps unless "
                "warmup_target (the peak) is set",
                "training.warmup_cosine(peak, total_steps, warmup_steps) builds it.",
            )
    return report.finish(header)
