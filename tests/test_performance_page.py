"""The hook that renders benchmarks/results/*.json into the site's Performance page."""

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "hooks" / "performance.py"


def _hook():
    spec = importlib.util.spec_from_file_location("performance_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _payload(**changes):
    payload = {
        "format": 1,
        "benchmark": "vit",
        "title": "Our ViT vs theirs",
        "measures": "training throughput of two ViTs",
        "baseline": "their ViT",
        "ratios": {
            "ours / theirs": {
                "value": 1.234,
                "means": "images/s ours / theirs",
                "better": "higher",
            },
            "memory ours / theirs": {"value": 1.5, "means": "peak MiB", "better": "lower"},
            "skipped one": {"value": None, "means": "not run", "better": "higher"},
        },
        "timings": {
            "ours": {"unit": "images/s", "runs": [100.0, 120.0, 110.0]},
            "theirs": {"unit": "images/s", "runs": [90.0, 95.0, 80.0]},
        },
        "quick": False,
        "note": "the machine was shared",
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "ram_gib": 23.5, "gpu": None},
        "versions": {"python": "3.11.7", "keras": "3.15.1", "tensorflow": "2.21.0"},
        "date": "2026-12-01T14:00:00Z",
        "commit": "abc1234+dirty",
    }
    payload["versions"]["backend"] = "tensorflow"
    payload.update(changes)
    return payload


def _write(directory, name, payload):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(payload))


def test_a_result_becomes_a_section_with_ratios_machine_date_and_commit(tmp_path):
    _write(tmp_path, "vit", _payload())
    warnings = []
    text = _hook().performance_markdown(
        tmp_path, [("vit", "ViT", False)], {"vit": "performance/vit.svg"}, warnings.append
    )
    assert warnings == []
    assert text.startswith("## Our ViT vs theirs\n")  # the payload's human title
    assert "| ours / theirs | 1.23 | higher | images/s ours / theirs |" in text
    assert "| memory ours / theirs | 1.5 | lower | peak MiB |" in text
    assert "| skipped one | not measured | higher | not run |" in text
    assert "**Measured:** training throughput of two ViTs. **Baseline:** their ViT." in text
    assert "Measured on 2026-12-01 at commit `abc1234+dirty`, on Test CPU 9000" in text
    assert "2 cores, 23.5 GiB RAM, no GPU" in text and "Keras 3.15.1" in text
    assert "Note: the machine was shared." in text
    assert "![Our ViT vs theirs: the ratios as bars](performance/vit.svg)" in text
    assert '??? note "Raw measurements"' in text
    assert "    | ours | images/s | 110 | 100, 120, 110 |" in text


def test_a_missing_result_gets_a_line_saying_how_to_make_it(tmp_path):
    expected = [("vit", "Our ViT", False), ("gpu", "On a GPU", True)]
    text = _hook().performance_markdown(tmp_path, expected)
    assert "## Our ViT\n\nNo results file (`benchmarks/results/vit.json`) yet" in text
    assert "run `python benchmarks/run_all.py --only vit` and commit it." in text
    assert "`python benchmarks/run_all.py --only gpu` on a machine with a GPU" in text
    assert "No benchmark results yet" in _hook().performance_markdown(tmp_path)


def test_results_not_listed_follow_in_order(tmp_path):
    _write(tmp_path, "zeta", _payload(title="Zeta"))
    _write(tmp_path, "alpha", _payload(title="Alpha"))
    text = _hook().performance_markdown(tmp_path, [("vit", "ViT", False)])
    assert text.index("## ViT") < text.index("## Alpha") < text.index("## Zeta")


def test_unreadable_and_quick_results_are_shown_and_warned_about(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    _write(tmp_path, "bad", _payload(ratios={"r": {"value": 1.0, "better": "up"}}))
    _write(tmp_path, "quick", _payload(quick=True))
    warnings = []
    text = _hook().performance_markdown(tmp_path, warn=warnings.append)
    assert "`benchmarks/results/broken.json` cannot be read: JSONDecodeError" in text
    assert "`benchmarks/results/bad.json` cannot be read" in text
    assert "better must be 'higher' or 'lower'" in text
    assert '!!! warning "A quick check"' in text
    assert len(warnings) == 3
    assert any("quick.json is a --quick check" in w for w in warnings)


def test_the_plot_is_an_offline_svg_drawn_the_same_every_time():
    hook = _hook()
    svg = hook.plot_svg(_payload())
    assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    assert svg == hook.plot_svg(_payload())  # no date, fixed ids: rebuilds do not churn
    assert b'href="http' not in svg and b"url(http" not in svg
    assert b"ours / theirs" in svg or b"ours" in svg  # labels are drawn as text or paths
    assert hook.plot_svg(_payload(ratios={"r": {"value": None, "better": "lower"}})) is None


def test_the_hook_adds_the_plots_and_fills_the_page(tmp_path):
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

    _write(tmp_path / "benchmarks" / "results", "vit", _payload())
    (tmp_path / "docs").mkdir()
    config = MkDocsConfig(config_file_path=str(tmp_path / "mkdocs.yml"))
    config.load_dict({"site_name": "t", "docs_dir": str(tmp_path / "docs"), "hooks": [str(HOOK)]})
    assert config.validate() == ([], [])
    files = config.plugins.on_files(Files([]), config=config)  # as mkdocs calls its hooks
    plot = files.get_file_from_path("performance/vit.svg")
    assert plot is not None and b"<svg" in plot.content_bytes
    page = SimpleNamespace(file=SimpleNamespace(src_uri="performance.md"))
    source = "# Performance\n\n<!-- dl4keras:performance -->\n"
    markdown = config.plugins.on_page_markdown(source, page=page, config=config, files=files)
    assert "dl4keras:performance" not in markdown and "## Our ViT vs theirs" in markdown
    assert "](performance/vit.svg)" in markdown
    home = config.plugins.on_page_markdown("# Home\n", page=page, config=config, files=files)
    assert home == "# Home\n"


def test_the_page_lists_every_benchmark_of_the_runner():
    names = [name for name, _, _ in _hook().expected_benchmarks(ROOT / "benchmarks")]
    scripts = {p.stem for p in (ROOT / "benchmarks").glob("[a-z]*.py")} - {"run_all"}
    assert scripts <= set(names)  # each script's results have a place on the page
    assert "backends" in names and "vit_gpu_mixed_precision" in names


def test_the_committed_results_render_without_warnings():
    results = ROOT / "benchmarks" / "results"
    warnings = []
    hook = _hook()
    text = hook.performance_markdown(
        results, hook.expected_benchmarks(ROOT / "benchmarks"), warn=warnings.append
    )
    assert warnings == []  # no unreadable file, no --quick check committed
    for payload in hook.read_results(results).values():
        assert f"## {payload['title']}" in text
