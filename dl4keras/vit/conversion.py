"""Weights of a KerasHub `ViTBackbone` (e.g. a pretrained preset) in a `VisionTransformer`."""

import warnings

import numpy as np
from keras import ops

from dl4keras import _validation
from dl4keras.transformer import interpolate_position_embeddings
from dl4keras.vit.model import VisionTransformer

__all__ = ["keras_hub_rescaling", "load_keras_hub_weights"]


def _floats(value):
    if value is None:
        return None
    value = ops.convert_to_numpy(value) if hasattr(value, "shape") else value
    array = np.asarray(value, dtype="float64").reshape(-1)
    return float(array[0]) if array.size == 1 else tuple(float(v) for v in array)


def keras_hub_rescaling(image_converter):
    """The `(scale, offset)` of a KerasHub image converter, for `VisionTransformer(rescaling=...)`.

    A KerasHub `ViTBackbone` takes images already rescaled by its preset's
    `ViTImageConverter` (e.g. `vit_base_patch16_224_imagenet`: 0-255 pixels
    times 1/127.5, minus 1, into [-1, 1]); the backbone itself holds no
    scaling. Build the `VisionTransformer` with this pair so that it takes the
    same raw images as the preset's pipeline.

    Args:
        image_converter: A `keras_hub.layers.ImageConverter` (e.g.
            `keras_hub.layers.ViTImageConverter.from_preset(...)`).

    Returns:
        `(scale, offset)`, each a float or a tuple with one float per channel
        (`1.0` and `0.0` when the converter leaves them out).

    Examples:
        ```python
        import keras_hub
        from dl4keras import vit

        converter = keras_hub.layers.ViTImageConverter(scale=1 / 127.5, offset=-1.0)
        print(vit.keras_hub_rescaling(converter))   # (0.00784313725490196, -1.0)
        ```
    """
    if not hasattr(image_converter, "scale") or not hasattr(image_converter, "offset"):
        raise ValueError(
            "`image_converter` must be a KerasHub ImageConverter (with `scale` and `offset`). "
            f"Received: image_converter={image_converter!r}"
        )
    scale, offset = _floats(image_converter.scale), _floats(image_converter.offset)
    return (1.0 if scale is None else scale, 0.0 if offset is None else offset)


