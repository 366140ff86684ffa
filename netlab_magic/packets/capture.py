"""Capture: the packets on one interface of the lab, tcpdump-like, read as a table.

``tcpdump -i IFNAME -U -w FILE`` runs inside the interface's own namespace as a job of the lab
(so ``%netlab reset``, a kernel restart or ``kill -9`` stop it); the file lives in the lab's
private ``/run``. Rootless, where tcpdump cannot drop its privileges (a user namespace has no
``tcpdump`` user), a small reader of the same packets writes the same file
(:mod:`netlab_magic.packets.capture_worker`). Either way the packets are shown by one reader of the
pcap format: a line per packet (time, source, destination, protocol, what it says).

    >>> cap = start_capture(lab, "veth2")         # %netlab capture veth2 --bg
    >>> lab.run("ns1", "ping -c 1 10.0.0.2")
    >>> cap.stop().table()                        # %netlab capture veth2 --stop
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import sys
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..display import Table
from ..errors import AlreadyExists, NetlabError, NotFound
from ..linux.jobs import Job
from ..model import HOST
from .headers import ICMP_TYPES, IPv4, parse_ipv4, tcp_flags
from .trace_match import parse_match

if TYPE_CHECKING:
    from ..lab.lab import Lab

#: Where capture files go: the lab's own /run (a tmpfs that dies with the lab).
CAPTURE_DIR = "/run/netlab-captures"

_ETHERTYPES = {0x0800: "IPv4", 0x0806: "ARP", 0x86DD: "IPv6"}
_ICMP6 = {128: "echo request", 129: "echo reply", 133: "router solicitation", 134: "router advertisement",
          135: "neighbor solicitation", 136: "neighbor advertisement", 143: "multicast listener report v2"}


class CaptureError(NetlabError):
    """A capture cannot start, or its file cannot be read or saved."""


@dataclass(frozen=True)
class Frame:
    """One captured frame, as tcpdump ``-e`` would sum it up."""

    number: int
    time: float  # seconds since the first frame
    length: int
    src_mac: str
    dst_mac: str
    protocol: str  # ICMP, TCP, UDP, ARP, IPv6, ...
    source: str
    destination: str
    info: str
    ip: IPv4 | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.time:.6f} {self.source} > {self.destination} {self.protocol} {self.info}"


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def decode(number: int, when: float, data: bytes) -> Frame:
    """An Ethernet frame as a :class:`Frame`."""
    if len(data) < 14:
        return Frame(number, when, len(data), "", "", "?", "?", "?", f"{len(data)} bytes")
    dst, src = _mac(data[0:6]), _mac(data[6:12])
    (ethertype,) = struct.unpack_from("!H", data, 12)
    payload = data[14:]
    kind = _ETHERTYPES.get(ethertype, f"0x{ethertype:04x}")

    def frame(protocol: str, source: str, destination: str, info: str, ip: IPv4 | None = None) -> Frame:
        return Frame(number, when, len(data), src, dst, protocol, source, destination, info, ip)

    if ethertype == 0x0806 and len(payload) >= 28:
        op = struct.unpack_from("!H", payload, 6)[0]
        sha, spa = _mac(payload[8:14]), socket.inet_ntoa(payload[14:18])
        tpa = socket.inet_ntoa(payload[24:28])
        if op == 1:
            return frame("ARP", src, dst, f"who-has {tpa} tell {spa}")
        return frame("ARP", src, dst, f"{spa} is-at {sha}")
    if ethertype == 0x0800:
        ip = parse_ipv4(payload)
        if ip is None:
            return frame("IPv4", src, dst, "(truncated)")
        if ip.icmp_type is not None:
            name = ICMP_TYPES.get(ip.icmp_type, f"type {ip.icmp_type}").replace("-", " ")
            info = f"{name}, seq {ip.icmp_seq}" if ip.icmp_seq is not None else name
        elif ip.tcp_flags is not None:
            info = f"[{tcp_flags(ip.tcp_flags)}] length {_tcp_payload(payload)}"
        else:
            info = f"length {ip.length}"
        return frame(ip.protocol.upper(), ip.source, ip.destination, info, ip)
    if ethertype == 0x86DD and len(payload) >= 40:
        nxt = payload[6]
        s6 = socket.inet_ntop(socket.AF_INET6, payload[8:24])
        d6 = socket.inet_ntop(socket.AF_INET6, payload[24:40])
        info = f"next header {nxt}"
        if nxt == 58 and len(payload) > 40:
            info = "ICMPv6 " + _ICMP6.get(payload[40], f"type {payload[40]}")
        elif nxt == 0 and len(payload) > 48 and payload[40] == 58:  # hop-by-hop, then ICMPv6 (MLD)
            info = "ICMPv6 " + _ICMP6.get(payload[48], f"type {payload[48]}")
        return frame("IPv6", s6, d6, info)
    return frame(kind, src, dst, f"{len(payload)} bytes")


def _tcp_payload(packet: bytes) -> int:
    ihl = (packet[0] & 0x0F) * 4
    total = struct.unpack_from("!H", packet, 2)[0]
    offset = (packet[ihl + 12] >> 4) * 4 if len(packet) > ihl + 12 else 20
    return max(0, total - ihl - offset)


def read_pcap(path: str) -> list[Frame]:
    """Every complete frame of a pcap file (a capture still writing it may end mid-frame)."""
    return parse_pcap(_read_bytes(path))


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def parse_pcap(data: bytes) -> list[Frame]:
    """Every complete frame of a pcap file's bytes."""
    if len(data) < 24:
        return []
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    frames: list[Frame] = []
    off, first = 24, None
    while off + 16 <= len(data):
        sec, frac, caplen, _orig = struct.unpack_from(order + "IIII", data, off)
        if off + 16 + caplen > len(data):
            break
        when = sec + frac / (1e9 if nano else 1e6)
        first = when if first is None else first
        frames.append(decode(len(frames) + 1, when - first, data[off + 16: off + 16 + caplen]))
        off += 16 + caplen
    return frames


