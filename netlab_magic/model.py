"""The lab as data: what :meth:`Lab.snapshot` returns, and what status tables and widgets draw.

Plain frozen dataclasses, JSON-ready through :meth:`LabSnapshot.to_dict`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The name under which the lab's own "host" namespace appears.
HOST = "host"


@dataclass(frozen=True)
class Peer:
    """The other end of a veth pair: its namespace (``None`` if outside the lab) and name."""

    netns: str | None
    ifname: str | None


@dataclass(frozen=True)
class Interface:
    """One network interface, as ``ip -d addr show`` would describe it."""

    name: str
    index: int
    kind: str  # "veth", "bridge", "loopback", "dummy", ...
    state: str  # operstate: "UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", ...
    admin_up: bool  # the IFF_UP flag: `ip link set dev X up` was done
    mtu: int
    mac: str | None
    addresses: tuple[str, ...] = ()  # "10.0.0.1/24", IPv4 first
    master: str | None = None  # the bridge this interface is a port of
    peer: Peer | None = None  # for veth: the other end


@dataclass(frozen=True)
class Route:
    """One route of the main table, as ``ip route`` prints it."""

    dst: str  # "default" or a CIDR
    dev: str | None = None
    gateway: str | None = None
    src: str | None = None
    proto: str | None = None  # "kernel", "boot", "static", ...
    scope: str | None = None  # "link", "host", "universe"

    def __str__(self) -> str:
        parts = [self.dst]
        if self.gateway:
            parts += ["via", self.gateway]
        if self.dev:
            parts += ["dev", self.dev]
        if self.proto and self.proto != "boot":
            parts += ["proto", self.proto]
        if self.scope and self.scope != "universe":
            parts += ["scope", self.scope]
        if self.src:
            parts += ["src", self.src]
        return " ".join(parts)


@dataclass(frozen=True)
class Namespace:
    """One network namespace of the lab, with its interfaces and IPv4 routes."""

    name: str
    interfaces: tuple[Interface, ...] = ()
    routes: tuple[Route, ...] = ()

    def interface(self, name: str) -> Interface:
        """The interface called ``name`` (``KeyError`` if there is none)."""
        for iface in self.interfaces:
            if iface.name == name:
                return iface
        raise KeyError(name)

    @property
    def bridges(self) -> tuple[Interface, ...]:
        return tuple(i for i in self.interfaces if i.kind == "bridge")


@dataclass(frozen=True)
class LabSnapshot:
    """The whole lab at one moment: the host first, then the namespaces by name."""

    namespaces: tuple[Namespace, ...] = field(default_factory=tuple)

    def __getitem__(self, name: str) -> Namespace:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(ns.name == name for ns in self.namespaces)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(ns.name for ns in self.namespaces)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the widgets send to the browser)."""
        return asdict(self)
