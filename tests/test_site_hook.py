"""The site hook that fills the Results page from results/*.json."""

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
    assert "## [01_feature_extraction](tutorials/01_feature_extraction.ipynb)" in text
    assert "| (c) pretrained features | 65.9% ± 2.7% |" in text
    assert "Profile `docs`" in text and "Keras 3.15.1" in text


def test_results_markdown_without_results(tmp_path):
    assert "run `make notebooks`" in _hook().results_markdown(tmp_path)
