"""Probes: single packets sent for real, and where each one ended (delivered, or dropped by which rule).

A :class:`Probe` is one packet from a namespace to an address, of one :data:`KINDS`: the first
packet of a new conversation (a TCP SYN, a UDP datagram, an ICMP echo request) or a packet that
pretends to answer one that never began (a TCP ACK, an ICMP echo reply), which is what a
firewall that recognises answers by their flags or ICMP type lets through. :func:`send_probes`
sends them all at once, from raw sockets inside their namespaces (``python -m
netlab_magic.packets.probes``, one process per source namespace),
while the kernel's packet trace (:mod:`netlab_magic.packets.trace`) is on in every namespace of the
lab, and returns for each an :class:`Outcome`: the namespace it was delivered in, or the hop
that dropped it.

So "cannot reach" is exact and one-way: the packet itself did not arrive (a lost answer does
not count as a blocked request), and the rule that stopped it is known.

An echo request may also carry a source address of one's choosing (``Probe(..., source=ADDR)``,
an address no interface of its namespace has, so no answer can come back): the probe of "does
the rule set let in what comes from *another* range than the one it names?".

    >>> [o.summary() for o in send_probes(lab, [Probe("dummy2", "172.18.0.2", "syn")])]
    ['a TCP SYN from dummy2 to 172.18.0.2:80: dropped in host by filter DOCKER-ISOLATION-STAGE-2 ...']
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..linux.process import stop_group
from ..model import HOST
from .trace_assembly import build_trace
from .trace_model import Hop, Packet
from .trace_session import Tracing

if TYPE_CHECKING:
    from ..lab.lab import Lab

__all__ = ["Probe", "Outcome", "KINDS", "OPENERS", "send_probes"]

#: What each kind of probe is, in words.
KINDS = {
    "syn": "a TCP SYN",
    "udp": "a UDP datagram",
    "ping": "an ICMP echo request",
    "ack": "a TCP ACK that answers nothing",
    "pong": "an ICMP echo reply that answers nothing",
}
#: The kinds that start a conversation, and those that only look like answers.
OPENERS = ("syn", "udp", "ping")
FAKE_ANSWERS = ("ack", "pong")
#: Probes take source ports (or ICMP ids) from here, each its own, from a random start every time
#: (so that no connection a former probe left in conntrack answers for a new one).
ID_RANGE = (33000, 60000)

@dataclass(frozen=True)
class Probe:
    """One packet of kind ``kind`` (:data:`KINDS`) from namespace ``src`` to ``dst`` (TCP/UDP: port ``port``)."""

    src: str
    dst: str
    kind: str
    port: int = 80
    #: An echo request's source address, when it is not the one the kernel would choose.
    source: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind of probe {self.kind!r} (known: {', '.join(KINDS)})")
        if self.source is not None and self.kind != "ping":
            raise ValueError(f"only an echo request takes a source address of its own, not {KINDS[self.kind]}")

    def __str__(self) -> str:
        where = f"{self.dst}:{self.port}" if self.kind in ("syn", "ack", "udp") else self.dst
        sender = "the host" if self.src == HOST else self.src
        if self.source is not None:
            sender += f" (as {self.source})"
        return f"{KINDS[self.kind]} from {sender} to {where}"


@dataclass(frozen=True)
class Outcome:
    """Where one probe ended: :attr:`delivered` in a namespace, or dropped at :attr:`drop`."""

    probe: Probe
    packet: Packet | None

    @property
    def delivered(self) -> str | None:
        """The namespace whose INPUT took the packet in (its destination), or None."""
        if self.packet is None or not self.packet.hops:
            return None
        last = self.packet.hops[-1]
        return last.netns if last.family == "ip" and last.hook == "INPUT" and last.verdict != "DROP" else None

    @property
    def drop(self) -> Hop | None:
        """The hop that dropped it, if one did."""
        return self.packet.drop if self.packet is not None else None

    def summary(self) -> str:
        return f"{self.probe}: {self.packet.fate if self.packet is not None else 'not seen leaving'}"


def _matches(probe: Probe, ident: int, packet: Packet) -> bool:
    h = packet.header
    if h is None or h.dst != probe.dst:
        return False
    if probe.kind in ("ping", "pong"):
        return h.icmp_id == ident and h.icmp_type == (8 if probe.kind == "ping" else 0)
    return h.sport == ident and h.dport == probe.port and h.proto == (17 if probe.kind == "udp" else 6)


def send_probes(lab: "Lab", probes: Sequence[Probe], *, timeout: float = 60.0) -> list[Outcome]:
    """Send every probe once (all together, traced in every namespace of ``lab``); their outcomes, in order.

    ``timeout`` bounds the senders, which end as soon as their probes are out: a Python process
    each, seconds to start in the VM's guest under TCG and load, where 10 s was once too short.

    A probe the trace lost sight of on its way (neither delivered nor dropped) is sent once more:
    seen here for about one in a hundred ICMP echo replies that answer nothing, last reported
    where the bridge hands the frame up to the host.
    """
    outcomes = _send(lab, probes, timeout)
    again = [i for i, o in enumerate(outcomes) if o.delivered is None and o.drop is None]
    if again:
        for i, outcome in zip(again, _send(lab, [probes[i] for i in again], timeout)):
            outcomes[i] = outcome
    return outcomes


def _send(lab: "Lab", probes: Sequence[Probe], timeout: float) -> list[Outcome]:
    first = random.randrange(ID_RANGE[0], ID_RANGE[1] - len(probes))
    ids = [(probe, first + i) for i, probe in enumerate(probes)]
    by_src: dict[str, list[list]] = {}
    for probe, ident in ids:
        lab.require(probe.src)
        by_src.setdefault(probe.src, []).append([probe.dst, probe.kind, probe.port, ident, probe.source])
    with Tracing(lab, [HOST, *lab.list_netns()]) as tracing:
        senders = [lab.popen(src, [sys.executable, "-m", __name__, json.dumps(todo)]) for src, todo in by_src.items()]
        try:
            for proc in senders:
                proc.wait(timeout)
        finally:
            for proc in senders:
                stop_group(proc)
        events = tracing.finish()
        seen = {n for n, _ in events}
        interfaces = {n: tracing.interfaces(n) for n in seen}
        rules = {n: tracing.rules(n) for n in seen}
    trace = build_trace(events, netns=HOST, command="probes", interfaces=interfaces, rules=rules)
    return [Outcome(probe, next((p for p in trace.packets if _matches(probe, ident, p)), None))
            for probe, ident in ids]


# -- the sender: ``python -m netlab_magic.packets.probes JSON``, one process per source namespace ----------

def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmp_echo(kind: str, ident: int) -> bytes:
    """An ICMP echo request (``"ping"``) or reply (``"pong"``) with id and sequence ``ident``."""
    body = struct.pack("!BBHHH", 8 if kind == "ping" else 0, 0, 0, ident, ident) + b"netlab probe"
    return body[:2] + struct.pack("!H", checksum(body)) + body[4:]


def ipv4_packet(src: str, dst: str, icmp: bytes) -> bytes:
    """An IPv4 packet from ``src`` to ``dst`` carrying ``icmp`` (TTL 64; the kernel fills in the
    header's checksum)."""
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, socket.IPPROTO_ICMP, 0,
                       ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + icmp


def send(todo: Sequence[Sequence]) -> None:
    """Send each ``[dst, kind, port, ident, source]`` once, from raw sockets of the namespace this
    runs in (so that no TCP stack retransmits, and an ACK or an echo reply can answer nothing).
    ``ident`` is the source port or ICMP id; it is also the TCP sequence, the ICMP sequence and,
    for UDP, the payload's length, so that the trace tells every probe apart. ``source``, when
    given, is an echo request's source address, written into an IPv4 header made here."""
    for dst, kind, port, ident, source in todo:
        try:
            if source is not None:
                with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
                    s.sendto(ipv4_packet(source, dst, icmp_echo(kind, ident)), (dst, 0))
            elif kind in ("syn", "ack"):
                head = struct.pack("!HHIIBBHHH", ident, port, 1000 + ident, 0 if kind == "syn" else 1, 5 << 4,
                                   0x02 if kind == "syn" else 0x10, 64240, 0, 0)
                pseudo = (socket.inet_aton(_source_for(dst)) + socket.inet_aton(dst)
                          + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(head)))
                head = head[:16] + struct.pack("!H", checksum(pseudo + head)) + head[18:]
                with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as s:
                    s.sendto(head, (dst, 0))
            elif kind in ("ping", "pong"):
                with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
                    s.sendto(icmp_echo(kind, ident), (dst, 0))
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("", ident))
                    s.sendto(b"netlab probe" + b"." * (ident % 512), (dst, port))
        except OSError as err:  # no route, say: the probe never left, which the trace shows too
            print(f"{dst} {kind}: {err}", file=sys.stderr)


def _source_for(dst: str) -> str:
    """The address this namespace sends from towards ``dst`` (for the TCP checksum)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.connect((dst, 9))
        return u.getsockname()[0]


if __name__ == "__main__":
    send(json.loads(sys.argv[1]))
