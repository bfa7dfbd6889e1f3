"""Self-check of Exercise 4.2: a model set up for the fine-tuning stage."""

from __future__ import annotations

from dl4keras.check import _common

__all__ = ["fine_tuning_setup"]


def _bn_layers(model):
    import keras

    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def _moves_statistics(model, bns):
    """The BatchNorm layers whose moving statistics change in a training-mode call.

    Runs `model(images, training=True)` once on random images and puts the
    statistics back afterwards: the model is left as it was.
    """
    import warnings

    import keras
    import numpy as np

    shape = tuple(8 if d is None else d for d in model.inputs[0].shape)
    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    saved = [
        [keras.ops.convert_to_numpy(v) for v in (b.moving_mean, b.moving_variance)] for b in bns
    ]
    with warnings.catch_warnings():  # a named input given as one array: fine
        warnings.simplefilter("ignore", UserWarning)
        model(images, training=True)
    moved = []
    for layer, (mean, variance) in zip(bns, saved):
        now = keras.ops.convert_to_numpy(layer.moving_mean)
        if not np.allclose(now, mean):
            moved.append(layer.name)
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(variance)
    return moved


def _expected_trainable(model, unfrozen_from):
    """`{block: params that should train}` when `unfrozen_from` and above train, BN frozen."""
    import math

    import keras

    from dl4keras import finetune

    blocks = finetune.layer_blocks(model)
    names = [name for name, _ in blocks]
    if unfrozen_from is None:
        start = 0
    elif unfrozen_from in names:
        start = names.index(unfrozen_from)
    else:
        raise ValueError(
            f"`unfrozen_from`={unfrozen_from!r} is not a block of {model.name!r}: blocks {names}."
        )
    expected = {}
    for i, (name, layers) in enumerate(blocks):
        count = 0
        if i >= start:
            for layer in layers:
                if not isinstance(layer, keras.layers.BatchNormalization):
                    count += sum(math.prod(v.shape) for v in layer.weights)
        expected[name] = expected.get(name, 0) + count
    return expected


