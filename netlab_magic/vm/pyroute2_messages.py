"""pyroute2's answers across the port: each netlink message as its raw bytes, rebuilt as the same class.

The guest's pyroute2 answers a call with messages (``ifinfmsg``, ``ifaddrmsg``, ``nlmsgerr`` ...),
in tuples and lists, or as a generator; the kernel's pyroute2 (the same files, read over 9p)
decodes the same bytes into the same class, so ``link.get('ifname')``, ``link['index']`` and
``link.get('state')`` are pyroute2's own. What the guest's socket added to the header while it
read (``target``, ``stats``, ``error``) and the ``event`` name cross beside the bytes.

What a call gives back is :func:`pack`\\ ed in the guest and :func:`unpack`\\ ed in the kernel:
a message becomes a :class:`Message`; a generator becomes :class:`Items` (a list, read whole in
the guest: pyroute2's dumps end); an asynchronous generator :class:`AsyncItems`.
Nothing here opens a socket.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator


@dataclass(frozen=True)
class Message:
    """One netlink message: its class (module and name), its bytes, and what its reader added."""

    module: str
    name: str
    raw: bytes
    header: dict = field(default_factory=dict)
    event: str | None = None


@dataclass(frozen=True)
class Items:
    """What a generator yielded, read whole in the guest: a generator again in the kernel."""

    items: list


@dataclass(frozen=True)
class AsyncItems:
    """What an asynchronous generator yielded (``await ipr.get_links()``): ``async for`` in the kernel."""

    items: list


def is_message(value: Any) -> bool:
    """True for a pyroute2 netlink message (without importing pyroute2 where it is not loaded)."""
    return any(cls.__name__ == "nlmsg_base" and cls.__module__ == "pyroute2.netlink" for cls in type(value).__mro__)


def pack_message(msg: Any) -> Message:
    """``msg`` as its bytes: what its socket read (``msg.data`` from ``msg.offset``, ``msg.length`` long)."""
    cls = type(msg)
    raw = bytes(msg.data[msg.offset:msg.offset + msg.length])
    header = dict(msg.get("header") or {})
    decoded = {"length", "type", "flags", "sequence_number", "pid"}
    extra = {key: value for key, value in header.items() if key not in decoded}
    return Message(cls.__module__, cls.__qualname__, raw, extra, msg.get("event"))


def rebuild(message: Message) -> Any:
    """The message again: its class, decoded from its bytes, with what its reader added."""
    cls: Any = importlib.import_module(message.module)
    for part in message.name.split("."):
        cls = getattr(cls, part)
    msg = cls(message.raw)
    msg.decode()
    msg["header"].update(message.header)
    if message.event is not None:
        msg["event"] = message.event
    return msg


def pack(value: Any) -> Any:
    """What a pyroute2 call returned, ready to pickle: its messages as :class:`Message`, in the same containers."""
    if is_message(value):
        return pack_message(value)
    if isinstance(value, (list, tuple)):
        return type(value)(pack(item) for item in value)
    if isinstance(value, Iterator) and not isinstance(value, (str, bytes)):
        return Items([pack(item) for item in value])
    return value


def unpack(value: Any) -> Any:
    """The kernel's side of :func:`pack`: messages rebuilt, :class:`Items` a generator, :class:`AsyncItems` an async one."""
    if isinstance(value, Message):
        return rebuild(value)
    if isinstance(value, (list, tuple)):
        return type(value)(unpack(item) for item in value)
    if isinstance(value, Items):
        return _iterate([unpack(item) for item in value.items])
    if isinstance(value, AsyncItems):
        return _iterate_async([unpack(item) for item in value.items])
    return value


def _iterate(items: list) -> Iterator[Any]:
    yield from items


async def _iterate_async(items: list) -> AsyncIterator[Any]:
    for item in items:
        yield item
