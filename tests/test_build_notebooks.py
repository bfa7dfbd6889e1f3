"""Tests of tools/build_notebooks.py on dummy tutorials in a temporary folder."""

import importlib.util
import json
import sys
from pathlib import Path

import nbformat
import pytest

TOOL = Path(__file__).resolve().parent.parent / "tools" / "build_notebooks.py"

TUTORIAL = """\
# %% [markdown]
# # A dummy tutorial
#
# **Description:** Prints its profile.

# %%
import json
import os
from pathlib import Path

profile = os.environ["DL4KERAS_PROFILE"]
print(f"profile={profile} cwd={Path.cwd()}")

# %% tags=["solution"]
results = Path(os.environ["DL4KERAS_RESULTS_DIR"])
results.mkdir(parents=True, exist_ok=True)
(results / "01_dummy.json").write_text(json.dumps({"profile": profile, "answer": 42}))
"""

BROKEN = """\
# %% [markdown]
# # A broken tutorial

# %%
x = 1

# %%
def inverse(y):
    return 1 / y

inverse(x - 1)

# %%
print("never reached")
"""


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("build_notebooks", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture
def layout(tool, tmp_path):
    (tmp_path / "tutorials").mkdir()
    return tool.Layout(root=tmp_path)


def test_execute_cache_and_reexecute(tool, layout, capsys):
    script = layout.tutorials / "01_dummy.py"
    script.write_text(TUTORIAL)
    notebook = layout.out / "01_dummy.ipynb"
    results = layout.results / "01_dummy.json"

    assert tool.build("smoke", layout=layout) == {"01_dummy": "executed"}
    assert "01_dummy: executed in" in capsys.readouterr().out
    nb = nbformat.read(notebook, as_version=4)
    stamp = nb.cells[0]
    assert stamp.cell_type == "markdown" and tool.STAMP_TAG in stamp.metadata["tags"]
    assert "<code>smoke</code> profile" in stamp.source
    for name in ("dl4keras", "Keras", "TensorFlow", "Python"):
        assert name in stamp.source
    assert 'href="../01_dummy.py"' in stamp.source
    assert f'href="{tool.COLAB_URL}/01_dummy.ipynb"' in stamp.source
    assert tool.COLAB_URL.endswith(f"github/{tool.REPOSITORY}/blob/main/notebooks")
    info = stamp.metadata[tool.STAMP_TAG]
    assert info["profile"] == "smoke" and info["python"] and info["keras"]
    printed = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert f"profile=smoke cwd={layout.root}" in printed  # cwd = repository root
    assert nb.cells[3].metadata["tags"] == ["solution"]
    assert json.loads(results.read_text()) == {"profile": "smoke", "answer": 42}

    # Unchanged: a cache hit, which also restores the results file.
    notebook.unlink()
    results.unlink()
    assert tool.build("smoke", layout=layout) == {"01_dummy": "cached"}
    assert capsys.readouterr().out.strip() == "01_dummy: cached"
    assert nbformat.read(notebook, as_version=4).cells[0].source == stamp.source
    assert json.loads(results.read_text())["answer"] == 42

    # A changed source runs again.
    script.write_text(TUTORIAL.replace("answer", "reply"))
    assert tool.build("smoke", layout=layout) == {"01_dummy": "executed"}
    assert "reply" in results.read_text()


def test_cache_key(tool, tmp_path):
    package = tmp_path / "pkg"
    (package / "assets").mkdir(parents=True)
    (package / "sub").mkdir()
    (package / "__init__.py").write_text(
        "from pkg import module, unused\nfrom pkg.sub.deep import B\n"
    )
    (package / "module.py").write_text('"""Doc."""\n\nfrom pkg import helper\n\nA = helper.H\n')
    (package / "helper.py").write_text("H = 1\n")
    (package / "unused.py").write_text("U = 1\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "deep.py").write_text("B = 1\n")
    (package / "assets" / "weights.h5").write_bytes(b"\1\2")
    script = tmp_path / "01_x.py"
    script.write_text("# %%\nfrom pkg import B, module\nprint(module.A, B)\n")
    layout = tool.Layout(root=tmp_path, package=package)
    assert sorted(tool.used_modules(script, package)) == [
        "pkg", "pkg.helper", "pkg.module", "pkg.sub", "pkg.sub.deep",
    ]  # fmt: skip

    key = tool.cache_key(script, "smoke", layout)
    assert tool.cache_key(script, "smoke", layout) == key
    assert tool.cache_key(script, "docs", layout) != key

    def changed(path, text):
        path.write_text(text)
        return tool.cache_key(script, "smoke", layout) != key

    # Docstrings, comments and unused modules do not re-execute the tutorial ...
    assert not changed(
        package / "module.py", '"""New doc."""\n\nfrom pkg import helper  # c\n\nA = helper.H\n'
    )
    assert not changed(package / "unused.py", "U = 2\n")
    # ... code it uses does, through its imports and the names it takes from the root.
    for path, text in (
        (package / "helper.py", "H = 2\n"),
        (package / "sub" / "deep.py", "B = 2\n"),
    ):
        assert changed(path, text)
        key = tool.cache_key(script, "smoke", layout)
    (package / "assets" / "weights.h5").write_bytes(b"\1\3")
    assert tool.cache_key(script, "smoke", layout) != key


def test_failing_tutorial(tool, layout, capsys):
    (layout.tutorials / "02_broken.py").write_text(BROKEN)

    assert tool.main(["--profile", "smoke"], layout=layout) == 1
    err = capsys.readouterr().err
    assert "tutorial 02_broken failed in code cell 2 (line 8 of 02_broken.py)" in err
    assert "def inverse(y):" in err and "inverse(x - 1)" in err  # the cell source
    assert "ZeroDivisionError" in err
    assert "nbclient" not in err and "\x1b[" not in err  # no library internals, no colour codes
    assert not (layout.out / "02_broken.ipynb").exists()
    assert not list(layout.cache.glob("02_broken*"))


def test_only_selects_tutorials(tool, layout):
    for name in ("01_a", "02_b", "10_c"):
        (layout.tutorials / f"{name}.py").write_text("# %%\n")
    (layout.tutorials / "helpers.py").write_text("# %%\n")
    folder = layout.tutorials
    assert [p.stem for p in tool.find_tutorials(folder)] == ["01_a", "02_b", "10_c"]
    assert [p.stem for p in tool.find_tutorials(folder, ["1", "10_c"])] == ["01_a", "10_c"]
    with pytest.raises(SystemExit, match="--only 7"):
        tool.find_tutorials(folder, ["7"])


def test_bad_profile(tool, layout, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--profile", "fast"], layout=layout)
    assert exit_info.value.code == 2
    assert "unknown profile 'fast'; expected one of smoke, docs, full" in capsys.readouterr().err


def test_native_start_up_logs_are_dropped(tool):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("import tensorflow")
    cell.outputs = [
        nbformat.v4.new_output(
            "stream",
            name="stderr",
            text=(
                "WARNING: All log messages before absl::InitializeLog() is called are written"
                " to STDERR\n"
                "I0000 00:00:1795919347.237247    3654 cudart_stub.cc:31] Could not find cuda"
                " drivers on your machine, GPU will not be used.\n"
                "E0000 00:00:1795920439.252003   13670 cuda_platform.cc:52] failed call to"
                " cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
                "W0000 00:00:1795920439.252003   13670 allocator.cc:52] a real warning\n"
                "E0000 00:00:1796130028.852450   23982 util.cc:131] oneDNN supports DT_INT64 only"
                " on platforms with AVX-512. Falling back to the default Eigen-based"
                " implementation if present.\n"
            ),
        ),
        nbformat.v4.new_output("stream", name="stderr", text="I0000 00:00:1.2  1 a.cc:1] x\n"),
        nbformat.v4.new_output("stream", name="stdout", text="kept\n"),
    ]
    nb.cells.append(cell)
    tool._drop_native_info_logs(nb)
    assert [o.text for o in cell.outputs] == [
        "W0000 00:00:1795920439.252003   13670 allocator.cc:52] a real warning\n",
        "kept\n",
    ]


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for kind, source, *tags in cells:
        make = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(make(source, metadata={"tags": list(tags)} if tags else {}))
    return nb


def test_going_further_sections_run_to_the_next_other_heading(tool):
    nb = _notebook(
        ("md", "# Title\n\n**Exercise:** 4.9\n\nIntro."),
        ("code", "x = 1"),
        ("md", "## Going further: more depth"),
        ("code", "y = 2"),
        ("md", "### a subsection stays in it"),
        ("md", "## Going further: even more"),
        ("code", "z = 3"),
        ("md", "## Results"),
        ("code", "print(x)"),
    )
    assert tool.sections(nb) == [
        None, None, "Going further: more depth", "Going further: more depth",
        "Going further: more depth", "Going further: even more", "Going further: even more",
        None, None,
    ]  # fmt: skip


def test_study_time_adds_reading_exercise_and_measured_run_time(tool):
    # One minute of reading each: READING_WPM words (3 in the title and
    # headings), CODE_LINES_PER_MIN lines of code.
    code = "\n".join(f"a{i} = {i}" for i in range(tool.CODE_LINES_PER_MIN))
    nb = _notebook(
        ("md", f"# Title\n\n**Exercise:** none\n\n{' '.join(['w'] * (tool.READING_WPM - 3))}"),
        ("code", code),
        ("code", "# a comment is not a line to read\nanswer = 42\nprint(answer)", "solution"),
        ("md", f"## Going further: more\n\n{' '.join(['w'] * (tool.READING_WPM - 3))}"),
        ("code", code),
        ("md", "## Results"),
    )
    seconds = [0.0, 60.0, 30.0, 0.0, 120.0, 0.0]
    times = tool.add_study_time(nb, seconds)
    core, further = times["core"], times["going_further"]
    assert core["reading_min"] == pytest.approx(1 + 1 + 1 / tool.READING_WPM)  # + "Results"
    assert core["exercise_min"] == pytest.approx(2 * tool.EXERCISE_MIN_PER_LINE)
    assert core["run_min"] == pytest.approx(1.5)
    assert further["reading_min"] == pytest.approx(2.0) and further["run_min"] == 2.0
    header = nb.cells[0].source.split("\n")
    assert header[:4] == ["# Title", "", "**Exercise:** none", ""]
    assert header[4].startswith(
        f"**Time:** core ≈ {core['total_min']:.0f} min · going further +4 min"
    )
    assert "1.5 min + 2.0 min" in header[4]
    assert [c.metadata.get("tags", []) for c in nb.cells] == [
        [], [], ["solution"], ["going-further"], ["going-further"], [],
    ]  # fmt: skip
    assert nb.metadata[tool.TIME_TAG] == times


def test_the_build_writes_the_time_line_and_logs_it(tool, layout, capsys):
    script = layout.tutorials / "01_dummy.py"
    script.write_text(
        TUTORIAL + "\n# %% [markdown]\n# ## Going further: nothing\n\n# %%\nprint(2)\n"
    )
    tool.build("smoke", layout=layout)
    out = capsys.readouterr().out
    assert "01_dummy: core ≈ " in out and "going further +" in out
    nb = nbformat.read(layout.out / "01_dummy.ipynb", as_version=4)
    assert "**Time:** core ≈ " in nb.cells[1].source  # cell 0 is the stamp
    assert nb.cells[-1].metadata["tags"] == ["going-further"]


def test_the_real_tutorials_depend_on_the_modules_they_use(tool):
    root = TOOL.parent.parent
    used = {
        script.stem[:2]: set(tool.used_modules(script, root / "dl4keras"))
        for script in (root / "tutorials").glob("0[36]_*.py")
    }
    assert {"dl4keras.attention", "dl4keras.check.attention", "dl4keras.hub"} <= used["03"]
    assert not {"dl4keras.ensemble", "dl4keras.vit", "dl4keras.check.training"} & used["03"]
    assert {"dl4keras.ensemble", "dl4keras.calibration", "dl4keras.training.schedules"} <= used[
        "06"
    ]


def test_placeholders_let_the_site_be_served_before_the_tutorials_ran(tool, layout, capsys):
    (layout.tutorials / "01_dummy.py").write_text(TUTORIAL)
    (layout.tutorials / "02_other.py").write_text(TUTORIAL.replace("A dummy", "Another"))
    assert tool.main(["--placeholders", "--profile", "smoke"], layout=layout) == 0
    page = nbformat.read(layout.out / "02_other.ipynb", as_version=4)
    assert page.metadata[tool.PLACEHOLDER_TAG] and "Being executed" in page.cells[0].source
    assert page.cells[0].source.startswith("# Another tutorial")
    assert "placeholders for 01_dummy, 02_other" in capsys.readouterr().out
    tool.build("smoke", only=["01"], layout=layout)  # the real notebook replaces its page
    assert tool.PLACEHOLDER_TAG not in nbformat.read(layout.out / "01_dummy.ipynb", 4).metadata
    assert tool.write_placeholders("smoke", layout=layout) == []  # nothing replaced


def test_the_time_line_follows_an_exercise_paragraph_of_several_lines(tool):
    nb = _notebook(
        ("md", "# Title\n\n**Exercise:** fit it (a batch of 256\nfrom batches of 32).\n\nMore."),
        ("code", "x = 1"),
    )
    tool.add_study_time(nb, [0.0, 1.0])
    header = nb.cells[0].source.split("\n")
    assert header[2:5] == ["**Exercise:** fit it (a batch of 256", "from batches of 32).", ""]
    assert header[5].startswith("**Time:** core ≈") and header[6:] == ["", "More."]