def fine_tuning_setup(model, unfrozen_from="block3", head_learning_rate=None, verbose=True):
    """Checks a model after the fine-tuning stage of Exercise 4.2.

    The stage: unfreeze the backbone from the block `unfrozen_from` up (the
    head stays trainable), keep BatchNorm frozen, compile again with a
    smaller learning rate, fit. Call it after that `fit` (or just before).
    It trains nothing and leaves the model as it was, and it names each
    usual mistake with its fix:

    - **BatchNorm**: a BatchNormalization layer is trainable, or its moving
      statistics change in a training-mode call (it left inference mode:
      `finetune.unfreeze` keeps BatchNorm frozen; `backbone.trainable = True`
      does not, and in Keras 3 calling the backbone with `training=False`
      while building the model does not keep it in inference mode either:
      `fit`'s `training=True` reaches the layers);
    - **trainable parameters**: the count is not the top block's and the
      head's weights (BatchNorm excluded); the feedback names the blocks
      that train but should not, or should but do not;
    - **recompiled**: the optimizer was built, by a `fit` before the
      unfreezing, for other variables than the model's trainable ones (the
      model was not compiled again: on TensorFlow the newly unfrozen layers
      do not move, on JAX and PyTorch the next `fit` raises);
    - **learning rate** (with `head_learning_rate`): the fine-tuning rate
      is not smaller than the head's.

    Args:
        model: the `keras.Model` of the exercise (augmentation, backbone, head).
        unfrozen_from: the lowest block that should train (a name from
            `finetune.layer_blocks(model)`), or `None` for every block.
        head_learning_rate: the learning rate of the head-only stage; if
            given, the fine-tuning rate should be at least 2× smaller.
        verbose: print the feedback.

    Returns:
        `True` if every check passes, `False` otherwise.

    Raises:
        ValueError: `model` is not a `keras.Model` or `unfrozen_from` is not
            one of its blocks.

    Examples:
        >>> import keras
        >>> from dl4keras import backbones, check, finetune
        >>> model = backbones.attach_head(backbones.build("tiny_resnet"), 5)
        >>> _ = finetune.freeze(model)
        >>> _ = finetune.unfreeze(model, "block3")
        >>> model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
        >>> check.fine_tuning_setup(model, head_learning_rate=1e-3)  # doctest: +ELLIPSIS
        Checking the fine-tuning set-up of 'tiny_resnet_classifier' (from 'block3' up):
        [PASS] BatchNorm: all 10 BatchNormalization layers are frozen and keep their
               statistics (inference mode)
        [PASS] trainable parameters: 517,061 = block3 (BatchNorm excluded) and the head
        [PASS] recompiled: compiled, not yet fitted: the next fit builds the optimizer
               for the 4 trainable layers
        [PASS] learning rate: 0.0001, 10x smaller than the head's 0.001
        All 4 checks pass: ready to fine-tune.
        True
        >>> _ = finetune.unfreeze(model, "block2", keep_batchnorm_frozen=False)
        >>> check.fine_tuning_setup(model)  # doctest: +ELLIPSIS
        Checking the fine-tuning set-up ...
        [FAIL] BatchNorm: ... of 10 BatchNormalization layers update their moving ...
        ...
        False
    """
    import keras
    import numpy as np

    from dl4keras import _validation

    if not isinstance(model, keras.Model):
        raise _validation.invalid("model", "a `keras.Model`", model)
    expected = _expected_trainable(model, unfrozen_from)
    lines, failed, passed = [], [], 0

    def add(ok, topic, text, fix=None):
        nonlocal passed
        lines.extend(_common.wrapped(f"[{'PASS' if ok else 'FAIL'}] ", f"{topic}: {text}"))
        if fix and not ok:
            lines.extend(_common.wrapped("  FIX: ", fix))
        if ok:
            passed += 1
        else:
            failed.append(topic)

    # 1. BatchNorm in inference mode
    bns = _bn_layers(model)
    trainable_bn = [b.name for b in bns if b.trainable]
    moved = _moves_statistics(model, bns) if bns else []
    if moved:
        add(
            False,
            "BatchNorm",
            f"{len(moved)} of {len(bns)} BatchNormalization layers update their moving "
            f"statistics in training (e.g. {moved[0]!r}): they left inference mode and "
            "will overwrite the pretrained statistics",
            "unfreeze with finetune.unfreeze(model, block), which keeps BatchNorm frozen "
            "(keep_batchnorm_frozen=True), or set layer.trainable = False on every "
            "BatchNormalization layer; then compile again.",
        )
    elif trainable_bn:
        add(
            True,
            "BatchNorm",
            f"inference mode (called with training=False), but {len(trainable_bn)} of "
            f"{len(bns)} BatchNormalization layers train their scale and offset",
        )
    elif bns:
        add(
            True,
            "BatchNorm",
            f"all {len(bns)} BatchNormalization layers are frozen and keep their "
            "statistics (inference mode)",
        )
    else:
        add(True, "BatchNorm", "the model has no BatchNormalization layer")

    # 2. trainable-parameter count, block by block
    from dl4keras import finetune

    rows = finetune.trainable_summary(model, print_fn=None)
    actual = {}
    for row in rows:
        actual[row["block"]] = actual.get(row["block"], 0) + row["trainable_params"]
    want, got = sum(expected.values()), sum(actual.values())
    names = list(expected)
    if unfrozen_from is None:
        scope = "every block (BatchNorm excluded)"
    elif names.index(unfrozen_from) >= len(names) - 2:
        scope = f"{unfrozen_from} (BatchNorm excluded) and the head"
    else:
        scope = f"{unfrozen_from} and the blocks above (BatchNorm excluded), and the head"
    if got == want:
        add(True, "trainable parameters", f"{got:,} = {scope}")
    else:
        extra = [b for b in actual if actual[b] > expected.get(b, 0) and not expected.get(b)]
        missing = [b for b in expected if expected[b] and actual.get(b, 0) == 0]
        partial = [
            b for b in expected if b not in extra + missing and actual.get(b, 0) != expected[b]
        ]
        detail = []
        if missing:
            detail.append(f"frozen but should train: {', '.join(missing)}")
        if extra:
            detail.append(f"train but should be frozen: {', '.join(extra)}")
        if partial:
            detail.append(f"partly trainable: {', '.join(partial)} (BatchNorm weights?)")
        fix = (
            f'finetune.freeze(model), then finetune.unfreeze(model, "{unfrozen_from}"): '
            "everything from that block up trains (the head too), BatchNorm stays frozen; "
            "check with finetune.trainable_summary(model)."
            if unfrozen_from is not None
            else "finetune.unfreeze(model) makes every block trainable, BatchNorm aside."
        )
        add(
            False,
            "trainable parameters",
            f"{got:,} train, expected {want:,} ({scope}); " + "; ".join(detail),
            fix,
        )

    # 3. recompiled after unfreezing
    optimizer = getattr(model, "optimizer", None)
    variables = model.trainable_variables
    if optimizer is None:
        add(
            False, "recompiled", "the model is not compiled", "model.compile(...) after unfreezing."
        )
    else:
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        built_for = getattr(inner, "_trainable_variables", None)
        if not getattr(inner, "built", False) or built_for is None:
            layers = {v.path.rsplit("/", 1)[0] for v in variables}
            add(
                True,
                "recompiled",
                "compiled, not yet fitted: the next fit builds the optimizer for the "
                f"{len(layers)} trainable layer{'s' * (len(layers) != 1)}",
            )
        else:
            ids = {id(v) for v in built_for}
            left_out = [v for v in variables if id(v) not in ids]
            if left_out:
                add(
                    False,
                    "recompiled",
                    f"the optimizer was built for {len(built_for)} variables by a fit "
                    f"before the unfreezing; {len(left_out)} trainable variables (e.g. "
                    f"{left_out[0].path!r}) get no updates: the model was not compiled again",
                    "call model.compile(...) after finetune.unfreeze and before fit: Keras "
                    "builds the train step and the optimizer's variables once per compile.",
                )
            else:
                add(
                    True,
                    "recompiled",
                    f"the optimizer updates all {len(variables)} trainable variables",
                )

    # 4. learning rate
    if head_learning_rate is not None and optimizer is not None:
        head_learning_rate = _validation.positive_float("head_learning_rate", head_learning_rate)
        try:
            rate = float(np.asarray(keras.ops.convert_to_numpy(optimizer.learning_rate)))
        except (TypeError, ValueError, AttributeError):
            rate = None
        if rate is None:
            add(True, "learning rate", "a schedule: not compared with the head's rate")
        elif rate <= head_learning_rate / 2:
            add(
                True,
                "learning rate",
                f"{rate:g}, {head_learning_rate / rate:.3g}x smaller than the head's "
                f"{head_learning_rate:g}",
            )
        else:
            add(
                False,
                "learning rate",
                f"{rate:g} is not smaller than the head's {head_learning_rate:g}: large "
                "steps wreck the pretrained features (catastrophic forgetting)",
                f"compile with about a tenth of it, e.g. Adam({head_learning_rate / 10:g}).",
            )

    total = passed + len(failed)
    scope = "every block" if unfrozen_from is None else f"from {unfrozen_from!r} up"
    header = f"Checking the fine-tuning set-up of {model.name!r} ({scope}):"
    if failed:
        end = f"{passed}/{total} checks pass; fix: {', '.join(failed)}."
    else:
        end = f"All {total} checks pass: ready to fine-tune."
    if verbose:
        print("\n".join([*_common.wrapped("", header), *lines, *_common.wrapped("", end)]))
    return not failed
