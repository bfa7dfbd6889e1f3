"""Plots for the tutorials (matplotlib).

Small, readable figures for the documentation site: every plot has a title,
labelled axes where they carry meaning, and returns its `Figure` so a learner
can save or tweak it.
"""

from __future__ import annotations

import math

import numpy as np


def _count(n, singular, plural):
    """`"1 key"`, `"2 keys"`: a number and its noun, in the right number."""
    return f"{n} {singular if n == 1 else plural}"


def image_grid(images, titles=None, columns=8, size=1.4, title=None):
    """Shows images in a grid.

    Args:
        images: array-like of shape `(n, height, width)` or
            `(n, height, width, channels)`; uint8 0-255 or float 0-1.
        titles: optional list of `n` strings shown above each image.
        columns: images per row.
        size: inches per image.
        title: optional figure title.

    Returns:
        The matplotlib `Figure`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import viz
        >>> images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype="uint8")
        >>> fig = viz.image_grid(images, titles=list("abcde"), columns=3, title="Five images")
        >>> len(fig.axes), fig.axes[0].get_title()  # 2 rows of 3, the last panel empty
        (6, 'a')
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(
            f"`images` must have shape (n, height, width[, channels]) with n >= 1, "
            f"got shape {images.shape}."
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(
            f"Got {_count(len(titles), 'title', 'titles')} for "
            f"{_count(len(images), 'image', 'images')}: pass one title per image."
        )
    columns = max(1, min(int(columns), len(images)))
    rows = math.ceil(len(images) / columns)
    title_height = 0.3 if titles is not None else 0.0  # inches above each image
    height = (size + title_height) * rows + (0.5 if title else 0.0)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, height), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i], cmap="gray" if images.ndim == 3 else None)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- attention


def _numpy(x):
    """A backend tensor as NumPy (a PyTorch tensor with gradient too); anything else as is."""
    import keras

    if keras.ops.is_tensor(x) or isinstance(x, keras.Variable):
        return keras.ops.convert_to_numpy(x)
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        return x.numpy()
    return x


def _as_array(x, name):
    """Converts a numpy array, a backend tensor or a nested list to float numpy."""
    x = _numpy(x)
    try:
        array = np.asarray(x, dtype="float32")
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`{name}` must be an array or a tensor of numbers, got {type(x).__name__}: {error}"
        ) from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return array


def _check_labels(labels, count, name, singular, plural):
    """`labels` as strings; `singular`/`plural` name what they label ("key", "keys")."""
    labels = [str(label) for label in labels]
    if len(labels) != count:
        raise ValueError(
            f"Got {len(labels)} `{name}` for {_count(count, singular, plural)}: there must be "
            f"one label per {singular.split(' (')[0]}."
        )
    return labels


def _label_fontsize(count):
    return 9 if count <= 12 else 7 if count <= 24 else 5


def attention_heatmap(
    weights,
    x_labels,
    y_labels=None,
    ax=None,
    title="Attention weights",
    cmap="viridis",
    colorbar=True,
    annotate=None,
    vmin=0.0,
    vmax=None,
    annotation_fontsize=7,
):
    """Draws the attention weights of one head as a heatmap with token labels.

    Row `i` is query (attending) token `i`, column `j` is key (attended-to)
    token `j`: cell `(i, j)` is how much query `i` attends to key `j`, so each
    row of a softmax attention matrix sums to 1.

    Args:
        weights: array-like or tensor of shape `(query_length, key_length)`,
            for example `scores[0, head]` from
            `keras.layers.MultiHeadAttention(..., return_attention_scores=True)`.
        x_labels: `key_length` labels (the key tokens), shown along the bottom.
        y_labels: `query_length` labels (the query tokens), shown on the left.
            Defaults to `x_labels` (self-attention), which then requires a
            square `weights` matrix.
        ax: optional matplotlib `Axes` to draw into; a new figure otherwise.
        title: title of the axes.
        cmap: matplotlib colormap name.
        colorbar: whether to add a colorbar.
        annotate: whether to print each weight in its cell. Defaults to
            `True` for matrices up to 10 x 10.
        vmin: bottom of the colour scale. Defaults to 0 (weights are
            probabilities); pass `None` to use the minimum of `weights`.
        vmax: top of the colour scale; `None` uses the maximum of `weights`.
        annotation_fontsize: font size of the weights printed in the cells.

    Returns:
        The matplotlib `Figure` holding the heatmap.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import viz
        >>> causal = np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None]  # rows sum to 1
        >>> fig = viz.attention_heatmap(causal, ["the", "cat", "sat"], title="Causal attention")
        >>> ax = fig.axes[0]  # fig.axes[1] is the colorbar
        >>> ax.get_title(), [label.get_text() for label in ax.get_xticklabels()]
        ('Causal attention', ['the', 'cat', 'sat'])
    """
    import matplotlib.pyplot as plt

    weights = _as_array(weights, "weights")
    if weights.ndim != 2:
        raise ValueError(
            "`weights` must be a 2D matrix of shape (query_length, key_length) for one head; "
            f"got shape {weights.shape}. Select one example and one head first, "
            "e.g. `scores[0, head]`."
        )
    queries, keys = weights.shape
    x_labels = _check_labels(x_labels, keys, "x_labels", "key (column)", "keys (columns)")
    if y_labels is None:
        if queries != keys:
            raise ValueError(
                f"`weights` has shape {weights.shape} (queries != keys): pass `y_labels` "
                "for the query tokens."
            )
        y_labels = x_labels
    else:
        y_labels = _check_labels(y_labels, queries, "y_labels", "query (row)", "queries (rows)")
    if annotate is None:
        annotate = queries <= 10 and keys <= 10

    if ax is None:
        side = 0.45 * max(queries, keys) + 1.5
        fig, ax = plt.subplots(
            figsize=(min(side + 1.0, 12.0), min(side, 11.0)), layout="constrained"
        )
    else:
        fig = ax.figure
    image = ax.imshow(weights, cmap=cmap, vmin=vmin, vmax=vmax, aspect="equal")
    fontsize = _label_fontsize(max(queries, keys))
    ax.set_xticks(range(keys), x_labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(queries), y_labels, fontsize=fontsize)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    if annotate:
        low, high = image.get_clim()
        middle = (low + high) / 2
        for i in range(queries):
            for j in range(keys):
                value = weights[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=annotation_fontsize,
                    color="black" if value > middle else "white",
                )
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return fig


def _stack_layers(weights_per_layer, batch_index):
    """Returns a `(layers, heads, queries, keys)` array from per-layer weights."""
    if isinstance(weights_per_layer, (list, tuple)):
        if len(weights_per_layer) == 0:
            raise ValueError("`weights_per_layer` is empty: pass one weight array per layer.")
        layers = [_as_array(w, f"weights_per_layer[{i}]") for i, w in enumerate(weights_per_layer)]
    else:
        array = _as_array(weights_per_layer, "weights_per_layer")
        if array.ndim not in (4, 5):
            raise ValueError(
                "`weights_per_layer` must be a list with one `(heads, queries, keys)` or "
                "`(batch, heads, queries, keys)` array per layer, or an array of shape "
                f"(layers, heads, queries, keys); got an array of shape {array.shape}."
            )
        layers = list(array)
    stacked = []
    for i, w in enumerate(layers):
        if w.ndim == 4:
            if not 0 <= batch_index < w.shape[0]:
                raise ValueError(
                    f"`batch_index={batch_index}` is out of range for layer {i}, whose "
                    f"weights have shape {w.shape} (batch size {w.shape[0]})."
                )
            w = w[batch_index]
        if w.ndim != 3:
            raise ValueError(
                f"The weights of layer {i} must have shape (heads, queries, keys) or "
                f"(batch, heads, queries, keys); got shape {w.shape}."
            )
        if stacked and w.shape != stacked[0].shape:
            raise ValueError(
                f"All layers must have the same (heads, queries, keys) shape: layer 0 has "
                f"{stacked[0].shape}, layer {i} has {w.shape}."
            )
        stacked.append(w)
    return np.stack(stacked)


def _select(indices, count, name):
    if indices is None:
        return list(range(count))
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < count]
    if bad or not indices:
        raise ValueError(f"`{name}` must be non-empty indices in [0, {count}); got {indices}.")
    return indices


def attention_grid(
    weights_per_layer,
    tokens,
    query_tokens=None,
    layers=None,
    heads=None,
    batch_index=0,
    size=2.0,
    cmap="viridis",
    title="Attention weights per layer (rows) and head (columns)",
    tick_labels=True,
):
    """Draws a grid of attention heatmaps: one row per layer, one column per head.

    All panels share one colour scale (0 to the largest weight shown) and one
    colorbar, so heads can be compared at a glance; token labels are shown on
    the left column and the bottom row.

    Args:
        weights_per_layer: a list with one array per layer, each of shape
            `(heads, queries, keys)` or `(batch, heads, queries, keys)` (the
            scores a `MultiHeadAttention` layer returns), or one array of shape
            `(layers, heads, queries, keys)`. Tensors are accepted.
        tokens: `keys` labels, the key tokens.
        query_tokens: `queries` labels. Defaults to `tokens` (self-attention).
        layers: optional indices of the layers to show (default: all).
        heads: optional indices of the heads to show (default: all).
        batch_index: which example to show when the weights have a batch axis.
        size: inches per panel.
        cmap: matplotlib colormap name.
        title: figure title.
        tick_labels: whether to label the left column and bottom row with the
            tokens; `False` for many small panels, whose labels would be
            unreadable (each panel's rows and columns are then `query_tokens`
            and `tokens`, in order).

    Returns:
        The matplotlib `Figure`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import viz
        >>> weights = [np.full((2, 3, 3), 1 / 3) for _ in range(2)]  # 2 layers of 2 heads
        >>> fig = viz.attention_grid(weights, ["the", "cat", "sat"])
        >>> [ax.get_title() for ax in fig.axes[:2]], len(fig.axes)  # 4 panels and a colorbar
        (['head 0', 'head 1'], 5)
    """
    import matplotlib.pyplot as plt

    weights = _stack_layers(weights_per_layer, int(batch_index))
    num_layers, num_heads, queries, keys = weights.shape
    tokens = _check_labels(tokens, keys, "tokens", "key", "keys")
    if query_tokens is None:
        if queries != keys:
            raise ValueError(
                f"The weights have {_count(queries, 'query', 'queries')} and "
                f"{_count(keys, 'key', 'keys')}: pass `query_tokens` "
                "for the query tokens."
            )
        query_tokens = tokens
    else:
        query_tokens = _check_labels(query_tokens, queries, "query_tokens", "query", "queries")
    layers = _select(layers, num_layers, "layers")
    heads = _select(heads, num_heads, "heads")

    rows, columns = len(layers), len(heads)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(size * columns + 1.2, size * rows + 0.8),
        squeeze=False,
        layout="constrained",
    )
    vmax = float(weights[np.ix_(layers, heads)].max()) or 1.0
    fontsize = max(4, _label_fontsize(max(queries, keys)) - 2)
    image = None
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            ax = axes[r, c]
            image = ax.imshow(weights[layer, head], cmap=cmap, vmin=0.0, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"head {head}", fontsize=9)
            if c == 0:
                if tick_labels:
                    ax.set_yticks(range(queries), query_tokens, fontsize=fontsize)
                ax.set_ylabel(f"layer {layer}", fontsize=9)
            if r == rows - 1 and tick_labels:
                ax.set_xticks(range(keys), tokens, rotation=90, fontsize=fontsize)
    if title:
        fig.suptitle(title)
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    return fig


def _upsample(array, height, width, interpolation):
    """Resizes a 2D map to `(height, width)` (pixel centres aligned)."""
    h, w = array.shape
    rows = (np.arange(height) + 0.5) * h / height - 0.5
    cols = (np.arange(width) + 0.5) * w / width - 0.5
    if interpolation == "nearest":
        r = np.clip(np.floor(rows + 0.5).astype(int), 0, h - 1)
        c = np.clip(np.floor(cols + 0.5).astype(int), 0, w - 1)
        return array[np.ix_(r, c)]
    rows, cols = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = array[np.ix_(r0, c0)] * (1 - fc) + array[np.ix_(r0, c1)] * fc
    bottom = array[np.ix_(r1, c0)] * (1 - fc) + array[np.ix_(r1, c1)] * fc
    return top * (1 - fr) + bottom * fr


def attention_overlay(
    image,
    attention_map,
    ax=None,
    alpha=0.5,
    cmap="inferno",
    interpolation="bilinear",
    normalize=True,
    colorbar=True,
    title="Attention over the image",
):
    """Overlays a patch-attention map on an image.

    A Vision Transformer attends over a grid of `h x w` patches; this function
    upsamples that grid to the image size and draws it on top of the image
    with a colormap and transparency, so you can see which regions a head (or
    an attention rollout) looks at.

    Args:
        image: array-like of shape `(height, width)` or
            `(height, width, channels)` with 1, 3 or 4 channels; uint8 0-255
            or float 0-1.
        attention_map: array-like of shape `(h, w)`, or a flat vector of
            `h * w` patch weights with `h == w` (e.g. the `[CLS]` token's
            attention to the patches), non-negative.
        ax: optional matplotlib `Axes` to draw into; a new figure otherwise.
        alpha: opacity of the attention layer, in `[0, 1]`.
        cmap: matplotlib colormap name for the attention.
        interpolation: `"bilinear"` (smooth) or `"nearest"` (one block per
            patch) upsampling.
        normalize: whether to rescale the map to `[0, 1]` before drawing
            (min-max), so weak and strong maps use the full colormap.
        colorbar: whether to add a colorbar.
        title: title of the axes.

    Returns:
        The matplotlib `Figure`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import viz
        >>> image = np.zeros((64, 64, 3), dtype="uint8")
        >>> patches = np.eye(4)  # a 4 x 4 grid of patch weights, e.g. from a ViT's [CLS] token
        >>> fig = viz.attention_overlay(image, patches, interpolation="nearest")
        >>> fig.axes[0].get_images()[1].get_array().shape  # upsampled to the image
        (64, 64)
    """
    import matplotlib.pyplot as plt

    image = np.asarray(_numpy(image))
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] not in (3, 4)):
        raise ValueError(
            "`image` must have shape (height, width) or (height, width, channels) with 1, 3 "
            f"or 4 channels; got shape {image.shape}."
        )
    if image.size == 0:
        raise ValueError(f"`image` is empty (shape {image.shape}).")
    attention = _as_array(attention_map, "attention_map")
    if attention.ndim == 1:
        side = int(round(np.sqrt(attention.size)))
        if side * side != attention.size or side == 0:
            raise ValueError(
                f"A flat `attention_map` must have a square number of patches (h * w with "
                f"h == w); got {attention.size}. Reshape it to (h, w) yourself otherwise."
            )
        attention = attention.reshape(side, side)
    if attention.ndim != 2 or attention.size == 0:
        raise ValueError(
            "`attention_map` must have shape (h, w) (one weight per patch) or be a flat "
            f"vector of h * w weights; got shape {attention.shape}."
        )
    if attention.min() < 0:
        raise ValueError(
            f"`attention_map` must be non-negative (attention weights); its minimum is "
            f"{attention.min():.4g}."
        )
    height, width = image.shape[:2]
    if attention.shape[0] > height or attention.shape[1] > width:
        raise ValueError(
            f"`attention_map` has shape {attention.shape}, larger than the image "
            f"({height} x {width}): expected one weight per patch."
        )
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"`alpha` must be in [0, 1], got {alpha}.")
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"`interpolation` must be 'bilinear' or 'nearest', got {interpolation!r}.")
    if normalize:
        low, high = attention.min(), attention.max()
        attention = (attention - low) / (high - low) if high > low else np.zeros_like(attention)
    upsampled = _upsample(attention, height, width, interpolation)

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 4.2), layout="constrained")
    else:
        fig = ax.figure
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    overlay = ax.imshow(upsampled, cmap=cmap, alpha=float(alpha))
    ax.axis("off")
    if title:
        ax.set_title(title)
    if colorbar:
        label = "attention (min-max scaled)" if normalize else "attention weight"
        bar = fig.colorbar(overlay, ax=ax, fraction=0.046, pad=0.04, label=label)
        bar.solids.set_alpha(1.0)  # an opaque scale, whatever the overlay's alpha
    return fig
