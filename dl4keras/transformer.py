"""Transformer building blocks: position encodings, the encoder and decoder blocks.

- `sinusoidal_encoding` / `SinusoidalPositionEncoding`: the fixed encoding of
  "Attention Is All You Need" (Vaswani et al., 2017), for any length.
- `PositionEmbedding`: learned 1-D position embeddings (BERT, GPT).
- `PatchPositionEmbedding`: learned position embeddings over a 2-D grid of
  image patches (ViT), with an optional class-token slot, and
  `interpolate_position_embeddings` to resize them to another grid when a
  model is fine-tuned at another image resolution.
- `StochasticDepth`: drop path, the residual branch of whole samples dropped
  during training (Huang et al., 2016; used by DeiT).
- `TransformerEncoderBlock`: the pre-LayerNorm encoder block of ViT, built on
  `dl4keras.attention.MultiHeadAttention`.
- `TransformerDecoderBlock`: the pre-LayerNorm decoder block of GPT (causal
  self-attention) and, with `cross_attention=True`, of encoder-decoder
  Transformers (cross-attention over an encoder sequence).
- `gelu_approximate`: GELU's tanh approximation, the activation of GPT-2.

Everything is written with `keras.ops`, honours the layer's dtype policy, and
saves to `.keras` files.
"""

import math

import keras
import numpy as np
from keras import initializers, ops

from dl4keras import _validation
from dl4keras.attention import MultiHeadAttention

__all__ = [
    "PatchPositionEmbedding",
    "PositionEmbedding",
    "SinusoidalPositionEncoding",
    "StochasticDepth",
    "TransformerDecoderBlock",
    "TransformerEncoderBlock",
    "gelu_approximate",
    "interpolate_position_embeddings",
    "sinusoidal_encoding",
]


