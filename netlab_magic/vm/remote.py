"""Calls across the port: the host's :class:`VMLab` asks, the guest's in-kernel lab answers.

A call is ``(target, name, args, kwargs)``, pickled; its answer ``("value", v)`` or ``("raised",
exc)``, pickled back. Both ends run this same package, so what crosses is the lab's own types
(a :class:`~netlab_magic.model.LabSnapshot`, a :class:`~netlab_magic.packets.trace_model.Trace`, the lab's
typed errors) and the magics use them as they do in-kernel.

What cannot cross stays where it lives and crosses as a reference: the lab itself, a
namespace's handle, a job, anything holding a process, a thread or a lock. The host gets a
:class:`Remote` whose attributes and methods are calls (``lab.jobs.get("job1").output()``
is three), so the magics need no second copy of the lab's API.

Pickle from the guest is safe to load here for the reason the kernel runs cells at all: both
ends are the learner's own (the guest runs as the kernel's user, its root is the learner's).
"""

from __future__ import annotations

import functools
import io
import pickle
from dataclasses import dataclass
from typing import Any, Callable

#: The guest's lab: the object every call without a target goes to.
LAB = 0


@dataclass(frozen=True)
class Method:
    """The answer to a ``getattr`` that found a method: the host calls it by name."""

    name: str


class Objects:
    """The guest's side: the objects that crossed as references, by number (:data:`LAB` is the lab)."""

    def __init__(self, lab: Any, by_reference: tuple[type, ...] = ()) -> None:
        self._by_id: dict[int, Any] = {LAB: lab}
        self._ids: dict[int, int] = {id(lab): LAB}
        #: Types that never cross by value (the guest's server names the lab's: a lab, a job ...).
        self.by_reference = by_reference

    def keep(self, obj: Any) -> int:
        ident = self._ids.get(id(obj))
        if ident is None:
            ident = len(self._by_id)
            self._by_id[ident] = obj
            self._ids[id(obj)] = ident
        return ident

    def get(self, ident: int) -> Any:
        return self._by_id[ident]

    def invoke(self, target: int, name: str, args: tuple, kwargs: dict) -> Any:
        """Run one call on object ``target``: a method, or ``__getattr__`` (a value, or :class:`Method`)."""
        obj = self.get(target)
        if name == "__getattr__":
            value = getattr(obj, args[0])
            return Method(args[0]) if callable(value) and hasattr(value, "__self__") else value
        return getattr(obj, name)(*args, **kwargs)

    def dumps(self, value: Any) -> bytes:
        """``value`` pickled for the host; what cannot be pickled crosses as a reference."""
        try:
            return _dumps(value, self._reference)
        except (TypeError, AttributeError, pickle.PicklingError):  # a lock, a pipe, a local function...
            return _dumps(value, self._reference, everything=True)

    def loads(self, data: bytes) -> Any:
        return _loads(data, self.get)

    def _reference(self, obj: Any, everything: bool) -> Any:
        if isinstance(obj, self.by_reference) or (everything and not _plain(obj)):
            return ("ref", self.keep(obj), type(obj).__name__)
        return None


class Remote:
    """The host's handle on an object of the guest: attributes and method calls go there."""

    def __init__(self, call: Callable[..., Any], ident: int, kind: str) -> None:
        object.__setattr__(self, "_call", call)
        object.__setattr__(self, "_ident", ident)
        object.__setattr__(self, "_kind", kind)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = self._call(self._ident, "__getattr__", (name,), {})
        if isinstance(value, Method):
            return functools.partial(self._call_method, name)
        return value

    def _call_method(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        return self._call(self._ident, method, args, kwargs)

    def __remote_id__(self) -> tuple:
        """What this object pickles as, for the guest to find the object it stands for."""
        return ("ref", self._ident)

    def __repr__(self) -> str:
        return f"<{self._kind} in the lab's VM>"


def host_dumps(value: Any) -> bytes:
    """``value`` pickled for the guest: a :class:`Remote` goes back as the reference it came as."""
    return _dumps(value, lambda obj, everything: obj.__remote_id__() if isinstance(obj, Remote) else None)


def host_loads(data: bytes, call: Callable[..., Any]) -> Any:
    """What the guest sent; its references become :class:`Remote` objects that call through ``call``."""
    return _loads(data, lambda ident, kind: Remote(call, ident, kind))


def interrupted(*args: Any) -> BaseException:
    """:class:`~netlab_magic.linux.process.Interrupted` again (it carries KeyboardInterrupt's name, so pickle cannot find it)."""
    from ..linux.process import Interrupted

    return Interrupted(*args)


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, reference: Callable[[Any], Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._reference = reference

    def persistent_id(self, obj: Any) -> Any:
        return self._reference(obj)

    def reducer_override(self, obj: Any) -> Any:
        from ..linux.process import Interrupted

        return (interrupted, obj.args) if type(obj) is Interrupted else NotImplemented


def _dumps(value: Any, reference: Callable[[Any, bool], Any], everything: bool = False) -> bytes:
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, lambda obj: reference(obj, everything))
    pickler.dump(value)
    return buffer.getvalue()


def _loads(data: bytes, resolve: Callable[..., Any]) -> Any:
    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = lambda pid: resolve(*pid[1:])  # type: ignore[method-assign]
    return unpickler.load()


_PLAIN = (str, bytes, int, float, bool, type(None), tuple, list, dict, set, frozenset, BaseException, Method)


def _plain(obj: Any) -> bool:
    return isinstance(obj, _PLAIN) or isinstance(obj, type) or callable(obj) and hasattr(obj, "__module__") \
        and not hasattr(obj, "__self__")