def _same(ours, theirs):
    """Equal configuration values; rescaling pairs compare as floats, per channel."""
    if isinstance(theirs, tuple) and len(theirs) == 2 and not isinstance(theirs[0], int):
        ours = (1.0, 0.0) if ours is None else ours  # no rescaling = the identity
        return all(
            np.allclose(np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64"), rtol=1e-6)
            for a, b in zip(ours, theirs)
        )
    return ours == theirs


def load_keras_hub_weights(model, backbone, interpolation="bicubic", image_converter=None):
    """Copies the weights of a KerasHub `ViTBackbone` into a `VisionTransformer`.

    KerasHub's ViT is the same architecture (patch Conv2D, class token,
    learned position embeddings, pre-LayerNorm blocks with a GELU MLP, final
    LayerNorm), so after loading, `model.encode(images)` equals
    `backbone(images)`, and the pooled features of `include_top=False`
    equal `backbone(images)[:, 0]`. The head, if any, is left as it is.

    Build the model with the backbone's numbers: `patch_size`,
    `hidden_dim`, `depth` (`num_layers`), `num_heads`, `mlp_dim`,
    `layer_norm_epsilon`, `pooling="token"` when the backbone uses a class
    token (`"gap"` otherwise). If the image sizes differ, the position
    embeddings are interpolated to the model's grid.

    **Input scaling.** The backbone holds no input scaling: its preset's
    image converter rescales the pixels first. Pass that converter as
    `image_converter` and the model must carry the same scaling
    (`VisionTransformer(rescaling=keras_hub_rescaling(converter))`), else a
    `ValueError` says what to build; then `model` takes the raw images the
    preset's pipeline takes. Without `image_converter`, nothing is checked,
    and the model expects images rescaled as the preset's converter does.

    Args:
        model: A `VisionTransformer`.
        backbone: A `keras_hub.models.ViTBackbone` (e.g. from
            `ViTBackbone.from_preset("vit_base_patch16_224_imagenet")`).
        interpolation: Interpolation of the position embeddings when the
            grids differ.
        image_converter: Optional KerasHub image converter of the preset
            (see "Input scaling").

    Returns:
        The model, its weights replaced.

    Examples:
        A pretrained preset (downloaded once, about 340 MB), for raw 0-255 images:

        ```python
        # requires: network
        import keras_hub
        from dl4keras import vit

        preset = "vit_base_patch16_224_imagenet"
        backbone = keras_hub.models.ViTBackbone.from_preset(preset)
        converter = keras_hub.layers.ViTImageConverter.from_preset(preset)
        model = vit.VisionTransformer.from_config_name(
            "vit_base", num_classes=10, rescaling=vit.keras_hub_rescaling(converter)
        )
        vit.load_keras_hub_weights(model, backbone, image_converter=converter)
        # Fine-tune `model`: the encoder is pretrained, the 10-class head is new.
        ```

        Offline, a tiny random `ViTBackbone`: after loading, the model's
        encoder computes exactly what the backbone computes.

        >>> import keras_hub
        >>> from dl4keras.vit import VisionTransformer, load_keras_hub_weights
        >>> backbone = keras_hub.models.ViTBackbone(
        ...     image_shape=(16, 16, 3), patch_size=8, num_layers=1, num_heads=2,
        ...     hidden_dim=32, mlp_dim=64,
        ... )
        >>> model = VisionTransformer(
        ...     image_size=16, patch_size=8, depth=1, num_heads=2, hidden_dim=32, mlp_dim=64,
        ...     include_top=False,
        ... )
        >>> model = load_keras_hub_weights(model, backbone)
        >>> x = np.random.uniform(-1, 1, size=(2, 16, 16, 3)).astype("float32")
        >>> ours, theirs = (keras.ops.convert_to_numpy(t) for t in (model.encode(x), backbone(x)))
        >>> bool(np.allclose(ours, theirs, atol=1e-5))  # class token + 2×2
        True
        >>> tuple(model(x).shape)  # pooled: the class token's final state
        (2, 32)
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(
            f"`model` must be a dl4keras VisionTransformer. Received: {type(model).__name__}"
        )
    patch_size = _validation.pair("patch_size", tuple(backbone.patch_size))
    if getattr(backbone, "data_format", "channels_last") == "channels_first":
        h, w, channels = backbone.image_shape[1], backbone.image_shape[2], backbone.image_shape[0]
    else:
        h, w, channels = backbone.image_shape
    wanted = {
        "patch_size": (model.patch_size, patch_size),
        "num_channels": (model.num_channels, channels),
        "hidden_dim": (model.hidden_dim, backbone.hidden_dim),
        "depth": (model.depth, backbone.num_layers),
        "num_heads": (model.num_heads, backbone.num_heads),
        "mlp_dim": (model.mlp_dim, backbone.mlp_dim),
        "pooling": (model.pooling, "token" if backbone.use_class_token else "gap"),
        "use_patch_bias": (model.use_patch_bias, bool(backbone.use_patch_bias)),
        "conv_stem": (model.conv_stem, ()),  # KerasHub's ViT has none
    }
    if image_converter is not None:
        wanted["rescaling"] = (model.rescaling, keras_hub_rescaling(image_converter))
    wrong = {k: v for k, v in wanted.items() if not _same(*v)}
    if wrong:
        details = ", ".join(
            f"{k}={ours!r} (backbone: {theirs!r})" for k, (ours, theirs) in wrong.items()
        )
        raise ValueError(
            f"The model does not match the KerasHub backbone: {details}. Build it "
            "with the backbone's values"
            + (
                " (rescaling=dl4keras.vit.keras_hub_rescaling(image_converter))."
                if "rescaling" in wrong
                else "."
            )
        )
    if not (backbone.use_mha_bias and backbone.use_mlp_bias):
        raise ValueError(
            "Backbones without attention or MLP biases are not supported. Received: "
            f"use_mha_bias={backbone.use_mha_bias}, use_mlp_bias={backbone.use_mlp_bias}"
        )
    if not np.isclose(model.layer_norm_epsilon, backbone.layer_norm_epsilon):
        warnings.warn(
            f"layer_norm_epsilon differs: model {model.layer_norm_epsilon}, backbone "
            f"{backbone.layer_norm_epsilon}; outputs will differ slightly. Build the "
            f"model with layer_norm_epsilon={backbone.layer_norm_epsilon}.",
            stacklevel=2,
        )

    embed = backbone.get_layer("vit_patching_and_embedding")
    encoder = backbone.get_layer("vit_encoder")
    model.get_layer("patch_embedding").projection.set_weights(embed.patch_embedding.get_weights())
    if model.use_class_token:
        model.get_layer("class_token").token.assign(np.asarray(embed.class_token.numpy()))
    positions = np.asarray(ops.convert_to_numpy(embed.position_embedding.embeddings))
    grid = (h // patch_size[0], w // patch_size[1])
    if grid != model.grid_size:
        positions = interpolate_position_embeddings(
            positions, grid, model.grid_size, model.num_prefix_tokens, interpolation
        )
    model.get_layer("position_embedding").embeddings.assign(positions)
    for ours, theirs in zip(model.encoder_blocks, encoder.encoder_layers):
        ours.ln_1.set_weights(theirs.layer_norm_1.get_weights())
        ours.mha.set_weights(theirs.mha.get_weights())  # same layout as keras's MHA
        ours.ln_2.set_weights(theirs.layer_norm_2.get_weights())
        ours.dense_1.set_weights(theirs.mlp.dense_1.get_weights())
        ours.dense_2.set_weights(theirs.mlp.dense_2.get_weights())
    model.get_layer("encoder_norm").set_weights(encoder.layer_norm.get_weights())
    return model
