"""MkDocs hook of the Performance page (declared under ``hooks:`` in ``mkdocs.yml``).

Renders the committed benchmark results, ``benchmarks/results/<name>.json``
(written by ``benchmarks/run_all.py`` in the format of
``benchmarks/_results.py``), into ``docs/performance.md`` at build time, in
place of the ``<!-- dl4keras:performance -->`` marker: for each benchmark
that ``benchmarks/run_all.py`` lists, a section with its ratios (a table
and a bar chart, an SVG drawn by matplotlib and added to the built site as
``performance/<name>.svg``), what was measured against what, the machine,
the versions, the date and the commit, and the raw measurements, collapsed.
A benchmark without a results file gets a line saying how to make it.

A results file that cannot be read, or one from a ``--quick`` check, is
reported as a warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import math
import statistics
import textwrap
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.performance")

MARKER = "<!-- dl4keras:performance -->"
PLOTS = "performance"  # the plots' folder in the built site
BETTER = {"higher": "higher is better", "lower": "lower is better"}
COLOURS = {True: "#2e7d32", False: "#e65100"}  # better than the baseline, or not


def expected_benchmarks(benchmarks_dir: Path) -> list[tuple[str, str, bool]]:
    """(name, title, needs_gpu) of each benchmark that ``run_all.py`` runs; [] if none."""
    script = benchmarks_dir / "run_all.py"
    if not script.is_file():
        return []
    spec = importlib.util.spec_from_file_location("benchmarks_run_all", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [(b.name, b.title, b.needs_gpu) for b in module.BENCHMARKS]


def _checked(payload) -> dict:
    """`payload` if it has what the page shows; else ValueError naming what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError(f"expected a JSON object, got {type(payload).__name__}")
    missing = [k for k in ("title", "ratios", "timings") if k not in payload]
    if missing:
        raise ValueError(f"no {', '.join(missing)}")
    for name, entry in payload["ratios"].items():
        value = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or entry.get("better") not in BETTER:
            raise ValueError(f"ratio {name!r}: better must be 'higher' or 'lower'")
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            raise ValueError(f"ratio {name!r}: value must be a number or null, got {value!r}")
    return payload


def read_results(results_dir: Path) -> dict[str, dict | str]:
    """{name: payload} of ``results_dir/*.json``; a file that cannot be read maps to its error."""
    results = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            results[path.stem] = _checked(payload)
        except (OSError, ValueError) as error:
            results[path.stem] = f"{type(error).__name__}: {error}"
    return results


def _is_better(entry: dict) -> bool:
    value = entry["value"]
    return value >= 1 if entry["better"] == "higher" else value <= 1


def plot_svg(payload: dict) -> bytes | None:
    """A horizontal bar chart of the measured ratios of one result, as SVG; None if none."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    measured = [(n, e) for n, e in payload["ratios"].items() if (e.get("value") or 0) > 0]
    if not measured:
        return None
    values = [e["value"] for _, e in measured]
    labels = [
        "\n".join(textwrap.wrap(name, 40)) + f"\n({BETTER[e['better']]})" for name, e in measured
    ]
    # Bars grow from 1 (the baseline) on a log scale: 2x and 0.5x look alike in size.
    reach = max(max(abs(math.log10(v)) for v in values if v > 0) * 1.35, math.log10(1.5))
    if reach <= math.log10(2.2):
        ticks = (0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2)
    elif reach <= math.log10(12):
        ticks = (0.1, 0.2, 0.5, 1, 2, 5, 10)
    else:
        ticks = tuple(10.0**k for k in range(-6, 7))
    ticks = [t for t in ticks if abs(math.log10(t)) <= reach]
    with rc_context({"svg.hashsalt": "dl4keras-performance", "font.size": 9}):
        lines = max(label.count("\n") + 1 for label in labels)
        height = 0.9 + len(measured) * (0.17 * lines + 0.12)
        figure = Figure(figsize=(6.4, height), facecolor="white")
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        rows = list(range(len(measured)))
        colours = [COLOURS[_is_better(e)] for _, e in measured]
        widths = [v - 1.0 for v in values]
        axes.barh(rows, widths, left=1.0, color=colours, height=0.6)
        axes.set_xscale("log")
        axes.set_xlim(10**-reach, 10**reach)
        axes.set_xticks(ticks, [f"{t:g}×" for t in ticks])
        axes.minorticks_off()
        axes.axvline(1.0, color="black", linewidth=1)
        axes.set_yticks(rows, labels)
        axes.invert_yaxis()
        for row, value in zip(rows, values):
            axes.annotate(
                f"{value:.3g}",
                (value, row),
                xytext=(3 if value >= 1 else -3, 0),
                textcoords="offset points",
                ha="left" if value >= 1 else "right",
                va="center",
                fontsize=8,
            )
        axes.set_xlabel("ratio to the baseline (log scale; 1× = the same)")
        axes.legend(
            handles=[
                Patch(color=COLOURS[True], label="better than the baseline"),
                Patch(color=COLOURS[False], label="worse than the baseline"),
            ],
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=2,
            frameon=False,
            fontsize=8,
        )
        axes.spines[["top", "right", "left"]].set_visible(False)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _number(value) -> str:
    if value is None or not math.isfinite(value):
        return "not measured"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _stamp(payload: dict) -> str:
    machine, versions = payload.get("machine", {}), payload.get("versions", {})
    ram = machine.get("ram_gib")
    hardware = [
        f"{machine.get('cpu', 'an unknown CPU')}",
        f"{machine.get('cores', '?')} cores",
        f"{ram:g} GiB RAM" if ram else None,
        f"GPU: {machine['gpu']}" if machine.get("gpu") else "no GPU",
    ]
    software = [
        f"Python {versions.get('python', '?')}",
        f"Keras {versions.get('keras', '?')}",
        f"TensorFlow {versions.get('tensorflow', '?')}",
        f"backend {versions.get('backend', '?')}",
    ]
    for package, name in (("jax", "JAX"), ("torch", "PyTorch")):
        if package in str(versions.get("backend")) and versions.get(package):
            software.insert(-1, f"{name} {versions[package]}")
    commit = payload.get("commit")
    text = (
        f"Measured on {payload.get('date', 'an unknown date')[:10]}"
        + (f" at commit `{commit}`" if commit else "")
        + f", on {', '.join(h for h in hardware if h)}; {', '.join(software)}."
    )
    if payload.get("note"):
        text += f" Note: {payload['note'].rstrip('.')}."
    return text


def _raw_table(timings: dict) -> str:
    rows = ["| measured | unit | median | runs |", "|---|---|--:|---|"]
    for name, timing in timings.items():
        runs = timing.get("runs", [])
        median = statistics.median(runs) if runs else None
        shown = ", ".join(_number(r) for r in runs)
        rows.append(f"| {_cell(name)} | {timing.get('unit', '')} | {_number(median)} | {shown} |")
    return "\n".join(rows)


def result_markdown(name: str, payload: dict, plot: str | None) -> str:
    """One benchmark's section body (no heading): ratios, plot, stamp, raw measurements."""
    parts = []
    if payload.get("quick"):
        parts.append(
            '!!! warning "A quick check"\n\n    These results come from a `--quick` '
            "run with tiny sizes: their numbers mean nothing."
        )
    parts.append(
        f"**Measured:** {payload.get('measures', 'not stated')}. "
        f"**Baseline:** {payload.get('baseline', 'not stated')}."
    )
    rows = ["| ratio | value | better | what it means |", "|---|--:|---|---|"]
    for ratio, entry in payload["ratios"].items():
        rows.append(
            f"| {_cell(ratio)} | {_number(entry.get('value'))} | "
            f"{entry.get('better', '?')} | {_cell(entry.get('means', ''))} |"
        )
    parts.append("\n".join(rows))
    if plot:
        parts.append(f"![{_cell(payload['title'])}: the ratios as bars]({plot})")
    parts.append(_stamp(payload))
    raw = textwrap.indent(_raw_table(payload.get("timings", {})), "    ")
    parts.append(
        f'??? note "Raw measurements"\n\n{raw}\n\n    All of it: `benchmarks/results/{name}.json`.'
    )
    return "\n\n".join(parts)


