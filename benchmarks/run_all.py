"""Run every benchmark, each in its own process, and collect their results as JSON.

Each benchmark script runs in turn (a fresh Python process each, so that no
run inherits another's memory or threads) with `--output`, writing
`benchmarks/results/<name>.json` in the format of `benchmarks/_results.py`;
the site's Performance page (`docs/hooks/performance.py`) renders those
files. A benchmark that needs a GPU is skipped, with a line saying so, on a
machine without one. A failed benchmark is reported and the others still run;
the exit status is 1 if any failed.

    python benchmarks/run_all.py                        # all, into benchmarks/results/
    python benchmarks/run_all.py --only vit backends    # some
    python benchmarks/run_all.py --note "machine shared with other jobs"
    python benchmarks/run_all.py --quick                # check every script (tiny sizes)

`--quick` runs each script's quick check (their numbers mean nothing) and
writes into `build/benchmarks-quick/` unless `--results-dir` says otherwise,
so that it never replaces the measured results.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
QUICK_RESULTS = HERE.parent / "build" / "benchmarks-quick"
sys.path.insert(0, str(HERE))  # the folder is no package
import _results  # noqa: E402


class Benchmark(NamedTuple):
    """One results file: the script that makes it, its arguments, a human title."""

    name: str
    script: str
    title: str
    args: tuple = ()
    quick_args: tuple = ("--quick",)
    needs_gpu: bool = False


BENCHMARKS = (
    Benchmark(
        "feature_extraction",
        "feature_extraction.py",
        "Extract features once, or run the frozen backbone every epoch",
    ),
    Benchmark(
        "attention",
        "attention.py",
        "dl4keras.MultiHeadAttention vs keras.layers.MultiHeadAttention",
    ),
    Benchmark("layerwise_lr", "layerwise_lr.py", "The cost of layer-wise learning rates"),
    Benchmark("vit", "vit.py", "dl4keras's ViT vs KerasHub's ViT"),
    Benchmark(
        "vit_gpu_mixed_precision",
        "vit.py",
        "Mixed precision on a GPU: vit_small",
        args=("--gpu-mixed-precision",),
        quick_args=("--gpu-mixed-precision", "--dry-run"),
        needs_gpu=True,
    ),
    Benchmark(
        "training",
        "training.py",
        "Training techniques: mixed precision and gradient accumulation",
    ),
    Benchmark("backends", "backends.py", "One ViT on TensorFlow, JAX and PyTorch"),
)
NAMES = tuple(b.name for b in BENCHMARKS)


def command(benchmark, output, quick=False, note=""):
    """The command line that runs `benchmark` and writes its results to `output`."""
    args = benchmark.quick_args if quick else benchmark.args
    line = [sys.executable, str(HERE / benchmark.script), *args, "--output", str(output)]
    return line + (["--note", note] if note else [])


def run(names=NAMES, results_dir=None, quick=False, note=""):
    """Runs the benchmarks `names` in order; returns {name: status}.

    A status is "ok", "skipped: <why>" or "failed: <why>"."""
    unknown = [name for name in names if name not in NAMES]
    if unknown:
        raise ValueError(f"names: unknown benchmark(s) {unknown}; choose from {', '.join(NAMES)}")
    results_dir = Path(results_dir or (QUICK_RESULTS if quick else RESULTS))
    results_dir.mkdir(parents=True, exist_ok=True)
    has_gpu = bool(_results.machine()["gpu"])
    status = {}
    for benchmark in (b for b in BENCHMARKS if b.name in names):
        if benchmark.needs_gpu and not has_gpu and not quick:
            status[benchmark.name] = "skipped: needs a GPU (nvidia-smi finds none)"
            print(f"\n== {benchmark.name}: {status[benchmark.name]}", flush=True)
            continue
        output = results_dir / f"{benchmark.name}.json"
        line = command(benchmark, output, quick, note)
        print(f"\n== {benchmark.name}: {' '.join(line[1:])}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(line, cwd=HERE.parent)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            status[benchmark.name] = f"failed: exit status {done.returncode}"
        elif not output.is_file():
            status[benchmark.name] = f"failed: wrote no {output}"
        else:
            status[benchmark.name] = "ok"
        print(f"== {benchmark.name}: {status[benchmark.name]} ({seconds:.0f} s)", flush=True)
    print(f"\nSummary ({'QUICK: the numbers mean nothing; ' if quick else ''}{results_dir})")
    for name, state in status.items():
        print(f"  {name:<24} {state}")
        path = results_dir / f"{name}.json"
        if state == "ok":
            for ratio, entry in json.loads(path.read_text())["ratios"].items():
                value = "not measured" if entry["value"] is None else f"{entry['value']:.3f}"
                print(f"    {ratio:<64} {value:>12} ({entry['better']} is better)")
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME", help=", ".join(NAMES))
    parser.add_argument("--results-dir", type=Path, help="default benchmarks/results/")
    parser.add_argument("--quick", action="store_true", help="each script's quick check")
    parser.add_argument("--note", default="", help="stored in every results file")
    args = parser.parse_args(argv)
    status = run(args.only or NAMES, args.results_dir, args.quick, args.note)
    return 1 if any(state.startswith("failed") for state in status.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
