"""Tests for dl4keras.lm, against hand computations."""

import math

import keras_hub
import numpy as np
import pytest

from dl4keras import lm


def test_windows_are_inputs_and_shifted_targets():
    ids = np.arange(100)
    x, y = lm.windows(ids, count=5, length=7, seed=3)
    assert x.shape == y.shape == (5, 7)
    np.testing.assert_array_equal(y, x + 1)  # consecutive ids: the target is the next one
    again, _ = lm.windows(ids, count=5, length=7, seed=3)
    np.testing.assert_array_equal(x, again)
    with pytest.raises(ValueError, match="longer than length"):
        lm.windows(np.arange(5), count=1, length=4)
    with pytest.raises(ValueError, match="argument `count`"):
        lm.windows(ids, count=0, length=4)


def test_ngram_perplexity_matches_a_hand_computation():
    train, held_out = [0, 1, 1, 2], [1, 2, 0]
    unigram = np.array([1 + 1, 2 + 1, 1 + 1]) / (4 + 3)
    expected = math.exp(-np.mean(np.log(unigram[held_out])))
    assert lm.ngram_perplexity(train, held_out, 1, 3) == pytest.approx(expected)
    pairs = np.ones((3, 3))
    for a, b in zip(train[:-1], train[1:]):
        pairs[a, b] += 1
    p = pairs / pairs.sum(1, keepdims=True)
    expected = math.exp(-np.mean(np.log([p[1, 2], p[2, 0]])))
    assert lm.ngram_perplexity(train, held_out, 2, 3) == pytest.approx(expected)
    with pytest.raises(ValueError, match="argument `order`"):
        lm.ngram_perplexity(train, held_out, 3, 3)


def test_repetition_and_distinct():
    assert lm.repetition_rate("abcdef", n=2) == 0.0
    assert lm.repetition_rate("aaaaa", n=2) == pytest.approx(0.75)
    assert lm.distinct_n(["a b a b"], n=2) == pytest.approx(2 / 3)
    assert lm.distinct_n([], n=2) == 0.0


def test_masked_lm_targets_and_rates_from_keras_hub():
    ids = np.random.default_rng(0).integers(1, 50, (64, 20))
    generator = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=50, mask_selection_rate=0.15, mask_token_id=0, mask_selection_length=10
    )
    out = generator(ids)
    inputs, labels, weights = lm.masked_lm_targets(ids, out)
    np.testing.assert_array_equal(labels, ids)
    assert weights.sum() == np.asarray(out["mask_weights"]).sum()
    np.testing.assert_array_equal(inputs[weights == 0], ids[weights == 0])  # untouched
    rates = lm.mask_rates(ids, inputs, weights > 0, mask_token_id=0)
    assert rates["chosen"] == pytest.approx(0.15, abs=0.03)
    assert rates["[MASK]"] + rates["random"] + rates["unchanged"] == pytest.approx(1.0)
    assert rates["[MASK]"] == pytest.approx(0.8, abs=0.08)
    with pytest.raises(ValueError, match="lacks"):
        lm.masked_lm_targets(ids, {"token_ids": ids})
    with pytest.raises(ValueError, match="same shape"):
        lm.mask_rates(ids, ids[:1], weights > 0, 0)
