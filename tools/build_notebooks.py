"""Execute the tutorials and write the notebooks that the documentation site renders.

For every ``tutorials/NN_name.py`` (a jupytext "percent" script) this reads the
script, executes it in a Jupyter kernel of the current Python environment (working
directory: the repository root, ``DL4KERAS_PROFILE`` set to the chosen profile),
stamps it with the profile, date and library versions, and writes
``docs/tutorials/NN_name.ipynb`` for mkdocs-jupyter (which renders it without
executing it again).

The build also measures how long each cell runs and writes the tutorial's study
time into its header: "core ≈ N min · going further +M min" (see `study_time`).
Cells of a "Going further" section (a level-2 heading that starts with "Going
further", up to the next other level-2 heading) are tagged ``going-further``; the
site shows them collapsed.

Executed notebooks are cached in ``.cache/notebooks/`` under a hash of the
tutorial source, the profile, this tool, the package's data files and the code
(docstrings and comments left out) of the ``dl4keras`` modules the tutorial
imports, transitively (see `cache_key`): an unchanged tutorial is copied from
the cache, together with the ``results/NN_name.json`` file it wrote.

Usage:

```
python tools/build_notebooks.py [--profile docs] [--only 01 [03 ...]] [--force]
```
"""

from __future__ import annotations

import argparse
import ast
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("smoke", "docs", "full")
CELL_TIMEOUT_S = 3600
KERNEL_NAME = "python3"
STAMP_TAG = "dl4keras-stamp"
GOING_FURTHER_TAG = "going-further"
# The "Open in Colab" link: Colab opens the repository's notebooks/ (committed,
# made by dl4keras.notebooks.write_colab_notebooks; tests/test_notebooks.py keeps
# them in step with the tutorials).
REPOSITORY = "dl4keras/dl4keras"
COLAB_URL = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks"
TIME_TAG = "dl4keras-time"

# The reading share of the study time (the run share is measured): prose at
# READING_WPM words per minute, code at CODE_LINES_PER_MIN lines per minute, and
# the exercise at EXERCISE_MIN_PER_LINE minutes per line of its reference solution
# (the learner writes and debugs it).
READING_WPM = 150
CODE_LINES_PER_MIN = 15
EXERCISE_MIN_PER_LINE = 1.0
_LEVEL2 = re.compile(r"^##(?!#)\s*(.*)$", re.MULTILINE)

# Run (hidden, without counting in the execution numbers) before the tutorial:
# crisp matplotlib figures on the site, and no warning from tqdm (imported by
# KerasHub) that the kernel lacks ipywidgets: its text progress bars are what
# we want, since widgets would load scripts from a CDN.
_SETUP_CODE = """\
import warnings as _warnings
_warnings.filterwarnings("ignore", message="IProgress not found")
del _warnings
try:
    from matplotlib_inline.backend_inline import set_matplotlib_formats as _fmt
    _fmt("retina")
    del _fmt
except ImportError:
    pass
"""

