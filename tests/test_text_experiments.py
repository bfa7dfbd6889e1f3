"""Tests for dl4keras.text_experiments (tutorial 05's models and comparison loops)."""

import math

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops
from sklearn.linear_model import LogisticRegression

from dl4keras import label_budget, lm, text_experiments


def _next_byte_model(length=None):
    """A stub byte LM: at every position it predicts the input byte + 1 (logits 10 vs 0)."""
    tokens = keras.Input((length,), dtype="int32")
    logits = keras.layers.Lambda(lambda t: 10.0 * ops.one_hot((t + 1) % 256, 256))(tokens)
    return keras.Model(tokens, logits)


def test_warmup_cosine_rises_to_the_peak_then_decays_to_zero():
    schedule = text_experiments.warmup_cosine(200, peak=2e-3)
    assert schedule.warmup_steps == 10  # a twentieth of the steps by default
    values = [float(schedule(s)) for s in (0, 5, 10, 105, 200)]
    assert values[0] == 0.0
    assert values[1] == pytest.approx(1e-3)  # half way up
    assert values[2] == pytest.approx(2e-3)
    assert values[3] == pytest.approx(1e-3)  # half way down the cosine (95 of 190 steps)
    assert values[4] == pytest.approx(0.0, abs=1e-9)  # the last step
    assert text_experiments.warmup_cosine(10).warmup_steps == 1  # at least one step
    assert text_experiments.warmup_cosine(100, warmup_steps=30).warmup_steps == 30
    with pytest.raises(ValueError, match="argument `steps`"):
        text_experiments.warmup_cosine(0)
    one = text_experiments.warmup_cosine(1)  # one step: no warmup, at the peak
    assert one.warmup_steps == 0 and float(one(0)) == pytest.approx(3e-3)
    with pytest.raises(ValueError, match="argument `peak`"):
        text_experiments.warmup_cosine(10, peak=-1.0)
    with pytest.raises(ValueError, match="argument `warmup_steps`"):
        text_experiments.warmup_cosine(10, warmup_steps=10)
    with pytest.raises(ValueError, match="argument `warmup_steps`"):
        text_experiments.warmup_cosine(10, warmup_steps=-1)


def test_encoder_lm_causal_mask_hides_later_tokens_and_bidirectional_does_not():
    x = np.array([[1, 2, 3, 4, 5, 6]], "int32")
    changed = x.copy()
    changed[0, 4:] = [9, 9]
    causal = text_experiments.encoder_lm(10, 6, hidden_dim=8, causal=True, seed=0)
    out, out2 = (ops.convert_to_numpy(causal(v)) for v in (x, changed))
    assert np.abs(out[:, :4] - out2[:, :4]).max() <= 1e-6
    assert np.abs(out[:, 4:] - out2[:, 4:]).max() > 1e-3
    both = text_experiments.encoder_lm(10, 6, hidden_dim=8, seed=0)
    out, out2 = (ops.convert_to_numpy(both(v)) for v in (x, changed))
    assert np.abs(out[:, :4] - out2[:, :4]).max() > 1e-3  # position 0 sees position 5
    again = text_experiments.encoder_lm(10, 6, hidden_dim=8, seed=0)
    for a, b in zip(both.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)  # the seed fixes the initial weights
    with pytest.raises(ValueError, match="argument `hidden_dim`"):
        text_experiments.encoder_lm(10, 6, hidden_dim=10)
    with pytest.raises(ValueError, match="argument `sequence_length`"):
        text_experiments.encoder_lm(10, 0)


def test_train_language_model_takes_one_pass_and_lowers_the_loss():
    ids = np.frombuffer(b"abcabcabd " * 100, dtype="uint8").astype("int32")
    x, y = lm.windows(ids, count=100, length=8, seed=0)
    model = text_experiments.encoder_lm(256, 8, hidden_dim=16, causal=True, seed=0)
    before = text_experiments.last_position_loss(model, x, y)
    seconds = text_experiments.train_language_model(model, x, y, batch_size=16, peak=1e-2)
    assert seconds > 0
    assert int(model.optimizer.iterations) == math.ceil(100 / 16)  # one pass
    assert text_experiments.last_position_loss(model, x, y) < before - 1.0
    with pytest.raises(ValueError, match="same shape"):
        text_experiments.train_language_model(model, x, y[:, :4], batch_size=16)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        text_experiments.train_language_model(model, x, y, batch_size=0)


