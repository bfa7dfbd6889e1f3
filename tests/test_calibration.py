"""dl4keras.calibration: ECE, NLL, reliability bins and diagrams, temperature scaling."""

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dl4keras import calibration  # noqa: E402

# Five predictions over three classes, five bins of width 0.2.
HAND_P = np.array(
    [
        [0.90, 0.05, 0.05],  # y=0: confidence 0.90, right -> bin (0.8, 1.0]
        [0.70, 0.20, 0.10],  # y=1: confidence 0.70, wrong -> bin (0.6, 0.8]
        [0.10, 0.75, 0.15],  # y=1: confidence 0.75, right -> bin (0.6, 0.8]
        [0.50, 0.30, 0.20],  # y=2: confidence 0.50, wrong -> bin (0.4, 0.6]
        [0.30, 0.25, 0.45],  # y=2: confidence 0.45, right -> bin (0.4, 0.6]
    ]
)
HAND_Y = np.array([0, 1, 1, 2, 2])
# bin (0.4, 0.6]: 2 predictions, accuracy 1/2, confidence (0.50 + 0.45) / 2 = 0.475 -> gap 0.025
# bin (0.6, 0.8]: 2 predictions, accuracy 1/2, confidence (0.70 + 0.75) / 2 = 0.725 -> gap 0.225
# bin (0.8, 1.0]: 1 prediction,  accuracy 1,   confidence 0.90                     -> gap 0.100
# ECE = 2/5 * 0.025 + 2/5 * 0.225 + 1/5 * 0.100 = 0.01 + 0.09 + 0.02 = 0.12
HAND_ECE = 0.12


def _random_probabilities(n, k, seed, scale=2.0):
    rng = np.random.default_rng(seed)
    z = scale * rng.normal(size=(n, k))
    return z, np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), rng


def _ece_by_loops(y, p, num_bins):
    """The ECE written out bin by bin, as in Guo et al.: the reference for the vectorised one."""
    confidence, prediction = p.max(axis=1), p.argmax(axis=1)
    total = 0.0
    for m in range(num_bins):
        low, high = m / num_bins, (m + 1) / num_bins
        inside = (confidence > low) & (confidence <= high)
        if m == 0:
            inside |= confidence == 0
        if inside.any():
            gap = abs((prediction[inside] == y[inside]).mean() - confidence[inside].mean())
            total += inside.sum() / len(y) * gap
    return total


def test_ece_of_a_hand_computed_case():
    assert calibration.expected_calibration_error(HAND_Y, HAND_P, num_bins=5) == pytest.approx(
        HAND_ECE, abs=1e-12
    )
    bins = calibration.reliability_bins(HAND_Y, HAND_P, num_bins=5)
    assert bins.counts.tolist() == [0, 0, 2, 2, 1]
    np.testing.assert_allclose(bins.edges, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(bins.confidence[2:], [0.475, 0.725, 0.9])
    np.testing.assert_allclose(bins.accuracy[2:], [0.5, 0.5, 1.0])
    assert np.isnan(bins.confidence[:2]).all() and np.isnan(bins.accuracy[:2]).all()
    assert bins.ece == pytest.approx(HAND_ECE)


def test_one_hot_and_column_labels_give_the_same_ece():
    one_hot = np.eye(3)[HAND_Y]
    column = HAND_Y.reshape(-1, 1).astype("float32")
    for labels in (one_hot, column, HAND_Y.tolist()):
        assert calibration.expected_calibration_error(labels, HAND_P, 5) == pytest.approx(HAND_ECE)


def test_ece_matches_the_bin_by_bin_definition():
    _, p, rng = _random_probabilities(400, 4, seed=1)
    y = rng.integers(0, 4, size=400)
    for num_bins in (1, 10, 15):
        assert calibration.expected_calibration_error(y, p, num_bins) == pytest.approx(
            _ece_by_loops(y, p, num_bins), abs=1e-12
        )


def test_a_confidence_on_a_bin_edge_belongs_to_the_bin_below():
    p = np.array([[0.6, 0.4], [0.8, 0.2], [1.0, 0.0]])
    bins = calibration.reliability_bins([0, 0, 0], p, num_bins=5)
    assert bins.counts.tolist() == [0, 0, 1, 1, 1]  # (0.4, 0.6], (0.6, 0.8], (0.8, 1]


def test_perfect_calibration_gives_zero():
    # Ten predictions of confidence 0.7 of which seven are right: accuracy 0.7.
    p = np.tile([0.7, 0.3], (10, 1))
    y = np.array([0] * 7 + [1] * 3)
    assert calibration.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    # Always right with confidence 1.
    assert calibration.expected_calibration_error([0, 1], np.eye(2)) == 0.0
    # Labels drawn from the predicted probabilities: calibrated up to sampling noise.
    _, p, rng = _random_probabilities(20000, 3, seed=2)
    y = (p.cumsum(axis=1) > rng.random((20000, 1))).argmax(axis=1)
    assert calibration.expected_calibration_error(y, p) < 0.02
    # ... while always predicting with confidence 1 and being right half the time is not.
    assert calibration.expected_calibration_error([0, 1], np.eye(2)[[0, 0]]) == pytest.approx(0.5)


def test_nll_matches_keras_sparse_categorical_crossentropy():
    z, p, rng = _random_probabilities(64, 5, seed=3)
    y = rng.integers(0, 5, size=64)
    expected = float(keras.losses.SparseCategoricalCrossentropy()(y, p.astype("float32")))
    assert calibration.negative_log_likelihood(y, p) == pytest.approx(expected, rel=1e-5)
    from_logits = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z))
    assert calibration.negative_log_likelihood(y, z, from_logits=True) == pytest.approx(
        from_logits, rel=1e-5
    )
    assert calibration.negative_log_likelihood(np.eye(5)[y], p) == pytest.approx(expected, 1e-5)