# Run (hidden) after the tutorial: the versions that executed it, reported by the
# kernel itself.
_VERSIONS_CODE = """\
def _dl4keras_versions():
    import importlib.metadata as md
    import json
    import platform
    import sys

    def version(dist, module):
        if module in sys.modules and hasattr(sys.modules[module], "__version__"):
            return sys.modules[module].__version__
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            return None

    keras = sys.modules.get("keras")
    print(json.dumps({
        "python": platform.python_version(),
        "dl4keras": version("dl4keras", "dl4keras"),
        "keras": version("keras", "keras"),
        "backend": keras.backend.backend() if keras is not None else None,
        "tensorflow": version("tensorflow", "tensorflow"),
    }))
_dl4keras_versions()
del _dl4keras_versions
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# TensorFlow's C++ start-up chatter that no environment variable silences: INFO lines, the
# "no GPU" error of machines without one, and oneDNN's "falling back" note (logged as an
# error) on CPUs without AVX-512.
_NATIVE_INFO_LOG = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|I\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] .*"
    r"|E\d{4} [\d:.]+ +\d+ cuda_[\w.]+:\d+\] failed call to cuInit.*"
    r"|E\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] oneDNN supports \w+ only on platforms with .*"
    r" Falling back to the default Eigen-based implementation if present\.)\n?",
    re.MULTILINE,
)


def _log(message: str) -> None:
    print(message, flush=True)


class TutorialError(RuntimeError):
    """A tutorial failed: carries its name, the failing cell and a readable traceback."""

    def __init__(self, tutorial: str, where: str, source: str, details: str):
        self.tutorial = tutorial
        self.where = where
        self.source = source
        self.details = details
        rule = "-" * 72
        cell = f"{rule}\n{source.rstrip()}\n{rule}\n" if source.strip() else ""
        super().__init__(f"tutorial {tutorial} failed in {where}:\n{cell}{details.rstrip()}")


@dataclass
class Layout:
    """Where the tool reads and writes (all overridable, e.g. for tests)."""

    root: Path = REPO_ROOT
    tutorials: Path | None = None
    out: Path | None = None
    cache: Path | None = None
    results: Path | None = None
    package: Path | None = None
    extra_key_files: list[Path] = field(default_factory=lambda: [Path(__file__).resolve()])

    def __post_init__(self):
        self.root = Path(self.root).resolve()
        self.tutorials = Path(self.tutorials or self.root / "tutorials").resolve()
        self.out = Path(self.out or self.root / "docs" / "tutorials").resolve()
        self.cache = Path(self.cache or self.root / ".cache" / "notebooks").resolve()
        self.results = Path(self.results or self.root / "results").resolve()
        self.package = Path(self.package or REPO_ROOT / "dl4keras").resolve()


def _matches(script: Path, wanted: str) -> bool:
    """Whether `wanted` names `script`: its stem, or its number ("01" or "1")."""
    wanted = wanted.strip().removesuffix(".py")
    number = script.stem.split("_", 1)[0]
    return wanted == script.stem or (
        wanted.isdigit() and number.isdigit() and int(wanted) == int(number)
    )


def find_tutorials(folder: Path, only: list[str] | None = None) -> list[Path]:
    """The `NN_name.py` scripts of `folder`, sorted; `only` keeps those it names."""
    scripts = sorted(Path(folder).glob("[0-9]*.py"))
    if not only:
        return scripts
    missing = [w for w in only if not any(_matches(p, w) for p in scripts)]
    if missing:
        names = ", ".join(p.stem for p in scripts) or "none"
        raise SystemExit(
            f"error: no tutorial matches --only {' '.join(missing)} in {folder} "
            f"(available: {names})"
        )
    return [p for p in scripts if any(_matches(p, w) for w in only)]


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return tree


class _Package:
    """Static import resolution inside one package (``dl4keras``), for `used_modules`."""

    def __init__(self, package: Path):
        self.root, self.name = package, package.name
        self.trees: dict[str, ast.AST] = {}

    def file(self, dotted: str) -> Path | None:
        parts = dotted.split(".")[1:]
        base = self.root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_suffix(".py") if parts else None):
            if candidate is not None and candidate.is_file():
                return candidate
        return None

    def is_package(self, dotted: str) -> bool:
        path = self.file(dotted)
        return path is not None and path.name == "__init__.py"

    def tree(self, dotted: str) -> ast.AST:
        if dotted not in self.trees:
            self.trees[dotted] = ast.parse(self.file(dotted).read_text(encoding="utf-8"))
        return self.trees[dotted]

    def resolve(self, dotted: str, attribute: str) -> set[str]:
        """The modules that `dotted.attribute` needs: a submodule, or where a name is defined."""
        if self.file(f"{dotted}.{attribute}"):
            return {f"{dotted}.{attribute}"}
        if self.is_package(dotted):  # a name re-exported by the package's __init__
            for node in self.tree(dotted).body:
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(self.name):
                    for alias in node.names:
                        if (alias.asname or alias.name) == attribute:
                            return {node.module} | self.resolve(node.module, alias.name)
        return {dotted} if self.file(dotted) else set()

    def needs(self, tree: ast.AST, current: str = "") -> set[str]:
        """The package modules that code `tree` (module `current`) uses."""
        aliases: dict[str, str] = {}  # local name -> module
        needed: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == self.name:
                        needed.add(alias.name)
                        aliases[alias.asname or alias.name.split(".")[0]] = (
                            alias.name if alias.asname else self.name
                        )
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    base = current.split(".")
                    keep = len(base) - node.level + (1 if self.is_package(current) else 0)
                    module = ".".join(base[:keep] + ([module] if module else []))
                if module.split(".")[0] != self.name:
                    continue
                needed.add(module)
                for alias in node.names:
                    if self.file(f"{module}.{alias.name}"):
                        aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
                    needed |= self.resolve(module, alias.name)
        # `alias.attribute` of an imported package: only what the attribute needs.
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in aliases:
                    needed |= self.resolve(aliases[node.value.id], node.attr)
        # A package used whole (passed around, not `alias.attribute`): all of it.
        for name, target in aliases.items():
            if self.is_package(target) and not self._only_attribute_uses(tree, name):
                needed |= self.needs(self.tree(target), target)
        return needed

    @staticmethod
    def _only_attribute_uses(tree: ast.AST, name: str) -> bool:
        parents = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        return all(
            isinstance(parents.get(n), ast.Attribute)
            for n in ast.walk(tree)
            if isinstance(n, ast.Name) and n.id == name
        )


def used_modules(script: Path, package: Path) -> dict[str, Path]:
    """The package modules a tutorial's outputs can depend on: what its code uses, transitively.

    Resolved statically from the imports and attribute uses of the tutorial and
    of each module it reaches: `from dl4keras import check` then
    `check.self_attention(...)` needs `dl4keras.check` (its `__init__` runs)
    and `dl4keras.check.attention` (where `self_attention` is defined), not the
    other exercises' checks. A package's `__init__` is included (it runs) but
    its imports are followed only for the names that are used.
    """
    resolver = _Package(package)
    pending = resolver.needs(ast.parse(script.read_text(encoding="utf-8")))
    seen: dict[str, Path] = {}
    while pending:
        dotted = pending.pop()
        path = resolver.file(dotted)
        if path is None or dotted in seen:
            continue
        seen[dotted] = path
        if "." in dotted:
            pending.add(dotted.rsplit(".", 1)[0])  # importing a submodule runs its parents
        if path.name != "__init__.py":
            pending |= resolver.needs(resolver.tree(dotted), dotted)
    return dict(sorted(seen.items()))


def cache_key(script: Path, profile: str, layout: Layout) -> str:
    """Hash of everything the executed notebook depends on.

    The profile, the Keras backend (`KERAS_BACKEND`), the tutorial's source,
    this tool, the package's data files,
    and the code (not the docstrings or comments: `ast.dump` of the module
    without docstrings) of the package modules the tutorial uses
    (`used_modules`). A change elsewhere in the package, or to a docstring,
    does not re-execute the tutorial.
    """
    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("profile", profile.encode())
    add("backend", os.environ.get("KERAS_BACKEND", "tensorflow").encode())
    add("tutorial", script.read_bytes())
    for dotted, path in used_modules(script, layout.package).items():
        code = ast.dump(_strip_docstrings(ast.parse(path.read_text(encoding="utf-8"))))
        add(dotted, code.encode())
    assets = layout.package / "assets"
    for path in sorted(p for p in assets.rglob("*") if p.is_file()) if assets.is_dir() else []:
        if "__pycache__" not in path.parts and path.suffix != ".py":
            add(path.relative_to(layout.package).as_posix(), path.read_bytes())
    for path in layout.extra_key_files:
        add(path.name, path.read_bytes())
    return digest.hexdigest()[:20]


def _kernel_env(profile: str, layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    env["DL4KERAS_PROFILE"] = profile
    # The kernel runs in the repository root: a relative path keeps the build
    # machine's folders out of the pages ("wrote results/01_....json").
    results = layout.results
    if results.is_relative_to(layout.root):
        results = results.relative_to(layout.root)
    env["DL4KERAS_RESULTS_DIR"] = str(results)
    env.pop("MPLBACKEND", None)  # let the kernel use the inline backend
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up logs off the pages
    return env


def _describe_cell(script: Path, nb, cell) -> str:
    """E.g. "code cell 3 (line 42 of 01_x.py)"; the number matches IPython's In [3]."""
    if not any(cell is c for c in nb.cells):
        return "a hidden cell of the build tool"
    index = next(i for i, c in enumerate(nb.cells) if c is cell)
    number = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    text = script.read_text(encoding="utf-8")
    offset = text.find(cell.source) if cell.source.strip() else -1
    where = f" (line {text.count(chr(10), 0, offset) + 1} of {script.name})" if offset >= 0 else ""
    return f"code cell {number}{where}"


