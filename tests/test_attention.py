"""Tests for dl4keras.attention: the function, and the layer's parity with Keras's own."""

import math

import keras
import numpy as np
import pytest
from backend_utils import dtype_name, to_numpy
from keras import ops

import dl4keras.attention as attention
from dl4keras.attention import MultiHeadAttention, scaled_dot_product_attention

TOL = 1e-5
B, T, S, D = 2, 5, 7, 8  # batch, query length, key length, model dim


def rand(*shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype("float32")


def np_attention(q, k, v, mask=None):
    """Plain NumPy reference: softmax(q kᵀ / √d) v, masked logits → -inf."""
    logits = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    logits = logits - logits.max(-1, keepdims=True)
    w = np.exp(logits)
    w = w / w.sum(-1, keepdims=True)
    return w @ v, w


def pair(num_heads=2, key_dim=4, query_shape=(B, T, D), value_shape=None, key_shape=None, **kw):
    """The built-in layer and ours with the built-in's weights."""
    keras.utils.set_random_seed(0)
    value_shape = value_shape or query_shape
    builtin = keras.layers.MultiHeadAttention(num_heads, key_dim, **kw)
    if keras.backend.backend() == "jax" and kw.get("value_dim", key_dim) != key_dim:
        builtin = _ExplicitPath(builtin)
    ours = MultiHeadAttention(num_heads, key_dim, **kw)
    args = [np.zeros(query_shape, "float32"), np.zeros(value_shape, "float32")]
    if key_shape:
        args.append(np.zeros(key_shape, "float32"))
    builtin(*args)
    ours(*args)
    ours.set_weights(builtin.get_weights())
    return builtin, ours


class _ExplicitPath:
    """The built-in layer, called through its explicit (score-returning) path.

    On JAX, Keras 3.15's `keras.layers.MultiHeadAttention` hands value heads
    narrower than the key heads to JAX's fused attention, which refuses them
    ("cannot reshape"); its explicit path is right. Ours checks for this and
    takes its explicit path itself (tested below against this reference).
    """

    def __init__(self, layer):
        self.layer = layer

    def __getattr__(self, name):
        return getattr(self.layer, name)

    def __call__(self, *args, return_attention_scores=False, **kwargs):
        out, scores = self.layer(*args, return_attention_scores=True, **kwargs)
        return (out, scores) if return_attention_scores else out


def both(builtin, ours, make_inputs, **call_kwargs):
    """Calls ours, then the built-in, each on fresh inputs.

    Fresh inputs because the built-in layer removes the Keras masks from the
    tensors it is given.
    """
    results = []
    for layer in (ours, builtin):
        args, kwargs = make_inputs()
        out = layer(*args, **kwargs, **call_kwargs)
        results.append([to_numpy(o) for o in out] if isinstance(out, tuple) else [to_numpy(out)])
    return results


def assert_parity(builtin, ours, make_inputs, rows=None, **call_kwargs):
    """Same outputs (and scores) from both paths: fused (no scores) and explicit."""
    for scores in (False, True):
        mine, theirs = both(
            builtin, ours, make_inputs, return_attention_scores=scores, **call_kwargs
        )
        assert len(mine) == len(theirs) == 1 + scores
        for a, b in zip(mine, theirs):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=TOL, rtol=0)


def plain(*arrays):
    return lambda: (list(arrays), {})


# ------------------------------------------------------------------ the function


def test_function_matches_numpy_reference():
    q, k, v = rand(B, 3, T, 4), rand(B, 3, S, 4, seed=1), rand(B, 3, S, 6, seed=2)
    mask = np.random.default_rng(3).random((B, 1, T, S)) > 0.3
    mask[..., 0] = True  # every query sees at least one key
    out, w = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    ref_out, ref_w = np_attention(q, k, v, mask)
    np.testing.assert_allclose(out, ref_out, atol=TOL)
    np.testing.assert_allclose(w, ref_w, atol=TOL)
    assert out.shape == (B, 3, T, 6) and w.shape == (B, 3, T, S)
    np.testing.assert_allclose(ops.sum(w, -1), 1.0, atol=TOL)