def _check_sequence_shape(name, shape, dim=None):
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` expects inputs of shape (batch, length, features). "
            f"Received: inputs.shape={shape}"
        )
    if dim is not None and shape[-1] is not None and shape[-1] != dim:
        raise ValueError(
            f"`{name}` was built for {dim} features, but the inputs have "
            f"{shape[-1]}. Received: inputs.shape={shape}"
        )


# --------------------------------------------------------------------------
# Fixed sinusoidal encoding
# --------------------------------------------------------------------------


def sinusoidal_encoding(length, dim, max_wavelength=10000.0, dtype="float32"):
    """The sinusoidal position encoding of "Attention Is All You Need".

    `PE[pos, 2i] = sin(pos / max_wavelength^(2i/dim))` and
    `PE[pos, 2i+1] = cos(pos / max_wavelength^(2i/dim))`: each pair of
    features is a rotation at its own frequency, from one turn every 2π
    positions down to one every `2π·max_wavelength` positions, so that
    `PE[pos + k]` is a linear function of `PE[pos]` for every offset `k`.

    Args:
        length: Number of positions (an int or a scalar tensor).
        dim: Number of features (an int; may be odd, the last cosine is
            then dropped).
        max_wavelength: The base of the geometric progression of
            wavelengths (10000 in the paper).
        dtype: The dtype of the result.

    Returns:
        A tensor of shape `(length, dim)`.

    Examples:
        >>> from dl4keras.transformer import sinusoidal_encoding
        >>> pe = sinusoidal_encoding(50, 16)
        >>> tuple(pe.shape)
        (50, 16)
        >>> keras.ops.convert_to_numpy(pe[0, :4]).tolist()  # position 0: sin 0 = 0, cos 0 = 1
        [0.0, 1.0, 0.0, 1.0]
        >>> # Every feature stays in [-1, 1], whatever the position.
        >>> float(keras.ops.max(keras.ops.abs(sinusoidal_encoding(1000, 16)))) <= 1.0
        True
    """
    dim = _validation.positive_int("dim", dim)
    half = (dim + 1) // 2
    positions = ops.cast(ops.arange(length), "float32")[:, None]  # (T, 1)
    # 1 / max_wavelength^(2i/dim), i = 0 .. half-1
    freqs = ops.exp(ops.cast(ops.arange(half), "float32") * (-2.0 * math.log(max_wavelength) / dim))
    angles = positions * freqs[None, :]  # (T, half)
    # Interleave: sin at even features, cos at odd features.
    pe = ops.reshape(ops.stack([ops.sin(angles), ops.cos(angles)], axis=-1), (-1, 2 * half))
    return ops.cast(pe[:, :dim], dtype)


@keras.saving.register_keras_serializable(package="dl4keras")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Fixed sinusoidal position encoding, for sequences of any length.

    Computes `sinusoidal_encoding(T, d)` for inputs of shape `(batch, T, d)`
    and adds it to them (`add_to_inputs=True`, the Transformer's input
    layer) or returns it broadcast to the input shape. The layer has no
    weights; the encoding is computed in float32 and cast to the layer's
    compute dtype.

    Args:
        max_wavelength: The base of the wavelengths (10000 in the paper).
        add_to_inputs: If `True` (default), return `inputs + encoding`;
            if `False`, return the encoding alone, shape of the inputs.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: Tensor of shape `(batch, T, d)`.

    Returns:
        A tensor of shape `(batch, T, d)`.

    Examples:
        >>> from dl4keras.transformer import SinusoidalPositionEncoding, sinusoidal_encoding
        >>> x = keras.random.normal((2, 10, 16))
        >>> tuple(SinusoidalPositionEncoding()(x).shape)  # x + encoding
        (2, 10, 16)
        >>> pe = SinusoidalPositionEncoding(add_to_inputs=False)(x)  # the encoding alone
        >>> bool(np.allclose(pe[1], sinusoidal_encoding(10, 16)))  # the same for every sequence
        True
    """

    def __init__(self, max_wavelength=10000.0, add_to_inputs=True, **kwargs):
        if _validation.positive_float("max_wavelength", max_wavelength) <= 1:
            raise _validation.invalid("max_wavelength", "a number > 1", max_wavelength)
        super().__init__(**kwargs)
        self.supports_masking = True
        self.max_wavelength = float(max_wavelength)
        self.add_to_inputs = bool(add_to_inputs)
        self.built = True

    def call(self, inputs):
        _check_sequence_shape(self.name, inputs.shape)
        inputs = ops.cast(inputs, self.compute_dtype)
        shape = ops.shape(inputs)
        pe = sinusoidal_encoding(shape[1], inputs.shape[-1], self.max_wavelength)
        pe = ops.cast(pe, self.compute_dtype)[None]
        if self.add_to_inputs:
            return inputs + pe
        return ops.broadcast_to(pe, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength, "add_to_inputs": self.add_to_inputs})
        return config


# --------------------------------------------------------------------------
# Learned position embeddings
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
class PositionEmbedding(keras.layers.Layer):
    """Learned 1-D position embeddings (one trained vector per position).

    The layer holds a `(sequence_length, d)` weight; for inputs of shape
    `(batch, T, d)` with `T <= sequence_length` it uses the first `T` rows.

    Args:
        sequence_length: The largest sequence length the layer accepts.
        initializer: Initializer of the embeddings (default a truncated
            normal with standard deviation 0.02, as BERT and ViT).
        add_to_inputs: If `True` (default), return `inputs + embeddings`;
            if `False`, return the embeddings broadcast to the inputs' shape.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: Tensor of shape `(batch, T, d)`.

    Returns:
        A tensor of shape `(batch, T, d)`.

    Examples:
        >>> from dl4keras.transformer import PositionEmbedding
        >>> layer = PositionEmbedding(sequence_length=32)
        >>> tuple(layer(keras.ops.zeros((2, 10, 8))).shape)  # uses the first 10 rows
        (2, 10, 8)
        >>> tuple(layer.embeddings.shape)  # one trained vector per position, up to 32
        (32, 8)
    """

    def __init__(
        self,
        sequence_length,
        initializer=None,
        add_to_inputs=True,
        **kwargs,
    ):
        sequence_length = _validation.positive_int("sequence_length", sequence_length)
        super().__init__(**kwargs)
        self.supports_masking = True
        self.sequence_length = int(sequence_length)
        self.initializer = initializers.get(
            initializer or initializers.TruncatedNormal(stddev=0.02)
        )
        self.add_to_inputs = bool(add_to_inputs)

    def build(self, input_shape):
        _check_sequence_shape(self.name, input_shape)
        if input_shape[-1] is None:
            raise ValueError(
                f"The last dimension of the inputs must be known. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        _check_sequence_shape(self.name, inputs.shape, self.embeddings.shape[-1])
        length = inputs.shape[1]
        if length is not None and length > self.sequence_length:
            raise ValueError(
                f"The inputs have {length} positions, more than the layer's "
                f"sequence_length={self.sequence_length}. Received: "
                f"inputs.shape={tuple(inputs.shape)}"
            )
        inputs = ops.cast(inputs, self.compute_dtype)
        shape = ops.shape(inputs)
        emb = ops.cast(self.embeddings, self.compute_dtype)[None, : shape[1]]
        if self.add_to_inputs:
            return inputs + emb
        return ops.broadcast_to(emb, shape)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": initializers.serialize(self.initializer),
                "add_to_inputs": self.add_to_inputs,
            }
        )
        return config


def interpolate_position_embeddings(
    embeddings, grid_size, new_grid_size, num_prefix_tokens=0, interpolation="bicubic"
):
    """Resizes learned 2-D position embeddings to a new patch grid.

    To fine-tune a ViT at another image resolution, the position embeddings
    of the patch grid are treated as a `grid_h × grid_w` image with `d`
    channels and resized (bicubic by default, as in the ViT and DeiT code);
    the class-token slot(s) in front are kept unchanged.

    Args:
        embeddings: Array of shape `(num_prefix_tokens + gh·gw, d)`, or with
            a leading axis of 1.
        grid_size: The current grid, an int or `(gh, gw)`.
        new_grid_size: The new grid, an int or `(new_gh, new_gw)`.
        num_prefix_tokens: Number of non-patch slots in front (1 for a class
            token, 0 for none).
        interpolation: `"bicubic"`, `"bilinear"`, `"nearest"` or any method
            `keras.ops.image.resize` accepts. Its bicubic kernel is the
            backend's: Keys' cubic (a = -0.5) on TensorFlow and JAX, torch's
            (a = -0.75) on PyTorch, so bicubic results differ slightly there.

    Returns:
        A NumPy array of shape `(num_prefix_tokens + new_gh·new_gw, d)` (with
        the leading axis of 1 if the input had one). Resizing to the same
        grid returns the embeddings unchanged.

    Examples:
        >>> from dl4keras.transformer import interpolate_position_embeddings
        >>> pe = np.random.normal(size=(1 + 4 * 4, 8)).astype("float32")  # class token + 4×4
        >>> new = interpolate_position_embeddings(pe, 4, 6, num_prefix_tokens=1)
        >>> new.shape  # class token + 6×6
        (37, 8)
        >>> bool(np.array_equal(new[0], pe[0]))  # the class-token slot is kept
        True
    """
    grid_size = _validation.pair("grid_size", grid_size)
    new_grid_size = _validation.pair("new_grid_size", new_grid_size)
    emb = np.asarray(keras.ops.convert_to_numpy(embeddings))
    batched = emb.ndim == 3
    if batched:
        if emb.shape[0] != 1:
            raise ValueError(
                "`embeddings` must have shape (positions, d) or (1, positions, d). "
                f"Received: embeddings.shape={emb.shape}"
            )
        emb = emb[0]
    if emb.ndim != 2:
        raise ValueError(
            "`embeddings` must have shape (positions, d) or (1, positions, d). "
            f"Received: embeddings.shape={emb.shape}"
        )
    gh, gw = grid_size
    if emb.shape[0] != num_prefix_tokens + gh * gw:
        raise ValueError(
            f"`embeddings` has {emb.shape[0]} positions, but grid_size={grid_size} "
            f"with num_prefix_tokens={num_prefix_tokens} needs "
            f"{num_prefix_tokens} + {gh}·{gw} = {num_prefix_tokens + gh * gw}."
        )
    prefix, grid = emb[:num_prefix_tokens], emb[num_prefix_tokens:]
    if new_grid_size == grid_size:
        new = grid
    else:
        image = ops.convert_to_tensor(grid.reshape(1, gh, gw, -1).astype("float32"))
        resized = ops.image.resize(
            image,
            new_grid_size,
            interpolation=interpolation,
            antialias=False,
            data_format="channels_last",
        )
        new = np.asarray(ops.convert_to_numpy(resized)).reshape(-1, emb.shape[-1])
    out = np.concatenate([prefix, new.astype(emb.dtype)], axis=0)
    return out[None] if batched else out


@keras.saving.register_keras_serializable(package="dl4keras")
class PatchPositionEmbedding(keras.layers.Layer):
    """Learned position embeddings over a 2-D grid of image patches.

    One trained vector per patch of a `grid_h × grid_w` grid (the tokens in
    row-major order, as `PatchEmbedding` flattens them), plus one slot in
    front for the class token when `use_class_token=True`: the weight has
    shape `(use_class_token + grid_h·grid_w, d)`, the layout of ViT and of
    KerasHub's `ViTBackbone`.

    Args:
        grid_size: The patch grid, an int or a tuple `(grid_h, grid_w)`.
        use_class_token: Whether the token sequence starts with a class
            token, which gets a slot of its own.
        initializer: Initializer of the embeddings (default a truncated
            normal with standard deviation 0.02).
        add_to_inputs: If `True` (default), return `inputs + embeddings`;
            if `False`, return the embeddings broadcast to the inputs.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: Tensor of shape `(batch, num_positions, d)` with
          `num_positions = use_class_token + grid_h·grid_w`.

    Returns:
        A tensor of shape `(batch, num_positions, d)`.

    Examples:
        >>> from dl4keras.transformer import PatchPositionEmbedding
        >>> layer = PatchPositionEmbedding((4, 4), use_class_token=True)
        >>> tuple(layer(keras.ops.zeros((2, 17, 32))).shape)
        (2, 17, 32)
        >>> layer.interpolated((6, 6)).shape   # to fine-tune at 1.5× resolution
        (37, 32)
    """

    def __init__(
        self,
        grid_size,
        use_class_token=False,
        initializer=None,
        add_to_inputs=True,
        **kwargs,
    ):
        grid_size = _validation.pair("grid_size", grid_size)
        super().__init__(**kwargs)
        self.grid_size = grid_size
        self.use_class_token = bool(use_class_token)
        self.num_prefix_tokens = int(self.use_class_token)
        self.num_positions = self.num_prefix_tokens + grid_size[0] * grid_size[1]
        self.initializer = initializers.get(
            initializer or initializers.TruncatedNormal(stddev=0.02)
        )
        self.add_to_inputs = bool(add_to_inputs)

    def _check(self, shape, dim=None):
        _check_sequence_shape(self.name, shape, dim)
        if shape[1] is not None and shape[1] != self.num_positions:
            extra = " + 1 class token" if self.use_class_token else ""
            raise ValueError(
                f"`{self.name}` expects {self.num_positions} tokens (a "
                f"{self.grid_size[0]}×{self.grid_size[1]} grid{extra}). "
                f"Received: inputs.shape={tuple(shape)}"
            )

    def build(self, input_shape):
        self._check(tuple(input_shape))
        if input_shape[-1] is None:
            raise ValueError(
                f"The last dimension of the inputs must be known. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_positions, input_shape[-1]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        self._check(tuple(inputs.shape), self.embeddings.shape[-1])
        inputs = ops.cast(inputs, self.compute_dtype)
        emb = ops.cast(self.embeddings, self.compute_dtype)[None]
        if self.add_to_inputs:
            return inputs + emb
        return ops.broadcast_to(emb, ops.shape(inputs))

    def interpolated(self, new_grid_size, interpolation="bicubic"):
        """The embeddings resized to `new_grid_size`, a NumPy array.

        See `interpolate_position_embeddings`; the class-token slot is kept.
        Assign the result to the layer of a model built for the new grid.
        """
        return interpolate_position_embeddings(
            self.embeddings,
            self.grid_size,
            new_grid_size,
            num_prefix_tokens=self.num_prefix_tokens,
            interpolation=interpolation,
        )

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "grid_size": self.grid_size,
                "use_class_token": self.use_class_token,
                "initializer": initializers.serialize(self.initializer),
                "add_to_inputs": self.add_to_inputs,
            }
        )
        return config


# --------------------------------------------------------------------------
# Stochastic depth
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
class StochasticDepth(keras.layers.Layer):
    """Drop path: zeroes a residual branch for whole samples during training.

    In training, each sample's input is kept with probability `1 - rate`
    (and scaled by `1 / (1 - rate)`, so the expectation is unchanged) or
    replaced by zeros; at inference the layer is the identity. Applied to a
    residual branch, `x + StochasticDepth(rate)(f(x))`, it skips the whole
    block for the dropped samples (Huang et al., 2016).

    Args:
        rate: Probability of dropping a sample's branch, a float in `[0, 1)`.
        seed: Optional integer seed.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: Tensor of shape `(batch, ...)`.
        - `training`: Python boolean; the layer only drops in training.

    Returns:
        A tensor of the shape of `inputs`.

    Examples:
        >>> from dl4keras.transformer import StochasticDepth
        >>> layer = StochasticDepth(0.5, seed=1)
        >>> x = keras.ops.ones((64, 3, 2))  # 64 samples
        >>> y = keras.ops.convert_to_numpy(layer(x, training=True))
        >>> np.unique(y).tolist()  # a sample is dropped (0) or kept and scaled by 1 / (1 - 0.5)
        [0.0, 2.0]
        >>> bool(np.all(y == y[:, :1, :1]))  # whole samples: every value of a sample alike
        True
        >>> bool(keras.ops.all(layer(x, training=False) == x))  # the identity at inference
        True
    """

    def __init__(self, rate, seed=None, **kwargs):
        rate = _validation.rate("rate", rate)
        super().__init__(**kwargs)
        self.supports_masking = True
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if rate > 0 else None
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        random = keras.random.uniform(shape, seed=self.seed_generator)
        mask = ops.cast(random < keep, inputs.dtype)
        return inputs * mask / ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"rate": self.rate, "seed": self.seed})
        return config


# --------------------------------------------------------------------------
# What the encoder and decoder blocks share
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
def gelu_approximate(x):
    """GELU with the tanh approximation, the activation of GPT-2 and BERT's code.

    `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`, which differs from the exact
    `x·Φ(x)` (`keras.activations.gelu`) by less than 1e-3. Blocks and models of
    this package also accept it by name, `activation="gelu_approximate"`; the
    function is registered, so layers using it save to `.keras` files.

    Args:
        x: Input tensor.

    Returns:
        A tensor of the same shape and dtype.

    Examples:
        >>> from dl4keras.transformer import gelu_approximate
        >>> x = keras.ops.linspace(-3.0, 3.0, 7)
        >>> exact = keras.activations.gelu(x)
        >>> float(keras.ops.max(keras.ops.abs(gelu_approximate(x) - exact))) < 1e-3
        True
    """
    return keras.activations.gelu(x, approximate=True)


def _activation(value):
    """`keras.activations.get`, plus the name `"gelu_approximate"`."""
    if value == "gelu_approximate":
        return gelu_approximate
    return keras.activations.get(value)


def _block_sizes(hidden_dim, num_heads, mlp_dim):
    """The validated `(hidden_dim, num_heads, mlp_dim)` of a Transformer block."""
    hidden_dim = _validation.positive_int("hidden_dim", hidden_dim)
    num_heads = _validation.positive_int("num_heads", num_heads)
    mlp_dim = _validation.positive_int("mlp_dim", mlp_dim)
    _validation.heads_divide(hidden_dim, num_heads)
    return hidden_dim, num_heads, mlp_dim


def _seeds(seed):
    """`seed_of(i)`: the seed of a block's i-th random sublayer (None stays None)."""
    return lambda i: None if seed is None else seed + i


def _layer_norm(block, name):
    return keras.layers.LayerNormalization(
        epsilon=block.layer_norm_epsilon, dtype=block.dtype_policy, name=name
    )


def _attention(block, name, seed, use_bias=True):
    """A `MultiHeadAttention` of `block.num_heads` heads over `block.hidden_dim` features."""
    return MultiHeadAttention(
        num_heads=block.num_heads,
        key_dim=block.hidden_dim // block.num_heads,
        dropout=block.attention_dropout,
        use_bias=use_bias,
        kernel_initializer=_clone_initializer(block.kernel_initializer),
        seed=seed,
        dtype=block.dtype_policy,
        name=name,
    )


def _clone_initializer(initializer):
    return initializers.get(initializers.serialize(initializer))


def _add_mlp(block, use_bias, seed_of):
    """Creates the MLP sublayers: `ln_2`, `dense_1`, `mlp_dropout_1`, `dense_2`, `mlp_dropout_2`."""
    policy = block.dtype_policy
    block.ln_2 = _layer_norm(block, "ln_2")
    block.dense_1 = keras.layers.Dense(
        block.mlp_dim,
        activation=block.activation,
        use_bias=use_bias,
        kernel_initializer=_clone_initializer(block.kernel_initializer),
        dtype=policy,
        name="dense_1",
    )
    block.mlp_dropout_1 = keras.layers.Dropout(
        block.dropout, seed=seed_of(2), dtype=policy, name="mlp_dropout_1"
    )
    block.dense_2 = keras.layers.Dense(
        block.hidden_dim,
        use_bias=use_bias,
        kernel_initializer=_clone_initializer(block.kernel_initializer),
        dtype=policy,
        name="dense_2",
    )
    block.mlp_dropout_2 = keras.layers.Dropout(
        block.dropout, seed=seed_of(3), dtype=policy, name="mlp_dropout_2"
    )


def _build_mlp(block, input_shape):
    block.ln_2.build(input_shape)
    block.dense_1.build(input_shape)
    block.dense_2.build((*input_shape[:-1], block.mlp_dim))


def _mlp(block, x, training):
    """The MLP branch `dropout(dense_2(dropout(dense_1(ln_2(x)))))`, without the residual."""
    y = block.ln_2(x)
    y = block.dense_1(y)
    y = block.mlp_dropout_1(y, training=training)
    y = block.dense_2(y)
    return block.mlp_dropout_2(y, training=training)


def _check_features(name, shape, hidden_dim, what="inputs"):
    """`shape` is `(batch, length, hidden_dim)`, else a `ValueError` naming `what`."""
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` expects {what} of shape (batch, length, features). "
            f"Received: {what}.shape={shape}"
        )
    if shape[-1] is not None and shape[-1] != hidden_dim:
        raise ValueError(
            f"`{name}` has hidden_dim={hidden_dim}, but the {what} "
            f"have {shape[-1]} features. Received: {what}.shape={shape}"
        )


