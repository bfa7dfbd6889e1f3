"""Self-checks a learner runs on their own exercise solutions.

Each check runs your code on a handful of small random cases, compares it
with a reference (`dl4keras.attention` for attention; mean pooling over the
real tokens + L2 normalisation, what `keras_hub.models.TextEmbedder`
computes, for `sentence_embeddings`), prints readable feedback and returns
`True` (all cases pass) or `False`. When a case fails, the check also
runs the *typical wrong versions* of the computation on the same inputs
(forgot the 1/√d scale, softmax over the wrong axis, mask applied after the
softmax, heads merged in the wrong order, ...) and, if your result matches
one of them, names the mistake:

```python
import keras
from keras import ops

from dl4keras import check


def my_attention(query, key, value, mask=None):
    scores = ops.matmul(query, ops.swapaxes(key, -1, -2))  # forgot: / sqrt(d_k)
    if mask is not None:
        scores = ops.where(mask, scores, -1e9)
    return ops.matmul(ops.softmax(scores, axis=-1), value)


check.self_attention(my_attention)  # False, "DIAGNOSIS: forgot the 1/sqrt(d_k) scale: ..."
check.multi_head_attention(keras.layers.MultiHeadAttention)  # True; pass your layer class
```

`training_setup` checks a set-up rather than a function: it inspects a
compiled model (gradient accumulation, dtype policy, output dtype, loss
scaling, a learning-rate schedule right under accumulation) and names each
usual mistake with its fix.
"""

from __future__ import annotations

import inspect
import itertools
import math
import re

import numpy as np

__all__ = ["multi_head_attention", "self_attention", "sentence_embeddings", "training_setup"]

_MASKED = -1e9

# ---------------------------------------------------------------- mistakes

# (family, variant) -> (name, explanation). The name is what a learner reads
# first; the tests look for it.
_MISTAKES = {
    ("scale", "none"): (
        "forgot the 1/sqrt(d_k) scale",
        "divide the scores q·kᵀ by sqrt(d_k), d_k = the last dimension of the "
        "queries and keys, before the softmax.",
    ),
    ("scale", "d"): (
        "scaled by 1/d_k instead of 1/sqrt(d_k)",
        "the scores are divided by the *square root* of the key size.",
    ),
    ("scale", "dv"): (
        "scaled by the value size instead of the key size",
        "use sqrt(d_k), d_k = query.shape[-1] = key.shape[-1], not value.shape[-1].",
    ),
    ("scale", "model"): (
        "scaled by sqrt(model dimension) instead of sqrt(key_dim)",
        "each head works in key_dim dimensions: divide its scores by sqrt(key_dim), "
        "not by the square root of the input's feature size.",
    ),
    ("scale", "all_heads"): (
        "scaled by sqrt(num_heads * key_dim) instead of sqrt(key_dim)",
        "each head's scores are divided by the square root of that head's size, key_dim.",
    ),
    ("axis", "query"): (
        "softmax over the wrong axis",
        "the softmax ran over the query axis (-2); run it over the key axis (-1), "
        "so that each query's weights over the keys sum to 1.",
    ),
    ("mask", "after"): (
        "mask applied after the softmax",
        "set the masked scores to a large negative number (e.g. -1e9) *before* the "
        "softmax; masking the weights afterwards leaves rows that no longer sum to 1.",
    ),
    ("mask", "inverted"): (
        "mask inverted",
        "`True` in the mask means 'may attend': keep the scores where the mask is True "
        "and replace them where it is False (e.g. ops.where(mask, scores, -1e9)).",
    ),
    ("mask", "ignored"): (
        "mask ignored",
        "the output is what you get without the mask: replace the scores where the mask "
        "is False by a large negative number before the softmax.",
    ),
    ("mask", "multiply"): (
        "mask multiplied into the scores",
        "scores * mask sets masked scores to 0, and exp(0) is not 0: those keys still get "
        "weight. Use a large negative number instead: ops.where(mask, scores, -1e9).",
    ),
    ("split", "no_transpose"): (
        "heads split in the wrong order",
        "(batch, T, heads * key_dim) was reshaped straight to (batch, heads, T, key_dim); "
        "reshape to (batch, T, heads, key_dim) first, then transpose to "
        "(batch, heads, T, key_dim).",
    ),
    ("split", "swapped"): (
        "heads split in the wrong order",
        "the features were reshaped as (key_dim, heads); the layout is "
        "(batch, T, heads, key_dim): head h owns features h*key_dim ... (h+1)*key_dim - 1.",
    ),
    ("merge", "no_transpose"): (
        "heads merged in the wrong order",
        "(batch, heads, T, value_dim) was reshaped straight to (batch, T, heads * value_dim); "
        "transpose to (batch, T, heads, value_dim) first, then reshape.",
    ),
    ("merge", "swapped"): (
        "heads merged in the wrong order",
        "the heads were concatenated as (value_dim, heads); concatenate them head after "
        "head: transpose to (batch, T, heads, value_dim), then reshape to "
        "(batch, T, heads * value_dim).",
    ),
}
_MISTAKES[("shape", "weights")] = (
    "returned the attention weights instead of the output",
    "the output is the weighted sum of the values: weights @ value.",
)
_MISTAKES[("shape", "keys")] = (
    "multiplied the weights by the keys instead of the values",
    "the output is weights @ value, of size value.shape[-1].",
)
_HUGE_AFTER_SOFTMAX = (
    "mask applied after the softmax",
    "your output has huge or infinite values on a masked case: a large negative number "
    "(or -inf) was added to the weights *after* the softmax. Add it to the scores before "
    "the softmax instead.",
)

# ---------------------------------------------------------------- numpy variants


def _softmax(x, axis):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _attention(q, k, v, mask, scale, axis="key", mask_mode="ok"):
    """Scaled dot-product attention in float64, with an optional typical mistake."""
    raw = (q @ np.swapaxes(k, -1, -2)) * scale
    scores = raw
    if mask is not None:
        m = np.broadcast_to(mask, raw.shape)
        if mask_mode == "ok":
            scores = np.where(m, raw, _MASKED)
        elif mask_mode == "inverted":
            scores = np.where(m, _MASKED, raw)
        elif mask_mode == "multiply":
            scores = raw * m
        # "ignored" and "after" leave the scores as they are.
    weights = _softmax(scores, -1 if axis == "key" else -2)
    if mask is not None and mask_mode == "after":
        weights = weights * m
    return weights @ v, weights


def _variants(families):
    """All combinations of at most two mistakes over `families` {family: [variants]}."""
    names = list(families)
    for choice in itertools.product(*[[None, *families[f]] for f in names]):
        mistakes = tuple((f, c) for f, c in zip(names, choice) if c is not None)
        if 1 <= len(mistakes) <= 2:
            yield mistakes


