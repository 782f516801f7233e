"""The library's structure: the core never imports the toy world (it plugs in through the
registries), no module import circle, and the workflow names no plugin."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

PACKAGE = REPO / "t2v_core"
PLUGIN = "t2v_core.toy"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> set[str]:
    """Every module that the module ``name`` (its ``source``) imports, anywhere in it (inside
    functions too), as absolute names."""
    package = name if is_package else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            # "from . import x" / "from .pkg import mod" may import submodules
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (a package stands for its __init__)."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        found = imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py")
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def core_imports_of_plugin(graph) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in graph.items()
                  if not (module == PLUGIN or module.startswith(PLUGIN + "."))
                  for target in targets if target == PLUGIN or target.startswith(PLUGIN + "."))


def test_core_never_imports_the_toy_world():
    offending = core_imports_of_plugin(import_graph())
    assert offending == [], "the core imports the toy world:\n" + "\n".join(offending)


def test_the_check_sees_imports_inside_functions_and_relative_ones():
    """The walker itself: imports of the toy world in a function, relative or absolute, are caught."""
    source = (PACKAGE / "metrics" / "evaluate.py").read_text()
    planted = source + "\n\ndef f():\n    from ..toy import world\n    import t2v_core.toy.plugin\n"
    found = imported_modules(planted, "t2v_core.metrics.evaluate")
    assert {"t2v_core.toy", "t2v_core.toy.world", "t2v_core.toy.plugin"} <= found
    graph = import_graph()
    graph["t2v_core.metrics.evaluate"] |= {m for m in found if m.startswith("t2v_core.toy")}
    assert core_imports_of_plugin(graph) == [f"t2v_core.metrics.evaluate imports {m}" for m in
                                             ("t2v_core.toy", "t2v_core.toy.plugin", "t2v_core.toy.world")]


def cycles(graph) -> list[list[str]]:
    """Elementary cycles found by depth-first search (each reported once, from its smallest node)."""
    found, seen = [], set()

    def visit(node, path, on_path):
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                cycle = path[path.index(target):]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle + [target])
            elif target > path[0]:
                visit(target, path + [target], on_path | {target})

    for start in sorted(graph):
        visit(start, [start], {start})
    return found


def test_no_import_circle_in_the_package():
    """A package's __init__ importing its own submodules is how a package is built, not a circle."""
    graph = import_graph()
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    circles = cycles(graph)
    assert circles == [], "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_circle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


WORKFLOW_TEXT = ["Snakefile", "rules/*.smk", "workflow_scripts/*.py", "report/*.rst"]


@pytest.mark.parametrize("pattern", WORKFLOW_TEXT)
def test_the_workflow_names_no_plugin(pattern):
    """The rules, scripts and captions learn about the toy world through the registries only."""
    for path in sorted(REPO.glob(pattern)):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not re.search(r"\btoy\b", line, re.I), f"{path.relative_to(REPO)}:{number}: {line.strip()}"
