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
* Shows each tutorial's exercise (its ``## Exercise ...`` section) as one
  admonition box: the task and hints, the reference solution collapsed, and
  the self-check call the learner runs on their own solution (see
  `exercise_sections` and `box_exercises`).
* Keeps the site offline: mkdocs-jupyter's notebook template loads MathJax and
  mermaid from a CDN, so those scripts are removed (math is rendered by the
  vendored KaTeX, see ``docs/javascripts/katex.js``), and any page that still
  loads a script, stylesheet, image or frame from another host is reported as a
  warning, which fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import ast
import html as _html
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
        if page.file.abs_src_path and Path(page.file.abs_src_path).is_file():
            nb = json.loads(Path(page.file.abs_src_path).read_text(encoding="utf-8"))
            html = box_exercises(html, exercise_sections(nb), page.file.src_uri)
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


# ------------------------------------------------------------ exercises as admonitions

SOLUTION_TAG = "solution"
SOLUTION_SUMMARY = "Reference solution (try the exercise first)"
_LEVEL2 = re.compile(r"^##(?!#)\s*(.*?)\s*$", re.MULTILINE)
_H2 = re.compile(r"<h2\b[^>]*>(.*?)(?:<a class=\"anchor-link\"[^>]*>.*?</a>)?</h2>", re.S)
_DIV = re.compile(r"<div\b|</div\s*>")


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def check_calls(code: str) -> list[str]:
    """The `check.name(...)` calls (`dl4keras.check`) in `code`, as written."""
    try:
        tree = ast.parse(code)
    except SyntaxError:  # IPython syntax (magics): no call found
        return []
    calls = []
    for node in ast.walk(tree):
        func = getattr(node, "func", None) if isinstance(node, ast.Call) else None
        owner = func.value if isinstance(func, ast.Attribute) else None
        if (isinstance(owner, ast.Name) and owner.id == "check") or (
            isinstance(owner, ast.Attribute)
            and owner.attr == "check"
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "dl4keras"
        ):
            calls.append((node.lineno, node.col_offset, ast.get_source_segment(code, node)))
    return [call for *_, call in sorted(calls)]


def exercise_sections(nb: dict) -> list[dict]:
    """The exercises of a notebook: each level-2 section whose heading starts with "Exercise".

    A section runs from its heading's markdown cell to the next level-2
    heading. Returns, per exercise, ``{"title", "cells": [(cell id, is a
    solution)], "checks": [...]}``, where ``checks`` are the `check_calls` of
    its code cells (in a solution cell or in a cell of its own after it): the
    self-check the learner runs on their own solution.
    """
    sections, current = [], None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for title in _LEVEL2.findall(_source(cell)):
                current = None
                if re.match(r"exercise\b", title, re.I):
                    current = {"title": title, "cells": [], "checks": []}
                    sections.append(current)
        if current is None:
            continue
        solution = SOLUTION_TAG in cell.get("metadata", {}).get("tags", [])
        current["cells"].append((cell.get("id"), solution))
        if cell.get("cell_type") == "code":
            current["checks"] += check_calls(_source(cell))
    return sections


def _cell_span(html: str, cell_id: str) -> tuple[int, int] | None:
    """Where the rendered cell `cell_id` starts and ends in `html` (None if it is not there).

    nbconvert writes ``<div class="jp-Cell ..." id="cell-id=ID">``; a tagged code
    cell has one more ``<div class="jp-Cell ... celltag_...">`` around it.
    """
    marker = html.find(f'id="cell-id={cell_id}"') if cell_id else -1
    start = html.rfind("<div", 0, marker)
    if marker < 0 or start < 0:
        return None
    before = html[max(start - 400, 0) : start]
    outer = re.search(r'<div class="jp-Cell [^"]*">\s*$', before)
    if outer:
        start -= len(before) - outer.start()
    depth = 0
    for tag in _DIV.finditer(html, start):
        depth += 1 if tag.group().startswith("<div") else -1
        if depth == 0:
            return start, tag.end()
    return None


def box_exercises(html: str, sections: list[dict], where: str = "a page") -> str:
    """`html` with each exercise of `sections` (see `exercise_sections`) in an admonition box.

    The box (``div.admonition.example.dl4keras-exercise``) has the section's
    title, its cells in their order with each run of solution cells in one
    collapsed ``details.dl4keras-solution`` (as ``docs/javascripts/solutions.js``
    makes elsewhere), and at the end the self-check call. The heading stays in
    the page, for the table of contents and links (the stylesheet hides it:
    the box title repeats it). An exercise whose cells are not found one after
    the other is left as it is, with a warning.
    """
    for section in sections:
        spans = [_cell_span(html, cell_id) for cell_id, _ in section["cells"]]
        between = [html[a[1] : b[0]] for a, b in zip(spans, spans[1:])] if all(spans) else []
        if not spans or not all(spans) or any(text.strip() for text in between):
            log.warning("%s: the cells of %r were not found in order", where, section["title"])
            continue
        heading = _H2.search(html, spans[0][0], spans[0][1])
        title = heading.group(1).strip() if heading else _html.escape(section["title"])
        parts = [
            '<div class="admonition example dl4keras-exercise">\n'
            f'<p class="admonition-title">{title}</p>\n'
        ]
        in_solution = False
        for (_, solution), (start, end) in zip(section["cells"], spans, strict=True):
            if solution and not in_solution:
                parts.append(
                    f'<details class="success dl4keras-solution">\n<summary>{SOLUTION_SUMMARY}'
                    "</summary>\n"
                )
            elif in_solution and not solution:
                parts.append("</details>\n")
            in_solution = solution
            parts.append(html[start:end])
        parts.append("</details>\n" if in_solution else "")
        if section["checks"]:
            calls = "\n".join(_html.escape(call) for call in section["checks"])
            parts.append(
                '<div class="dl4keras-self-check">\n<p><strong>Self-check.</strong> Run the '
                "check that the reference solution runs, on your own solution:</p>\n"
                f"<pre><code>{calls}</code></pre>\n</div>\n"
            )
        parts.append("</div>\n")
        html = html[: spans[0][0]] + "".join(parts) + html[spans[-1][1] :]
    return html