def _scale_value(option, d_k, d_v, d_model=None, heads=None):
    return {
        "all_heads": 1.0 / math.sqrt(heads * d_k) if heads else None,
        "ok": 1.0 / math.sqrt(d_k),
        "none": 1.0,
        "d": 1.0 / d_k,
        "dv": 1.0 / math.sqrt(d_v),
        "model": 1.0 / math.sqrt(d_model) if d_model else None,
    }[option]


# ---------------------------------------------------------------- feedback helpers


def _to_numpy(x, what):
    from keras import ops

    try:
        return np.asarray(ops.convert_to_numpy(x), dtype="float64")
    except Exception as error:  # any conversion failure is reported
        raise _Feedback(
            f"could not read {what} as an array ({type(x).__name__}): {error}"
        ) from None


class _Feedback(Exception):
    """A failure to report to the learner (not a bug in the check)."""


def _close(a, b, atol, rtol):
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=rtol))


def _numbers(x):
    return "[" + ", ".join(f"{v:.4f}" for v in x) + (", ...]" if len(x) > 0 else "]")


def _compare_lines(expected, got, what, detailed=True):
    """Shapes, the largest difference and (if `detailed`) a row of numbers."""
    if expected.shape != got.shape:
        return [f"{what} shape: expected {expected.shape}, got {got.shape}"]
    lines = []
    if not np.all(np.isfinite(got)):
        lines.append(f"your {what} contains NaN or infinite values")
    diff = np.abs(np.nan_to_num(got, nan=np.inf) - expected)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    lines.append(
        f"{what} shape {got.shape} is right, values differ: largest difference "
        f"{float(diff[index]):.4g} at index {tuple(int(i) for i in index)}"
    )
    if detailed:
        row = index[:-1]
        at = ", ".join([*map(str, row), ":4"])
        lines.append(f"  expected {what}[{at}] = {_numbers(expected[row][:4])}")
        lines.append(f"  got      {what}[{at}] = {_numbers(got[row][:4])}")
    return lines


def _diagnose(got, variants, reference, atol=2e-3, rtol=2e-3):
    """The mistake combinations whose output matches `got`, fewest mistakes only."""
    matches = []
    for mistakes, output in variants:
        # A variant indistinguishable from the reference on this case says nothing.
        if output.shape != got.shape or _close(output, reference, 1e-4, 1e-4):
            continue
        if _close(got, output, atol, rtol):
            matches.append(mistakes)
    if not matches:
        return []
    fewest = min(len(m) for m in matches)
    found = []
    for mistakes in matches:
        entry = tuple(_MISTAKES[m] for m in mistakes)
        if len(mistakes) == fewest and entry not in found:
            found.append(entry)
    return found


