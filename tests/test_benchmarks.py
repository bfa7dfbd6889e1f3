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
