"""Calibration: does a model's confidence match its accuracy?

A classifier is *calibrated* when, among the predictions it makes with
confidence 0.8, 80 % are right. Modern networks are often overconfident
(Guo et al., 2017, "On Calibration of Modern Neural Networks"); ensembles
(`dl4keras.ensemble`) and temperature scaling make them less so. This module
measures and fixes calibration, in NumPy, on the outputs of any model:

- `expected_calibration_error`: the top-label ECE of Guo et al.: predictions
  grouped into equal-width confidence bins, the gaps `|accuracy - confidence|`
  averaged, weighted by the share of predictions in each bin;
- `negative_log_likelihood`: the mean cross-entropy of the true labels;
- `reliability_bins` and `reliability_diagram`: the bins behind the ECE, and
  their plot (accuracy against confidence; the diagonal is perfect calibration);
- `fit_temperature` and `apply_temperature`: temperature scaling, one scalar
  `T > 0` fitted on validation logits, `softmax(logits / T)`. It changes the
  confidence, never the predicted class.

**Inputs.** `y_true` holds integer labels, shape `(n,)` (or `(n, 1)`), or
one-hot rows, shape `(n, k)` (the class is each row's argmax).
`probabilities` has shape `(n, k)`: non-negative rows that sum to 1 within
`1e-3` (`SUM_TOLERANCE`), e.g. `model.predict(x)` of a model ending in a
softmax. For a model that outputs logits, pass `from_logits=True` (the
functions apply the softmax), as with Keras's losses.

Examples:
    ```python
    import numpy as np
    from dl4keras import calibration

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=500)
    logits = 3.0 * rng.normal(size=(500, 3))
    logits[np.arange(500), labels] += 3.0  # right 66 % of the time, overconfident
    print(round(calibration.expected_calibration_error(labels, logits, from_logits=True), 3))
    # 0.188
    t = calibration.fit_temperature(logits, labels)  # on validation data in practice
    scaled = calibration.apply_temperature(logits, t)
    print(round(t, 2), round(calibration.expected_calibration_error(labels, scaled), 3))
    # 2.72 0.038
    ```
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from dl4keras import _validation

__all__ = [
    "EPSILON",
    "ReliabilityBins",
    "SUM_TOLERANCE",
    "apply_temperature",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "reliability_bins",
    "reliability_diagram",
]

EPSILON = 1e-7
"""Probabilities below it count as `EPSILON` in `negative_log_likelihood` (Keras's epsilon)."""

SUM_TOLERANCE = 1e-3
"""How far from 1 a row of `probabilities` may sum (float16 and float32 rounding)."""


def _softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _to_numpy(value):
    """A tensor of the Keras backend as NumPy; anything else unchanged.

    `np.asarray` cannot read every backend's tensors: on PyTorch, a model's
    output (a tensor that requires grad) raises a `RuntimeError`.
    """
    if keras.ops.is_tensor(value):
        return keras.ops.convert_to_numpy(value)
    return value


def _scores(name, value):
    """`value` as a finite float64 array of shape `(n, k)`, `n, k >= 1`."""
    try:
        array = np.asarray(_to_numpy(value), dtype="float64")
    except (TypeError, ValueError):
        raise _validation.invalid(name, "a numeric array of shape (n, k)", value) from None
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(
            f"Received an invalid value for argument `{name}`, expected an array of shape "
            f"(n, k): one row of class scores per example. Received: {name}.shape={array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(
            f"Received an invalid value for argument `{name}`: it holds NaN or infinite "
            f"values ({int((~np.isfinite(array)).sum())} of {array.size})."
        )
    return array


def _probabilities(probabilities, from_logits):
    """Checked probabilities (n, k); the softmax of `probabilities` when `from_logits`."""
    array = _scores("probabilities", probabilities)
    if from_logits:
        return _softmax(array)
    hint = (
        " Did you pass logits? Apply a softmax first, or pass `from_logits=True` (as with "
        "Keras's losses)."
    )
    if (array < 0).any():
        row = int(np.argwhere(array < 0)[0, 0])
        raise ValueError(
            "Received an invalid value for argument `probabilities`: probabilities must be "
            f">= 0, but row {row} is {array[row].tolist()}.{hint}"
        )
    sums = array.sum(axis=1)
    bad = np.abs(sums - 1.0) > SUM_TOLERANCE
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            "Received an invalid value for argument `probabilities`: each row must sum to 1 "
            f"(within {SUM_TOLERANCE:g}), but {int(bad.sum())} of {len(sums)} rows do not; "
            f"row {row} sums to {sums[row]:.6g}.{hint}"
        )
    return array


