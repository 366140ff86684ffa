"""pyroute2's synchronous API (``IPRoute()``, ``NetNS(NAME)``) in a cell, on the cell's own thread.

pyroute2 0.9's synchronous classes wrap its asyncio core: every call drives an event loop with
``run_until_complete``. The loop comes from ``AsyncCoreSocket.setup_event_loop``: the thread's
running loop if there is one, else a new one. In a Jupyter cell there is one, ipykernel's, and
running it again raises ``RuntimeError: This event loop is already running``.

pyroute2's maintainers advise a thread of its own. But the cell's thread is the one that lives in
the lab (in NAME under ``%%netns NAME --python``), and a netlink socket acts on the namespace of
the thread that opens it. So the synchronous classes, which mark their core
``status['event_loop'] = 'new'`` before they ask for a loop, get a private loop of their own that
sets the kernel's running loop aside while it runs: the cell blocks, as any synchronous call does,
and all of pyroute2's work happens on the cell's thread, in the cell's namespace. The loop is
closed with the object (``close()``, the end of a ``with`` block), and its socket with it.
The asynchronous API (``async with AsyncIPRoute() as ipr`` and ``await``) is left as it is: it
runs on the kernel's loop already.

In the VM backend the lab is in the guest, and so are a cell's pyroute2 objects
(:func:`forward_to_vm`, :mod:`netlab_magic.vm.pyroute2_proxy`).

pyroute2 is not imported here: the change is made when a cell first imports it.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any, Callable, Sequence

_CORE = "pyroute2.netlink.core"
_PATCHED = "__netlab_cell_loop__"


class CellLoop(asyncio.SelectorEventLoop):
    """A synchronous pyroute2 object's loop: runs on the cell's thread, the kernel's loop set aside.

    The kernel's loop is not running anything meanwhile (its thread is busy running the cell);
    it is only marked as the thread's running loop, which forbids starting another.
    """

    def run_until_complete(self, future: Any) -> Any:
        outer = asyncio._get_running_loop()
        asyncio._set_running_loop(None)
        try:
            return super().run_until_complete(future)
        finally:
            asyncio._set_running_loop(outer)


def _sync_loop_when_a_loop_runs(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def setup_event_loop(core: Any) -> Any:
        synchronous = core.use_event_loop is None and core.status["event_loop"] == "new"
        if synchronous and asyncio._get_running_loop() is not None:
            loop = CellLoop()
            core.status["eids"].add(id(loop))
            return loop
        return original(core)

    setattr(setup_event_loop, _PATCHED, True)
    setup_event_loop.__doc__ = original.__doc__
    return setup_event_loop


def _patch(core_module: ModuleType) -> None:
    cls = core_module.AsyncCoreSocket
    if not getattr(cls.setup_event_loop, _PATCHED, False):
        cls.setup_event_loop = _sync_loop_when_a_loop_runs(cls.setup_event_loop)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds module ``name`` as Python would, and calls ``patch`` on it once it is executed."""

    def __init__(self, name: str, patch: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.patch = patch

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if name != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        exec_module = loader.exec_module
        patch = self.patch

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _on_import(name: str, patch: Callable[[ModuleType], None]) -> None:
    """``patch(module)`` now if module ``name`` is imported, else once a cell imports it."""
    if name in sys.modules:
        patch(sys.modules[name])
    elif not any(isinstance(f, _PatchOnImport) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport(name, patch))


def install() -> None:
    """Let pyroute2's synchronous classes run in cells (now, or when pyroute2 is first imported)."""
    _on_import(_CORE, _patch)


def forward_to_vm() -> None:
    """In the VM backend: a cell's pyroute2 objects live in the guest, on the lab (now, or when pyroute2
    is first imported; :mod:`netlab_magic.vm.pyroute2_proxy`)."""
    from ..vm.pyroute2_proxy import forward

    _on_import("pyroute2", forward)