def test_nll_clips_zero_probabilities_at_epsilon():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    expected = (-np.log(calibration.EPSILON) + np.log(2)) / 2
    assert calibration.negative_log_likelihood([1, 0], p) == pytest.approx(expected)
    assert calibration.EPSILON == keras.config.epsilon()


def test_from_logits_applies_the_softmax():
    z, p, rng = _random_probabilities(50, 3, seed=4)
    y = rng.integers(0, 3, size=50)
    assert calibration.expected_calibration_error(y, z, from_logits=True) == pytest.approx(
        calibration.expected_calibration_error(y, p)
    )


def test_apply_temperature_is_softmax_of_scaled_logits():
    z, _, _ = _random_probabilities(8, 4, seed=5)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(z / 1.7, axis=-1))
    np.testing.assert_allclose(calibration.apply_temperature(z, 1.7), expected, rtol=1e-6)


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_fit_temperature_recovers_the_temperature_of_the_data(t_true):
    z, _, rng = _random_probabilities(20000, 5, seed=6, scale=3.0)
    p_true = calibration.apply_temperature(z, t_true)
    y = (p_true.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)
    t = calibration.fit_temperature(z, y)
    assert t == pytest.approx(t_true, rel=0.05)
    # It is the minimum of the NLL over T, found independently on a fine grid.
    grid = np.exp(np.linspace(np.log(t_true / 2), np.log(t_true * 2), 801))
    nll = [calibration.negative_log_likelihood(y, z / g, from_logits=True) for g in grid]
    assert t == pytest.approx(grid[int(np.argmin(nll))], rel=0.01)


def test_temperature_scaling_reduces_nll_and_keeps_accuracy():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 4, size=3000)
    z = 4.0 * rng.normal(size=(3000, 4))
    z[np.arange(3000), y] += 4.0  # right about 2/3 of the time, far too confident
    t = calibration.fit_temperature(z, y)
    assert t > 1.5  # overconfident logits are softened
    scaled = calibration.apply_temperature(z, t)
    before = calibration.negative_log_likelihood(y, z, from_logits=True)
    assert calibration.negative_log_likelihood(y, scaled) < before - 0.1
    assert calibration.expected_calibration_error(
        y, scaled
    ) < calibration.expected_calibration_error(y, z, from_logits=True)
    np.testing.assert_array_equal(scaled.argmax(axis=1), z.argmax(axis=1))


def test_fit_temperature_hits_the_lower_bound_on_separable_data():
    z = np.array([[3.0, 0.0], [0.0, 3.0]])
    assert calibration.fit_temperature(z, [0, 1], bounds=(0.1, 10.0)) == pytest.approx(
        0.1, rel=1e-3
    )


