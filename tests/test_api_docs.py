"""The API reference shows every name the tutorials use, on its home module's page."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import dl4keras

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
PUBLIC_MODULES = sorted(
    name for name in dl4keras.__all__ if inspect.ismodule(getattr(dl4keras, name))
)


def _used_names(path):
    """`(module, name)` for each `module.name` and `from dl4keras.module import name` in `path`."""
    tree = ast.parse(path.read_text())
    aliases = {}  # local name -> dl4keras module
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dl4keras"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                try:
                    importlib.import_module(target)
                    aliases[alias.asname or alias.name] = target
                except ImportError:
                    used.add((node.module, alias.name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dl4keras"):
                    aliases[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in aliases and not node.attr.startswith("__"):
                used.add((aliases[node.value.id], node.attr))
    return used


def _documented_at(module_name, name):
    """Whether the API page of `module_name` shows `name` (mkdocstrings renders `__all__`)."""
    module = importlib.import_module(module_name)
    obj = getattr(module, name)
    if inspect.ismodule(obj):
        return obj.__name__ in {f"dl4keras.{m}" for m in PUBLIC_MODULES}
    if hasattr(module, "__all__") and name not in module.__all__:
        return False
    return not name.startswith("_")


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_every_name_a_tutorial_uses_is_in_the_api_reference(path):
    used = _used_names(path)
    assert used, "no dl4keras names found: the parser is broken"
    for module_name, name in sorted(used):
        module = importlib.import_module(module_name)
        assert hasattr(module, name), f"{path.name} uses {module_name}.{name}: it does not exist"
        assert _documented_at(module_name, name), (
            f"{path.name} uses {module_name}.{name}, which {module_name}'s API page does not show"
        )


def test_every_public_module_has_an_api_page_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for name in PUBLIC_MODULES:
        page = ROOT / "docs" / "api" / f"{name}.md"
        assert page.exists(), f"no API page for dl4keras.{name}"
        assert f"::: dl4keras.{name}" in page.read_text()
        assert f"api/{name}.md" in nav, f"api/{name}.md is not in the mkdocs nav"


def test_every_docstring_parses_without_a_warning(caplog):
    """What `mkdocs build --strict` would abort on, found in seconds: griffe's warnings."""
    import logging

    import griffe

    package = griffe.load("dl4keras", search_paths=[str(ROOT)], resolve_aliases=False)
    options = {"warn_missing_types": False, "returns_multiple_items": False}  # as mkdocs.yml

    def walk(obj):
        if obj.is_alias:
            return
        yield obj
        for member in obj.members.values():
            yield from walk(member)

    caplog.set_level(logging.WARNING, logger="griffe")
    for obj in walk(package):
        if obj.docstring is not None:
            griffe.parse_google(obj.docstring, **options)
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("griffe")]
    assert not warnings, "\n".join(warnings)
