"""The shape of the package: its layers, each importing only downwards, and no import circle.

:data:`LAYERS` is the one statement of the order, bottom to top: each folder of ``netlab_magic/``
is a layer, and the few modules left at the top level are the vocabulary every layer uses
(bottom) or the workbook's exercises, whose import path notebooks use. Above the Lab API, code
uses the core (``linux/``, ``sandbox/``, ``packets/``, ``lab/``) through its public API only: no
private name of another module, no private attribute of another object, not the lab's sandbox;
what they need is a public method of ``Lab`` or ``NetNS``. Read from the source (AST).
"""

from __future__ import annotations

import ast
import functools
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "netlab_magic"

#: The layers, bottom to top: a folder, or a module at the top level. A module may import its own
#: layer and those below it, never one above (lazily or not).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "names", "model", "display", "version", "web"),  # the vocabulary every layer uses
    ("linux",),  # the kernel's interfaces: syscalls, netlink, namespaces, iptables, processes
    ("sandbox",),  # the lab's walls in this kernel
    ("packets",),  # trace, capture, conntrack, probes: on namespaces by name
    ("lab",),  # the Lab API
    ("vm",),  # the same lab in a small VM: its server in the guest, its forwarding on the host
    ("backend",),  # which lab runs: this kernel's or a VM's
    ("widgets",),
    ("build", "checks", "changes", "predictions", "trace_checks"),  # the workbook's exercises
    ("docker",),  # Docker without Docker, and its exercises
    ("troubleshoot",),  # notebook 07's broken labs, built with %docker
    ("jupyter",),  # the magics, the kernel launcher, doctor
    ("netlab_magic", "__main__"),  # the front doors: `from netlab_magic import Lab`, %load_ext, the command
)
#: Above the Lab API: the layers that use the core through its public API only.
ABOVE_THE_CORE = ("vm", "widgets", "build", "checks", "changes", "predictions", "trace_checks", "docker",
                  "troubleshoot", "jupyter", "__main__")
#: pyroute2_cells swaps asyncio's running loop for pyroute2's synchronous API: asyncio's private
#: functions are the only way (see its docstring).
API_EXEMPT = ("jupyter/pyroute2_cells.py",)
PUBLIC_API_FILES = sorted(p for p in PACKAGE.rglob("*.py")
                          if p.relative_to(PACKAGE).parts[0].removesuffix(".py") in ABOVE_THE_CORE
                          and p.relative_to(PACKAGE).as_posix() not in API_EXEMPT)


def _private(name: str) -> bool:
    """``_x`` is private; ``__x__`` and IPython's display protocol (``_repr_html_``) are not."""
    return name.startswith("_") and not name.endswith("_")


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


@pytest.mark.parametrize("path", PUBLIC_API_FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_layers_use_the_core_through_its_public_api(path):
    assert violations(path) == []


def test_the_check_sees_a_violation(tmp_path):
    """The checker itself can fail: a file that reaches in is caught."""
    bad = tmp_path / "probe.py"
    bad.write_text("from ..lab import _netlink_error\nx = lab.sandbox.entered('ns1')\ny = Lab._current\n"
                   "z = t._repr_html_()\n")
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


# -- every layer imports only downwards --------------------------------------------------------

def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = LAYERS) -> int:
    """The index in ``layers`` of ``module`` (``netlab_magic.docker.engine`` -> docker's)."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else parts[0]
    for index, members in enumerate(layers):
        if name in members:
            return index
    raise LookupError(f"{module} is in no layer: add its folder to LAYERS in tests/test_shape.py")


def upward_imports(graph: dict[str, set[str]], layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """Each import of a module by one below it, as ``low -> high``."""
    return sorted(f"{module} -> {other}" for module, imported in graph.items() for other in imported
                  if layer_of(other, layers) > layer_of(module, layers))


def test_every_layer_imports_only_downwards():
    """Each module imports its own layer and those below, lazily or not; and each has a layer."""
    assert upward_imports(import_graph(PACKAGE)) == []


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The checker itself can fail: a lazy import from a lower layer into a higher one is caught,
    and a module in no layer is named."""
    package = tmp_path / "netlab_magic"
    for folder in ("linux", "lab"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "lab" / "lab.py").write_text("from ..linux import rtnl\n")
    (package / "linux" / "rtnl.py").write_text("def f():\n    from ..lab.lab import Lab\n")
    graph = import_graph(package)
    assert upward_imports(graph) == ["netlab_magic.linux.rtnl -> netlab_magic.lab.lab"]
    with pytest.raises(LookupError, match="netlab_magic.attic.x is in no layer"):
        layer_of("netlab_magic.attic.x")
