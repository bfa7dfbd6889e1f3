"""Language-modelling helpers: training windows, n-gram baselines, diversity, masked-LM targets.

Tutorial 05 builds these ideas in prose; the finished versions live here so
that the tutorial shows the models, not the bookkeeping:

- `windows`: random windows of a token stream, inputs and next-token targets;
- `ngram_perplexity`: the unigram and bigram baselines a language model must beat;
- `repetition_rate` and `distinct_n`: how repetitive generated text is;
- `masked_lm_targets`: the outputs of KerasHub's `MaskedLMMaskGenerator` as
  `(inputs, labels, sample_weight)` for `model.fit`;
- `mask_rates`: which share of the chosen tokens became `[MASK]`, a random
  token, or stayed (BERT's 80/10/10 rule).

Examples:
    ```python
    import numpy as np
    from dl4keras import lm

    ids = np.frombuffer(b"the cat sat on the mat. " * 20, dtype="uint8").astype("int32")
    x, y = lm.windows(ids, count=4, length=8, seed=0)
    print(x.shape, bool((x[:, 1:] == y[:, :-1]).all()))   # (4, 8) True
    print(lm.ngram_perplexity(ids, ids, order=2, vocabulary_size=256) < 3)  # True
    ```
"""

import numpy as np

from dl4keras import _validation

__all__ = [
    "distinct_n",
    "mask_rates",
    "masked_lm_targets",
    "ngram_perplexity",
    "repetition_rate",
    "windows",
]


def windows(ids, count, length, seed=None):
    """Random windows of a token stream: inputs and their next-token targets.

    Args:
        ids: 1-D array of token ids (a whole corpus).
        count: number of windows.
        length: tokens per window.
        seed: seed of the random window starts.

    Returns:
        Tuple `(inputs, targets)`, int arrays of shape `(count, length)`;
        `targets[:, t]` is the token after `inputs[:, t]`.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import lm
        >>> x, y = lm.windows(np.arange(10), count=2, length=3, seed=0)
        >>> x.tolist(), y.tolist()
        ([[5, 6, 7], [3, 4, 5]], [[6, 7, 8], [4, 5, 6]])
    """
    ids = np.asarray(ids)
    count = _validation.positive_int("count", count)
    length = _validation.positive_int("length", length)
    if ids.ndim != 1 or len(ids) < length + 2:
        raise ValueError(
            f"`ids` must be a 1-D token stream longer than length + 1 = {length + 1} tokens. "
            f"Received: ids.shape={ids.shape}"
        )
    starts = np.random.default_rng(seed).integers(0, len(ids) - length - 1, count)
    chunks = np.stack([ids[s : s + length + 1] for s in starts])
    return chunks[:, :-1], chunks[:, 1:]


def ngram_perplexity(train_ids, eval_ids, order, vocabulary_size):
    """Perplexity of a unigram (`order=1`) or bigram (`order=2`) model, add-one smoothed.

    The counts come from `train_ids`; the perplexity,
    `exp(mean negative log-likelihood)`, is measured on `eval_ids`.

    Args:
        train_ids: 1-D array of token ids to count.
        eval_ids: 1-D array of token ids to score.
        order: 1 (each token by its frequency) or 2 (by its frequency after
            the previous token).
        vocabulary_size: number of token ids (every id is `< vocabulary_size`).

    Returns:
        The perplexity, a float.

    Examples:
        >>> from dl4keras import lm
        >>> round(lm.ngram_perplexity([0, 1, 0, 1], [0, 1, 0, 1], 1, vocabulary_size=2), 2)
        2.0
        >>> round(lm.ngram_perplexity([0, 1, 0, 1], [0, 1, 0, 1], 2, vocabulary_size=2), 2)
        1.39
    """
    _validation.one_of("order", order, (1, 2))
    size = _validation.positive_int("vocabulary_size", vocabulary_size)
    train_ids, eval_ids = np.asarray(train_ids, "int64"), np.asarray(eval_ids, "int64")
    if order == 1:
        probabilities = (np.bincount(train_ids, minlength=size) + 1.0) / (len(train_ids) + size)
        return float(np.exp(-np.log(probabilities[eval_ids]).mean()))
    pairs = np.ones((size, size))
    np.add.at(pairs, (train_ids[:-1], train_ids[1:]), 1.0)
    probabilities = pairs / pairs.sum(axis=1, keepdims=True)
    return float(np.exp(-np.log(probabilities[eval_ids[:-1], eval_ids[1:]]).mean()))


def repetition_rate(text, n=4):
    """Share of the `n`-grams (characters) of `text` that already occurred earlier in it.

    0 for text that never repeats itself; close to 1 for a loop.

    Examples:
        >>> from dl4keras import lm
        >>> lm.repetition_rate("abcdefgh"), round(lm.repetition_rate("abababab"), 2)
        (0.0, 0.6)
    """
    n = _validation.positive_int("n", n)
    grams = [text[i : i + n] for i in range(len(text) - n + 1)]
    return 1.0 - len(set(grams)) / max(1, len(grams))


