"""The shape of the package: layers outside the core use the core's public API only.

The core is the top level of ``netlab_magic/`` (the lab, the sandbox, netlink, processes, the
magics); ``docker/``, ``widgets/`` and ``vm/`` are built on it. They may not import a private name of
another module, nor reach into a private attribute of another object, nor into the lab's
sandbox: what they need is a public method of ``Lab`` or ``NetNS``. Read from the source (AST).
"""

from __future__ import annotations

import ast
import functools
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "netlab_magic"
LAYERS = sorted(p for sub in ("docker", "widgets", "vm") for p in (PACKAGE / sub).glob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.lru_cache(maxsize=None)
def _tree(path: pathlib.Path) -> ast.Module:
    """Each file parsed once for all the checks (parsing is most of their time)."""
    return ast.parse(path.read_text(), str(path))


def violations(path: pathlib.Path) -> list[str]:
    tree = _tree(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            own = node.level == 1 and node.module is None or (node.level == 1 and node.module == path.stem)
            for alias in node.names:
                if _private(alias.name) and not own:
                    found.append(f"{path.name}:{node.lineno} imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Attribute):
            base = node.value
            mine = isinstance(base, ast.Name) and base.id in ("self", "cls") or (
                isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super")
            if _private(node.attr) and not mine:
                found.append(f"{path.name}:{node.lineno} reaches into .{node.attr}")
            if node.attr == "sandbox" and not mine:
                found.append(f"{path.name}:{node.lineno} reaches into the lab's sandbox")
    return found


@pytest.mark.parametrize("path", LAYERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_layers_use_the_core_through_its_public_api(path):
    assert violations(path) == []


def test_the_check_sees_a_violation(tmp_path):
    """The checker itself can fail: a file that reaches in is caught."""
    bad = tmp_path / "probe.py"
    bad.write_text("from ..lab import _netlink_error\nx = lab.sandbox.entered('ns1')\ny = Lab._current\n")
    assert len(violations(bad)) == 3


# -- no import circle: the modules make a stack ------------------------------------------------

def _module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING"


def imports_of(path: pathlib.Path, root: pathlib.Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports when it runs: at its top or lazily inside a function.

    Imports under ``if TYPE_CHECKING:`` never run and are left out.
    """
    name = _module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.AST]) -> None:  # imports are statements: expressions are not entered
        for node in statements:
            if isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse)
                continue
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            for block in ("body", "orelse", "finalbody", "handlers", "cases"):
                visit(getattr(node, block, None) or [])

    visit(_tree(path).body)
    return {m for m in found if m in modules and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each set of modules that import one another round (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def import_graph(root: pathlib.Path) -> dict[str, set[str]]:
    paths = {_module_name(p, root): p for p in root.rglob("*.py")}
    return {name: imports_of(path, root, set(paths)) for name, path in paths.items()}


def test_no_import_circle():
    """Every module imports only what is below it, lazily or not: no two modules import each other round."""
    assert circles(import_graph(PACKAGE)) == []


def test_the_circle_check_sees_a_circle(tmp_path):
    """The checker itself can fail: a lazy import back up, through a third module, is a circle; an import
    for the type checker only is not (it never runs)."""
    package = tmp_path / "netlab_magic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from .high import g\n")
    (package / "mid.py").write_text("from . import low\n")
    (package / "high.py").write_text("from .mid import low\nfrom . import typed\n")
    (package / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import g\n")
    assert circles(import_graph(package)) == [["netlab_magic.high", "netlab_magic.low", "netlab_magic.mid"]]
