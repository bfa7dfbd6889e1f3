"""Ensembles: several models, one prediction; and snapshot ensembles from one training run.

Averaging the predictions of a few independently trained networks (a *deep
ensemble*, Lakshminarayanan et al., 2017) is the most reliable way to gain
accuracy *and* calibration (`dl4keras.calibration`), at the price of training
and running M models. This module has two pieces:

- `Ensemble`: a Keras model over member models with the same inputs and
  outputs, combining their predictions by mean probabilities, mean logits,
  a weighted mean or a majority vote; it predicts, evaluates and saves
  (`.keras`) like any Keras model;
- `SnapshotEnsemble`: a callback that keeps the weights at the end of every
  cycle of a cyclic (cosine with restarts) learning-rate schedule, so one
  training run gives M members (Huang et al., 2017, "Snapshot Ensembles:
  Train 1, get M for free"); `callback.ensemble()` makes the `Ensemble`.

Examples:
    ```python
    import keras
    import numpy as np
    from dl4keras.ensemble import Ensemble, SnapshotEnsemble

    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3

    def member(seed):
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])  # logits
        model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(True))
        model.fit(x, y, epochs=2, verbose=0)
        return model

    # A deep ensemble: independently trained members.
    ensemble = Ensemble([member(seed) for seed in range(3)], from_logits=True)
    print(ensemble.predict(x, verbose=0).shape)  # (32, 3): probabilities

    # A snapshot ensemble: one training run, a snapshot at the end of each cycle.
    schedule = keras.optimizers.schedules.CosineDecayRestarts(0.1, 4, t_mul=1.0)  # 4-step cycles
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.SGD(schedule), keras.losses.SparseCategoricalCrossentropy(True))
    snapshots = SnapshotEnsemble(schedule)
    model.fit(x, y, batch_size=8, epochs=3, callbacks=[snapshots], verbose=0)  # 12 steps
    print(snapshots.snapshot_steps)  # [4, 8, 12]
    print(len(snapshots.ensemble(from_logits=True).members))  # 3
    ```
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np
from keras import ops

from dl4keras import _validation

__all__ = ["METHODS", "Ensemble", "SnapshotEnsemble"]

METHODS = ("mean_probabilities", "mean_logits", "weighted", "vote")
"""How `Ensemble` combines its members' predictions."""


def _known_shapes(member, attribute):
    """The shapes of a built functional member's `inputs` or `outputs` (None if unknown)."""
    try:
        tensors = getattr(member, attribute)
    except (AttributeError, ValueError):
        return None
    if tensors is None:
        return None
    return [tuple(t.shape) for t in keras.tree.flatten(tensors)]


def _check_weights(weights, count):
    given = weights
    try:
        values = np.asarray(weights, dtype="float64")
    except (TypeError, ValueError):
        raise _validation.invalid("weights", "one positive number per member", given) from None
    if values.ndim != 1 or len(values) != count:
        raise ValueError(
            f"Received an invalid value for argument `weights`, expected one weight per "
            f"member ({count} members). Received: weights={given!r} "
            f"({values.size} value{'' if values.size == 1 else 's'})"
        )
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise _validation.invalid("weights", "positive finite numbers", given)
    return (values / values.sum()).tolist()