def test_function_causal_and_fully_masked_rows():
    q, k, v = rand(T, 4), rand(T, 4, seed=1), rand(T, 3, seed=2)
    out, w = scaled_dot_product_attention(q, k, v, causal=True, return_weights=True)
    causal = np.tril(np.ones((T, T), bool))
    np.testing.assert_allclose(out, np_attention(q, k, v, causal)[0], atol=TOL)
    assert np.all(to_numpy(w)[~causal] == 0)
    # A query that may attend to nothing gets zero weights and a zero output.
    mask = np.ones((T, T), bool)
    mask[2] = False
    out, w = scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert np.all(to_numpy(w)[2] == 0) and np.all(to_numpy(out)[2] == 0)


def test_function_dropout_only_in_training():
    q, k, v = rand(B, T, 4), rand(B, S, 4, seed=1), rand(B, S, 4, seed=2)
    ref = scaled_dot_product_attention(q, k, v)
    for training in (None, False):
        out = scaled_dot_product_attention(q, k, v, dropout=0.5, training=training)
        np.testing.assert_allclose(out, ref, atol=TOL)
    out, w = scaled_dot_product_attention(
        q, k, v, dropout=0.5, training=True, return_weights=True, seed=1
    )
    assert np.abs(to_numpy(out) - to_numpy(ref)).max() > 1e-3
    np.testing.assert_allclose(ops.sum(w, -1), 1.0, atol=TOL)  # weights: before dropout


@pytest.mark.parametrize(
    "shapes, kwargs, match",
    [
        (
            ((T, 4), (S, 3), (S, 4)),
            {},
            r"same last dimension.*query.shape=\(5, 4\), key.shape=\(7, 3\)",
        ),
        (
            ((T, 4), (S, 4), (S + 1, 4)),
            {},
            r"same length.*key.shape=\(7, 4\), value.shape=\(8, 4\)",
        ),
        (((4,), (S, 4), (S, 4)), {}, r"`query` must have rank >= 2.*query.shape=\(4,\)"),
        (
            ((T, 4), (S, 4), (S, 4)),
            {"mask": np.ones((T, S + 1), bool)},
            r"`mask` must be broadcastable to \(\.\.\., T, S\) = \(5, 7\).*mask.shape=\(5, 8\)",
        ),
        (((T, 4), (S, 4), (S, 4)), {"dropout": 1.0}, r"dropout=1.0"),
    ],
)
def test_function_bad_inputs(shapes, kwargs, match):
    q, k, v = (rand(*s) for s in shapes)
    with pytest.raises(ValueError, match=match):
        scaled_dot_product_attention(q, k, v, **kwargs)


def test_function_float16_logits_do_not_overflow():
    # q·k = 4 · 200 · 200 = 160000 > 65504, the float16 maximum.
    q = np.full((1, 3, 4), 200.0, "float16")
    k = np.concatenate([np.full((1, 2, 4), 200.0), np.full((1, 2, 4), -200.0)], 1).astype("float16")
    v = rand(1, 4, 2).astype("float16")
    naive = ops.softmax(ops.matmul(q, ops.swapaxes(k, -1, -2)) / 2.0, axis=-1)
    assert not np.all(np.isfinite(to_numpy(naive)))
    out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    assert dtype_name(out) == dtype_name(w) == "float16"
    ref_out, ref_w = np_attention(q.astype("float32"), k.astype("float32"), v.astype("float32"))
    np.testing.assert_allclose(to_numpy(w, "float32"), ref_w, atol=1e-3)
    np.testing.assert_allclose(to_numpy(out, "float32"), ref_out, atol=1e-2)


# ------------------------------------------------------------------ the layer: parity


def test_weight_layout_matches_builtin():
    builtin, ours = pair(
        value_dim=3, output_shape=(2, 5), query_shape=(B, T, 6), value_shape=(B, S, D)
    )
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in builtin.get_weights()]
    assert [tuple(w.shape) for w in ours.trainable_weights] == [
        (6, 2, 4),
        (2, 4),
        (D, 2, 4),
        (2, 4),
        (D, 2, 3),
        (2, 3),
        (2, 3, 2, 5),
        (2, 5),
    ]
    _, no_bias = pair(use_bias=False)
    assert len(no_bias.get_weights()) == 4


