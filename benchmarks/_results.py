"""The results format every benchmark writes with `--output PATH` (one JSON file).

    {
      "format": 1,
      "benchmark": "vit",                      # the script's name
      "title": "dl4keras ViT vs KerasHub ViT",  # a human heading
      "measures": "training throughput ...",  # what is measured
      "baseline": "keras_hub.models.ViTImageClassifier ...",
      "ratios": {"dl4keras / KerasHub": {
          "value": 1.02,                       # a float, or null: not measured
          "means": "images/s of ours / images/s of KerasHub's",
          "better": "higher"}},                # or "lower"
      "timings": {"dl4keras": {"unit": "images/s", "runs": [...]}, ...},
      "settings": {...},                       # the script's arguments
      "extra": {...},                          # anything else the script reports
      "quick": false,                          # true: a --quick check, numbers mean nothing
      "note": "",                              # e.g. "the machine was shared"
      "machine": {"cpu": ..., "cores": ..., "ram_gib": ..., "gpu": ...},
      "versions": {"python": ..., "keras": ..., "tensorflow": ..., "backend": ...},
      "date": "2026-01-31T12:00:00Z",          # UTC
      "commit": "b6685ed+dirty"                # short hash, "+dirty": uncommitted changes
    }

`benchmarks/run_all.py` writes one such file per benchmark into
`benchmarks/results/`, and `docs/hooks/performance.py` renders them on the
site's Performance page. The benchmarks load this module by its path (the
folder is no package): `_results = load_sibling("_results")`.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

FORMAT = 1
BETTER = ("higher", "lower")
REQUIRED = ("benchmark", "title", "measures", "baseline", "ratios", "timings")
PACKAGES = ("keras", "tensorflow", "jax", "torch", "keras-hub", "numpy", "dl4keras")
REPOSITORY = Path(__file__).resolve().parents[1]
_NOT_RESULTS = ":(exclude)benchmarks/results"


def load_sibling(name):
    """Another script of `benchmarks/` as a module (the folder is no package)."""
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds `--output PATH` and `--note TEXT` to a benchmark's parser."""
    parser.add_argument("--output", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument(
        "--note", default="", help="a remark stored with the results (e.g. the load)"
    )


def ratio(value, means: str, better: str) -> dict:
    """One ratio entry: its value (float, or None if not measured) and how to read it."""
    if better not in BETTER:
        raise ValueError(f"better must be one of {BETTER}; got {better!r}")
    if value is not None:
        value = float(value)
        if not math.isfinite(value):
            value = None  # JSON has no NaN; null means "not measured"
    return {"value": value, "means": means, "better": better}


def timing(runs, unit: str) -> dict:
    """Raw timings of one contender: every run's figure in `unit` (e.g. "ms/step")."""
    return {"unit": unit, "runs": [float(r) for r in runs]}


def _read(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine() -> dict:
    """The CPU model, core count, RAM and GPUs (from `nvidia-smi`) of this machine."""
    ram_kib = _read("/proc/meminfo", "MemTotal")
    gpus = None
    if shutil.which("nvidia-smi"):
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        gpus = ", ".join(names) if done.returncode == 0 and names else None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {
        "cpu": _read("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": round(int(ram_kib.split()[0]) / 2**20, 1) if ram_kib else None,
        "gpu": gpus,
        "system": platform.platform(),
    }


def versions(backend: str | None = None) -> dict:
    """Python's and the installed packages' versions, and the Keras backend."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    if backend is None:
        keras = sys.modules.get("keras")
        backend = keras.backend.backend() if keras else os.environ.get("KERAS_BACKEND")
    found["backend"] = backend or "tensorflow"
    return found


def git_commit(repository=REPOSITORY) -> str | None:
    """The short hash of HEAD, with "+dirty" if tracked files have changes; None outside git.

    The committed results themselves (`benchmarks/results/`) do not count:
    `run_all.py` rewrites them one after another, and the code that measured
    is what the commit names.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repository,
            capture_output=True,
            text=True,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", _NOT_RESULTS],
            cwd=repository,
            capture_output=True,
            text=True,
        )
    except OSError:  # no git
        return None
    dirty = "+dirty" if status.stdout.strip() else ""
    return head.stdout.strip() + dirty


def make(
    benchmark,
    title,
    measures,
    baseline,
    ratios,
    timings,
    settings=None,
    extra=None,
    quick=False,
    note="",
    backend=None,
) -> dict:
    """A results payload (the format above) stamped with machine, versions, date, commit."""
    payload = {
        "format": FORMAT,
        "benchmark": benchmark,
        "title": title,
        "measures": measures,
        "baseline": baseline,
        "ratios": ratios,
        "timings": timings,
        "settings": settings or {},
        "extra": extra or {},
        "quick": bool(quick),
        "note": note,
        "machine": machine(),
        "versions": versions(backend),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(),
    }
    validate(payload)
    return payload


def validate(payload: dict) -> dict:
    """Raises ValueError naming what is wrong with a results payload; returns it."""
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise ValueError(f"results payload: missing {', '.join(missing)}")
    if not isinstance(payload["ratios"], dict):
        raise ValueError(f"ratios must be a dict; got {type(payload['ratios']).__name__}")
    for name, entry in payload["ratios"].items():
        if not isinstance(entry, dict) or not {"value", "means", "better"} <= set(entry):
            raise ValueError(f"ratio {name!r} needs value, means and better; got {entry!r}")
        if entry["better"] not in BETTER:
            raise ValueError(
                f"ratio {name!r}: better must be one of {BETTER}; got {entry['better']!r}"
            )
        value = entry["value"]
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(
                f"ratio {name!r}: value must be a finite number or null; got {value!r}"
            )
    return payload


def write(path, payload: dict) -> Path:
    """Writes `payload` (validated) as indented JSON to `path`; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(validate(payload), indent=2) + "\n")
    print(f"results written to {path}")
    return path


def save(args, benchmark, title, measures, baseline, ratios, timings, **fields):
    """`make` + `write` to `args.output` if the script was given `--output`; returns the payload."""
    settings = {
        k: v
        for k, v in vars(args).items()
        if k not in ("output", "note") and not k.startswith("_") and "worker" not in k
    }
    payload = make(
        benchmark,
        title,
        measures,
        baseline,
        ratios,
        timings,
        settings=settings,
        quick=getattr(args, "quick", False),
        note=args.note,
        **fields,
    )
    if args.output:
        write(args.output, payload)
    return payload
