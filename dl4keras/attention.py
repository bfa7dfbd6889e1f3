"""Attention from scratch: scaled dot-product attention and multi-head attention.

Two pieces, both written with `keras.ops` only, so they run on every Keras
backend:

- `scaled_dot_product_attention`: the reference a learner reads first, one
  step per line: scores = q·kᵀ/√d, masked scores → a large negative number,
  softmax over the key axis, dropout, weights·v.
- `MultiHeadAttention`: a Keras 3 layer built on it, a drop-in replacement for
  `keras.layers.MultiHeadAttention` in the common API, with the same weight
  layout (so `ours.set_weights(builtin.get_weights())` reproduces the built-in
  layer's outputs and scores), the same mask handling, and a fused fast path
  through `keras.ops.dot_product_attention` when the scores are not requested.

Both compute the attention logits and the softmax in float32 even under a
`mixed_float16` / `mixed_bfloat16` dtype policy, and cast the result back:
float16 overflows above 65504, which large-magnitude queries and keys reach.
"""

import math

import keras
from keras import constraints, initializers, ops, regularizers

from dl4keras import _validation

__all__ = ["MultiHeadAttention", "scaled_dot_product_attention"]

# Value given to masked logits. Logits are float32 here, so this is safe (it
# is the same number Keras's Softmax layer uses for float32 inputs).
_MASKED_LOGIT = -1e9


# --------------------------------------------------------------------------
# Shape helpers (static shapes only: unknown dimensions, `None`, always pass)
# --------------------------------------------------------------------------


def _shape(x):
    return tuple(x.shape)


def _broadcastable(shape, target):
    """Whether `shape` broadcasts to `target` (right-aligned, None = unknown)."""
    if len(shape) > len(target):
        return False
    for dim, want in zip(reversed(shape), reversed(target)):
        if dim is None or want is None or dim == 1 or dim == want:
            continue
        return False
    return True


def _check_mask_shape(mask, target, name, expected):
    if not _broadcastable(_shape(mask), target):
        raise ValueError(
            f"`{name}` must be broadcastable to {expected} = {target}. "
            f"Received: {name}.shape={_shape(mask)}"
        )


def _causal_mask(q_len, k_len):
    """Boolean (T, S) mask, True on and below the diagonal: query i sees keys 0..i."""
    rows = ops.expand_dims(ops.arange(q_len, dtype="int32"), 1)
    cols = ops.expand_dims(ops.arange(k_len, dtype="int32"), 0)
    return ops.greater_equal(rows, cols)


def _is_low_precision(dtype):
    return keras.backend.standardize_dtype(dtype) in ("float16", "bfloat16")


# --------------------------------------------------------------------------
# The function
# --------------------------------------------------------------------------


