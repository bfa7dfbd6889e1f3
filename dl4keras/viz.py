"""Plots for the tutorials (matplotlib).

Small, readable figures for the documentation site: every plot has a title,
labelled axes where they carry meaning, and returns its `Figure` so a learner
can save or tweak it.
"""

from __future__ import annotations

import math

import numpy as np


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

    Example:

    >>> import numpy as np
    >>> fig = image_grid(np.zeros((3, 8, 8)), titles=["a", "b", "c"])
    """
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(
            f"`images` must have shape (n, height, width[, channels]) with n >= 1, "
            f"got shape {images.shape}."
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"Got {len(titles)} titles for {len(images)} images.")
    columns = max(1, min(int(columns), len(images)))
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows + 0.4), squeeze=False)
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