PARITY_CASES = {
    "self": ({}, {}),
    "cross": ({"query_shape": (B, T, 6), "value_shape": (B, S, D)}, {}),
    "cross_key": ({"query_shape": (B, T, 6), "value_shape": (B, S, D), "key_shape": (B, S, 3)}, {}),
    "value_dim": ({"value_dim": 3}, {}),
    "output_int": ({"output_shape": 5}, {}),
    "output_tuple": ({"output_shape": (2, 3)}, {}),
    "no_bias": ({"use_bias": False, "num_heads": 3}, {}),
    "dropout_inference": ({"dropout": 0.5}, {}),
    "causal": ({}, {"use_causal_mask": True}),
    "causal_cross": ({"value_shape": (B, S, D)}, {"use_causal_mask": True}),
    "causal_dropout_inference": ({"dropout": 0.5}, {"use_causal_mask": True}),
}


@pytest.mark.parametrize("name", PARITY_CASES)
def test_parity(name):
    layer_kw, call_kw = PARITY_CASES[name]
    shapes = {
        k: layer_kw.pop(k) for k in ("query_shape", "value_shape", "key_shape") if k in layer_kw
    }
    builtin, ours = pair(**shapes, **layer_kw)
    query_shape = shapes.get("query_shape", (B, T, D))
    inputs = [rand(*query_shape), rand(*shapes.get("value_shape", query_shape), seed=1)]
    if "key_shape" in shapes:
        inputs.append(rand(*shapes["key_shape"], seed=2))
    assert_parity(builtin, ours, plain(*inputs), **call_kw)


def test_parity_explicit_attention_mask():
    builtin, ours = pair(value_shape=(B, S, D))
    q, v = rand(B, T, D), rand(B, S, D, seed=1)
    mask = np.random.default_rng(0).random((B, T, S)) > 0.5
    mask[:, :, 0] = True
    for m in (mask, mask[0], mask.astype("int32"), mask[:, None]):  # (B,T,S), (T,S), int, (B,1,T,S)
        assert_parity(builtin, ours, lambda m=m: ([q, v], {"attention_mask": m}))
    assert_parity(builtin, ours, lambda: ([q, v], {"attention_mask": mask}), use_causal_mask=True)


def embedded(ids, dim=D):
    keras.utils.set_random_seed(1)
    emb = keras.layers.Embedding(10, dim, mask_zero=True)
    return emb, ids


QUERY_IDS = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 0]])
VALUE_IDS = np.array([[1, 2, 0, 0, 0, 0, 0], [3, 4, 5, 6, 7, 8, 0]])


def test_parity_padding_masks_embedding():
    keras.utils.set_random_seed(1)
    emb = keras.layers.Embedding(10, D, mask_zero=True)
    builtin, ours = pair(value_shape=(B, S, D))
    # Self-attention: padded queries attend to no key; cross-attention: value mask only.
    assert_parity(builtin, ours, lambda: ([emb(QUERY_IDS), emb(QUERY_IDS)], {}))
    assert_parity(builtin, ours, lambda: ([emb(QUERY_IDS), emb(VALUE_IDS)], {}))
    assert_parity(
        builtin, ours, lambda: ([emb(QUERY_IDS), emb(VALUE_IDS)], {}), use_causal_mask=True
    )
    # With an explicit mask and a separate (masked) key.
    mask = np.ones((B, T, S), bool)
    mask[0, 1, :3] = False
    assert_parity(
        builtin,
        ours,
        lambda: ([emb(QUERY_IDS), emb(VALUE_IDS), emb(VALUE_IDS)], {"attention_mask": mask}),
    )


def test_parity_padding_masks_masking_layer():
    x = rand(B, S, D)
    x[0, 4:] = 0.0
    x[1, 6:] = 0.0
    masking = keras.layers.Masking(0.0)
    builtin, ours = pair(query_shape=(B, S, D), value_dim=3)
    assert_parity(builtin, ours, lambda: ([masking(x), masking(x)], {}))
    out = ours(masking(x), masking(x))
    np.testing.assert_array_equal(out._keras_mask, np.any(x != 0, -1))  # output mask = query mask