@keras.saving.register_keras_serializable(package="dl4keras")
class Ensemble(keras.Model):
    """A Keras model that combines the predictions of member models.

    Every member gets the same inputs and returns one tensor of class scores
    `(batch, ..., num_classes)`, all of the same shape; the ensemble returns
    probabilities of that shape:

    - `"mean_probabilities"`: the mean of the members' probabilities (the
      deep-ensemble rule; with `from_logits=True` each member's softmax first);
    - `"mean_logits"`: the softmax of the mean of the members' logits (needs
      `from_logits=True`): the normalised geometric mean of their probabilities;
    - `"weighted"`: `sum_i w_i p_i`, the weighted mean of the probabilities,
      with `weights` normalised to sum to 1 (e.g. by validation accuracy);
    - `"vote"`: majority vote: the share of members whose top class is each
      class (ties stay visible, e.g. `[0.5, 0.5, 0.0]`); not differentiable.

    The members are its layers: `ensemble.predict`, `evaluate` (compile it
    with a loss and metrics on probabilities, `from_logits=False`) and
    `ensemble.save("e.keras")` work as for any model, and the file loads with
    `keras.models.load_model(path, safe_mode=True)` after `import dl4keras`.
    Member models must be distinct objects (not the same model twice).
    Train the members first, each on its own: `ensemble.fit` would train them
    jointly on the combined prediction, which is one big model, not an
    ensemble of independent ones.

    Args:
        members: a list of Keras models (at least one), with the same input
            shapes and the same output shape.
        method: one of `METHODS`: `"mean_probabilities"`, `"mean_logits"`,
            `"weighted"` or `"vote"`.
        weights: for `method="weighted"` only: one positive weight per member.
        from_logits: whether the members output logits (no final softmax);
            if False they output probabilities.
        **kwargs: base model keyword arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: what every member takes.
        - `training`: passed to the members.

    Returns:
        Class probabilities of the members' output shape.

    Raises:
        ValueError: if `members` is empty or not Keras models, members have
            different input or output shapes (naming them), `method` is
            unknown, `method="mean_logits"` without `from_logits=True`, or the
            weights are missing, not positive, or not one per member.

    Examples:
        >>> import keras
        >>> import numpy as np
        >>> from dl4keras.ensemble import Ensemble
        >>> def member(bias):  # outputs the probabilities softmax(bias), whatever x is
        ...     layer = keras.layers.Dense(3, activation="softmax")
        ...     model = keras.Sequential([keras.Input((2,)), layer])
        ...     layer.set_weights([np.zeros((2, 3)), np.array(bias)])
        ...     return model
        >>> members = [member([0.0, 0.0, 0.0]), member([2.0, 0.0, 0.0]), member([0.0, 2.0, 0.0])]
        >>> x = np.zeros((1, 2))
        >>> Ensemble(members).predict(x, verbose=0).round(3)
        array([[0.409, 0.409, 0.182]], dtype=float32)
        >>> Ensemble(members, method="weighted", weights=[1, 2, 1]).predict(x, verbose=0).round(3)
        array([[0.503, 0.333, 0.163]], dtype=float32)
        >>> # top classes 0 (a tie goes to the first class), 0 and 1: 2 votes of 3 for class 0
        >>> Ensemble(members, method="vote").predict(x, verbose=0).round(3)
        array([[0.667, 0.333, 0.   ]], dtype=float32)
    """

    def __init__(
        self, members, method="mean_probabilities", weights=None, from_logits=False, **kwargs
    ):
        super().__init__(**kwargs)
        if isinstance(members, keras.Model) or not isinstance(members, (list, tuple)):
            raise _validation.invalid("members", "a list of Keras models", members)
        if not members or not all(isinstance(m, keras.Model) for m in members):
            raise _validation.invalid("members", "a non-empty list of Keras models", members)
        if len({id(m) for m in members}) != len(members):
            raise ValueError(
                "Received an invalid value for argument `members`: the same model object "
                "appears more than once; each member must be its own model (clone it with "
                "`keras.models.clone_model` to make a copy)."
            )
        self.method = _validation.one_of("method", method, METHODS)
        self.from_logits = bool(from_logits)
        if method == "mean_logits" and not self.from_logits:
            raise ValueError(
                "`method='mean_logits'` averages logits: it needs members that output "
                "logits and `from_logits=True`. For members that output probabilities, use "
                "method='mean_probabilities'. Received: from_logits=False"
            )
        if method == "weighted":
            if weights is None:
                raise ValueError(
                    "`method='weighted'` needs `weights`: one positive number per member "
                    f"({len(members)} members). Received: weights=None"
                )
            self.member_weights = _check_weights(weights, len(members))
        elif weights is not None:
            raise ValueError(
                f"`weights` are used only with method='weighted'. Received: method={method!r}, "
                f"weights={weights!r}"
            )
        else:
            self.member_weights = None
        for attribute, kind in (("inputs", "input"), ("outputs", "output")):
            shapes = [(m, _known_shapes(m, attribute)) for m in members]
            shapes = [(m, s) for m, s in shapes if s is not None]
            for m, s in shapes[1:]:
                if s != shapes[0][1]:
                    raise ValueError(
                        f"All members of an Ensemble must have the same {kind} shape, but "
                        f"member {shapes[0][0].name!r} has {kind} shape "
                        f"{_shown(shapes[0][1])} and member {m.name!r} has {_shown(s)}."
                    )
            if kind == "output" and shapes and len(shapes[0][1]) != 1:
                raise ValueError(
                    f"Ensemble members must have one output, but member "
                    f"{shapes[0][0].name!r} has {len(shapes[0][1])}: "
                    f"{_shown(shapes[0][1])}."
                )
        self.members = list(members)
        if all(m.built for m in self.members):
            self.built = True

    def call(self, inputs, training=None):
        outputs = [member(inputs, training=training) for member in self.members]
        shapes = [tuple(o.shape[1:]) for o in outputs]
        for member, shape in zip(self.members[1:], shapes[1:]):
            if shape != shapes[0]:
                raise ValueError(
                    f"All members of an Ensemble must have the same output shape, but member "
                    f"{self.members[0].name!r} returns {shapes[0]} per example and member "
                    f"{member.name!r} returns {shape}."
                )
        outputs = [ops.cast(o, self.compute_dtype) for o in outputs]
        if self.method == "mean_logits":
            return ops.softmax(ops.mean(ops.stack(outputs), axis=0), axis=-1)
        if self.method == "vote":
            num_classes = outputs[0].shape[-1]
            votes = [ops.one_hot(ops.argmax(o, axis=-1), num_classes) for o in outputs]
            return ops.cast(ops.mean(ops.stack(votes), axis=0), self.compute_dtype)
        if self.from_logits:
            outputs = [ops.softmax(o, axis=-1) for o in outputs]
        if self.method == "weighted":
            return sum(w * o for w, o in zip(self.member_weights, outputs))
        return ops.mean(ops.stack(outputs), axis=0)

    def compute_output_shape(self, input_shape):
        return self.members[0].compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "members": [keras.saving.serialize_keras_object(m) for m in self.members],
            "method": self.method,
            "weights": self.member_weights,
            "from_logits": self.from_logits,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["members"] = [
            keras.saving.deserialize_keras_object(m, custom_objects=custom_objects)
            for m in config["members"]
        ]
        return cls(**config)