class _Report:
    """Collects and prints the feedback of one check."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.results = []
        self.failures = []
        self.explained = set()
        self.diagnosed = {}

    def print(self, *lines):
        if self.verbose:
            print("\n".join(lines))

    @property
    def first_failure(self):
        """The header line of the first failing case so far, or `None` if none failed.

        The checks print numbers only for the first failure (`first_failure is None`
        when they report it), so that the output stays short.
        """
        return self.failures[0] if self.failures else None

    def passed(self, header):
        self.print(header.format("PASS"))
        self.results.append(True)

    def failed(self, header, lines, found=()):
        """Prints a failing case: `lines` of comparison, then the diagnosis."""
        self.failures.append(header.format("FAIL"))
        out = [header.format("FAIL"), *("  " + line for line in lines)]
        for entry in list(found)[:2]:
            names = " + ".join(name for name, _ in entry)
            self.diagnosed[names] = self.diagnosed.get(names, 0) + 1
            if len(entry) == 1:
                name, explanation = entry[0]
                if name in self.explained:
                    out.append(f"  DIAGNOSIS: {name} (see above).")
                else:
                    out.append(f"  DIAGNOSIS: {name}: {explanation}")
            elif all(name in self.explained for name, _ in entry):
                out.append(f"  DIAGNOSIS: two mistakes, {names} (see above).")
            else:
                out.append(f"  DIAGNOSIS: two mistakes, {names}:")
                for name, explanation in entry:
                    out.append(
                        f"    - {name}"
                        + (" (see above)." if name in self.explained else f": {explanation}")
                    )
            self.explained.update(name for name, _ in entry)
        self.print(*out)
        self.results.append(False)

    def summary(self, title, reference_name):
        passed, total = sum(self.results), len(self.results)
        if total and passed == total:
            self.print(f"All {total} cases pass: your {title} matches {reference_name}.")
            return True
        lines = [f"{passed}/{total} cases pass."]
        if self.diagnosed:
            ranked = sorted(self.diagnosed.items(), key=lambda item: -item[1])
            lines.append(
                "Most likely mistake: "
                + "; ".join(
                    f"{names} ({count} case{'s' if count > 1 else ''})" for names, count in ranked
                )
            )
        lines.append("Fix the first failing case first: the cases go from simple to complex.")
        self.print(*lines)
        return False


# ---------------------------------------------------------------- self-attention


def _self_attention_cases(seed):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(size=shape).astype("float32")

    def padding(lengths, length):
        return np.arange(length)[None, :] < np.asarray(lengths)[:, None]  # (B, S)

    causal = np.tril(np.ones((5, 5), dtype=bool))
    pad = padding([5, 3], 5)
    cases = [
        ("batch of sequences, no mask", normal(2, 4, 8), normal(2, 4, 8), normal(2, 4, 8), None),
        (
            "one sequence without a batch axis, no mask",
            normal(4, 8),
            normal(4, 8),
            normal(4, 8),
            None,
        ),
        (
            "cross-attention: 3 queries, 5 keys, value size 6",
            normal(2, 3, 8),
            normal(2, 5, 8),
            normal(2, 5, 6),
            None,
        ),
        (
            "batch and heads axes (2, 3 heads, 4, 8), no mask",
            normal(2, 3, 4, 8),
            normal(2, 3, 4, 8),
            normal(2, 3, 4, 8),
            None,
        ),
        (
            "padding mask (2, 1, 5): the second sequence has 3 real tokens",
            normal(2, 5, 8),
            normal(2, 5, 8),
            normal(2, 5, 8),
            pad[:, None, :],
        ),
        (
            "causal mask (5, 5): query i sees keys 0..i",
            normal(2, 5, 8),
            normal(2, 5, 8),
            normal(2, 5, 8),
            causal,
        ),
        (
            "batch and heads, causal + padding mask (2, 1, 5, 5)",
            normal(2, 2, 5, 8),
            normal(2, 2, 5, 8),
            normal(2, 2, 5, 8),
            (causal[None] & pad[:, None, :])[:, None],
        ),
    ]
    return cases


def _self_attention_variants(q, k, v, mask):
    q, k, v = (x.astype("float64") for x in (q, k, v))
    d_k, d_v = q.shape[-1], v.shape[-1]
    families = {"scale": ["none", "d"], "axis": ["query"]}
    if d_v != d_k:
        families["scale"].append("dv")
    if mask is not None:
        families["mask"] = ["after", "inverted", "ignored", "multiply"]
    for mistakes in _variants(families):
        chosen = dict(mistakes)
        output, weights = _attention(
            q,
            k,
            v,
            mask,
            scale=_scale_value(chosen.get("scale", "ok"), d_k, d_v),
            axis=chosen.get("axis", "key"),
            mask_mode=chosen.get("mask", "ok"),
        )
        yield mistakes, output, weights


def _split_result(result, what):
    """`result` or `(result, weights)` -> (output, weights or None), as numpy."""
    if isinstance(result, (tuple, list)):
        if len(result) != 2:
            raise _Feedback(
                f"{what} returned a {type(result).__name__} of {len(result)} "
                f"item{'' if len(result) == 1 else 's'}; return the "
                "output, or the tuple (output, weights)."
            )
        return _to_numpy(result[0], "the output"), _to_numpy(result[1], "the weights")
    return _to_numpy(result, "the output"), None


def _check_signature(fn):
    if not callable(fn):
        raise TypeError(
            "check.self_attention expects your attention function, "
            "fn(query, key, value, mask=None) -> output or (output, weights). "
            f"Received: {fn!r} of type {type(fn).__name__}, which is not callable."
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(1, 2, 3)
        signature.bind(1, 2, 3, 4)
    except TypeError:
        raise TypeError(
            "check.self_attention expects fn(query, key, value, mask=None): three "
            "positional arguments and an optional fourth, the mask. "
            f"Your function's signature is {getattr(fn, '__name__', 'fn')}{signature}."
        ) from None


def self_attention(fn, seed=0, atol=1e-4, as_numpy=False, verbose=True):
    """Checks a learner's scaled dot-product attention function.

    Runs `fn` on 7 small random cases: a batch, a single sequence, cross
    attention with more keys than queries and a different value size, extra
    batch and heads axes, a padding mask, a causal mask (given as a boolean
    lower-triangular `mask`) and causal + padding. Each output is compared
    with `dl4keras.attention.scaled_dot_product_attention`; failing cases are
    printed with shapes, a few numbers and, when the result matches a typical
    mistake, a DIAGNOSIS naming it (forgot the 1/√d scale, softmax over the
    wrong axis, mask applied after the softmax, mask inverted or ignored, ...).

    The function under test must have the signature
    `fn(query, key, value, mask=None)`:

    - `query`: shape `(..., T, d_k)`; `key`: `(..., S, d_k)`; `value`:
      `(..., S, d_v)`. The leading axes (batch, heads, or none at all) are
      batch axes: transpose only the last two axes of `key`.
    - `mask`: `None`, or a boolean array broadcastable to `(..., T, S)`,
      `True` where a query may attend to a key. Cases without a mask call
      `fn(query, key, value)`.
    - returns the output `(..., T, d_v)`, as a tensor or a numpy array, or a
      tuple `(output, weights)` with the weights `(..., T, S)` (also
      checked).

    Args:
        fn: the function to check.
        seed: seed of the random cases.
        atol: absolute (and relative) tolerance of the comparison.
        as_numpy: pass numpy arrays instead of Keras backend tensors.
        verbose: print the feedback.

    Returns:
        `True` if every case matches the reference, `False` otherwise.

    Raises:
        TypeError: if `fn` is not callable or does not accept
            `(query, key, value, mask)`.

    Examples:
        >>> from keras import ops
        >>> from dl4keras import check
        >>> def attention(query, key, value, mask=None):
        ...     scores = ops.matmul(query, ops.swapaxes(key, -1, -2))
        ...     scores = scores / ops.sqrt(ops.cast(ops.shape(key)[-1], scores.dtype))
        ...     if mask is not None:
        ...         scores = ops.where(mask, scores, -1e9)
        ...     weights = ops.softmax(scores, axis=-1)
        ...     return ops.matmul(weights, value), weights
        >>> check.self_attention(attention)  # doctest: +ELLIPSIS
        Checking attention(query, key, value, mask=None) against ...
        [PASS] case 1: batch of sequences, no mask: query (2, 4, 8), key (2, 4, 8), value (2, 4, 8)
        ...
        All 7 cases pass: your self-attention matches
        dl4keras.attention.scaled_dot_product_attention.
        True
    """
    _check_signature(fn)
    from keras import ops

    from dl4keras.attention import scaled_dot_product_attention

    report = _Report(verbose)
    report.print(
        f"Checking {getattr(fn, '__name__', 'your function')}(query, key, value, "
        "mask=None) against dl4keras.attention.scaled_dot_product_attention ..."
    )
    for number, (title, q, k, v, mask) in enumerate(_self_attention_cases(seed), start=1):
        header = (
            f"[{{}}] case {number}: {title}: query {q.shape}, key {k.shape}, "
            f"value {v.shape}" + (f", mask {mask.shape}" if mask is not None else "")
        )
        expected, expected_weights = (
            ops.convert_to_numpy(x).astype("float64")
            for x in scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
        )
        args = (q, k, v) if mask is None else (q, k, v, mask)
        if not as_numpy:
            args = tuple(ops.convert_to_tensor(a) for a in args)
        try:
            try:
                result = fn(*args)
            except Exception as error:  # the learner's code failed
                hint = ""
                if q.ndim != 3:
                    hint = (
                        " Your function must work with any number of leading axes "
                        f"(here query has rank {q.ndim}): transpose the keys with "
                        "ops.swapaxes(key, -1, -2), not a fixed permutation."
                    )
                elif mask is not None:
                    hint = (
                        " The mask is boolean (True = may attend) and broadcastable to "
                        f"(..., T, S), here {mask.shape}: use ops.where(mask, scores, -1e9), "
                        "or cast it first, ops.cast(mask, scores.dtype)."
                    )
                raise _Feedback(
                    f"your function raised {type(error).__name__}: {error}.{hint}"
                ) from None
            got, got_weights = _split_result(result, "your function")
        except _Feedback as feedback:
            report.failed(header, [str(feedback)])
            continue
        ok = _close(got, expected, atol, atol)
        weights_ok = got_weights is None or _close(got_weights, expected_weights, atol, atol)
        if ok and weights_ok:
            report.passed(header)
            continue
        variants = list(_self_attention_variants(q, k, v, mask))
        detailed = report.first_failure is None  # numbers for the first failing case only
        if not ok:
            lines = _compare_lines(expected, got, "output", detailed)
            found = _shape_diagnosis(got, expected, expected_weights, k) or _diagnose(
                got, [(m, o) for m, o, _ in variants], expected
            )
            wrong = got
        else:
            lines = [
                "the output is right but the returned weights are not:",
                *_compare_lines(expected_weights, got_weights, "weights", detailed),
            ]
            found = _diagnose(got_weights, [(m, w) for m, _, w in variants], expected_weights)
            wrong = got_weights
        if not found and mask is not None and _huge(wrong, expected):
            found = [(_HUGE_AFTER_SOFTMAX,)]
        if (
            not found
            and detailed
            and wrong.shape == (expected if not ok else expected_weights).shape
        ):
            lines.append(
                "(no typical mistake matches these numbers: print the shape and "
                "values of each step on this case)"
            )
        report.failed(header, lines, found)
    return report.summary("self-attention", "dl4keras.attention.scaled_dot_product_attention")


def _huge(got, expected):
    if got.shape != expected.shape:
        return False
    return (not np.all(np.isfinite(got))) or np.abs(got).max() > 1e3 * (np.abs(expected).max() + 1)


def _shape_diagnosis(got, expected, expected_weights, key):
    """Mistakes recognisable from the output's shape alone."""
    if got.shape == expected.shape:
        return []
    if got.shape == expected_weights.shape:
        return [(_MISTAKES[("shape", "weights")],)]
    if got.shape[:-1] == expected.shape[:-1] and got.shape[-1] == key.shape[-1]:
        return [(_MISTAKES[("shape", "keys")],)]
    return []


