"""The guest's side of pyroute2 in a plain cell: real pyroute2 objects, on the guest lab's host.

The kernel's ``IPRoute()``, ``NetNS(NAME)`` and ``AsyncIPRoute()`` (:mod:`.pyroute2_proxy`) each
stand for one object made here, by :func:`open_object`, on the server's main thread: the thread
that lives in the guest lab's host, as a plain cell's thread lives in the lab's host in-kernel.
So its sockets act on the lab, and ``IPRoute(netns="ns1")`` on the lab's ns1. Each method call
crosses as one :meth:`VMLab.call <netlab_magic.vm.lab.VMLab.call>` of :func:`call_method`; what
it returns crosses back :func:`packed <.pyroute2_messages.pack>`, and what it raises (pyroute2's
``NetlinkError``) crosses whole.

An asynchronous object gets an event loop of its own here: each coroutine it returns runs to its
end in one call, and an asynchronous generator (a dump) is read whole.
"""

from __future__ import annotations

import asyncio
import inspect
import pickle
from typing import Any

from ..errors import NetlabError
from .pyroute2_messages import AsyncItems, pack

#: The classes a kernel's cell may make here, by the name it knows them by.
CLASSES = ("IPRoute", "NetNS", "AsyncIPRoute")
#: The functions of ``pyroute2.netns`` that run here: they act on the lab's namespaces only.
NETNS_FUNCTIONS = ("create", "remove", "listnetns")
#: What a method that returns its own object (``__enter__``, ``__aenter__``) returns across the port.
SELF = "pyroute2-object-itself"



class NotForwarded(NetlabError):
    """What pyroute2 cannot do from a plain cell of the VM backend: one line, never the kernel's network.

    Raised on either side (the kernel's proxy, or here), it crosses whole."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook: one line in a cell, not a traceback
        return [f"{type(self).__name__}: {self}"]


_objects: dict[int, tuple[Any, asyncio.AbstractEventLoop | None]] = {}
_next_handle = iter(range(1, 1 << 62))


def open_object(lab: Any, kind: str, args: tuple, kwargs: dict) -> int:
    """Make ``pyroute2.<kind>(*args, **kwargs)`` here; its handle for :func:`call_method`."""
    import pyroute2

    if kind not in CLASSES:
        raise NotForwarded(f"pyroute2.{kind} is not forwarded to the lab's VM")
    cls = getattr(pyroute2, kind)
    if kind.startswith("Async"):
        loop = asyncio.new_event_loop()

        async def make() -> Any:
            return cls(*args, **kwargs)

        obj = loop.run_until_complete(make())
    else:
        obj, loop = cls(*args, **kwargs), None
    handle = next(_next_handle)
    _objects[handle] = (obj, loop)
    return handle


def _object(handle: int) -> tuple[Any, asyncio.AbstractEventLoop | None]:
    try:
        return _objects[handle]
    except KeyError:
        raise NotForwarded("this pyroute2 object is gone: it was closed, or the lab's VM was started afresh "
                          "since it was made; make it again") from None


def call_method(lab: Any, handle: int, name: str, args: tuple, kwargs: dict) -> Any:
    """``obj.name(*args, **kwargs)`` on the object of ``handle``, its coroutine run, its answer packed."""
    obj, loop = _object(handle)
    result = getattr(obj, name)(*args, **kwargs)
    if inspect.isawaitable(result):
        result = _loop(loop, name).run_until_complete(_awaited(result))
    if inspect.isasyncgen(result):
        result = AsyncItems([pack(item) for item in _loop(loop, name).run_until_complete(_read_all(result))])
    if result is obj:
        return SELF
    return pack(result)


def attribute(lab: Any, handle: int, name: str) -> Any:
    """An attribute of the object that is not a method (``ipr.status``): its value, if it can cross."""
    obj, _ = _object(handle)
    value = pack(getattr(obj, name))
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - a socket, a loop, a lock: it lives here
        raise NotForwarded(f"pyroute2's .{name} holds something of the VM's guest (a {type(value).__name__}) "
                          "and does not cross to the kernel") from None
    return value


def close_object(lab: Any, handle: int) -> None:
    """Close the object of ``handle`` (its socket, its loop) and forget it; a second close does nothing."""
    obj, loop = _objects.pop(handle, (None, None))
    if obj is None:
        return
    try:
        obj.close()
    finally:
        if loop is not None:
            loop.close()


def netns_function(lab: Any, name: str, args: tuple, kwargs: dict) -> Any:
    """``pyroute2.netns.<name>(*args, **kwargs)`` here, in the guest lab's mounts (its ``/run/netns``)."""
    from pyroute2 import netns

    if name not in NETNS_FUNCTIONS:
        raise NotForwarded(f"pyroute2.netns.{name} is not forwarded to the lab's VM")
    return pack(getattr(netns, name)(*args, **kwargs))


def _loop(loop: asyncio.AbstractEventLoop | None, name: str) -> asyncio.AbstractEventLoop:
    if loop is None:
        raise NetlabError(f"pyroute2's {name}() returned a coroutine on a synchronous object")
    return loop


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _read_all(generator: Any) -> list:
    return [item async for item in generator]
