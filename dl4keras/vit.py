"""The Vision Transformer (ViT, Dosovitskiy et al., 2021), from its parts.

An image is cut into `patch_size × patch_size` patches; each patch becomes a
token (a linear projection, `PatchEmbedding`); a learned class token is put
in front (or the tokens are averaged at the end, `pooling="gap"`); learned
position embeddings are added (`PatchPositionEmbedding`); a stack of
pre-LayerNorm Transformer encoder blocks (`TransformerEncoderBlock`) mixes
the tokens; a final LayerNorm and a linear head classify.

- `VisionTransformer`: the model, a functional `keras.Model` that saves to
  `.keras` files, with named configurations (`vit_tiny`, `vit_small`,
  `vit_base` of the ViT/DeiT papers and small ones for 8×8 to 32×32 images),
  a `dtype_policy` for mixed precision, an optional convolutional stem
  (`conv_stem`) for small-data training, `attention_scores(images)`, and
  `with_image_size(...)` to fine-tune at another resolution.
- `attention_rollout`: where the class token looks, through all layers
  (Abnar & Zuidema, 2020).
- `load_keras_hub_weights`: copies the weights of a KerasHub `ViTBackbone`
  (e.g. a pretrained preset) into a `VisionTransformer`.
"""

import warnings

import keras
import numpy as np
from keras import initializers, ops

from dl4keras.attention import _positive_int
from dl4keras.transformer import (
    PatchPositionEmbedding,
    TransformerEncoderBlock,
    _pair,
    interpolate_position_embeddings,
)

__all__ = [
    "CONFIGS",
    "ClassToken",
    "PatchEmbedding",
    "VisionTransformer",
    "attention_rollout",
    "build",
    "list_configs",
    "load_keras_hub_weights",
    "rollout_matrix",
]

CONFIGS = {
    # ViT / DeiT (Touvron et al., 2021) at 224×224, patch 16.
    "vit_tiny": dict(
        image_size=224, patch_size=16, hidden_dim=192, depth=12, num_heads=3, mlp_dim=768
    ),
    "vit_small": dict(
        image_size=224, patch_size=16, hidden_dim=384, depth=12, num_heads=6, mlp_dim=1536
    ),
    "vit_base": dict(
        image_size=224, patch_size=16, hidden_dim=768, depth=12, num_heads=12, mlp_dim=3072
    ),
    # Small images, trainable on a CPU.
    "vit_digits": dict(  # sklearn digits: 8×8 grey, 16 patches of 2×2
        image_size=8,
        patch_size=2,
        num_channels=1,
        hidden_dim=64,
        depth=4,
        num_heads=4,
        mlp_dim=128,
        num_classes=10,
    ),
    "vit_mnist": dict(  # MNIST / Fashion-MNIST: 28×28 grey, 49 patches of 4×4
        image_size=28,
        patch_size=4,
        num_channels=1,
        hidden_dim=64,
        depth=4,
        num_heads=4,
        mlp_dim=128,
        num_classes=10,
    ),
    "vit_cifar": dict(  # CIFAR-10: 32×32 colour, 64 patches of 4×4
        image_size=32,
        patch_size=4,
        num_channels=3,
        hidden_dim=192,
        depth=6,
        num_heads=3,
        mlp_dim=384,
        num_classes=10,
        stochastic_depth=0.1,
    ),
}
"""Named configurations: arguments of `VisionTransformer`, overridable."""

_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


def list_configs():
    """The names of the configurations in `CONFIGS`."""
    return sorted(CONFIGS)


