"""The learning-rate range test (Smith 2017): find a good learning rate in one short run.

Train for a few dozen batches while the learning rate grows exponentially
from tiny to huge, and watch the loss: it stays flat while the rate is too
small to matter, falls once the rate is useful, and blows up when the rate
is too large. A good learning rate lies on the falling slope, well before
the blow-up. `LRFinder` is a Keras callback that runs this sweep inside
`model.fit`, records the loss of every batch, stops when the loss diverges
and then puts the model and its optimizer back exactly as they were, so the
real training starts from the same point. `find_learning_rate` runs it in
one call.

**The loss of each batch.** The `logs["loss"]` a callback receives after a
batch is the running mean of the epoch so far, weighted by batch size (the
`Mean` metric Keras updates with `sample_weight=batch_size`), not the loss of
that batch. Averaging over a sweep in which the learning rate changes every
batch would blur the curve, so `LRFinder` recovers each batch's own loss
with `batch_losses`: with `N_i` samples seen in the epoch after batch `i`,
`loss_i = (N_i * mean_i - N_{i-1} * mean_{i-1}) / (N_i - N_{i-1})`, i.e.
`i * mean_i - (i - 1) * mean_{i-1}` (from 1) for equal batches.

**Smoothing.** Batch losses are noisy, so the curve used for the decision
is their exponential moving average with factor `smoothing`, bias-corrected
as in Adam: `avg_i = smoothing * avg_{i-1} + (1 - smoothing) * loss_i`,
`smoothed_i = avg_i / (1 - smoothing ** (i + 1))`.

**Reading the result.** `LRFinder.suggestion()` gives one number (the rule
is in its documentation); `LRFinder.plot()` shows the curve. Use the
suggestion as the learning rate of a fixed-rate run, or as the peak
(`max_learning_rate`) of `dl4keras.training.schedules.OneCycle`.

Works on every Keras backend (tested with TensorFlow, JAX and PyTorch); on
JAX, where the training state lives outside the model during an epoch, the
callback reads it through `self.model`, which puts it back.

Examples:
    ```python
    import keras
    import numpy as np
    from dl4keras.training.lr_finder import find_learning_rate

    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = x @ rng.normal(size=(8, 1)).astype("float32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    finder = find_learning_rate(model, x, y, batch_size=16, num_steps=60)
    print(len(finder.learning_rates) <= 60, 1e-4 < finder.suggestion() < 1)  # True True
    print(round(float(model.optimizer.learning_rate), 6))  # 0.01, as before: restored
    ```
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np

from dl4keras import _validation

__all__ = ["LRFinder", "batch_losses", "find_learning_rate"]

METHODS = ("steepest", "minimum")
"""The rules `LRFinder.suggestion` knows."""


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def batch_losses(running_means, batch_sizes=None):
    """The loss of each batch, from the running means Keras reports during an epoch.

    After batch `i` of an epoch, a callback's `logs["loss"]` is the mean loss
    of the epoch so far, weighted by batch size. This undoes the averaging:
    with `N_i` the samples seen after batch `i`,
    `loss_i = (N_i * mean_i - N_{i-1} * mean_{i-1}) / (N_i - N_{i-1})`, which
    for equal batch sizes is `i * mean_i - (i - 1) * mean_{i-1}` (batches
    counted from 1). Give the means of one epoch only: Keras resets the
    mean at each epoch start.

    Args:
        running_means: the `logs["loss"]` values of the batches of one epoch,
            in order (1-D).
        batch_sizes: the size of each of those batches (1-D, positive), or
            `None` for batches of equal size (the last one of an epoch may be
            smaller: pass the sizes to get that one right).

    Returns:
        A float64 NumPy array of the per-batch losses, as long as `running_means`.

    Raises:
        ValueError: `running_means` not 1-D, or `batch_sizes` not positive or
            of another length.

    Examples:
        >>> from dl4keras.training.lr_finder import batch_losses
        >>> batch_losses([4.0, 3.0, 2.0]).tolist()  # batch losses 4, 2, 0
        [4.0, 2.0, 0.0]
        >>> batch_losses([4.0, 3.0, 2.0], batch_sizes=[2, 2, 1]).tolist()  # a last half batch
        [4.0, 2.0, -2.0]
    """
    means = np.asarray(running_means, dtype="float64")
    if means.ndim != 1:
        raise _validation.invalid("running_means", "a 1-D sequence of floats", running_means)
    if batch_sizes is None:
        sizes = np.ones_like(means)
    else:
        sizes = np.asarray(batch_sizes, dtype="float64")
        if sizes.shape != means.shape or not np.all(sizes > 0):
            raise _validation.invalid(
                "batch_sizes",
                f"None or {len(means)} positive batch sizes, one per running mean",
                batch_sizes,
            )
    totals = np.cumsum(sizes) * means
    return np.diff(totals, prepend=0.0) / sizes


def _optimizer_of(model, who):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(model, "compiled", False):
        raise ValueError(
            f"{who} needs a compiled model: call `model.compile(optimizer, loss)` first, with "
            "the optimizer you mean to train with and a float learning rate. "
            f"Received: model={getattr(model, 'name', model)!r} (not compiled)"
        )
    return optimizer


class LRFinder(keras.callbacks.Callback):
    """Runs the learning-rate range test during `model.fit`, then restores the model.

    At the start of batch `i` (counted from 0 over the whole `fit`, across
    epochs) it sets the optimizer's learning rate to
    `min_learning_rate * (max_learning_rate / min_learning_rate) ** (i / (num_steps - 1))`,
    an exponential sweep from `min_learning_rate` (batch 0) to
    `max_learning_rate` (batch `num_steps - 1`). After each batch it records
    the learning rate, the batch's own loss (see `batch_losses`) and the
    smoothed loss (see the module documentation). It stops training
    (`model.stop_training = True`) after `num_steps` batches, or as soon as
    the smoothed loss exceeds `divergence_factor` times the lowest smoothed
    loss so far or is not finite. Give `fit` enough batches: `epochs *
    steps_per_epoch >= num_steps` (`find_learning_rate` does that for you).

    When training ends, every variable of the model (weights, BatchNorm
    statistics, random-seed states) and of the optimizer (its slots, its
    iteration counter, its learning rate) gets back the value it had when
    `fit` started: the range test leaves no trace but the recorded curve.

    **Optimizers with a schedule.** The sweep sets the learning rate batch by
    batch, which Keras allows only for an optimizer built with a float
    `learning_rate` (one with a `LearningRateSchedule` has none to set). For
    such an optimizer `fit` stops with a `ValueError` at the start: run the
    range test on the model compiled with a float learning rate, then build
    your schedule from the suggestion (e.g. `OneCycle(finder.suggestion(), ...)`)
    and compile again.

    Run the test with the batch size you will train with, without
    `gradient_accumulation_steps` and with `steps_per_execution=1` (both are
    refused with a `ValueError`: the sweep needs one optimizer update per
    batch it sees).

    Args:
        min_learning_rate: the first learning rate of the sweep, a positive float.
        max_learning_rate: the last one, larger than `min_learning_rate`.
        num_steps: batches of the sweep, an integer >= 2.
        smoothing: factor of the exponential moving average of the loss, in
            [0, 1) (0: no smoothing).
        divergence_factor: stop when the smoothed loss exceeds this multiple
            of the best smoothed loss so far, a float > 1.

    Attributes:
        learning_rates: the learning rate of each batch of the sweep (floats).
        losses: each batch's own loss.
        smoothed_losses: the bias-corrected moving average of `losses`.
        diverged: whether the sweep stopped because the loss diverged.

    Raises:
        ValueError: bad arguments; when `fit` starts, a model that is not
            compiled, an optimizer with a schedule, `gradient_accumulation_steps`
            or `steps_per_execution > 1`.

    Examples:
        ```python
        import keras
        import numpy as np
        from dl4keras.training.lr_finder import LRFinder

        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 4)).astype("float32")
        y = (x.sum(axis=1) > 0).astype("int32")
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        finder = LRFinder(min_learning_rate=1e-5, max_learning_rate=10.0, num_steps=40)
        model.fit(x, y, batch_size=8, epochs=2, callbacks=[finder], verbose=0)  # 32 per epoch
        print(f"{finder.learning_rates[0]:.0e}")  # 1e-05
        print(f"suggested learning rate: {finder.suggestion():.1e}")
        ax = finder.plot()  # loss against learning rate, suggestion marked
        ```
    """

    def __init__(
        self,
        min_learning_rate=1e-7,
        max_learning_rate=10.0,
        num_steps=100,
        smoothing=0.98,
        divergence_factor=4.0,
    ):
        super().__init__()
        self.min_learning_rate = _validation.positive_float("min_learning_rate", min_learning_rate)
        self.max_learning_rate = _validation.positive_float("max_learning_rate", max_learning_rate)
        if not math.isfinite(self.max_learning_rate):
            raise _validation.invalid("max_learning_rate", "a finite float", max_learning_rate)
        if not self.min_learning_rate < self.max_learning_rate:
            raise ValueError(
                "Received an invalid value for argument `max_learning_rate`, expected a "
                "learning rate larger than `min_learning_rate` (the sweep grows from min to "
                f"max). Received: min_learning_rate={min_learning_rate!r}, "
                f"max_learning_rate={max_learning_rate!r}"
            )
        if not _validation.is_positive_int(num_steps) or num_steps < 2:
            raise _validation.invalid("num_steps", "an integer >= 2", num_steps)
        self.num_steps = int(num_steps)
        if not _is_real(smoothing) or not 0.0 <= smoothing < 1.0:
            raise _validation.invalid("smoothing", "a float in [0, 1)", smoothing)
        self.smoothing = float(smoothing)
        if (
            not _is_real(divergence_factor)
            or not math.isfinite(divergence_factor)
            or not divergence_factor > 1.0
        ):
            raise _validation.invalid("divergence_factor", "a finite float > 1", divergence_factor)
        self.divergence_factor = float(divergence_factor)
        self._reset()

    def _reset(self):
        self.learning_rates = []
        self.losses = []
        self.smoothed_losses = []
        self.diverged = False
        self._average = 0.0
        self._best = math.inf
        self._epoch_means = []
        self._epoch_counts = []
        self._saved = None

    def sweep(self):
        """The learning rates of the whole sweep, batch 0 to `num_steps - 1`.

        Returns:
            A float64 NumPy array of `num_steps` learning rates, geometrically
            spaced from `min_learning_rate` to `max_learning_rate`.

        Examples:
            >>> from dl4keras.training.lr_finder import LRFinder
            >>> LRFinder(1e-3, 1.0, num_steps=4).sweep().round(6).tolist()
            [0.001, 0.01, 0.1, 1.0]
        """
        exponents = np.arange(self.num_steps) / (self.num_steps - 1)
        return self.min_learning_rate * (self.max_learning_rate / self.min_learning_rate) ** (
            exponents
        )

    # ---------------------------------------------------------------- callback hooks

    def on_train_begin(self, logs=None):
        optimizer = _optimizer_of(self.model, "LRFinder")
        if not isinstance(optimizer.learning_rate, keras.Variable):
            raise ValueError(
                "LRFinder sets the learning rate batch by batch, but this optimizer "
                f"({type(optimizer).__name__}) was built with a learning-rate schedule, and "
                "Keras cannot set the learning rate of such an optimizer. Run the range test "
                "on the model compiled with "
                "a float learning rate (e.g. `keras.optimizers.Adam(1e-3)`), then build the "
                "schedule from `finder.suggestion()` and compile again."
            )
        if getattr(optimizer, "gradient_accumulation_steps", None):
            raise ValueError(
                "LRFinder needs one optimizer update per batch, but the optimizer has "
                f"gradient_accumulation_steps={optimizer.gradient_accumulation_steps}. Run the "
                "range test with an optimizer without gradient accumulation."
            )
        steps_per_execution = getattr(self.model, "steps_per_execution", 1) or 1
        if steps_per_execution > 1:
            raise ValueError(
                "LRFinder sets the learning rate before every batch, but the model was compiled "
                f"with steps_per_execution={steps_per_execution}, which runs several batches "
                "between two callbacks. Compile with steps_per_execution=1 for the range test."
            )
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        self._reset()
        self._rates = self.sweep()
        # Keras's loss tracker, a `Mean` metric: its `count` gives the batch sizes.
        self._loss_metric = next(
            (
                metric
                for metric in self.model.metrics
                if metric.name == "loss"
                and isinstance(getattr(metric, "count", None), keras.Variable)
            ),
            None,
        )
        self._saved = (
            [keras.ops.convert_to_numpy(v) for v in self.model.variables],
            [keras.ops.convert_to_numpy(v) for v in optimizer.variables],
            keras.ops.convert_to_numpy(optimizer.learning_rate),
        )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_means = []
        self._epoch_counts = []

    def on_train_batch_begin(self, batch, logs=None):
        step = len(self.learning_rates)
        if step < self.num_steps:
            self.model.optimizer.learning_rate = float(self._rates[step])

    def on_train_batch_end(self, batch, logs=None):
        # `self.model` first: on JAX, reading it puts the training state (the loss
        # metric's count included) back into the model's variables.
        model = self.model
        step = len(self.learning_rates)
        if step >= self.num_steps:  # stop_training was set: nothing more to record
            model.stop_training = True
            return
        if not logs or "loss" not in logs:
            raise ValueError(
                "LRFinder reads the training loss from the batch logs, but they have no "
                f"'loss' entry. Received: logs keys={sorted(logs or {})}"
            )
        self._epoch_means.append(float(logs["loss"]))
        sizes = None
        if self._loss_metric is not None:
            self._epoch_counts.append(float(keras.ops.convert_to_numpy(self._loss_metric.count)))
            counts = np.asarray(self._epoch_counts)
            increments = np.diff(counts, prepend=0.0)
            if np.all(increments > 0):  # the metric's count grew by each batch's size
                sizes = increments
        loss = float(batch_losses(self._epoch_means, sizes)[-1])
        self._average = self.smoothing * self._average + (1.0 - self.smoothing) * loss
        smoothed = self._average / (1.0 - self.smoothing ** (step + 1))
        self.learning_rates.append(float(self._rates[step]))
        self.losses.append(loss)
        self.smoothed_losses.append(smoothed)
        if not math.isfinite(smoothed) or smoothed > self.divergence_factor * self._best:
            self.diverged = True
            model.stop_training = True
        self._best = min(self._best, smoothed)
        if len(self.learning_rates) >= self.num_steps:
            model.stop_training = True

    def on_train_end(self, logs=None):
        if self._saved is None:
            return
        model_values, optimizer_values, learning_rate = self._saved
        optimizer = self.model.optimizer
        for variable, value in zip(self.model.variables, model_values):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_values):
            variable.assign(value)
        optimizer.learning_rate = float(learning_rate)
        self._saved = None

    # ---------------------------------------------------------------- results

    def _curve(self):
        rates = np.asarray(self.learning_rates, dtype="float64")
        smoothed = np.asarray(self.smoothed_losses, dtype="float64")
        finite = np.isfinite(smoothed)
        return rates[finite], smoothed[finite]

    def suggestion(self, method="steepest"):
        """A learning rate read off the recorded curve.

        Rules:

        - `"steepest"` (default): where the smoothed loss falls fastest. For
          every decade of the sweep that ends at or before the lowest smoothed
          loss (from a recorded learning rate `lr_i` to the first one
          `lr_j >= 10 * lr_i`), the fall per decade is
          `(smoothed_j - smoothed_i) / log10(lr_j / lr_i)`; the suggestion is
          the middle `sqrt(lr_i * lr_j)` of the steepest decade. Slopes over a
          whole decade, not between neighbouring batches, so that batch noise
          (large in the first, barely averaged points) cannot win.
        - `"minimum"`: the learning rate of the lowest smoothed loss divided
          by 10 (fastai's first rule): the minimum itself is already at the
          edge of divergence.

        Both rules skip the first tenth of the recorded points (fastai skips
        10 of 100): there the bias-corrected average is over a few batches
        only, and one lucky first batch could pass for the lowest loss of the
        sweep. Both stay well short of divergence. On standardized linear regression
        with SGD (the loss diverges above a learning rate of about 1) both
        give about 0.1 to 0.2 (`tests/test_lr_finder.py`).

        Args:
            method: `"steepest"` or `"minimum"`.

        Returns:
            The suggested learning rate, a float.

        Raises:
            ValueError: an unknown `method`, fewer than 3 finite points
                recorded (run `fit` with the callback first), or, for
                `"steepest"`, no falling decade before the lowest loss (lower
                `min_learning_rate`, or use `"minimum"`).

        Examples:
            >>> from dl4keras.training.lr_finder import LRFinder
            >>> finder = LRFinder(1e-4, 1.0, num_steps=5)  # one point per decade
            >>> finder.learning_rates = finder.sweep().tolist()  # as if after a sweep
            >>> finder.smoothed_losses = [1.0, 0.98, 0.6, 0.3, 2.0]
            >>> print(f"{finder.suggestion():.1e} {finder.suggestion('minimum'):.1e}")
            3.2e-03 1.0e-02
        """
        _validation.one_of("method", method, METHODS)
        rates, smoothed = self._curve()
        if len(rates) < 3:
            raise ValueError(
                f"LRFinder.suggestion needs at least 3 recorded points with a finite loss, "
                f"but has {len(rates)}: run `model.fit(..., callbacks=[finder])` (or "
                "`find_learning_rate`) with enough batches first."
            )
        skip = len(rates) // 10
        lowest = skip + int(np.argmin(smoothed[skip:]))
        if method == "minimum":
            return float(rates[lowest] / 10.0)
        best_slope, best_rate = 0.0, None
        for i in range(skip, lowest):
            j = int(np.searchsorted(rates, rates[i] * 10.0 * (1 - 1e-9)))
            if j > lowest:
                break
            slope = (smoothed[j] - smoothed[i]) / math.log10(rates[j] / rates[i])
            if slope < best_slope:
                best_slope, best_rate = slope, math.sqrt(rates[i] * rates[j])
        if best_rate is None:
            raise ValueError(
                "The smoothed loss did not fall over any decade of learning rates before its "
                f"lowest point (at {rates[lowest]:.3g}), so there is no descent to read a "
                f"learning rate from (the sweep started at {rates[0]:.3g}). Lower "
                "`min_learning_rate`, or use `suggestion(method='minimum')`."
            )
        return float(best_rate)

    def plot(self, ax=None, method="steepest"):
        """Draws the loss against the learning rate (log scale) and marks the suggestion.

        The batch losses are drawn faint, the smoothed loss solid, and the
        suggestion of `suggestion(method)` as a dot with its value in the
        legend (left out when there is none). The y axis stops a little
        above the first smoothed loss, so the divergence does not flatten the
        curve.

        Args:
            ax: a matplotlib `Axes` to draw on; `None`: a new figure.
            method: the rule of the marked suggestion (see `suggestion`).

        Returns:
            The matplotlib `Axes`.

        Examples:
            >>> from dl4keras.training.lr_finder import LRFinder
            >>> finder = LRFinder(1e-4, 1.0, num_steps=5)
            >>> finder.learning_rates = finder.sweep().tolist()  # as if after a sweep
            >>> finder.losses = finder.smoothed_losses = [1.0, 0.98, 0.6, 0.3, 2.0]
            >>> finder.plot().get_xscale()
            'log'
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        rates = np.asarray(self.learning_rates, dtype="float64")
        ax.plot(rates, self.losses, color="tab:blue", alpha=0.3, lw=1, label="batch loss")
        ax.plot(rates, self.smoothed_losses, color="tab:blue", lw=2, label="smoothed loss")
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("training loss")
        ax.set_title("Learning-rate range test")
        curve_rates, smoothed = self._curve()
        if len(smoothed):
            span = smoothed[0] - smoothed.min()
            if span > 0:
                ax.set_ylim(smoothed.min() - 0.1 * span, smoothed[0] + 0.25 * span)
        try:
            suggested = self.suggestion(method)
        except ValueError:
            suggested = None
        if suggested is not None:
            y = np.interp(np.log(suggested), np.log(curve_rates), smoothed)
            ax.plot([suggested], [y], "o", color="tab:red", label=f"suggestion: {suggested:.2g}")
        ax.legend()
        return ax


def find_learning_rate(
    model,
    x,
    y=None,
    batch_size=32,
    min_learning_rate=1e-7,
    max_learning_rate=10.0,
    num_steps=100,
    smoothing=0.98,
    divergence_factor=4.0,
    **fit_kwargs,
):
    """Runs the learning-rate range test on a compiled model and returns the `LRFinder`.

    Fits `model` with an `LRFinder` callback for as many epochs as
    `num_steps` batches need (the callback stops the fit after them or at
    divergence), silently (`verbose=0` unless given), and leaves the model and
    its optimizer as they were (also when `fit` stops with an error or is
    interrupted). Read the result from the returned finder:
    `finder.suggestion()`, `finder.plot()`.

    Args:
        model: a compiled `keras.Model`, its optimizer built with a float
            learning rate.
        x: inputs as `model.fit` takes them: arrays (with `y`), or a
            `tf.data.Dataset` / `keras.utils.PyDataset` of batches (`y=None`;
            `batch_size` is then not used).
        y: targets for array inputs.
        batch_size: batch size for array inputs; use the one you will train with.
        min_learning_rate: as in `LRFinder`.
        max_learning_rate: as in `LRFinder`.
        num_steps: as in `LRFinder`.
        smoothing: as in `LRFinder`.
        divergence_factor: as in `LRFinder`.
        **fit_kwargs: more arguments of `model.fit` (e.g. `sample_weight`,
            `callbacks`, which run after the finder); not `epochs`.

    Returns:
        The `LRFinder`, with its recorded curve.

    Raises:
        ValueError: a model that is not compiled, `epochs` in `fit_kwargs`, or
            what `LRFinder` raises.

    Examples:
        ```python
        import keras
        import numpy as np
        from dl4keras.training.lr_finder import find_learning_rate

        x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
        finder = find_learning_rate(model, x, x.sum(axis=1), batch_size=8, num_steps=20)
        print(len(finder.losses) <= 20)  # True: 8 batches per epoch, 3 epochs at most
        ```
    """
    _optimizer_of(model, "find_learning_rate")
    if "epochs" in fit_kwargs:
        raise ValueError(
            "find_learning_rate chooses the number of epochs itself (the sweep stops after "
            f"`num_steps` batches). Received: epochs={fit_kwargs['epochs']!r}; pass "
            "`num_steps` instead."
        )
    finder = LRFinder(
        min_learning_rate=min_learning_rate,
        max_learning_rate=max_learning_rate,
        num_steps=num_steps,
        smoothing=smoothing,
        divergence_factor=divergence_factor,
    )
    callbacks = [finder, *list(fit_kwargs.pop("callbacks", None) or [])]
    fit_kwargs.setdefault("verbose", 0)
    arrays = isinstance(x, (np.ndarray, list, tuple, dict)) or hasattr(x, "shape")
    if arrays:
        fit_kwargs["batch_size"] = _validation.positive_int("batch_size", batch_size)
    else:
        fit_kwargs.setdefault("shuffle", False)  # a dataset is shuffled by its own pipeline
    # Every epoch has at least one batch, so `num_steps` epochs always suffice.
    try:
        model.fit(x, y, epochs=finder.num_steps, callbacks=callbacks, **fit_kwargs)
    finally:  # an error or an interrupt (Ctrl-C) inside fit skips on_train_end: restore here
        finder.on_train_end()
    return finder
