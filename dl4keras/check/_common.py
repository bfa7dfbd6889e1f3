"""What the self-checks share: the typical mistakes, reports and comparisons (private)."""

from __future__ import annotations

import itertools
import textwrap

import numpy as np

# ---------------------------------------------------------------- mistakes

# (family, variant) -> (name, explanation). The name is what a learner reads
# first; the tests look for it.
MISTAKES = {
    ("scale", "none"): (
        "forgot the 1/sqrt(d_k) scale",
        "divide the scores q·kᵀ by sqrt(d_k), d_k = the last dimension of the "
        "queries and keys, before the softmax.",
    ),
    ("scale", "d"): (
        "scaled by 1/d_k instead of 1/sqrt(d_k)",
        "the scores are divided by the *square root* of the key size.",
    ),
    ("scale", "dv"): (
        "scaled by the value size instead of the key size",
        "use sqrt(d_k), d_k = query.shape[-1] = key.shape[-1], not value.shape[-1].",
    ),
    ("scale", "model"): (
        "scaled by sqrt(model dimension) instead of sqrt(key_dim)",
        "each head works in key_dim dimensions: divide its scores by sqrt(key_dim), "
        "not by the square root of the input's feature size.",
    ),
    ("scale", "all_heads"): (
        "scaled by sqrt(num_heads * key_dim) instead of sqrt(key_dim)",
        "each head's scores are divided by the square root of that head's size, key_dim.",
    ),
    ("axis", "query"): (
        "softmax over the wrong axis",
        "the softmax ran over the query axis (-2); run it over the key axis (-1), "
        "so that each query's weights over the keys sum to 1.",
    ),
    ("mask", "after"): (
        "mask applied after the softmax",
        "set the masked scores to a large negative number (e.g. -1e9) *before* the "
        "softmax; masking the weights afterwards leaves rows that no longer sum to 1.",
    ),
    ("mask", "inverted"): (
        "mask inverted",
        "`True` in the mask means 'may attend': keep the scores where the mask is True "
        "and replace them where it is False (e.g. ops.where(mask, scores, -1e9)).",
    ),
    ("mask", "ignored"): (
        "mask ignored",
        "the output is what you get without the mask: replace the scores where the mask "
        "is False by a large negative number before the softmax.",
    ),
    ("mask", "multiply"): (
        "mask multiplied into the scores",
        "scores * mask sets masked scores to 0, and exp(0) is not 0: those keys still get "
        "weight. Use a large negative number instead: ops.where(mask, scores, -1e9).",
    ),
    ("split", "no_transpose"): (
        "heads split in the wrong order",
        "(batch, T, heads * key_dim) was reshaped straight to (batch, heads, T, key_dim); "
        "reshape to (batch, T, heads, key_dim) first, then transpose to "
        "(batch, heads, T, key_dim).",
    ),
    ("split", "swapped"): (
        "heads split in the wrong order",
        "the features were reshaped as (key_dim, heads); the layout is "
        "(batch, T, heads, key_dim): head h owns features h*key_dim ... (h+1)*key_dim - 1.",
    ),
    ("merge", "no_transpose"): (
        "heads merged in the wrong order",
        "(batch, heads, T, value_dim) was reshaped straight to (batch, T, heads * value_dim); "
        "transpose to (batch, T, heads, value_dim) first, then reshape.",
    ),
    ("merge", "swapped"): (
        "heads merged in the wrong order",
        "the heads were concatenated as (value_dim, heads); concatenate them head after "
        "head: transpose to (batch, T, heads, value_dim), then reshape to "
        "(batch, T, heads * value_dim).",
    ),
}


def variants(families):
    """All combinations of at most two mistakes over `families` {family: [variants]}."""
    names = list(families)
    for choice in itertools.product(*[[None, *families[f]] for f in names]):
        mistakes = tuple((f, c) for f, c in zip(names, choice) if c is not None)
        if 1 <= len(mistakes) <= 2:
            yield mistakes


# ---------------------------------------------------------------- feedback helpers


def to_numpy(x, what):
    from keras import ops

    try:
        return np.asarray(ops.convert_to_numpy(x), dtype="float64")
    except Exception as error:  # any conversion failure is reported
        raise Feedback(f"could not read {what} as an array ({type(x).__name__}): {error}") from None


class Feedback(Exception):
    """A failure to report to the learner (not a bug in the check)."""


def close(a, b, atol, rtol):
    return a.shape == b.shape and bool(np.allclose(a, b, atol=atol, rtol=rtol))


def numbers(x):
    return "[" + ", ".join(f"{v:.4f}" for v in x) + (", ...]" if len(x) > 0 else "]")