# --------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
class PatchEmbedding(keras.layers.Layer):
    """Cuts images into patches and projects each patch to a token.

    A `Conv2D` with `kernel_size = strides = patch_size` is exactly "flatten
    every non-overlapping patch and apply the same linear map", done in one
    efficient op; its `(grid_h, grid_w, hidden_dim)` output is flattened
    row by row into `grid_h·grid_w` tokens.

    Args:
        patch_size: Patch size, an int or a tuple `(ph, pw)`.
        hidden_dim: Size of each token.
        use_bias: Whether the projection has a bias.
        kernel_initializer: Initializer of the projection kernel.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `images`: Tensor of shape `(batch, H, W, C)` (channels last), `H`
          divisible by `ph` and `W` by `pw`.

    Returns:
        Tokens of shape `(batch, (H/ph)·(W/pw), hidden_dim)`.

    Examples:
        >>> layer = PatchEmbedding(patch_size=4, hidden_dim=32)
        >>> tuple(layer(keras.ops.zeros((2, 32, 32, 3))).shape)
        (2, 64, 32)
    """

    def __init__(
        self, patch_size, hidden_dim, use_bias=True, kernel_initializer="glorot_uniform", **kwargs
    ):
        patch_size = _pair("patch_size", patch_size)
        if not _positive_int(hidden_dim):
            raise ValueError(
                "Received an invalid value for argument `hidden_dim`, expected a "
                f"positive integer. Received: hidden_dim={hidden_dim!r}"
            )
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.hidden_dim = int(hidden_dim)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.projection = keras.layers.Conv2D(
            self.hidden_dim,
            kernel_size=patch_size,
            strides=patch_size,
            padding="valid",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="projection",
        )
        self._channels = None

    def _check(self, shape):
        shape = tuple(shape)
        if len(shape) != 4:
            raise ValueError(
                "`PatchEmbedding` expects images of shape (batch, height, width, "
                f"channels). Received: images.shape={shape}"
            )
        for axis, name, p in ((1, "height", self.patch_size[0]), (2, "width", self.patch_size[1])):
            size = shape[axis]
            if size is not None and size % p:
                raise ValueError(
                    f"The image {name} must be divisible by the patch size: "
                    f"{size} is not divisible by {p} ({size} / {p} = {size / p:g}). "
                    f"Received: images.shape={shape}, patch_size={self.patch_size}"
                )
        if self._channels is not None and shape[-1] is not None and shape[-1] != self._channels:
            raise ValueError(
                f"The layer was built for images with {self._channels} channel(s), "
                f"but the images have {shape[-1]}. Received: images.shape={shape}"
            )

    def build(self, input_shape):
        self._check(input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                "The number of channels of the images must be known. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.projection.build(tuple(input_shape))
        self._channels = input_shape[-1]

    def call(self, images):
        self._check(images.shape)
        x = self.projection(images)  # (B, gh, gw, d)
        shape = ops.shape(x)
        gh, gw = x.shape[1], x.shape[2]
        tokens = gh * gw if gh is not None and gw is not None else shape[1] * shape[2]
        return ops.reshape(x, (shape[0], tokens, self.hidden_dim))

    def compute_output_shape(self, input_shape):
        h, w = input_shape[1], input_shape[2]
        tokens = None
        if h is not None and w is not None:
            tokens = (h // self.patch_size[0]) * (w // self.patch_size[1])
        return (input_shape[0], tokens, self.hidden_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "hidden_dim": self.hidden_dim,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="dl4keras")
class ClassToken(keras.layers.Layer):
    """Puts a learned class token in front of a sequence of tokens.

    The token attends to every patch in every layer; its final state is the
    image's representation for the classifier (BERT's `[CLS]`).

    Args:
        initializer: Initializer of the token (default a truncated normal
            with standard deviation 0.02).
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `tokens`: Tensor of shape `(batch, T, d)`.

    Returns:
        Tensor of shape `(batch, T + 1, d)`, the class token first.

    Examples:
        >>> tuple(ClassToken()(keras.ops.zeros((2, 16, 8))).shape)
        (2, 17, 8)
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.initializer = initializers.get(
            initializer or initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                "`ClassToken` expects tokens of shape (batch, length, features) "
                f"with known features. Received: input_shape={tuple(input_shape)}"
            )
        self.token = self.add_weight(
            name="token", shape=(1, 1, input_shape[-1]), initializer=self.initializer
        )

    def call(self, tokens):
        tokens = ops.cast(tokens, self.compute_dtype)
        cls = ops.cast(self.token, self.compute_dtype)
        cls = ops.broadcast_to(cls, (ops.shape(tokens)[0], 1, self.token.shape[-1]))
        return ops.concatenate([cls, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update({"initializer": initializers.serialize(self.initializer)})
        return config


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


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
        >>> model = VisionTransformer.from_config_name("vit_digits", depth=2)
        >>> images = keras.random.uniform((4, 8, 8, 1))
        >>> tuple(model(images).shape)
        (4, 10)
        >>> [s.shape for s in model.attention_scores(images)]  # one per block
        [(4, 4, 17, 17), (4, 4, 17, 17)]
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
        classifier_activation=None,
        dtype_policy=None,
        name="vision_transformer",
        **kwargs,
    ):
        image_size = _pair("image_size", image_size)
        patch_size = _pair("patch_size", patch_size)
        for arg, value in (
            ("num_channels", num_channels),
            ("hidden_dim", hidden_dim),
            ("depth", depth),
            ("num_heads", num_heads),
            ("mlp_dim", mlp_dim),
        ):
            if not _positive_int(value):
                raise ValueError(
                    f"Received an invalid value for argument `{arg}`, expected a "
                    f"positive integer. Received: {arg}={value!r}"
                )
        for axis, (size, p) in zip(("height", "width"), zip(image_size, patch_size)):
            if size % p:
                raise ValueError(
                    f"The image {axis} must be divisible by the patch size: {size} is "
                    f"not divisible by {p} ({size} / {p} = {size / p:g}). Received: "
                    f"image_size={image_size}, patch_size={patch_size}"
                )
        if hidden_dim % num_heads:
            raise ValueError(
                f"`hidden_dim` must be divisible by `num_heads`: each head gets "
                f"hidden_dim / num_heads features. Received: hidden_dim={hidden_dim}, "
                f"num_heads={num_heads} ({hidden_dim} / {num_heads} = "
                f"{hidden_dim / num_heads:g})"
            )
        if include_top and not _positive_int(num_classes):
            raise ValueError(
                "Received an invalid value for argument `num_classes`, expected a "
                f"positive integer when include_top=True. Received: num_classes={num_classes!r}"
            )
        conv_stem = () if conv_stem is None else conv_stem
        if isinstance(conv_stem, (int, str)) or not all(_positive_int(c) for c in conv_stem):
            raise ValueError(
                "`conv_stem` must be a sequence of positive integers (the channels of "
                f"each 3×3 convolution), e.g. (32, 32), or () for none. Received: "
                f"conv_stem={conv_stem!r}"
            )
        conv_stem = tuple(int(c) for c in conv_stem)
        if pooling not in ("token", "gap"):
            raise ValueError(f'`pooling` must be "token" or "gap". Received: pooling={pooling!r}')
        # `dtype` (from Keras) and `dtype_policy` (ours) name the same thing.
        dtype = kwargs.pop("dtype", None)
        if dtype_policy is None:
            dtype_policy = dtype
        if dtype_policy is None:
            dtype_policy = keras.config.dtype_policy()  # the global policy
        policy = keras.dtype_policies.get(dtype_policy)
        if isinstance(dtype_policy, str) and policy.name not in _POLICIES:
            raise ValueError(
                f"`dtype_policy` must be one of {_POLICIES} or a keras.DTypePolicy. "
                f"Received: dtype_policy={dtype_policy!r}"
            )
        grid = (image_size[0] // patch_size[0], image_size[1] // patch_size[1])
        use_class_token = pooling == "token"

        # === The functional graph ===
        images = keras.Input(shape=(*image_size, num_channels), name="images")
        x = images
        for i, channels in enumerate(conv_stem):
            x = keras.layers.Conv2D(
                channels, 3, padding="same", activation="gelu", dtype=policy,
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


@keras.saving.register_keras_serializable(package="dl4keras")
class ClassTokenPooling(keras.layers.Layer):
    """The first token of each sequence: `(batch, T, d)` → `(batch, d)`."""

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


def build(config_name, **overrides):
    """`VisionTransformer.from_config_name(config_name, **overrides)`.

    Examples:
        >>> model = build("vit_cifar", depth=2)   # 32×32×3, patch 4, 10 classes
    """
    return VisionTransformer.from_config_name(config_name, **overrides)


# --------------------------------------------------------------------------
# Attention rollout
# --------------------------------------------------------------------------


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
        >>> model = build("vit_digits", depth=2)
        >>> images = np.random.rand(3, 8, 8, 1).astype("float32")
        >>> attention_rollout(model.attention_scores(images), grid_size=model.grid_size).shape
        (3, 4, 4)
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
    grid_size = _pair("grid_size", grid_size)
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


# --------------------------------------------------------------------------
# KerasHub weights
# --------------------------------------------------------------------------


def load_keras_hub_weights(model, backbone, interpolation="bicubic"):
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

    Args:
        model: A `VisionTransformer`.
        backbone: A `keras_hub.models.ViTBackbone` (e.g. from
            `ViTBackbone.from_preset("vit_base_patch16_224_imagenet")`).
        interpolation: Interpolation of the position embeddings when the
            grids differ.

    Returns:
        The model, its weights replaced.

    Examples:
        ```python
        backbone = keras_hub.models.ViTBackbone.from_preset("vit_base_patch16_224_imagenet")
        model = VisionTransformer.from_config_name("vit_base", num_classes=10)
        load_keras_hub_weights(model, backbone)
        ```
    """
    if not isinstance(model, VisionTransformer):
        raise ValueError(
            f"`model` must be a dl4keras VisionTransformer. Received: {type(model).__name__}"
        )
    patch_size = _pair("patch_size", tuple(backbone.patch_size))
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
    wrong = {k: v for k, v in wanted.items() if v[0] != v[1]}
    if wrong:
        details = ", ".join(
            f"{k}={ours!r} (backbone: {theirs!r})" for k, (ours, theirs) in wrong.items()
        )
        raise ValueError(
            f"The model does not match the KerasHub backbone: {details}. Build it "
            "with the backbone's values."
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
