"""The site hook that fills the Results page and the home page's learning path."""

import importlib.util
import json
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
