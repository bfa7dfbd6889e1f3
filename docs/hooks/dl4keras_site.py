"""MkDocs hooks of the dl4keras site (declared under ``hooks:`` in ``mkdocs.yml``).

* Publishes each ``tutorials/NN_name.py`` script next to its page, as
  ``tutorials/NN_name.py``: the "run it yourself" link of the page stamp.
* Fills the Results page (``docs/results.md``) with the headline numbers that
  the executed tutorials wrote to ``results/*.json``.
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


def results_markdown(results_dir: Path) -> str:
    """Markdown tables of the headline numbers in ``results_dir/*.json``."""
    parts = []
    for path in sorted(results_dir.glob("[0-9]*.json")):
        payload = json.loads(path.read_text())
        versions = payload.get("versions", {})
        parts.append(
            f"## [{path.stem}](tutorials/{path.stem}.ipynb)\n\n"
            f"Profile `{payload.get('profile')}`, {payload.get('created', '')[:10]}, "
            f"Keras {versions.get('keras', '?')}, TensorFlow {versions.get('tensorflow', '?')}, "
            f"{payload.get('machine', {}).get('cpus', '?')} CPU cores. "
            f"All numbers: `results/{path.name}`.\n\n| measured | value |\n|---|---|\n"
            + "".join(f"| {k} | {v} |\n" for k, v in payload.get("headline", {}).items())
        )
    return "\n".join(parts) or "No results yet: run `make notebooks` to execute the tutorials."


def on_page_markdown(markdown, page, config, files):
    if RESULTS_MARKER in markdown:
        root = Path(config.config_file_path).parent
        markdown = markdown.replace(RESULTS_MARKER, results_markdown(root / "results"))
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
