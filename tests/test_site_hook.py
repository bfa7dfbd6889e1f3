"""The site hook: the Results page, the learning path, API links and the exercise boxes."""

import importlib.util
import json
import re
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

HOOK = Path(__file__).resolve().parents[1] / "docs" / "hooks" / "dl4keras_site.py"


def _hook():
    spec = importlib.util.spec_from_file_location("dl4keras_site", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_markdown_lists_each_tutorials_headline(tmp_path):
    payload = {
        "profile": "docs",
        "created": "2026-11-29T03:00:00+00:00",
        "versions": {"keras": "3.15.1", "tensorflow": "2.21.0"},
        "machine": {"cpus": 2},
        "headline": {"(c) pretrained features": "65.9% ± 2.7%"},
        "metrics": {},
    }
    (tmp_path / "01_feature_extraction.json").write_text(json.dumps(payload))
    text = _hook().results_markdown(tmp_path)
    assert "## [01 · 01_feature_extraction](tutorials/01_feature_extraction.ipynb)" in text
    tutorials = tmp_path / "tutorials"
    tutorials.mkdir()
    (tutorials / "01_feature_extraction.py").write_text("# %% [markdown]\n# # Transfer learning\n")
    titled = _hook().results_markdown(tmp_path, tutorials)
    assert "## [01 · Transfer learning](tutorials/01_feature_extraction.ipynb)" in titled
    assert "| (c) pretrained features | 65.9% ± 2.7% |" in text
    assert "Profile `docs`" in text and "Keras 3.15.1" in text


def test_results_markdown_without_results(tmp_path):
    assert "run `make notebooks`" in _hook().results_markdown(tmp_path)


def test_learning_path_shows_the_measured_study_times(tmp_path):
    tutorials, notebooks = tmp_path / "tutorials", tmp_path / "notebooks"
    tutorials.mkdir(), notebooks.mkdir()
    for stem, title in (("01_a", "First"), ("02_b", "Second")):
        (tutorials / f"{stem}.py").write_text(f"# %% [markdown]\n# # {title}\n")
    times = {"core": {"total_min": 38.4}, "going_further": {"total_min": 21.6}}
    (notebooks / "01_a.ipynb").write_text(json.dumps({"metadata": {"dl4keras-time": times}}))
    rows = _hook().learning_path_markdown(tutorials, notebooks).splitlines()
    assert rows[2] == "| 01 | [First](tutorials/01_a.ipynb) | 38 min | +22 min |"
    assert rows[3] == "| 02 | [Second](tutorials/02_b.ipynb) | not built yet | — |"


def test_the_first_mention_of_a_documented_name_links_to_the_api_reference(tmp_path):
    hook = _hook()
    api = tmp_path / "api"
    for module, ids in {
        "backbones": ["dl4keras.backbones", "dl4keras.backbones.build"],
        "training": ["dl4keras.training.schedules", "dl4keras.training.schedules.OneCycle"],
    }.items():
        (api / module).mkdir(parents=True)
        (api / module / "index.html").write_text("".join(f'<h2 id="{i}">x</h2>' for i in ids))
    anchors = hook.api_anchors(tmp_path)
    assert anchors["dl4keras.backbones.build"] == "api/backbones/#dl4keras.backbones.build"
    code = '<span class="n">backbones</span><span class="o">.</span><span class="n">build</span>'
    html = (
        f"<p>Use <code>training.OneCycle(1e-2, 100)</code> and <code>np.mean</code>.</p>"
        f"<pre>{code}(...) then {code}(...)</pre><p><code>training.OneCycle</code></p>"
    )
    linked = hook.link_first_mentions(html, anchors, "../../")
    assert linked.count('class="dl4keras-api"') == 2  # each name once, np.mean not at all
    assert (
        '<a class="dl4keras-api" href="../../api/training/#dl4keras.training.schedules.OneCycle"'
        in linked
    )
    assert 'href="../../api/backbones/#dl4keras.backbones.build" ' in linked
    assert linked.endswith("<p><code>training.OneCycle</code></p>")  # the second mention: plain


# ------------------------------------------------------------ exercises as admonitions


def _notebook():
    import nbformat

    cells = [
        nbformat.v4.new_markdown_cell("# A tutorial\n\nIntro."),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_markdown_cell(
            "## Exercise 9.1: a `layer` of yours\n\n**Task.** Write it.\n\n**Hints.**\n\n- Use x."
        ),
        nbformat.v4.new_code_cell(
            "def mine(a):\n    return a < 2\n\n\nok = check.mine(\n    mine, size=2\n)\n"
            "dl4keras.check.other(mine)\nnp.check(1)",
            metadata={"tags": ["solution"]},
        ),
        nbformat.v4.new_markdown_cell(
            "**Reading the results.** Fine.", metadata={"tags": ["solution"]}
        ),
        nbformat.v4.new_code_cell("print('after the solution')\ncheck.visible(mine)"),
        nbformat.v4.new_markdown_cell("## Going further: Exercise 9.1, part 2\n\nMore."),
        nbformat.v4.new_code_cell("check.part_two(mine)", metadata={"tags": ["solution"]}),
        nbformat.v4.new_markdown_cell("## Exercise 9.2: the last\n\nTask."),
        nbformat.v4.new_code_cell("check.last(mine)", metadata={"tags": ["solution"]}),
    ]
    return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=cells)))


