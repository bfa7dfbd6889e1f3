"""Tests for dl4keras.transfer: probes, strategies, label-budget methods, domain adaptation."""

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


def test_budget_methods_run_on_with_budget_draws(task):
    from dl4keras import label_budget

    seen = []

    def top(small, seed):
        seen.append((len(small.y_train), seed))
        return transfer.top_block(small, seed)

    grid = label_budget.compare_label_budgets(
        transfer.budget_methods({"top": top}), task.with_budget, (4, 2), (0, 1), verbose=False
    )
    assert grid.methods == ("linear probe", "top") and grid.budgets == (2, 4)
    assert seen == [(6, 0), (6, 1), (12, 0), (12, 1)]
    for i, budget in enumerate(grid.budgets):  # the probe column is each draw's own probe
        for j, seed in enumerate(grid.seeds):
            expected = task.with_budget(budget, seed).probes[seed][1]
            assert grid.scores["linear probe"][i, j] == pytest.approx(expected)
    assert grid.summary("linear probe").startswith("Best per budget: 2 labels/class: ")


def test_budget_methods_seed_keras_before_each_run(task):
    draws = []

    def strategy(small, seed):
        draws.append(float(keras.random.uniform(())))
        return 0.5, 0.0

    method = transfer.budget_methods({"s": strategy}, probe=False)["s"]
    small = task.with_budget(2, seed=0)
    assert [method(small, 3), method(small, 3), method(small, 4)] == [0.5] * 3
    assert draws[0] == draws[1] != draws[2]


def test_budget_methods_validation():
    with pytest.raises(ValueError, match="`strategies`"):
        transfer.budget_methods({"top": "not a function"})
    with pytest.raises(ValueError, match="`strategies`"):
        transfer.budget_methods([transfer.top_block])


def test_train_end_to_end_is_seeded_and_validates_its_budget():
    x, y = data.cluttered_digits(CLASSES, 4, split="train", seed=1)
    a = transfer.train_end_to_end(x, y, x, y, weights=None, steps=(1, 2), seed=0)
    b = transfer.train_end_to_end(x, y, x, y, weights=None, steps=(1, 2), seed=0)
    assert a == b and 0.0 <= a <= 1.0  # seeded: the same run twice
    with pytest.raises(ValueError, match="`steps`"):
        transfer.train_end_to_end(x, y, x, y, steps=(5, 2))
    with pytest.raises(ValueError, match="`steps`"):
        transfer.train_end_to_end(x, y, x, y, steps=60)
    with pytest.raises(ValueError, match="`epochs`"):
        transfer.train_end_to_end(x, y, x, y, epochs=0)


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


def test_learning_rate_sweep_measures_target_and_source(task):
    from dl4keras import backbones

    source = data.cluttered_digits((0, 1), 4, split="train", seed=3)
    probe = transfer.SourceProbe(backbones.build("tiny_resnet"), source, source)
    lines = []
    sweep = transfer.learning_rate_sweep(task, probe, (1e-2, 1e-4), print_fn=lines.append)
    assert sweep["pretrained_source_accuracy"] == pytest.approx(probe(task.probe_model(0)))
    assert [run["learning_rate"] for run in sweep["runs"]] == [1e-2, 1e-4]
    assert all(
        0 <= run["target_accuracy"] <= 1 and 0 <= run["source"] <= 1 for run in sweep["runs"]
    )
    assert lines[0].startswith("Adam lr=0.01: target accuracy ") and len(lines) == 2
    again = transfer.learning_rate_sweep(task, probe, (1e-4,), print_fn=None)
    assert again["runs"][0] == pytest.approx(sweep["runs"][1])  # seeded: the same run
    with pytest.raises(ValueError, match="`learning_rates`"):
        transfer.learning_rate_sweep(task, probe, (1e-3, 0.0))
    with pytest.raises(ValueError, match="`learning_rates`"):
        transfer.learning_rate_sweep(task, probe, ())


def test_headline_of_rows():
    rows = [
        dict(strategy="linear probe", accuracy_mean=0.5, accuracy_std=0.1),
        dict(strategy="top", accuracy_mean=0.625, accuracy_std=0.0),
    ]
    assert transfer.headline(rows, "photos, ") == {
        "photos, linear probe": "50.0% ± 10.0%",
        "photos, top": "62.5% ± 0.0%",
    }
