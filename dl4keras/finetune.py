"""Fine-tuning: freezing, unfreezing, block summaries and gradual unfreezing.

A pretrained network is fine-tuned in **blocks**: runs of consecutive layers
that share a name prefix (`stem`, `block1`, ..., `predictions`), listed
input -> output by `layer_blocks`. `freeze` makes a model non-trainable,
`unfreeze` makes everything from a layer, block, index or fraction of the
depth up to the top trainable again, `trainable_summary` shows the result, and
the `GradualUnfreezing` callback unfreezes blocks from the top during one
`fit` (ULMFiT style).

**The BatchNorm trap.** In Keras 3 a `BatchNormalization` layer with
`trainable=False` runs in inference mode even inside `fit`: it normalises with
its moving mean and variance and does not update them. Unfrozen, it would
normalise each step with the statistics of the current batch and overwrite
the moving statistics learned on the large source dataset. With small batches
(noisy statistics) or another domain (different statistics) this shifts the
inputs of every pretrained layer after it, and the first fine-tuning epochs
wreck the features instead of refining them. `unfreeze` therefore leaves
BatchNorm layers frozen by default (`keep_batchnorm_frozen=True`).

After changing `trainable`, compile the model again before `fit`: Keras builds
the train step and the optimizer's variable list once. `GradualUnfreezing`
handles this itself within one `fit`.

Per-block learning rates are `dl4keras.layerwise_lr.LayerwiseLR`; domain
adaptation is `dl4keras.dann`.

Examples:
    ```python
    import keras
    import numpy as np

    from dl4keras import backbones, finetune

    extractor = backbones.build("tiny_resnet", input_shape=(32, 32, 3))  # pretrained
    model = backbones.attach_head(extractor, 5)
    finetune.freeze(model)
    finetune.unfreeze(model, "predictions")  # the head only, at first
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")

    images = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype="uint8")
    labels = np.arange(8) % 5  # 8 stand-ins for your labelled images
    unfreezing = finetune.GradualUnfreezing(["block3", "block2"])  # at epochs 1 and 2
    model.fit(images, labels, epochs=3, callbacks=[unfreezing], verbose=0)
    finetune.trainable_summary(model)  # block3 and block2 train now, their BatchNorm does not
    ```
"""

from __future__ import annotations

import difflib
import math
import warnings

import keras

__all__ = [
    "GradualUnfreezing",
    "block_name",
    "freeze",
    "layer_blocks",
    "trainable_summary",
    "unfreeze",
]

# Note: with the TensorFlow backend, `layer.trainable = value` does nothing when
# `layer.trainable` already equals `value` (Keras's AutoTrackable short-cut), so
# it does not cascade to the sublayers then. The code below sets each flag itself.


def _leaves(model):
    """`(layer, effectively_trainable)` for each layer, nested models flattened."""
    out, seen = [], set()

    def visit(container, parent_trainable):
        for layer in container.layers:
            if id(layer) not in seen:
                seen.add(id(layer))
                trainable = parent_trainable and layer.trainable
                if isinstance(layer, keras.Model):
                    visit(layer, trainable)
                else:
                    out.append((layer, trainable))

    visit(model, model.trainable)
    return out


