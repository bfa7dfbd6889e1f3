"""Self-checks of Exercise 4.3: scaled dot-product attention and multi-head attention."""

from __future__ import annotations

import inspect
import math

import numpy as np

from dl4keras.check import _common

__all__ = ["multi_head_attention", "self_attention"]

_MASKED = -1e9
_common.MISTAKES[("shape", "weights")] = (
    "returned the attention weights instead of the output",
    "the output is the weighted sum of the values: weights @ value.",
)
_common.MISTAKES[("shape", "keys")] = (
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


def _scale_value(option, d_k, d_v, d_model=None, heads=None):
    return {
        "all_heads": 1.0 / math.sqrt(heads * d_k) if heads else None,
        "ok": 1.0 / math.sqrt(d_k),
        "none": 1.0,
        "d": 1.0 / d_k,
        "dv": 1.0 / math.sqrt(d_v),
        "model": 1.0 / math.sqrt(d_model) if d_model else None,
    }[option]


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
    for mistakes in _common.variants(families):
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
            raise _common.Feedback(
                f"{what} returned a {type(result).__name__} of {len(result)} "
                f"item{'' if len(result) == 1 else 's'}; return the "
                "output, or the tuple (output, weights)."
            )
        return _common.to_numpy(result[0], "the output"), _common.to_numpy(result[1], "the weights")
    return _common.to_numpy(result, "the output"), None


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

    report = _common.Report(verbose)
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
                raise _common.Feedback(
                    f"your function raised {type(error).__name__}: {error}.{hint}"
                ) from None
            got, got_weights = _split_result(result, "your function")
        except _common.Feedback as feedback:
            report.failed(header, [str(feedback)])
            continue
        ok = _common.close(got, expected, atol, atol)
        weights_ok = got_weights is None or _common.close(got_weights, expected_weights, atol, atol)
        if ok and weights_ok:
            report.passed(header)
            continue
        variants = list(_self_attention_variants(q, k, v, mask))
        detailed = report.first_failure is None  # numbers for the first failing case only
        if not ok:
            lines = _common.compare_lines(expected, got, "output", detailed)
            found = _shape_diagnosis(got, expected, expected_weights, k) or _common.diagnose(
                got, [(m, o) for m, o, _ in variants], expected
            )
            wrong = got
        else:
            lines = [
                "the output is right but the returned weights are not:",
                *_common.compare_lines(expected_weights, got_weights, "weights", detailed),
            ]
            found = _common.diagnose(
                got_weights, [(m, w) for m, _, w in variants], expected_weights
            )
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
        return [(_common.MISTAKES[("shape", "weights")],)]
    if got.shape[:-1] == expected.shape[:-1] and got.shape[-1] == key.shape[-1]:
        return [(_common.MISTAKES[("shape", "keys")],)]
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
    for mistakes in _common.variants(families):
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
        raise _common.Feedback(layout)
    for s, t in zip(source, target):
        if int(np.prod(s.shape)) != int(np.prod(t.shape)):
            raise _common.Feedback(layout)
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
    report = _common.Report(verbose)
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
                raise _common.Feedback(
                    f"{name}(num_heads={_HEADS}, key_dim={_KEY_DIM}) raised "
                    f"{type(error).__name__}: {error}"
                ) from None
            try:
                layer(query, value, **kwargs)  # builds the layer
                reshaped |= _copy_weights(layer, reference)
                result = layer(query, value, **kwargs)
            except _common.Feedback:
                raise
            except Exception as error:  # the learner's code failed
                raise _common.Feedback(
                    f"calling your layer raised {type(error).__name__}: {error}"
                ) from None
            if isinstance(result, (tuple, list)):
                result = result[0]
            got = _common.to_numpy(result, "the output")
        except _common.Feedback as feedback:
            report.failed(header, [str(feedback)])
            continue
        if _common.close(got, expected, atol, atol):
            report.passed(header)
            continue
        detailed = report.first_failure is None  # numbers for the first failing case only
        lines = _common.compare_lines(expected, got, "output", detailed)
        weights = [keras.ops.convert_to_numpy(w) for w in reference.weights]
        full_mask = mask
        if causal:
            full_mask = np.broadcast_to(
                np.tril(np.ones((query.shape[1], value.shape[1]), dtype=bool)),
                (query.shape[0], query.shape[1], value.shape[1]),
            )
        key_input = value if key is None else key
        found = _common.diagnose(
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

_common.MISTAKES.update(
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
