"""Data-parallel training with `tf.distribute.MirroredStrategy` (TensorFlow only).

**TensorFlow only, by nature.** `tf.distribute` is TensorFlow's API: the
functions here that build or inspect a strategy (`mirrored_strategy`,
`check_data_parallel`) need the TensorFlow backend of Keras and raise a
`RuntimeError` on another one, naming the backend and its equivalent. On
JAX, Keras's own `keras.distribution.DataParallel` does data-parallel
training with `model.fit` unchanged: build, compile and fit inside its
`scope()` (or after `keras.distribution.set_distribution`); on a CPU,
`XLA_FLAGS=--xla_force_host_platform_device_count=2`, set before JAX starts,
gives 2 devices (`tests/test_distribute.py` checks that it trains to the
same weights as one device). On PyTorch, Keras 3.15 has no data-parallel API
(`torch.nn.parallel.DistributedDataParallel` wraps the model). The
batch-size and learning-rate rules (`global_batch_size`,
`per_replica_batch_size`, `scaled_learning_rate`) and `compatibility()` are
plain Python and work on every backend.

**Data parallelism.** `MirroredStrategy` keeps one copy (replica) of the
model on each device. `model.fit(batch_size=B)` splits every batch of `B`
examples (the *global* batch) into one slice per replica; each replica
computes the gradient of its slice, the gradients are summed across
replicas (all-reduce), and every replica applies the same update. Keras
scales each replica's loss by `1 / num_replicas`, so the update equals one
device's update on the whole batch `B` (to 3e-7 in `tests/test_distribute.py`): the global
batch is what matters to the optimizer, the per-replica batch to each
device's memory.

**What this module adds.**

- `mirrored_strategy(num_devices)`: the strategy on the real GPUs when there
  are any, otherwise on `num_devices` *logical* CPU devices carved out of
  the one CPU, so that data parallelism can be taught and tested on a
  laptop. Logical devices must be configured before TensorFlow runs its
  first operation: call it at the top of a script, or in a fresh process.
- `compatibility()`: which techniques combine with `MirroredStrategy` in
  `model.fit` (each claim checked on 2 logical CPUs with Keras 3.15.1).
- `check_data_parallel(model)`: a clear error instead of a deep trace for the
  one that does not: `gradient_accumulation_steps` under `MirroredStrategy`
  (keras#20582).
- `global_batch_size`, `per_replica_batch_size`, `scaled_learning_rate`:
  the batch-size bookkeeping and the linear scaling rule.

Examples:
    ```python
    from dl4keras.training import distribute

    print(distribute.global_batch_size(32, 4))  # 128: 32 per replica on 4 replicas
    print(distribute.scaled_learning_rate(0.1, batch_size=1024, base_batch_size=256))  # 0.4
    for technique, (works, note) in distribute.compatibility().items():
        print(f"{technique:30} {'yes' if works else 'NO'}")
    ```

    On the TensorFlow backend, `distribute.mirrored_strategy()` at the very top
    of a script (before any other TensorFlow or Keras computation) mirrors
    over every GPU, or over 2 logical CPUs without one. Later in a process it
    can only use the devices TensorFlow already has, here one CPU:

    ```python
    # requires: tensorflow
    import keras
    from dl4keras.training import distribute

    strategy = distribute.mirrored_strategy(num_devices=1, device_type="CPU")
    with strategy.scope():  # build and compile the model inside the scope
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    distribute.check_data_parallel(model)
    batch_size = distribute.global_batch_size(32, strategy)  # 32 per replica
    x, y = np.ones((64, 4), "float32"), np.ones((64, 1), "float32")
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    ```
"""

from __future__ import annotations

import keras

from dl4keras import _validation

__all__ = [
    "ACCUMULATION_ISSUE",
    "check_data_parallel",
    "compatibility",
    "global_batch_size",
    "mirrored_strategy",
    "per_replica_batch_size",
    "scaled_learning_rate",
]

ACCUMULATION_ISSUE = "https://github.com/keras-team/keras/issues/20582"
"""keras#20582: `gradient_accumulation_steps` in `model.fit` under `MirroredStrategy`."""

