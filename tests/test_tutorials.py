"""Runs every tutorial end to end in the smoke profile, offline.

Tutorials are discovered from ``tutorials/*.py``: a new tutorial is tested
without a new line here. Each runs in a subprocess with the network cut off
and must write ``results/<name>.json`` with finite numbers.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
OFFLINE_SITE = Path(__file__).parent / "offline_site"


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


@pytest.mark.parametrize("script", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_offline_in_smoke_profile(script, tmp_path):
    env = dict(os.environ)
    env.update(
        DL4KERAS_PROFILE="smoke",
        DL4KERAS_RESULTS_DIR=str(tmp_path / "results"),
        MPLBACKEND="Agg",
        KERAS_HOME=str(tmp_path / "keras_home"),  # no cached weights: the offline path
        PYTHONPATH=os.pathsep.join([str(OFFLINE_SITE), env.get("PYTHONPATH", "")]),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{script.name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    )

    path = tmp_path / "results" / f"{script.stem}.json"
    assert path.exists(), f"{script.name} did not write {path.name}"
    payload = json.loads(path.read_text())
    assert payload["tutorial"] == script.stem
    assert payload["profile"] == "smoke"
    assert payload["versions"]["keras"].startswith("3.")
    assert payload["headline"], "results.save(..., headline=...) names the key numbers"
    numbers = list(_numbers(payload["metrics"]))
    assert numbers, "the results file holds no measured numbers"
    assert all(math.isfinite(v) for v in numbers)