def missing_markdown(name: str, needs_gpu: bool) -> str:
    where = " on a machine with a GPU" if needs_gpu else ""
    return (
        f"No results file (`benchmarks/results/{name}.json`) yet: run "
        f"`python benchmarks/run_all.py --only {name}`{where} and commit it."
    )


def performance_markdown(
    results_dir: Path, expected=(), plots: dict[str, str] | None = None, warn=log.warning
) -> str:
    """The Performance page's sections, from the results in ``results_dir``.

    ``expected`` lists (name, title, needs_gpu) in page order: each gets a
    section, with a line saying how to make its results if the file is
    missing; results not listed follow, sorted. ``plots`` maps a name to its
    plot's URI (relative to the page's source). ``warn`` receives each problem.
    """
    plots = plots or {}
    results = read_results(results_dir)
    sections = [(n, t, g) for n, t, g in expected]
    known = {n for n, _, _ in sections}
    sections += [(n, None, False) for n in sorted(results) if n not in known]
    if not sections:
        return "No benchmark results yet: run `python benchmarks/run_all.py`."
    parts = []
    for name, title, needs_gpu in sections:
        payload = results.get(name)
        if isinstance(payload, dict):
            if payload.get("quick"):
                warn(f"benchmarks/results/{name}.json is a --quick check: its numbers mean nothing")
            body = result_markdown(name, payload, plots.get(name))
            title = payload.get("title") or title
        elif isinstance(payload, str):
            warn(f"benchmarks/results/{name}.json cannot be read: {payload}")
            body = f"The results file `benchmarks/results/{name}.json` cannot be read: {payload}."
        else:
            body = missing_markdown(name, needs_gpu)
        parts.append(f"## {title or name}\n\n{body}\n")
    return "\n".join(parts)


# ------------------------------------------------------------ the MkDocs events


def _paths(config):
    root = Path(config.config_file_path).parent
    return root / "benchmarks", root / "benchmarks" / "results"


_plots: dict[str, str] = {}


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the tests import this module without mkdocs

    _plots.clear()
    _, results_dir = _paths(config)
    for name, payload in read_results(results_dir).items():
        svg = plot_svg(payload) if isinstance(payload, dict) else None
        if svg is not None:
            uri = f"{PLOTS}/{name}.svg"
            files.append(File.generated(config, uri, content=svg))
            _plots[name] = uri
    return files


def on_page_markdown(markdown, page, config, files):
    if MARKER not in markdown:
        return markdown
    benchmarks_dir, results_dir = _paths(config)
    levels = page.file.src_uri.count("/")
    plots = {name: "../" * levels + uri for name, uri in _plots.items()}
    sections = performance_markdown(results_dir, expected_benchmarks(benchmarks_dir), plots)
    return markdown.replace(MARKER, sections)
