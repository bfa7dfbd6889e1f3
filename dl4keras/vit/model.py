"""`VisionTransformer`: the ViT model, a functional `keras.Model`, and `build`."""

import keras
import numpy as np
from keras import ops

from dl4keras import _validation
from dl4keras.transformer import (
    PatchPositionEmbedding,
    TransformerEncoderBlock,
)
from dl4keras.vit.layers import ClassToken, ClassTokenPooling, PatchEmbedding
from dl4keras.vit.presets import CONFIGS, POLICIES, list_configs

__all__ = ["VisionTransformer", "build"]


def _rescaling(rescaling, num_channels):
    """`rescaling` as `None` or a `(scale, offset)` pair of floats or per-channel tuples."""
    if rescaling is None:
        return None

    def part(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, (tuple, list)) and len(value) == num_channels:
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                return tuple(float(v) for v in value)
        raise ValueError  # caught below

    try:
        scale, offset = rescaling
        return (part(scale), part(offset))
    except (TypeError, ValueError):
        raise _validation.invalid(
            "rescaling",
            f"None or (scale, offset), each a float or {num_channels} floats (one per channel)",
            rescaling,
        ) from None


@keras.saving.register_keras_serializable(package="dl4keras")
class VisionTransformer(keras.Model):
    """Vision Transformer (ViT) image classifier or feature extractor.

    A functional `keras.Model` (so `summary()` shows every layer and its
    shape) built from `PatchEmbedding`, `ClassToken`,
    `PatchPositionEmbedding`, `TransformerEncoderBlock` × `depth`, a final
    LayerNorm, pooling and a `Dense` head. It saves to `.keras` files and
    loads back with `keras.saving.load_model(path)` (safe mode).

    Named configurations (`CONFIGS`): `vit_tiny`, `vit_small`, `vit_base`
    (ViT/DeiT, patch 16 at 224×224; hidden 192/384/768, depth 12, heads
    3/6/12, MLP 768/1536/3072), and `vit_digits` (8×8), `vit_mnist`
    (28×28), `vit_cifar` (32×32). Build one with
    `VisionTransformer.from_config_name("vit_small", num_classes=...)` or
    `dl4keras.vit.build(...)`.

    Input range: the model computes on the pixel values it is given; it
    rescales nothing unless `rescaling=(scale, offset)` puts a
    `keras.layers.Rescaling` in front. Train on whatever range you like
    (the tutorials use [0, 1]); pretrained weights expect the range their
    preset's image converter produces, which `keras_hub_rescaling` reads.

    Mixed precision: with `dtype_policy="mixed_float16"` or
    `"mixed_bfloat16"` the layers compute in half precision while the
    variables stay float32; the attention logits and softmax, the head and
    its activation are float32, so the outputs are float32. `compile()`
    wraps the optimizer in a `keras.optimizers.LossScaleOptimizer` for
    `mixed_float16` (Keras does so for a model whose dtype policy is
    `mixed_float16`).

    Args:
        image_size: Image size, an int or `(height, width)`.
        patch_size: Patch size, an int or `(ph, pw)`; must divide the image
            size.
        num_channels: Channels of the images (channels last).
        hidden_dim: Size of the tokens.
        depth: Number of encoder blocks.
        num_heads: Attention heads per block; must divide `hidden_dim`.
        mlp_dim: Hidden size of each block's MLP.
        num_classes: Number of classes of the head.
        include_top: If `False`, no head: the model returns the pooled
            features, shape `(batch, hidden_dim)`.
        pooling: `"token"` (a class token is prepended and its final state
            classified) or `"gap"` (no class token; the final tokens are
            averaged).
        dropout: Dropout after the position embedding, the attention output
            and in the MLPs.
        attention_dropout: Dropout on the attention weights.
        stochastic_depth: Largest drop-path rate; block `i` of `depth` uses
            `stochastic_depth · i / (depth - 1)` (DeiT's linear rule).
        layer_norm_epsilon: Epsilon of every LayerNormalization.
        use_patch_bias: Whether the patch projection has a bias.
        conv_stem: Output channels of 3×3 convolutions (stride 1, `"same"`
            padding, GELU) run on the images before they are cut into
            patches, e.g. `(32, 32)`; default `()`, none (the plain ViT).
            A *convolutional stem* gives every patch token a view of its
            neighbourhood, a locality prior that helps a ViT trained from
            scratch on little data (Xiao et al., 2021, "Early convolutions
            help transformers see better"; Hassani et al., 2021, compact
            convolutional transformers). The token grid is unchanged.
        rescaling: `None` (default: the pixel values are used as given) or
            `(scale, offset)`: a `keras.layers.Rescaling` first computes
            `images * scale + offset`, each a float or one per channel. E.g.
            `(1 / 255, 0)` lets the model take raw 0-255 images like
            `dl4keras.backbones` models; pretrained KerasHub weights need
            the preset's own scaling
            (`dl4keras.vit.keras_hub_rescaling(image_converter)`).
        classifier_activation: Activation of the head: `None` (logits, the
            default) or e.g. `"softmax"`. Computed in float32.
        dtype_policy: `"float32"`, `"mixed_float16"`, `"mixed_bfloat16"`
            or a `keras.DTypePolicy`; default the global policy
            (`keras.config.dtype_policy()`, float32 unless set).
        name: Model name.
        **kwargs: Other `keras.Model` arguments (`trainable`).

    Call arguments:
        - `images`: Tensor of shape `(batch, height, width, num_channels)`.
        - `training`: Python boolean: dropout and drop path in training only.

    Returns:
        Logits (or activations) of shape `(batch, num_classes)` in float32;
        with `include_top=False`, features of shape `(batch, hidden_dim)`.

    Examples:
        >>> from dl4keras.vit import VisionTransformer
        >>> model = VisionTransformer.from_config_name("vit_digits", depth=2)
        >>> images = keras.random.uniform((4, 8, 8, 1))
        >>> tuple(model(images).shape)  # logits of 10 classes
        (4, 10)
        >>> [s.shape for s in model.attention_scores(images)]  # one per block
        [(4, 4, 17, 17), (4, 4, 17, 17)]
        >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> model.compile("adam", loss, metrics=["accuracy"])
        >>> history = model.fit(images, np.arange(4), epochs=1, verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'loss']
    """

    def __init__(
        self,
        image_size=224,
        patch_size=16,
        num_channels=3,
        hidden_dim=768,
        depth=12,
        num_heads=12,
        mlp_dim=3072,
        num_classes=1000,
        include_top=True,
        pooling="token",
        dropout=0.0,
        attention_dropout=0.0,
        stochastic_depth=0.0,
        layer_norm_epsilon=1e-6,
        use_patch_bias=True,
        conv_stem=(),
        rescaling=None,
        classifier_activation=None,
        dtype_policy=None,
        name="vision_transformer",
        **kwargs,
    ):
        image_size = _validation.pair("image_size", image_size)
        patch_size = _validation.pair("patch_size", patch_size)
        num_channels = _validation.positive_int("num_channels", num_channels)
        hidden_dim = _validation.positive_int("hidden_dim", hidden_dim)
        depth = _validation.positive_int("depth", depth)
        num_heads = _validation.positive_int("num_heads", num_heads)
        mlp_dim = _validation.positive_int("mlp_dim", mlp_dim)
        for axis, (size, p) in zip(("height", "width"), zip(image_size, patch_size)):
            if size % p:
                raise ValueError(
                    f"The image {axis} must be divisible by the patch size: {size} is "
                    f"not divisible by {p} ({size} / {p} = {size / p:g}). Received: "
                    f"image_size={image_size}, patch_size={patch_size}"
                )
        _validation.heads_divide(hidden_dim, num_heads)
        if include_top and not _validation.is_positive_int(num_classes):
            raise _validation.invalid(
                "num_classes", "a positive integer when include_top=True", num_classes
            )
        conv_stem = () if conv_stem is None else conv_stem
        if isinstance(conv_stem, (int, str)) or not all(
            _validation.is_positive_int(c) for c in conv_stem
        ):
            raise _validation.invalid(
                "conv_stem",
                "a sequence of positive integers (the channels of each 3×3 convolution), "
                "e.g. (32, 32), or () for none",
                conv_stem,
            )
        conv_stem = tuple(int(c) for c in conv_stem)
        _validation.one_of("pooling", pooling, ("token", "gap"))
        rescaling = _rescaling(rescaling, num_channels)
        # `dtype` (from Keras) and `dtype_policy` (ours) name the same thing.
        dtype = kwargs.pop("dtype", None)
        if dtype_policy is None:
            dtype_policy = dtype
        if dtype_policy is None:
            dtype_policy = keras.config.dtype_policy()  # the global policy
        policy = keras.dtype_policies.get(dtype_policy)
        if isinstance(dtype_policy, str) and policy.name not in POLICIES:
            raise _validation.invalid(
                "dtype_policy", f"one of {POLICIES} or a keras.DTypePolicy", dtype_policy
            )
        grid = (image_size[0] // patch_size[0], image_size[1] // patch_size[1])
        use_class_token = pooling == "token"

        # === The functional graph ===
        images = keras.Input(shape=(*image_size, num_channels), name="images")
        x = images
        if rescaling is not None:
            x = keras.layers.Rescaling(*rescaling, dtype=policy, name="rescaling")(x)
        for i, channels in enumerate(conv_stem):
            x = keras.layers.Conv2D(
                channels,
                3,
                padding="same",
                activation="gelu",
                dtype=policy,
                name=f"stem_conv_{i}",
            )(x)
        x = PatchEmbedding(
            patch_size, hidden_dim, use_bias=use_patch_bias, dtype=policy, name="patch_embedding"
        )(x)
        if use_class_token:
            x = ClassToken(dtype=policy, name="class_token")(x)
        x = PatchPositionEmbedding(
            grid, use_class_token=use_class_token, dtype=policy, name="position_embedding"
        )(x)
        x = keras.layers.Dropout(dropout, dtype=policy, name="embedding_dropout")(x)
        for i in range(depth):
            rate = stochastic_depth * i / (depth - 1) if depth > 1 else stochastic_depth
            x = TransformerEncoderBlock(
                hidden_dim,
                num_heads,
                mlp_dim,
                dropout=dropout,
                attention_dropout=attention_dropout,
                stochastic_depth=rate,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=policy,
                name=f"encoder_block_{i}",
            )(x)
        x = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=policy, name="encoder_norm"
        )(x)
        if use_class_token:
            features = ClassTokenPooling(dtype=policy, name="token_pooling")(x)
        else:
            features = keras.layers.GlobalAveragePooling1D(dtype=policy, name="gap_pooling")(x)
        outputs = features
        if include_top:
            # float32 head: logits (and softmax) in full precision.
            outputs = keras.layers.Dense(
                num_classes, activation=classifier_activation, dtype="float32", name="head"
            )(features)
        super().__init__(inputs=images, outputs=outputs, name=name, **kwargs)
        # Functional models ignore `dtype`; the model's own policy is what
        # `compile()` reads to add loss scaling under mixed_float16.
        self.dtype_policy = policy

        # === Config ===
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = int(num_channels)
        self.hidden_dim = int(hidden_dim)
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_dim = int(mlp_dim)
        self.num_classes = num_classes
        self.include_top = bool(include_top)
        self.pooling = pooling
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.stochastic_depth = float(stochastic_depth)
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.use_patch_bias = bool(use_patch_bias)
        self.conv_stem = conv_stem
        self.rescaling = rescaling
        self.classifier_activation = classifier_activation
        self.grid_size = grid
        self.use_class_token = use_class_token
        self.num_prefix_tokens = int(use_class_token)

    # ------------------------------------------------------------- configs

    @classmethod
    def from_config_name(cls, config_name, **overrides):
        """Builds a named configuration (`CONFIGS`), with arguments overridden.

        Args:
            config_name: One of `list_configs()`, e.g. `"vit_small"`.
            **overrides: Any `VisionTransformer` argument, e.g.
                `num_classes=10, image_size=32, patch_size=4`.

        Returns:
            A `VisionTransformer`.
        """
        if config_name not in CONFIGS:
            raise ValueError(
                f"Unknown ViT configuration {config_name!r}. Available: {list_configs()}"
            )
        config = dict(CONFIGS[config_name])
        config.setdefault("name", config_name)
        config.update(overrides)
        return cls(**config)

    def get_config(self):
        return {
            "image_size": self.image_size,
            "patch_size": self.patch_size,
            "num_channels": self.num_channels,
            "hidden_dim": self.hidden_dim,
            "depth": self.depth,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "num_classes": self.num_classes,
            "include_top": self.include_top,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "stochastic_depth": self.stochastic_depth,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "use_patch_bias": self.use_patch_bias,
            "conv_stem": list(self.conv_stem),
            "rescaling": None if self.rescaling is None else list(self.rescaling),
            "classifier_activation": self.classifier_activation,
            "dtype_policy": self.dtype_policy.name,
            "name": self.name,
            "trainable": self.trainable,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)

    # -------------------------------------------------------------- inspect

    @property
    def stem_layers(self):
        """The convolutions of the stem (`conv_stem`), first to last; `[]` without one."""
        return [self.get_layer(f"stem_conv_{i}") for i in range(len(self.conv_stem))]

    @property
    def patch_receptive_field(self):
        """The pixels one patch token sees, `(height, width)`, before any attention.

        A `P × P` patch sees `P × P` pixels; each 3×3 convolution of the
        stem (stride 1) widens that by one pixel on every side, so with `n`
        stem convolutions a token sees `(P + 2n) × (P + 2n)` pixels (e.g.
        6×6 for 2×2 patches after two convolutions).

        Examples:
            >>> from dl4keras.vit import build
            >>> build("vit_digits").patch_receptive_field
            (2, 2)
            >>> build("vit_digits", conv_stem=(32, 32)).patch_receptive_field
            (6, 6)
        """
        grow = 2 * len(self.conv_stem)
        return (self.patch_size[0] + grow, self.patch_size[1] + grow)

    def position_similarity(self):
        """How alike the patches' learned position embeddings are, by grid distance.

        Returns:
            `(cosine, steps)`: two `(patches, patches)` NumPy arrays, the
            cosine similarity of every pair of patch position embeddings
            (the class token's slot left out) and the distance of the pair
            on the patch grid in steps up, down, left or right (1 =
            neighbours). A model that learned the 2-D layout has a higher
            mean `cosine[steps == 1]` than `cosine[steps >= 2]`.

        Examples:
            >>> from dl4keras.vit import build
            >>> cosine, steps = build("vit_digits").position_similarity()
            >>> cosine.shape, int(steps[0, 5]), int(steps[0, 15])  # 4×4 grid
            ((16, 16), 2, 6)
        """
        table = ops.convert_to_numpy(self.get_layer("position_embedding").embeddings)
        rows, cols = self.grid_size
        table = np.asarray(table).reshape(-1, self.hidden_dim)[-rows * cols :]
        unit = table / np.linalg.norm(table, axis=1, keepdims=True)
        r, c = np.divmod(np.arange(rows * cols), cols)  # each patch's grid cell
        steps = np.abs(r[:, None] - r) + np.abs(c[:, None] - c)
        return unit @ unit.T, steps

    @property
    def encoder_blocks(self):
        """The `TransformerEncoderBlock`s, first to last."""
        return [self.get_layer(f"encoder_block_{i}") for i in range(self.depth)]

    def _check_images(self, images):
        shape = tuple(images.shape)
        want = (*self.image_size, self.num_channels)
        if len(shape) != 4 or any(
            got is not None and got != expected for got, expected in zip(shape[1:], want)
        ):
            raise ValueError(
                f"`{self.name}` expects images of shape (batch, {want[0]}, {want[1]}, "
                f"{want[2]}): {want[0]}×{want[1]} pixels, {want[2]} channel(s). "
                f"Received: images.shape={shape}"
            )

    def __call__(self, *args, **kwargs):
        images = args[0] if args else kwargs.get("inputs", kwargs.get("images"))
        if images is not None and hasattr(images, "shape"):
            self._check_images(images)
        return super().__call__(*args, **kwargs)

    def encode(self, images, training=False, return_attention_scores=False):
        """Runs the encoder: the token states after the final LayerNorm.

        Args:
            images: Tensor of shape `(batch, height, width, num_channels)`.
            training: Python boolean.
            return_attention_scores: If `True`, also return the list of the
                attention weights of every block.

        Returns:
            Tokens of shape `(batch, num_tokens, hidden_dim)`
            (`num_tokens` = grid_h·grid_w, + 1 with a class token), and with
            `return_attention_scores=True` the tuple `(tokens, scores)`,
            `scores` a list (one per block) of tensors of shape
            `(batch, num_heads, num_tokens, num_tokens)`.
        """
        images = ops.convert_to_tensor(images)
        self._check_images(images)
        x = images
        if self.rescaling is not None:
            x = self.get_layer("rescaling")(x)
        for layer in self.stem_layers:
            x = layer(x)
        x = self.get_layer("patch_embedding")(x)
        if self.use_class_token:
            x = self.get_layer("class_token")(x)
        x = self.get_layer("position_embedding")(x)
        x = self.get_layer("embedding_dropout")(x, training=training)
        scores = []
        for block in self.encoder_blocks:
            if return_attention_scores:
                x, s = block(x, training=training, return_attention_scores=True)
                scores.append(s)
            else:
                x = block(x, training=training)
        x = self.get_layer("encoder_norm")(x)
        return (x, scores) if return_attention_scores else x

    def attention_scores(self, images, batch_size=None):
        """The attention weights of every block, for inference.

        Args:
            images: Array of shape `(batch, height, width, num_channels)`.
            batch_size: If given, the images are processed in batches of
                this size.

        Returns:
            A list with one NumPy array per block, of shape
            `(batch, num_heads, num_tokens, num_tokens)`; row `t` holds the
            weights with which token `t` attends to every token (token 0
            is the class token when `pooling="token"`).
        """
        n = len(images)
        step = batch_size or n
        parts = []
        for start in range(0, n, step):
            _, scores = self.encode(images[start : start + step], return_attention_scores=True)
            parts.append([np.asarray(ops.convert_to_numpy(s)) for s in scores])
        return [np.concatenate([p[i] for p in parts]) for i in range(self.depth)]

    def with_image_size(self, image_size, interpolation="bicubic", **overrides):
        """A copy of the model for another image size, weights included.

        Every weight is copied; the position embeddings of the patch grid
        are interpolated to the new grid (`interpolate_position_embeddings`;
        the class-token slot is kept), the usual way to fine-tune a ViT at
        a higher resolution than it was pretrained at.

        Args:
            image_size: The new image size, an int or `(height, width)`.
            interpolation: `"bicubic"` (default) or `"bilinear"`.
            **overrides: Other arguments to change (e.g. `num_classes` and
                `include_top`; the head is then not copied if its shape
                changes).

        Returns:
            A new `VisionTransformer`.
        """
        config = self.get_config()
        config.update(image_size=image_size, **overrides)
        new = VisionTransformer(**config)
        for layer in new.layers:
            if not layer.weights:
                continue
            try:
                old = self.get_layer(layer.name)
            except ValueError:
                continue
            if layer.name == "position_embedding":
                layer.embeddings.assign(
                    old.interpolated(new.grid_size, interpolation=interpolation)
                )
                continue
            old_weights = old.get_weights()
            if [w.shape for w in old_weights] == [tuple(w.shape) for w in layer.weights]:
                layer.set_weights(old_weights)
        return new


def build(config_name, **overrides):
    """`VisionTransformer.from_config_name(config_name, **overrides)`.

    Examples:
        >>> from dl4keras.vit import build
        >>> model = build("vit_cifar", depth=2)  # 32×32×3, patch 4, 10 classes
        >>> model.image_size, model.patch_size, model.grid_size, model.depth
        ((32, 32), (4, 4), (8, 8), 2)
    """
    return VisionTransformer.from_config_name(config_name, **overrides)
