"""Every docstring example of the public API runs, as one test item each.

The collector walks every public module of `dl4keras` (`pkgutil.walk_packages`,
so new modules and subpackages are picked up; names starting with `_` are
skipped), the module docstring, and every public function, class, method and
property *defined* in that module (`obj.__module__` is the module: re-exports
are visited at home). From each docstring it takes:

- each fenced ```` ```python ```` block: run with `exec` in a fresh namespace;
- each run of `>>>` examples (consecutive, with no prose between them): run with
  `doctest` (`NORMALIZE_WHITESPACE | ELLIPSIS`), so printed outputs are checked.

Items are named `<module>.<object>[<n>]`, e.g. `finetune.GradualUnfreezing[1]`,
or `<module>[<n>]` for the module docstring; `n` counts the examples of one
docstring from 1.

**Preamble.** Every example starts in a fresh namespace holding only `keras`
and `np`, as after `import keras` and `import numpy as np` (so an example may
use those two without importing them, as Keras's own docstrings do); it
imports everything else it uses itself.

**Markers.** An example that truly needs the network or a GPU says so in its
first line, `# requires: network` or `# requires: gpu` (`>>> # requires: gpu` in
a doctest), and is skipped with that reason. An example of code that is
TensorFlow-only by nature (`tf.distribute`, `tf.data` pipelines) says
`# requires: tensorflow`: it runs when the suite runs on TensorFlow (as `make
test` does) and is skipped, with that reason, on JAX and PyTorch, where the
code's own error for other backends is what the unit tests check. Nothing else
is skipped: a doctest `+SKIP` directive fails the item.

Each example runs in its own temporary directory (files it writes land there),
with the network blocked (pytest-socket), `DL4KERAS_PROFILE=smoke`, no
`DL4KERAS_RESULTS_DIR`, `keras.utils.set_random_seed(0)` and matplotlib's Agg
backend; afterwards figures are closed, the Keras session is cleared and the
global dtype policy and profile are restored.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil
import re
import sys
import textwrap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import dl4keras  # noqa: E402

PACKAGE = "dl4keras"
PREAMBLE = {"keras": keras, "np": np}
"""What every example's namespace holds before it runs."""
OPTIONFLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
MARKER = re.compile(r"^#\s*requires:\s*(network|gpu|tensorflow)\s*$")
FENCE_OPEN = re.compile(r"^\s*```python\s*$")
FENCE_CLOSE = re.compile(r"^\s*```\s*$")
MIN_EXAMPLES = 75
"""Floor on the number of examples collected (78 when this was written)."""


@dataclass
class Example:
    """One runnable docstring example."""

    id: str
    kind: str  # "fenced" or "doctest"
    source: str  # fenced: the code; doctest: the `>>>` text
    filename: str
    lineno: int  # 1-based line of the example's first line in `filename` (0: unknown)
    marker: str | None = None
    error: str | None = None  # why it cannot run: the module or the docstring is broken


@dataclass
class Collection:
    examples: list[Example] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    visited: dict[str, set[str]] = field(default_factory=dict)  # module -> object names


# ---------------------------------------------------------------- collecting


def _public_module_names():
    """`dl4keras` and every module below it whose dotted path has no `_` part."""
    names = [PACKAGE]
    for info in pkgutil.walk_packages(dl4keras.__path__, PACKAGE + ".", onerror=lambda _: None):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(names)


def _docstring_line(obj, file_lines):
    """1-based line of the opening quotes of `obj`'s docstring (0 if unknown)."""
    try:
        start = 0 if inspect.ismodule(obj) else inspect.getsourcelines(obj)[1] - 1
    except (OSError, TypeError):
        return 0
    for i in range(start, len(file_lines)):
        if '"""' in file_lines[i] or "'''" in file_lines[i]:
            return i + 1
    return 0


def _marker(first_line):
    found = MARKER.match(first_line.strip())
    return found.group(1) if found else None


