"""MkDocs hooks of the dl4keras site (declared under ``hooks:`` in ``mkdocs.yml``).

* Publishes each ``tutorials/NN_name.py`` script next to its page, as
  ``tutorials/NN_name.py``: the "run it yourself" link of the page stamp.
* Fills the Results page (``docs/results.md``) with the headline numbers that
  the executed tutorials wrote to ``results/*.json``, under each tutorial's
  title, and the home page's learning path with the study times that the
  notebook build measured (``docs/tutorials/*.ipynb``).
* Links the first mention of each dl4keras function, class or module on a
  tutorial page (in code, ``backbones.build(...)``, or in prose,
  ``training.OneCycle``) to its entry in the API reference.
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


# ------------------------------------------------------------ links to the API reference

_ANCHOR = re.compile(r'id="(dl4keras(?:\.\w+)+)"')
_MENTION = re.compile(
    # in highlighted code: `module.name` as pygments tokens
    r'(?P<code><span class="n">(?P<cm>\w+)</span><span class="o">\.</span>'
    r'<span class="n">(?P<cn>\w+)</span>)'
    # in prose: `module.name` or `module.name(...)` in a code span
    r"|(?P<prose><code>(?P<pm>\w+)\.(?P<pn>\w+)(?P<rest>[^<]*)</code>)"
)


def api_anchors(site_dir: Path) -> dict[str, str]:
    """Every documented dl4keras object of the built site: its id -> its URL from the site root."""
    anchors = {}
    for page in sorted((site_dir / "api").glob("*/index.html")):
        url = page.parent.relative_to(site_dir).as_posix() + "/"
        for anchor in _ANCHOR.findall(page.read_text(encoding="utf-8")):
            anchors.setdefault(anchor, f"{url}#{anchor}")
    return anchors


def _target(anchors: dict[str, str], module: str, name: str) -> str | None:
    exact = anchors.get(f"dl4keras.{module}.{name}")
    if exact:
        return exact
    inside = [a for a in anchors if a.startswith(f"dl4keras.{module}.") and a.endswith(f".{name}")]
    return anchors[min(inside, key=len)] if inside else None  # e.g. training -> training.schedules


def link_first_mentions(html: str, anchors: dict[str, str], to_root: str) -> str:
    """`html` with the first mention of each documented `module.name` linked to the API page."""
    linked, out, last = set(), [], 0
    for match in _MENTION.finditer(html):
        module, name = (match["cm"], match["cn"]) if match["code"] else (match["pm"], match["pn"])
        target = _target(anchors, module, name) if (module, name) not in linked else None
        if target is None:
            continue
        linked.add((module, name))
        title = f"dl4keras.{module}.{name} in the API reference"
        out += [html[last : match.start()], f'<a class="dl4keras-api" href="{to_root}{target}" ']
        out += [f'title="{title}">{match.group(0)}</a>']
        last = match.end()
    return "".join(out) + html[last:]


def on_post_build(config):
    site = Path(config.site_dir)
    anchors = api_anchors(site)
    for page in sorted(site.glob("tutorials/*/index.html")):
        html = page.read_text(encoding="utf-8")
        page.write_text(link_first_mentions(html, anchors, "../../"), encoding="utf-8")
