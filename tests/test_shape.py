"""The shape of the package: layers outside the core use the core's public API only.

The core is the top level of ``netlab_magic/`` (the lab, the sandbox, netlink, processes, the
magics); ``docker/``, ``widgets/`` and ``vm/`` are built on it. They may not import a private name of
another module, nor reach into a private attribute of another object, nor into the lab's
sandbox: what they need is a public method of ``Lab`` or ``NetNS``. Read from the source (AST).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "netlab_magic"
LAYERS = sorted(p for sub in ("docker", "widgets", "vm") for p in (PACKAGE / sub).glob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
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


def test_the_check_sees_a_violation():
    """The checker itself can fail: a file that reaches in is caught."""
    bad = PACKAGE.parent / "tests" / "_shape_probe.py"
    bad.write_text("from ..lab import _netlink_error\nx = lab.sandbox.entered('ns1')\ny = Lab._current\n")
    try:
        assert len(violations(bad)) == 3
    finally:
        bad.unlink()
