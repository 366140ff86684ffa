"""Packet headers read as a learner reads them: ``TCP 10.0.0.1:41234 > 10.0.0.3:8080 [S]``.

Pure functions on bytes (the IPv4 header and the start of the transport header, as the
kernel's netfilter trace reports them); no privileges, no I/O.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

PROTOCOLS = {1: "icmp", 2: "igmp", 6: "tcp", 17: "udp"}
PROTOCOL_NUMBERS = {name: number for number, name in PROTOCOLS.items()}
ICMP_TYPES = {0: "echo-reply", 3: "destination-unreachable", 5: "redirect", 8: "echo-request",
              11: "time-exceeded", 12: "parameter-problem"}
ICMP_TYPE_NUMBERS = {name: number for number, name in ICMP_TYPES.items()}
_TCP_FLAGS = (("S", 0x02), ("F", 0x01), ("R", 0x04), ("P", 0x08), (".", 0x10))


def address_port(address: str, port: int | None) -> str:
    """``ADDR``, or ``ADDR:PORT`` where the protocol has ports (how a packet's ends are written)."""
    return address if port is None else f"{address}:{port}"


@dataclass(frozen=True)
class IPv4:
    """What an IPv4 packet says about itself: addresses, protocol, ports or ICMP type."""

    src: str
    dst: str
    proto: int
    length: int
    ident: int
    ttl: int
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None
    tcp_flags: int | None = None
    tcp_seq: int | None = None

    @property
    def protocol(self) -> str:
        """``tcp``, ``udp``, ``icmp``, ... (the number if it has no common name)."""
        return PROTOCOLS.get(self.proto, str(self.proto))

    @property
    def source(self) -> str:
        """``ADDR`` or ``ADDR:PORT``."""
        return address_port(self.src, self.sport)

    @property
    def destination(self) -> str:
        return address_port(self.dst, self.dport)

    @property
    def identity(self) -> tuple:
        """What stays the same along the whole path, through NAT and TTL changes: which packet this is."""
        return (self.proto, self.length, self.ident, self.tcp_seq, self.icmp_seq)

    def flow(self) -> tuple:
        """The connection this packet belongs to (TCP/UDP ports, or the ICMP echo id), one direction."""
        if self.icmp_id is not None:
            return (self.proto, self.src, self.icmp_id, self.dst, self.icmp_id)
        return (self.proto, self.src, self.sport, self.dst, self.dport)

    def reply_flow(self) -> tuple:
        """The same connection, the other way round."""
        proto, src, sport, dst, dport = self.flow()
        return (proto, dst, dport, src, sport)

    def what(self) -> str:
        """``ICMP echo-request``, ``TCP [S]``, ``UDP``."""
        if self.icmp_type is not None:
            return f"ICMP {ICMP_TYPES.get(self.icmp_type, f'type {self.icmp_type}')}"
        if self.tcp_flags is not None:
            return f"TCP [{tcp_flags(self.tcp_flags)}]"
        return self.protocol.upper()

    def __str__(self) -> str:
        return f"{self.what()} {self.source} > {self.destination}"


def tcp_flags(flags: int) -> str:
    """tcpdump's way: ``S``, ``S.``, ``P.``, ``F.``, ``R``."""
    return "".join(mark for mark, bit in _TCP_FLAGS if flags & bit) or "none"


def parse_ipv4(network: bytes | None, transport: bytes | None = None) -> IPv4 | None:
    """The IPv4 header in ``network`` (and ports or ICMP fields from ``transport``), or None."""
    if not network or len(network) < 20 or network[0] >> 4 != 4:
        return None
    ihl = (network[0] & 0x0F) * 4
    length, ident = struct.unpack_from("!HH", network, 2)
    ttl, proto = network[8], network[9]
    src, dst = socket.inet_ntoa(network[12:16]), socket.inet_ntoa(network[16:20])
    if transport is None and len(network) > ihl:
        transport = network[ihl:]
    fields: dict = {}
    t = transport or b""
    if proto in (6, 17) and len(t) >= 4:
        fields["sport"], fields["dport"] = struct.unpack_from("!HH", t)
        if proto == 6 and len(t) >= 14:
            fields["tcp_seq"] = struct.unpack_from("!I", t, 4)[0]
            fields["tcp_flags"] = t[13]
    elif proto == 1 and len(t) >= 2:
        fields["icmp_type"] = t[0]
        if t[0] in (0, 8) and len(t) >= 8:
            fields["icmp_id"], fields["icmp_seq"] = struct.unpack_from("!HH", t, 4)
    return IPv4(src=src, dst=dst, proto=proto, length=length, ident=ident, ttl=ttl, **fields)