def _examples_in(doc, name, filename, doc_line):
    """The fenced blocks and `>>>` runs of one docstring, in order of appearance."""
    lines = inspect.cleandoc(doc).splitlines()
    # inspect.cleandoc drops leading blank lines: count them to keep line numbers.
    raw = doc.splitlines()
    offset = doc_line + next((i for i, line in enumerate(raw) if line.strip()), 0)
    found = []  # (first line index in `lines`, kind, source)
    rest = list(lines)
    i = 0
    while i < len(lines):
        if FENCE_OPEN.match(lines[i]):
            j = i + 1
            while j < len(lines) and not FENCE_CLOSE.match(lines[j]):
                j += 1
            code = textwrap.dedent("\n".join(lines[i + 1 : j]))
            found.append((i + 1, "fenced", code))
            for k in range(i, min(j + 1, len(lines))):
                rest[k] = ""  # so that a `>>>` inside a fence is not run twice
            i = j + 1
        else:
            i += 1
    try:
        pieces = doctest.DocTestParser().parse("\n".join(rest), name)
    except ValueError as error:  # e.g. inconsistent indentation: a failing item, not a crash
        return [Example(f"{name}[parse]", "error", "", filename, doc_line, error=str(error))]
    group = []
    for piece in [*pieces, "end"]:
        if isinstance(piece, doctest.Example):
            group.append(piece)
        elif piece.strip() and group:
            found.append((group[0].lineno, "doctest", group))
            group = []
    found.sort(key=lambda item: item[0])
    examples = []
    for n, (index, kind, source) in enumerate(found, start=1):
        if kind == "doctest":
            first = source[0].source.splitlines()[0]
            # doctest drops a comment-only `>>> # requires: ...` line: read it from the text.
            before = rest[index - 1].strip() if index > 0 else ""
            if before.startswith(">>>") and _marker(before[3:]):
                first = before[3:]
        else:
            first = next((line for line in source.splitlines() if line.strip()), "")
        examples.append(
            Example(
                id=f"{name}[{n}]",
                kind=kind,
                source=source,
                filename=filename,
                lineno=offset + index if doc_line else 0,
                marker=_marker(first),
            )
        )
    return examples


def _members(module):
    """`(qualified name, object with the docstring)` of the module's public API."""
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def collect():
    collection = Collection()
    for module_name in _public_module_names():
        short = module_name[len(PACKAGE) + 1 :] or PACKAGE
        collection.modules.append(module_name)
        try:
            module = importlib.import_module(module_name)
        except Exception:  # report it as a failing item, not a collection error
            collection.examples.append(
                Example(
                    id=f"{short}[import]",
                    kind="error",
                    source="",
                    filename=module_name,
                    lineno=0,
                    error=f"{module_name} does not import:\n{traceback.format_exc()}",
                )
            )
            continue
        filename = getattr(module, "__file__", None) or module_name
        try:
            file_lines = Path(filename).read_text(encoding="utf-8").splitlines()
        except OSError:
            file_lines = []
        visited = collection.visited.setdefault(module_name, set())
        targets = [(short, module)] + [(f"{short}.{n}", obj) for n, obj in _members(module)]
        for name, obj in targets:
            if obj is not module:
                visited.add(name[len(short) + 1 :])
            doc = obj.__doc__ if isinstance(getattr(obj, "__doc__", None), str) else None
            if doc:
                line = _docstring_line(obj, file_lines)
                collection.examples.extend(_examples_in(doc, name, filename, line))
    return collection


COLLECTION = collect()


# ---------------------------------------------------------------- running


@pytest.fixture
def example_env(tmp_path, monkeypatch):
    """A temporary working directory, the smoke profile, a fixed seed; cleans up after."""
    from dl4keras import profiles

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(profiles.ENV_VAR, "smoke")
    monkeypatch.delenv("DL4KERAS_RESULTS_DIR", raising=False)
    monkeypatch.setattr(sys, "argv", [sys.argv[0]])  # no --profile from pytest's command line
    policy = keras.config.dtype_policy()
    keras.utils.set_random_seed(0)
    yield tmp_path
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
    profiles.set_profile(None)
    keras.config.set_dtype_policy(policy)
    keras.backend.clear_session()


