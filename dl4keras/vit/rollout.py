"""Attention rollout (Abnar & Zuidema, 2020): where a ViT's class token looks, over all layers."""

import numpy as np
from keras import ops

from dl4keras import _validation

__all__ = ["attention_rollout", "rollout_matrix"]


def rollout_matrix(scores, head_fusion="mean", add_residual=True):
    """The rolled-out attention of every token to every input token.

    Abnar & Zuidema (2020): in each layer, fuse the heads (mean), add the
    identity for the residual connection and renormalise each row to sum to
    1, `Â = (A + I) / rowsum`; then multiply the layers,
    `R = Â_L · … · Â_2 · Â_1`. Row `t` of `R` says how much of each input
    token flows into token `t` of the last layer.

    Args:
        scores: A list (one per layer, first to last) of arrays of shape
            `(batch, heads, T, T)`, as `VisionTransformer.attention_scores`
            returns them (`(heads, T, T)` for a single example).
        head_fusion: `"mean"` (the paper), `"max"` or `"min"` over heads.
        add_residual: Whether to add the identity (the residual path).

    Returns:
        A NumPy array of shape `(batch, T, T)` (`(T, T)` for single
        examples); every row sums to 1.
    """
    if head_fusion not in ("mean", "max", "min"):
        raise ValueError(
            f'`head_fusion` must be "mean", "max" or "min". Received: head_fusion={head_fusion!r}'
        )
    if len(scores) == 0:
        raise ValueError("`scores` must hold the attention weights of at least one layer.")
    layers = [np.asarray(ops.convert_to_numpy(s), dtype="float64") for s in scores]
    single = layers[0].ndim == 3
    if single:
        layers = [s[None] for s in layers]
    first = layers[0].shape
    for i, s in enumerate(layers):
        if (
            s.ndim != 4
            or s.shape[-1] != s.shape[-2]
            or (s.shape[0], s.shape[-1]) != (first[0], first[-1])
        ):
            raise ValueError(
                "Every layer's scores must have shape (batch, heads, T, T), with the "
                "same batch and T. "
                f"Received: scores[0].shape={first}, scores[{i}].shape={s.shape}"
            )
    fuse = {"mean": np.mean, "max": np.max, "min": np.min}[head_fusion]
    tokens = first[-1]
    rollout = np.broadcast_to(np.eye(tokens), (first[0], tokens, tokens))
    for s in layers:
        a = fuse(s, axis=1)  # (B, T, T)
        if add_residual:
            a = a + np.eye(tokens)
        a = a / a.sum(-1, keepdims=True)
        rollout = a @ rollout  # later layers on the left
    return rollout[0] if single else rollout


def attention_rollout(
    scores, grid_size=None, has_class_token=True, head_fusion="mean", add_residual=True
):
    """Attention rollout as a map over the patch grid (Abnar & Zuidema, 2020).

    For a class-token model, the class token's row of `rollout_matrix`
    (how much each patch flows into the token the head classifies), without
    the class token's own column; for a GAP model (`has_class_token=False`)
    the mean over all rows (the head classifies the mean token). Reshaped
    to the patch grid, it overlays the image as a heatmap.

    Args:
        scores: List (one per layer) of arrays `(batch, heads, T, T)`, from
            `VisionTransformer.attention_scores`.
        grid_size: The patch grid `(grid_h, grid_w)`, or an int; default a
            square grid.
        has_class_token: Whether token 0 is a class token (`pooling="token"`).
        head_fusion: `"mean"`, `"max"` or `"min"`.
        add_residual: Whether to add the identity for the residual path.

    Returns:
        A NumPy array of shape `(batch, grid_h, grid_w)` (`(grid_h, grid_w)`
        for the scores of a single example).

    Examples:
        >>> from dl4keras.vit import attention_rollout, build
        >>> model = build("vit_digits", depth=2)  # 8×8 images, a 4×4 grid of patches
        >>> images = np.random.rand(3, 8, 8, 1).astype("float32")
        >>> maps = attention_rollout(model.attention_scores(images), grid_size=model.grid_size)
        >>> maps.shape  # one heatmap per image
        (3, 4, 4)
        >>> # The patches' shares of the class token: the rest stays with the token itself.
        >>> bool(np.all(maps.sum(axis=(1, 2)) < 1))
        True
    """
    rollout = rollout_matrix(scores, head_fusion=head_fusion, add_residual=add_residual)
    single = rollout.ndim == 2
    if single:
        rollout = rollout[None]
    prefix = int(bool(has_class_token))
    num_patches = rollout.shape[-1] - prefix
    if grid_size is None:
        side = int(round(num_patches**0.5))
        if side * side != num_patches:
            raise ValueError(
                f"The {num_patches} patch tokens do not form a square grid: pass "
                f"`grid_size=(grid_h, grid_w)`. Received: T={rollout.shape[-1]}, "
                f"has_class_token={has_class_token}"
            )
        grid_size = (side, side)
    grid_size = _validation.pair("grid_size", grid_size)
    if grid_size[0] * grid_size[1] != num_patches:
        raise ValueError(
            f"grid_size={grid_size} has {grid_size[0] * grid_size[1]} patches, but the "
            f"scores have {num_patches} patch tokens (T={rollout.shape[-1]}, "
            f"has_class_token={has_class_token})."
        )
    if has_class_token:
        weights = rollout[:, 0, prefix:]
    else:
        weights = rollout.mean(axis=1)
    maps = weights.reshape(-1, *grid_size).astype("float32")
    return maps[0] if single else maps
