"""Learning-rate schedules that Keras lacks, and the pitfalls of the ones it has.

Keras already has the classic schedules in `keras.optimizers.schedules`:
`CosineDecay` (with a linear warm-up through `warmup_target`),
`CosineDecayRestarts`, `ExponentialDecay`, `PiecewiseConstantDecay`,
`PolynomialDecay`, `InverseTimeDecay`. Use them. This module adds:

- `OneCycle`: the one-cycle policy of Smith & Topin (2018), as PyTorch's
  `torch.optim.lr_scheduler.OneCycleLR` computes it (cosine annealing);
- `warmup_cosine`: Keras's own `CosineDecay` with warm-up, built so that its
  two pitfalls cannot bite (see its documentation);
- `PerUpdateSchedule` and `per_update`: a schedule written in optimizer
  *updates* made right for `gradient_accumulation_steps`, under which Keras
  advances schedules every micro-batch.

Every schedule here is a `keras.optimizers.schedules.LearningRateSchedule`
written with `keras.ops` (any backend), registered with Keras (a model
compiled with one saves to `.keras` and loads with `safe_mode=True` after
`import dl4keras`), and is called with the optimizer's step, counted from 0.

Examples:
    ```python
    import keras
    from dl4keras.training import schedules

    one_cycle = schedules.OneCycle(max_learning_rate=1e-2, total_steps=100)
    print(round(float(one_cycle(0)), 6), round(float(one_cycle(29)), 6))  # 0.0004 0.01
    warm = schedules.warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
    print(type(warm).__name__, round(float(warm(10)), 6))  # CosineDecay 0.001
    optimizer = keras.optimizers.AdamW(
        schedules.per_update(one_cycle, 4), gradient_accumulation_steps=4
    )
    ```
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

from dl4keras import _validation

__all__ = ["OneCycle", "PerUpdateSchedule", "per_update", "warmup_cosine"]


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _non_negative_int(name, value):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
        raise _validation.invalid(name, "an integer >= 0", value)
    return int(value)


def _non_negative_float(name, value):
    if not _is_real(value) or not math.isfinite(value) or value < 0:
        raise _validation.invalid(name, "a float >= 0", value)
    return float(value)


def _cosine_anneal(start, end, fraction):
    """`start` at `fraction` 0 to `end` at 1 along half a cosine (PyTorch's `_annealing_cos`)."""
    return end + (start - end) / 2.0 * (1.0 + ops.cos(math.pi * fraction))


@keras.saving.register_keras_serializable(package="dl4keras")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle learning rate of Smith & Topin (2018), as PyTorch's `OneCycleLR`.

    The learning rate rises from `max_learning_rate / div_factor` to
    `max_learning_rate` and then falls far below where it started, to
    `max_learning_rate / (div_factor * final_div_factor)`, both times along
    half a cosine. The values are those of PyTorch's
    `torch.optim.lr_scheduler.OneCycleLR(max_lr, total_steps, pct_start,
    anneal_strategy="cos", div_factor, final_div_factor, three_phase=False)`
    at the same step, counted from 0 (`optimizer.iterations`):

    - step 0: `max_learning_rate / div_factor`;
    - step `pct_start * total_steps - 1`: `max_learning_rate` (the peak; the
      first `pct_start * total_steps` steps are the warm-up);
    - step `total_steps - 1`, the last of `total_steps` updates:
      `max_learning_rate / (div_factor * final_div_factor)`, and the same at
      every later step (PyTorch raises an error there instead).

    Only the learning rate cycles: the inverse cycling of the momentum (or
    Adam's `beta_1`) between 0.85 and 0.95 that PyTorch also does by default
    is not included (Keras optimizers take a fixed momentum).

    Under `gradient_accumulation_steps=k`, count `total_steps` in updates and
    wrap the schedule in `per_update(schedule, k)`.

    Args:
        max_learning_rate: the peak learning rate, a positive float, e.g. the
            suggestion of `dl4keras.training.lr_finder.LRFinder`.
        total_steps: number of optimizer steps of the whole cycle, e.g.
            `epochs * steps_per_epoch`; an integer >= 3.
        pct_start: fraction of `total_steps` spent warming up, in (0, 1).
        div_factor: the first learning rate is `max_learning_rate / div_factor`.
        final_div_factor: the last learning rate is the first divided by
            `final_div_factor`.
        name: name of the operations (default `"OneCycle"`).

    Raises:
        ValueError: a non-positive learning rate or factor, `total_steps` not a
            positive integer, `pct_start` outside (0, 1), or a warm-up (peak at
            step `pct_start * total_steps - 1`) before step 1 or leaving no
            decay step before step `total_steps - 1`.

    Examples:
        >>> from dl4keras.training.schedules import OneCycle
        >>> schedule = OneCycle(max_learning_rate=0.1, total_steps=10, pct_start=0.3)
        >>> [round(float(schedule(step)), 5) for step in (0, 1, 2, 5, 9, 20)]
        [0.004, 0.052, 0.1, 0.06113, 0.0, 0.0]
        >>> schedule.final_learning_rate
        4e-07

        Train with it as with any Keras schedule:

        ```python
        import keras
        from dl4keras.training.schedules import OneCycle

        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        x, y = np.ones((64, 3), "float32"), np.ones((64, 1), "float32")
        epochs, steps_per_epoch = 2, 64 // 16
        schedule = OneCycle(1e-2, total_steps=epochs * steps_per_epoch)
        model.compile(keras.optimizers.Adam(schedule), "mse")
        model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
        print(round(float(model.optimizer.learning_rate), 8))  # 4e-08, the end of the cycle
        ```
    """

    def __init__(
        self,
        max_learning_rate,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        name=None,
    ):
        super().__init__()
        self.max_learning_rate = _validation.positive_float("max_learning_rate", max_learning_rate)
        self.total_steps = _validation.positive_int("total_steps", total_steps)
        if not _is_real(pct_start) or not 0.0 < pct_start < 1.0:
            raise _validation.invalid("pct_start", "a float in (0, 1)", pct_start)
        self.pct_start = float(pct_start)
        self.div_factor = _validation.positive_float("div_factor", div_factor)
        self.final_div_factor = _validation.positive_float("final_div_factor", final_div_factor)
        self.name = name
        peak = self.peak_step
        if not 1.0 <= peak <= self.total_steps - 2:
            raise ValueError(
                "OneCycle warms up from step 0 to its peak at step "
                f"pct_start * total_steps - 1 = {peak:g}, which must be at least 1 (a warm-up "
                f"of at least one step) and at most total_steps - 2 = {self.total_steps - 2} "
                "(a decay of at least one step before the last step, total_steps - 1). "
                "Raise `total_steps` or move `pct_start`. "
                f"Received: pct_start={pct_start!r}, total_steps={total_steps!r}"
            )

    @property
    def peak_step(self):
        """The step at which the learning rate peaks: `pct_start * total_steps - 1`."""
        return self.pct_start * self.total_steps - 1.0

    @property
    def initial_learning_rate(self):
        """The learning rate at step 0: `max_learning_rate / div_factor`."""
        return self.max_learning_rate / self.div_factor

    @property
    def final_learning_rate(self):
        """The learning rate from step `total_steps - 1` on."""
        return self.initial_learning_rate / self.final_div_factor

    def __call__(self, step):
        with keras.name_scope(self.name or "OneCycle"):
            peak = self.peak_step
            last = float(self.total_steps - 1)
            step = ops.clip(ops.cast(step, "float32"), 0.0, last)
            rising = _cosine_anneal(
                self.initial_learning_rate, self.max_learning_rate, ops.minimum(step / peak, 1.0)
            )
            falling = _cosine_anneal(
                self.max_learning_rate,
                self.final_learning_rate,
                ops.maximum(step - peak, 0.0) / (last - peak),
            )
            return ops.where(step <= peak, rising, falling)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "name": self.name,
        }


def warmup_cosine(
    peak_learning_rate, total_steps, warmup_steps, alpha=0.0, initial_learning_rate=0.0
):
    """A linear warm-up then a cosine decay: Keras's own `CosineDecay`, built safely.

    Returns `keras.optimizers.schedules.CosineDecay(initial_learning_rate,
    decay_steps=total_steps - warmup_steps, warmup_target=peak_learning_rate,
    warmup_steps=warmup_steps, alpha=alpha)`: the learning rate rises linearly
    from `initial_learning_rate` at step 0 to `peak_learning_rate` at step
    `warmup_steps`, then follows half a cosine down to
    `alpha * peak_learning_rate` at step `total_steps`, and stays there.

    Two pitfalls of building `CosineDecay` by hand are handled here:

    - **`warmup_steps` alone does nothing.** Without `warmup_target`,
      `CosineDecay` silently ignores `warmup_steps` and starts decaying from
      `initial_learning_rate` at step 0 (measured with Keras 3.15): the
      warm-up must be asked for with `warmup_target`, the peak.
    - **`decay_steps` counts after the warm-up.** The schedule ends at step
      `warmup_steps + decay_steps`, not at `decay_steps`; passing the total
      length as `decay_steps` stretches the decay past the end of training.
      Here you give `total_steps` and the decay length is computed.

    Args:
        peak_learning_rate: the learning rate at the end of the warm-up, a
            positive float.
        total_steps: optimizer steps of the whole schedule, warm-up included.
        warmup_steps: steps of the linear warm-up, an integer in
            [0, total_steps); 0 starts the cosine at the peak.
        alpha: the final learning rate as a fraction of the peak, in [0, 1].
        initial_learning_rate: the learning rate at step 0, a float >= 0.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Raises:
        ValueError: `warmup_steps >= total_steps` (a warm-up longer than the
            schedule), or another argument out of range.

    Examples:
        >>> from dl4keras.training.schedules import warmup_cosine
        >>> schedule = warmup_cosine(1e-3, total_steps=100, warmup_steps=10, alpha=0.1)
        >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 55, 100, 200)]
        [0.0, 0.0005, 0.001, 0.00055, 0.0001, 0.0001]
    """
    peak_learning_rate = _validation.positive_float("peak_learning_rate", peak_learning_rate)
    total_steps = _validation.positive_int("total_steps", total_steps)
    warmup_steps = _non_negative_int("warmup_steps", warmup_steps)
    if warmup_steps >= total_steps:
        raise ValueError(
            "Received an invalid value for argument `warmup_steps`, expected fewer steps "
            "than `total_steps`: a warmup longer than the schedule leaves no step to decay "
            f"(`total_steps` includes the warm-up). Received: warmup_steps={warmup_steps}, "
            f"total_steps={total_steps}"
        )
    if not _is_real(alpha) or not 0.0 <= alpha <= 1.0:
        raise _validation.invalid("alpha", "a float in [0, 1]", alpha)
    initial_learning_rate = _non_negative_float("initial_learning_rate", initial_learning_rate)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate,
        decay_steps=total_steps - warmup_steps,
        alpha=float(alpha),
        warmup_target=peak_learning_rate,
        warmup_steps=warmup_steps,
    )


@keras.saving.register_keras_serializable(package="dl4keras")
class PerUpdateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Makes a schedule written in optimizer updates right under gradient accumulation.

    With `optimizer(gradient_accumulation_steps=k)`, Keras updates the
    weights once every `k` batches (micro-batches), but the optimizer reads
    its schedule at the micro-batch counter: a schedule `s` written for `n`
    updates ends after `n / k` updates, `k` times too soon. In Keras 3.15
    (`BaseOptimizer._backend_apply_gradients`) the counter counts every
    micro-batch from 0 and is incremented after the step, and the learning
    rate is read only during the real update, which happens at the
    micro-batches `k - 1, 2k - 1, ...`: update `n` (from 0) gets
    `s(n * k + k - 1)`, so even the first update does not get `s(0)`.

    `PerUpdateSchedule(s, k)` returns `s(step // k)`, so update `n` gets
    `s((n * k + k - 1) // k) = s(n)`: the schedule runs in updates, as
    written. Keras's own `optimizer.iterations` is already
    `micro-batch counter // k` (what EMA uses); only the schedule reads the
    raw counter.

    Callbacks that read `optimizer.learning_rate` between batches see
    `s(micro-batches done // k)`: during the accumulation of update `n`,
    that is `s(n)`, the learning rate that update will use.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule` whose
            steps are optimizer updates.
        accumulation_steps: the optimizer's `gradient_accumulation_steps`, a
            positive integer (1: the schedule unchanged).

    Attributes:
        schedule: the wrapped schedule.
        accumulation_steps: `k`.

    Raises:
        ValueError: `schedule` is not a `LearningRateSchedule`, or
            `accumulation_steps` is not a positive integer.

    Examples:
        >>> import keras
        >>> from dl4keras.training.schedules import PerUpdateSchedule
        >>> decay = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5)
        >>> schedule = PerUpdateSchedule(decay, accumulation_steps=4)
        >>> [float(schedule(step)) for step in range(9)]  # the micro-batch counter
        [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]
        >>> optimizer = keras.optimizers.SGD(schedule, gradient_accumulation_steps=4)
    """

    def __init__(self, schedule, accumulation_steps):
        super().__init__()
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise _validation.invalid(
                "schedule", "a keras.optimizers.schedules.LearningRateSchedule", schedule
            )
        self.schedule = schedule
        self.accumulation_steps = _validation.positive_int("accumulation_steps", accumulation_steps)

    def __call__(self, step):
        if self.accumulation_steps == 1:
            return self.schedule(step)
        return self.schedule(ops.floor_divide(step, self.accumulation_steps))

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "accumulation_steps": self.accumulation_steps,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        schedule = keras.optimizers.schedules.deserialize(
            config.pop("schedule"), custom_objects=custom_objects
        )
        return cls(schedule, **config)


def per_update(schedule, accumulation_steps):
    """The schedule to give an optimizer with `gradient_accumulation_steps=accumulation_steps`.

    `schedule` counts optimizer updates. Returns `schedule` itself when
    there is no accumulation (`accumulation_steps` is `None` or 1, as
    `optimizer.gradient_accumulation_steps` is without it), else
    `PerUpdateSchedule(schedule, accumulation_steps)`, so that the same line
    works for any `k`.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule` in updates.
        accumulation_steps: `None` or a positive integer.

    Returns:
        A `LearningRateSchedule`.

    Examples:
        >>> import keras
        >>> from dl4keras.training.schedules import per_update
        >>> decay = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100)
        >>> per_update(decay, None) is decay, type(per_update(decay, 4)).__name__
        (True, 'PerUpdateSchedule')
    """
    if accumulation_steps is None or (
        _validation.is_positive_int(accumulation_steps) and accumulation_steps == 1
    ):
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise _validation.invalid(
                "schedule", "a keras.optimizers.schedules.LearningRateSchedule", schedule
            )
        return schedule
    return PerUpdateSchedule(schedule, accumulation_steps)
