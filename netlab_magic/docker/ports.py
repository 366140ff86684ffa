"""Published ports: ``-p [IP:]HOST:CONTAINER[/PROTO]`` parsed, and the port allocator's refusal.

A malformed ``-p`` is refused by the Docker CLI itself (go-connections' ``nat.ParsePortSpec``),
before dockerd hears of it: :func:`parse_publish` is the CLI's step (:class:`~.options.CliError`,
in its words); the daemon model takes the typed :class:`PortBinding` values it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address

from ..errors import AlreadyExists
from .options import CliError


class PortAllocated(AlreadyExists):
    """``Bind for IP:PORT failed: port is already allocated`` (libnetwork's port allocator)."""


@dataclass(frozen=True)
class PortBinding:
    """One ``-p [IP:]HOST:CONTAINER[/PROTO]``: host side (address, port) to the container's port."""

    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: IPv4Address = IPv4Address("0.0.0.0")

    @classmethod
    def parse(cls, spec: str) -> PortBinding:
        """Parse what follows ``-p``: ``8888:80``, ``8888:80/udp``, ``127.0.0.1:8888:80``."""
        rest, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            lab = " (Docker takes sctp too; this lab publishes tcp and udp)" if proto == "sctp" else ""
            raise CliError(f"invalid proto: {proto}{lab}")
        parts = rest.rsplit(":", 2)
        if len(parts) < 2:
            raise CliError(f"invalid publish spec {spec!r}: this lab needs HOST:CONTAINER "
                           "(Docker would pick a random host port)")
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        try:
            ip = IPv4Address(host_ip)
        except ValueError as err:
            raise CliError(f"invalid IP address: {host_ip}") from err
        return cls(_port(parts[-2], "hostPort"), _port(parts[-1], "containerPort"), proto, ip)

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


def parse_publish(specs: Iterable[str]) -> tuple[PortBinding, ...]:
    """Every ``-p`` of a ``docker run``, parsed by the CLI before dockerd hears of the command; a
    malformed one is the CLI's one line, ``docker: invalid hostPort: 70000.``"""
    try:
        return tuple(PortBinding.parse(spec) for spec in specs)
    except CliError as err:
        text = str(err)
        raise CliError(f"docker: {text}{'' if text.endswith('.') else '.'}") from err


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise CliError(f"invalid {what}: {text}")
    return int(text)


__all__ = ["PortBinding", "PortAllocated", "parse_publish"]
