"""The benchmark scripts' modes that a session can only run with a lent GPU, checked on CPU.

These tests check that the scripts run and report what they should, never
their speed (wall-clock figures on a shared machine are noise).
"""

import importlib.util
import math
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