def test_fused_and_explicit_paths_agree():
    _, ours = pair(value_shape=(B, S, D), num_heads=3, value_dim=5)
    q, v = rand(B, T, D, scale=3.0), rand(B, S, D, seed=1, scale=3.0)
    mask = np.random.default_rng(0).random((B, T, S)) > 0.5
    mask[:, :, 0] = True  # no query is left without a key, causal or not
    for kwargs in (
        {},
        {"use_causal_mask": True},
        {"attention_mask": mask},
        {"attention_mask": mask, "use_causal_mask": True},
    ):
        fused = ours(q, v, **kwargs)
        explicit, _ = ours(q, v, return_attention_scores=True, **kwargs)
        np.testing.assert_allclose(to_numpy(fused), to_numpy(explicit), atol=TOL)
    # Padding masks: identical on every real (unpadded) query position.
    keras.utils.set_random_seed(1)
    emb = keras.layers.Embedding(10, D, mask_zero=True)
    fused = ours(emb(QUERY_IDS), emb(VALUE_IDS))
    explicit, _ = ours(emb(QUERY_IDS), emb(VALUE_IDS), return_attention_scores=True)
    real = QUERY_IDS != 0
    np.testing.assert_allclose(to_numpy(fused)[real], to_numpy(explicit)[real], atol=TOL)


def test_explicit_query_mask_and_scores():
    _, ours = pair()
    x = rand(B, T, D)
    qmask = QUERY_IDS != 0
    _, scores = ours(x, x, query_mask=qmask, value_mask=qmask, return_attention_scores=True)
    scores = to_numpy(scores)
    assert scores.shape == (B, 2, T, T)
    allowed = np.broadcast_to(qmask[:, None, :, None] & qmask[:, None, None, :], scores.shape)
    assert np.all(scores[~allowed] == 0)  # padded queries and padded keys: zero weight
    real_rows = np.broadcast_to(qmask[:, None, :], (B, 2, T))
    np.testing.assert_allclose(scores.sum(-1)[real_rows], 1.0, atol=TOL)


def test_dropout_in_training():
    _, ours = pair(dropout=0.5, seed=3)
    x = rand(B, T, D)
    inference = ours(x, x)
    trained, scores = ours(x, x, training=True, return_attention_scores=True)
    assert np.abs(to_numpy(trained) - to_numpy(inference)).max() > 1e-3
    np.testing.assert_allclose(to_numpy(ops.sum(scores, -1)), 1.0, atol=TOL)


def test_regularizer_losses_match_builtin():
    builtin, ours = pair(kernel_regularizer="l2", bias_regularizer="l1")
    assert len(ours.losses) == len(builtin.losses) == 8
    np.testing.assert_allclose(to_numpy(sum(ours.losses)), to_numpy(sum(builtin.losses)), rtol=1e-6)
    # The activity regularizer applies to the layer's output (once per call).
    _, ours = pair(activity_regularizer="l2")
    x = rand(B, T, D)
    out = ours(x, x)
    assert len(ours.losses) == 1
    expected = 0.01 * np.sum(np.square(to_numpy(out))) / B
    np.testing.assert_allclose(to_numpy(ours.losses[0]), expected, rtol=1e-5)


# ------------------------------------------------------------------ mixed precision


def overflow_layer(dtype):
    """A layer whose projections are identities: q = k = x, v = x / 100, out = v."""
    layer = MultiHeadAttention(2, 4, dtype=dtype)
    layer(np.zeros((1, T, D), "float32"), np.zeros((1, T, D), "float32"))
    eye = np.eye(D, dtype="float32").reshape(D, 2, 4)
    layer.set_weights(
        [
            eye,
            np.zeros((2, 4)),
            eye,
            np.zeros((2, 4)),
            eye / 100,
            np.zeros((2, 4)),
            np.eye(D).reshape(2, 4, D),
            np.zeros(D),
        ]
    )
    return layer


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_logits_do_not_overflow(policy):
    # Entries ±200 in 4-dim heads: q·k reaches 160000, q·k/√4 80000 > 65504.
    x = (200.0 * np.sign(rand(1, T, D)) + rand(1, T, D, seed=1)).astype("float32")
    q = ops.cast(ops.reshape(x, (1, T, 2, 4)), "float16")
    naive = ops.einsum("btnh,bsnh->bnts", q * 0.5, q)  # what a float16 einsum does
    assert not np.all(np.isfinite(to_numpy(naive)))

    ref_out, ref_scores = map(
        to_numpy, overflow_layer("float32")(x, x, return_attention_scores=True)
    )
    layer = overflow_layer(policy)
    fused = layer(x, x)
    explicit, scores = layer(x, x, return_attention_scores=True)
    assert dtype_name(fused) == dtype_name(explicit) == dtype_name(scores) == policy.split("_")[1]
    for out in (fused, explicit):
        out = to_numpy(ops.cast(out, "float32"))
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, ref_out, atol=0.05)
    np.testing.assert_allclose(to_numpy(ops.cast(scores, "float32")), ref_scores, atol=1e-2)