# ---------------------------------------------------------------- multi-head attention

_HEADS, _KEY_DIM, _MODEL_DIM = 4, 8, 16


def _mha_cases(seed):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.normal(size=shape).astype("float32")

    x = normal(2, 5, _MODEL_DIM)
    lengths = np.array([5, 3])
    pad = np.broadcast_to(np.arange(5)[None, None, :] < lengths[:, None, None], (2, 5, 5))
    causal = np.broadcast_to(np.tril(np.ones((5, 5), dtype=bool)), (2, 5, 5))
    # (title, query, value, key or None, attention_mask or None, use_causal_mask)
    return [
        ("self-attention, no mask", x, x, None, None, False),
        (
            "cross-attention: 3 queries of size 16 over 6 values of size 12",
            normal(2, 3, _MODEL_DIM),
            normal(2, 6, 12),
            None,
            None,
            False,
        ),
        (
            "cross-attention with a separate key of size 10",
            normal(2, 3, _MODEL_DIM),
            normal(2, 6, 12),
            normal(2, 6, 10),
            None,
            False,
        ),
        ("self-attention, padding attention_mask (2, 5, 5)", x, x, None, pad.copy(), False),
        ("self-attention, causal attention_mask (2, 5, 5)", x, x, None, causal.copy(), False),
        ("self-attention, use_causal_mask=True", x, x, None, None, True),
    ]


def _np_mha(
    query, value, key, mask, weights, split="ok", merge="ok", scale="ok", axis="key", mask_mode="ok"
):
    """Multi-head attention in float64 with Keras's weight layout, optionally wrong."""
    wq, bq, wk, bk, wv, bv, wo, bo = (np.asarray(w, dtype="float64") for w in weights)
    heads, key_dim = wq.shape[1:]
    value_dim = wv.shape[2]

    def project(x, kernel, bias):
        x = np.einsum("btd,dhk->bthk", x.astype("float64"), kernel) + bias
        b, t, h, d = x.shape
        flat = x.reshape(b, t, h * d)
        if split == "no_transpose":
            return flat.reshape(b, h, t, d)
        if split == "swapped":
            return flat.reshape(b, t, d, h).transpose(0, 3, 1, 2)
        return x.transpose(0, 2, 1, 3)

    q = project(query, wq, bq)
    k = project(key, wk, bk)
    v = project(value, wv, bv)
    m = None if mask is None else np.asarray(mask, dtype=bool)[:, None]  # (B, 1, T, S)
    factor = _scale_value(scale, key_dim, value_dim, query.shape[-1], heads)
    o, _ = _attention(q, k, v, m, factor, axis, mask_mode)  # (B, H, T, dv)
    b, h, t, d = o.shape
    if merge == "no_transpose":
        merged = o.reshape(b, t, h * d)
    elif merge == "swapped":
        merged = o.transpose(0, 2, 3, 1).reshape(b, t, d * h)
    else:
        merged = o.transpose(0, 2, 1, 3).reshape(b, t, h * d)
    return merged @ wo.reshape(heads * value_dim, -1) + bo


def _mha_variants(query, value, key, mask, weights):
    families = {
        "split": ["no_transpose", "swapped"],
        "merge": ["no_transpose", "swapped"],
        "scale": ["none", "d", "model", "all_heads"],
        "axis": ["query"],
    }
    if mask is not None:
        families["mask"] = ["after", "inverted", "ignored", "multiply"]
    for mistakes in _variants(families):
        options = dict(mistakes)
        if "axis" in options:
            options["axis"] = "query"
        if "mask" in options:
            options["mask_mode"] = options.pop("mask")
        yield mistakes, _np_mha(query, value, key, mask, weights, **options)


def _copy_weights(layer, reference):
    """Copies the reference weights into `layer` (reshaping equal-size weights)."""
    import keras

    source, target = reference.weights, layer.weights
    expected = [tuple(w.shape) for w in source]
    got = [tuple(w.shape) for w in target]
    layout = (
        f"Expected {len(expected)} weights with the layout of keras.layers.MultiHeadAttention, "
        f"in this order: {expected} (query kernel, query bias, key kernel, key bias, value "
        "kernel, value bias, output kernel, output bias; kernels built from Dense layers of "
        f"heads * key_dim units, e.g. (16, 32), are fine). Your layer has {got}."
    )
    if len(source) != len(target):
        raise _Feedback(layout)
    for s, t in zip(source, target):
        if int(np.prod(s.shape)) != int(np.prod(t.shape)):
            raise _Feedback(layout)
        t.assign(np.reshape(keras.ops.convert_to_numpy(s), tuple(t.shape)))
    return expected != got


def _randomize(layer, rng):
    """Seeded weights: kernels ~ N(0, 1/fan_in), biases ~ N(0, 0.1²) (non-zero on purpose)."""
    for index, weight in enumerate(layer.weights):
        shape = tuple(weight.shape)
        if len(shape) == 3:
            # query/key/value kernels (features, heads, dim); output kernel (heads, dim, out).
            fan_in = shape[0] * shape[1] if index == 6 else shape[0]
            value = rng.normal(size=shape) / math.sqrt(fan_in)
        else:
            value = 0.1 * rng.normal(size=shape)
        weight.assign(value.astype("float32"))


def _call_kwargs(case, parameters):
    _, _, _, key, mask, causal = case
    kwargs = {}
    if key is not None:
        kwargs["key"] = key
    if mask is not None:
        kwargs["attention_mask"] = mask
    if causal:
        kwargs["use_causal_mask"] = True
    missing = [name for name in kwargs if parameters is not None and name not in parameters]
    return kwargs, missing


