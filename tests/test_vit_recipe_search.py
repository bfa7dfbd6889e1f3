"""tools/vit_recipe_search.py: the quick mode writes a file the tutorial can read."""

import importlib.util
import json
from pathlib import Path

from dl4keras import vit

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "vit_recipe_search", ROOT / "tools" / "vit_recipe_search.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_search_writes_a_readable_record_and_resumes(tmp_path, capsys):
    tool = load_tool()
    out = tmp_path / "search.json"
    tool.main(["--quick", "--out", str(out)])
    search = json.loads(out.read_text())
    assert search["quick"] is True and search["complete"] is True
    assert search["script"] == "tools/vit_recipe_search.py"
    assert search["date"] and search["commit"] and search["versions"]["keras"]
    assert search["data"]["fit_images"] + search["data"]["val_images"] == 1347
    assert [r["epochs"] for r in search["runs"]] == [1, 1]
    assert {r["val_images"] for r in search["runs"]} == {270}
    assert len(search["test_runs"]) == 1 and len(search["anchors"]) == 1
    assert 0 <= search["anchors"][0]["test_accuracy"] <= 1
    lines = vit.search_table(vit.recipe_search_results(out))
    assert all(len(line) <= 80 for line in lines)
    # --resume keeps every finished run and trains nothing new.
    capsys.readouterr()
    tool.main(["--quick", "--resume", "--out", str(out)])
    assert "errors" not in capsys.readouterr().out
    again = json.loads(out.read_text())
    assert again["runs"] == search["runs"] and again["anchors"] == search["anchors"]


def test_every_search_row_is_a_valid_recipe():
    tool = load_tool()
    for _group, text, ingredients, _config, epochs, seeds, split in tool.SEARCH:
        vit.recipe(**ingredients)
        assert epochs in (20, 30, 40) and seeds and split >= 1, text
    texts = [row[1] for row in tool.SEARCH]
    assert len(texts) == len(set(texts))
