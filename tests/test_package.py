"""The package as a whole: public API, one-way imports, stdlib-only helpers."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dl4keras

PACKAGE = Path(dl4keras.__file__).parent
STDLIB_ONLY = (
    "dl4keras._validation",
    "dl4keras._version",
    "dl4keras.downloads",
    "dl4keras.notebooks",
)
"""Modules that must import nothing but the standard library (and each other)."""


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path):
    """Every dl4keras module `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "dl4keras"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "dl4keras":
                continue
            for alias in node.names:  # `from dl4keras import vit` imports dl4keras.vit
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in MODULES else node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            raise AssertionError(f"{path}: import dl4keras modules with import statements")
    return found


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def test_import_graph_has_no_cycle():
    """Imports run one way: no module reaches itself (function-level imports count)."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert len(GRAPH) >= 20  # the walk saw the whole package (vit/ included)
    assert "dl4keras.vit.model" in GRAPH["dl4keras.vit.conversion"]


def test_the_graph_walk_finds_cycles_and_function_level_imports(tmp_path):
    code = "def later():\n    from dl4keras import data\n    import dl4keras.vit.model\n"
    assert _imports(_write(tmp_path, code)) == {"dl4keras.data", "dl4keras.vit.model"}


def _write(tmp_path, code):
    path = tmp_path / "module.py"
    path.write_text(code)
    return path


def test_small_helpers_import_only_the_standard_library():
    for name in STDLIB_ONLY:
        tree = ast.parse(MODULES[name].read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            for module in names:
                top = module.split(".")[0]
                assert (
                    top in sys.stdlib_module_names or module in STDLIB_ONLY or (top == "__future__")
                ), f"{name} imports {module}"


def test_no_private_name_is_imported_across_modules():
    """Private helpers stay in their module; shared ones live in a private module."""
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dl4keras"):
                for alias in node.names:
                    module = f"{node.module}.{alias.name}"
                    private = alias.name.startswith("_") and module not in MODULES
                    private = private and alias.name != "__version__"
                    assert not private, f"{name} imports {node.module}.{alias.name}"


def test_version_and_public_api():
    assert dl4keras.__version__.count(".") == 2
    from dl4keras import MultiHeadAttention, attention

    assert MultiHeadAttention is attention.MultiHeadAttention
    assert dl4keras.VisionTransformer is dl4keras.vit.VisionTransformer
    assert dl4keras.TransformerEncoderBlock is dl4keras.transformer.TransformerEncoderBlock
    assert dl4keras.backbones.build is not None
    assert {"MultiHeadAttention", "backbones", "profiles", "downloads"} <= set(dir(dl4keras))
    for name in dl4keras.__all__:
        assert hasattr(dl4keras, name), name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dl4keras.nope  # noqa: B018


def test_vit_names_are_importable_from_the_package():
    from dl4keras import vit

    for name in vit.__all__:
        obj = getattr(vit, name)
        assert getattr(obj, "__module__", "dl4keras.vit.presets").startswith("dl4keras.vit."), name


def test_import_registers_every_serializable_class():
    """Registration does not depend on which submodule the user imported."""
    code = (
        "import json, sys, keras, dl4keras\n"
        "objects = keras.saving.get_custom_objects()\n"
        "names = sorted(n for n in objects if n.startswith('dl4keras>'))\n"
        "print(json.dumps([names, sorted(dl4keras.serializable_classes()), sorted(sys.modules)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    registered, reported, imported = json.loads(out.stdout.strip().splitlines()[-1])
    assert registered == reported and len(registered) >= 14
    registering = [
        name for name, path in MODULES.items() if "register_keras_serializable(" in path.read_text()
    ]
    assert "dl4keras.vit.model" in registering
    for name in registering:
        assert name in imported, f"`import dl4keras` does not import {name}"


def test_the_documented_tested_versions_are_the_pinned_ones():
    """README and install page name the versions constraints.txt pins (no drift)."""
    root = PACKAGE.parent
    pins = dict(
        line.split("==")
        for line in (root / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert {"keras", "keras-hub", "tensorflow", "ruff"} <= set(pins)
    for page in ("README.md", "docs/install.md"):
        text = (root / page).read_text()
        for package, label in (
            ("keras", "Keras"),
            ("keras-hub", "KerasHub"),
            ("tensorflow", "TensorFlow"),
        ):
            assert f"{label} {pins[package]}" in text, (page, package, pins[package])