def _render(nb):
    """The notebook as mkdocs-jupyter's template writes it (the parts the hook relies on)."""
    html = ['<div class="jupyter-wrapper">\n<div class="jp-Notebook">\n']
    for cell in nb["cells"]:
        tags = " ".join(f"celltag_{t}" for t in cell["metadata"].get("tags", []))
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            body = re.sub(
                r"^## (.*)$",
                lambda m: f'<h2 id="{m[1][:8]}">{m[1]}<a class="anchor-link" href="#x">¶</a></h2>',
                source,
                flags=re.M,
            )
            html.append(
                '<div class="jp-Cell jp-MarkdownCell jp-Notebook-cell" '
                f'id="cell-id={cell["id"]}">\n'
                f'<div class="jp-InputArea"><div class="jp-RenderedMarkdown {tags}">\n{body}\n'
                "</div>\n</div>\n</div>\n"
            )
        else:
            cell_div = f'<div class="jp-Cell jp-CodeCell jp-Notebook-cell {tags}"'
            html.append(f"{cell_div}>\n" if tags else "")
            html.append(
                f'{cell_div} id="cell-id={cell["id"]}">\n<div class="jp-InputArea"><pre>'
                f"{html_escape(source)}</pre></div>\n"
                '<div class="jp-OutputArea"><pre>&lt;div&gt; out</pre></div>\n</div>\n'
            )
            html.append("</div>\n" if tags else "")
    return "".join(html) + "</div> <!-- jp-Notebook -->\n</div> <!-- jupyter-wrapper -->\n"


