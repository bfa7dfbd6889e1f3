"""The benchmark scripts, their results files and their runner, checked in quick modes.

These tests check that the scripts run and report what they should (also
the modes that only a lent GPU can measure), never their speed (wall-clock
figures on a shared machine are noise).
"""

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vit_mixed_precision_mode_dry_run(capsys):
    ratios = _load("vit").main(["--gpu-mixed-precision", "--dry-run"])
    assert set(ratios) == {"mixed_bfloat16", "mixed_float16"}
    assert all(math.isfinite(r) and r > 0 for r in ratios.values())
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "float32" in out


def test_vit_dry_run_needs_the_mixed_precision_mode(capsys):
    with pytest.raises(SystemExit):
        _load("vit").main(["--dry-run"])
    assert "--dry-run checks the --gpu-mixed-precision mode" in capsys.readouterr().err


def test_training_quick_mode_reports_both_ratios(capsys):
    ratios = _load("training").main(["--quick"])
    assert set(ratios) == {
        "throughput mixed_bfloat16 / float32",
        "peak memory accumulated / full",
    }
    assert all(math.isfinite(r) and r > 0 for r in ratios.values())
    out = capsys.readouterr().out
    assert "QUICK" in out and "Summary" in out
    for line in ("float32", "mixed_bfloat16", "floor", "gradient_accumulation_steps=4"):
        assert line in out
    assert "ratio accumulated / full (peak - floor)" in out


def test_training_memory_batch_must_split_into_micro_batches(capsys):
    with pytest.raises(SystemExit):
        _load("training").main(["--memory-batch-size", "30", "--accumulation-steps", "4"])
    assert "must be a multiple of --accumulation-steps" in capsys.readouterr().err


# ------------------------------------------------------------ results format and runner


def test_run_all_quick_writes_one_valid_results_file_per_benchmark_it_runs(tmp_path):
    # All but training and layerwise_lr, whose quick modes have their own tests
    # (here and in tests/test_layerwise_lr.py): the runner and the format are the same.
    names = ("feature_extraction", "attention", "vit", "backends")
    command = [sys.executable, str(BENCHMARKS / "run_all.py"), "--quick", "--only", *names]
    command += ["--results-dir", str(tmp_path), "--note", "a test run"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Summary (QUICK: the numbers mean nothing" in done.stdout
    results = _load("_results")
    assert set(names) <= set(_load("run_all").NAMES)
    for name in names:
        payload = results.validate(json.loads((tmp_path / f"{name}.json").read_text()))
        assert payload["benchmark"] == name and payload["quick"] is True
        assert payload["note"] == "a test run" and payload["title"] and payload["baseline"]
        assert payload["ratios"] and payload["timings"]
        for entry in payload["ratios"].values():
            assert entry["value"] is None or (math.isfinite(entry["value"]) and entry["value"] > 0)
        for timing in payload["timings"].values():
            assert timing["unit"] and timing["runs"]
        assert payload["machine"]["cpu"] and payload["machine"]["cores"] >= 1
        assert payload["versions"]["python"] and payload["versions"]["keras"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["date"])
        assert payload["commit"] is None or re.fullmatch(
            r"[0-9a-f]{4,}(\+dirty)?", payload["commit"]
        )
    backends = json.loads((tmp_path / "backends.json").read_text())
    ratios, left_out = backends["ratios"], backends["extra"]["left_out"]
    assert "tensorflow, jit_compile=True / TensorFlow (default)" in ratios
    assert "torch, jit_compile=True" in left_out  # --quick leaves torch.compile out
    for backend, default in (("jax", True), ("torch", False)):
        if importlib.util.find_spec(backend) is None:
            assert "not installed" in left_out[backend]
            continue
        for jit in (False, True):
            if backend == "torch" and jit:
                continue
            name = f"{backend}, jit_compile={jit}" + (" (default)" if jit == default else "")
            assert f"{name} / TensorFlow (default)" in ratios


def test_run_all_rejects_an_unknown_benchmark():
    with pytest.raises(ValueError, match="unknown benchmark.*'nope'.*choose from"):
        _load("run_all").run(["nope"])


def test_a_missing_backend_is_one_clear_line(monkeypatch, capsys, tmp_path):
    backends = _load("backends")
    monkeypatch.setattr(backends, "installed", lambda backend: backend != "jax")
    output = tmp_path / "backends.json"
    assert backends.main(["--backends", "jax", "--quick", "--output", str(output)]) == {}
    out = capsys.readouterr().out
    assert "jax: not installed (no module 'jax'); install it with `pip install jax`" in out
    assert "no TensorFlow run with the default compile(): no ratios" in out
    payload = json.loads(output.read_text())
    assert payload["ratios"] == {} and "jax" in payload["extra"]["left_out"]


def test_backends_rejects_an_unknown_backend(capsys):
    with pytest.raises(SystemExit):
        _load("backends").main(["--backends", "theano"])
    assert "--backends: unknown theano; choose from tensorflow, jax, torch" in (
        capsys.readouterr().err
    )


def test_results_format_checks_its_ratios():
    results = _load("_results")
    assert results.ratio(float("nan"), "x", "lower")["value"] is None  # JSON has no NaN
    with pytest.raises(ValueError, match="better must be one of.*got 'up'"):
        results.ratio(1.0, "x", "up")
    with pytest.raises(ValueError, match="missing baseline"):
        results.validate({"benchmark": "b", "title": "t", "measures": "m"} | {"ratios": {}})
    bad = {"r": {"value": float("inf"), "means": "x", "better": "higher"}}
    fields = dict(benchmark="b", title="t", measures="m", baseline="b", timings={})
    with pytest.raises(ValueError, match="ratio 'r': value must be a finite number or null"):
        results.validate({**fields, "ratios": bad})
    machine = results.machine()
    assert machine["cores"] >= 1 and set(machine) >= {"cpu", "ram_gib", "gpu"}


def test_attention_memory_is_the_allocator_peak_of_a_step():
    """A train step holds at least its softmax weights (batch x heads x seq x seq floats)."""
    import argparse

    batch, heads, seq = 4, 4, 96
    args = argparse.Namespace(batch=batch, dim=32, heads=heads, steps=2, jit=False, causal=False)
    attention = _load("attention")
    weights_mib = batch * heads * seq * seq * 4 / 2**20
    for name in attention.CONTENDERS:
        mib, what = attention.measure_memory(name, args, seq)
        assert what == "allocator peak"
        assert weights_mib <= mib <= 40 * weights_mib, (name, mib, weights_mib)


def test_the_commit_is_dirty_for_changed_code_not_for_rewritten_results(tmp_path):
    results = _load("_results")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "vit.py").write_text("a = 1\n")
    (tmp_path / "benchmarks" / "results" / "vit.json").write_text("{}\n")
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run(git + command, check=True)
    head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    assert results.git_commit(tmp_path) == head.stdout.strip()
    (tmp_path / "benchmarks" / "results" / "vit.json").write_text('{"new": 1}\n')
    assert results.git_commit(tmp_path) == head.stdout.strip()  # run_all rewrote a result
    (tmp_path / "benchmarks" / "vit.py").write_text("a = 2\n")
    assert results.git_commit(tmp_path) == head.stdout.strip() + "+dirty"