def distinct_n(texts, n=2):
    """Share of distinct word `n`-grams over several texts (Li et al., 2016): diversity.

    Examples:
        >>> from dl4keras import lm
        >>> lm.distinct_n(["a b c", "a b d"], n=2)
        0.75
    """
    n = _validation.positive_int("n", n)
    grams = [
        tuple(words[i : i + n])
        for words in (t.split() for t in texts)
        for i in range(len(words) - n + 1)
    ]
    return len(set(grams)) / max(1, len(grams))


def masked_lm_targets(ids, generator_outputs):
    """Turns `MaskedLMMaskGenerator` outputs into `(inputs, labels, sample_weight)`.

    KerasHub's `keras_hub.layers.MaskedLMMaskGenerator` returns the masked
    `token_ids` and, per sequence, the `mask_positions` it chose with
    `mask_weights` (0 for padding of the position list). A model that
    predicts every position is trained on the original `ids` as labels,
    weighted 1 at the chosen positions and 0 elsewhere.

    Args:
        ids: the original token ids, shape `(batch, T)`.
        generator_outputs: the dict the generator returned for `ids`.

    Returns:
        Tuple `(inputs, labels, sample_weight)` of NumPy arrays of shape
        `(batch, T)`: `sample_weight` is 1.0 where a token was chosen.

    Examples:
        ```python
        import keras_hub
        import numpy as np
        from dl4keras import lm

        ids = np.arange(1, 41).reshape(2, 20)
        generator = keras_hub.layers.MaskedLMMaskGenerator(
            vocabulary_size=50, mask_selection_rate=0.2, mask_token_id=0,
            mask_selection_length=8,
        )
        inputs, labels, weights = lm.masked_lm_targets(ids, generator(ids))
        print(weights.sum(axis=1))   # about 4 chosen tokens per sequence
        ```
    """
    ids = np.asarray(ids)
    out = {key: np.asarray(value) for key, value in generator_outputs.items()}
    missing = {"token_ids", "mask_positions", "mask_weights"} - set(out)
    if missing:
        raise ValueError(
            "`generator_outputs` must be what keras_hub.layers.MaskedLMMaskGenerator returns; "
            f"it lacks {sorted(missing)}. Received keys: {sorted(out)}"
        )
    if out["token_ids"].shape != ids.shape:
        raise ValueError(
            f"`generator_outputs` belong to inputs of shape {out['token_ids'].shape}, not "
            f"ids.shape={ids.shape}."
        )
    weights = np.zeros(ids.shape, "float32")
    rows = np.repeat(np.arange(len(ids)), out["mask_positions"].shape[1])
    chosen = out["mask_weights"].ravel() > 0
    weights[rows[chosen], out["mask_positions"].ravel()[chosen]] = 1.0
    return out["token_ids"], ids, weights


def mask_rates(original, masked, chosen, mask_token_id):
    """Of the chosen tokens, the shares that became `[MASK]`, a random token, or stayed.

    Args:
        original: token ids before masking.
        masked: token ids after masking (same shape).
        chosen: boolean array, True where a token was chosen.
        mask_token_id: the id of `[MASK]`.

    Returns:
        Dict with `"chosen"` (share of all tokens), `"[MASK]"`, `"random"` and
        `"unchanged"` (shares of the chosen ones; BERT: 0.15, 0.8, 0.1, 0.1).
        A random replacement that happens to draw the original token counts
        as unchanged.

    Examples:
        >>> import numpy as np
        >>> from dl4keras import lm
        >>> rates = lm.mask_rates(
        ...     np.array([5, 6, 7, 8]), np.array([0, 9, 7, 8]),
        ...     np.array([True, True, True, False]), mask_token_id=0)
        >>> {k: round(v, 2) for k, v in rates.items()}
        {'chosen': 0.75, '[MASK]': 0.33, 'random': 0.33, 'unchanged': 0.33}
    """
    original, masked, chosen = np.asarray(original), np.asarray(masked), np.asarray(chosen, bool)
    if not original.shape == masked.shape == chosen.shape:
        raise ValueError(
            "`original`, `masked` and `chosen` must have the same shape. Received: "
            f"{original.shape}, {masked.shape}, {chosen.shape}"
        )
    picked = max(1, int(chosen.sum()))
    became_mask = (masked == mask_token_id) & chosen
    unchanged = (masked == original) & chosen
    return {
        "chosen": float(chosen.mean()),
        "[MASK]": float(became_mask.sum() / picked),
        "random": float((chosen & ~became_mask & ~unchanged).sum() / picked),
        "unchanged": float(unchanged.sum() / picked),
    }