def scaled_dot_product_attention(
    query,
    key,
    value,
    mask=None,
    causal=False,
    dropout=0.0,
    training=None,
    return_weights=False,
    seed=None,
):
    """Scaled dot-product attention, `softmax(q·kᵀ/√d) · v`.

    Every query vector is compared with every key vector; the softmax of the
    scaled similarities says how much of each value vector goes into the
    output. Leading dimensions (batch, heads, ...) are batch dimensions.

    The logits and the softmax are computed in float32 whatever the input
    dtype, and the results are cast back to the dtype of `query`, so float16
    and bfloat16 inputs whose logits exceed the float16 range (65504) still
    give finite, correct results.

    Args:
        query: Tensor of shape `(..., T, d)`.
        key: Tensor of shape `(..., S, d)`.
        value: Tensor of shape `(..., S, dv)`.
        mask: Optional boolean tensor broadcastable to `(..., T, S)`: `True`
            where a query may attend to a key, `False` where it may not
            (other dtypes are cast to bool: nonzero = attend).
        causal: If `True`, query `i` may only attend to keys `0..i` (combined
            with `mask` if both are given).
        dropout: Float in `[0, 1)`: fraction of attention weights dropped
            during training.
        training: Python boolean; dropout is only applied when it is `True`.
        return_weights: If `True`, also return the attention weights.
        seed: Optional integer or `keras.random.SeedGenerator` for dropout.

    Returns:
        The output, of shape `(..., T, dv)`, and if `return_weights=True` the
        tuple `(output, weights)` where `weights`, of shape `(..., T, S)`, are
        the softmax weights before dropout. A query that may attend to no key
        at all (a padded position) gets all-zero weights and a zero output.

    Examples:
        >>> from dl4keras.attention import scaled_dot_product_attention
        >>> q = keras.random.normal((2, 5, 16))   # 2 sequences, 5 queries
        >>> k = keras.random.normal((2, 7, 16))   # 7 keys
        >>> v = keras.random.normal((2, 7, 32))
        >>> out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
        >>> tuple(out.shape), tuple(w.shape)
        ((2, 5, 32), (2, 5, 7))
        >>> bool(np.allclose(keras.ops.sum(w, axis=-1), 1.0))  # each query's weights sum to 1
        True
        >>> # A causal mask (a decoder's): query i sees keys 0..i only.
        >>> _, w = scaled_dot_product_attention(q, q, q, causal=True, return_weights=True)
        >>> (keras.ops.convert_to_numpy(w[0, :4, :4]) > 0).astype(int)
        array([[1, 0, 0, 0],
               [1, 1, 0, 0],
               [1, 1, 1, 0],
               [1, 1, 1, 1]])
    """
    query = ops.convert_to_tensor(query)
    key = ops.convert_to_tensor(key)
    value = ops.convert_to_tensor(value)
    _validate_qkv(query, key, value)
    dropout = _validation.rate("dropout", dropout)
    q_len, k_len = ops.shape(query)[-2], ops.shape(key)[-2]
    if mask is not None:
        mask = ops.convert_to_tensor(mask)
        target = (*_shape(query)[:-2], _shape(query)[-2], _shape(key)[-2])
        _check_mask_shape(mask, target, "mask", "(..., T, S)")
        mask = ops.cast(mask, "bool")
    if causal:
        causal_mask = _causal_mask(q_len, k_len)
        mask = causal_mask if mask is None else ops.logical_and(mask, causal_mask)

    # 1. Similarity of every query with every key, scaled by 1/√d so that the
    #    logits do not grow with the head size. Done in float32: scaling the
    #    (T, d) queries before the product is the same maths, and cheaper
    #    than scaling the (T, S) scores.
    scale = 1.0 / math.sqrt(_shape(query)[-1])
    q32 = ops.cast(query, "float32") * scale
    k32 = ops.cast(key, "float32")
    scores = ops.matmul(q32, ops.swapaxes(k32, -1, -2))  # (..., T, S)

    # 2. Masked positions get a large negative logit: exp() makes them ~0.
    if mask is not None:
        scores = ops.where(mask, scores, _MASKED_LOGIT)

    # 3. Softmax over the key axis: each query's weights sum to 1.
    weights = ops.softmax(scores, axis=-1)
    if mask is not None:
        # A fully masked row would be uniform (every logit equal): zero it.
        weights = ops.where(mask, weights, 0.0)
    weights = ops.cast(weights, query.dtype)

    # 4. Dropout on the weights (training only).
    dropped = weights
    if training and dropout > 0.0:
        dropped = keras.random.dropout(weights, dropout, seed=seed)

    # 5. Weighted sum of the values.
    output = ops.matmul(dropped, ops.cast(value, weights.dtype))  # (..., T, dv)
    if return_weights:
        return output, weights
    return output


def _validate_qkv(query, key, value):
    q, k, v = _shape(query), _shape(key), _shape(value)
    for name, shape in (("query", q), ("key", k), ("value", v)):
        if len(shape) < 2:
            raise ValueError(
                f"`{name}` must have rank >= 2, shape (..., length, features). "
                f"Received: {name}.shape={shape}"
            )
    if q[-1] is not None and k[-1] is not None and q[-1] != k[-1]:
        raise ValueError(
            "`query` and `key` must have the same last dimension (the dot "
            f"product runs over it). Received: query.shape={q}, key.shape={k}"
        )
    if k[-2] is not None and v[-2] is not None and k[-2] != v[-2]:
        raise ValueError(
            "`key` and `value` must have the same length (axis -2): one value "
            f"per key. Received: key.shape={k}, value.shape={v}"
        )
    if not _broadcastable(q[:-2], k[:-2]) and not _broadcastable(k[:-2], q[:-2]):
        raise ValueError(
            "`query` and `key` must have broadcastable leading (batch) "
            f"dimensions. Received: query.shape={q}, key.shape={k}"
        )