_COMPATIBILITY = {
    "learning-rate schedules": (
        True,
        "Any keras.optimizers.schedules schedule (and dl4keras's) works: the optimizer "
        "step is shared by the replicas, and counts global batches.",
    ),
    "mixed precision": (
        True,
        'Both policies work. Under "mixed_float16", compile still wraps the optimizer in '
        "a LossScaleOptimizer, which handles the replicas; its dynamic scale may skip "
        "other early steps than on one device (each replica's loss is 1/replicas of the "
        'total). "mixed_bfloat16" needs no loss scaling.',
    ),
    "EMA": (
        True,
        "An optimizer's use_ema=True with the keras.callbacks.SwapEMAWeights callback "
        "works: the averaged weights are mirrored like the weights.",
    ),
    "gradient accumulation in fit": (
        False,
        "An optimizer with gradient_accumulation_steps fails in model.fit under "
        "MirroredStrategy (keras#20582), even on one device: RuntimeError '`merge_call` "
        "called while defining a new graph or a tf.function'. Raise the global batch "
        "over more replicas instead, or accumulate without a strategy. "
        "check_data_parallel(model) raises a clear error first.",
    ),
    "callbacks": (
        True,
        "EarlyStopping, ModelCheckpoint, ReduceLROnPlateau and the other Keras "
        "callbacks work; they see the losses averaged over the replicas.",
    ),
}


_EQUIVALENTS = {
    "jax": (
        "On JAX, use Keras's own data parallelism, `keras.distribution.DataParallel`: "
        "build, compile and fit the model inside `keras.distribution.DataParallel("
        "devices=keras.distribution.list_devices()).scope()` (or call "
        "`keras.distribution.set_distribution(...)` first); model.fit is unchanged and "
        "splits each batch over the devices. On a CPU, set "
        'XLA_FLAGS="--xla_force_host_platform_device_count=2" before JAX starts for 2 devices.'
    ),
    "torch": (
        "On PyTorch, Keras has no data-parallel API of its own (Keras 3.15's "
        "`keras.distribution` has no PyTorch implementation): wrap the model in "
        "`torch.nn.parallel.DistributedDataParallel` (the keras.io guide 'Multi-GPU "
        "distributed training with PyTorch'), or use the JAX backend and "
        "`keras.distribution.DataParallel`."
    ),
}
"""What to use instead of `tf.distribute` on each other Keras backend."""


