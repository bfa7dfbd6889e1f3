"""The text experiments of tutorial 05: small language models, decoding and text transfer.

Tutorial 05 builds each idea once in its cells (a GPT trained with a warmup +
cosine schedule, the n-gram baselines, BERT's masking rule); the models and
loops it then repeats live here, so that the tutorial shows the evidence, not
the bookkeeping:

- `warmup_cosine`: linear warmup, then cosine decay (Keras's `CosineDecay`
  with `warmup_target`);
- `train_language_model`: compile (AdamW, cross-entropy on logits) and train
  for one pass over the windows, timed;
- `encoder_lm`: encoder blocks over token + position embeddings with a score
  per vocabulary entry, bidirectional (BERT) or with a causal mask;
- `last_position_loss`: the loss at the last position of each window, where
  no later token is in view, as in generation;
- `masked_token_accuracy` and `compare_masked_lms`: the same masked LM
  trained bidirectional and with a causal mask, over seeds;
- `generate_text` and `compare_decoding`: byte-level continuations of a
  prompt through `dl4keras.gpt.generate`, and the repetition rate and
  distinct-2 of each KerasHub sampler;
- `tokens_per_second`: the generation speed of a function, after a warm-up;
- `byte_ids`, `text_classifier`, `per_class_indices`, `transfer_methods` and
  `fine_tuning_method`: text-classification methods (bag of words, a small
  Transformer from scratch, linear heads on frozen sentence embeddings, a
  fine-tuned KerasHub classifier) for `label_budget.compare_label_budgets`.

Examples:
    ```python
    import numpy as np
    from dl4keras import lm, text_experiments

    # A causal byte-level LM on a repetitive text, trained for one pass:
    ids = np.frombuffer(b"abcabcabd " * 200, dtype="uint8").astype("int32")
    x, y = lm.windows(ids, count=256, length=8, seed=0)
    model = text_experiments.encoder_lm(256, 8, hidden_dim=16, causal=True, seed=0)
    before = text_experiments.last_position_loss(model, x, y)
    seconds = text_experiments.train_language_model(model, x, y, batch_size=16, peak=1e-2)
    print(text_experiments.last_position_loss(model, x, y) < before)  # True: it learnt
    print(text_experiments.generate_text(model, "abca", max_length=8))  # e.g. ['abcabcab']
    ```
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
from keras import ops

from dl4keras import _validation, gpt, lm
from dl4keras.training import schedules
from dl4keras.transformer import PositionEmbedding, TransformerEncoderBlock

__all__ = [
    "byte_ids",
    "compare_decoding",
    "compare_masked_lms",
    "encoder_lm",
    "fine_tuning_method",
    "generate_text",
    "last_position_loss",
    "masked_token_accuracy",
    "per_class_indices",
    "text_classifier",
    "tokens_per_second",
    "train_language_model",
    "transfer_methods",
    "warmup_cosine",
]


def warmup_cosine(steps, peak=3e-3, warmup_steps=None):
    """A learning rate rising linearly from 0 to `peak`, then falling to 0 along a cosine.

    `dl4keras.training.warmup_cosine(peak, steps, warmup_steps)` (Keras's
    `CosineDecay` built safely: the cosine runs over the steps left after
    the warmup, so that a training of `steps` steps ends at 0), with a
    default warmup of a twentieth of the steps.

    Args:
        steps: total number of optimizer steps, warmup included.
        peak: the learning rate at the end of the warmup.
        warmup_steps: steps of the warmup, fewer than `steps` (0: none,
            start at `peak`); default a twentieth of `steps`, at least 1
            when `steps` > 1.

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Raises:
        ValueError: if `steps` is not a positive integer, `peak` not a
            positive float, or `warmup_steps` not an integer in
            `[0, steps)`.

    Examples:
        >>> from dl4keras.text_experiments import warmup_cosine
        >>> schedule = warmup_cosine(100, peak=1e-3)  # 5 warmup steps, 95 decay steps
        >>> [round(float(schedule(s)), 6) for s in (0, 5, 100)]
        [0.0, 0.001, 0.0]
    """
    steps = _validation.positive_int("steps", steps)
    peak = _validation.positive_float("peak", peak)
    if warmup_steps is None:
        warmup_steps = max(1, steps // 20) if steps > 1 else 0
    return schedules.warmup_cosine(peak, steps, warmup_steps)


def _logits_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train_language_model(model, x, y, batch_size, sample_weight=None, peak=3e-3):
    """Compiles `model` (AdamW, `warmup_cosine`) and trains it for one pass over `x`.

    The loss is the cross-entropy of the logits against the token ids `y` at
    every position (`sample_weight` keeps only some positions, e.g. a masked
    LM's chosen tokens). One pass: every window is seen once, in
    `ceil(len(x) / batch_size)` steps.

    Args:
        model: a Keras model mapping token ids `(batch, T)` to logits
            `(batch, T, vocabulary_size)`.
        x: input token ids, shape `(N, T)`.
        y: target token ids, shape `(N, T)`.
        batch_size: windows per step.
        sample_weight: optional weights, shape `(N, T)`.
        peak: the peak learning rate.

    Returns:
        The training time in seconds.

    Raises:
        ValueError: if `batch_size` is not a positive integer, or `x` and `y`
            differ in shape.
    """
    batch_size = _validation.positive_int("batch_size", batch_size)
    if np.shape(x) != np.shape(y):
        raise ValueError(
            f"`x` and `y` must have the same shape. Received: x.shape={np.shape(x)}, "
            f"y.shape={np.shape(y)}"
        )
    steps = math.ceil(len(x) / batch_size)
    model.compile(keras.optimizers.AdamW(warmup_cosine(steps, peak)), _logits_loss())
    start = time.perf_counter()
    model.fit(x, y, sample_weight=sample_weight, batch_size=batch_size, epochs=1, verbose=0)
    return time.perf_counter() - start


def _embedded_tokens(length, vocabulary_size, hidden_dim, seed, mask_zero=False):
    """The int32 token input of a small text Transformer and its token embeddings.

    Checks that `hidden_dim` splits into its 4 heads and seeds Keras first
    (when `seed` is not None), so that the layers built after it start from
    the same weights on every run.
    """
    if hidden_dim % 4:
        raise _validation.invalid("hidden_dim", "a multiple of 4 (the number of heads)", hidden_dim)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    tokens = keras.Input((length,), dtype="int32")
    return tokens, keras.layers.Embedding(vocabulary_size, hidden_dim, mask_zero=mask_zero)(tokens)


def encoder_lm(
    vocabulary_size, sequence_length, hidden_dim=128, num_layers=2, causal=False, seed=None
):
    """Encoder blocks over token + position embeddings, a score per vocabulary entry.

    Without `causal`, every position sees the whole window (BERT's
    bidirectional attention); with it, position `t` sees positions `0..t`
    only, as in GPT. Each block is a `TransformerEncoderBlock` with 4 heads
    and an MLP twice as wide as `hidden_dim`; a final LayerNorm and a
    `Dense(vocabulary_size)` give the logits.

    Args:
        vocabulary_size: number of token ids.
        sequence_length: tokens per window (the model's fixed input length).
        hidden_dim: width of the embeddings and blocks (a multiple of 4).
        num_layers: number of encoder blocks.
        causal: whether to mask attention to later positions.
        seed: optional seed of the initial weights
            (`keras.utils.set_random_seed`).

    Returns:
        A functional `keras.Model`: int token ids `(batch, sequence_length)`
        to logits `(batch, sequence_length, vocabulary_size)`.

    Raises:
        ValueError: if a size is not a positive integer, or `hidden_dim` is
            not a multiple of 4.

    Examples:
        >>> from dl4keras.text_experiments import encoder_lm
        >>> model = encoder_lm(vocabulary_size=10, sequence_length=5, hidden_dim=8, causal=True)
        >>> tuple(model(np.zeros((2, 5), "int32")).shape)
        (2, 5, 10)
    """
    vocabulary_size = _validation.positive_int("vocabulary_size", vocabulary_size)
    sequence_length = _validation.positive_int("sequence_length", sequence_length)
    hidden_dim = _validation.positive_int("hidden_dim", hidden_dim)
    num_layers = _validation.positive_int("num_layers", num_layers)
    tokens, h = _embedded_tokens(sequence_length, vocabulary_size, hidden_dim, seed)
    h = PositionEmbedding(sequence_length)(h)
    mask = np.tril(np.ones((sequence_length, sequence_length), bool))[None] if causal else None
    for _ in range(num_layers):
        h = TransformerEncoderBlock(hidden_dim, 4, 2 * hidden_dim)(h, attention_mask=mask)
    h = keras.layers.LayerNormalization(epsilon=1e-5)(h)
    return keras.Model(tokens, keras.layers.Dense(vocabulary_size)(h))


def last_position_loss(model, x, y, batch_size=64):
    """Mean cross-entropy at the last position of each window.

    At the last position no later token is in the window, whatever the
    model's mask: the situation of generation. A model that learnt to read
    its target from the input (no causal mask) cannot do it there.

    Args:
        model: token ids `(N, T)` to logits `(N, T, vocabulary_size)`.
        x: input token ids, shape `(N, T)`.
        y: target token ids, shape `(N, T)`.
        batch_size: windows per prediction batch.

    Returns:
        The mean negative log-likelihood (nats), a float.

    Examples:
        >>> from dl4keras.text_experiments import encoder_lm, last_position_loss
        >>> model = encoder_lm(vocabulary_size=10, sequence_length=4, hidden_dim=8, seed=0)
        >>> x = np.zeros((3, 4), "int32")
        >>> 1.5 < last_position_loss(model, x, x) < 4  # about log(10) before training
        True
    """
    logits = ops.convert_to_numpy(model.predict(x, batch_size=batch_size, verbose=0))[:, -1]
    logp = ops.convert_to_numpy(ops.log_softmax(logits, axis=-1))
    return float(-logp[np.arange(len(y)), np.asarray(y)[:, -1]].mean())


def masked_token_accuracy(model, inputs, labels, weights, batch_size=64):
    """The share of the chosen (masked) positions whose token the model predicts.

    Args:
        model: token ids `(N, T)` to logits `(N, T, vocabulary_size)`.
        inputs: masked token ids, shape `(N, T)`.
        labels: the original token ids, shape `(N, T)`.
        weights: `> 0` at the chosen positions, shape `(N, T)` (the
            `sample_weight` of `lm.masked_lm_targets`).
        batch_size: windows per prediction batch.

    Returns:
        The accuracy over the chosen positions, a float.

    Raises:
        ValueError: if no position is chosen.
    """
    chosen = np.asarray(weights) > 0
    if not chosen.any():
        raise ValueError("`weights` chooses no position: nothing to score.")
    predicted = np.argmax(model.predict(inputs, batch_size=batch_size, verbose=0), axis=-1)
    return float((predicted == np.asarray(labels))[chosen].mean())


def compare_masked_lms(train, validation, seeds, vocabulary_size, hidden_dim=96, batch_size=32):
    """The same masked LM trained bidirectional and with a causal mask: accuracies per seed.

    For each seed, two `encoder_lm`s with the same initial weights, one
    bidirectional and one causal, train for one pass over `train`
    (`train_language_model`, weighted to the chosen positions) and are
    scored on `validation` (`masked_token_accuracy`).

    Args:
        train: `(inputs, labels, weights)` of `lm.masked_lm_targets`.
        validation: the same for held-out windows.
        seeds: one pair of models per seed.
        vocabulary_size: number of token ids, the mask token included.
        hidden_dim: width of the models.
        batch_size: windows per step.

    Returns:
        `{"bidirectional": [accuracy per seed], "causal mask": [...]}`.

    Raises:
        ValueError: if `seeds` is empty.

    Examples:
        >>> import keras_hub
        >>> from dl4keras import lm
        >>> from dl4keras.text_experiments import compare_masked_lms
        >>> ids = np.frombuffer(b"abcd" * 64, dtype="uint8").astype("int32") - 97
        >>> generator = keras_hub.layers.MaskedLMMaskGenerator(
        ...     vocabulary_size=5, mask_selection_rate=0.3, mask_token_id=4,
        ...     mask_selection_length=8, unselectable_token_ids=[])
        >>> windows = ids.reshape(-1, 8)
        >>> data = lm.masked_lm_targets(windows, generator(windows))
        >>> scores = compare_masked_lms(data, data, seeds=(0,), vocabulary_size=5, hidden_dim=8)
        >>> sorted(scores), len(scores["causal mask"])
        (['bidirectional', 'causal mask'], 1)
    """
    seeds = tuple(seeds)
    if not seeds:
        raise _validation.invalid("seeds", "at least one seed", seeds)
    length = np.shape(train[0])[1]
    scores = {}
    for causal in (False, True):
        name = "causal mask" if causal else "bidirectional"
        scores[name] = []
        for seed in seeds:
            net = encoder_lm(vocabulary_size, length, hidden_dim, causal=causal, seed=seed)
            train_language_model(net, train[0], train[1], batch_size, sample_weight=train[2])
            scores[name].append(masked_token_accuracy(net, *validation))
    return scores


def _prompt_bytes(prompt):
    if not isinstance(prompt, str) or not prompt:
        raise _validation.invalid("prompt", "a non-empty string", prompt)
    return np.frombuffer(prompt.encode("utf-8"), dtype="uint8").astype("int32")


def generate_text(model, prompt, max_length, sampler="greedy", seed=0, count=1):
    """Continuations of `prompt` by a byte-level language model, decoded as UTF-8.

    The prompt's UTF-8 bytes are the token ids (KerasHub's `ByteTokenizer`
    gives the same ids); `dl4keras.gpt.generate` extends them to
    `max_length` tokens with the sampler; bytes that are not valid UTF-8
    decode to "�".

    Args:
        model: a causal LM over the 256 byte values (e.g. a `gpt.GPT`).
        prompt: the text to continue.
        max_length: tokens in each output, prompt included.
        sampler: a KerasHub sampler or its name (as `gpt.generate`).
        seed: seed of a random sampler.
        count: number of continuations (one batch).

    Returns:
        A list of `count` strings, each the prompt and its continuation.

    Raises:
        ValueError: if `prompt` is not a non-empty string or `count` not a
            positive integer.

    Examples:
        >>> from dl4keras import gpt
        >>> from dl4keras.text_experiments import generate_text
        >>> model = gpt.GPT(vocabulary_size=256, sequence_length=16, hidden_dim=16,
        ...                 num_layers=1, num_heads=2, mlp_dim=32)
        >>> texts = generate_text(model, "def ", max_length=12, count=2)
        >>> len(texts), texts[0].startswith("def ")
        (2, True)
    """
    count = _validation.positive_int("count", count)
    prompts = np.tile(_prompt_bytes(prompt), (count, 1))
    ids = gpt.generate(model, prompts, max_length=max_length, sampler=sampler, seed=seed)
    return [bytes(np.asarray(row, "uint8").tolist()).decode("utf-8", "replace") for row in ids]


def compare_decoding(model, prompt, samplers, max_length, count, seed=0, verbose=True):
    """Repetition rate and distinct-2 of each sampler's continuations of one prompt.

    Each sampler writes `count` continuations (the prompt removed);
    `lm.repetition_rate` (share of 4-byte strings already seen earlier in
    the same text, averaged over the texts) and `lm.distinct_n` (share of
    distinct word pairs over all texts) measure how repetitive they are.

    Args:
        model: a byte-level causal LM (see `generate_text`).
        prompt: the text to continue.
        samplers: `{name: sampler}`, KerasHub samplers or their names.
        max_length: tokens in each output, prompt included.
        count: continuations per sampler.
        seed: seed of the random samplers.
        verbose: print one line per sampler, with the start of an example.

    Returns:
        `{name: {"repetition": float, "distinct-2": float}}`.

    Raises:
        ValueError: if `samplers` is not a non-empty dict.

    Examples:
        >>> from dl4keras import gpt
        >>> from dl4keras.text_experiments import compare_decoding
        >>> model = gpt.GPT(vocabulary_size=256, sequence_length=16, hidden_dim=16,
        ...                 num_layers=1, num_heads=2, mlp_dim=32)
        >>> rows = compare_decoding(model, "a b ", {"greedy": "greedy"}, 16, count=2,
        ...                         verbose=False)
        >>> sorted(rows["greedy"])
        ['distinct-2', 'repetition']
    """
    if not isinstance(samplers, dict) or not samplers:
        raise _validation.invalid("samplers", "a non-empty dict {name: sampler}", samplers)
    start = len(prompt)
    rows = {}
    for name, sampler in samplers.items():
        texts = [t[start:] for t in generate_text(model, prompt, max_length, sampler, seed, count)]
        rows[name] = {
            "repetition": float(np.mean([lm.repetition_rate(t, n=4) for t in texts])),
            "distinct-2": float(lm.distinct_n(texts, n=2)),
        }
        if verbose:
            print(
                f"{name:16s} repetition {rows[name]['repetition']:.2f}  "
                f"distinct-2 {rows[name]['distinct-2']:.2f}  e.g. {texts[0][:60]!r}"
            )
    return rows


def tokens_per_second(generate, tokens):
    """How many tokens a generation function makes per second, after one warm-up call.

    The first call compiles (traces) the function and is not timed; the
    second is.

    Args:
        generate: a function of no argument that generates `tokens` tokens.
        tokens: the number of tokens one call generates (all sequences of
            the batch together).

    Returns:
        Tokens per second of the second call, a float.

    Examples:
        >>> from dl4keras.text_experiments import tokens_per_second
        >>> tokens_per_second(lambda: sum(range(1000)), tokens=10) > 0
        True
    """
    tokens = _validation.positive_int("tokens", tokens)
    generate()
    start = time.perf_counter()
    generate()
    return tokens / (time.perf_counter() - start)


def byte_ids(strings, length):
    """UTF-8 bytes of each string as token ids `byte + 1`, cut or padded with 0 to `length`.

    Id 0 is padding (for `mask_zero=True` embeddings), so the 256 byte
    values become ids 1 to 256.

    Args:
        strings: a list of texts.
        length: tokens per row.

    Returns:
        An int32 array of shape `(len(strings), length)`.

    Examples:
        >>> from dl4keras.text_experiments import byte_ids
        >>> byte_ids(["ab", "abcdef"], length=4).tolist()
        [[98, 99, 0, 0], [98, 99, 100, 101]]
    """
    length = _validation.positive_int("length", length)
    rows = np.zeros((len(strings), length), "int32")
    for i, text in enumerate(strings):
        encoded = list(text.encode("utf-8"))[:length]
        rows[i, : len(encoded)] = np.asarray(encoded, "int32") + 1
    return rows


def text_classifier(num_classes, length=128, hidden_dim=64, seed=None):
    """A small Transformer text classifier from scratch, over `byte_ids` inputs.

    Byte embeddings (id 0 masked as padding) plus learned positions, one
    `TransformerEncoderBlock` (4 heads, MLP twice as wide), the mean over
    the real tokens and a linear layer: the class logits.

    Args:
        num_classes: number of classes.
        length: tokens per input row.
        hidden_dim: width of the embeddings and the block (a multiple of 4).
        seed: optional seed of the initial weights.

    Returns:
        A functional `keras.Model`: `(batch, length)` ids to `(batch,
        num_classes)` logits.

    Raises:
        ValueError: if a size is not a positive integer, or `hidden_dim` is
            not a multiple of 4.

    Examples:
        >>> from dl4keras.text_experiments import byte_ids, text_classifier
        >>> model = text_classifier(num_classes=3, length=8, hidden_dim=8, seed=0)
        >>> tuple(model(byte_ids(["hi", "hello"], length=8)).shape)
        (2, 3)
    """
    num_classes = _validation.positive_int("num_classes", num_classes)
    length = _validation.positive_int("length", length)
    hidden_dim = _validation.positive_int("hidden_dim", hidden_dim)
    tokens, h = _embedded_tokens(length, 257, hidden_dim, seed, mask_zero=True)
    h = TransformerEncoderBlock(hidden_dim, 4, 2 * hidden_dim)(PositionEmbedding(length)(h))
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(tokens, keras.layers.Dense(num_classes)(h))


def per_class_indices(labels, per_class, seed):
    """Indices of `per_class` random examples of every class, class by class.

    Args:
        labels: int class labels `0..C-1`, shape `(N,)`.
        per_class: examples drawn (without replacement) from each class.
        seed: seed of the draw.

    Returns:
        An int array of `C * per_class` indices.

    Raises:
        ValueError: if `per_class` is not a positive integer or a class has
            fewer than `per_class` examples.

    Examples:
        >>> from dl4keras.text_experiments import per_class_indices
        >>> labels = np.array([0, 0, 0, 1, 1, 1])
        >>> np.sort(labels[per_class_indices(labels, 2, seed=0)]).tolist()
        [0, 0, 1, 1]
    """
    per_class = _validation.positive_int("per_class", per_class)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(int(labels.max()) + 1):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(
                f"Class {c} has {len(members)} examples, fewer than per_class={per_class}."
            )
        picks.append(rng.choice(members, per_class, replace=False))
    return np.concatenate(picks)


def _fit_logistic(x, y):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(x, y)


def transfer_methods(train, test, embeddings=None, epochs=20, length=128):
    """Text-classification methods for `label_budget.compare_label_budgets`.

    Each method is `fn(indices, seed)`: it trains on the training examples
    `indices` (a draw of `per_class_indices`) and returns its test accuracy.

    - `"bag of words"`: word counts (scikit-learn's `CountVectorizer`, fit
      on the drawn texts) and logistic regression: no word order;
    - `"from scratch"`: the small Transformer of `text_classifier` on
      `byte_ids`, AdamW at 1e-3, `epochs` passes in batches of 16;
    - one per entry of `embeddings`: logistic regression on precomputed
      (frozen) sentence embeddings, e.g. MiniLM's.

    Args:
        train: `(texts, labels)` of the training split (labels `0..C-1`).
        test: `(texts, labels)` of the test split.
        embeddings: optional `{name: (train_vectors, test_vectors)}`, one
            row per text.
        epochs: training passes of the Transformer from scratch.
        length: bytes per text for the Transformer.

    Returns:
        `{name: fn(indices, seed) -> accuracy}`.

    Raises:
        ValueError: if an embedding's rows do not match the texts.

    Examples:
        >>> from dl4keras import label_budget
        >>> from dl4keras.text_experiments import per_class_indices, transfer_methods
        >>> texts = ["red apple", "green apple", "fast car", "slow car"] * 3
        >>> labels = np.array([0, 0, 1, 1] * 3)
        >>> methods = transfer_methods((texts, labels), (texts, labels), epochs=1, length=8)
        >>> result = label_budget.compare_label_budgets(
        ...     methods, lambda n, seed: (per_class_indices(labels, n, seed),), budgets=(2,),
        ...     seeds=(0,), verbose=False)
        >>> result.methods
        ('bag of words', 'from scratch')
        >>> float(result.mean("bag of words")[0])
        1.0
    """
    from sklearn.feature_extraction.text import CountVectorizer

    texts, labels = list(train[0]), np.asarray(train[1])
    test_texts, test_labels = list(test[0]), np.asarray(test[1])
    for name, (train_vectors, test_vectors) in (embeddings or {}).items():
        if len(train_vectors) != len(texts) or len(test_vectors) != len(test_texts):
            raise ValueError(
                f"`embeddings[{name!r}]` must have one row per text: {len(texts)} training and "
                f"{len(test_texts)} test rows. Received: {len(train_vectors)} and "
                f"{len(test_vectors)}."
            )
    x_bytes, x_test_bytes = byte_ids(texts, length), byte_ids(test_texts, length)
    num_classes = int(labels.max()) + 1

    def bag_of_words(pick, seed):
        words = CountVectorizer().fit([texts[i] for i in pick])
        model = _fit_logistic(words.transform([texts[i] for i in pick]), labels[pick])
        return model.score(words.transform(test_texts), test_labels)

    def from_scratch(pick, seed):
        net = text_classifier(num_classes, length, seed=seed)
        net.compile(keras.optimizers.AdamW(1e-3), _logits_loss(), metrics=["accuracy"])
        net.fit(x_bytes[pick], labels[pick], batch_size=16, epochs=epochs, verbose=0)
        return net.evaluate(x_test_bytes, test_labels, verbose=0)[1]

    def frozen(train_vectors, test_vectors):
        vectors, test_vectors = np.asarray(train_vectors), np.asarray(test_vectors)
        return lambda pick, seed: _fit_logistic(vectors[pick], labels[pick]).score(
            test_vectors, test_labels
        )

    methods = {"bag of words": bag_of_words, "from scratch": from_scratch}
    methods.update({name: frozen(*vectors) for name, vectors in (embeddings or {}).items()})
    return methods


def fine_tuning_method(classifier, train, test, epochs, batch_size=8, peak=1e-4):
    """A `label_budget` method that fine-tunes a KerasHub text classifier, all its layers.

    Every run starts from the weights `classifier` has now (the pretrained
    backbone and its fresh head): they are stored here and restored before
    each run. Training is AdamW with `warmup_cosine` (warmup a tenth of the
    steps, a small peak learning rate, as BERT fine-tuning uses) on the raw
    texts, which the classifier's preprocessor tokenizes.

    Args:
        classifier: a `keras_hub.models.TextClassifier` with its
            preprocessor, e.g. `BertTextClassifier.from_preset(folder,
            num_classes=...)`.
        train: `(texts, labels)` of the training split.
        test: `(texts, labels)` of the test split.
        epochs: passes over the drawn examples.
        batch_size: texts per step.
        peak: the peak learning rate.

    Returns:
        `fn(indices, seed) -> test accuracy`.
    """
    epochs = _validation.positive_int("epochs", epochs)
    batch_size = _validation.positive_int("batch_size", batch_size)
    texts, labels = list(train[0]), np.asarray(train[1])
    pretrained = classifier.get_weights()

    def fine_tune(pick, seed):
        keras.utils.set_random_seed(seed)
        classifier.set_weights(pretrained)
        steps = epochs * math.ceil(len(pick) / batch_size)
        schedule = warmup_cosine(steps, peak, warmup_steps=max(1, steps // 10))
        classifier.compile(keras.optimizers.AdamW(schedule), _logits_loss(), metrics=["accuracy"])
        classifier.fit(
            [texts[i] for i in pick], labels[pick], batch_size=batch_size, epochs=epochs, verbose=0
        )
        return classifier.evaluate(list(test[0]), np.asarray(test[1]), batch_size=64, verbose=0)[1]

    return fine_tune
