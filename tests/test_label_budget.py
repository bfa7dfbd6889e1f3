"""Tests for dl4keras.label_budget: the paired comparison, its statistics and verdicts."""

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


def _comparison(means, std=0.01):
    """A two-seed comparison with the given means and spread: `{budget: {method: mean}}`."""
    budgets = sorted(means)
    methods = list(means[budgets[0]])
    scores = {m: [[means[b][m] - std, means[b][m] + std] for b in budgets] for m in methods}
    return BudgetComparison(budgets, (0, 1), scores, {})


def test_a_lead_inside_the_spread_is_a_tie():
    probe = "linear probe"
    wins_everywhere = _comparison({5: {probe: 0.5, "ft": 0.6}, 50: {probe: 0.6, "ft": 0.8}})
    assert wins_everywhere.crossover(probe, "ft") == 5
    assert "ft beats linear probe from 5 labels/class on (+10.0 points there) at every" in (
        " ".join(wins_everywhere.summary(probe).split())
    )
    ties_then_wins = _comparison({5: {probe: 0.5, "ft": 0.51}, 50: {probe: 0.6, "ft": 0.8}})
    assert [o for _, o, _ in ties_then_wins.outcomes(probe, "ft")] == ["tie", "win"]
    assert "from 50 labels/class on (+20.0 points there), and ties below" in (
        " ".join(ties_then_wins.summary(probe).split())
    )
    wins_then_loses = _comparison({5: {probe: 0.5, "ft": 0.6}, 50: {probe: 0.8, "ft": 0.6}})
    assert wins_then_loses.crossover(probe, "ft") is None
    assert "ft never beats linear probe by more than the spread" in (
        " ".join(wins_then_loses.summary(probe).split())
    )
    noisy = _comparison({5: {probe: 0.5, "ft": 0.6}}, std=0.1)  # inside the spread: a tie
    assert noisy.outcomes(probe, "ft") == [(5, "tie", pytest.approx(0.1))]
    assert noisy.crossover(probe, "ft") is None


def test_compare_and_summary_sentences():
    result = _comparison(
        {5: {"probe": 0.6, "ft": 0.5, "s": 0.2}, 50: {"probe": 0.7, "ft": 0.8, "s": 0.3}}
    )
    text = " ".join(result.compare("probe", "ft").split())
    assert text == (
        "probe minus ft: +10.0 points at 5, -10.0 at 50 labels/class; ft beats probe from 50 "
        "labels/class on (+10.0 points there), and loses below."
    )
    summary = " ".join(result.summary("probe", challengers=["s"]).split())
    assert summary.startswith("Best per budget: 5 labels/class: probe (60.0%); 50 labels/class:")
    assert "s never beats probe" in summary and "ft beats" not in summary
    with pytest.raises(ValueError, match="Unknown method 'scratch'"):
        result.summary("scratch")
    assert result.headline(prefix="digits: ") == {
        "digits: probe, 5 labels/class": "60.0% ± 1.0%",
        "digits: ft, 5 labels/class": "50.0% ± 1.0%",
        "digits: s, 5 labels/class": "20.0% ± 1.0%",
        "digits: probe, 50 labels/class": "70.0% ± 1.0%",
        "digits: ft, 50 labels/class": "80.0% ± 1.0%",
        "digits: s, 50 labels/class": "30.0% ± 1.0%",
    }


def test_a_draw_that_is_not_a_tuple_is_passed_whole():
    class Task:
        def __init__(self, n):
            self.n = n

    result = compare_label_budgets(
        {"size": lambda task, seed: task.n / 10}, lambda n, seed: Task(n), (1, 5), (0,), False
    )
    np.testing.assert_allclose(result.mean("size"), [0.1, 0.5])


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
    with pytest.raises(ValueError, match="`sample`"):
        compare_label_budgets({"m": lambda x, y, s: 0}, "not a function", (1,))
    with pytest.raises(ValueError, match="must not be empty"):
        compare_label_budgets({"m": lambda x, y, s: 0}, _sample, (1,), seeds=())
    assert label_budget.__all__ == ["BudgetComparison", "compare_label_budgets"]
