"""Tests for dl4keras.label_budget: the paired comparison, its statistics and crossover."""

import json

import matplotlib
import numpy as np
import pytest

from dl4keras import label_budget
from dl4keras.label_budget import BudgetComparison, compare_label_budgets

matplotlib.use("Agg")


def _sample(labels_per_class, seed):
    y = np.arange(2 * labels_per_class) % 2
    return np.full((len(y), 1), float(seed)), y


def test_every_method_sees_the_same_draw():
    seen = {}

    def record(name):
        def method(x, y, seed):
            seen.setdefault((len(y), seed), {})[name] = x.copy()
            return len(y) / 100

        return method

    result = compare_label_budgets(
        {"a": record("a"), "b": record("b")}, _sample, budgets=(10, 2), seeds=(0, 5), verbose=False
    )
    assert result.budgets == (2, 10)  # sorted
    for draws in seen.values():
        np.testing.assert_array_equal(draws["a"], draws["b"])
    assert result.scores["a"].shape == (2, 2)
    np.testing.assert_allclose(result.mean("a"), [0.04, 0.2])
    np.testing.assert_allclose(result.std("a"), [0.0, 0.0])
    assert set(result.seconds) == {"a", "b"}


def test_mean_std_best_and_crossover():
    result = BudgetComparison(
        budgets=(5, 20, 100, 300),
        seeds=(0, 1),
        scores={
            "probe": [[0.6, 0.62], [0.7, 0.7], [0.8, 0.8], [0.85, 0.85]],
            "fine-tune": [[0.5, 0.5], [0.72, 0.6], [0.85, 0.85], [0.9, 0.9]],
        },
        seconds={"probe": np.ones((4, 2)), "fine-tune": np.ones((4, 2))},
    )
    assert result.methods == ("probe", "fine-tune")
    np.testing.assert_allclose(result.mean("probe"), [0.61, 0.7, 0.8, 0.85])
    np.testing.assert_allclose(result.std("probe")[0], 0.01)
    assert result.best() == {5: "probe", 20: "probe", 100: "fine-tune", 300: "fine-tune"}
    assert result.crossover("probe", "fine-tune") == 100
    assert result.crossover("fine-tune", "probe") is None
    table = result.table(chance=0.2).splitlines()
    assert table[0].split() == ["labels/class", "probe", "fine-tune", "best"]
    assert table[1].startswith("5") and table[1].endswith("probe")
    assert "61.0% ± 1.0%" in table[1] and "chance: 20.0%; 2 seeds" in table[-1]
    saved = json.loads(json.dumps(result.to_dict()))
    assert saved["best"]["100"] == "fine-tune" and saved["labels_per_class"] == [5, 20, 100, 300]
    assert "BudgetComparison(methods=['probe', 'fine-tune']" in repr(result)
    with pytest.raises(ValueError, match="Unknown method 'scratch'"):
        result.mean("scratch")


def test_crossover_needs_the_lead_at_every_larger_budget():
    result = BudgetComparison(
        (1, 2, 3, 4),
        (0,),
        {"a": [[0.5]] * 4, "b": [[0.6], [0.4], [0.6], [0.6]]},
        {"a": [[0]] * 4, "b": [[0]] * 4},
    )
    assert result.crossover("a", "b") == 3  # ahead at 1, behind at 2, then ahead for good


def test_plot_draws_one_line_per_method():
    result = compare_label_budgets(
        {"x": lambda x, y, s: 0.5, "y": lambda x, y, s: 0.7}, _sample, (1, 3), (0,), verbose=False
    )
    ax = result.plot(colors={"x": "red"}, chance=0.5)
    assert [line.get_label() for line in ax.get_lines()] == ["x", "y", "chance"]


def test_verbose_prints_one_line_per_budget_and_seed(capsys):
    compare_label_budgets({"m": lambda x, y, s: 0.25}, _sample, (2,), (0, 1))
    assert capsys.readouterr().out.splitlines() == [
        "   2 labels/class, seed 0: m 25.0%",
        "   2 labels/class, seed 1: m 25.0%",
    ]


def test_validation():
    with pytest.raises(ValueError, match="`methods`"):
        compare_label_budgets({}, _sample, (1,))
    with pytest.raises(ValueError, match="callables"):
        compare_label_budgets({"m": 3}, _sample, (1,))
    with pytest.raises(ValueError, match="`budgets`"):
        compare_label_budgets({"m": lambda x, y, s: 0}, _sample, (0,))
    with pytest.raises(ValueError, match="must not be empty"):
        compare_label_budgets({"m": lambda x, y, s: 0}, _sample, (1,), seeds=())
    assert label_budget.__all__ == ["BudgetComparison", "compare_label_budgets"]
