"""Compare training methods across label budgets: when does transfer learning pay?

"With few labels feature extraction wins, with more labels fine-tuning or
training from scratch catches up" is a claim about a *curve*: accuracy
against the number of labelled examples per class, for each method, over
several random draws of the labelled set. `compare_label_budgets` measures
that curve for any methods you give it and returns a `BudgetComparison`:
mean ± std per method and budget, the best method per budget, where one
method beats another by more than the spread across seeds (`crossover`,
`compare`, `summary`), a table, a plot, the headline numbers and a
JSON-ready dict.

The methods train on whatever `sample(labels_per_class, seed)` draws:
arrays `(x_train, y_train)` (tutorial 01's linear probe, training from
scratch and fine-tuning), or one object such as a smaller
`transfer.FineTuningTask` (tutorial 02's fine-tuning strategies, through
`transfer.budget_methods`).

Examples:
    ```python
    import numpy as np

    from dl4keras import label_budget


    def sample(labels_per_class, seed):
        y = np.arange(2 * labels_per_class) % 2
        return np.random.default_rng(seed).normal(size=(len(y), 4)) + y[:, None], y


    def nearest_mean(x, y, seed):  # a toy "method": returns its test accuracy
        x_test, y_test = sample(50, seed=99)
        means = np.stack([x[y == c].mean(0) for c in (0, 1)])
        predictions = np.argmin(((x_test[:, None] - means) ** 2).sum(-1), axis=1)
        return float(np.mean(predictions == y_test))


    result = label_budget.compare_label_budgets(
        {"nearest mean": nearest_mean}, sample, budgets=(2, 20), seeds=(0, 1), verbose=False
    )
    print(result.table())
    ```
"""

from __future__ import annotations

import textwrap
import time

import numpy as np

from dl4keras import _validation

__all__ = ["BudgetComparison", "compare_label_budgets"]