def compare_lines(expected, got, what, detailed=True):
    """Shapes, the largest difference and (if `detailed`) a row of numbers."""
    if expected.shape != got.shape:
        return [f"{what} shape: expected {expected.shape}, got {got.shape}"]
    lines = []
    if not np.all(np.isfinite(got)):
        lines.append(f"your {what} contains NaN or infinite values")
    diff = np.abs(np.nan_to_num(got, nan=np.inf) - expected)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    lines.append(
        f"{what} shape {got.shape} is right, values differ: largest difference "
        f"{float(diff[index]):.4g} at index {tuple(int(i) for i in index)}"
    )
    if detailed:
        row = index[:-1]
        at = ", ".join([*map(str, row), ":4"])
        lines.append(f"  expected {what}[{at}] = {numbers(expected[row][:4])}")
        lines.append(f"  got      {what}[{at}] = {numbers(got[row][:4])}")
    return lines


def diagnose(got, variants, reference, atol=2e-3, rtol=2e-3):
    """The mistake combinations whose output matches `got`, fewest mistakes only."""
    matches = []
    for mistakes, output in variants:
        # A variant indistinguishable from the reference on this case says nothing.
        if output.shape != got.shape or close(output, reference, 1e-4, 1e-4):
            continue
        if close(got, output, atol, rtol):
            matches.append(mistakes)
    if not matches:
        return []
    fewest = min(len(m) for m in matches)
    found = []
    for mistakes in matches:
        entry = tuple(MISTAKES[m] for m in mistakes)
        if len(mistakes) == fewest and entry not in found:
            found.append(entry)
    return found


WIDTH = 80
"""Feedback lines are wrapped to this width (they are read in notebooks and on the site)."""


def wrap(line):
    """`line` wrapped to `WIDTH`, continuation lines indented under its text."""
    if len(line) <= WIDTH:
        return [line]
    indent = len(line) - len(line.lstrip())
    label = line.lstrip().startswith(("[PASS]", "[FAIL]", "[WARN]"))
    return textwrap.wrap(
        line,
        WIDTH,
        subsequent_indent=" " * (indent + (7 if label else 2)),
        break_long_words=False,
        break_on_hyphens=False,
    ) or [line]


def wrapped(prefix, text):
    """`text` wrapped to `WIDTH` after `prefix` (e.g. "[PASS] "), continuation lines indented."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=prefix,
        subsequent_indent=" " * min(len(prefix), 7),
        break_on_hyphens=False,
    )


class Report:
    """Collects and prints the feedback of one check."""

    def __init__(self, verbose):
        self.verbose = verbose
        self.results = []
        self.failures = []
        self.explained = set()
        self.diagnosed = {}

    def print(self, *lines):
        if self.verbose:
            print("\n".join(wrapped for line in lines for wrapped in wrap(line)))

    @property
    def first_failure(self):
        """The header line of the first failing case so far, or `None` if none failed.

        The checks print numbers only for the first failure (`first_failure is None`
        when they report it), so that the output stays short.
        """
        return self.failures[0] if self.failures else None

    def passed(self, header):
        self.print(header.format("PASS"))
        self.results.append(True)

    def failed(self, header, lines, found=()):
        """Prints a failing case: `lines` of comparison, then the diagnosis."""
        self.failures.append(header.format("FAIL"))
        out = [header.format("FAIL"), *("  " + line for line in lines)]
        for entry in list(found)[:2]:
            names = " + ".join(name for name, _ in entry)
            self.diagnosed[names] = self.diagnosed.get(names, 0) + 1
            if len(entry) == 1:
                name, explanation = entry[0]
                if name in self.explained:
                    out.append(f"  DIAGNOSIS: {name} (see above).")
                else:
                    out.append(f"  DIAGNOSIS: {name}: {explanation}")
            elif all(name in self.explained for name, _ in entry):
                out.append(f"  DIAGNOSIS: two mistakes, {names} (see above).")
            else:
                out.append(f"  DIAGNOSIS: two mistakes, {names}:")
                for name, explanation in entry:
                    out.append(
                        f"    - {name}"
                        + (" (see above)." if name in self.explained else f": {explanation}")
                    )
            self.explained.update(name for name, _ in entry)
        self.print(*out)
        self.results.append(False)

    def summary(self, title, reference_name):
        passed, total = sum(self.results), len(self.results)
        if total and passed == total:
            self.print(f"All {total} cases pass: your {title} matches {reference_name}.")
            return True
        lines = [f"{passed}/{total} cases pass."]
        if self.diagnosed:
            ranked = sorted(self.diagnosed.items(), key=lambda item: -item[1])
            lines.append(
                "Most likely mistake: "
                + "; ".join(
                    f"{names} ({count} case{'s' if count > 1 else ''})" for names, count in ranked
                )
            )
        lines.append("Fix the first failing case first: the cases go from simple to complex.")
        self.print(*lines)
        return False