def _labels(y_true, num_examples, num_classes):
    """Integer labels `(n,)` from integer labels `(n,)`/`(n, 1)` or one-hot rows `(n, k)`."""
    array = np.asarray(_to_numpy(y_true))
    if array.ndim == 2 and array.shape[1] == num_classes and num_classes > 1:
        labels = array.argmax(axis=1)  # one-hot rows
    elif array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1):
        array = array.reshape(-1)
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise _validation.invalid("y_true", "integer class labels", y_true)
        if np.issubdtype(array.dtype, np.floating) and (
            not np.isfinite(array).all() or (array != np.round(array)).any()
        ):
            raise ValueError(
                "Received an invalid value for argument `y_true`, expected integer class "
                f"labels (or one-hot rows of length {num_classes}). Received non-integer "
                f"values, e.g. {array[array != np.round(array)][:3].tolist()}"
            )
        labels = array.astype("int64")
        out = (labels < 0) | (labels >= num_classes)
        if out.any():
            raise ValueError(
                "Received an invalid value for argument `y_true`: labels must be in "
                f"[0, {num_classes}) for {num_classes} classes, but "
                f"{int(out.sum())} are not, e.g. {labels[out][:3].tolist()}"
            )
    else:
        raise ValueError(
            "Received an invalid value for argument `y_true`, expected integer labels of "
            f"shape ({num_examples},) or one-hot rows of shape ({num_examples}, {num_classes}). "
            f"Received: y_true.shape={array.shape}"
        )
    if len(labels) != num_examples:
        raise ValueError(
            f"`y_true` and the predictions must have one row per example, but y_true has "
            f"{len(labels)} and the predictions have {num_examples} (shape {array.shape} vs "
            f"({num_examples}, {num_classes}))."
        )
    return labels


