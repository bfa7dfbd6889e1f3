"""dl4keras.notebooks and the `tutorials` and `export-exercises` commands, on test scripts."""

import json
from pathlib import Path

import pytest

from dl4keras import cli, notebooks

SCRIPT = """\
# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # A tutorial
#
# **Exercise:** 4.9

# %%
import numpy as np

# %% [markdown]
# ## Exercise 4.9: double it

# %% tags=["solution"]
def double(x):
    return 2 * x


double_ok = check.doubling(double)

# %% [markdown] tags=["solution"]
# **Reading the results.** The solution doubles.

# %%
print(double(2))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "tutorials" / "01_demo.py"
    path.parent.mkdir()
    path.write_text(SCRIPT)
    return path


def test_read_cells_follows_the_percent_format(script):
    cells = notebooks.read_cells(script)
    assert [(c.kind, c.tags) for c in cells] == [
        ("markdown", []), ("code", []), ("markdown", []), ("code", ["solution"]),
        ("markdown", ["solution"]), ("code", []),
    ]  # fmt: skip
    assert cells[0].source == "# A tutorial\n\n**Exercise:** 4.9"  # uncommented, YAML skipped
    assert cells[3].source.startswith("def double(x):") and cells[3].source.endswith("(double)")


def test_the_student_version_drops_solutions_and_keeps_self_checks(script):
    student = notebooks.student_cells(notebooks.read_cells(script))
    assert len(student) == 5 and all("solution" not in c.tags for c in student)
    exercise = student[3]
    assert exercise.tags == ["exercise"] and "def double" not in exercise.source
    assert exercise.source.splitlines()[-1] == "double_ok = check.doubling(double)"
    assert "Reading the results" not in "".join(c.source for c in student)


def test_written_notebooks_are_valid_nbformat(script, tmp_path):
    nbformat = pytest.importorskip("nbformat")  # a test dependency, not a package one
    for student in (False, True):
        path = notebooks.write_notebook(script, tmp_path / f"out{student}.ipynb", student=student)
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert any("solution" in c.metadata.get("tags", []) for c in nb.cells) is not student
    teacher = json.loads((tmp_path / "outFalse.ipynb").read_text())
    assert teacher["cells"][3]["source"][0] == "def double(x):\n"


def test_bad_tags_are_a_clear_error(tmp_path):
    path = tmp_path / "01_bad.py"
    path.write_text("# %% tags=[1, 2]\nx = 1\n")
    with pytest.raises(ValueError, match="tags that are not strings"):
        notebooks.read_cells(path)


def test_tutorials_command_copies_scripts_and_notebooks(script, tmp_path, capsys):
    folder = str(script.parent)
    assert cli.main(["tutorials", str(tmp_path / "copy"), "--tutorials-dir", folder]) == 0
    assert (tmp_path / "copy" / "01_demo.py").read_text() == SCRIPT
    assert (tmp_path / "copy" / "01_demo.ipynb").is_file()
    assert "Copied 1 tutorials" in capsys.readouterr().out


def test_export_exercises_writes_student_and_teacher_and_never_overwrites(script, tmp_path, capsys):
    folder, target = str(script.parent), tmp_path / "class"
    assert cli.main(["export-exercises", str(target), "--tutorials-dir", folder]) == 0
    student = json.loads((target / "student" / "01_demo.ipynb").read_text())
    teacher = json.loads((target / "teacher" / "01_demo.ipynb").read_text())
    assert "def double" not in json.dumps(student) and "def double" in json.dumps(teacher)
    assert "check.doubling(double)" in json.dumps(student)
    before = (target / "student" / "01_demo.ipynb").read_text()
    assert cli.main(["export-exercises", str(target), "--tutorials-dir", folder]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (target / "student" / "01_demo.ipynb").read_text() == before


def test_colab_notebooks_install_dl4keras_first(script, tmp_path):
    path = notebooks.write_notebook(script, tmp_path / "colab.ipynb", colab=True)
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[1]["source"]) == (
        notebooks.COLAB_SETUP
    )
    compile(notebooks.COLAB_SETUP, "setup", "exec")  # valid Python outside IPython too


def test_the_committed_colab_notebooks_match_the_tutorials(tmp_path):
    """The site's "Open in Colab" links open notebooks/: they must be today's tutorials."""
    root = Path(__file__).resolve().parents[1]
    fresh = notebooks.write_colab_notebooks(root / "tutorials", tmp_path)
    committed = sorted((root / "notebooks").glob("*.ipynb"))
    assert [p.name for p in committed] == [p.name for p in fresh], "run `make colab-notebooks`"
    for new, old in zip(fresh, committed, strict=True):
        assert new.read_text() == old.read_text(), (
            f"{old.name} is stale: run `make colab-notebooks`"
        )
