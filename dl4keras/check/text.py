"""Self-check of Exercise 4.5: mean pooling of token embeddings into sentence embeddings."""

from __future__ import annotations

import inspect
import re

import numpy as np

from dl4keras.check import _common

__all__ = ["sentence_embeddings"]

_POOLING_REFERENCE = (
    "mean pooling over the real tokens + L2 normalisation, what "
    "keras_hub.models.BertTextEmbedder computes for all-MiniLM-L6-v2"
)


def _pooled(x, mask, pad="ok", pool="mean", norm="ok"):
    """Sentence embeddings in float64: masked mean + L2, optionally with typical mistakes."""
    x = np.asarray(x, dtype="float64")
    m = np.asarray(mask, dtype="float64")
    if pad == "ignored":
        m = np.ones_like(m)
    elif pad == "inverted":
        m = 1.0 - m
    with np.errstate(all="ignore"):
        if norm in ("before", "before_and_after"):
            x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        w = m[..., None]  # (batch, T, 1)
        if pool == "mean":
            v = (x * w).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-9)
        elif pool == "sum":
            v = (x * w).sum(axis=1)
        elif pool == "length":
            v = (x * w).sum(axis=1) / x.shape[1]
        elif pool == "first":
            v = x[:, 0]
        else:  # "max"
            v = np.where(w > 0, x, -np.inf).max(axis=1)
        if norm in ("ok", "before_and_after"):
            v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
        elif norm == "batch_axis":
            v = v / np.maximum(np.linalg.norm(v, axis=0, keepdims=True), 1e-12)
        elif norm == "whole_batch":
            v = v / max(float(np.linalg.norm(v)), 1e-12)
    return v


def _pooling_variants(x, mask):
    families = {
        "pad": ["ignored", "inverted"],
        "pool": ["first", "sum", "length", "max"],
        "norm": ["none", "before", "before_and_after", "batch_axis", "whole_batch"],
    }
    for mistakes in _common.variants(families):
        yield mistakes, _pooled(x, mask, **dict(mistakes))


def _pooling_cases(seed):
    rng = np.random.default_rng(seed)

    def embeddings(*shape):
        return rng.normal(size=shape).astype("float32")

    def padding(lengths, length, dtype):
        return (np.arange(length)[None, :] < np.asarray(lengths)[:, None]).astype(dtype)

    # (title, token_embeddings, padding_mask, as_numpy); batch, T and d differ in each case,
    # so that an output of the wrong shape tells which axis went wrong.
    return [
        ("no padding, float mask", embeddings(2, 4, 8), padding([4, 4], 4, "float32"), False),
        (
            "padding: 5 and 2 real tokens, float mask",
            embeddings(2, 5, 8),
            padding([5, 2], 5, "float32"),
            False,
        ),
        (
            "padding: 6, 3 and 4 real tokens, boolean mask",
            embeddings(3, 6, 4),
            padding([6, 3, 4], 6, "bool"),
            False,
        ),
        (
            "a sentence of a single real token (1 and 3 real tokens), boolean mask",
            embeddings(2, 3, 6),
            padding([1, 3], 3, "bool"),
            False,
        ),
        (
            "sequences of one token, T = 1, boolean mask",
            embeddings(3, 1, 8),
            padding([1] * 3, 1, "bool"),
            False,
        ),
        (
            "NumPy arrays: 2, 5 and 4 real tokens, float mask",
            embeddings(3, 5, 8),
            padding([2, 5, 4], 5, "float32"),
            True,
        ),
        (
            "a batch of one sentence, 3 real tokens of 7, boolean mask",
            embeddings(1, 7, 16),
            padding([3], 7, "bool"),
            False,
        ),
    ]


def _pooling_shape_diagnosis(got, x):
    """Mistakes recognisable from the output's shape alone."""
    batch, length, features = x.shape
    key = None
    if got.shape == (batch, 1, features):
        key = "keepdims"
    elif got.shape == x.shape:
        key = "tokens"
    elif got.shape == (batch, length):
        key = "features"
    elif got.shape == (length, features):
        key = "batch"
    elif got.shape == (features,) and batch == 1:
        key = "squeezed"
    elif got.ndim < 2:
        key = "everything"
    return [(_common.MISTAKES[("pooled", key)],)] if key else []