# -- captures running in the lab --------------------------------------------------------------------

_CAPTURES: "weakref.WeakKeyDictionary[Any, dict[str, Capture]]" = weakref.WeakKeyDictionary()


class _Packets:
    """What a capture shows, from its frames: the table (also its display)."""

    netns: str
    ifname: str
    match: str | None

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def frames(self) -> list[Frame]:
        raise NotImplementedError

    def table(self, match: str | None = None, ipv6: bool = False) -> Table:
        """The frames as a table, numbered from 1.

        IPv6 frames (the kernel's own link-local housekeeping, in this IPv4 lab) are left out
        unless ``ipv6``; ``match`` keeps only some IPv4 packets (the trace's words: ``-p icmp``,
        ``-s 10.0.0.1``), or ARP with ``-p arp``.
        """
        match = match or self.match
        arp_only = bool(match) and match.split() == ["-p", "arp"]
        test = parse_match(match) if match and not arp_only else None
        frames = self.frames()
        rows = []
        for f in frames:
            if f.protocol == "IPv6" and not ipv6:
                continue
            if arp_only and f.protocol != "ARP":
                continue
            if test is not None and (f.ip is None or not test(f.ip, None, None)):
                continue
            rows.append([str(len(rows) + 1), f"{f.time:.6f}", f.source, f.destination, f.protocol, f.info])
        state = "capturing" if self.running else "stopped"
        title = f"capture on {self.ifname} in {self.netns} ({state}): {len(rows)} packet{'' if len(rows) == 1 else 's'}" + \
            (f" matching {match!r}" if match else "") + ("" if ipv6 else " (IPv6 not shown)")
        return Table(title, ["#", "time", "source", "destination", "protocol", "info"], rows,
                     empty="(no packets yet)")

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


@dataclass(repr=False)
class Capture(_Packets):
    """One capture on interface ``ifname`` of namespace ``netns``: its job and its file.

    Pickled (what crosses from the VM's guest to the kernel), it becomes a
    :class:`CapturedPackets`: the packets so far, its job and its file staying in the guest.
    """

    lab: "Lab"
    netns: str
    ifname: str
    path: str
    engine: str  # "tcpdump" or "netlab" (the capture worker)
    job: Job
    generation: int
    match: str | None = None

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def running(self) -> bool:
        return self.job.running and self.lab.generation == self.generation

    def frames(self) -> list[Frame]:
        """The frames captured so far."""
        return read_pcap(self.path)

    def stop(self) -> "Capture":
        """Stop capturing (the packets stay readable)."""
        if self.job.running:
            self.job.stop()
        return self

    def save(self, path: str) -> str:
        """Copy the capture to ``path`` (a pcap file tcpdump, Wireshark or scapy can read)."""
        try:
            shutil.copyfile(self.path, path)
        except OSError as err:
            raise CaptureError(f"cannot save the capture to {path!r}: {err.strerror}") from err
        return path

    def __reduce__(self) -> tuple:
        return CapturedPackets, (self.netns, self.ifname, self.name, self.running, self.match,
                                 _read_bytes(self.path))