def _error_details(cell, err: Exception) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return _ANSI.sub("", "\n".join(output.get("traceback", [])))
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stderr")
    first = str(err).strip().splitlines()
    return _ANSI.sub(
        "", (text[-3000:] + "\n" if text else "") + (first[0] if first else type(err).__name__)
    )


def execute(script: Path, profile: str, layout: Layout):
    """Executes a tutorial script; returns the executed notebook with its stamp cell."""
    import jupytext
    import nbformat
    from jupyter_client import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = jupytext.read(script)
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    # Local Unix sockets (ipc) rather than TCP ports: nothing listens on the network, and it
    # works where sockets are blocked (pytest-socket). Windows has only TCP.
    sockets = Path(tempfile.mkdtemp(prefix="dl4keras-kernel-"))
    kernel = AsyncKernelManager(kernel_name=KERNEL_NAME)
    if os.name != "nt":
        kernel.transport = "ipc"
        kernel.ip = str(sockets / "ipc")  # an absolute path: the kernel runs in another folder
    client = NotebookClient(
        nb,
        km=kernel,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL_NAME,
        record_timing=False,
        resources={"metadata": {"path": str(layout.root)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no start-up chatter
    )
    setup = nbformat.v4.new_code_cell(_SETUP_CODE)
    probe = nbformat.v4.new_code_cell(_VERSIONS_CODE)

    def run_hidden(cell):  # executed in the kernel, never part of the notebook
        nb.cells.append(cell)
        try:
            client.execute_cell(cell, len(nb.cells) - 1, store_history=False)
        finally:
            nb.cells.pop()

    current = setup
    seconds = []
    try:
        with client.setup_kernel(env=_kernel_env(profile, layout)):
            info = client.wait_for_reply(client.kc.kernel_info())
            nb.metadata["language_info"] = info["content"]["language_info"]
            run_hidden(setup)
            for index, current in enumerate(list(nb.cells)):
                start = time.perf_counter()
                client.execute_cell(current, index)
                seconds.append(time.perf_counter() - start)
            current = probe
            run_hidden(probe)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as err:
        where = _describe_cell(script, nb, current)
        raise TutorialError(
            script.stem, where, current.source, _error_details(current, err)
        ) from None
    except RuntimeError as err:  # the kernel did not start
        raise TutorialError(script.stem, "kernel start-up", "", str(err)) from None
    finally:
        shutil.rmtree(sockets, ignore_errors=True)

    _drop_native_info_logs(nb)
    stdout = "".join(o.get("text", "") for o in probe.outputs if o.get("name") == "stdout")
    versions = json.loads(stdout.strip().splitlines()[-1])
    nb.metadata.pop("widgets", None)  # no widget state: it would load widget scripts from a CDN
    add_study_time(nb, seconds)
    nb.cells.insert(0, stamp_cell(script, profile, versions))
    return nb


def sections(nb) -> list[str | None]:
    """For each cell, the title of the "Going further" section it belongs to, or None (core).

    A markdown cell with a level-2 heading starts a section; a section whose title
    starts with "Going further" runs until the next level-2 heading of another title.
    """
    current, labels = None, []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for title in _LEVEL2.findall(cell.source):
                current = title.strip() if title.lower().startswith("going further") else None
        labels.append(current)
    return labels


def _words(text: str) -> int:
    return len(re.findall(r"[A-Za-z0-9][\w'’-]*", text))


def _code_lines(text: str) -> int:
    stripped = (line.strip() for line in text.splitlines())
    return sum(1 for line in stripped if line and not line.startswith("#"))


def study_time(nb, seconds: list[float]) -> dict:
    """The study time of an executed notebook, in minutes: core and going further.

    Each part adds its reading time (markdown words / `READING_WPM`, code lines /
    `CODE_LINES_PER_MIN`), its exercise time (`EXERCISE_MIN_PER_LINE` per code line
    of cells tagged ``solution``) and its run time, the measured seconds of its
    cells (`seconds[i]` for `nb.cells[i]`; markdown cells take none).
    """
    parts = {
        part: {"reading_min": 0.0, "exercise_min": 0.0, "run_min": 0.0}
        for part in ("core", "going_further")
    }
    for cell, section, took in zip(nb.cells, sections(nb), seconds, strict=True):
        part = parts["core" if section is None else "going_further"]
        if cell.cell_type == "markdown":
            part["reading_min"] += _words(cell.source) / READING_WPM
            continue
        lines = _code_lines(cell.source)
        if "solution" in cell.metadata.get("tags", []):
            part["exercise_min"] += lines * EXERCISE_MIN_PER_LINE
        else:
            part["reading_min"] += lines / CODE_LINES_PER_MIN
        part["run_min"] += took / 60
    for part in parts.values():
        part["total_min"] = sum(part.values())
    return parts


def time_line(times: dict) -> str:
    """The header line, e.g. "**Time:** core ≈ 40 min · going further +25 min (...)"."""
    core, further = times["core"], times["going_further"]
    text = f"**Time:** core ≈ {core['total_min']:.0f} min"
    if further["total_min"] >= 0.5:
        text += f" · going further +{further['total_min']:.0f} min"
    run = f"{core['run_min']:.1f} min"
    if further["total_min"] >= 0.5:
        run += f" + {further['run_min']:.1f} min"
    return (
        f"{text} (reading at {READING_WPM} words and {CODE_LINES_PER_MIN} code lines a "
        f"minute, the exercise at {EXERCISE_MIN_PER_LINE:g} min per solution line, and "
        f"the run time this build measured: {run})."
    )


def add_study_time(nb, seconds: list[float]) -> dict:
    """Tags the going-further cells and writes the time line into the header cell."""
    times = study_time(nb, seconds)
    for cell, section in zip(nb.cells, sections(nb), strict=True):
        if section is not None:
            tags = cell.metadata.setdefault("tags", [])
            if GOING_FURTHER_TAG not in tags:
                tags.append(GOING_FURTHER_TAG)
            cell.metadata[GOING_FURTHER_TAG] = section
    header = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if header is not None:
        line = time_line(times)
        lines = header.source.split("\n")
        after = next(
            (i for i, text in enumerate(lines) if text.startswith("**Exercise")), len(lines) - 1
        )
        while after + 1 < len(lines) and lines[after + 1].strip():
            after += 1  # to the end of the exercise's paragraph
        lines[after + 1 : after + 1] = ["", line]
        header.source = "\n".join(lines)
        header.metadata[TIME_TAG] = times
    nb.metadata[TIME_TAG] = times
    return times


def _drop_native_info_logs(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.get("name") == "stderr":
                output["text"] = _NATIVE_INFO_LOG.sub("", output["text"])
        cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr" or o["text"]]


def stamp_cell(script: Path, profile: str, versions: dict):
    """The small markdown cell at the top of each page: how and when it was executed."""
    import nbformat

    backend = f" ({versions['backend']} backend)" if versions.get("backend") else ""
    parts = [
        f"dl4keras {versions.get('dl4keras')}",
        f"Keras {versions.get('keras')}{backend}",
        f"TensorFlow {versions.get('tensorflow')}",
        f"Python {versions.get('python')}",
    ]
    today = _dt.datetime.now(_dt.timezone.utc).date().isoformat()
    text = (
        f'<p class="dl4keras-stamp">Executed with the <code>{profile}</code> profile on '
        f"{today} with {', '.join(parts)}. "
        f'Download the <a href="../{script.name}" download>script</a> or the '
        f'<a href="{script.stem}.ipynb" download>notebook</a>, '
        f"run it with <code>dl4keras run {script.stem.split('_', 1)[0]}</code>, or "
        f'<a class="dl4keras-colab" href="{COLAB_URL}/{script.stem}.ipynb">open it in Colab</a>.'
        "</p>"
    )
    return nbformat.v4.new_markdown_cell(
        text,
        metadata={"tags": [STAMP_TAG], STAMP_TAG: {"profile": profile, "date": today, **versions}},
    )


def build_one(script: Path, profile: str, layout: Layout, force: bool = False, log=_log) -> str:
    """Writes ``<out>/<stem>.ipynb`` from the cache or by executing it; returns the status."""
    import nbformat

    stem = script.stem
    key = cache_key(script, profile, layout)
    cached_nb = layout.cache / f"{stem}-{profile}-{key}.ipynb"
    cached_results = cached_nb.with_suffix(".results.json")
    target = layout.out / f"{stem}.ipynb"
    results_file = layout.results / f"{stem}.json"
    layout.out.mkdir(parents=True, exist_ok=True)

    if cached_nb.exists() and not force:
        shutil.copyfile(cached_nb, target)
        if cached_results.exists():
            layout.results.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached_results, results_file)
        log(f"{stem}: cached")
        return "cached"

    log(f"{stem}: executing ({profile} profile)...")
    results_file.unlink(missing_ok=True)  # whatever is there now comes from this run
    start = time.perf_counter()
    nb = execute(script, profile, layout)
    seconds = time.perf_counter() - start
    times = nb.metadata.get(TIME_TAG, {})
    layout.cache.mkdir(parents=True, exist_ok=True)
    tmp = cached_nb.with_suffix(".tmp")
    nbformat.write(nb, tmp)
    if results_file.exists():
        shutil.copyfile(results_file, cached_results)
    tmp.replace(cached_nb)
    shutil.copyfile(cached_nb, target)
    log(f"{stem}: executed in {seconds:.0f} s")
    if times:
        log(
            f"{stem}: core ≈ {times['core']['total_min']:.0f} min "
            f"(run {times['core']['run_min']:.1f} min), going further "
            f"+{times['going_further']['total_min']:.0f} min "
            f"(run {times['going_further']['run_min']:.1f} min)"
        )
    return "executed"


PLACEHOLDER_TAG = "dl4keras-placeholder"


def write_placeholders(profile: str, layout: Layout | None = None, log=_log) -> list[str]:
    """Writes a "being executed" page for every tutorial that has no notebook yet.

    `make docs` serves the site at once with these, while the tutorials run;
    each page is replaced by the executed notebook as soon as it is ready (and
    `mkdocs serve` reloads it). A notebook already there, or one in the cache
    for this profile and source, is left alone. Returns the stems written.
    """
    import nbformat

    layout = layout or Layout()
    layout.out.mkdir(parents=True, exist_ok=True)
    written = []
    for script in find_tutorials(layout.tutorials):
        target = layout.out / f"{script.stem}.ipynb"
        key = cache_key(script, profile, layout)
        cached = layout.cache / f"{script.stem}-{profile}-{key}.ipynb"
        if target.exists() or cached.exists():
            continue
        title = re.search(r"^# # (.+)$", script.read_text(encoding="utf-8"), re.MULTILINE)
        text = (
            f"# {title.group(1) if title else script.stem}\n\n"
            '<div class="admonition info"><p class="admonition-title">Being executed</p>'
            f"<p>This tutorial is running now (the <code>{profile}</code> profile), so that "
            "this page can show its real outputs. It appears here when it is done: the page "
            f'reloads by itself. Meanwhile, read the <a href="../{script.name}">script</a>.'
            "</p></div>\n"
        )
        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_markdown_cell(text)], metadata={PLACEHOLDER_TAG: True}
        )
        nbformat.write(nb, target)
        written.append(script.stem)
    if written:
        log(f"placeholders for {', '.join(written)}: the site can be served now")
    return written