# ------------------------------------------------------------------ models, saving, training


def text_model():
    ids = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(20, 16, mask_zero=True)(ids)
    x = MultiHeadAttention(2, 8, dropout=0.1, output_shape=12, name="mha")(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(ids, keras.layers.Dense(2)(x))


def toy_data(n=64, length=6):
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 20, size=(n, length))
    ids[rng.random((n, length)) < 0.2] = 0
    return ids, (ids == 7).any(-1).astype("int32")


def test_functional_save_load_keras(tmp_path):
    keras.utils.set_random_seed(0)
    model = text_model()
    ids, _ = toy_data(8)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("mha"), MultiHeadAttention)
    np.testing.assert_array_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))


def test_get_config_round_trip():
    layer = MultiHeadAttention(
        3,
        4,
        value_dim=5,
        dropout=0.2,
        use_bias=False,
        output_shape=(2, 3),
        kernel_initializer="he_normal",
        bias_initializer="ones",
        kernel_regularizer="l2",
        bias_regularizer="l1",
        activity_regularizer="l2",
        kernel_constraint="max_norm",
        bias_constraint="non_neg",
        seed=7,
        name="att",
    )
    config = layer.get_config()
    clone = MultiHeadAttention.from_config(config)
    assert clone.get_config() == config
    assert config["output_shape"] == (2, 3) and config["value_dim"] == 5 and config["seed"] == 7
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is MultiHeadAttention and restored.get_config() == config


def test_symbolic_shapes():
    layer = MultiHeadAttention(2, 4, output_shape=(3, 5))
    q, v = keras.Input((T, 6)), keras.Input((S, D))
    out, scores = layer(q, v, return_attention_scores=True)
    assert out.shape == (None, T, 3, 5) and scores.shape == (None, 2, T, S)
    assert layer.compute_output_shape((None, T, 6), (None, S, D)) == (None, T, 3, 5)
    assert MultiHeadAttention(2, 4).compute_output_shape((B, T, 6), (B, S, D)) == (B, T, 6)