def _block_config(block):
    """The configuration entries the encoder and decoder blocks share."""
    return {
        "hidden_dim": block.hidden_dim,
        "num_heads": block.num_heads,
        "mlp_dim": block.mlp_dim,
        "dropout": block.dropout,
        "attention_dropout": block.attention_dropout,
        "layer_norm_epsilon": block.layer_norm_epsilon,
        "activation": keras.activations.serialize(block.activation),
        "kernel_initializer": initializers.serialize(block.kernel_initializer),
        "seed": block.seed,
    }


# --------------------------------------------------------------------------
# The encoder block
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
class TransformerEncoderBlock(keras.layers.Layer):
    """Pre-LayerNorm Transformer encoder block (the block of ViT).

    ```
    x = x + drop_path(dropout(MHA(LN1(x))))
    x = x + drop_path(MLP(LN2(x)))     MLP = Dense(mlp_dim, gelu) → dropout
                                              → Dense(hidden_dim) → dropout
    ```

    Normalising *before* each sublayer keeps a clean residual path from
    input to output, which trains stably without warm-up tricks (Xiong et
    al., 2020). The sublayers and their names (`ln_1`, `mha`, `ln_2`,
    `dense_1`, `dense_2`) mirror KerasHub's `ViTEncoderBlock`, whose weights
    load into this block unchanged.

    Args:
        hidden_dim: Feature size of the tokens (input and output).
        num_heads: Number of attention heads; must divide `hidden_dim`
            (each head has `hidden_dim // num_heads` features).
        mlp_dim: Hidden size of the MLP (usually `4 * hidden_dim`).
        dropout: Dropout rate after the attention output and inside the MLP.
        attention_dropout: Dropout rate on the attention weights.
        stochastic_depth: Drop-path rate of both residual branches (whole
            samples, training only); see `StochasticDepth`.
        layer_norm_epsilon: Epsilon of both LayerNormalizations.
        activation: Activation of the MLP's hidden layer (a Keras name,
            `"gelu_approximate"` or a function).
        use_attention_bias: Whether the attention projections use biases.
        use_mlp_bias: Whether the MLP's dense layers use biases.
        kernel_initializer: Initializer of the dense kernels.
        seed: Optional integer seeding the dropouts.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: Tensor of shape `(batch, T, hidden_dim)`.
        - `attention_mask`: Optional boolean mask broadcastable to
          `(batch, T, T)`: `True` where token `t` may attend to token `s`.
        - `training`: Python boolean: dropout and drop path are active only in
          training.
        - `return_attention_scores`: If `True`, also return the attention
          weights.
        - `mask`: Keras padding mask of shape `(batch, T)` (passed
          automatically); padded tokens are not attended to.

    Returns:
        The output, of shape `(batch, T, hidden_dim)`, or the tuple
        `(output, scores)` with `scores` of shape `(batch, num_heads, T, T)`
        when `return_attention_scores=True`.

    Examples:
        >>> from dl4keras.transformer import TransformerEncoderBlock
        >>> block = TransformerEncoderBlock(hidden_dim=32, num_heads=4, mlp_dim=64)
        >>> x = keras.random.normal((2, 10, 32))
        >>> y, scores = block(x, return_attention_scores=True)
        >>> tuple(y.shape), tuple(scores.shape)
        ((2, 10, 32), (2, 4, 10, 10))
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        mlp_dim,
        dropout=0.0,
        attention_dropout=0.0,
        stochastic_depth=0.0,
        layer_norm_epsilon=1e-6,
        activation="gelu",
        use_attention_bias=True,
        use_mlp_bias=True,
        kernel_initializer="glorot_uniform",
        seed=None,
        **kwargs,
    ):
        hidden_dim, num_heads, mlp_dim = _block_sizes(hidden_dim, num_heads, mlp_dim)
        dropout = _validation.rate("dropout", dropout)
        attention_dropout = _validation.rate("attention_dropout", attention_dropout)
        stochastic_depth = _validation.rate("stochastic_depth", stochastic_depth)
        layer_norm_epsilon = _validation.positive_float("layer_norm_epsilon", layer_norm_epsilon)
        super().__init__(**kwargs)
        self.supports_masking = True
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.stochastic_depth = stochastic_depth
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation = _activation(activation)
        self.use_attention_bias = bool(use_attention_bias)
        self.use_mlp_bias = bool(use_mlp_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.seed = seed

        policy = self.dtype_policy
        seed_of = _seeds(seed)
        self.ln_1 = _layer_norm(self, "ln_1")
        self.mha = _attention(self, "mha", seed_of(0), use_bias=self.use_attention_bias)
        self.attention_output_dropout = keras.layers.Dropout(
            dropout, seed=seed_of(1), dtype=policy, name="dropout"
        )
        _add_mlp(self, self.use_mlp_bias, seed_of)
        self.drop_path_1 = StochasticDepth(
            stochastic_depth, seed=seed_of(4), dtype=policy, name="drop_path_1"
        )
        self.drop_path_2 = StochasticDepth(
            stochastic_depth, seed=seed_of(5), dtype=policy, name="drop_path_2"
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        _check_features(self.name, input_shape, self.hidden_dim)
        self.ln_1.build(input_shape)
        self.mha.build(input_shape, input_shape)
        _build_mlp(self, input_shape)

    def call(
        self,
        inputs,
        attention_mask=None,
        training=None,
        return_attention_scores=False,
        mask=None,
    ):
        _check_features(self.name, inputs.shape, self.hidden_dim)
        x = ops.cast(inputs, self.compute_dtype)
        y = self.ln_1(x)
        attention = self.mha(
            y,
            y,
            query_mask=mask,
            value_mask=mask,
            attention_mask=attention_mask,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            attention, scores = attention
        attention = self.attention_output_dropout(attention, training=training)
        x = x + self.drop_path_1(attention, training=training)
        x = x + self.drop_path_2(_mlp(self, x, training), training=training)
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, attention_mask=None, training=None, return_attention_scores=False, mask=None
    ):
        shape = tuple(inputs.shape)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if return_attention_scores:
            scores = keras.KerasTensor(
                (shape[0], self.num_heads, shape[1], shape[1]), dtype=self.compute_dtype
            )
            return output, scores
        return output

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        config = super().get_config()
        config.update(_block_config(self))
        config.update(
            {
                "stochastic_depth": self.stochastic_depth,
                "use_attention_bias": self.use_attention_bias,
                "use_mlp_bias": self.use_mlp_bias,
            }
        )
        return config


# --------------------------------------------------------------------------
# The decoder block
# --------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="dl4keras")
class TransformerDecoderBlock(keras.layers.Layer):
    """Pre-LayerNorm Transformer decoder block (the block of GPT).

    ```
    x = x + dropout(causal MHA(LN1(x)))             each token sees itself and the past
    x = x + dropout(MHA(LN_cross(x), context))      only with cross_attention=True
    x = x + MLP(LN2(x))                             MLP = Dense(mlp_dim, gelu) → dropout
                                                          → Dense(hidden_dim) → dropout
    ```

    The self-attention is always causal: the output at position `t` depends
    on the inputs at positions `0..t` only, so a stack of these blocks can be
    trained to predict token `t + 1` at every position at once (a causal
    language model, GPT). With `cross_attention=True` the block also attends
    over a `context` sequence, the encoder's output in an encoder-decoder
    Transformer (translation, summarisation); the context is not causally
    masked, and is used as given (no LayerNorm: a pre-LN encoder normalises
    its own output). Sublayers: `ln_1`, `mha` (self-attention), `ln_cross`,
    `cross_mha` (cross-attention), `ln_2`, `dense_1`, `dense_2`, the names
    of `TransformerEncoderBlock` plus the cross-attention; the layout is that
    of KerasHub's `TransformerDecoder(normalize_first=True)`.

    Keras masks (`Embedding(mask_zero=True)`) are not read: pass padding
    masks explicitly.

    Args:
        hidden_dim: Feature size of the tokens (input, context and output).
        num_heads: Number of attention heads; must divide `hidden_dim`.
        mlp_dim: Hidden size of the MLP (usually `4 * hidden_dim`).
        cross_attention: Whether the block has a cross-attention sublayer;
            it must then be called with a `context`, and only then.
        dropout: Dropout rate after each attention output and inside the MLP.
        attention_dropout: Dropout rate on the attention weights.
        layer_norm_epsilon: Epsilon of the LayerNormalizations.
        activation: Activation of the MLP's hidden layer (a Keras name,
            `"gelu_approximate"` for GPT-2's, or a function).
        kernel_initializer: Initializer of the dense kernels.
        seed: Optional integer seeding the dropouts.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `inputs`: Tensor of shape `(batch, T, hidden_dim)`.
        - `context`: Tensor of shape `(batch, S, hidden_dim)`, the sequence
          the cross-attention attends over; required with
          `cross_attention=True`, refused without.
        - `attention_mask`: Optional mask of the self-attention, combined
          (logical and) with the causal mask: a padding mask of shape
          `(batch, T)` (`True`/1 for real tokens; no token attends to a padded
          one), or a full mask of shape `(batch, T, T)` (`True` where token
          `t` may attend to token `s`). Outputs at padded positions carry no
          meaning.
        - `context_mask`: Optional padding mask of the context, shape
          `(batch, S)`: no token attends to a padded context position.
        - `training`: Python boolean: dropout is active only in training.
        - `return_attention_scores`: If `True`, also return the attention
          weights.

    Returns:
        The output, of shape `(batch, T, hidden_dim)`; with
        `return_attention_scores=True` the tuple `(output, scores)`, `scores`
        a dict: `scores["self"]` of shape `(batch, num_heads, T, T)` (zero
        above the diagonal) and, with `cross_attention=True`,
        `scores["cross"]` of shape `(batch, num_heads, T, S)`.

    Raises:
        ValueError: For invalid arguments, inputs or context that are not
            `(batch, length, hidden_dim)`, a `context` without
            `cross_attention` (or the reverse), and masks of the wrong shape.

    Examples:
        >>> from dl4keras.transformer import TransformerDecoderBlock
        >>> block = TransformerDecoderBlock(hidden_dim=16, num_heads=2, mlp_dim=32)
        >>> x = keras.random.normal((2, 5, 16))
        >>> y, scores = block(x, return_attention_scores=True)
        >>> tuple(y.shape), sorted(scores)
        ((2, 5, 16), ['self'])
        >>> (keras.ops.convert_to_numpy(scores["self"][0, 0]) > 0).astype(int)  # causal
        array([[1, 0, 0, 0, 0],
               [1, 1, 0, 0, 0],
               [1, 1, 1, 0, 0],
               [1, 1, 1, 1, 0],
               [1, 1, 1, 1, 1]])
        >>> # With cross-attention over an encoder's output, its last 2 positions padded:
        >>> block = TransformerDecoderBlock(16, 2, 32, cross_attention=True)
        >>> context = keras.random.normal((2, 7, 16))
        >>> context_mask = np.array([[1, 1, 1, 1, 1, 0, 0]] * 2)
        >>> y, scores = block(x, context, context_mask=context_mask, return_attention_scores=True)
        >>> tuple(scores["cross"].shape)
        (2, 2, 5, 7)
        >>> float(keras.ops.max(scores["cross"][..., 5:]))  # padded positions get no weight
        0.0
    """

    def __init__(
        self,
        hidden_dim,
        num_heads,
        mlp_dim,
        cross_attention=False,
        dropout=0.0,
        attention_dropout=0.0,
        layer_norm_epsilon=1e-5,
        activation="gelu",
        kernel_initializer="glorot_uniform",
        seed=None,
        **kwargs,
    ):
        hidden_dim, num_heads, mlp_dim = _block_sizes(hidden_dim, num_heads, mlp_dim)
        if not isinstance(cross_attention, bool):
            raise _validation.invalid("cross_attention", "True or False", cross_attention)
        dropout = _validation.rate("dropout", dropout)
        attention_dropout = _validation.rate("attention_dropout", attention_dropout)
        layer_norm_epsilon = _validation.positive_float("layer_norm_epsilon", layer_norm_epsilon)
        seed = _validation.optional_seed("seed", seed)
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.cross_attention = cross_attention
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.activation = _activation(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.seed = seed

        policy = self.dtype_policy
        seed_of = _seeds(seed)
        self.ln_1 = _layer_norm(self, "ln_1")
        self.mha = _attention(self, "mha", seed_of(0))
        self.attention_output_dropout = keras.layers.Dropout(
            dropout, seed=seed_of(1), dtype=policy, name="dropout"
        )
        if cross_attention:
            self.ln_cross = _layer_norm(self, "ln_cross")
            self.cross_mha = _attention(self, "cross_mha", seed_of(4))
            self.cross_output_dropout = keras.layers.Dropout(
                dropout, seed=seed_of(5), dtype=policy, name="cross_dropout"
            )
        _add_mlp(self, True, seed_of)

    # ----------------------------------------------------------- checking

    def _check(self, inputs_shape, context_shape=None, attention_mask=None, context_mask=None):
        """Clear errors for inputs, context and masks that do not fit the block."""
        inputs_shape = tuple(inputs_shape)
        _check_features(self.name, inputs_shape, self.hidden_dim)
        if context_shape is not None and not self.cross_attention:
            raise ValueError(
                f"`{self.name}` was built with cross_attention=False and takes no "
                "`context`; build it with cross_attention=True to attend over an "
                f"encoder sequence. Received: context.shape={tuple(context_shape)}"
            )
        if context_shape is None and self.cross_attention:
            raise ValueError(
                f"`{self.name}` was built with cross_attention=True: call it with a "
                "`context`, the encoder sequence of shape (batch, S, "
                f"{self.hidden_dim}). Received: context=None"
            )
        if context_shape is not None:
            _check_features(self.name, context_shape, self.hidden_dim, what="context")
        batch, length = inputs_shape[:2]
        if attention_mask is not None:
            shape = tuple(attention_mask.shape)
            if len(shape) == 2:
                fits = _fits(shape, (batch, length))
            else:
                fits = len(shape) == 3 and _fits(shape, (batch, length, length))
            if not fits:
                raise ValueError(
                    "`attention_mask` must be a padding mask of shape (batch, T) = "
                    f"{(batch, length)} or a full mask of shape (batch, T, T) = "
                    f"{(batch, length, length)}. Received: attention_mask.shape={shape}"
                )
        if context_mask is not None:
            shape = tuple(context_mask.shape)
            if context_shape is None:
                raise ValueError(
                    "`context_mask` is the padding mask of the `context`, but no "
                    f"context was given. Received: context_mask.shape={shape}"
                )
            want = (context_shape[0], context_shape[1])
            if len(shape) != 2 or not _fits(shape, want):
                raise ValueError(
                    f"`context_mask` must be the padding mask of the context, shape "
                    f"(batch, S) = {want}. Received: context_mask.shape={shape}"
                )

    # -------------------------------------------------------------- build

    def build(
        self,
        inputs_shape,
        context_shape=None,
        attention_mask_shape=None,
        context_mask_shape=None,
    ):
        inputs_shape = tuple(inputs_shape)
        _check_features(self.name, inputs_shape, self.hidden_dim)
        self.ln_1.build(inputs_shape)
        self.mha.build(inputs_shape, inputs_shape)
        if self.cross_attention:
            if context_shape is None:
                context_shape = (None, None, self.hidden_dim)
            _check_features(self.name, context_shape, self.hidden_dim, what="context")
            self.ln_cross.build(inputs_shape)
            self.cross_mha.build(inputs_shape, tuple(context_shape))
        _build_mlp(self, inputs_shape)

    # --------------------------------------------------------------- call

    def call(
        self,
        inputs,
        context=None,
        attention_mask=None,
        context_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        self._check(
            inputs.shape,
            None if context is None else context.shape,
            attention_mask,
            context_mask,
        )
        padding_mask = full_mask = None
        if attention_mask is not None:
            if len(attention_mask.shape) == 2:
                padding_mask = attention_mask
            else:
                full_mask = attention_mask
        scores = {}
        x = ops.cast(inputs, self.compute_dtype)

        y = self.ln_1(x)
        attention = self.mha(
            y,
            y,
            value_mask=padding_mask,
            attention_mask=full_mask,
            use_causal_mask=True,
            return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            attention, scores["self"] = attention
        x = x + self.attention_output_dropout(attention, training=training)

        if self.cross_attention:
            y = self.ln_cross(x)
            attention = self.cross_mha(
                y,
                ops.cast(context, self.compute_dtype),
                value_mask=context_mask,
                return_attention_scores=return_attention_scores,
                training=training,
            )
            if return_attention_scores:
                attention, scores["cross"] = attention
            x = x + self.cross_output_dropout(attention, training=training)

        x = x + _mlp(self, x, training)
        if return_attention_scores:
            return x, scores
        return x

    # ------------------------------------------------------ shapes, config

    def compute_output_shape(
        self,
        inputs_shape,
        context_shape=None,
        attention_mask_shape=None,
        context_mask_shape=None,
    ):
        return tuple(inputs_shape)

    def compute_output_spec(
        self,
        inputs,
        context=None,
        attention_mask=None,
        context_mask=None,
        training=None,
        return_attention_scores=False,
    ):
        shape = tuple(inputs.shape)
        self._check(shape, None if context is None else context.shape, attention_mask, context_mask)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        batch, length = shape[:2]
        scores = {
            "self": keras.KerasTensor(
                (batch, self.num_heads, length, length), dtype=self.compute_dtype
            )
        }
        if self.cross_attention:
            scores["cross"] = keras.KerasTensor(
                (batch, self.num_heads, length, context.shape[1]), dtype=self.compute_dtype
            )
        return output, scores

    def get_config(self):
        config = super().get_config()
        config.update(_block_config(self))
        config["cross_attention"] = self.cross_attention
        return config


def _fits(shape, want):
    """Whether a static `shape` equals `want`, unknown (None) dimensions matching anything."""
    return len(shape) == len(want) and all(
        a is None or b is None or a == b for a, b in zip(shape, want)
    )