def test_last_position_loss_is_the_cross_entropy_at_the_last_position():
    model = text_experiments.encoder_lm(10, 5, hidden_dim=8, seed=1)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 10, (7, 5)), rng.integers(0, 10, (7, 5))
    logits = ops.convert_to_numpy(model(x))[:, -1].astype("float64")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean(logp[np.arange(7), y[:, -1]])
    assert text_experiments.last_position_loss(model, x, y) == pytest.approx(expected, rel=1e-5)


def test_masked_token_accuracy_scores_only_the_chosen_positions():
    model = _next_byte_model(4)
    inputs = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    labels = np.array([[2, 0, 4, 0], [0, 0, 0, 9]])  # the model predicts inputs + 1
    weights = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], "float32")
    # chosen: (0,0) right, (0,1) wrong, (1,2) wrong, (1,3) right
    assert text_experiments.masked_token_accuracy(model, inputs, labels, weights) == 0.5
    with pytest.raises(ValueError, match="chooses no position"):
        text_experiments.masked_token_accuracy(model, inputs, labels, np.zeros((2, 4)))


def test_compare_masked_lms_bidirectional_sees_what_the_causal_model_cannot():
    # Windows of one repeated token: a masked token is any other token of its
    # window. At position 0 only the right is there, which the causal model cannot see.
    windows = np.repeat(np.random.default_rng(0).integers(0, 8, (256, 1)), 8, axis=1)
    keras.utils.set_random_seed(0)
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=9,
        mask_selection_rate=0.2,
        mask_token_id=8,
        mask_selection_length=8,
        unselectable_token_ids=[],
    )
    train = lm.masked_lm_targets(windows, generator(windows))
    labels = np.repeat(np.arange(8)[:, None], 8, axis=1)  # each token once, masked at 0
    inputs, weights = labels.copy(), np.zeros((8, 8), "float32")
    inputs[:, 0], weights[:, 0] = 8, 1.0
    scores = text_experiments.compare_masked_lms(
        train, (inputs, labels, weights), seeds=(0,), vocabulary_size=9, hidden_dim=16, batch_size=8
    )
    # Near-perfect (1.0 on TensorFlow and PyTorch, 7 of 8 on JAX: each backend draws its own
    # initial weights and dropout from the same seed), far above chance; the causal model is at it.
    assert scores["bidirectional"][0] >= 0.75
    assert scores["causal mask"][0] <= 0.25  # chance is 1/8
    with pytest.raises(ValueError, match="argument `seeds`"):
        text_experiments.compare_masked_lms(train, train, seeds=(), vocabulary_size=9)


def test_generate_text_decodes_the_prompt_and_its_continuation():
    model = _next_byte_model()
    assert text_experiments.generate_text(model, "ab", max_length=6) == ["abcdef"]
    assert text_experiments.generate_text(model, "é", max_length=3, count=2) == ["é\ufffd"] * 2
    with pytest.raises(ValueError, match="argument `prompt`"):
        text_experiments.generate_text(model, "", max_length=4)
    with pytest.raises(ValueError, match="argument `count`"):
        text_experiments.generate_text(model, "a", max_length=4, count=0)


def test_compare_decoding_measures_the_continuations_without_the_prompt(capsys):
    model = _next_byte_model()
    rows = text_experiments.compare_decoding(model, "a a ", {"greedy": "greedy"}, 12, count=2)
    continuation = bytes(range(0x21, 0x29)).decode()  # after " " (0x20): 8 bytes, each + 1
    assert rows["greedy"]["repetition"] == lm.repetition_rate(continuation, n=4)
    assert rows["greedy"]["distinct-2"] == lm.distinct_n([continuation] * 2, n=2)
    assert "greedy" in capsys.readouterr().out
    with pytest.raises(ValueError, match="argument `samplers`"):
        text_experiments.compare_decoding(model, "a", {}, 4, count=1)


def test_tokens_per_second_times_the_second_call_only():
    calls = []
    speed = text_experiments.tokens_per_second(lambda: calls.append(1), tokens=100)
    assert len(calls) == 2 and speed > 0
    with pytest.raises(ValueError, match="argument `tokens`"):
        text_experiments.tokens_per_second(lambda: None, tokens=0)


