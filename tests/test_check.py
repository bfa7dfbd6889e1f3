"""Tests for dl4keras.check: correct solutions pass, typical mistakes are named."""

import keras
import numpy as np
import pytest
from keras import ops

from dl4keras import check
from dl4keras.attention import MultiHeadAttention, scaled_dot_product_attention
from dl4keras.check import _common as check_common
from dl4keras.check import attention as attention_check
from dl4keras.check import text as text_check

BOOLEAN_ARITHMETIC_RAISES = keras.backend.backend() != "jax"
"""Whether `1 - mask` raises on a boolean tensor: on TensorFlow and PyTorch it does;
JAX promotes booleans to integers (NumPy's rule), so there the same code is right.
Unary minus (`-mask`) raises on every backend."""


def _printed(capsys):
    """What the check printed, as one line: its lines are wrapped at 80 characters."""
    out = capsys.readouterr().out
    too_long = [line for line in out.splitlines() if len(line) > 80]
    assert not too_long, f"lines over 80 characters: {too_long}"
    return " ".join(out.split())


# ---------------------------------------------------------------- learner functions


def _scores(query, key, scale=True):
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2))
    if scale:
        scores = scores / ops.sqrt(ops.cast(ops.shape(key)[-1], scores.dtype))
    return scores


def correct(query, key, value, mask=None):
    scores = _scores(query, key)
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    weights = ops.softmax(scores, axis=-1)
    return ops.matmul(weights, value), weights


def correct_numpy(query, key, value, mask=None):
    """A plain numpy solution returning only the output."""
    scores = query @ np.swapaxes(key, -1, -2) / np.sqrt(key.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return weights @ value


def forgot_scale(query, key, value, mask=None):
    scores = _scores(query, key, scale=False)
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-1), value)


def softmax_wrong_axis(query, key, value, mask=None):
    scores = _scores(query, key)
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-2), value)


def mask_added_after_softmax(query, key, value, mask=None):
    weights = ops.softmax(_scores(query, key), axis=-1)
    if mask is not None:
        weights = weights + (1.0 - ops.cast(mask, weights.dtype)) * -1e9
    return ops.matmul(weights, value)


def mask_multiplied_after_softmax(query, key, value, mask=None):
    weights = ops.softmax(_scores(query, key), axis=-1)
    if mask is not None:
        weights = weights * ops.cast(mask, weights.dtype)
    return ops.matmul(weights, value)


def mask_inverted(query, key, value, mask=None):
    scores = _scores(query, key)
    if mask is not None:
        scores = ops.where(mask, -1e9, scores)
    return ops.matmul(ops.softmax(scores, axis=-1), value)


def returns_weights_only(query, key, value, mask=None):
    return correct(query, key, value, mask)[1]


def two_mistakes(query, key, value, mask=None):
    scores = _scores(query, key, scale=False)
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-2), value)


def rank3_only(query, key, value, mask=None):
    scores = ops.matmul(query, ops.transpose(key, (0, 2, 1))) / 8**0.5
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-1), value)


# ---------------------------------------------------------------- self_attention


def test_numpy_reference_matches_dl4keras():
    """The check's own float64 attention (used for the diagnoses) is the reference."""
    for _, q, k, v, mask in attention_check._self_attention_cases(0):
        ours, _ = attention_check._attention(
            q.astype("float64"), k, v, mask, 1 / np.sqrt(q.shape[-1])
        )
        reference = scaled_dot_product_attention(q, k, v, mask=mask)
        np.testing.assert_allclose(ours, ops.convert_to_numpy(reference), atol=1e-5)


@pytest.mark.parametrize("fn", [correct, correct_numpy], ids=["keras-tuple", "numpy"])
def test_correct_solution_passes(fn, capsys):
    assert check.self_attention(fn, as_numpy=fn is correct_numpy) is True
    out = _printed(capsys)
    assert "All 7 cases pass" in out
    assert "FAIL" not in out and "DIAGNOSIS" not in out