class SelfAttention(keras.layers.Layer):
    """The one-input wrapper a Sequential model needs (query = value)."""

    def __init__(self, **kwargs):
        super().__init__()
        self.attention = MultiHeadAttention(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return self.attention(x, x)


class Classifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.embed = keras.layers.Embedding(20, 16, mask_zero=True)
        self.attention = MultiHeadAttention(2, 8)
        self.pool = keras.layers.GlobalAveragePooling1D()
        self.head = keras.layers.Dense(2)

    def call(self, ids):
        x = self.embed(ids)
        return self.head(self.pool(self.attention(x, x, use_causal_mask=True)))


@pytest.mark.parametrize("kind", ["functional", "sequential", "subclassed"])
def test_models_train(kind):
    keras.utils.set_random_seed(0)
    if kind == "functional":
        model = text_model()
    elif kind == "sequential":
        model = keras.Sequential(
            [
                keras.Input((6,), dtype="int32"),
                keras.layers.Embedding(20, 16, mask_zero=True),
                SelfAttention(num_heads=2, key_dim=8),
                keras.layers.GlobalAveragePooling1D(),
                keras.layers.Dense(2),
            ]
        )
    else:
        model = Classifier()
    ids, labels = toy_data()
    model.compile(
        keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    history = model.fit(ids, labels, batch_size=16, epochs=4, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert model.predict(ids[:4], verbose=0).shape == (4, 2)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_heads": 0}, r"`num_heads`.*Received: num_heads=0"),
        ({"num_heads": 2.0}, r"`num_heads`.*Received: num_heads=2.0"),
        ({"num_heads": "2"}, r"`num_heads`.*Received: num_heads='2'"),
        ({"key_dim": -1}, r"`key_dim`.*Received: key_dim=-1"),
        ({"key_dim": True}, r"`key_dim`.*Received: key_dim=True"),
        ({"value_dim": 0}, r"`value_dim`.*Received: value_dim=0"),
        ({"dropout": 1.0}, r"`dropout`.*\[0, 1\).*Received: dropout=1.0"),
        ({"dropout": -0.1}, r"`dropout`.*Received: dropout=-0.1"),
        ({"dropout": "0.1"}, r"`dropout`.*Received: dropout='0.1'"),
        ({"output_shape": (2, 0)}, r"`output_shape`.*Received: output_shape=\(2, 0\)"),
        ({"output_shape": "3"}, r"`output_shape`.*Received: output_shape='3'"),
        ({"seed": 1.5}, r"`seed`.*Received: seed=1.5"),
        ({"flash_attention": "yes"}, r"`flash_attention`.*Received: flash_attention='yes'"),
        # The built-in layer's extensions this layer does not implement: refused, not ignored.
        ({"attention_axes": (1, 2)}, r"does not implement `attention_axes`.*keras.layers"),
        ({"use_gate": True}, r"does not implement `use_gate` \(only use_gate=False\)"),
        ({"sliding_window": 4}, r"does not implement `sliding_window`.*sliding_window=4"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    args = {"num_heads": 2, "key_dim": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        MultiHeadAttention(**args)


def test_keras_arguments_at_their_defaults_are_accepted():
    """Code written for keras.layers.MultiHeadAttention's signature runs unchanged."""
    layer = MultiHeadAttention(
        2, 4, attention_axes=None, use_gate=False, sliding_window=None, flash_attention=False
    )
    for axes in (1, (1,), -2, [-2]):  # the sequence axis, as Keras's configs spell it
        assert MultiHeadAttention(2, 4, attention_axes=axes).get_config()["num_heads"] == 2
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    assert layer(x, x).shape == (2, 5, 8)
    assert layer.get_config()["flash_attention"] is False
    assert MultiHeadAttention.from_config(layer.get_config()).flash_attention is False
    flash = MultiHeadAttention(2, 4, flash_attention=True)
    with pytest.raises(ValueError, match="return_attention_scores=False"):
        flash(x, x, return_attention_scores=True)


def test_bad_call_inputs():
    layer = MultiHeadAttention(2, 4)
    with pytest.raises(
        ValueError, match=r"last dimension of `query` must be known.*\(None, 5, None\)"
    ):
        layer(keras.Input((T, None)), keras.Input((S, D)))
    with pytest.raises(ValueError, match=r"`query` must have shape \(batch, length, features\)"):
        MultiHeadAttention(2, 4)(rand(B, D), rand(B, S, D))
    with pytest.raises(
        ValueError, match=r"same length.*key.shape=\(2, 6, 8\), value.shape=\(2, 7, 8\)"
    ):
        MultiHeadAttention(2, 4)(rand(B, T, D), rand(B, S, D), rand(B, S - 1, D))
    _, ours = pair(value_shape=(B, S, D))
    q, v = rand(B, T, D), rand(B, S, D)
    with pytest.raises(
        ValueError, match=r"built for query features of size 8.*query.shape=\(2, 5, 6\)"
    ):
        ours(rand(B, T, 6), v)
    with pytest.raises(
        ValueError,
        match=r"`attention_mask` must be broadcastable to \(batch, "
        r"num_heads, T, S\) = \(2, 2, 5, 7\).*attention_mask.shape=\(2, 5, 5\)",
    ):
        ours(q, v, attention_mask=np.ones((B, T, T), bool))
    with pytest.raises(ValueError, match=r"attention_mask.shape=\(7,\)"):
        ours(q, v, attention_mask=np.ones((S,), bool))
    with pytest.raises(
        ValueError,
        match=r"`value_mask` must have shape \(batch, length\) = "
        r"\(2, 7\).*value_mask.shape=\(2, 5\)",
    ):
        ours(q, v, value_mask=np.ones((B, T), bool))


def test_public_names():
    assert attention.__all__ == ["MultiHeadAttention", "scaled_dot_product_attention"]
    assert keras.saving.get_registered_object("dl4keras>MultiHeadAttention") is MultiHeadAttention
