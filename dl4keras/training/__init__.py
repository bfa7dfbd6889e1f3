"""Training techniques for tutorial 06: what Keras lacks, and checks on what it has.

Keras 3 already does most modern training techniques, and this subpackage
leaves them to it:

- learning-rate schedules: `keras.optimizers.schedules.CosineDecay` (a
  linear warm-up through `warmup_target` and `warmup_steps`; without
  `warmup_target`, `warmup_steps` is silently ignored), `CosineDecayRestarts`,
  `ExponentialDecay`, `PiecewiseConstantDecay`, ...;
- mixed precision: the dtype policies (`keras.config.set_dtype_policy`,
  `"mixed_float16"`, `"mixed_bfloat16"`, a layer's `dtype="float32"`) and
  loss scaling with `keras.optimizers.LossScaleOptimizer` (which `compile`
  adds by itself when the model's policy is `"mixed_float16"`);
- gradient accumulation: any optimizer's `gradient_accumulation_steps`;
- weight averaging: an optimizer's `use_ema=True` with the
  `keras.callbacks.SwapEMAWeights` callback;
- `keras.callbacks.EarlyStopping`, `ModelCheckpoint`, `ReduceLROnPlateau`.

What it adds, one module per concept:

- `schedules`: `OneCycle` (as PyTorch's `OneCycleLR`), `warmup_cosine`
  (Keras's `CosineDecay` with warm-up, built so that its pitfalls cannot
  bite), and `PerUpdateSchedule` / `per_update`, which make a schedule right
  under gradient accumulation (Keras advances schedules every micro-batch);
- `lr_finder`: the learning-rate range test (`LRFinder`,
  `find_learning_rate`) and per-batch losses (`batch_losses`; a callback's
  `logs["loss"]` is the running epoch mean);
- `precision`: a global or scoped dtype policy (`mixed_precision(policy)`, a
  call or a context manager), a check of a model's mixed-precision set-up
  (`check_mixed_precision`) and the float formats side by side
  (`float_formats`);
- `distribute`: data-parallel training with `tf.distribute.MirroredStrategy`
  (TensorFlow only, on logical CPU devices when there is no GPU; on JAX its
  functions raise an error pointing at Keras's `keras.distribution.DataParallel`),
  which techniques combine with it (`compatibility`), a guard for gradient
  accumulation, which fails there (keras#20582), and the batch-size and
  learning-rate rules (any backend).

Everything else here works on TensorFlow, JAX and PyTorch.

Every public name of the four modules is importable from
`dl4keras.training` too.

Examples:
    ```python
    import keras
    from dl4keras import training

    schedule = training.warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
    optimizer = keras.optimizers.AdamW(
        training.per_update(schedule, 4), gradient_accumulation_steps=4
    )
    print(training.compatibility()["gradient accumulation in fit"][0])  # False
    ```
"""

from dl4keras.training.distribute import (
    check_data_parallel,
    compatibility,
    global_batch_size,
    mirrored_strategy,
    per_replica_batch_size,
    scaled_learning_rate,
)
from dl4keras.training.lr_finder import LRFinder, batch_losses, find_learning_rate
from dl4keras.training.precision import (
    PolicyScope,
    check_mixed_precision,
    float_formats,
    mixed_precision,
    mixed_precision_problems,
)
from dl4keras.training.schedules import OneCycle, PerUpdateSchedule, per_update, warmup_cosine

__all__ = [
    "LRFinder",
    "OneCycle",
    "PerUpdateSchedule",
    "PolicyScope",
    "batch_losses",
    "check_data_parallel",
    "check_mixed_precision",
    "compatibility",
    "distribute",
    "find_learning_rate",
    "float_formats",
    "global_batch_size",
    "lr_finder",
    "mirrored_strategy",
    "mixed_precision",
    "mixed_precision_problems",
    "per_replica_batch_size",
    "per_update",
    "precision",
    "scaled_learning_rate",
    "schedules",
    "warmup_cosine",
]