def _require_tensorflow(what):
    """Imports and returns `tensorflow`, or raises a clear `RuntimeError` on another backend."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        instead = _EQUIVALENTS.get(
            backend,
            "On JAX, Keras's own `keras.distribution.DataParallel` does data-parallel "
            "training with model.fit unchanged.",
        )
        raise RuntimeError(
            f"{what} needs the TensorFlow backend of Keras (tf.distribute is TensorFlow's "
            f"API), but the Keras backend is {backend!r}. {instead} Or set "
            'KERAS_BACKEND="tensorflow" before importing Keras.'
        )
    import tensorflow as tf

    return tf


def _replicas(strategy):
    """The number of replicas of `strategy` (a `tf.distribute.Strategy`) or a positive int."""
    if _validation.is_positive_int(strategy):
        return int(strategy)
    replicas = getattr(strategy, "num_replicas_in_sync", None)
    if not _validation.is_positive_int(replicas):
        raise _validation.invalid(
            "strategy",
            "a `tf.distribute.Strategy` (with `num_replicas_in_sync`) or a positive "
            "number of replicas",
            strategy,
        )
    return int(replicas)


def mirrored_strategy(num_devices=None, device_type=None):
    """A `tf.distribute.MirroredStrategy` on the GPUs, or on logical CPU devices.

    With GPUs (and `device_type` not `"CPU"`) the strategy mirrors the model
    on the first `num_devices` GPUs (all of them by default). Without a GPU
    it splits the CPU into `num_devices` logical devices (2 by default) with
    `tf.config.set_logical_device_configuration` and mirrors over them: the
    same code, the same all-reduce, no speed-up (the logical devices share
    the cores), for teaching and tests.

    Logical devices can only be configured before TensorFlow initialises
    its devices (its first operation, or listing the logical devices). Call
    this at the top of the script or notebook; calling it again in the same
    process returns a strategy over the devices configured the first time.

    TensorFlow only: on another Keras backend it raises a `RuntimeError`
    pointing at `keras.distribution.DataParallel`.

    Args:
        num_devices: number of replicas, a positive integer; `None`: every
            GPU, or 2 logical CPUs.
        device_type: `"GPU"`, `"CPU"` or `None` (GPUs when there are any).

    Returns:
        A `tf.distribute.MirroredStrategy` whose `num_replicas_in_sync` is the
        number of devices used.

    Raises:
        ValueError: `num_devices` not a positive integer, more GPUs asked
            than there are, or a bad `device_type`.
        RuntimeError: TensorFlow is already initialised with fewer logical
            CPU devices than asked (call this first, or in a fresh process),
            or the Keras backend is not TensorFlow.

    Examples:
        In a fresh process, `mirrored_strategy(2)` on a machine without GPUs
        gives 2 replicas; once TensorFlow runs, only the devices it has:

        ```python
        # requires: tensorflow
        from dl4keras.training import distribute

        strategy = distribute.mirrored_strategy(num_devices=1, device_type="CPU")
        print(strategy.num_replicas_in_sync)  # 1
        ```
    """
    num_devices = _validation.positive_int("num_devices", num_devices, allow_none=True)
    if device_type is not None:
        _validation.one_of("device_type", device_type, ("GPU", "CPU"))
    tf = _require_tensorflow("mirrored_strategy")
    gpus = tf.config.list_physical_devices("GPU")
    if device_type == "GPU" and not gpus:
        raise ValueError(
            'Received device_type="GPU", but TensorFlow sees no GPU. Use device_type="CPU" '
            "(or None) for logical CPU devices."
        )
    if gpus and device_type != "CPU":
        if num_devices is not None and num_devices > len(gpus):
            raise ValueError(
                f"Received an invalid value for argument `num_devices`, expected at most the "
                f"{len(gpus)} GPU(s) TensorFlow sees. Received: num_devices={num_devices}"
            )
        devices = tf.config.list_logical_devices("GPU")[: num_devices or len(gpus)]
        return tf.distribute.MirroredStrategy([d.name for d in devices])

    num_devices = num_devices or 2
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError as error:  # TensorFlow has initialised its devices already
        have = len(tf.config.list_logical_devices("CPU"))
        if have < num_devices:
            raise RuntimeError(
                f"mirrored_strategy cannot create {num_devices} logical CPU devices: "
                f"TensorFlow is already initialised with {have}, and logical devices can "
                "only be configured before TensorFlow's first operation. Call "
                "mirrored_strategy() at the very top of the script, before any other "
                "TensorFlow or Keras computation, or run it in a fresh Python process "
                f"(restart the notebook kernel). TensorFlow said: {error}"
            ) from None
    devices = tf.config.list_logical_devices("CPU")[:num_devices]
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def compatibility():
    """Which training techniques combine with `MirroredStrategy` in `model.fit`.

    Checked with Keras 3.15.1 and TensorFlow 2.21 on 2 logical CPU devices
    (`tests/test_distribute.py` re-checks every claim):

    | technique | works | |
    |---|---|---|
    | learning-rate schedules | yes | the optimizer step counts global batches |
    | mixed precision | yes | `"mixed_float16"` (automatic loss scaling), `"mixed_bfloat16"` |
    | EMA | yes | `use_ema=True` + `keras.callbacks.SwapEMAWeights` |
    | gradient accumulation in fit | **no** | keras#20582: `gradient_accumulation_steps` fails |
    | callbacks | yes | `EarlyStopping`, `ModelCheckpoint`, `ReduceLROnPlateau`, ... |

    Returns:
        A dict `{technique: (works, note)}`: `works` a bool, `note` a
        sentence on how (or why not).

    Examples:
        >>> from dl4keras.training.distribute import compatibility
        >>> works, note = compatibility()["gradient accumulation in fit"]
        >>> works, "keras#20582" in note
        (False, True)
    """
    return dict(_COMPATIBILITY)


def check_data_parallel(model):
    """Raises a clear error where `model.fit` under `MirroredStrategy` would fail.

    Keras 3.15's gradient accumulation (an optimizer's
    `gradient_accumulation_steps`) does not work in `model.fit` under a
    `tf.distribute.MirroredStrategy` (keras#20582): the first step fails deep
    inside the optimizer with `RuntimeError: merge_call called while defining
    a new graph or a tf.function`. Call this after `compile`, before `fit`.

    TensorFlow only: on another Keras backend it raises a `RuntimeError`.

    Args:
        model: a compiled `keras.Model`.

    Raises:
        ValueError: the model was built under a `MirroredStrategy` and its
            optimizer (or the one a `LossScaleOptimizer` wraps) has
            `gradient_accumulation_steps` > 1, or `model` is not a
            `keras.Model`.
        RuntimeError: the Keras backend is not TensorFlow.

    Examples:
        ```python
        # requires: tensorflow
        import keras
        from dl4keras.training.distribute import check_data_parallel

        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(gradient_accumulation_steps=4), "mse")
        check_data_parallel(model)  # no strategy: accumulation works, nothing raised
        ```
    """
    if not isinstance(model, keras.Model):
        raise _validation.invalid("model", "a `keras.Model`", model)
    tf = _require_tensorflow("check_data_parallel")
    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MirroredStrategy):
        return
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    steps = getattr(inner, "gradient_accumulation_steps", None)
    if steps and steps > 1:
        raise ValueError(
            f"The optimizer {type(inner).__name__} has gradient_accumulation_steps={steps}, "
            f"and the model was built under a MirroredStrategy with "
            f"{strategy.num_replicas_in_sync} replica(s): Keras {keras.__version__} cannot "
            "accumulate gradients in model.fit under MirroredStrategy (keras#20582, "
            f'{ACCUMULATION_ISSUE}); fit would fail with "RuntimeError: `merge_call` '
            'called while defining a new graph or a tf.function". Reach the batch you '
            "want with more replicas instead (global batch = per-replica batch x "
            "replicas, see global_batch_size), or accumulate without a strategy."
        )


def global_batch_size(per_replica_batch_size, strategy):
    """The batch size to give `model.fit` for `per_replica_batch_size` examples per device.

    Under a `MirroredStrategy`, `model.fit(batch_size=B)` takes *global*
    batches of `B` examples and gives each of the `R` replicas `B / R` of
    them. The optimizer sees one update per global batch, so the global
    batch is what learning rates and schedules are tuned for; the
    per-replica batch is what one device must hold in memory.

    Args:
        per_replica_batch_size: examples per replica, a positive integer.
        strategy: a `tf.distribute.Strategy` (its `num_replicas_in_sync`) or a
            number of replicas.

    Returns:
        `per_replica_batch_size * replicas`, an int.

    Raises:
        ValueError: a size or number of replicas that is not a positive integer.

    Examples:
        >>> from dl4keras.training.distribute import global_batch_size
        >>> global_batch_size(32, 8)
        256
    """
    per_replica = _validation.positive_int("per_replica_batch_size", per_replica_batch_size)
    return per_replica * _replicas(strategy)


def per_replica_batch_size(global_batch_size, strategy):
    """The examples each replica gets from a global batch: `global_batch_size / replicas`.

    Args:
        global_batch_size: the batch size given to `model.fit`, a positive
            integer divisible by the number of replicas.
        strategy: a `tf.distribute.Strategy` (its `num_replicas_in_sync`) or a
            number of replicas.

    Returns:
        `global_batch_size // replicas`, an int.

    Raises:
        ValueError: the global batch is not a multiple of the number of
            replicas (the replicas would get unequal slices), or a bad value.

    Examples:
        >>> from dl4keras.training.distribute import per_replica_batch_size
        >>> per_replica_batch_size(256, 8)
        32
    """
    size = _validation.positive_int("global_batch_size", global_batch_size)
    replicas = _replicas(strategy)
    if size % replicas:
        raise ValueError(
            f"Received an invalid value for argument `global_batch_size`, expected a "
            f"multiple of the {replicas} replicas, so that each replica gets the same number "
            f"of examples. Received: global_batch_size={global_batch_size}"
        )
    return size // replicas


def scaled_learning_rate(base_learning_rate, batch_size, base_batch_size):
    """The linear scaling rule: the learning rate grows with the batch size.

    A learning rate tuned for `base_batch_size` becomes
    `base_learning_rate * batch_size / base_batch_size` for a batch of
    `batch_size` (Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training
    ImageNet in 1 Hour", who use it with SGD and a gradual warm-up, as
    important as the rule itself for large batches). It is a rule of thumb
    for SGD; for Adam a square-root rule is often closer (Malladi et al.
    2022), and every rule fails past some batch size: re-tune there.

    Args:
        base_learning_rate: the tuned learning rate, a positive float.
        batch_size: the new (global or effective) batch size.
        base_batch_size: the batch size `base_learning_rate` was tuned for.

    Returns:
        The scaled learning rate, a float.

    Raises:
        ValueError: a non-positive learning rate or batch size.

    Examples:
        >>> from dl4keras.training.distribute import scaled_learning_rate
        >>> scaled_learning_rate(0.1, batch_size=1024, base_batch_size=256)
        0.4
    """
    base_learning_rate = _validation.positive_float("base_learning_rate", base_learning_rate)
    batch_size = _validation.positive_int("batch_size", batch_size)
    base_batch_size = _validation.positive_int("base_batch_size", base_batch_size)
    return base_learning_rate * batch_size / base_batch_size
