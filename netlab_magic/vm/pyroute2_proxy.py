"""pyroute2 in a plain cell of the VM backend: the lab is in the guest, so pyroute2's objects are too.

In-kernel, a cell's ``IPRoute()`` opens its socket in the lab's host, where the cell's thread
lives. In the VM backend the lab is in the guest, so :func:`forward` (called once pyroute2 is
imported in the kernel: :mod:`netlab_magic.jupyter.pyroute2_cells`) makes ``pyroute2.IPRoute``,
``pyroute2.NetNS`` and ``pyroute2.AsyncIPRoute`` stand for real objects in the guest
(:mod:`.pyroute2_guest`), and ``pyroute2.netns`` for the guest's ``create``, ``remove`` and
``listnetns``. Every method call is one call to the guest; the messages it returns are
rebuilt here as pyroute2's own classes (:mod:`.pyroute2_messages`), its errors are pyroute2's
own ``NetlinkError``, ``with``, ``async with``, ``await`` and ``async for`` work as pyroute2's.
The same cells, unchanged, work in both backends (notebook 08).

The rest of pyroute2 is not forwarded, and must not act on the kernel's own network instead:
its other top-level classes (``NDB``, ``IPSet``, ``WireGuard`` ...) and anything that opens a
pyroute2 socket in the kernel (``pyroute2.iproute.linux.IPRoute`` imported by its long name)
raise :class:`~.pyroute2_guest.NotForwarded`, one line. Its message classes and exceptions stay as they are.

One difference with pyroute2: an argument must cross to the guest pickled, so a function
(``ipr.link_lookup(lambda link: ...)``) cannot; that too is one line.
"""

from __future__ import annotations

import functools
import inspect
import pickle
import types
from typing import Any, Callable, ClassVar

from . import pyroute2_guest as guest
from .pyroute2_guest import NotForwarded
from .pyroute2_messages import unpack

#: Classes of pyroute2's top level that hold data, not a socket: they stay pyroute2's.
DATA_CLASSES = ("ConntrackEntry", "IPVSDest", "IPVSService")
_FORWARDED_TEXT = ("in the VM backend only IPRoute, NetNS, AsyncIPRoute and pyroute2.netns's "
                   f"{', '.join(guest.NETNS_FUNCTIONS)} are forwarded to the lab's VM")


def _call(func: Callable[..., Any], *args: Any) -> Any:
    """``func(lab, *args)`` in the guest (:meth:`VMLab.call`), its answer unpacked."""
    from .lab import VMLab

    return unpack(VMLab.current().call(func, *args))


def _crossable(what: str, args: tuple, kwargs: dict) -> None:
    try:
        pickle.dumps((args, kwargs))
    except Exception as err:  # noqa: BLE001 - a lambda, a socket: pickle says which
        raise NotForwarded(f"{what}'s arguments cannot cross to the lab's VM ({err}); pass plain values "
                           "(a name, an index, a dict), not a function") from None