@pytest.mark.parametrize(
    "fn, name, failing",
    [
        (forgot_scale, "forgot the 1/sqrt(d_k) scale", 7),
        (softmax_wrong_axis, "softmax over the wrong axis", 7),
        (mask_added_after_softmax, "mask applied after the softmax", 3),
        (mask_multiplied_after_softmax, "mask applied after the softmax", 3),
        (mask_inverted, "mask inverted", 3),
        (returns_weights_only, "returned the attention weights instead of the output", 7),
    ],
)
def test_typical_mistakes_are_named(fn, name, failing, capsys):
    assert check.self_attention(fn) is False
    out = _printed(capsys)
    assert f"DIAGNOSIS: {name}" in out
    assert out.count("[FAIL]") == failing
    assert f"{7 - failing}/7 cases pass" in out
    assert f"Most likely mistake: {name}" in out
    # The first failure shows numbers; the explanation is printed once.
    assert "expected output[" in out or "output shape: expected" in out
    assert out.count("(see above)") == failing - 1


def test_report_first_failure_is_none_until_a_case_fails():
    report = check_common.Report(verbose=False)
    assert report.first_failure is None
    report.passed("[{}] case 1: fine")
    assert report.first_failure is None
    report.failed("[{}] case 2: wrong", ["values differ"])
    report.failed("[{}] case 3: wrong too", ["values differ"])
    assert report.first_failure == "[FAIL] case 2: wrong"
    assert report.summary("thing", "the reference") is False


def test_only_the_first_failing_case_shows_numbers(capsys):
    assert check.self_attention(forgot_scale) is False
    out = _printed(capsys)
    assert out.count("[FAIL]") == 7
    assert out.count("expected output[") == 1 and out.count("got output[") == 1
    first_case = out.split("[FAIL] case 2")[0]
    assert "expected output[" in first_case


def test_a_returned_tuple_of_one_item_is_named_in_the_singular(capsys):
    assert check.self_attention(lambda q, k, v, mask=None: (correct(q, k, v, mask)[0],)) is False
    out = _printed(capsys)
    assert "returned a tuple of 1 item;" in out


def test_two_mistakes_are_both_named(capsys):
    assert check.self_attention(two_mistakes) is False
    out = _printed(capsys)
    assert "two mistakes" in out
    assert "forgot the 1/sqrt(d_k) scale" in out and "softmax over the wrong axis" in out


def test_exceptions_are_reported_with_a_hint(capsys):
    assert check.self_attention(rank3_only) is False
    out = _printed(capsys)
    assert "[PASS] case 1" in out
    assert "your function raised" in out and "ops.swapaxes(key, -1, -2)" in out


def test_boolean_mask_hint(capsys):
    def negated_mask(query, key, value, mask=None):
        scores = _scores(query, key)
        if mask is not None:
            scores = scores - 1e9 * (1 + -mask)  # fails on a boolean tensor, on every backend
        return ops.matmul(ops.softmax(scores, axis=-1), value)

    hint = "The mask is boolean (True = may attend)"
    assert check.self_attention(negated_mask) is False
    out = _printed(capsys)
    assert out.count("[PASS]") == 4 and out.count("[FAIL]") == 3 and hint in out

    def float_mask_arithmetic(query, key, value, mask=None):
        scores = _scores(query, key)
        if mask is not None:
            scores = scores + (1 - mask) * -1e9  # fails on TensorFlow and PyTorch
        return ops.matmul(ops.softmax(scores, axis=-1), value)

    assert check.self_attention(float_mask_arithmetic) is not BOOLEAN_ARITHMETIC_RAISES
    out = _printed(capsys)
    if BOOLEAN_ARITHMETIC_RAISES:
        assert out.count("[PASS]") == 4 and hint in out
    else:  # JAX: the same arithmetic on booleans is defined, and right
        assert out.count("[PASS]") == 7 and "[FAIL]" not in out


