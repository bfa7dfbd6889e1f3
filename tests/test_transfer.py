"""Tests for dl4keras.transfer: probes, budgets, strategies, the crossover and domain adaptation."""

import keras
import numpy as np
import pytest

from dl4keras import data, transfer

CLASSES = (5, 6, 7)


@pytest.fixture(scope="module")
def task():
    x, y = data.cluttered_digits(CLASSES, 6, split="train", seed=1)
    x_test, y_test = data.cluttered_digits(CLASSES, 4, split="test", seed=2)
    return transfer.FineTuningTask(
        "tiny_resnet", x, y, x_test, y_test, seeds=(0, 1), epochs=1, batch_size=8, min_steps=3
    )


def test_linear_probe_weights_reproduce_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features, labels = rng.normal(size=(60, 5)), rng.integers(0, 3, 60)
    kernel, bias = transfer.linear_probe_weights(features, labels, 3)
    logits = features @ kernel + bias
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    expected = LogisticRegression(max_iter=2000).fit(features, labels).predict_proba(features)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_linear_probe_weights_two_classes_and_a_missing_class():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(40, 4))
    labels = (features[:, 0] > 0).astype(int) * 2  # classes 0 and 2; class 1 absent
    kernel, bias = transfer.linear_probe_weights(features, labels, 3)
    predicted = (features @ kernel + bias).argmax(1)
    assert set(predicted) <= {0, 2}
    assert np.mean(predicted == labels) > 0.9


def test_task_probe_and_budget(task):
    assert task.num_classes == 3 and task.blocks == ["stem", "block1", "block2", "block3"]
    assert set(task.probes) == {0, 1}
    small_a, small_b = task.with_budget(2, seed=0), task.with_budget(2, seed=1)
    assert np.bincount(small_a.y_train).tolist() == [2, 2, 2]
    assert small_a.seeds == (0,) and small_a.blocks == task.blocks
    assert small_a.features_test is task.features_test  # nothing extracted again
    assert not np.array_equal(small_a.x_train, small_b.x_train)  # each seed its own draw
    assert small_a.epochs_needed() == 3  # 6 images = 1 batch of 8: 3 epochs for 3 steps
    assert task.epochs_needed() == 1  # 18 images = 3 batches: min_steps met in 1 epoch
    with pytest.raises(ValueError, match="fewer than"):
        task.with_budget(7)


def test_probe_model_carries_the_probe(task):
    model = task.probe_model(0)
    assert not model.trainable_weights
    predicted = model.predict(task.x_test, verbose=0).argmax(1)
    assert np.mean(predicted == task.y_test) == pytest.approx(task.probes[0][1], abs=1e-6)


def test_compare_strategies_rows_and_table(task, capsys):
    rows = transfer.compare_strategies(
        task, {"top": transfer.top_block, "scratch": transfer.from_scratch}
    )
    assert [row["strategy"] for row in rows] == ["linear probe", "top", "scratch"]
    assert all(len(row["accuracies"]) == 2 for row in rows)
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("strategy") and "scratch" in out


def test_compare_budgets_and_crossover(task, capsys):
    rows = transfer.compare_budgets(task, (2, 4), {"top": transfer.top_block}, seeds=(0,))
    assert [(r["labels_per_class"], r["strategy"]) for r in rows] == [
        (2, "linear probe"),
        (2, "top"),
        (4, "linear probe"),
        (4, "top"),
    ]
    assert capsys.readouterr().out.startswith("labels/class")
    assert transfer.crossover(rows).startswith("Best per budget: 2 labels/class: ")


def _rows(means, std=0.01):
    return [
        dict(labels_per_class=b, strategy=s, accuracy_mean=m, accuracy_std=std)
        for b, by in means.items()
        for s, m in by.items()
    ]


def test_crossover_verdicts():
    probe = "linear probe"
    wins_everywhere = _rows({5: {probe: 0.5, "ft": 0.6}, 50: {probe: 0.6, "ft": 0.8}})
    assert "ft beats the linear probe from 5 labels per class on (+10.0 points there) at every" in (
        transfer.crossover(wins_everywhere)
    )
    ties_then_wins = _rows({5: {probe: 0.5, "ft": 0.51}, 50: {probe: 0.6, "ft": 0.8}})
    assert "from 50 labels per class on (+20.0 points there), and ties below" in (
        transfer.crossover(ties_then_wins)
    )
    wins_then_loses = _rows({5: {probe: 0.5, "ft": 0.6}, 50: {probe: 0.8, "ft": 0.6}})
    assert "ft never beats the linear probe by more than the spread" in (
        transfer.crossover(wins_then_loses)
    )
    noisy = _rows({5: {probe: 0.5, "ft": 0.6}}, std=0.1)  # inside the spread: a tie
    assert "never beats" in transfer.crossover(noisy)


def test_compare_domain_adaptation_summary(capsys):
    rng = np.random.default_rng(0)

    def layers():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu")])

    sets = [(rng.normal(size=(20, 4)), np.arange(20) % 2) for _ in range(3)]
    rows, summary = transfer.compare_domain_adaptation(
        *sets, layers, seeds=(0, 1), epochs=1, setting="toy"
    )
    assert [row["setting"] for row in rows] == ["toy"] * 3
    by = {row["strategy"]: row for row in rows}
    gains = 100 * (np.array(by["DANN"]["accuracies"]) - by["source only"]["accuracies"])
    assert summary["dann_gain_points_per_seed"] == pytest.approx(gains.tolist())
    assert 0.0 <= summary["domain_accuracy"] <= 1.0
    assert "DANN - source only" in capsys.readouterr().out
