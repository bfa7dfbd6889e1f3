"""MkDocs hooks of the dl4keras site (declared under ``hooks:`` in ``mkdocs.yml``).

* Publishes each ``tutorials/NN_name.py`` script next to its page, as
  ``tutorials/NN_name.py``: the "run it yourself" link of the page stamp.
* Fills the Results page (``docs/results.md``) with the headline numbers that
  the executed tutorials wrote to ``results/*.json``, under each tutorial's
  title, and the home page's learning path with the study times that the
  notebook build measured (``docs/tutorials/*.ipynb``).
* Keeps the site offline: mkdocs-jupyter's notebook template loads MathJax and
  mermaid from a CDN, so those scripts are removed (math is rendered by the
  vendored KaTeX, see ``docs/javascripts/katex.js``), and any page that still
  loads a script, stylesheet, image or frame from another host is reported as a
  warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.dl4keras_site")

_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
_MERMAID = re.compile(r'<script type="module">(?:(?!</script>).)*?jp-Mermaid.*?</script>', re.S)
_EXTERNAL = re.compile(
    r"""<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc=["']?(?:https?:)?//"""
    r"""|<link\b[^>]*\bhref=["']?(?:https?:)?//"""
    r"""|@import\s+(?:url\()?["']?(?:https?:)?//"""
    r"""|url\(\s*["']?(?:https?:)?//"""
    r"""|import\(\s*["'](?:https?:)?//""",
    re.I,
)


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the tests import this module without mkdocs

    tutorials = Path(config.config_file_path).parent / "tutorials"
    for script in sorted(tutorials.glob("[0-9]*.py")):
        uri = f"tutorials/{script.name}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(script)))
    return files


RESULTS_MARKER = "<!-- dl4keras:results -->"
PATH_MARKER = "<!-- dl4keras:learning-path -->"
_TITLE = re.compile(r"^# # (.+)$", re.MULTILINE)


def tutorial_title(tutorials: Path, stem: str) -> str:
    """The title of ``tutorials/<stem>.py`` (its first ``# # `` heading), else the stem."""
    script = tutorials / f"{stem}.py"
    match = _TITLE.search(script.read_text(encoding="utf-8")) if script.is_file() else None
    return match.group(1).strip() if match else stem


def learning_path_markdown(tutorials: Path, notebooks: Path) -> str:
    """The tutorials in order with the study times of their executed notebooks."""
    rows = ["| # | tutorial | core | going further |", "|---|---|---|---|"]
    for script in sorted(tutorials.glob("[0-9][0-9]_*.py")):
        times = {}
        notebook = notebooks / f"{script.stem}.ipynb"
        if notebook.is_file():
            times = json.loads(notebook.read_text()).get("metadata", {}).get("dl4keras-time", {})
        core = times.get("core", {}).get("total_min")
        further = times.get("going_further", {}).get("total_min")
        rows.append(
            f"| {script.stem[:2]} | [{tutorial_title(tutorials, script.stem)}]"
            f"(tutorials/{script.stem}.ipynb) | "
            + (f"{core:.0f} min" if core is not None else "not built yet")
            + " | "
            + (f"+{further:.0f} min" if further else "—")
            + " |"
        )
    return "\n".join(rows) + "\n"


def results_markdown(results_dir: Path, tutorials: Path | None = None) -> str:
    """Markdown tables of the headline numbers in ``results_dir/*.json``."""
    parts = []
    for path in sorted(results_dir.glob("[0-9]*.json")):
        payload = json.loads(path.read_text())
        versions = payload.get("versions", {})
        title = tutorial_title(tutorials, path.stem) if tutorials else path.stem
        parts.append(
            f"## [{path.stem[:2]} · {title}](tutorials/{path.stem}.ipynb)\n\n"
            f"Profile `{payload.get('profile')}`, {payload.get('created', '')[:10]}, "
            f"Keras {versions.get('keras', '?')}, TensorFlow {versions.get('tensorflow', '?')}, "
            f"{payload.get('machine', {}).get('cpus', '?')} CPU cores. "
            f"All numbers: `results/{path.name}`.\n\n| measured | value |\n|---|---|\n"
            + "".join(f"| {k} | {v} |\n" for k, v in payload.get("headline", {}).items())
        )
    return "\n".join(parts) or "No results yet: run `make notebooks` to execute the tutorials."


def on_page_markdown(markdown, page, config, files):
    root = Path(config.config_file_path).parent
    if RESULTS_MARKER in markdown:
        results = results_markdown(root / "results", root / "tutorials")
        markdown = markdown.replace(RESULTS_MARKER, results)
    if PATH_MARKER in markdown:
        path = learning_path_markdown(root / "tutorials", root / "docs" / "tutorials")
        markdown = markdown.replace(PATH_MARKER, path)
    return markdown


def on_page_content(html, page, config, files):
    if page.file.src_uri.endswith(".ipynb"):
        html = _MERMAID.sub("", _MATHJAX.sub("", html))
    return html


def on_post_page(output, page, config):
    for match in _EXTERNAL.finditer(output):
        start = max(match.start() - 80, 0)
        snippet = output[start : match.end() + 80].replace("\n", " ")
        log.warning(
            "%s loads a resource from another host, which breaks the offline site: ...%s...",
            page.file.src_uri,
            snippet,
        )
    return output