def _nan_rows_diagnosis(got, x, mask, atol):
    """NaN exactly in the sentences without padding, the others averaging the padding.

    An inverted mask averages zero positions in a sentence without padding: 0 / 0.
    """
    bad = ~np.isfinite(got).all(axis=-1)
    unpadded = np.asarray(mask, dtype=bool).all(axis=-1)
    if not bad.any() or bad.all() or not np.array_equal(bad, unpadded):
        return []
    inverted = _pooled(x, mask, pad="inverted")
    if _common.close(got[~bad], inverted[~bad], 2e-3, 2e-3):
        return [(_common.MISTAKES[("pad", "inverted")],)]
    return []


def _check_pooling_signature(fn):
    if not callable(fn):
        raise TypeError(
            "check.sentence_embeddings expects your pooling function, "
            "fn(token_embeddings, padding_mask) -> sentence embeddings. "
            f"Received: {fn!r} of type {type(fn).__name__}, which is not callable."
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(1, 2)
    except TypeError:
        raise TypeError(
            "check.sentence_embeddings expects fn(token_embeddings, padding_mask): two "
            "positional arguments. "
            f"Your function's signature is {getattr(fn, '__name__', 'fn')}{signature}."
        ) from None


def _pooling_error_hint(error, mask, as_numpy):
    text = str(error).lower()
    # TensorFlow and JAX speak of broadcasting or incompatible shapes; PyTorch of
    # "the size of tensor a (8) must match the size of tensor b (4)".
    if any(s in text for s in ("broadcast", "incompatible shapes", "must match the size")):
        return (
            " The mask is (batch, T) and the embeddings (batch, T, d): expand the mask to "
            "(batch, T, 1) with ops.expand_dims(padding_mask, -1) before multiplying."
        )
    if mask.dtype == bool:
        return (
            " The mask is boolean here, as KerasHub's preprocessors give it: cast it first, "
            "ops.cast(padding_mask, token_embeddings.dtype)."
        )
    if as_numpy and "unsupported operand" in text and "ndarray" in text:
        return (
            " Here the inputs are NumPy arrays, and PyTorch does not take `array * tensor` "
            "with the array first: use ops.multiply(token_embeddings, mask), or convert "
            "the inputs first with ops.convert_to_tensor."
        )
    if as_numpy:
        return (
            " Here the inputs are NumPy arrays: use keras.ops functions (they take arrays and "
            "tensors alike), not tensor methods."
        )
    return ""


def _read_pooled(result):
    if result is None:
        raise _common.Feedback("your function returned None: did you forget the `return`?")
    if isinstance(result, (tuple, dict)):
        raise _common.Feedback(
            f"your function returned a {type(result).__name__}; return only the sentence "
            "embeddings, one array of shape (batch, d)."
        )
    return _common.to_numpy(result, "the output")


def sentence_embeddings(fn, seed=0, atol=1e-4, verbose=True):
    """Checks a learner's sentence-embedding pooling (Exercise 4.5).

    The function under test turns a transformer's token vectors into one
    unit vector per sentence, as sentence-transformers' all-MiniLM-L6-v2 (and
    `keras_hub.models.BertTextEmbedder`) does: **mean pooling over the real
    tokens, then L2 normalisation**. Its signature is
    `fn(token_embeddings, padding_mask)`:

    - `token_embeddings`: float, shape `(batch, T, d)` (the backbone's
      `"sequence_output"`);
    - `padding_mask`: shape `(batch, T)`, 1 / `True` for a real token
      (`[CLS]` and `[SEP]` included), 0 / `False` for padding; float in some
      cases, boolean in others (KerasHub's preprocessors give booleans);
    - returns the sentence embeddings `(batch, d)`, a tensor or a NumPy
      array, each row of L2 norm 1.

    The check runs 7 small random cases (no padding, padding, a boolean
    mask, a sentence of a single real token, T = 1, NumPy arrays instead of
    Keras tensors, a batch of one sentence) and compares each output with a
    float64 reference. Failing cases are printed with shapes, a few numbers
    and, when the output matches a typical mistake, a DIAGNOSIS naming it:
    pooling over the padding (a plain mean), no L2 normalisation, the first
    (`[CLS]`) token instead of the mean, max pooling, normalising before
    pooling, normalising or pooling over the wrong axis, a padding mask read
    the wrong way round, and, when the normalisation is missing too, a sum
    (or a division by T) instead of the mean. (With the normalisation, a sum
    and a mean give the same unit vectors, so such a solution passes.)

    Args:
        fn: the function to check.
        seed: seed of the random cases.
        atol: absolute (and relative) tolerance of the comparison.
        verbose: print the feedback.

    Returns:
        `True` if every case matches the reference, `False` otherwise.

    Raises:
        TypeError: if `fn` is not callable or does not accept
            `(token_embeddings, padding_mask)`.

    Examples:
        >>> from keras import ops
        >>> from dl4keras import check
        >>> def sentence_embedding(token_embeddings, padding_mask):
        ...     mask = ops.cast(padding_mask, token_embeddings.dtype)[:, :, None]
        ...     # ops.multiply, not `*`: PyTorch refuses `numpy_array * tensor`
        ...     mean = ops.sum(ops.multiply(token_embeddings, mask), axis=1) / ops.sum(mask, axis=1)
        ...     return mean / ops.norm(mean, axis=-1, keepdims=True)
        >>> check.sentence_embeddings(sentence_embedding)  # doctest: +ELLIPSIS
        Checking sentence_embedding(token_embeddings, padding_mask) against ...
        [PASS] case 1: no padding, float mask: token_embeddings (2, 4, 8), padding_mask (2, 4)
        ...
        All 7 cases pass: your pooling matches mean pooling over the real tokens + L2
        normalisation, what keras_hub.models.BertTextEmbedder computes for all-MiniLM-L6-v2.
        True
        >>> def plain_mean(token_embeddings, padding_mask):
        ...     mean = ops.mean(token_embeddings, axis=1)  # the padding is averaged too
        ...     return mean / ops.norm(mean, axis=-1, keepdims=True)
        >>> check.sentence_embeddings(plain_mean)  # doctest: +ELLIPSIS
        Checking plain_mean(token_embeddings, padding_mask) against ...
        [PASS] case 1: no padding, float mask: token_embeddings (2, 4, 8), padding_mask (2, 4)
        [FAIL] case 2: padding: 5 and 2 real tokens, float mask: ...
        ...
          DIAGNOSIS: pooled over the padding (a plain mean): ops.mean(token_embeddings, ...
        ...
        Most likely mistake: pooled over the padding (a plain mean) (5 cases)
        ...
        False
    """
    _check_pooling_signature(fn)
    from keras import ops

    name = getattr(fn, "__name__", "your function")
    report = _common.Report(verbose)
    report.print(
        f"Checking {name}(token_embeddings, padding_mask) against {_POOLING_REFERENCE} ..."
    )
    for number, (title, x, mask, as_numpy) in enumerate(_pooling_cases(seed), start=1):
        header = (
            f"[{{}}] case {number}: {title}: token_embeddings {x.shape}, padding_mask {mask.shape}"
        )
        expected = _pooled(x, mask)
        args = (x, mask) if as_numpy else (ops.convert_to_tensor(x), ops.convert_to_tensor(mask))
        try:
            try:
                result = fn(*args)
            except Exception as error:  # the learner's code failed
                hint = _pooling_error_hint(error, mask, as_numpy)
                # TensorFlow prefixes its messages with the op's node name: drop it.
                message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error))
                message = re.sub(r"\s*name:\s*$", "", message.strip())
                raise _common.Feedback(
                    f"your function raised {type(error).__name__}: {message}.{hint}"
                ) from None
            got = _read_pooled(result)
        except _common.Feedback as feedback:
            report.failed(header, [str(feedback)])
            continue
        if _common.close(got, expected, atol, atol):
            report.passed(header)
            continue
        detailed = report.first_failure is None  # numbers for the first failing case only
        lines = _common.compare_lines(expected, got, "output", detailed)
        found = _pooling_shape_diagnosis(got, x) or _common.diagnose(
            got, list(_pooling_variants(x, mask)), expected
        )
        if not found and got.shape == expected.shape:
            found = _nan_rows_diagnosis(got, x, mask, atol)
        if not found and got.shape == expected.shape:
            norms = np.linalg.norm(got, axis=-1)
            if np.all(np.isfinite(norms)) and not np.allclose(norms, 1.0, atol=1e-3):
                lines.append(
                    f"your rows have L2 norms {_common.numbers(norms[:4])}: sentence embeddings "
                    "are unit vectors (divide by the norm over the last axis)"
                )
            elif detailed:
                lines.append(
                    "(no typical mistake matches these numbers: print the shape and "
                    "values of each step on this case)"
                )
        report.failed(header, lines, found)
    return report.summary("pooling", _POOLING_REFERENCE)