def build(profile: str, only=None, force: bool = False, layout: Layout | None = None, log=_log):
    """Builds the notebooks of all (or `only` some) tutorials; returns {stem: status}."""
    if profile not in PROFILES:
        raise SystemExit(
            f"error: unknown profile {profile!r}; expected one of {', '.join(PROFILES)}"
        )
    layout = layout or Layout()
    if not layout.tutorials.is_dir():
        raise SystemExit(f"error: tutorials folder not found: {layout.tutorials}")
    scripts = find_tutorials(layout.tutorials, only)
    if not scripts:
        log(f"no tutorials (NN_name.py scripts) in {layout.tutorials}")
    return {
        script.stem: build_one(script, profile, layout, force=force, log=log) for script in scripts
    }


def main(argv=None, layout: Layout | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        default=os.environ.get("DL4KERAS_PROFILE") or "docs",
        help="smoke, docs (default, or $DL4KERAS_PROFILE) or full",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="ID", help="tutorial numbers or stems, e.g. 01"
    )
    parser.add_argument("--force", action="store_true", help="execute even when cached")
    parser.add_argument(
        "--placeholders",
        action="store_true",
        help='only write a "being executed" page for each tutorial without a notebook',
    )
    args = parser.parse_args(argv)
    profile = args.profile.strip().lower()
    if profile not in PROFILES:
        parser.error(f"unknown profile {args.profile!r}; expected one of {', '.join(PROFILES)}")
    if args.placeholders:
        write_placeholders(profile, layout=layout)
        return 0
    try:
        build(profile, only=args.only, force=args.force, layout=layout)
    except TutorialError as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