class _Ancestry(HTMLParser):
    """For each element with an id: the classes of the elements around it."""

    def __init__(self):
        super().__init__()
        self.stack, self.around = [], {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.around[attrs["id"]] = {c for _, cls in self.stack for c in cls.split()}
        if tag not in ("br", "img", "hr"):
            self.stack.append((tag, attrs.get("class") or tag))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def _ancestry(html):
    parser = _Ancestry()
    parser.feed(html)
    parser.close()
    assert not parser.stack, f"unclosed: {parser.stack}"
    return parser.around


def test_exercise_sections_find_each_exercise_its_solutions_and_self_checks():
    nb = _notebook()
    exercise, last = _hook().exercise_sections(nb)  # "Going further: Exercise ..." is not one
    assert exercise["title"] == "Exercise 9.1: a `layer` of yours"
    ids = [cell["id"] for cell in nb["cells"]]
    assert exercise["cells"] == [(ids[2], False), (ids[3], True), (ids[4], True), (ids[5], False)]
    assert exercise["checks"] == [
        "check.mine(\n    mine, size=2\n)",
        "dl4keras.check.other(mine)",
        "check.visible(mine)",  # a self-check in a cell of its own counts too
    ]
    assert last == {
        "title": "Exercise 9.2: the last",
        "cells": [(ids[8], False), (ids[9], True)],
        "checks": ["check.last(mine)"],
    }
    assert _hook().exercise_sections({"cells": nb["cells"][:2]}) == []


def test_each_exercise_becomes_one_box_with_its_solution_collapsed_and_its_self_check():
    nb = _notebook()
    hook = _hook()
    html = _render(nb)
    boxed = hook.box_exercises(html, hook.exercise_sections(nb))
    around = _ancestry(boxed)  # well nested: each tag closes the one it opened
    ids = [f"cell-id={cell['id']}" for cell in nb["cells"]]
    assert not around[ids[1]] & {"dl4keras-exercise", "dl4keras-solution"}
    assert "dl4keras-exercise" in around[ids[2]] and "dl4keras-solution" not in around[ids[2]]
    for solution in ids[3:5]:  # the two solution cells share one collapsed block
        assert {"dl4keras-exercise", "dl4keras-solution"} <= around[solution]
    assert boxed.count('<details class="success dl4keras-solution">') == 2
    assert boxed.count('<div class="admonition example dl4keras-exercise">') == 2
    assert {"dl4keras-exercise", "dl4keras-solution"} <= around[ids[9]]
    assert not around[ids[7]] & {"dl4keras-exercise", "dl4keras-solution"}
    assert "<details open" not in boxed
    assert "dl4keras-exercise" in around[ids[5]] and "dl4keras-solution" not in around[ids[5]]
    assert not around[ids[6]] & {"dl4keras-exercise", "dl4keras-solution"}
    box = boxed[boxed.index('<div class="admonition example dl4keras-exercise">') :]
    assert box.index("admonition-title") < box.index("**Task.**") < box.index("<details")
    assert box.index("</details>") < box.index("dl4keras-self-check") < box.index(ids[6])
    assert '<p class="admonition-title">Exercise 9.1: a `layer` of yours</p>' in box
    assert (
        "<pre><code>check.mine(\n    mine, size=2\n)\ndl4keras.check.other(mine)\n"
        "check.visible(mine)</code></pre>" in box
    )
    # the page around the boxes is unchanged
    first, middle, second = (html.rfind("<div", 0, html.index(i)) for i in (ids[2], ids[6], ids[8]))
    assert boxed.startswith(html[:first]) and html[middle:second] in boxed


def test_an_exercise_whose_cells_are_not_on_the_page_is_left_alone(caplog):
    nb = _notebook()
    hook = _hook()
    html = _render(
        {"cells": [c for c in nb["cells"] if "solution" not in c["metadata"].get("tags", [])]}
    )
    with caplog.at_level("WARNING"):
        assert hook.box_exercises(html, hook.exercise_sections(nb), "t.ipynb") == html
    assert "t.ipynb" in caplog.text and "Exercise 9.1" in caplog.text


def test_every_tutorial_exercise_has_a_self_check():
    import jupytext

    hook = _hook()
    tutorials = sorted((HOOK.parents[2] / "tutorials").glob("[0-9][0-9]_*.py"))
    assert len(tutorials) == 6
    for path in tutorials:
        nb = json.loads(jupytext.writes(jupytext.read(path), fmt="ipynb"))
        sections = hook.exercise_sections(nb)
        assert sections, f"{path.name}: no exercise section"
        for section in sections:
            assert any(solution for _, solution in section["cells"]), (path.name, section)
            assert section["checks"], f"{path.name}: {section['title']!r} has no self-check"