def multi_head_attention(layer_cls, seed=0, atol=1e-4, verbose=True):
    """Checks a learner's multi-head attention layer class.

    For each of 6 cases (self-attention, cross-attention with different
    query/value sizes, a separate key, a padding `attention_mask`, a causal
    `attention_mask`, `use_causal_mask=True`), the check builds
    `layer_cls(num_heads=4, key_dim=8)` and the reference
    `dl4keras.attention.MultiHeadAttention(num_heads=4, key_dim=8)` on the
    case's inputs, copies the reference's weights into your layer, and
    compares the outputs. Failing cases print shapes, a few numbers and, when
    the output matches a typical mistake, a DIAGNOSIS naming it (heads split
    or merged in the wrong order, a missing or wrong scale, softmax over the
    wrong axis, mask mistakes).

    Your layer must:

    - be a Keras layer constructed as `layer_cls(num_heads=..., key_dim=...)`;
    - be called as `layer(query, value, key=None, attention_mask=None)` with
      `query (batch, T, d_q)`, `value (batch, S, d_v)`, `key (batch, S, d_k)`
      defaulting to `value`, and a boolean `attention_mask (batch, T, S)`,
      `True` = may attend; cases that need `key`, `attention_mask` or
      `use_causal_mask` are skipped (and reported) if `call` does not accept
      them;
    - return `(batch, T, d_q)` (or a tuple whose first item is that);
    - create its weights in the order and layout of
      `keras.layers.MultiHeadAttention`: query kernel `(d_q, heads, key_dim)`
      and bias `(heads, key_dim)`, then key, value, and the output kernel
      `(heads, value_dim, d_q)` and bias `(d_q,)`. Kernels of the same size
      in another shape (a `Dense(heads * key_dim)` kernel `(d_q, 32)`) are
      copied with a reshape, which matches the usual split of the projected
      features into `(heads, key_dim)`.

    Args:
        layer_cls: your layer class.
        seed: seed of the random cases and weights.
        atol: absolute (and relative) tolerance of the comparison.
        verbose: print the feedback.

    Returns:
        `True` if every case matches the reference, `False` otherwise.

    Raises:
        TypeError: if `layer_cls` is not callable (or is a layer instance
            rather than its class).

    Examples:
        >>> import keras
        >>> from dl4keras import check
        >>> check.multi_head_attention(keras.layers.MultiHeadAttention)  # doctest: +ELLIPSIS
        Checking MultiHeadAttention(num_heads=4, key_dim=8) against ...
        ...
        All 6 cases pass: your MultiHeadAttention matches dl4keras.attention.MultiHeadAttention.
        True
    """
    import keras

    if isinstance(layer_cls, keras.layers.Layer):
        raise TypeError(
            "check.multi_head_attention expects your layer *class* (it builds fresh layers "
            f"for each case); received an instance, {layer_cls.name!r}. Pass "
            f"{type(layer_cls).__name__} instead."
        )
    if not callable(layer_cls):
        raise TypeError(
            "check.multi_head_attention expects a layer class called as "
            "layer_cls(num_heads=..., key_dim=...). "
            f"Received: {layer_cls!r} of type {type(layer_cls).__name__}, which is not callable."
        )
    from dl4keras.attention import MultiHeadAttention

    name = getattr(layer_cls, "__name__", "your layer")
    report = _Report(verbose)
    report.print(
        f"Checking {name}(num_heads={_HEADS}, key_dim={_KEY_DIM}) against "
        "dl4keras.attention.MultiHeadAttention ..."
    )
    call = getattr(layer_cls, "call", None)
    try:
        parameters = inspect.signature(call).parameters if call else None
        if parameters and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            parameters = None
    except (TypeError, ValueError):
        parameters = None

    reshaped = False
    rng = np.random.default_rng(seed + 1)
    for number, case in enumerate(_mha_cases(seed), start=1):
        title, query, value, key, mask, causal = case
        header = (
            f"[{{}}] case {number}: {title}: query {query.shape}, value {value.shape}"
            + (f", key {key.shape}" if key is not None else "")
            + (f", attention_mask {mask.shape}" if mask is not None else "")
        )
        kwargs, missing = _call_kwargs(case, parameters)
        if missing:
            report.print(
                header.format("SKIP")
                + f": your call() has no {', '.join(missing)} "
                + ("argument" if len(missing) == 1 else "arguments")
            )
            continue
        reference = MultiHeadAttention(num_heads=_HEADS, key_dim=_KEY_DIM)
        reference.build(query.shape, value.shape, None if key is None else key.shape)
        _randomize(reference, rng)
        expected = np.asarray(
            keras.ops.convert_to_numpy(reference(query, value, **kwargs)), dtype="float64"
        )
        try:
            try:
                layer = layer_cls(num_heads=_HEADS, key_dim=_KEY_DIM)
            except Exception as error:  # the learner's code failed
                raise _Feedback(
                    f"{name}(num_heads={_HEADS}, key_dim={_KEY_DIM}) raised "
                    f"{type(error).__name__}: {error}"
                ) from None
            try:
                layer(query, value, **kwargs)  # builds the layer
                reshaped |= _copy_weights(layer, reference)
                result = layer(query, value, **kwargs)
            except _Feedback:
                raise
            except Exception as error:  # the learner's code failed
                raise _Feedback(
                    f"calling your layer raised {type(error).__name__}: {error}"
                ) from None
            if isinstance(result, (tuple, list)):
                result = result[0]
            got = _to_numpy(result, "the output")
        except _Feedback as feedback:
            report.failed(header, [str(feedback)])
            continue
        if _close(got, expected, atol, atol):
            report.passed(header)
            continue
        detailed = report.first_failure is None  # numbers for the first failing case only
        lines = _compare_lines(expected, got, "output", detailed)
        weights = [keras.ops.convert_to_numpy(w) for w in reference.weights]
        full_mask = mask
        if causal:
            full_mask = np.broadcast_to(
                np.tril(np.ones((query.shape[1], value.shape[1]), dtype=bool)),
                (query.shape[0], query.shape[1], value.shape[1]),
            )
        key_input = value if key is None else key
        found = _diagnose(
            got, list(_mha_variants(query, value, key_input, full_mask, weights)), expected
        )
        if not found and full_mask is not None and _huge(got, expected):
            found = [(_HUGE_AFTER_SOFTMAX,)]
        if not found and detailed and got.shape == expected.shape:
            lines.append(
                "(no typical mistake matches these numbers: print the shape and "
                "values of each step on this case)"
            )
        report.failed(header, lines, found)
    if not report.results:
        report.print(
            "No case could run: your call() must accept (query, value, key=None, "
            "attention_mask=None)."
        )
        return False
    if reshaped:
        report.print(
            "(Your kernels have other shapes than keras.layers.MultiHeadAttention's "
            "with the same sizes: the check copied the weights with a reshape.)"
        )
    return report.summary(name, "dl4keras.attention.MultiHeadAttention")