class BudgetComparison:
    """Accuracies of several methods at several label budgets, over seeds.

    Made by `compare_label_budgets`. A method *beats* another at a budget
    when its mean accuracy is higher by more than the two standard
    deviations across seeds added; a smaller difference either way is a
    *tie* (with one seed: any higher mean wins).

    Attributes:
        budgets: the labelled examples per class, ascending.
        seeds: the seeds, one random draw of the labelled set each.
        scores: `{method: array (len(budgets), len(seeds))}` of accuracies.
        seconds: `{method: array (len(budgets), len(seeds))}` of run times.
    """

    def __init__(self, budgets, seeds, scores, seconds):
        self.budgets = tuple(budgets)
        self.seeds = tuple(seeds)
        self.scores = {m: np.asarray(s, dtype="float64") for m, s in scores.items()}
        self.seconds = {m: np.asarray(s, dtype="float64") for m, s in seconds.items()}

    @property
    def methods(self):
        """The method names, in the order given."""
        return tuple(self.scores)

    def mean(self, method):
        """Mean accuracy over seeds at each budget, an array."""
        return self.scores[self._method(method)].mean(axis=1)

    def std(self, method):
        """Standard deviation over seeds at each budget, an array."""
        return self.scores[self._method(method)].std(axis=1)

    def best(self):
        """`{budget: method}` with the highest mean accuracy at each budget."""
        return {
            b: max(self.methods, key=lambda m: self.mean(m)[i]) for i, b in enumerate(self.budgets)
        }

    def outcomes(self, method, other):
        """`other` against `method` at each budget: `"win"`, `"tie"` or `"loss"`.

        Returns:
            A list of `(budget, outcome, margin)`, `margin` = `other`'s mean
            minus `method`'s.
        """
        margins = self.mean(other) - self.mean(method)
        noise = self.std(other) + self.std(method)
        return [
            (b, "win" if m > n else "loss" if m < -n else "tie", float(m))
            for b, m, n in zip(self.budgets, margins, noise, strict=True)
        ]

    def crossover(self, method, other):
        """The smallest budget from which `other` beats `method` at every larger budget.

        Returns None if `other` does not beat `method` at the largest budget.

        Examples:
            >>> from dl4keras.label_budget import BudgetComparison
            >>> result = BudgetComparison(
            ...     budgets=(5, 20, 100),
            ...     seeds=(0,),
            ...     scores={"probe": [[0.6], [0.7], [0.8]], "fine-tune": [[0.5], [0.7], [0.9]]},
            ...     seconds={"probe": [[1], [1], [1]], "fine-tune": [[9], [9], [9]]},
            ... )
            >>> result.crossover("probe", "fine-tune")  # ahead from 100 labels per class on
            100
            >>> result.crossover("fine-tune", "probe") is None
            True
        """
        outcomes = self.outcomes(method, other)
        start = len(outcomes)
        while start > 0 and outcomes[start - 1][1] == "win":
            start -= 1
        return None if start == len(outcomes) else self.budgets[start]

    def _verdict(self, method, other):
        outcomes = self.outcomes(method, other)
        turn = self.crossover(method, other)
        if turn is None:
            return (
                f"{other} never beats {method} by more than the spread across seeds "
                f"(up to {self.budgets[-1]} labels/class)."
            )
        start = self.budgets.index(turn)
        below = {outcome for _, outcome, _ in outcomes[:start]}
        tail = {
            frozenset(): "at every budget",
            frozenset({"loss"}): "and loses below",
            frozenset({"tie"}): "and ties below",
        }.get(frozenset(below), "and ties or loses below")
        margin = 100 * outcomes[start][2]
        return (
            f"{other} beats {method} from {turn} labels/class on ({margin:+.1f} points "
            f"there){',' if below else ''} {tail}."
        )

    def compare(self, method, other):
        """A sentence: `method` minus `other` at each budget, and where `other` beats it.

        Examples:
            >>> from dl4keras.label_budget import BudgetComparison
            >>> result = BudgetComparison(
            ...     (5, 100), (0,), {"probe": [[0.6], [0.8]], "fine-tune": [[0.5], [0.9]]}, {}
            ... )
            >>> print(result.compare("probe", "fine-tune"))
            probe minus fine-tune: +10.0 points at 5, -10.0 at 100 labels/class; fine-tune
            beats probe from 100 labels/class on (+10.0 points there), and loses below.
        """
        gaps = (self.mean(method) - self.mean(other)) * 100
        cells = [f"{gaps[0]:+.1f} points at {self.budgets[0]}"]
        cells += [f"{g:+.1f} at {b}" for b, g in zip(self.budgets[1:], gaps[1:], strict=True)]
        text = f"{method} minus {other}: {', '.join(cells)} labels/class; "
        return textwrap.fill(text + self._verdict(method, other), 80)

    def summary(self, baseline, challengers=None):
        """A paragraph: the best method per budget, then where each challenger beats `baseline`.

        Args:
            baseline: the method to beat, e.g. the linear probe.
            challengers: the methods that may beat it (default: all others).

        Examples:
            >>> from dl4keras.label_budget import BudgetComparison
            >>> result = BudgetComparison(
            ...     (5, 50),
            ...     (0, 1),
            ...     {
            ...         "probe": [[0.59, 0.61], [0.69, 0.71]],
            ...         "full": [[0.49, 0.51], [0.79, 0.81]],
            ...         "scratch": [[0.19, 0.21], [0.29, 0.31]],
            ...     },
            ...     {},
            ... )
            >>> print(result.summary("probe"))
            Best per budget: 5 labels/class: probe (60.0%); 50 labels/class: full (80.0%).
            full beats probe from 50 labels/class on (+10.0 points there), and loses below.
            scratch never beats probe by more than the spread across seeds (up to 50
            labels/class).
        """
        self._method(baseline)
        if challengers is None:
            challengers = [m for m in self.methods if m != baseline]
        best = self.best()
        cells = [
            f"{b} labels/class: {best[b]} ({self.mean(best[b])[i]:.1%})"
            for i, b in enumerate(self.budgets)
        ]
        sentences = ["Best per budget: " + "; ".join(cells) + "."]
        sentences += [self._verdict(baseline, self._method(m)) for m in challengers]
        return textwrap.fill(" ".join(sentences), 80)

    def table(self, chance=None):
        """The comparison as a printable table: mean ± std per budget and method.

        Args:
            chance: optional chance accuracy, printed below the table.
        """
        width = max(12, *(len(m) + 2 for m in self.methods))
        lines = [
            f"{'labels/class':<14}"
            + "".join(f"{m:>{width + 4}}" for m in self.methods)
            + f"{'best':>{width + 2}}"
        ]
        best = self.best()
        for i, budget in enumerate(self.budgets):
            cells = "".join(
                f"{f'{self.mean(m)[i]:.1%} ± {self.std(m)[i]:.1%}':>{width + 4}}"
                for m in self.methods
            )
            lines.append(f"{budget:<14}{cells}{best[budget]:>{width + 2}}")
        if chance is not None:
            lines.append(f"chance: {chance:.1%}; {len(self.seeds)} seeds per cell")
        return "\n".join(lines)

    def headline(self, prefix=""):
        """`{"<prefix><method>, <budget> labels/class": "mean ± std"}`, for `results.save`.

        Examples:
            >>> from dl4keras.label_budget import BudgetComparison
            >>> result = BudgetComparison((5,), (0, 1), {"probe": [[0.6, 0.8]]}, {})
            >>> result.headline()
            {'probe, 5 labels/class': '70.0% ± 10.0%'}
        """
        return {
            f"{prefix}{m}, {b} labels/class": f"{self.mean(m)[i]:.1%} ± {self.std(m)[i]:.1%}"
            for i, b in enumerate(self.budgets)
            for m in self.methods
        }

    def to_dict(self):
        """A JSON-serialisable dict (for `dl4keras.results.save`)."""
        return {
            "labels_per_class": list(self.budgets),
            "seeds": list(self.seeds),
            "mean": {m: self.mean(m).tolist() for m in self.methods},
            "std": {m: self.std(m).tolist() for m in self.methods},
            "runs": {m: s.tolist() for m, s in self.scores.items()},
            "seconds_per_run": {m: s.mean(axis=1).tolist() for m, s in self.seconds.items()},
            "best": {str(b): m for b, m in self.best().items()},
        }

    def plot(self, ax=None, colors=None, chance=None):
        """Accuracy against labels per class (log scale), mean ± std over seeds.

        Args:
            ax: a matplotlib axis; default a new figure.
            colors: optional `{method: colour}`.
            chance: optional chance accuracy, drawn as a dashed line.

        Returns:
            The matplotlib axis.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 3.8))
        for method in self.methods:
            mean, std = self.mean(method) * 100, self.std(method) * 100
            color = (colors or {}).get(method)
            ax.plot(self.budgets, mean, "o-", label=method, color=color)
            ax.fill_between(self.budgets, mean - std, mean + std, alpha=0.2, color=color)
        if chance is not None:
            ax.axhline(chance * 100, color="k", ls="--", lw=1, label="chance")
        ax.set_xscale("log")
        ax.set_xticks(self.budgets, [str(b) for b in self.budgets])
        ax.set_xticks([], minor=True)
        ax.set_xlabel("labelled images per class")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"Accuracy against label budget ({len(self.seeds)} seeds)")
        ax.legend()
        return ax

    def _method(self, method):
        if method not in self.scores:
            raise ValueError(f"Unknown method {method!r}. The methods are {list(self.scores)}.")
        return method

    def __repr__(self):
        return (
            f"BudgetComparison(methods={list(self.methods)}, budgets={list(self.budgets)}, "
            f"seeds={len(self.seeds)})"
        )


def compare_label_budgets(methods, sample, budgets, seeds=(0, 1, 2), verbose=True):
    """Runs every method at every label budget and seed; returns a `BudgetComparison`.

    For each budget and seed, `sample(budget, seed)` draws one labelled
    training set and every method trains on that same set, so the methods
    are compared on equal data (a paired comparison). Each method's run is
    timed.

    Args:
        methods: `{name: fn}`; `fn(*draw, seed)` trains one model on the
            draw and returns its test accuracy (a float).
        sample: `fn(labels_per_class, seed) -> draw`: a tuple such as
            `(x_train, y_train)`, unpacked into each method's arguments, or
            any other object (e.g. a `transfer.FineTuningTask`), passed as
            the one argument before the seed.
        budgets: the labelled examples per class, e.g. `(5, 20, 100, 300)`.
        seeds: one random draw of the labelled set (and of the initial
            weights) per seed.
        verbose: print one line per budget and seed.

    Returns:
        A `BudgetComparison`.

    Raises:
        ValueError: no methods, a method or `sample` that is not callable,
            budgets that are not positive integers, or no seeds.

    Examples:
        >>> from dl4keras.label_budget import compare_label_budgets
        >>> def sample(n, seed):
        ...     return np.zeros((2 * n, 1)), np.arange(2 * n) % 2
        >>> result = compare_label_budgets(
        ...     {"guess": lambda x, y, seed: 0.5, "more is better": lambda x, y, seed: len(y) / 20},
        ...     sample,
        ...     budgets=(2, 5, 10),
        ...     seeds=(0, 1),
        ...     verbose=False,
        ... )
        >>> result.mean("more is better").tolist()
        [0.2, 0.5, 1.0]
        >>> result.best()
        {2: 'guess', 5: 'guess', 10: 'more is better'}
        >>> result.crossover("guess", "more is better")
        10
    """
    if not isinstance(methods, dict) or not methods:
        raise _validation.invalid("methods", "a non-empty dict {name: callable}", methods)
    bad = [name for name, fn in methods.items() if not callable(fn)]
    if bad:
        raise _validation.invalid("methods", "callables fn(*draw, seed)", bad)
    if not callable(sample):
        raise _validation.invalid("sample", "a callable fn(labels_per_class, seed)", sample)
    budgets = sorted(_validation.positive_int("budgets", b) for b in budgets)
    seeds = tuple(seeds)
    if not seeds or not budgets:
        raise ValueError(
            f"`budgets` and `seeds` must not be empty. Received: budgets={budgets}, seeds={seeds}"
        )
    shape = (len(budgets), len(seeds))
    scores = {m: np.zeros(shape) for m in methods}
    seconds = {m: np.zeros(shape) for m in methods}
    for i, budget in enumerate(budgets):
        for j, seed in enumerate(seeds):
            draw = sample(budget, seed)
            args = draw if isinstance(draw, tuple) else (draw,)
            for name, fn in methods.items():
                start = time.perf_counter()
                scores[name][i, j] = float(fn(*args, seed))
                seconds[name][i, j] = time.perf_counter() - start
            if verbose:
                print(
                    f"{budget:>4} labels/class, seed {seed}: "
                    + "  ".join(f"{m} {scores[m][i, j]:.1%}" for m in methods)
                )
    return BudgetComparison(budgets, seeds, scores, seconds)