# --------------------------------------------------------------------------
# The layer
# --------------------------------------------------------------------------


def _clone(obj):
    """A fresh copy of an initializer, so that each weight gets its own draw."""
    return obj.__class__.from_config(obj.get_config())


@keras.saving.register_keras_serializable(package="dl4keras")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention, written from scratch.

    A drop-in replacement for `keras.layers.MultiHeadAttention` for sequences
    of shape `(batch, length, features)`: the same weights in the same order,
    the same masks, the same outputs, and the same arguments except three
    extensions of the built-in layer it does not implement:
    `attention_axes` other than the sequence axis (attention over other or
    several axes of higher-rank inputs),
    `use_gate` (a sigmoid gate on the attention output) and `sliding_window`
    (local attention). They are accepted at their defaults (`None`, `False`,
    `None`) and refused otherwise with a `ValueError` that points at
    `keras.layers.MultiHeadAttention`. `flash_attention` is passed on to
    `keras.ops.dot_product_attention`.

    The layer projects `query`, `key` and `value` into `num_heads` heads
    (`key_dim` features per head for queries and keys, `value_dim` for
    values), runs scaled dot-product attention in every head in parallel,
    and projects the concatenated heads back to the query's feature size (or
    to `output_shape`).

    Weights, in `get_weights()` order, are those of the built-in layer:
    `query` kernel `(d_query, num_heads, key_dim)` and bias
    `(num_heads, key_dim)`, `key` kernel `(d_key, num_heads, key_dim)` and
    bias, `value` kernel `(d_value, num_heads, value_dim)` and bias, output
    kernel `(num_heads, value_dim, *output_shape)` and bias `output_shape`.

    When the attention scores are not requested and dropout is inactive, the
    layer calls the fused `keras.ops.dot_product_attention`; otherwise it runs
    `scaled_dot_product_attention` step by step. Both compute logits and
    softmax in float32 under mixed precision.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each attention head for query and key.
        value_dim: Size of each attention head for value. Defaults to
            `key_dim`.
        dropout: Dropout rate on the attention weights, a float in `[0, 1)`.
        use_bias: Boolean, whether the projections use bias vectors.
        output_shape: Shape of each output vector, an int or a tuple of ints.
            Defaults to the query's last dimension.
        kernel_initializer: Initializer for the projection kernels.
        bias_initializer: Initializer for the projection biases.
        kernel_regularizer: Regularizer for the projection kernels.
        bias_regularizer: Regularizer for the projection biases.
        activity_regularizer: Regularizer for the layer's output (the
            built-in layer applies it to each projection's output instead).
        kernel_constraint: Constraint for the projection kernels.
        bias_constraint: Constraint for the projection biases.
        flash_attention: `None` (let Keras decide), `True` or `False`:
            whether the fused path may use a flash-attention kernel (see
            `keras.ops.dot_product_attention`). With `True`, attention scores
            cannot be returned and dropout must be 0.
        seed: Optional integer seeding the attention dropout.
        attention_axes: Only the sequence axis: `None` (the default), `1`,
            `(1,)`, `-2` or `(-2,)`, which all mean the same for inputs of
            shape `(batch, length, features)`.
        use_gate: Only `False`.
        sliding_window: Only `None`.
        **kwargs: Base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        - `query`: Query tensor of shape `(B, T, dim)`.
        - `value`: Value tensor of shape `(B, S, dim_v)`.
        - `key`: Optional key tensor of shape `(B, S, dim_k)`; defaults to
          `value`, the common case.
        - `query_mask`: Optional boolean mask `(B, T)` of valid query positions.
          Filled in from the Keras mask of `query` (e.g. from
          `Embedding(mask_zero=True)` or `Masking`) when not given.
        - `value_mask`: Optional boolean mask `(B, S)` of valid value positions,
          from the Keras mask of `value` when not given.
        - `key_mask`: Optional boolean mask `(B, S)` of valid key positions, from
          the Keras mask of `key` when not given.
        - `attention_mask`: Optional boolean mask broadcastable to
          `(B, num_heads, T, S)` (usually `(B, T, S)`): `True` where query
          `t` may attend to key `s`. Combined (logical and) with the masks
          above and the causal mask.
        - `return_attention_scores`: If `True`, return `(output, scores)`.
        - `training`: Python boolean, whether dropout is active.
        - `use_causal_mask`: If `True`, query `t` may only attend to keys
          `0..t` (a decoder's mask).

    Returns:
        `attention_output`, a tensor of shape `(B, T, E)`, `E` the query's last
        dimension, or `(B, T, *output_shape)`, that carries the query's Keras
        mask; with `return_attention_scores=True`, the tuple
        `(attention_output, attention_scores)`, the scores being the attention
        weights, of shape `(B, num_heads, T, S)`.

    Rows of padded query positions (queries that may attend to no key) carry
    no meaning: the step-by-step path gives them zero weights, the fused path
    a uniform average, exactly as the built-in layer's two paths do.

    Examples:
        >>> from dl4keras import MultiHeadAttention
        >>> layer = MultiHeadAttention(num_heads=2, key_dim=2)
        >>> target = keras.Input(shape=[8, 16])
        >>> source = keras.Input(shape=[4, 16])
        >>> output, scores = layer(target, source, return_attention_scores=True)
        >>> output.shape, scores.shape
        ((None, 8, 16), (None, 2, 8, 4))
        >>> # Self-attention, eagerly, with the last position padded: no query attends to it.
        >>> x = keras.random.normal((1, 4, 16))
        >>> valid = np.array([[True, True, True, False]])
        >>> _, scores = layer(x, x, value_mask=valid, return_attention_scores=True)
        >>> (keras.ops.convert_to_numpy(scores[0, 0]) > 0).astype(int)
        array([[1, 1, 1, 0],
               [1, 1, 1, 0],
               [1, 1, 1, 0],
               [1, 1, 1, 0]])
        >>> sums = keras.ops.convert_to_numpy(keras.ops.sum(scores, axis=-1))
        >>> bool(np.allclose(sums, 1.0))  # rows still sum to 1
        True
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        flash_attention=None,
        seed=None,
        attention_axes=None,
        use_gate=False,
        sliding_window=None,
        **kwargs,
    ):
        num_heads = _validation.positive_int("num_heads", num_heads)
        key_dim = _validation.positive_int("key_dim", key_dim)
        value_dim = _validation.positive_int("value_dim", value_dim, allow_none=True)
        dropout = _validation.rate("dropout", dropout)
        output_shape = _validation.positive_int_tuple("output_shape", output_shape, True)
        seed = _validation.optional_seed("seed", seed)
        if flash_attention not in (None, True, False):
            raise _validation.invalid("flash_attention", "None, True or False", flash_attention)
        if attention_axes in (1, -2) or (
            isinstance(attention_axes, (tuple, list)) and list(attention_axes) in ([1], [-2])
        ):
            attention_axes = None  # the sequence axis of (batch, length, features): the default
        for name, value, default in (
            ("attention_axes", attention_axes, None),
            ("use_gate", use_gate, False),
            ("sliding_window", sliding_window, None),
        ):
            if value != default:
                raise ValueError(
                    f"dl4keras.MultiHeadAttention does not implement `{name}` (only "
                    f"{name}={default!r}); keras.layers.MultiHeadAttention does. "
                    f"Received: {name}={value!r}"
                )
        super().__init__(**kwargs)
        self.supports_masking = True
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim or key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        # Not `self.output_shape`: Functional models read that attribute.
        self._output_shape = output_shape
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        self.seed = seed
        self.flash_attention = flash_attention
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None

    # ---------------------------------------------------------------- build

    def _projection(self, name, kernel_shape, bias_shape):
        kernel = self.add_weight(
            name=f"{name}_kernel",
            shape=kernel_shape,
            initializer=_clone(self.kernel_initializer),
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        bias = None
        if self.use_bias:
            bias = self.add_weight(
                name=f"{name}_bias",
                shape=bias_shape,
                initializer=_clone(self.bias_initializer),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        return kernel, bias

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        shapes = {"query": query_shape, "value": value_shape, "key": key_shape}
        for name, shape in shapes.items():
            shape = tuple(shape)
            if len(shape) != 3:
                raise ValueError(
                    f"`{name}` must have shape (batch, length, features). "
                    f"Received: {name}.shape={shape}"
                )
            if shape[-1] is None:
                raise ValueError(
                    f"The last dimension of `{name}` must be known to build its "
                    f"projection kernel. Received: {name}.shape={shape}"
                )
        if not _broadcastable(tuple(key_shape)[1:2], tuple(value_shape)[1:2]):
            raise ValueError(
                "`key` and `value` must have the same length (one value per "
                f"key). Received: key.shape={tuple(key_shape)}, "
                f"value.shape={tuple(value_shape)}"
            )
        heads = self.num_heads
        self._query_dim = query_shape[-1]
        self._key_input_dim = key_shape[-1]
        self._value_input_dim = value_shape[-1]
        out_shape = self._output_shape or (self._query_dim,)
        # Same shapes and order as the built-in layer's EinsumDense sublayers.
        self.query_kernel, self.query_bias = self._projection(
            "query", (self._query_dim, heads, self.key_dim), (heads, self.key_dim)
        )
        self.key_kernel, self.key_bias = self._projection(
            "key", (self._key_input_dim, heads, self.key_dim), (heads, self.key_dim)
        )
        self.value_kernel, self.value_bias = self._projection(
            "value", (self._value_input_dim, heads, self.value_dim), (heads, self.value_dim)
        )
        self.output_kernel, self.output_bias = self._projection(
            "attention_output", (heads, self.value_dim, *out_shape), out_shape
        )
        # "bnv,nvxy->bxy"-style equation for any output rank.
        out_letters = "xyzuvw"[: len(out_shape)]
        self._output_equation = f"btnv,nv{out_letters}->bt{out_letters}"

    # ----------------------------------------------------------------- call

    def _check_inputs(self, query, value, key):
        for name, x, dim in (
            ("query", query, self._query_dim),
            ("value", value, self._value_input_dim),
            ("key", key, self._key_input_dim),
        ):
            shape = _shape(x)
            if len(shape) != 3 or (shape[-1] is not None and shape[-1] != dim):
                raise ValueError(
                    f"`{name}` must have shape (batch, length, {dim}): the layer "
                    f"was built for {name} features of size {dim}. "
                    f"Received: {name}.shape={shape}"
                )

    def _attention_mask(
        self, query, value, query_mask, value_mask, key_mask, attention_mask, causal
    ):
        """Combines all masks into one boolean mask broadcastable to (B, N, T, S).

        The same mask as the built-in layer's `_compute_attention_mask`:
        query mask → (B, T, 1), value/key masks → (B, 1, S), causal mask
        (1, T, S), `attention_mask` as given, all combined with a logical and,
        then a head axis is inserted: (B, 1, T, S).
        """
        batch, q_len, v_len = _shape(query)[0], _shape(query)[1], _shape(value)[1]
        target = (batch, self.num_heads, q_len, v_len)
        mask = None

        def merge(m):
            return m if mask is None else ops.logical_and(mask, m)

        for name, m, length, axis in (
            ("query_mask", query_mask, q_len, -1),
            ("value_mask", value_mask, v_len, -2),
            ("key_mask", key_mask, v_len, -2),
        ):
            if m is None:
                continue
            if not _broadcastable(_shape(m), (batch, length)) or len(_shape(m)) != 2:
                raise ValueError(
                    f"`{name}` must have shape (batch, length) = {(batch, length)}. "
                    f"Received: {name}.shape={_shape(m)}"
                )
            mask = merge(ops.expand_dims(ops.cast(m, "bool"), axis))
        if causal:
            mask = merge(ops.expand_dims(_causal_mask(ops.shape(query)[1], ops.shape(value)[1]), 0))
        if attention_mask is not None:
            attention_mask = ops.convert_to_tensor(attention_mask)
            shape = _shape(attention_mask)
            # Like the built-in layer: (B, T, S) → (B, 1, T, S), (T, S) → (1, 1, T, S).
            if len(shape) == 3:
                shape = (shape[0], 1, *shape[1:])
            elif len(shape) == 2:
                shape = (1, 1, *shape)
            if len(shape) != 4 or not _broadcastable(shape, target):
                raise ValueError(
                    "`attention_mask` must be broadcastable to (batch, num_heads, "
                    f"T, S) = {target} (usually (batch, T, S) = "
                    f"{(batch, q_len, v_len)}). "
                    f"Received: attention_mask.shape={_shape(attention_mask)}"
                )
            attention_mask = ops.cast(attention_mask, "bool")
            for _ in range(4 - len(_shape(attention_mask))):
                attention_mask = ops.expand_dims(attention_mask, -3)
        if mask is not None:
            mask = ops.expand_dims(mask, 1)  # head axis: (B, 1, T, S)
        if attention_mask is None:
            return mask
        return attention_mask if mask is None else ops.logical_and(attention_mask, mask)

    def _project(self, x, kernel, bias):
        x = ops.einsum("btd,dnh->btnh", x, kernel)
        return x if bias is None else x + bias

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        if key is None:
            key = value
        self._check_inputs(query, value, key)
        query = ops.cast(query, self.compute_dtype)
        value = ops.cast(value, self.compute_dtype)
        key = ops.cast(key, self.compute_dtype)

        # Causal masking alone: the fused kernel builds the mask itself.
        causal_only = use_causal_mask and all(
            m is None for m in (query_mask, value_mask, key_mask, attention_mask)
        )
        mask = self._attention_mask(
            query,
            value,
            query_mask,
            value_mask,
            key_mask,
            attention_mask,
            use_causal_mask and not causal_only,
        )

        # 1. Project into heads: (B, T, dim) → (B, T, N, key_dim) etc.
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)

        # 2. Attention in every head.
        dropout_active = bool(training) and self.dropout > 0.0
        if self.flash_attention and (return_attention_scores or dropout_active):
            raise ValueError(
                "Flash attention computes no attention scores and no dropout: with "
                "flash_attention=True, call the layer with return_attention_scores=False "
                f"and build it with dropout=0. Received: return_attention_scores="
                f"{return_attention_scores}, dropout={self.dropout}, training={training}"
            )
        # JAX's fused op needs the value heads as wide as the key heads.
        fusable = keras.backend.backend() != "jax" or v.shape[-1] == q.shape[-1]
        if not return_attention_scores and not dropout_active and fusable:
            output = self._fused_attention(q, k, v, mask, causal_only)
            scores = None
        else:
            # Heads become a batch axis: (B, N, T, key_dim).
            output, scores = scaled_dot_product_attention(
                ops.transpose(q, (0, 2, 1, 3)),
                ops.transpose(k, (0, 2, 1, 3)),
                ops.transpose(v, (0, 2, 1, 3)),
                mask=mask,
                causal=causal_only,
                dropout=self.dropout,
                training=training,
                return_weights=True,
                seed=self.seed_generator,
            )
            output = ops.transpose(output, (0, 2, 1, 3))  # (B, T, N, value_dim)

        # 3. Concatenate the heads and project: (B, T, N, value_dim) → (B, T, E).
        output = ops.einsum(self._output_equation, output, self.output_kernel)
        if self.output_bias is not None:
            output = output + self.output_bias
        if self._activity_regularizer is not None:
            loss = self._activity_regularizer(output)
            self.add_loss(loss / ops.cast(ops.shape(output)[0], loss.dtype))
        if return_attention_scores:
            return output, scores
        return output

    def _fused_attention(self, q, k, v, mask, causal):
        """`keras.ops.dot_product_attention`, with float32 logits under mixed precision."""
        dtype = q.dtype
        if _is_low_precision(dtype):
            # The fused op computes q·kᵀ in the inputs' dtype: in float16 it
            # overflows. Promote q and k (v follows) and cast the result back.
            q, k = ops.cast(q, "float32"), ops.cast(k, "float32")
        # Scale the (T, key_dim) queries rather than the (T, S) logits.
        q = q * ops.cast(1.0 / math.sqrt(self.key_dim), q.dtype)
        output = ops.dot_product_attention(
            q, k, v, mask=mask, scale=1.0, is_causal=causal, flash_attention=self.flash_attention
        )
        return ops.cast(output, dtype)

    # --------------------------------------------------------- shapes, config

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape = tuple(query_shape)
        if self._output_shape:
            return query_shape[:-1] + self._output_shape
        return query_shape

    def compute_output_spec(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, value.shape),
            dtype=self.compute_dtype,
        )
        if return_attention_scores:
            scores_shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
            return output, keras.KerasTensor(scores_shape, dtype=self.compute_dtype)
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_shape": self._output_shape,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer),
                "activity_regularizer": regularizers.serialize(self._activity_regularizer),
                "kernel_constraint": constraints.serialize(self.kernel_constraint),
                "bias_constraint": constraints.serialize(self.bias_constraint),
                "flash_attention": self.flash_attention,
                "seed": self.seed,
            }
        )
        return config