# ---------------------------------------------------------------- sentence embeddings

_MISTAKES.update(
    {
        ("pad", "ignored"): (
            "pooled over the padding (a plain mean)",
            "ops.mean(token_embeddings, axis=1) averages the padding positions' vectors too. "
            "Multiply by the mask expanded to (batch, T, 1), sum over axis 1 and divide by the "
            "number of real tokens, ops.sum(mask, axis=1).",
        ),
        ("pad", "inverted"): (
            "padding mask inverted",
            "1 (True) in padding_mask marks a *real* token and 0 (False) padding: you averaged "
            "the padding positions instead of the tokens (and a sentence without padding "
            "then gives 0 / 0 = NaN).",
        ),
        ("pool", "first"): (
            "used the first ([CLS]) token instead of the mean",
            "token_embeddings[:, 0] is the [CLS] vector; this model was trained with mean "
            "pooling: average the vectors of all real tokens ([CLS] and [SEP] included).",
        ),
        ("pool", "sum"): (
            "summed instead of averaging",
            "divide the masked sum by the number of real tokens, ops.sum(mask, axis=1). "
            "(After the L2 normalisation a sum and a mean give the same vector, so this "
            "shows only when the normalisation is missing too.)",
        ),
        ("pool", "length"): (
            "divided by the length T instead of the number of real tokens",
            "ops.mean(token_embeddings * mask, axis=1) divides by T, padding included; divide "
            "the masked sum by ops.sum(mask, axis=1). (The L2 normalisation hides this, as it "
            "hides a sum, so it shows only when the normalisation is missing too.)",
        ),
        ("pool", "max"): (
            "max pooling instead of the mean",
            "take the mean of the real tokens' vectors, ops.sum(x * mask, axis=1) / "
            "ops.sum(mask, axis=1), not their maximum.",
        ),
        ("norm", "none"): (
            "no L2 normalisation",
            "divide each pooled sentence vector by its L2 norm over the features, "
            "v / ops.norm(v, axis=-1, keepdims=True), so that dot products are cosine "
            "similarities.",
        ),
        ("norm", "before"): (
            "normalised before pooling",
            "pool the raw token vectors first, then L2-normalise the pooled sentence vector: "
            "a mean of unit token vectors is not a unit vector.",
        ),
        ("norm", "before_and_after"): (
            "normalised before pooling",
            "pool the raw token vectors, then normalise once: normalising each token first "
            "changes how much each token counts.",
        ),
        ("norm", "batch_axis"): (
            "L2 normalisation over the wrong axis",
            "normalise each sentence vector over its features (axis=-1); you divided by norms "
            "over the batch axis (axis=0).",
        ),
        ("norm", "whole_batch"): (
            "L2 normalisation over the wrong axis",
            "normalise each sentence vector on its own, v / ops.norm(v, axis=-1, "
            "keepdims=True); you divided the whole batch by one norm (a norm without axis).",
        ),
        ("pooled", "tokens"): (
            "did not pool over the tokens",
            "the output has one vector per token, (batch, T, d); average over the token axis, "
            "axis=1, to get one vector per sentence, (batch, d).",
        ),
        ("pooled", "keepdims"): (
            "kept the token axis",
            "the output is (batch, 1, d): pool over axis 1 without keepdims=True (or squeeze "
            "axis 1) so that it is (batch, d).",
        ),
        ("pooled", "features"): (
            "pooled over the wrong axis",
            "the output is (batch, T): you reduced the feature axis (-1). Pool over the token "
            "axis, axis=1, to get (batch, d).",
        ),
        ("pooled", "batch"): (
            "pooled over the wrong axis",
            "the output is (T, d): you reduced the batch axis (0). Pool over the token axis, "
            "axis=1, to get (batch, d).",
        ),
        ("pooled", "squeezed"): (
            "dropped the batch axis",
            "the output is (d,) for a batch of one sentence: keep the batch axis, (1, d) "
            "(squeeze only axis 1, if at all; ops.squeeze without an axis drops both).",
        ),
        ("pooled", "everything"): (
            "pooled over the batch too",
            "the output has lost the batch axis: pool over the token axis only, axis=1, "
            "and normalise over the features only, axis=-1.",
        ),
    }
)

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
    for mistakes in _variants(families):
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
    return [(_MISTAKES[("pooled", key)],)] if key else []


def _nan_rows_diagnosis(got, x, mask, atol):
    """NaN exactly in the sentences without padding, the others averaging the padding.

    An inverted mask averages zero positions in a sentence without padding: 0 / 0.
    """
    bad = ~np.isfinite(got).all(axis=-1)
    unpadded = np.asarray(mask, dtype=bool).all(axis=-1)
    if not bad.any() or bad.all() or not np.array_equal(bad, unpadded):
        return []
    inverted = _pooled(x, mask, pad="inverted")
    if _close(got[~bad], inverted[~bad], 2e-3, 2e-3):
        return [(_MISTAKES[("pad", "inverted")],)]
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
    if "broadcast" in text or "incompatible shapes" in text:
        return (
            " The mask is (batch, T) and the embeddings (batch, T, d): expand the mask to "
            "(batch, T, 1) with ops.expand_dims(padding_mask, -1) before multiplying."
        )
    if mask.dtype == bool:
        return (
            " The mask is boolean here, as KerasHub's preprocessors give it: cast it first, "
            "ops.cast(padding_mask, token_embeddings.dtype)."
        )
    if as_numpy:
        return (
            " Here the inputs are NumPy arrays: use keras.ops functions (they take arrays and "
            "tensors alike), not tensor methods."
        )
    return ""


def _read_pooled(result):
    if result is None:
        raise _Feedback("your function returned None: did you forget the `return`?")
    if isinstance(result, (tuple, dict)):
        raise _Feedback(
            f"your function returned a {type(result).__name__}; return only the sentence "
            "embeddings, one array of shape (batch, d)."
        )
    return _to_numpy(result, "the output")


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
        ...     mean = ops.sum(token_embeddings * mask, axis=1) / ops.sum(mask, axis=1)
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
    report = _Report(verbose)
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
                raise _Feedback(
                    f"your function raised {type(error).__name__}: {message}.{hint}"
                ) from None
            got = _read_pooled(result)
        except _Feedback as feedback:
            report.failed(header, [str(feedback)])
            continue
        if _close(got, expected, atol, atol):
            report.passed(header)
            continue
        detailed = report.first_failure is None  # numbers for the first failing case only
        lines = _compare_lines(expected, got, "output", detailed)
        found = _pooling_shape_diagnosis(got, x) or _diagnose(
            got, list(_pooling_variants(x, mask)), expected
        )
        if not found and got.shape == expected.shape:
            found = _nan_rows_diagnosis(got, x, mask, atol)
        if not found and got.shape == expected.shape:
            norms = np.linalg.norm(got, axis=-1)
            if np.all(np.isfinite(norms)) and not np.allclose(norms, 1.0, atol=1e-3):
                lines.append(
                    f"your rows have L2 norms {_numbers(norms[:4])}: sentence embeddings "
                    "are unit vectors (divide by the norm over the last axis)"
                )
            elif detailed:
                lines.append(
                    "(no typical mistake matches these numbers: print the shape and "
                    "values of each step on this case)"
                )
        report.failed(header, lines, found)
    return report.summary("pooling", _POOLING_REFERENCE)