def test_byte_ids_shift_bytes_by_one_and_pad_with_zero():
    rows = text_experiments.byte_ids(["é", "abcdef", ""], length=3)
    assert rows.dtype == np.int32
    assert rows.tolist() == [[0xC3 + 1, 0xA9 + 1, 0], [98, 99, 100], [0, 0, 0]]


def test_text_classifier_gives_class_logits_from_byte_ids():
    model = text_experiments.text_classifier(num_classes=3, length=8, hidden_dim=8, seed=0)
    x = text_experiments.byte_ids(["ab", "hello world"], length=8)
    assert tuple(model(x).shape) == (2, 3)
    with pytest.raises(ValueError, match="argument `num_classes`"):
        text_experiments.text_classifier(num_classes=0)


def test_per_class_indices_draws_without_replacement_and_repeats_with_the_seed():
    labels = np.array([0, 1, 2] * 5)
    pick = text_experiments.per_class_indices(labels, 3, seed=4)
    assert np.bincount(labels[pick]).tolist() == [3, 3, 3]
    assert len(set(pick.tolist())) == 9
    np.testing.assert_array_equal(pick, text_experiments.per_class_indices(labels, 3, seed=4))
    with pytest.raises(ValueError, match="Class 0 has 5 examples"):
        text_experiments.per_class_indices(labels, 6, seed=0)


def _toy_task():
    words = {0: ["apple", "pear", "plum"], 1: ["car", "bus", "train"]}
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 10)
    kind = {0: "fruit", 1: "vehicle"}  # a word every text of the class has
    texts = [" ".join([kind[c], *rng.choice(words[c], 2)]) for c in labels]
    return texts, labels


def test_transfer_methods_train_on_the_drawn_examples_only():
    texts, labels = _toy_task()
    vectors = np.eye(2)[labels] + 0.1 * np.random.default_rng(1).normal(size=(20, 2))
    methods = text_experiments.transfer_methods(
        (texts, labels), (texts, labels), {"frozen toy": (vectors, vectors)}, epochs=1, length=16
    )
    assert list(methods) == ["bag of words", "from scratch", "frozen toy"]
    pick = text_experiments.per_class_indices(labels, 3, seed=0)
    assert methods["bag of words"](pick, 0) == 1.0  # "fruit" or "vehicle" gives it away
    expected = LogisticRegression(max_iter=2000).fit(vectors[pick], labels[pick])
    assert methods["frozen toy"](pick, 0) == expected.score(vectors, labels)
    assert 0.0 <= methods["from scratch"](pick, 0) <= 1.0
    result = label_budget.compare_label_budgets(
        methods, lambda n, s: (text_experiments.per_class_indices(labels, n, s),), (2,), (0,), False
    )
    assert result.mean("bag of words")[0] == 1.0
    with pytest.raises(ValueError, match="one row per text"):
        text_experiments.transfer_methods(
            (texts, labels), (texts, labels), {"x": (vectors[:3], vectors)}
        )


def test_fine_tuning_method_restores_the_starting_weights_before_each_run():
    texts, labels = _toy_task()
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
        set(" ".join(texts).split())
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=8)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=1,
        num_heads=2,
        hidden_dim=8,
        intermediate_dim=16,
        max_sequence_length=8,
    )
    classifier = keras_hub.models.BertTextClassifier(backbone, 2, preprocessor=preprocessor)
    start = [w.copy() for w in classifier.get_weights()]
    fine_tune = text_experiments.fine_tuning_method(
        classifier, (texts, labels), (texts, labels), epochs=2, batch_size=4, peak=1e-2
    )
    pick = text_experiments.per_class_indices(labels, 4, seed=0)
    first = fine_tune(pick, 0)
    changed = [w for w, s in zip(classifier.get_weights(), start) if not np.array_equal(w, s)]
    assert changed, "fine-tuning changed no weight"
    assert fine_tune(pick, 0) == pytest.approx(first)  # the same start, the same result
    with pytest.raises(ValueError, match="argument `epochs`"):
        text_experiments.fine_tuning_method(classifier, (texts, labels), (texts, labels), 0)