def test_reliability_diagram_draws_the_bins():
    _, p, rng = _random_probabilities(300, 3, seed=8)
    y = rng.integers(0, 3, size=300)
    bins = calibration.reliability_bins(y, p, num_bins=10)
    ax = calibration.reliability_diagram(y, p, num_bins=10, label="model")
    bars = ax.patches
    filled = bins.counts > 0
    assert len(bars) == filled.sum()
    np.testing.assert_allclose([b.get_height() for b in bars], bins.accuracy[filled])
    np.testing.assert_allclose([b.get_x() for b in bars], bins.edges[:-1][filled])
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["perfect calibration", f"model (ECE = {bins.ece:.3f})"]
    same = calibration.reliability_diagram(y, p, num_bins=10, ax=ax)
    assert same is ax
    assert [line.get_label() for line in ax.get_lines()] == ["perfect calibration"]
    assert ax.get_legend_handles_labels()[1][-1] == f"ECE = {bins.ece:.3f}"
    plt.close("all")


def test_rows_may_sum_to_one_within_the_tolerance():
    p = np.array([[0.5, 0.5 + 0.9 * calibration.SUM_TOLERANCE]])
    assert calibration.negative_log_likelihood([0], p) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="sum to 1"):
        calibration.negative_log_likelihood([0], [[0.5, 0.5 + 2 * calibration.SUM_TOLERANCE]])


@pytest.mark.parametrize(
    "function", [calibration.expected_calibration_error, calibration.negative_log_likelihood]
)
def test_logits_passed_as_probabilities_are_refused_with_a_hint(function):
    with pytest.raises(ValueError, match=r"sum to 1.*from_logits=True"):
        function([0, 1], [[2.0, 1.0], [0.5, 3.0]])
    with pytest.raises(ValueError, match=r">= 0.*row 1.*from_logits=True"):
        function([0, 1], [[0.5, 0.5], [1.5, -0.5]])


@pytest.mark.parametrize(
    ("y", "p", "message"),
    [
        ([0, 1, 1], np.eye(2), "one row per example.*y_true has 3"),
        ([0, 3], np.eye(2), r"\[0, 2\)"),
        ([0, -1], np.eye(2), r"\[0, 2\)"),
        ([0.0, 0.5], np.eye(2), "non-integer"),
        (np.zeros((2, 3)), np.eye(2), r"y_true.shape=\(2, 3\)"),
        ([0, 1], [0.5, 0.5], r"probabilities.shape=\(2,\)"),
        ([0, 1], [[np.nan, 1.0], [0.0, 1.0]], "NaN"),
        ([0, 1], [["a", "b"], ["c", "d"]], "numeric array"),
    ],
)
def test_bad_inputs_are_refused(y, p, message):
    with pytest.raises(ValueError, match=message):
        calibration.expected_calibration_error(y, p)


@pytest.mark.parametrize("num_bins", [0, -3, 2.5, True, "15"])
def test_num_bins_must_be_a_positive_integer(num_bins):
    with pytest.raises(ValueError, match="argument `num_bins`, expected a positive integer"):
        calibration.reliability_bins([0], [[1.0, 0.0]], num_bins=num_bins)


def test_bad_temperatures_and_bounds_are_refused():
    with pytest.raises(ValueError, match="argument `temperature`"):
        calibration.apply_temperature([[1.0, 0.0]], 0.0)
    for bounds in [(0.0, 1.0), (2.0, 1.0), (1.0,), "ab", (1.0, float("inf"))]:
        with pytest.raises(ValueError, match="argument `bounds`"):
            calibration.fit_temperature([[1.0, 0.0]], [0], bounds=bounds)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        calibration.fit_temperature([[1.0, 0.0]], [2])


def test_a_models_own_output_tensors_are_read_on_every_backend():
    """A model called directly returns the backend's tensors (on PyTorch, ones that require
    grad, which `np.asarray` cannot read): every function takes them as it takes arrays."""
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    logits = model(x)  # a backend tensor, not NumPy
    assert keras.ops.is_tensor(logits)
    probabilities = keras.ops.softmax(logits)
    labels = keras.ops.convert_to_tensor(y)
    as_numpy = keras.ops.convert_to_numpy
    assert calibration.expected_calibration_error(labels, probabilities) == pytest.approx(
        calibration.expected_calibration_error(y, as_numpy(probabilities)), abs=1e-12
    )
    assert calibration.negative_log_likelihood(y, logits, from_logits=True) == pytest.approx(
        calibration.negative_log_likelihood(y, as_numpy(logits), from_logits=True), abs=1e-12
    )
    assert calibration.fit_temperature(logits, labels) == pytest.approx(
        calibration.fit_temperature(as_numpy(logits), y), rel=1e-9
    )
    np.testing.assert_allclose(
        calibration.apply_temperature(logits, 2.0),
        calibration.apply_temperature(as_numpy(logits), 2.0),
    )
