"""Tests for dl4keras.viz (matplotlib Agg backend, no display)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dl4keras import viz  # noqa: E402

TOKENS = ["[CLS]", "the", "cat", "sat", "[SEP]"]


def softmax_rows(shape, seed=0):
    x = np.random.default_rng(seed).normal(size=shape)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_grid_still_works():
    fig = viz.image_grid(np.zeros((3, 8, 8)), titles=["a", "b", "c"])
    assert isinstance(fig, Figure)


# ---------------------------------------------------------------- attention_heatmap


def test_attention_heatmap_labels_title_colorbar():
    fig = viz.attention_heatmap(softmax_rows((5, 5)), TOKENS, title="layer 0, head 3")
    assert isinstance(fig, Figure)
    heatmap, colorbar = fig.axes
    assert [t.get_text() for t in heatmap.get_xticklabels()] == TOKENS
    assert [t.get_text() for t in heatmap.get_yticklabels()] == TOKENS
    assert heatmap.get_title() == "layer 0, head 3"
    assert heatmap.get_xlabel() and heatmap.get_ylabel()
    assert colorbar.get_ylabel() == "attention weight"
    assert len(heatmap.texts) == 25  # small matrices are annotated


def test_attention_heatmap_cross_attention_into_given_axes():
    fig, ax = plt.subplots()
    out = viz.attention_heatmap(
        softmax_rows((2, 5)), TOKENS, y_labels=["le", "chat"], ax=ax, colorbar=False
    )
    assert out is fig and len(fig.axes) == 1
    assert [t.get_text() for t in ax.get_yticklabels()] == ["le", "chat"]


class FakeTensor:
    """Stands for an eager backend tensor: no __array__, a .numpy() method."""

    def __init__(self, array):
        self._array = array

    def numpy(self):
        return self._array


def test_plots_accept_tensors():
    fig = viz.attention_heatmap(FakeTensor(softmax_rows((3, 3))), ["a", "b", "c"])
    assert isinstance(fig, Figure)
    fig = viz.attention_grid([FakeTensor(softmax_rows((2, 3, 3)))], ["a", "b", "c"])
    assert isinstance(fig, Figure)
    fig = viz.attention_overlay(FakeTensor(np.zeros((8, 8, 3))), FakeTensor(np.ones((2, 2))))
    assert isinstance(fig, Figure)


def test_plots_accept_the_backends_own_tensors():
    """Layer outputs of this backend, with gradient on PyTorch (where `.numpy()` refuses them)."""
    import keras

    logits = keras.layers.Dense(3)(np.ones((3, 2), "float32"))
    weights = keras.ops.softmax(logits, axis=-1)
    fig = viz.attention_heatmap(weights, ["a", "b", "c"])
    shown = fig.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(np.asarray(shown), keras.ops.convert_to_numpy(weights), rtol=1e-6)
    image = keras.ops.convert_to_tensor(np.zeros((8, 8, 3), "float32"))
    assert isinstance(viz.attention_overlay(image, weights[:2, :2]), Figure)


@pytest.mark.parametrize(
    "weights, x_labels, y_labels, match",
    [
        (np.ones((2, 5, 5)), TOKENS, None, "2D matrix"),
        (np.ones((5, 5)), TOKENS[:4], None, "Got 4 `x_labels` for 5 keys"),
        (np.ones((2, 5)), TOKENS, None, "pass `y_labels`"),
        (np.ones((2, 5)), TOKENS, ["a"], "Got 1 `y_labels` for 2 queries"),
        (np.full((5, 5), np.nan), TOKENS, None, "NaN"),
    ],
)
def test_attention_heatmap_bad_input(weights, x_labels, y_labels, match):
    with pytest.raises(ValueError, match=match):
        viz.attention_heatmap(weights, x_labels, y_labels)


# ---------------------------------------------------------------- attention_grid


def test_attention_grid_rows_are_layers_columns_are_heads():
    per_layer = [softmax_rows((1, 3, 5, 5), seed=i) for i in range(2)]  # (batch, heads, T, S)
    fig = viz.attention_grid(per_layer, TOKENS)
    assert isinstance(fig, Figure)
    panels = fig.axes[:-1]
    assert len(panels) == 6 and fig.axes[-1].get_ylabel() == "attention weight"
    assert [ax.get_title() for ax in panels[:3]] == ["head 0", "head 1", "head 2"]
    assert [panels[0].get_ylabel(), panels[3].get_ylabel()] == ["layer 0", "layer 1"]
    assert [t.get_text() for t in panels[3].get_xticklabels()] == TOKENS
    assert fig._suptitle is not None


def test_attention_grid_array_input_and_selection():
    weights = softmax_rows((4, 3, 2, 5))  # (layers, heads, queries, keys)
    fig = viz.attention_grid(weights, TOKENS, query_tokens=["x", "y"], layers=[0, 3], heads=[1])
    assert len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes[:2]] == ["layer 0", "layer 3"]


@pytest.mark.parametrize(
    "weights, kwargs, match",
    [
        ([], {}, "is empty"),
        ([np.ones((2, 5, 5)), np.ones((3, 5, 5))], {}, "same"),
        ([np.ones((5, 5))], {}, "heads, queries, keys"),
        (np.ones((2, 2, 5, 5)), {"heads": [2]}, "`heads` must be"),
        ([np.ones((1, 2, 5, 5))], {"batch_index": 1}, "out of range"),
        ([np.ones((2, 3, 5))], {}, "pass `query_tokens`"),
    ],
)
def test_attention_grid_bad_input(weights, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.attention_grid(weights, TOKENS, **kwargs)


def test_attention_grid_label_count_is_checked():
    with pytest.raises(ValueError, match="Got 4 `tokens` for 5 keys"):
        viz.attention_grid([np.ones((2, 5, 5))], TOKENS[:4])


# ---------------------------------------------------------------- attention_overlay


def test_attention_overlay_upsamples_the_patch_map():
    image = np.random.default_rng(0).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    attention = np.zeros((4, 3))
    attention[0, 0] = 1.0
    fig = viz.attention_overlay(image, attention, alpha=0.6, title="head 0")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    photo, overlay = ax.get_images()
    assert photo.get_array().shape == (64, 48, 3)
    upsampled = np.asarray(overlay.get_array())
    assert upsampled.shape == (64, 48) and overlay.get_alpha() == 0.6
    # The attended patch is the top-left one: bright there, dark far away.
    assert upsampled[:8, :8].mean() > 0.9 and upsampled[32:, 24:].max() == 0.0
    assert ax.get_title() == "head 0" and len(fig.axes) == 2  # + colorbar


def test_attention_overlay_flat_map_grayscale_nearest():
    fig = viz.attention_overlay(
        np.ones((32, 32)), np.arange(16.0), interpolation="nearest", colorbar=False
    )
    overlay = np.asarray(fig.axes[0].get_images()[1].get_array())
    # One constant 8 x 8 block per patch, min-max scaled.
    np.testing.assert_allclose(overlay[:8, :8], 0.0)
    np.testing.assert_allclose(overlay[-8:, -8:], 1.0)
    assert len(np.unique(overlay)) == 16


@pytest.mark.parametrize(
    "image, attention, kwargs, match",
    [
        (np.ones((8, 8, 2)), np.ones((2, 2)), {}, "`image` must have shape"),
        (np.ones((8, 8)), np.ones(15), {}, "square number"),
        (np.ones((8, 8)), np.ones((2, 2, 2)), {}, "`attention_map` must have shape"),
        (np.ones((8, 8)), -np.ones((2, 2)), {}, "non-negative"),
        (np.ones((8, 8)), np.ones((16, 16)), {}, "larger than the image"),
        (np.ones((8, 8)), np.ones((2, 2)), {"alpha": 1.5}, "`alpha` must be in"),
        (np.ones((8, 8)), np.ones((2, 2)), {"interpolation": "cubic"}, "`interpolation`"),
    ],
)
def test_attention_overlay_bad_input(image, attention, kwargs, match):
    with pytest.raises(ValueError, match=match):
        viz.attention_overlay(image, attention, **kwargs)


def test_heatmap_annotation_fontsize_and_grid_without_tick_labels():
    weights = np.full((3, 3), 1 / 3)
    fig = viz.attention_heatmap(weights, ["a", "b", "c"], annotation_fontsize=11)
    assert {t.get_fontsize() for t in fig.axes[0].texts} == {11}
    plt.close(fig)
    grid = viz.attention_grid([np.full((2, 3, 3), 1 / 3)], ["a", "b", "c"], tick_labels=False)
    panels = grid.axes[:-1]
    assert all(not ax.get_xticklabels() and not ax.get_yticklabels() for ax in panels)
    assert panels[0].get_ylabel() == "layer 0"  # the layer names stay
    plt.close(grid)
