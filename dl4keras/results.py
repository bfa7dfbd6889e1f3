"""Headline numbers of a tutorial run, written to ``results/<name>.json``.

Each tutorial ends by saving what it measured (accuracies, timings) together
with the profile and the library versions that produced it. Tests assert on
these files and the documentation site shows them.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

from dl4keras import profiles

RESULTS_DIR_ENV = "DL4KERAS_RESULTS_DIR"


def results_dir() -> Path:
    """Folder for results files: ``$DL4KERAS_RESULTS_DIR`` or ``./results``.

    Examples:
        >>> from dl4keras import results
        >>> str(results.results_dir())  # DL4KERAS_RESULTS_DIR is not set
        'results'
    """
    return Path(os.environ.get(RESULTS_DIR_ENV, "results"))


BACKENDS = ("tensorflow", "jax", "torch")
"""The Keras backends, by the name of their Python package."""


def backend_versions() -> dict:
    """The installed version of each Keras backend's package (`None`: not installed).

    Read from the installed distributions' metadata: nothing is imported.

    Examples:
        >>> from dl4keras import results
        >>> sorted(results.backend_versions())
        ['jax', 'tensorflow', 'torch']
        >>> results.backend_versions()["tensorflow"] is not None  # a dependency of dl4keras
        True
    """
    import importlib.metadata as metadata

    found = {}
    for package in BACKENDS:
        found[package] = None
        # TensorFlow's CPU-only wheel is another distribution of the same package.
        for distribution in (package, f"{package}-cpu"):
            try:
                found[package] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return found


def versions() -> dict:
    """Versions of Python and the main libraries, the Keras backend and the installed backends.

    Returns:
        A dict with `python`, `keras`, `backend` (the one in use), `numpy`,
        `dl4keras` and, for each installed backend package (`tensorflow`,
        `jax`, `torch`), its version.

    Examples:
        >>> import keras
        >>> from dl4keras import results
        >>> info = results.versions()
        >>> sorted(set(info) - set(results.BACKENDS))
        ['backend', 'dl4keras', 'keras', 'numpy', 'python']
        >>> info["backend"] == keras.backend.backend()  # e.g. "jax" with KERAS_BACKEND=jax
        True
        >>> installed = {k: v for k, v in results.backend_versions().items() if v is not None}
        >>> {k: info[k] for k in results.BACKENDS if k in info} == installed
        True
    """
    import keras
    import numpy

    info = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": numpy.__version__,
    }
    info.update({name: v for name, v in backend_versions().items() if v is not None})
    from dl4keras._version import __version__

    info["dl4keras"] = __version__
    return info


def save(name: str, metrics: dict, headline: dict | None = None) -> Path:
    """Writes `metrics` with the profile and versions to ``results/<name>.json``.

    Args:
        name: tutorial name, e.g. ``"01_feature_extraction"``.
        metrics: JSON-serialisable numbers and strings the run measured.
        headline: optional `{what: formatted value}` strings, the few numbers
            a reader should see first; the site's Results page lists them.

    Returns:
        The path of the written file.

    Examples:
        >>> from dl4keras import results
        >>> path = results.save("00_example", {"accuracy": 0.9}, headline={"Accuracy": "90.0%"})
        >>> path.as_posix()
        'results/00_example.json'
    """
    if not name or "/" in name or "\\" in name:
        raise ValueError(f"`name` must be a plain file stem, got {name!r}.")
    headline = dict(headline or {})
    bad = {k: v for k, v in headline.items() if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise ValueError(f"`headline` maps descriptions to formatted strings, got {bad!r}.")
    payload = {
        "tutorial": name,
        "profile": profiles.current(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": versions(),
        "headline": headline,
        "metrics": metrics,
    }
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=_to_builtin) + "\n")
    tmp.replace(path)
    return path


def load(name: str) -> dict:
    """Reads ``results/<name>.json`` written by [`save`][dl4keras.results.save].

    Examples:
        >>> from dl4keras import results
        >>> _ = results.save("00_example", {"accuracy": 0.9}, headline={"Accuracy": "90.0%"})
        >>> saved = results.load("00_example")
        >>> sorted(saved)
        ['created', 'headline', 'machine', 'metrics', 'profile', 'tutorial', 'versions']
        >>> saved["metrics"], saved["headline"]
        ({'accuracy': 0.9}, {'Accuracy': '90.0%'})
    """
    path = results_dir() / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"No results file {path}. Run the tutorial first: dl4keras run {name[:2]}"
        )
    return json.loads(path.read_text())


def _to_builtin(value):
    """JSON fallback for numpy scalars and arrays."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Cannot store {type(value).__name__} in a results file: {value!r}")