def test_wrong_weights_are_reported(capsys):
    def unnormalised_weights(query, key, value, mask=None):
        output, weights = correct(query, key, value, mask)
        return output, weights * 2.0

    assert check.self_attention(unnormalised_weights) is False
    assert "the output is right but the returned weights are not" in _printed(capsys)


def test_quiet_mode_prints_nothing(capsys):
    assert check.self_attention(forgot_scale, verbose=False) is False
    assert _printed(capsys) == ""


def test_bad_input_raises_type_error():
    with pytest.raises(TypeError, match="not callable"):
        check.self_attention(42)
    with pytest.raises(TypeError, match=r"fn\(query, key, value, mask=None\)"):
        check.self_attention(lambda query, key: query)


# ---------------------------------------------------------------- multi-head attention


class LearnerMHA(keras.layers.Layer):
    """A typical learner solution: Dense projections, split, attention, merge."""

    def __init__(self, num_heads, key_dim, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.key_dim = num_heads, key_dim
        units = num_heads * key_dim
        self.query_dense = keras.layers.Dense(units)
        self.key_dense = keras.layers.Dense(units)
        self.value_dense = keras.layers.Dense(units)

    def build(self, query_shape, value_shape, key_shape=None):
        self.output_dense = keras.layers.Dense(query_shape[-1])

    def split_heads(self, x):  # (B, T, H * d) -> (B, H, T, d)
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        return ops.transpose(ops.reshape(x, (b, t, self.num_heads, self.key_dim)), (0, 2, 1, 3))

    def merge_heads(self, x):  # (B, H, T, d) -> (B, T, H * d)
        b, t = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (b, t, self.num_heads * self.key_dim))

    def attend(self, q, k, v, mask):
        scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / self.key_dim**0.5
        if mask is not None:
            scores = ops.where(mask, scores, -1e9)
        return ops.matmul(ops.softmax(scores, axis=-1), v)

    def call(self, query, value, key=None, attention_mask=None, use_causal_mask=False):
        key = value if key is None else key
        q = self.split_heads(self.query_dense(query))
        k = self.split_heads(self.key_dense(key))
        v = self.split_heads(self.value_dense(value))
        mask = None if attention_mask is None else ops.expand_dims(attention_mask, 1)
        if use_causal_mask:
            t, s = ops.shape(query)[1], ops.shape(value)[1]
            causal = ops.tril(ops.ones((t, s), dtype="bool"))
            mask = causal if mask is None else ops.logical_and(mask, causal)
        return self.output_dense(self.merge_heads(self.attend(q, k, v, mask)))


class HeadsMergedWrong(LearnerMHA):
    def merge_heads(self, x):  # forgot to bring T before the heads
        b, t = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(x, (b, t, self.num_heads * self.key_dim))


class HeadsMergedFeatureMajor(LearnerMHA):
    def merge_heads(self, x):  # (B, T, d, H): features of all heads interleaved
        b, t = ops.shape(x)[0], ops.shape(x)[2]
        return ops.reshape(ops.transpose(x, (0, 2, 3, 1)), (b, t, self.num_heads * self.key_dim))


class HeadsSplitWrong(LearnerMHA):
    def split_heads(self, x):
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        return ops.reshape(x, (b, self.num_heads, t, self.key_dim))


def _attend_scaled(q, k, v, mask, size):
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / size**0.5
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-1), v)