# ---------------------------------------------------------------- training set-up

_WIDTH = 80
"""Feedback lines of `training_setup` are at most this long."""


def _wrapped(prefix, text):
    import textwrap

    return textwrap.wrap(
        text,
        _WIDTH,
        initial_indent=prefix,
        subsequent_indent=" " * min(len(prefix), 7),
        break_on_hyphens=False,
    )


class _SetupReport:
    """The verdicts of `training_setup`: PASS, FAIL (with a fix) and WARN lines."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.lines = []
        self.failed = []
        self.warned = []
        self.passed = 0

    def add(self, verdict, topic, text, fix=None):
        self.lines += _wrapped(f"[{verdict}] ", f"{topic}: {text}")
        if fix:
            self.lines += _wrapped("  FIX: ", fix)
        if verdict == "FAIL":
            self.failed.append(topic)
        elif verdict == "WARN":
            self.warned.append(topic)
        else:
            self.passed += 1

    def finish(self, header):
        total = self.passed + len(self.failed)
        if self.failed:
            end = f"{self.passed}/{total} checks pass; fix: {', '.join(self.failed)}."
        else:
            end = f"All {total} checks pass" + (
                f" ({len(self.warned)} warning{'s' * (len(self.warned) > 1)} above)."
                if self.warned
                else ": the set-up is right."
            )
        if self.verbose:
            print("\n".join([*_wrapped("", header), *self.lines, *_wrapped("", end)]))
        return not self.failed


def _describe_schedule(schedule):
    """`(name, has_warmup)` of a learning-rate schedule (`has_warmup` None: unknown)."""
    import keras

    from dl4keras.training.schedules import OneCycle

    name = type(schedule).__name__
    if isinstance(schedule, keras.optimizers.schedules.CosineDecay):
        target = getattr(schedule, "warmup_target", None)
        steps = getattr(schedule, "warmup_steps", 0)
        if target is None or not steps:
            return name, False
        return f"{name} (warm-up to {target:g} over {steps} steps)", True
    if isinstance(schedule, OneCycle):
        return f"{name} (warm-up to {schedule.max_learning_rate:g})", True
    return name, None


def training_setup(
    model, batch_size, effective_batch_size=256, policy="mixed_bfloat16", verbose=True
):
    """Checks a compiled model's set-up for gradient accumulation and mixed precision.

    The self-check of tutorial 06's exercise "make it fit": reach an
    effective batch of `effective_batch_size` with micro-batches of
    `batch_size` (Keras's `gradient_accumulation_steps`), train in the dtype
    `policy`, with a warm-up + cosine schedule that is right under
    accumulation. It inspects the model and its optimizer (it trains
    nothing) and names the usual mistakes, each with its fix:

    - **accumulation**: `effective_batch_size` not a multiple of
      `batch_size`, or the optimizer's `gradient_accumulation_steps` not
      `effective_batch_size / batch_size`;
    - **dtype policy**: the layers not built under `policy` (a policy only
      applies to layers created while it is set);
    - **output**: the model's output not float32 (the output layer needs
      `dtype="float32"`);
    - **loss scaling**: float16 computations and an optimizer that does not
      scale the loss (`keras.optimizers.LossScaleOptimizer`);
    - **learning rate**: a schedule not wrapped for accumulation (Keras
      advances schedules every micro-batch: wrap it in
      `dl4keras.training.schedules.PerUpdateSchedule`, or `per_update`, with
      the same `accumulation_steps`), or a wrapper with other steps than the
      optimizer's. A constant learning rate, or a `CosineDecay` without a
      warm-up (`warmup_target` unset: `warmup_steps` is then ignored), gives
      a warning line.

    Args:
        model: the compiled `keras.Model`.
        batch_size: the micro-batch size given to `model.fit`.
        effective_batch_size: the examples per optimizer update wanted.
        policy: the dtype policy wanted, e.g. `"mixed_bfloat16"`.
        verbose: print the feedback.

    Returns:
        `True` if no check fails (warnings allowed), `False` otherwise.

    Raises:
        ValueError: if `model` is not a `keras.Model`, a batch size is not a
            positive integer, or `policy` is not a floating-point policy name.

    Examples:
        >>> import keras
        >>> from dl4keras import check, training
        >>> with training.set_policy("mixed_bfloat16"):
        ...     model = keras.Sequential(
        ...         [
        ...             keras.Input((8,)),
        ...             keras.layers.Dense(16, activation="relu"),
        ...             keras.layers.Dense(3, activation="softmax", dtype="float32"),
        ...         ]
        ...     )
        >>> warm = training.warmup_cosine(1e-3, total_steps=100, warmup_steps=10)
        >>> model.compile(
        ...     keras.optimizers.AdamW(
        ...         training.per_update(warm, 8), gradient_accumulation_steps=8
        ...     ),
        ...     "sparse_categorical_crossentropy",
        ... )
        >>> check.training_setup(model, batch_size=32)  # doctest: +ELLIPSIS
        Checking the training set-up: micro-batches of 32, effective batch 256,
        policy 'mixed_bfloat16' ...
        [PASS] accumulation: 8 micro-batches of 32 = 256 examples per update
        [PASS] dtype policy: the layers compute in bfloat16 ('mixed_bfloat16')
        [PASS] output: float32
        [PASS] loss scaling: not needed: bfloat16 has float32's exponent range
        [PASS] learning rate: PerUpdateSchedule(accumulation_steps=8) over
               CosineDecay (warm-up to 0.001 over 10 steps)
        All 5 checks pass: the set-up is right.
        True
        >>> # the same schedule not wrapped: Keras advances it every micro-batch
        >>> model.compile(keras.optimizers.AdamW(warm, gradient_accumulation_steps=8), "mse")
        >>> check.training_setup(model, batch_size=32)  # doctest: +ELLIPSIS
        Checking the training set-up: ...
        [FAIL] learning rate: the schedule is not wrapped for accumulation: Keras
               advances it every micro-batch, so its warm-up and decay run 8x too
               fast
          FIX: ...training.per_update(schedule, 8)...
        4/5 checks pass; fix: learning rate.
        False
    """
    import keras

    from dl4keras import _validation
    from dl4keras.training.mixed_precision import POLICIES
    from dl4keras.training.schedules import PerUpdateSchedule

    if not isinstance(model, keras.Model):
        raise _validation.invalid("model", "a compiled `keras.Model`", model)
    batch_size = _validation.positive_int("batch_size", batch_size)
    effective = _validation.positive_int("effective_batch_size", effective_batch_size)
    _validation.one_of("policy", policy, POLICIES)
    wanted = keras.DTypePolicy(policy)
    report = _SetupReport(verbose)
    header = (
        f"Checking the training set-up: micro-batches of {batch_size}, effective batch "
        f"{effective}, policy {policy!r} ..."
    )

    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    steps = (getattr(inner, "gradient_accumulation_steps", None) or 1) if inner else None

    # 1. gradient accumulation
    if optimizer is None:
        report.add(
            "FAIL",
            "compile",
            "the model is not compiled: there is no optimizer to check",
            "model.compile(optimizer=..., loss=...) first, then run this check.",
        )
    elif effective % batch_size:
        report.add(
            "FAIL",
            "accumulation",
            f"the effective batch {effective} is not a multiple of the micro-batch "
            f"{batch_size}: no number of accumulation steps reaches it",
            f"use a micro-batch that divides {effective} (e.g. "
            f"{max(d for d in range(1, batch_size + 1) if effective % d == 0)}).",
        )
    elif steps != effective // batch_size:
        needed = effective // batch_size
        report.add(
            "FAIL",
            "accumulation",
            f"gradient_accumulation_steps={steps if steps > 1 else None}: {steps} x "
            f"{batch_size} = {steps * batch_size} examples per update, not {effective}",
            f"give the optimizer gradient_accumulation_steps={needed} "
            f"({effective} / {batch_size}), e.g. keras.optimizers.AdamW(..., "
            f"gradient_accumulation_steps={needed}).",
        )
    else:
        report.add(
            "PASS",
            "accumulation",
            f"{steps} micro-batches of {batch_size} = {effective} examples per update",
        )

    # 2. dtype policy of the layers (the output layer may differ: it should be float32)
    output_layers = set()
    outputs = getattr(model, "outputs", None) or []
    for tensor in outputs:
        history = getattr(tensor, "_keras_history", None)
        if history is not None:
            output_layers.add(id(history[0]))
    layers = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if layer.weights and not isinstance(layer, keras.Model)
    ]
    hidden = [layer for layer in layers if id(layer) not in output_layers] or layers
    other = [layer for layer in hidden if layer.dtype_policy.name != policy]
    if other:
        names = sorted({layer.dtype_policy.name for layer in other})
        report.add(
            "FAIL",
            "dtype policy",
            f"{len(other)} of {len(hidden)} layers (the output layer aside) use "
            f"{', '.join(map(repr, names))}, not {policy!r} (e.g. {other[0].name!r})",
            f'build the model after training.set_policy("{policy}"), or inside '
            f'`with training.set_policy("{policy}"):`: layers keep the policy they were '
            "built with, so setting it after building changes nothing.",
        )
    else:
        report.add(
            "PASS",
            "dtype policy",
            f"the layers compute in {wanted.compute_dtype} ({policy!r})",
        )

    # 3. output dtype
    dtypes = [keras.backend.standardize_dtype(t.dtype) for t in outputs]
    wrong = [d for d in dtypes if d != "float32"]
    if wrong:
        report.add(
            "FAIL",
            "output",
            f"the output is {wrong[0]}, not float32: the softmax and the loss lose precision",
            'give the output layer dtype="float32", e.g. keras.layers.Dense(10, '
            'activation="softmax", dtype="float32").',
        )
    elif dtypes:
        report.add("PASS", "output", "float32")

    # 4. loss scaling
    float16 = [layer for layer in layers if layer.compute_dtype == "float16"]
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or (
        getattr(optimizer, "loss_scale_factor", None) is not None
    )
    if float16 and optimizer is not None and not scaled:
        report.add(
            "FAIL",
            "loss scaling",
            f"{len(float16)} layer(s) compute in float16 but the optimizer does not scale "
            "the loss: small gradients underflow to zero",
            "wrap the optimizer, keras.optimizers.LossScaleOptimizer(optimizer), or set "
            'the policy with training.set_policy("mixed_float16") before building the '
            "model: compile adds loss scaling only when the model's policy is "
            "mixed_float16.",
        )
    elif float16 and optimizer is not None:
        report.add("PASS", "loss scaling", f"{type(optimizer).__name__} scales the loss")
    elif optimizer is not None and wanted.compute_dtype == "bfloat16":
        report.add("PASS", "loss scaling", "not needed: bfloat16 has float32's exponent range")
    elif optimizer is not None:
        report.add("PASS", "loss scaling", "not needed: no layer computes in float16")

    # 5. learning rate under accumulation
    if inner is not None:
        # Keras keeps the schedule itself (not its current value) in `_learning_rate`.
        rate = getattr(inner, "_learning_rate", None)
        if isinstance(rate, PerUpdateSchedule):
            described, warmup = _describe_schedule(rate.schedule)
            if rate.accumulation_steps != steps:
                report.add(
                    "FAIL",
                    "learning rate",
                    f"PerUpdateSchedule(accumulation_steps={rate.accumulation_steps}) but the "
                    f"optimizer accumulates {steps} micro-batches per update: the schedule "
                    f"runs {steps / rate.accumulation_steps:g}x too fast",
                    f"wrap the schedule with the optimizer's steps: "
                    f"training.per_update(schedule, {steps}).",
                )
            else:
                report.add(
                    "PASS",
                    "learning rate",
                    f"PerUpdateSchedule(accumulation_steps={steps}) over {described}",
                )
        elif isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            described, warmup = _describe_schedule(rate)
            if steps > 1:
                report.add(
                    "FAIL",
                    "learning rate",
                    "the schedule is not wrapped for accumulation: Keras advances it every "
                    f"micro-batch, so its warm-up and decay run {steps}x too fast",
                    "write the schedule in updates and wrap it: "
                    f"training.per_update(schedule, {steps}) "
                    f"(a PerUpdateSchedule with accumulation_steps={steps}).",
                )
            else:
                report.add("PASS", "learning rate", f"{described}, no accumulation to correct")
        else:
            warmup = None
            value = float(keras.ops.convert_to_numpy(inner.learning_rate))
            report.add(
                "WARN",
                "learning rate",
                f"a constant learning rate ({value:g}) where a warm-up + cosine schedule was asked",
                "training.per_update(training.warmup_cosine(peak, total_updates, "
                f"warmup_steps), {steps}) as the optimizer's learning rate.",
            )
        if warmup is False:
            report.add(
                "WARN",
                "warm-up",
                f"{described} has no warm-up: CosineDecay ignores warmup_steps unless "
                "warmup_target (the peak) is set",
                "training.warmup_cosine(peak, total_steps, warmup_steps) builds it.",
            )
    return report.finish(header)
