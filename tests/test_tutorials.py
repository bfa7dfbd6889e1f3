"""Runs every tutorial end to end in the smoke profile, offline.

Tutorials are discovered from ``tutorials/*.py``: a new tutorial is tested
without a new line here. Each runs in a Jupyter kernel, as the site build runs
it (``tools/build_notebooks.py``), with the network cut off, and must write
``results/<name>.json`` with finite numbers.
"""

import importlib.util
import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
OFFLINE_SITE = Path(__file__).parent / "offline_site"
BUILD_TOOL = ROOT / "tools" / "build_notebooks.py"
CACHE_ENV = "DL4KERAS_NOTEBOOK_CACHE"
"""Where to keep the executed notebooks (default: a temporary folder per test)."""


def test_tutorials_are_discovered():
    assert TUTORIALS, "no tutorials/NN_*.py found"


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def _build_tool():
    spec = importlib.util.spec_from_file_location("build_notebooks", BUILD_TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


BACKENDS_LINE = re.compile(r"^# \*\*Backends:\*\* (.+?)\.?$", re.MULTILINE)
BACKEND_NAMES = {"TensorFlow": "tensorflow", "JAX": "jax", "PyTorch": "torch"}


def _backends(script):
    """The backends a tutorial's header says it supports, e.g. ["TensorFlow", "JAX"]."""
    match = BACKENDS_LINE.search(script.read_text())
    assert match, f"{script.name}: no '# **Backends:** ...' line in its header"
    return [name.strip() for name in match.group(1).split(",")]


JAX_TUTORIALS = [p for p in TUTORIALS if "JAX" in _backends(p)]


def test_every_tutorial_states_its_backends_and_the_backends_page_agrees():
    page = (ROOT / "docs" / "backends.md").read_text()
    rows = dict(re.findall(r"^\| (\d\d) [^|]+\| ([^|]+?) \|$", page, re.MULTILINE))
    for script in TUTORIALS:
        stated = _backends(script)
        assert set(stated) <= set(BACKEND_NAMES), f"{script.name}: unknown backend in {stated}"
        assert stated[0] == "TensorFlow", f"{script.name}: every tutorial runs on TensorFlow"
        number = script.stem[:2]
        assert rows.get(number) == ", ".join(stated), (
            f"docs/backends.md says tutorial {number} supports {rows.get(number)!r}; "
            f"its header says {', '.join(stated)!r}"
        )


def _run_smoke(script, tmp_path, monkeypatch, cache):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(OFFLINE_SITE), os.environ.get("PYTHONPATH", "")])
    )
    tool = _build_tool()
    layout = tool.Layout(
        root=ROOT, out=tmp_path / "notebooks", cache=cache, results=tmp_path / "results"
    )
    try:
        tool.build_one(script, "smoke", layout, log=lambda message: None)
    except tool.TutorialError as err:
        pytest.fail(str(err), pytrace=False)
    path = tmp_path / "results" / f"{script.stem}.json"
    assert path.exists(), f"{script.name} did not write {path.name}"
    return json.loads(path.read_text())


@pytest.mark.parametrize("script", JAX_TUTORIALS, ids=[p.stem for p in JAX_TUTORIALS])
def test_tutorial_runs_on_jax_in_smoke_profile(script, tmp_path, monkeypatch):
    # The kernel inherits KERAS_BACKEND; its own cache folder, so that the
    # TensorFlow notebooks that the site build reuses stay as they are.
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    payload = _run_smoke(script, tmp_path, monkeypatch, cache=tmp_path / "cache")
    assert payload["versions"]["backend"] == "jax"
    numbers = list(_numbers(payload["metrics"]))
    assert numbers and all(math.isfinite(v) for v in numbers)


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_offline_in_smoke_profile(script, tmp_path, monkeypatch):
    # The tutorial runs as the site runs it: in a Jupyter kernel, through
    # tools/build_notebooks.py, with the network cut off (sitecustomize) and no
    # cached weights. With DL4KERAS_NOTEBOOK_CACHE set (CI does), the executed
    # notebook lands in that cache, and the smoke site build that follows
    # reuses it instead of running the tutorial a second time.
    cache = os.environ.get(CACHE_ENV) or tmp_path / "cache"
    payload = _run_smoke(script, tmp_path, monkeypatch, cache=cache)
    assert (tmp_path / "notebooks" / f"{script.stem}.ipynb").is_file()
    assert payload["tutorial"] == script.stem
    assert payload["profile"] == "smoke"
    assert payload["versions"]["keras"].startswith("3.")
    assert payload["headline"], "results.save(..., headline=...) names the key numbers"
    numbers = list(_numbers(payload["metrics"]))
    assert numbers, "the results file holds no measured numbers"
    assert all(math.isfinite(v) for v in numbers)


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_section_heading_starts_a_markdown_cell(script):
    """The site collapses "Going further" sections cell by cell: a heading must open its cell."""
    lines = script.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if line.startswith("# ## "):
            before = [text for text in lines[: number - 1] if text.strip()]
            assert before and before[-1].startswith("# %% [markdown]"), (
                f"{script.name}:{number}: {line!r} is inside a cell; start a new "
                "`# %% [markdown]` cell with it"
            )
