"""The layers a Vision Transformer adds to the Transformer encoder: patches and the class token."""

import keras
from keras import initializers, ops

from dl4keras import _validation

__all__ = ["ClassToken", "ClassTokenPooling", "PatchEmbedding"]


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
        >>> from dl4keras.vit import PatchEmbedding
        >>> layer = PatchEmbedding(patch_size=4, hidden_dim=32)
        >>> tuple(layer(keras.ops.zeros((2, 32, 32, 3))).shape)  # an 8×8 grid: 64 tokens
        (2, 64, 32)
        >>> tuple(layer.projection.kernel.shape)  # one linear map of each 4×4×3 patch
        (4, 4, 3, 32)
    """

    def __init__(
        self, patch_size, hidden_dim, use_bias=True, kernel_initializer="glorot_uniform", **kwargs
    ):
        patch_size = _validation.pair("patch_size", patch_size)
        hidden_dim = _validation.positive_int("hidden_dim", hidden_dim)
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
        >>> from dl4keras.vit import ClassToken
        >>> layer = ClassToken()
        >>> tokens = layer(keras.ops.zeros((2, 16, 8)))
        >>> tuple(tokens.shape)  # one more token, in front
        (2, 17, 8)
        >>> first, token = (keras.ops.convert_to_numpy(t) for t in (tokens[:, 0], layer.token))
        >>> bool(np.allclose(first, token[0]))  # the same learned token for all
        True
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


@keras.saving.register_keras_serializable(package="dl4keras")
class ClassTokenPooling(keras.layers.Layer):
    """The first token of each sequence: `(batch, T, d)` → `(batch, d)`."""

    def call(self, tokens):
        return tokens[:, 0]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