@dataclass(frozen=True, repr=False)
class CapturedPackets(_Packets):
    """A :class:`Capture` as it was when it crossed from the VM's guest: its packets (the pcap file's bytes)."""

    netns: str
    ifname: str
    name: str
    was_running: bool
    match: str | None
    pcap: bytes

    @property
    def running(self) -> bool:
        return self.was_running

    def frames(self) -> list[Frame]:
        """The frames captured when it crossed."""
        return parse_pcap(self.pcap)

    def save(self, path: str) -> str:
        """Write the packets to ``path``, on this side (a pcap file tcpdump, Wireshark or scapy can read)."""
        try:
            with open(path, "wb") as f:
                f.write(self.pcap)
        except OSError as err:
            raise CaptureError(f"cannot save the capture to {path!r}: {err.strerror}") from err
        return path


def find_interface(lab: "Lab", ifname: str, netns: str | None = None) -> str:
    """The namespace holding interface ``ifname`` (``netns`` if given); one line if none or several do."""
    if netns is not None:
        lab.require(netns)
        if not lab.netns(netns).link_exists(ifname):
            raise NotFound(f"interface {ifname!r} does not exist in namespace {netns!r}")
        return netns
    found = [ns for ns in [HOST, *lab.list_netns()] if lab.netns(ns).link_exists(ifname)]
    if not found:
        raise NotFound(f"no namespace of the lab has an interface {ifname!r}")
    if len(found) > 1:
        raise NotFound(f"interface {ifname!r} is in several namespaces ({', '.join(found)}): "
                       f"say which with --netns")
    return found[0]


def captures(lab: "Lab") -> dict[str, Capture]:
    """The lab's captures by name (those of a lab before its last reset are gone)."""
    table = _CAPTURES.setdefault(lab, {})
    for name in [n for n, c in table.items() if c.generation != lab.generation]:
        del table[name]
    return table


def get_capture(lab: "Lab", ifname: str, netns: str | None = None) -> Capture:
    """The capture of interface ``ifname`` (the last one started)."""
    mine = [c for c in captures(lab).values() if c.ifname == ifname and (netns is None or c.netns == netns)]
    if not mine:
        raise NotFound(f"no capture on {ifname!r}: start one with %netlab capture {ifname} --bg")
    return mine[-1]


def stop_capture(lab: "Lab", ifname: str, netns: str | None = None) -> Capture:
    """Stop the capture of interface ``ifname`` (the last one started); its packets stay readable."""
    return get_capture(lab, ifname, netns).stop()


def start_capture(lab: "Lab", ifname: str, netns: str | None = None, *, count: int | None = None,
                  engine: str | None = None, match: str | None = None) -> Capture:
    """Start capturing on ``ifname`` in its namespace, in the background (a job of the lab)."""
    netns = find_interface(lab, ifname, netns)
    if match:
        parse_match(match)  # a bad match is an error now, not at --show
    name = f"capture-{ifname}" if netns == HOST or not any(
        c.ifname == ifname and c.netns != netns for c in captures(lab).values()) else f"capture-{netns}-{ifname}"
    old = captures(lab).get(name)
    if old is not None and old.running:
        raise AlreadyExists(f"a capture on {ifname} is running already: %netlab capture {ifname} --stop ends it")
    engine = engine or ("tcpdump" if lab.mode == "root" and shutil.which("tcpdump") else "netlab")
    os.makedirs(CAPTURE_DIR, exist_ok=True)
    path = os.path.join(CAPTURE_DIR, f"{name}.pcap")
    if os.path.exists(path):
        os.unlink(path)
    if engine == "tcpdump":
        command = f"exec tcpdump -i {ifname} --immediate-mode -U -n -Z root -w {path}" + (f" -c {count}" if count else "")
    else:
        command = f"exec {sys.executable} -m netlab_magic.packets.capture_worker {ifname} {path} {count or ''}"
    job = lab.start_job(netns, command, name=name)
    capture = Capture(lab, netns, ifname, path, engine, job, lab.generation, match)
    captures(lab)[name] = capture
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and job.running and not _ready(path):
        time.sleep(0.01)
    if not job.running and not _ready(path):
        raise CaptureError(f"the capture on {ifname} did not start: {job.output().strip()[-300:]}")
    time.sleep(0.05)  # the header is written just before the socket listens (tcpdump: after)
    return capture


def _ready(path: str) -> bool:
    try:
        return os.path.getsize(path) >= 24
    except OSError:
        return False


def capture_for(lab: "Lab", ifname: str, netns: str | None = None, *, count: int = 10, timeout: float = 5.0,
                engine: str | None = None, match: str | None = None) -> Capture:
    """Capture in the foreground: until ``count`` packets or ``timeout`` seconds, then stopped."""
    capture = start_capture(lab, ifname, netns, count=count, engine=engine, match=match)
    try:
        capture.job.wait(timeout)
    finally:
        capture.stop()
    return capture