class _Forwarded:
    """A pyroute2 object that lives in the guest: attributes and method calls go there."""

    #: the name of the class in pyroute2 (and in :data:`.pyroute2_guest.CLASSES`)
    kind: ClassVar[str] = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _crossable(self.kind, args, kwargs)
        self._handle = _call(guest.open_object, self.kind, args, kwargs)
        self._closed = False

    def _method(self, name: str) -> Callable[..., Any] | None:
        """pyroute2's own method ``name`` of this class (in the kernel's copy), or None for a plain attribute."""
        import pyroute2.iproute.linux as real

        for cls in self._real_classes(real):
            attr = inspect.getattr_static(cls, name, None)
            if attr is not None:
                return attr if callable(attr) else None
        return None

    def _real_classes(self, real: types.ModuleType) -> tuple[type, ...]:
        return (real.AsyncIPRoute,)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        method = self._method(name)
        if method is None:
            return _call(guest.attribute, self._handle, name)
        return self._forwarding(name, method)

    def _forwarding(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def forwarded(*args: Any, **kwargs: Any) -> Any:
            _crossable(f"{self.kind}.{name}", args, kwargs)
            return self._answer(_call(guest.call_method, self._handle, name, args, kwargs))

        return functools.update_wrapper(forwarded, method)

    def _answer(self, value: Any) -> Any:
        return self if isinstance(value, str) and value == guest.SELF else value

    def close(self, *args: Any, **kwargs: Any) -> None:
        """Close the object in the guest (its socket); a second close does nothing."""
        if not self._closed:
            self._closed = True
            _call(guest.close_object, self._handle)

    def __repr__(self) -> str:
        return f"<{self.kind} in the lab's VM>"


class IPRoute(_Forwarded):
    """pyroute2's ``IPRoute``, made in the VM's guest, on the lab's host (``netns=NAME``: in NAME)."""

    kind = "IPRoute"

    def _real_classes(self, real: types.ModuleType) -> tuple[type, ...]:
        return (real.IPRoute, real.AsyncIPRoute)

    def __enter__(self) -> "IPRoute":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NetNS(IPRoute):
    """pyroute2's ``NetNS(NAME)``, made in the VM's guest, inside the lab's NAME."""

    kind = "NetNS"

    def _real_classes(self, real: types.ModuleType) -> tuple[type, ...]:
        return (real.NetNS, real.AsyncIPRoute)


class AsyncIPRoute(_Forwarded):
    """pyroute2's ``AsyncIPRoute``, made in the VM's guest: ``await`` and ``async for`` as in pyroute2.

    Each awaited call runs to its end in the guest (a dump is read whole there, then iterated here).
    """

    kind = "AsyncIPRoute"

    def _forwarding(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        forward = super()._forwarding(name, method)
        if not inspect.iscoroutinefunction(method):
            return forward

        async def forwarded(*args: Any, **kwargs: Any) -> Any:
            return forward(*args, **kwargs)

        return functools.update_wrapper(forwarded, method)

    async def __aenter__(self) -> "AsyncIPRoute":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _netns_module(real: types.ModuleType) -> types.ModuleType:
    """``pyroute2.netns`` for cells: ``create``, ``remove``, ``listnetns`` in the guest; its constants; the rest refused."""
    module = types.ModuleType(real.__name__, "pyroute2.netns, forwarded to the lab's VM (netlab_magic.vm.pyroute2_proxy)")

    def forwarded(name: str) -> Callable[..., Any]:
        def function(*args: Any, **kwargs: Any) -> Any:
            _crossable(f"pyroute2.netns.{name}", args, kwargs)
            return _call(guest.netns_function, name, args, kwargs)

        return functools.update_wrapper(function, getattr(real, name))

    for name in guest.NETNS_FUNCTIONS:
        setattr(module, name, forwarded(name))

    def __getattr__(name: str) -> Any:  # noqa: N807 - a module's own __getattr__ (PEP 562)
        value = getattr(real, name)
        if callable(value) and not isinstance(value, type):
            raise NotForwarded(f"pyroute2.netns.{name} does not run in a plain cell: {_FORWARDED_TEXT} "
                               "(for Python inside a namespace: %%netns NAME --python)")
        return value

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def _refused(name: str) -> type:
    def refuse(cls: type, *args: Any, **kwargs: Any) -> Any:
        raise NotForwarded(f"pyroute2.{name} does not run in a plain cell: {_FORWARDED_TEXT} "
                           "(%%netns NAME --python runs Python in the guest, where all of pyroute2 does)")

    return type(name, (), {"__new__": refuse, "__doc__": f"pyroute2.{name}: refused in the VM backend (not forwarded)"})


def _refuse_sockets_here(core: types.ModuleType) -> None:
    """A pyroute2 socket opened in the kernel (any class, by any import path) is refused in one line."""
    cls = core.AsyncCoreSocket
    if getattr(cls.__init__, "__netlab_refused__", False):
        return

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise NotForwarded(f"pyroute2 would open a netlink socket ({type(self).__name__}) in the kernel, which is "
                           f"not the lab: {_FORWARDED_TEXT}")

    refuse.__netlab_refused__ = True  # type: ignore[attr-defined]
    cls.__init__ = refuse


def forward(pyroute2: types.ModuleType) -> None:
    """Make the imported ``pyroute2`` package forward to the lab's VM (see the module's docstring). Idempotent."""
    import pyroute2.netlink.core as core
    import pyroute2.netns as real_netns

    _refuse_sockets_here(core)
    for name in ("IPRoute", "NetNS", "AsyncIPRoute"):
        setattr(pyroute2, name, globals()[name])
    if getattr(pyroute2, "netns", None) is real_netns:
        pyroute2.netns = _netns_module(real_netns)
    for value in list(getattr(pyroute2, "modules", [])):
        name = getattr(value, "__name__", "")
        if (isinstance(value, type) and not issubclass(value, BaseException) and name not in DATA_CLASSES
                and getattr(pyroute2, name, None) is value and not issubclass(value, _Forwarded)):
            setattr(pyroute2, name, _refused(name))
