"""No tutorial types a measured number into its prose.

DESIGN.md: "A markdown cell never types in an accuracy, time or ratio that the
code measured: the code prints it (an f-string sentence is fine), or the
prose points at the output. Figures from papers or other projects carry
their source."

The test reads every markdown cell of every tutorial and fails on a figure
with a unit of measurement: a percentage (`83%`), a duration (`66 s`,
`2 minutes`), a ratio (`10×`, `2.5x`, `3-fold`) or a difference in points
(`+7 points`). A figure passes when

- its paragraph cites a source: "(Smith 2017)", "Dosovitskiy et al. 2021",
  a year, a URL or "arXiv" (figures from papers and other projects); or
- it is code (inside backticks, e.g. a configured value such as
  `` `20%` `` of the data, or a formula inside `$...$`).

Sizes such as `8×8` or `224×224` are not ratios and are not flagged.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

FIGURE = re.compile(
    r"(?<![\w.])[+−-]?\d+(?:[.,]\d+)?\s?"
    r"(?:%|×(?!\s?\d)|x\b|-fold\b|\s?(?:s|seconds?|min|minutes?|hours?|points?|pts)\b)"
)
CITATION = re.compile(r"et al\.|\b(?:19|20)\d\d\b|https?://|arXiv", re.IGNORECASE)
CODE = re.compile(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$", re.DOTALL)


def markdown_paragraphs(path):
    """(line number, paragraph text) of every paragraph of the markdown cells."""
    in_markdown, start, lines = False, 0, []
    for number, line in enumerate(path.read_text().splitlines() + ["# %%"], start=1):
        if line.startswith("# %%"):
            if in_markdown:
                text = "\n".join(lines)
                offset = 0
                for paragraph in re.split(r"\n\s*\n", text):
                    yield start + offset, paragraph
                    offset += paragraph.count("\n") + 2
            in_markdown, start, lines = "[markdown]" in line, number + 1, []
        elif in_markdown:
            lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))


def typed_figures(path):
    """The figures with units that a tutorial's prose states without a source."""
    found = []
    for line, paragraph in markdown_paragraphs(path):
        prose = CODE.sub("", paragraph)
        if CITATION.search(prose):
            continue
        for match in FIGURE.finditer(prose):
            context = prose[max(0, match.start() - 40) : match.end() + 20].replace("\n", " ")
            found.append(f"{path.name}:{line}: {match.group().strip()!r} in '...{context}...'")
    return found


def test_the_rule_catches_typed_figures_and_spares_sources_and_sizes(tmp_path):
    script = tmp_path / "00_example.py"
    script.write_text(
        "# %% [markdown]\n"
        "# When we ran it, the probe reached 75.5% in 66 s, 3× faster.\n"
        "#\n"
        "# The ViT paper reports 98.1% (Dosovitskiy et al. 2021).\n"
        "#\n"
        "# Patches of 4×4 pixels on 8×8 digits; a `20%` validation split; $x = 5%$.\n"
        "\n"
        "# %%\n"
        'print(f"{0.5:.0%}")  # code cells are not prose: 50%\n'
    )
    found = typed_figures(script)
    assert [f.split(": ")[1].split(" in ")[0] for f in found] == ["'75.5%'", "'66 s'", "'3×'"]
    assert all(f.startswith("00_example.py:2:") for f in found)


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_prose_types_in_no_measured_figure(script):
    found = typed_figures(script)
    assert not found, (
        "Markdown states measured figures that the code should print (or cite their source):\n"
        + "\n".join(found)
    )