@dataclasses.dataclass(frozen=True)
class ReliabilityBins:
    """The confidence bins of a reliability diagram (what `reliability_bins` returns).

    Bin `m` holds the predictions whose confidence (top probability) is in
    `(edges[m], edges[m + 1]]` (the first bin includes 0).

    Attributes:
        edges: the `num_bins + 1` bin edges, equally spaced from 0 to 1.
        counts: number of predictions in each bin, int array `(num_bins,)`.
        confidence: mean confidence of each bin (NaN for an empty bin).
        accuracy: share of right predictions in each bin (NaN for an empty bin).
        ece: the expected calibration error,
            `sum(counts / n * |accuracy - confidence|)` over the non-empty bins.
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def reliability_bins(y_true, probabilities, num_bins=15, from_logits=False):
    """Groups top-label predictions into equal-width confidence bins (Guo et al., 2017).

    Each prediction is the class of highest probability, its confidence that
    probability. Bin `m` of `num_bins` holds the predictions with confidence
    in `((m - 1) / num_bins, m / num_bins]`.

    Args:
        y_true: integer labels `(n,)` (or `(n, 1)`), or one-hot rows `(n, k)`.
        probabilities: predicted class probabilities `(n, k)`; rows are
            non-negative and sum to 1 within `SUM_TOLERANCE` (1e-3).
        num_bins: number of bins over [0, 1]; 15 as in Guo et al.
        from_logits: whether `probabilities` are logits (a softmax is applied).

    Returns:
        A `ReliabilityBins` with the edges, counts, mean confidence and
        accuracy of each bin, and the ECE.

    Raises:
        ValueError: if the rows are not probabilities (negative, or not summing
            to 1: logits passed without `from_logits=True`), the shapes do not
            match, a label is outside `[0, k)`, or `num_bins` is not a positive
            integer.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import calibration
        >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
        >>> bins = calibration.reliability_bins([0, 1, 1, 1], p, num_bins=2)
        >>> bins.counts.tolist(), bins.confidence.round(3).tolist(), bins.accuracy.tolist()
        ([0, 4], [nan, 0.75], [nan, 0.75])
        >>> round(bins.ece, 6)  # confidence 0.75, accuracy 0.75: calibrated
        0.0
    """
    num_bins = _validation.positive_int("num_bins", num_bins)
    probabilities = _probabilities(probabilities, from_logits)
    labels = _labels(y_true, *probabilities.shape)
    confidence = probabilities.max(axis=1)
    correct = (probabilities.argmax(axis=1) == labels).astype("float64")
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # side="left": a confidence equal to an edge belongs to the bin below it.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    counts = np.bincount(index, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, num_bins) / counts
        accuracy = np.bincount(index, correct, num_bins) / counts
    filled = counts > 0
    gaps = np.abs(accuracy[filled] - mean_confidence[filled])
    ece = float(np.sum(counts[filled] / len(labels) * gaps))
    return ReliabilityBins(edges, counts, mean_confidence, accuracy, ece)


def expected_calibration_error(y_true, probabilities, num_bins=15, from_logits=False):
    """Top-label expected calibration error (ECE) of Guo et al. (2017).

    `ECE = sum_m |B_m| / n * |accuracy(B_m) - confidence(B_m)|` over
    `num_bins` equal-width confidence bins `B_m` (see `reliability_bins`):
    0 for a perfectly calibrated model, up to 1. The value depends on
    `num_bins`; compare models with the same number of bins.

    Args:
        y_true: integer labels `(n,)` (or `(n, 1)`), or one-hot rows `(n, k)`.
        probabilities: predicted class probabilities `(n, k)`; rows are
            non-negative and sum to 1 within `SUM_TOLERANCE` (1e-3).
        num_bins: number of bins over [0, 1]; 15 as in Guo et al.
        from_logits: whether `probabilities` are logits (a softmax is applied).

    Returns:
        The ECE, a float in [0, 1].

    Raises:
        ValueError: as `reliability_bins`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import calibration
        >>> p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
        >>> # bin (0.8, 1]: confidence 0.9, accuracy 1/2; bin (0.4, 0.6]: 0.6 and 1/2
        >>> round(calibration.expected_calibration_error([0, 1, 0, 0], p, num_bins=5), 3)
        0.25
    """
    return reliability_bins(y_true, probabilities, num_bins, from_logits).ece


def negative_log_likelihood(y_true, probabilities, from_logits=False):
    """Mean negative log-likelihood of the true labels: the cross-entropy loss.

    `mean(-log p[i, y_i])`, with probabilities below `EPSILON` (1e-7, Keras's
    `keras.config.epsilon()` default) counted as `EPSILON`, so a confident
    wrong prediction costs at most `-log(1e-7) = 16.1` instead of infinity.
    With `from_logits=True` it is computed from the logits exactly (log-softmax,
    no clipping). The value matches
    `keras.losses.SparseCategoricalCrossentropy()` for probabilities that
    are not clipped.

    Args:
        y_true: integer labels `(n,)` (or `(n, 1)`), or one-hot rows `(n, k)`.
        probabilities: predicted class probabilities `(n, k)`; rows are
            non-negative and sum to 1 within `SUM_TOLERANCE` (1e-3).
        from_logits: whether `probabilities` are logits.

    Returns:
        The mean negative log-likelihood, a float >= 0 (in nats).

    Raises:
        ValueError: as `reliability_bins`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import calibration
        >>> p = np.array([[0.5, 0.5], [0.9, 0.1]])
        >>> round(calibration.negative_log_likelihood([0, 0], p), 4)  # (ln 2 + ln 1/0.9) / 2
        0.3993
    """
    if from_logits:
        scores = _scores("probabilities", probabilities)
        labels = _labels(y_true, *scores.shape)
        return float(-_log_softmax(scores)[np.arange(len(labels)), labels].mean())
    probabilities = _probabilities(probabilities, False)
    labels = _labels(y_true, *probabilities.shape)
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(picked, EPSILON)).mean())


def reliability_diagram(y_true, probabilities, num_bins=15, ax=None, label=None, from_logits=False):
    """Plots a reliability diagram: accuracy against confidence, per confidence bin.

    One bar per non-empty bin of `reliability_bins`, as high as the bin's
    accuracy, over the diagonal of perfect calibration: bars below the
    diagonal are overconfident bins. The legend shows `label` and the ECE.
    Call it again with the same `ax` to compare models (the bars are
    semi-transparent).

    Args:
        y_true: integer labels `(n,)` (or `(n, 1)`), or one-hot rows `(n, k)`.
        probabilities: predicted class probabilities `(n, k)`.
        num_bins: number of confidence bins over [0, 1].
        ax: matplotlib `Axes` to draw into; a new figure otherwise.
        label: name of the model in the legend (e.g. `"single model"`).
        from_logits: whether `probabilities` are logits (a softmax is applied).

    Returns:
        The matplotlib `Axes`.

    Raises:
        ValueError: as `reliability_bins`.

    Examples:
        ```python
        import numpy as np
        from dl4keras import calibration

        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, size=200)
        logits = 3.0 * rng.normal(size=(200, 3))
        logits[np.arange(200), labels] += 3.0
        ax = calibration.reliability_diagram(labels, logits, label="logits", from_logits=True)
        scaled = calibration.apply_temperature(logits, 2.0)
        calibration.reliability_diagram(labels, scaled, ax=ax, label="T = 2")
        for text in ax.get_legend_handles_labels()[1]:
            print(text)  # perfect calibration, logits (ECE = 0.215), T = 2 (ECE = 0.123)
        ```
    """
    bins = reliability_bins(y_true, probabilities, num_bins, from_logits)
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    if not any(line.get_label() == "perfect calibration" for line in ax.get_lines()):
        ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    filled = bins.counts > 0
    width = 1.0 / len(bins.counts)
    text = f"ECE = {bins.ece:.3f}"
    ax.bar(
        bins.edges[:-1][filled],
        bins.accuracy[filled],
        width=width,
        align="edge",
        alpha=0.5,
        edgecolor="black",
        linewidth=0.5,
        label=f"{label} ({text})" if label else text,
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize="small")
    return ax


def apply_temperature(logits, temperature):
    """Temperature-scaled probabilities: `softmax(logits / temperature)`.

    `temperature > 1` softens overconfident probabilities, `< 1` sharpens
    them; the argmax (the predicted class) never changes. Inside a Keras
    model the same is `keras.layers.Rescaling(1 / temperature)` followed by
    `keras.layers.Softmax()`.

    Args:
        logits: logits `(n, k)`.
        temperature: the temperature, a positive float (from `fit_temperature`).

    Returns:
        Probabilities, a float64 array `(n, k)`.

    Examples:
        >>> from dl4keras import calibration
        >>> calibration.apply_temperature([[2.0, 0.0]], 2.0).round(3).tolist()
        [[0.731, 0.269]]
    """
    temperature = _validation.positive_float("temperature", temperature)
    return _softmax(_scores("logits", logits) / temperature)


def fit_temperature(logits, y_true, bounds=(0.01, 100.0)):
    """The temperature `T > 0` that minimises the NLL of `softmax(logits / T)` (Guo et al.).

    Temperature scaling: fit one scalar on *validation* logits (not the
    training set, where the network is overconfident by construction), then
    use `apply_temperature(test_logits, T)`. The NLL is convex in `1 / T`, so
    a bounded 1-D search over `log T` (`scipy.optimize.minimize_scalar`,
    SciPy comes with scikit-learn) finds the minimum. When every validation
    example is right with a margin, the NLL keeps falling as `T -> 0` and the
    result is the lower bound: use more (or harder) validation data.

    Args:
        logits: validation logits `(n, k)`, e.g. `model.predict(x_val)` of a
            model without its final softmax.
        y_true: integer labels `(n,)` (or `(n, 1)`), or one-hot rows `(n, k)`.
        bounds: `(low, high)`, the range of temperatures searched,
            `0 < low < high`.

    Returns:
        The temperature, a float.

    Raises:
        ValueError: if the shapes do not match, a label is out of range, the
            logits are not finite, or `bounds` is not `0 < low < high`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import calibration
        >>> rng = np.random.default_rng(0)
        >>> z = 4.0 * rng.normal(size=(5000, 5))  # logits of an overconfident model
        >>> p = calibration.apply_temperature(z, 2.5)  # the true probabilities
        >>> y = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from them
        >>> t = calibration.fit_temperature(z, y)
        >>> round(t, 2), abs(t - 2.5) < 0.1
        (2.55, True)
    """
    scores = _scores("logits", logits)
    labels = _labels(y_true, *scores.shape)
    if (
        not isinstance(bounds, (tuple, list))
        or len(bounds) != 2
        or not all(_validation._is_real(b) and math.isfinite(b) for b in bounds)
        or not 0 < bounds[0] < bounds[1]
    ):
        raise _validation.invalid("bounds", "a pair (low, high) with 0 < low < high", bounds)
    from scipy import optimize

    rows = np.arange(len(labels))

    def nll(log_t):
        return -_log_softmax(scores / np.exp(log_t))[rows, labels].mean()

    result = optimize.minimize_scalar(
        nll,
        bounds=(math.log(bounds[0]), math.log(bounds[1])),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(np.exp(result.x))