def _run_fenced(example):
    # Padding puts the code at its own line of the module file in tracebacks.
    code = compile("\n" * max(example.lineno - 1, 0) + example.source, example.filename, "exec")
    report = None
    try:
        exec(code, dict(PREAMBLE))  # running the documented example is the test
    except Exception as error:
        frames = traceback.extract_tb(error.__traceback__)[1:]  # from the example's own line on
        for frame in frames[:1]:  # the file shows the docstring indented, the code was dedented
            frame.colno = frame.end_colno = None
        report = "".join(traceback.format_list(frames)) + f"{type(error).__name__}: {error}"
    if report is not None:  # outside `except`: no "during handling" chain in the report
        pytest.fail(f"{example.id} ({example.filename}:{example.lineno})\n{report}", pytrace=False)


def _run_doctest(example):
    skipped = [e.source.strip() for e in example.source if e.options.get(doctest.SKIP)]
    if skipped:
        pytest.fail(
            f"{example.id} uses `# doctest: +SKIP` on {skipped[0]!r}: make it run, or mark an "
            "example that truly needs the network or a GPU with a first line "
            "`>>> # requires: network` / `>>> # requires: gpu`.",
            pytrace=False,
        )
    test = doctest.DocTest(
        example.source,
        dict(PREAMBLE),
        example.id,
        example.filename,
        max(example.lineno - example.source[0].lineno - 1, 0) if example.lineno else None,
        None,
    )
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS | doctest.FAIL_FAST)
    report = io.StringIO()
    result = runner.run(test, out=report.write, clear_globs=True)
    if result.failed:
        pytest.fail(report.getvalue(), pytrace=False)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("example", COLLECTION.examples, ids=lambda e: e.id)
def test_docstring_example(example, example_env):
    if example.error:
        pytest.fail(f"{example.id}: {example.error}", pytrace=False)
    if example.marker == "tensorflow":
        if keras.backend.backend() != "tensorflow":
            pytest.skip(f"requires: tensorflow (the Keras backend is {keras.backend.backend()})")
    elif example.marker:
        pytest.skip(f"requires: {example.marker}")
    if example.kind == "fenced":
        _run_fenced(example)
    else:
        _run_doctest(example)


# ---------------------------------------------------------------- the collector itself


def test_collector_finds_the_examples():
    assert len(COLLECTION.examples) >= MIN_EXAMPLES, (
        f"only {len(COLLECTION.examples)} docstring examples collected (floor {MIN_EXAMPLES})"
    )
    ids = [e.id for e in COLLECTION.examples]
    assert len(ids) == len(set(ids)), "two examples with the same id"
    kinds = {e.kind for e in COLLECTION.examples}
    assert {"fenced", "doctest"} <= kinds


def test_collector_visits_every_public_module_and_name():
    root = Path(dl4keras.__file__).parent
    on_disk = {PACKAGE}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts and not any(part.startswith("_") for part in parts):
            on_disk.add(".".join([PACKAGE, *parts]))
    assert on_disk <= set(COLLECTION.modules)
    for module_name, visited in COLLECTION.visited.items():
        module = sys.modules[module_name]
        own = {
            name
            for name, obj in inspect.getmembers(module)
            if not name.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module_name
        }
        exported = {
            name
            for name in getattr(module, "__all__", ())
            if getattr(getattr(module, name, None), "__module__", None) == module_name
        }
        assert own | exported <= visited, (
            f"{module_name}: not visited: {(own | exported) - visited}"
        )


def test_collector_parses_fences_doctests_and_markers():
    doc = """Summary.

    Examples:
        ```python
        # requires: network
        x = 1
        ```

        >>> # requires: tensorflow
        >>> 2
        2

        Prose after a TensorFlow-only example.

        >>> 1 + 1
        2
        >>> print("a")
        a

        Prose between two doctest runs.

        >>> None
    """
    examples = _examples_in(doc, "m.f", "f.py", 10)
    assert [(e.id, e.kind, e.marker) for e in examples] == [
        ("m.f[1]", "fenced", "network"),
        ("m.f[2]", "doctest", "tensorflow"),
        ("m.f[3]", "doctest", None),
        ("m.f[4]", "doctest", None),
    ]
    assert examples[0].source == "# requires: network\nx = 1"
    assert [len(e.source) for e in examples[1:]] == [1, 2, 1]  # doctest drops a comment line
    assert examples[0].lineno == 10 + 4  # the line after the opening fence