def _is_bn(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def block_name(layer_name):
    """The block of a layer name: its part before the first `"_"`.

    Examples:
        >>> from dl4keras import finetune
        >>> finetune.block_name("block2_1_conv"), finetune.block_name("predictions")
        ('block2', 'predictions')
    """
    return layer_name.split("_", 1)[0] or layer_name


def layer_blocks(model) -> list[tuple[str, list[keras.layers.Layer]]]:
    """Groups the layers of `model` into named blocks, ordered input -> output.

    Nested models (e.g. a backbone inside a classifier) are flattened.
    A layer's block is its name up to the first "_" ("block2_1_conv" -> "block2",
    "stem_bn" -> "stem", "conv3_block1_1_conv" -> "conv3", "head" -> "head").
    Layers without weights (InputLayer, ReLU, Add, pooling, Rescaling, Dropout) are
    left out. Consecutive layers with the same block name form one block.

    Args:
        model: a built `keras.Model`.

    Returns:
        A list of `(block_name, layers)` pairs; a name recurs if its layers
        are not consecutive.

    Examples:
        >>> from dl4keras import backbones, finetune
        >>> model = backbones.attach_head(backbones.build("tiny_resnet"), 5)
        >>> [(name, len(layers)) for name, layers in finetune.layer_blocks(model)]
        [('stem', 2), ('block1', 6), ('block2', 6), ('block3', 6), ('predictions', 1)]
    """
    blocks = []
    for layer, _ in _leaves(model):
        if layer.weights:
            name = block_name(layer.name)
            if blocks and blocks[-1][0] == name:
                blocks[-1][1].append(layer)
            else:
                blocks.append((name, [layer]))
    return blocks


def freeze(model):
    """Makes every layer of `model`, nested models included, non-trainable.

    Args:
        model: a `keras.Model`.

    Returns:
        `model`, for chaining.

    Examples:
        >>> from dl4keras import backbones, finetune
        >>> model = finetune.freeze(backbones.attach_head(backbones.build("tiny_resnet"), 5))
        >>> len(model.trainable_weights)
        0
    """
    for layer in model._flatten_layers():
        layer.trainable = False
    return model


def _start_index(model, from_layer):
    """Index in `_leaves(model)` of the lowest layer that `from_layer` designates."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    leaves = [layer for layer, _ in _leaves(model)]
    position = {id(layer): i for i, layer in enumerate(leaves)}
    blocks = layer_blocks(model)
    if from_layer is None:
        return 0
    if isinstance(from_layer, bool) or not isinstance(from_layer, int | float | str):
        raise ValueError(
            "`from_layer` must be None, a layer or block name, an int index or a float "
            f"fraction in (0, 1]. Received: from_layer={from_layer!r}"
        )
    if isinstance(from_layer, int):
        weighted = [layer for _, layers in blocks for layer in layers]
        n = len(weighted)
        if not -n <= from_layer < n:
            raise ValueError(
                f"`from_layer` index {from_layer} is out of range: {model.name!r} has {n} "
                f"layer{'' if n == 1 else 's'} with weights, so the index must be in "
                f"[{-n}, {n - 1}]."
            )
        return position[id(weighted[from_layer])]
    if isinstance(from_layer, float):
        if not 0.0 < from_layer <= 1.0:
            raise ValueError(
                "`from_layer` as a fraction of the depth must be in (0, 1]. "
                f"Received: from_layer={from_layer!r}"
            )
        top = math.ceil(round(from_layer * len(blocks), 9))
        return position[id(blocks[len(blocks) - top][1][0])]
    by_name = {layer.name: layer for layer in leaves}
    if from_layer in by_name:
        return position[id(by_name[from_layer])]
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.Model) and layer.name == from_layer:
            inside = [position[id(x)] for x, _ in _leaves(layer) if id(x) in position]
            if inside:
                return min(inside)
    matches = [i for i, (name, _) in enumerate(blocks) if name == from_layer]
    if len(matches) > 1:
        raise ValueError(
            f"Block name {from_layer!r} is ambiguous: blocks {matches} of {model.name!r} have "
            "it. Pass a layer name or an int index instead."
        )
    if matches:
        return position[id(blocks[matches[0]][1][0])]
    names = sorted({*by_name, *(name for name, _ in blocks)})
    close = difflib.get_close_matches(from_layer, names, n=5, cutoff=0.5)
    hint = f" Did you mean one of {close}?" if close else ""
    raise ValueError(
        f"`from_layer`={from_layer!r} is neither a layer nor a block of {model.name!r}.{hint} "
        f"Blocks: {[name for name, _ in blocks]}."
    )


def _unfreeze_from(model, start, keep_batchnorm_frozen):
    """Makes leaves `start:` trainable; returns the names of those it changed."""
    leaves = _leaves(model)
    for layer in model._flatten_layers():  # containers on, then each leaf as wanted
        if isinstance(layer, keras.Model):
            layer.trainable = True
    made = []
    for i, (layer, was_trainable) in enumerate(leaves):
        keep = i < start or (keep_batchnorm_frozen and _is_bn(layer))
        layer.trainable = was_trainable if keep else True
        if layer.trainable and not was_trainable and layer.weights:
            made.append(layer.name)
    return made


def unfreeze(model, from_layer=None, keep_batchnorm_frozen=True):
    """Makes every layer from `from_layer` up to the top of `model` trainable.

    Layers below `from_layer` keep their state (usually frozen). Nested
    models are handled: their own `trainable` flags are set to True, which
    Keras requires for the layers inside to train, and the layers below
    `from_layer` inside them stay frozen. Compile the model again before `fit`.

    Args:
        model: a `keras.Model`, e.g. from `backbones.attach_head`.
        from_layer: where unfreezing starts: `None` (everything), a layer
            name, a block name from `layer_blocks` (e.g. `"block3"`), the name
            of a nested model, an int index into the layers of `layer_blocks`
            (negative counts from the top), or a float fraction in (0, 1] of
            the blocks from the top: `0.25` unfreezes the top
            `ceil(0.25 * len(layer_blocks(model)))` blocks.
        keep_batchnorm_frozen: leave BatchNormalization layers as they are
            (frozen after `freeze`), so that they keep running in inference
            mode with their pretrained statistics: see "The BatchNorm trap" above.

    Returns:
        The names of the layers with weights that this call made trainable,
        input -> output. Empty, with a `UserWarning`, if none was frozen.

    Raises:
        ValueError: an unknown name (listing close matches) or an ambiguous
            block name, an index out of range, a fraction outside (0, 1], or
            a `from_layer` of another type.
        TypeError: `model` is not a `keras.Model`.

    Examples:
        >>> from dl4keras import backbones, finetune
        >>> model = finetune.freeze(backbones.attach_head(backbones.build("tiny_resnet"), 5))
        >>> finetune.unfreeze(model, "block3")  # BatchNorm layers stay frozen
        ['block3_1_conv', 'block3_proj_conv', 'block3_2_conv', 'predictions']
    """
    made = _unfreeze_from(model, _start_index(model, from_layer), keep_batchnorm_frozen)
    if not made:
        bn = " (BatchNorm layers were left frozen)" if keep_batchnorm_frozen else ""
        warnings.warn(
            f"unfreeze(from_layer={from_layer!r}) changed nothing: no layer of {model.name!r} "
            f"from there up was frozen{bn}.",
            UserWarning,
            stacklevel=2,
        )
    return made


def trainable_summary(model, print_fn=print):
    """Shows, block by block, how many parameters of `model` train and how many are frozen.

    Args:
        model: a `keras.Model`.
        print_fn: called with each line of the table (ending with the
            totals); `None` prints nothing.

    Returns:
        One dict per block, input -> output, with keys `"block"`, `"layers"`,
        `"trainable_layers"`, `"trainable_params"`, `"frozen_params"` and
        `"status"`: `"trainable"`, `"frozen"`, `"partial"` or
        `"trainable (BN frozen)"`. Frozen parameters include the BatchNorm
        moving statistics, which no optimizer trains.

    Examples:
        >>> from dl4keras import backbones, finetune
        >>> model = finetune.freeze(backbones.attach_head(backbones.build("tiny_resnet"), 5))
        >>> _ = finetune.unfreeze(model, "block3")
        >>> rows = finetune.trainable_summary(model)
        block         layers    trainable       frozen  status
        ------------------------------------------------------
        stem             0/2            0          992  frozen
        block1           0/6            0       36,672  frozen
        block2           0/6            0      130,176  frozen
        block3           3/6      516,096        2,304  trainable (BN frozen)
        predictions      1/1          965            0  trainable
        ------------------------------------------------------
        total                     517,061      170,144
        >>> rows[3]["block"], rows[3]["trainable_layers"], rows[3]["status"]
        ('block3', 3, 'trainable (BN frozen)')
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: {type(model).__name__}")
    trainable_ids = {id(v) for v in model.trainable_weights}
    rows = []
    for name, layers in layer_blocks(model):
        live = [x for x in layers if any(id(v) in trainable_ids for v in x.weights)]
        dead = [x for x in layers if all(id(v) not in trainable_ids for v in x.weights)]
        sizes = [(math.prod(v.shape), id(v) in trainable_ids) for x in layers for v in x.weights]
        status = "frozen" if not live else "trainable" if not dead else "partial"
        if live and dead and all(_is_bn(x) for x in dead):
            status = "trainable (BN frozen)"
        rows.append(
            dict(
                block=name,
                layers=len(layers),
                trainable_layers=len(live),
                trainable_params=sum(size for size, on in sizes if on),
                frozen_params=sum(size for size, on in sizes if not on),
                status=status,
            )
        )
    if print_fn is not None:
        w = max(len(r["block"]) for r in [*rows, {"block": "total"}])
        head = f"{'block':<{w}}  {'layers':>7}  {'trainable':>11}  {'frozen':>11}  status"
        print_fn(head)
        print_fn("-" * len(head))
        for r in rows:
            n = f"{r['trainable_layers']}/{r['layers']}"
            t, f = r["trainable_params"], r["frozen_params"]
            print_fn(f"{r['block']:<{w}}  {n:>7}  {t:>11,}  {f:>11,}  {r['status']}")
        print_fn("-" * len(head))
        t, f = (sum(r[k] for r in rows) for k in ("trainable_params", "frozen_params"))
        print_fn(f"{'total':<{w}}  {'':>7}  {t:>11,}  {f:>11,}")
    return rows


def _trainable_when_unfrozen(layer):
    """The variables of `layer` that train once it is unfrozen (not BN moving statistics)."""
    layers = [(x, x.trainable) for x in layer._flatten_layers()]
    flags = [(v, v.trainable) for v in layer.weights]
    for x, _ in layers:
        x.trainable = True
    variables = list(layer.trainable_weights)
    for x, flag in layers:  # parents first: a parent's change cascades, then children
        x.trainable = flag
    for v, flag in flags:
        v.trainable = flag
    return variables


def _rebuilds_optimizer():
    """Whether `GradualUnfreezing` rebuilds the optimizer at each step (JAX, PyTorch)."""
    return keras.backend.backend() in ("jax", "torch")


def _rebuilt_optimizer(optimizer, variables):
    """A copy of `optimizer` (same config) built over `variables`, with its state.

    Every variable of the copy named like one of `optimizer`'s (the step count,
    the learning rate, the slots of a weight, named after the weight's path)
    takes its value.
    """
    copy = optimizer.__class__.from_config(optimizer.get_config())
    copy.build(variables)
    old = {v.name: v for v in optimizer.variables}
    for variable in copy.variables:
        source = old.get(variable.name)
        if source is not None and tuple(source.shape) == tuple(variable.shape):
            variable.assign(source)
    return copy


class GradualUnfreezing(keras.callbacks.Callback):
    """Unfreezes blocks from the top on an epoch schedule, during one `fit` (ULMFiT).

    At the start of each scheduled epoch it calls `unfreeze(model, block)`:
    that block and everything above it become trainable. Epochs count from 0,
    as `fit(initial_epoch=...)` and `on_epoch_begin` do, so `start_epoch=1`
    unfreezes the first block when the progress bar shows "Epoch 2/...".

    Keras traces the train step and builds the optimizer once, for the
    weights trainable then. So that newly unfrozen weights really train, this
    callback rebuilds the train function (`model.make_train_function(force=True)`)
    at each step, and:

    - on TensorFlow, builds the optimizer at the start of `fit` over every
      weight it may unfreeze (Adam's moments for them are created then);
    - on JAX and PyTorch, where `fit` builds the optimizer before any callback
      runs and the JAX train step needs it built over exactly the trainable
      weights, replaces `model.optimizer` at each step by a copy (same class
      and config) built over the new trainable weights, carrying over its
      state: the step count, the learning rate and the slots (momenta) of the
      weights that were already training.

    Works with `steps_per_execution > 1` and `jit_compile=True`.

    Args:
        blocks: blocks to unfreeze, top to bottom, one per step (block names
            or any `from_layer` of `unfreeze`); `None`: every block with
            frozen layers when `fit` starts, from the top.
        every: epochs between two steps.
        start_epoch: epoch of the first step (0 = the first epoch).
        schedule: instead of `blocks`, `every` and `start_epoch`, an explicit
            `{epoch: block}` dict, e.g. `{1: "block3", 3: "block2"}`.
        keep_batchnorm_frozen: passed to `unfreeze`.
        verbose: 1 prints a line at each step, 0 is silent.

    Attributes:
        unfrozen: `{epoch: [names of the layers made trainable then]}`.

    Raises:
        ValueError: bad arguments; when `fit` starts, an unknown block, a
            model that is not compiled, or (TensorFlow) an optimizer built by
            an earlier `fit` without the weights to unfreeze (compile again,
            with a new optimizer).

    Examples:
        >>> import keras
        >>> import numpy as np
        >>> from dl4keras import backbones, finetune
        >>> model = finetune.freeze(backbones.attach_head(backbones.build("tiny_resnet"), 5))
        >>> finetune.unfreeze(model, "predictions")
        ['predictions']
        >>> model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        >>> callback = finetune.GradualUnfreezing(["block3", "block2"], every=2)  # epochs 1, 3
        >>> images, labels = np.zeros((4, 32, 32, 3), "uint8"), np.arange(4)  # 4 stand-ins
        >>> history = model.fit(images, labels, epochs=4, callbacks=[callback], verbose=0)
        Epoch 2: GradualUnfreezing unfroze ['block3'] (3 layers); 517,061 trainable parameters now.
        Epoch 4: GradualUnfreezing unfroze ['block2'] (3 layers); 646,085 trainable parameters now.
        >>> callback.unfrozen[1]  # layers made trainable at epoch 1 (the second)
        ['block3_1_conv', 'block3_proj_conv', 'block3_2_conv']
    """

    def __init__(
        self,
        blocks=None,
        every=1,
        start_epoch=1,
        schedule=None,
        keep_batchnorm_frozen=True,
        verbose=1,
    ):
        super().__init__()
        for arg, value, low in (("every", every, 1), ("start_epoch", start_epoch, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"`{arg}` must be an integer >= {low}. Received: {value!r}")
        if schedule is not None and blocks is not None:
            raise ValueError("Pass either `blocks` or `schedule`, not both.")
        if schedule is not None and (
            not isinstance(schedule, dict)
            or not schedule
            or any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in schedule)
        ):
            raise ValueError(
                "`schedule` must be a non-empty dict {epoch (int >= 0): block name}. "
                f"Received: schedule={schedule!r}"
            )
        if blocks is not None and (isinstance(blocks, str) or not isinstance(blocks, list | tuple)):
            raise ValueError(f"`blocks` must be a list of block names or None, not {blocks!r}")
        if verbose not in (0, 1):
            raise ValueError(f"`verbose` must be 0 or 1. Received: verbose={verbose!r}")
        self.blocks, self.every, self.start_epoch = blocks, every, start_epoch
        self.schedule = schedule
        self.keep_batchnorm_frozen = keep_batchnorm_frozen
        self.verbose = verbose
        self.unfrozen = {}
        self._plan = []

    def _make_plan(self, model):
        """`[(epoch, start index in _leaves(model), label)]`, in epoch order."""
        if self.schedule is not None:
            return [(e, _start_index(model, b), b) for e, b in sorted(self.schedule.items())]
        if self.blocks is not None:
            targets = [(_start_index(model, b), b) for b in self.blocks]
        else:  # by position: block names may recur
            leaves = _leaves(model)
            position = {id(layer): i for i, (layer, _) in enumerate(leaves)}
            frozen = {id(layer) for layer, on in leaves if not on}
            bn = self.keep_batchnorm_frozen
            targets = [
                (position[id(layers[0])], name)
                for name, layers in layer_blocks(model)[::-1]
                if any(id(x) in frozen and not (bn and _is_bn(x)) for x in layers)
            ]
        return [(self.start_epoch + i * self.every, *t) for i, t in enumerate(targets)]

    def on_train_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            raise ValueError("GradualUnfreezing needs a compiled model: call `model.compile`.")
        self._plan = self._make_plan(self.model)
        if not self._plan:
            warnings.warn(
                "GradualUnfreezing: no layer is frozen, nothing to unfreeze.", stacklevel=2
            )
            return
        if _rebuilds_optimizer():
            return  # on_epoch_begin rebuilds it over the weights trainable then
        lowest = min(start for _, start, _ in self._plan)
        variables = {id(v): v for v in self.model.trainable_weights}
        for layer, _ in _leaves(self.model)[lowest:]:
            if not (self.keep_batchnorm_frozen and _is_bn(layer)):
                variables.update((id(v), v) for v in _trainable_when_unfrozen(layer))
        if not optimizer.built:
            optimizer.build(list(variables.values()))
        elif any(
            optimizer._var_key(v) not in optimizer._trainable_variables_indices
            for v in variables.values()
        ):
            raise ValueError(
                "GradualUnfreezing: the optimizer was already built (by an earlier `fit`) for "
                "fewer weights than it will unfreeze, and a Keras optimizer cannot grow. "
                "Compile the model again with a new optimizer before this `fit`."
            )

    def on_epoch_begin(self, epoch, logs=None):
        due = [step for step in self._plan if step[0] <= epoch]
        if not due:
            return
        self._plan = [step for step in self._plan if step[0] > epoch]
        made = []
        for _, start, _ in due:
            made += _unfreeze_from(self.model, start, self.keep_batchnorm_frozen)
        self.unfrozen[epoch] = made
        if made:
            if _rebuilds_optimizer():
                self.model.optimizer = _rebuilt_optimizer(
                    self.model.optimizer, self.model.trainable_variables
                )
            self.model.make_train_function(force=True)
        if self.verbose:
            count = sum(math.prod(v.shape) for v in self.model.trainable_weights)
            print(
                f"\nEpoch {epoch + 1}: GradualUnfreezing unfroze {[b for *_, b in due]} "
                f"({len(made)} layer{'' if len(made) == 1 else 's'}); "
                f"{count:,} trainable parameters now."
            )