def _shown(shapes):
    return shapes[0] if len(shapes) == 1 else shapes


class SnapshotEnsemble(keras.callbacks.Callback):
    """Keeps the model's weights at the end of every learning-rate cycle (snapshot ensembles).

    Huang et al. (2017) train one network with a cyclic cosine schedule
    (`keras.optimizers.schedules.CosineDecayRestarts`): at the end of each
    cycle the learning rate is near 0 and the model sits in a local minimum;
    the restart throws it out to find another. The weights at the M cycle ends
    are M ensemble members for the price of one training run.

    Cycles are counted in the steps the learning-rate schedule sees, checked
    after every training batch; a cycle ends after step
    `first_decay_steps * (1 + t_mul + ... + t_mul**i)` (rounded up to a whole
    step). Mind that Keras's default is `t_mul=2.0`, cycles that double in
    length; `t_mul=1.0` gives cycles of equal length as in the paper. The
    count is the one the schedule reads, the (innermost, for a
    `LossScaleOptimizer`) optimizer's iteration counter: under
    `gradient_accumulation_steps=k` it counts micro-batches, as the schedule
    does, while the public `optimizer.iterations` counts the k times fewer
    weight updates (Keras 3.15). With `steps_per_execution > 1` a snapshot
    is taken at the first batch end after its cycle ends. Snapshots
    accumulate over several `fit` calls; a partly finished last cycle gives
    no snapshot.

    The cycle ends are computed exactly, in Python. Keras's own schedule
    finds a step's cycle with a float32 logarithm when `t_mul != 1`, which
    can round across a boundary: on PyTorch (Keras 3.15),
    `CosineDecayRestarts(1.0, 4, t_mul=1.5)` gives step 10 the learning rate
    of a cycle's end (`alpha`) and restarts one step late, at 11; the snapshot
    is still taken after step 10, where the cycle ends.

    Args:
        cycle_steps: the schedule, a `keras.optimizers.schedules.CosineDecayRestarts`
            (its `first_decay_steps` and `t_mul >= 1` give the cycle ends),
            or a positive integer: the steps per cycle, for a schedule of
            your own with cycles of equal length.

    Attributes:
        snapshots: one list of weight arrays (`model.get_weights()`, the
            non-trainable ones such as BatchNormalization statistics included)
            per finished cycle.
        snapshot_steps: the schedule's step count at which each was taken.

    Raises:
        ValueError: if `cycle_steps` is neither a positive integer nor a
            `CosineDecayRestarts` schedule with `first_decay_steps > 0` and
            `t_mul >= 1`.

    Examples:
        >>> import keras
        >>> from dl4keras.ensemble import SnapshotEnsemble
        >>> schedule = keras.optimizers.schedules.CosineDecayRestarts(0.1, 10, t_mul=2.0)
        >>> [SnapshotEnsemble(schedule).cycle_end(i) for i in range(3)]  # 10, +20, +40
        [10, 30, 70]
        >>> SnapshotEnsemble(25).cycle_end(1)
        50
    """

    def __init__(self, cycle_steps):
        super().__init__()
        schedule_type = keras.optimizers.schedules.CosineDecayRestarts
        if isinstance(cycle_steps, schedule_type):
            config = cycle_steps.get_config()
            first, t_mul = config["first_decay_steps"], config["t_mul"]
            if not (_is_number(first) and first > 0 and _is_number(t_mul) and t_mul >= 1):
                raise _validation.invalid(
                    "cycle_steps",
                    "a CosineDecayRestarts schedule with first_decay_steps > 0 and t_mul >= 1 "
                    f"(cycles that do not shrink; this one has first_decay_steps={first!r}, "
                    f"t_mul={t_mul!r})",
                    cycle_steps,
                )
            self.first_cycle_steps, self.t_mul = float(first), float(t_mul)
        elif _validation.is_positive_int(cycle_steps):
            self.first_cycle_steps, self.t_mul = float(cycle_steps), 1.0
        else:
            raise _validation.invalid(
                "cycle_steps",
                "a positive integer (steps per cycle) or a "
                "keras.optimizers.schedules.CosineDecayRestarts schedule",
                cycle_steps,
            )
        self.snapshots = []
        self.snapshot_steps = []
        self._next = 0

    def cycle_end(self, index):
        """The optimizer step count at which cycle `index` (from 0) ends.

        Args:
            index: the cycle, an integer >= 0.

        Returns:
            An int: `ceil(first_decay_steps * (1 + t_mul + ... + t_mul**index))`.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise _validation.invalid("index", "an integer >= 0", index)
        if self.t_mul == 1.0:
            end = self.first_cycle_steps * (index + 1)
        else:
            end = self.first_cycle_steps * (1.0 - self.t_mul ** (index + 1)) / (1.0 - self.t_mul)
        return math.ceil(end - 1e-6)

    def _schedule_step(self):
        """The step the learning-rate schedule reads: the innermost optimizer's `_iterations`."""
        optimizer = self.model.optimizer
        while getattr(optimizer, "inner_optimizer", None) is not None:  # LossScaleOptimizer
            optimizer = optimizer.inner_optimizer
        # Keras's schedules read the private `_iterations`; under gradient accumulation
        # the public `iterations` is `_iterations // gradient_accumulation_steps`.
        counter = getattr(optimizer, "_iterations", None)
        if counter is None:
            counter = optimizer.iterations
        return int(ops.convert_to_numpy(counter))

    def on_train_begin(self, logs=None):
        # The first cycle still to end: earlier cycles were snapshotted by an earlier
        # `fit` call, or ended before this callback saw the model.
        step = self._schedule_step()
        self._next = 0
        while self.cycle_end(self._next) <= step:
            self._next += 1

    def on_train_batch_end(self, batch, logs=None):
        step = self._schedule_step()
        if step < self.cycle_end(self._next):
            return
        self.snapshots.append([np.array(w) for w in self.model.get_weights()])
        self.snapshot_steps.append(step)
        while self.cycle_end(self._next) <= step:
            self._next += 1

    def members(self, model_builder=None):
        """One model per snapshot, carrying the snapshot's weights.

        Args:
            model_builder: a function of no arguments returning a new, built
                model of the trained model's architecture; by default
                `keras.models.clone_model(model)` (Sequential and functional
                models; subclassed models are rebuilt from their config).

        Returns:
            A list of new Keras models, one per snapshot, oldest first.

        Raises:
            ValueError: if there is no snapshot yet, or a new model is not
                built (pass a `model_builder` that builds it).
        """
        if not self.snapshots:
            raise ValueError(
                "SnapshotEnsemble has no snapshots yet: train the model with this callback "
                f"for at least one full cycle ({self.cycle_end(0)} steps)."
            )
        models = []
        for weights in self.snapshots:
            model = model_builder() if model_builder else keras.models.clone_model(self.model)
            if not model.built:
                raise ValueError(
                    f"The new model {model.name!r} is not built, so it cannot take the "
                    "snapshot's weights. Pass `model_builder`, a function returning a built "
                    "model (e.g. one that calls the model on `keras.Input`)."
                )
            model.set_weights(weights)
            models.append(model)
        return models

    def ensemble(self, method="mean_probabilities", weights=None, from_logits=False, **kwargs):
        """An `Ensemble` of the snapshots (`Ensemble(self.members(), ...)`).

        Args:
            method: how to combine the snapshots, one of `METHODS`.
            weights: for `method="weighted"`: one positive weight per snapshot.
            from_logits: whether the model outputs logits.
            **kwargs: `model_builder` (see `members`) and `Ensemble` keyword
                arguments (`name`, ...).

        Returns:
            An `Ensemble`.
        """
        model_builder = kwargs.pop("model_builder", None)
        return Ensemble(
            self.members(model_builder),
            method=method,
            weights=weights,
            from_logits=from_logits,
            **kwargs,
        )


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
