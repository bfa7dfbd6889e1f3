"""tools/vit_recipe_search.py, and the recipe comparisons that tutorial 04 prints."""

import importlib.util
import json
from pathlib import Path

from dl4keras import vit
from dl4keras.vit.recipes import compare_variants, recipe_table

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


def test_recipe_table_has_one_line_per_run():
    rows = [
        dict(recipe=name, train_accuracy=1.0, val_accuracy=v, val_errors=e, train_seconds=3.0)
        for name, v, e in (("plain", 0.9, 27), ("+ schedule", 0.95, 14))
    ]
    lines = recipe_table(rows).splitlines()
    assert lines[0].split() == ["recipe", "train", "acc", "val", "acc", "val", "errors", "time"]
    assert lines[1].split() == ["plain", "100.0%", "90.0%", "27", "3s"]
    assert lines[2].split()[:2] == ["+", "schedule"] and len(lines) == 3


def test_compare_variants_measures_each_variant(capsys):
    import numpy as np
    import pytest

    x = np.random.default_rng(0).uniform(size=(20, 8, 8, 1)).astype("float32")
    y = np.arange(20) % 10
    variants = {"patch 4": dict(patch_size=4), "patch 2": dict()}
    rows = compare_variants(variants, vit.PLAIN, 1, x, y, x[:10], y[:10], depth=1)
    assert [r["variant"] for r in rows] == ["patch 4", "patch 2"]
    assert [r["tokens"] for r in rows] == [4, 16]  # the plain recipe pools the mean: no [CLS]
    plain = dict(depth=1, pooling="gap")  # what the plain recipe builds
    expected = [vit.build("vit_digits", **plain, **v).count_params() for v in variants.values()]
    assert [r["parameters"] for r in rows] == expected
    assert all(0 <= r["val_accuracy"] <= 1 and r["images_per_second"] > 0 for r in rows)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["variant", "tokens", "val", "acc", "train", "images/s"]
    assert out[1].startswith("patch 4") and len(out) == 3
    with pytest.raises(ValueError, match="`variants`"):
        compare_variants({"patch 1": 1}, vit.PLAIN, 1, x, y, x, y)
    with pytest.raises(ValueError, match="`variants`"):
        compare_variants({}, vit.PLAIN, 1, x, y, x, y)