class ScaledByModelDim(LearnerMHA):
    def build(self, query_shape, value_shape, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        self.model_dim = query_shape[-1]

    def attend(self, q, k, v, mask):
        return _attend_scaled(q, k, v, mask, self.model_dim)


class ScaledByAllHeads(LearnerMHA):
    def attend(self, q, k, v, mask):
        return _attend_scaled(q, k, v, mask, self.num_heads * self.key_dim)


class NoScaleMHA(LearnerMHA):
    def attend(self, q, k, v, mask):
        return forgot_scale(q, k, v, mask)


class WrongAxisMHA(LearnerMHA):
    def attend(self, q, k, v, mask):
        return softmax_wrong_axis(q, k, v, mask)


class MaskAfterSoftmaxMHA(LearnerMHA):
    def attend(self, q, k, v, mask):
        return mask_multiplied_after_softmax(q, k, v, mask)


def test_numpy_multi_head_reference_matches_dl4keras():
    rng = np.random.default_rng(0)
    for case in attention_check._mha_cases(0):
        _, query, value, key, mask, causal = case
        if causal:
            continue
        layer = MultiHeadAttention(
            num_heads=attention_check._HEADS, key_dim=attention_check._KEY_DIM
        )
        kwargs = attention_check._call_kwargs(case, None)[0]
        layer.build(query.shape, value.shape, None if key is None else key.shape)
        attention_check._randomize(layer, rng)
        weights = [ops.convert_to_numpy(w) for w in layer.weights]
        ours = attention_check._np_mha(query, value, value if key is None else key, mask, weights)
        np.testing.assert_allclose(
            ours, ops.convert_to_numpy(layer(query, value, **kwargs)), atol=1e-5
        )


@pytest.mark.parametrize(
    "layer_cls", [MultiHeadAttention, keras.layers.MultiHeadAttention, LearnerMHA]
)
def test_correct_layers_pass(layer_cls, capsys):
    assert check.multi_head_attention(layer_cls) is True
    out = _printed(capsys)
    assert "All 6 cases pass" in out and "FAIL" not in out
    assert ("copied the weights with a reshape" in out) == (layer_cls is LearnerMHA)


@pytest.mark.parametrize(
    "layer_cls, name",
    [
        (HeadsMergedWrong, "heads merged in the wrong order"),
        (HeadsMergedFeatureMajor, "heads merged in the wrong order"),
        (HeadsSplitWrong, "heads split in the wrong order"),
        (ScaledByModelDim, "scaled by sqrt(model dimension) instead of sqrt(key_dim)"),
        (ScaledByAllHeads, "scaled by sqrt(num_heads * key_dim) instead of sqrt(key_dim)"),
        (NoScaleMHA, "forgot the 1/sqrt(d_k) scale"),
        (WrongAxisMHA, "softmax over the wrong axis"),
        (MaskAfterSoftmaxMHA, "mask applied after the softmax"),
    ],
)
def test_multi_head_mistakes_are_named(layer_cls, name, capsys):
    assert check.multi_head_attention(layer_cls) is False
    out = _printed(capsys)
    assert f"DIAGNOSIS: {name}" in out
    assert f"Most likely mistake: {name}" in out


def test_multi_head_wrong_layout_and_failures_are_reported(capsys):
    class NoBias(LearnerMHA):
        def __init__(self, num_heads, key_dim, **kwargs):
            super().__init__(num_heads, key_dim, **kwargs)
            self.query_dense = keras.layers.Dense(num_heads * key_dim, use_bias=False)

    assert check.multi_head_attention(NoBias) is False
    assert "layout of keras.layers.MultiHeadAttention" in _printed(capsys)

    class NoKeyArgument(LearnerMHA):
        def build(self, query_shape, value_shape):
            super().build(query_shape, value_shape)

        def call(self, query, value):
            return LearnerMHA.call(self, query, value)

    assert check.multi_head_attention(NoKeyArgument) is True
    out = _printed(capsys)
    assert out.count("[SKIP]") == 4 and "All 2 cases pass" in out
    assert "your call() has no key argument" in out
    assert "your call() has no attention_mask argument" in out


def test_multi_head_bad_input_raises_type_error():
    with pytest.raises(TypeError, match="not callable"):
        check.multi_head_attention("MultiHeadAttention")
    with pytest.raises(TypeError, match=r"\*class\*"):
        check.multi_head_attention(MultiHeadAttention(num_heads=2, key_dim=4))


# ---------------------------------------------------------------- sentence embeddings
# The learner functions multiply with `ops.multiply`: in the check's NumPy case,
# `array * tensor` (the NumPy array first) raises a TypeError on PyTorch.


def _mask(padding_mask, x):
    return ops.expand_dims(ops.cast(padding_mask, x.dtype), -1)  # (batch, T, 1)


def _l2(v, axis=-1):
    return v / ops.norm(v, axis=axis, keepdims=True)


def pooling_correct(token_embeddings, padding_mask):
    mask = _mask(padding_mask, token_embeddings)
    mean = ops.sum(ops.multiply(token_embeddings, mask), axis=1) / ops.sum(mask, axis=1)
    return _l2(mean)


def pooling_numpy(token_embeddings, padding_mask):
    """A plain NumPy solution: the check passes tensors, which np.asarray reads."""
    x, mask = np.asarray(token_embeddings), np.asarray(padding_mask, dtype="float32")[..., None]
    mean = (x * mask).sum(1) / mask.sum(1)
    return mean / np.linalg.norm(mean, axis=-1, keepdims=True)


def pooling_keras_hub(token_embeddings, padding_mask):
    """KerasHub's own mean pooling and L2 normalisation."""
    import keras_hub

    embedder = keras_hub.models.BertTextEmbedder
    # It takes tensors: on PyTorch, its `token_embeddings * mask` raises for a NumPy array.
    token_embeddings = ops.convert_to_tensor(token_embeddings)
    return embedder._l2_normalize(embedder._mean_pooling(token_embeddings, padding_mask))


def pooling_sum_normalised(token_embeddings, padding_mask):
    """Sum, not mean, but normalised: the same unit vectors, so it passes."""
    return _l2(
        ops.sum(ops.multiply(token_embeddings, _mask(padding_mask, token_embeddings)), axis=1)
    )


def pooling_plain_mean(token_embeddings, padding_mask):
    return _l2(ops.mean(token_embeddings, axis=1))


def pooling_not_normalised(token_embeddings, padding_mask):
    mask = _mask(padding_mask, token_embeddings)
    return ops.sum(ops.multiply(token_embeddings, mask), axis=1) / ops.sum(mask, axis=1)


def pooling_first_token(token_embeddings, padding_mask):
    return _l2(token_embeddings[:, 0])


def pooling_sum_not_normalised(token_embeddings, padding_mask):
    return ops.sum(ops.multiply(token_embeddings, _mask(padding_mask, token_embeddings)), axis=1)


def pooling_max(token_embeddings, padding_mask):
    real = ops.cast(ops.expand_dims(padding_mask, -1), "bool")
    return _l2(ops.max(ops.where(real, token_embeddings, -1e9), axis=1))


def pooling_normalised_first(token_embeddings, padding_mask):
    x = _l2(token_embeddings)
    mask = _mask(padding_mask, x)
    return ops.sum(ops.multiply(x, mask), axis=1) / ops.sum(mask, axis=1)


def pooling_norm_over_batch(token_embeddings, padding_mask):
    mask = _mask(padding_mask, token_embeddings)
    mean = ops.sum(ops.multiply(token_embeddings, mask), axis=1) / ops.sum(mask, axis=1)
    return _l2(mean, axis=0)


def pooling_norm_whole_batch(token_embeddings, padding_mask):
    mask = _mask(padding_mask, token_embeddings)
    mean = ops.sum(ops.multiply(token_embeddings, mask), axis=1) / ops.sum(mask, axis=1)
    return mean / ops.sqrt(ops.sum(mean * mean))


def pooling_mask_inverted(token_embeddings, padding_mask):
    mask = 1.0 - _mask(padding_mask, token_embeddings)
    mean = ops.sum(ops.multiply(token_embeddings, mask), axis=1) / ops.sum(mask, axis=1)
    return _l2(mean)


def pooling_wrong_axis(token_embeddings, padding_mask):
    """Averages the features of each token: one number per token."""
    return ops.mean(token_embeddings, axis=-1) * ops.cast(padding_mask, token_embeddings.dtype)


def pooling_keepdims(token_embeddings, padding_mask):
    mask = _mask(padding_mask, token_embeddings)
    mean = ops.sum(ops.multiply(token_embeddings, mask), axis=1, keepdims=True) / ops.sum(
        mask, axis=1, keepdims=True
    )
    return _l2(mean)


def pooling_squeezed(token_embeddings, padding_mask):
    return ops.squeeze(pooling_correct(token_embeddings, padding_mask))  # drops a batch of 1


def test_pooling_reference_matches_keras_hub():
    """The check's float64 reference is what KerasHub's BertTextEmbedder computes."""
    for _, x, mask, _ in text_check._pooling_cases(0):
        theirs = ops.convert_to_numpy(pooling_keras_hub(ops.convert_to_tensor(x), mask))
        np.testing.assert_allclose(text_check._pooled(x, mask), theirs, atol=1e-6)


@pytest.mark.parametrize(
    "fn",
    [pooling_correct, pooling_numpy, pooling_keras_hub, pooling_sum_normalised],
    ids=["keras-ops", "numpy", "keras-hub", "sum-then-normalise"],
)
def test_correct_pooling_passes(fn, capsys):
    assert check.sentence_embeddings(fn) is True
    out = _printed(capsys)
    assert "All 7 cases pass" in out and "BertTextEmbedder" in out
    assert "FAIL" not in out and "DIAGNOSIS" not in out


@pytest.mark.parametrize(
    "fn, name, failing",
    [
        (pooling_plain_mean, "pooled over the padding (a plain mean)", 5),
        (pooling_not_normalised, "no L2 normalisation", 7),
        (pooling_first_token, "used the first ([CLS]) token instead of the mean", 6),
        (pooling_max, "max pooling instead of the mean", 6),
        (pooling_normalised_first, "normalised before pooling", 6),
        (pooling_norm_over_batch, "L2 normalisation over the wrong axis", 7),
        (pooling_norm_whole_batch, "L2 normalisation over the wrong axis", 6),
        (pooling_mask_inverted, "padding mask inverted", 7),
        (pooling_wrong_axis, "pooled over the wrong axis", 7),
        (pooling_keepdims, "kept the token axis", 7),
        (pooling_squeezed, "dropped the batch axis", 1),
    ],
)
def test_pooling_mistakes_are_named(fn, name, failing, capsys):
    assert check.sentence_embeddings(fn) is False
    out = _printed(capsys)
    assert f"DIAGNOSIS: {name}" in out
    assert out.count("[FAIL]") == failing
    assert f"{7 - failing}/7 cases pass" in out
    assert f"Most likely mistake: {name}" in out


def test_inverted_mask_is_named_from_its_nan_rows(capsys):
    """Sentences without padding average nothing (NaN); the others average the padding."""
    assert check.sentence_embeddings(pooling_mask_inverted) is False
    out = _printed(capsys)
    assert "Most likely mistake: padding mask inverted (5 cases)" in out
    assert "0 / 0 = NaN" in out


def test_sum_without_normalisation_names_both_mistakes(capsys):
    assert check.sentence_embeddings(pooling_sum_not_normalised) is False
    out = _printed(capsys)
    assert "DIAGNOSIS: two mistakes, summed instead of averaging + no L2 normalisation" in out
    # With one token per sentence, sum and mean agree: only the normalisation is missing.
    assert "DIAGNOSIS: no L2 normalisation" in out


def test_pooling_bad_returns_are_reported(capsys):
    assert check.sentence_embeddings(lambda x, mask: None) is False
    out = _printed(capsys)
    assert "returned None: did you forget the `return`?" in out
    assert out.count("[FAIL]") == 7

    def with_norms(token_embeddings, padding_mask):
        return pooling_correct(token_embeddings, padding_mask), ops.ones((2,))

    assert check.sentence_embeddings(with_norms) is False
    assert "returned a tuple; return only the sentence embeddings" in _printed(capsys)

    def token_vectors(token_embeddings, padding_mask):
        return token_embeddings

    assert check.sentence_embeddings(token_vectors) is False
    out = _printed(capsys)
    assert "output shape: expected (2, 4), got (2, 4, 8)" not in out
    assert "output shape: expected (2, 8), got (2, 4, 8)" in out
    assert "DIAGNOSIS: did not pool over the tokens" in out


def test_pooling_unmatched_output_reports_the_norms(capsys):
    def doubled(token_embeddings, padding_mask):
        return 2.0 * pooling_correct(token_embeddings, padding_mask)

    assert check.sentence_embeddings(doubled) is False
    out = _printed(capsys)
    assert "your rows have L2 norms [2.0000, 2.0000" in out and "unit vectors" in out


def test_pooling_exceptions_are_reported_with_a_hint(capsys):
    def no_expand_dims(token_embeddings, padding_mask):
        mask = ops.cast(padding_mask, token_embeddings.dtype)
        mean = ops.sum(token_embeddings * mask, axis=1) / ops.sum(mask, axis=1)
        return _l2(mean)

    assert check.sentence_embeddings(no_expand_dims) is False
    out = _printed(capsys)
    assert "your function raised" in out and "function_node" not in out
    assert "expand the mask to (batch, T, 1)" in out

    def float_only(token_embeddings, padding_mask):
        mask = (1.0 + -padding_mask)[..., None]  # fails on a boolean tensor, on every backend
        return pooling_correct(token_embeddings, 1.0 - mask[..., 0])

    assert check.sentence_embeddings(float_only) is False
    out = _printed(capsys)
    assert "[PASS] case 1" in out and "[PASS] case 2" in out
    assert "The mask is boolean here" in out and "ops.cast(padding_mask" in out

    def float_arithmetic(token_embeddings, padding_mask):
        mask = (1.0 - padding_mask)[..., None]  # fails on TensorFlow and PyTorch
        return pooling_correct(token_embeddings, 1.0 - mask[..., 0])

    assert check.sentence_embeddings(float_arithmetic) is not BOOLEAN_ARITHMETIC_RAISES
    out = _printed(capsys)
    assert ("The mask is boolean here" in out) is BOOLEAN_ARITHMETIC_RAISES
    assert ("[FAIL]" in out) is BOOLEAN_ARITHMETIC_RAISES


def test_pooling_with_an_array_first_operator(capsys):
    """`array * tensor` works on TensorFlow and JAX; PyTorch raises, and the check says why."""

    def operator_first(token_embeddings, padding_mask):
        mask = _mask(padding_mask, token_embeddings)
        return _l2(ops.sum(token_embeddings * mask, axis=1) / ops.sum(mask, axis=1))

    on_torch = keras.backend.backend() == "torch"
    assert check.sentence_embeddings(operator_first) is not on_torch
    out = _printed(capsys)
    if on_torch:  # only case 6 passes NumPy arrays
        assert out.count("[FAIL]") == 1 and "[FAIL] case 6: NumPy arrays" in out
        assert "PyTorch does not take `array * tensor`" in out and "ops.multiply" in out
    else:
        assert "All 7 cases pass" in out


def test_pooling_quiet_mode_prints_nothing(capsys):
    assert check.sentence_embeddings(pooling_plain_mean, verbose=False) is False
    assert check.sentence_embeddings(pooling_correct, verbose=False) is True
    assert _printed(capsys) == ""


def test_pooling_bad_input_raises_type_error():
    with pytest.raises(TypeError, match="not callable"):
        check.sentence_embeddings("mean pooling")
    with pytest.raises(TypeError, match=r"fn\(token_embeddings, padding_mask\)"):
        check.sentence_embeddings(lambda token_embeddings: token_embeddings)
