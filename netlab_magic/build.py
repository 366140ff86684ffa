"""Building many namespaces at once: :func:`build_star`, and the raw netlink it needs.

``build_star(lab, 100)`` makes what a loop of the talk's commands makes, a hundred times:

    ip netns add ns0
    ip link add veth0 type veth peer name eth0 netns ns0
    ip link set veth0 master br0 && ip link set veth0 up
    ip -n ns0 addr add 10.1.0.1/16 dev eth0
    ip -n ns0 link set eth0 up && ip -n ns0 link set lo up

at the cost of the kernel's own work (about 3 ms a namespace on a 2-core VM, as fast as a hand-
written netlink floor, see ``benchmarks/``), where the per-call API (:class:`~netlab_magic.lab.NetNS`)
pays pyroute2's ~1.2 ms per request and a name lookup per step (about 35 ms a namespace).

How: one call on the lab's netlink thread does everything. That thread enters each new
namespace (``unshare``), opens a raw rtnetlink socket and an fd there, bind-mounts it at
``/run/netns/NAME`` as ``ip netns add`` does, and comes home. The veth's peer is created
directly inside its namespace, enslaved and numbered in the same request, so nothing is moved
or looked up; each namespace's requests go in one ``sendmsg`` per side. No fork, no pyroute2
on this path: its synchronous API costs about 1 ms per request, the kernel's work here is ~30 us.

IPv6: with ``ipv6=False`` (the default, as Docker does for a network without IPv6) the new
links get ``addrgenmode none``: no link-local address, hence no DAD and no MLD reports. Those
multicasts are flooded by the bridge to every port, so with IPv6 on a build costs O(N^2): on a
2-core VM 3 ms a namespace for the first 200, 24 ms for the 800th-1000th (with IPv6 off: 4 -> 7 ms,
the bridge's own per-port work). IPv6 addresses added by hand later still work.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

from pyroute2.netlink.exceptions import NetlinkError

from . import names, syscalls
from .errors import AlreadyExists, InvalidAddress, InvalidName, NetlabError
from .lab import Lab, NetNS, _netlink_error
from .model import HOST
from .netlink import NetlinkWorker
from .sandbox import NETNS_DIR

#: A Linux bridge holds at most this many ports (BR_MAX_PORTS - 1); the next fails with EXFULL.
BRIDGE_MAX_PORTS = 1023

# rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h)
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
RTM_NEWLINK, RTM_GETLINK, RTM_NEWADDR = 16, 18, 20
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_NET_NS_FD = 3, 10, 18, 26, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 8, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 1
_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")


# -- a raw rtnetlink socket -------------------------------------------------------------------

def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, flags, change)


class Rtnl:
    """A raw rtnetlink socket of the namespace the *calling thread* is in when it is made.

    Requests are queued with :meth:`add` and sent together by :meth:`commit` (one ``sendmsg``,
    one ack each); the first error is raised after every ack is read.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0
        self._queue: list[bytes] = []
        self._what: dict[int, str] = {}

    def close(self) -> None:
        self.sock.close()

    def add(self, kind: int, body: bytes, flags: int = 0, what: str = "") -> None:
        self._seq += 1
        self._queue.append(_HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0) + body)
        self._what[self._seq] = what

    def commit(self) -> None:
        """Send the queued requests; raise ``NetlinkError`` (with what failed) on the first error."""
        if not self._queue:
            return
        self.sock.send(b"".join(self._queue))
        pending = len(self._queue)
        self._queue.clear()
        first: NetlinkError | None = None
        while pending:
            data = self.sock.recv(65536)
            for kind, seq, body in _messages(data):
                if kind != NLMSG_ERROR:
                    continue
                pending -= 1
                code = -struct.unpack_from("=i", body)[0]
                if code and first is None:
                    first = NetlinkError(code, f"{self._what.get(seq, '')}: {os.strerror(code)}")
        self._what.clear()
        if first is not None:
            raise first

    def links(self) -> list[tuple[int, str, int]]:
        """``ip link`` of this socket's namespace: (index, name, master index) of every link."""
        self._seq += 1
        self.sock.send(_HDR.pack(_HDR.size + _IFINFO.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0)
                       + _ifinfo())
        found = []
        while True:
            for kind, _seq, body in _messages(self.sock.recv(1 << 20)):
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    raise NetlinkError(code, f"ip link: {os.strerror(code)}")
                if kind == RTM_NEWLINK:
                    index = _IFINFO.unpack_from(body)[2]
                    attrs = dict(_attrs(body, _IFINFO.size))
                    name = attrs.get(IFLA_IFNAME, b"").split(b"\0", 1)[0].decode()
                    master = struct.unpack("=I", attrs[IFLA_MASTER])[0] if IFLA_MASTER in attrs else 0
                    found.append((index, name, master))

    # -- the requests build_star sends ----------------------------------------------------

    def link_add_bridge(self, name: str) -> None:
        self.add(RTM_NEWLINK, _ifinfo() + _attr(IFLA_IFNAME, name.encode() + b"\0")
                 + _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge")),
                 NLM_F_CREATE | NLM_F_EXCL, f"ip link add {name} type bridge")

    def link_add_veth(self, name: str, index: int, peer: str, peer_index: int, peer_netns_fd: int,
                      master: int) -> None:
        """``ip link add NAME index I master M type veth peer name PEER index J netns FD``."""
        peer_spec = (_ifinfo(peer_index) + _attr(IFLA_IFNAME, peer.encode() + b"\0")
                     + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd)))
        info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_spec))
        body = _ifinfo(index) + _attr(IFLA_IFNAME, name.encode() + b"\0") + _attr(IFLA_LINKINFO, info)
        if master:
            body += _attr(IFLA_MASTER, struct.pack("=I", master))
        self.add(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL, f"ip link add {name} type veth peer name {peer}")

    def link_up(self, index: int, what: str = "") -> None:
        self.add(RTM_NEWLINK, _ifinfo(index, IFF_UP, IFF_UP), 0, what or f"ip link set {index} up")

    def link_no_ipv6_autoconf(self, index: int, what: str = "") -> None:
        """``ip link set DEV addrgenmode none``: no link-local address (send before ``up``)."""
        spec = _attr(IFLA_AF_SPEC, _attr(socket.AF_INET6, _attr(IFLA_INET6_ADDR_GEN_MODE, bytes([IN6_ADDR_GEN_MODE_NONE]))))
        self.add(RTM_NEWLINK, _ifinfo(index) + spec, 0, what or f"ip link set {index} addrgenmode none")

    def addr_add(self, index: int, iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface, what: str = "") -> None:
        family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        raw = iface.ip.packed
        body = struct.pack("=BBBBI", family, iface.network.prefixlen, 0, 0, index) + _attr(IFA_LOCAL, raw)
        body += _attr(IFA_ADDRESS, raw)
        self.add(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL, what or f"ip addr add {iface}")


def _messages(data: bytes):
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _flags, seq, _pid = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        yield kind, seq, data[off + _HDR.size: off + length]
        off += (length + 3) & ~3


def _attrs(body: bytes, off: int):
    while off + 4 <= len(body):
        length, kind = struct.unpack_from("=HH", body, off)
        if length < 4:
            break
        yield kind & 0x3FFF, body[off + 4: off + length]
        off += (length + 3) & ~3


# -- build_star ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Member:
    netns: str
    host_ifname: str
    host_addr: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None
    addr: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None


def build_star(lab: Lab, n: int, *, bridge: str = "br0", prefix: str = "ns", start: int = 0,
               host_ifname: str = "veth{i}", ifname: str = "eth0",
               subnet: str | None = "10.1.0.0/16", host_subnet: str | None = None,
               ipv6: bool = False, lo_up: bool = True) -> list[NetNS]:
    """Make ``n`` namespaces, each joined to ``bridge`` on the lab's host by a veth pair.

    Namespace ``{prefix}{i}`` (``i`` from ``start``) gets link ``ifname`` with address number
    ``i + 1`` of ``subnet`` (10.1.0.1/16, 10.1.0.2/16, ...), up, and ``lo`` up; its peer
    ``host_ifname.format(i=i)`` on the host is a port of ``bridge`` (made, up, if missing), up,
    with address number ``i + 1`` of ``host_subnet`` as a /32 (or /128) if given. With
    ``ipv6=False`` the new links make no link-local address (see the module's doc).

    Equivalent to, for each ``i``::

        ip netns add ns$i
        ip link add veth$i type veth peer name eth0 netns ns$i
        ip link set veth$i master br0 && ip link set veth$i up
        ip -n ns$i addr add 10.1.X.Y/16 dev eth0 && ip -n ns$i link set eth0 up && ip -n ns$i link set lo up

    Everything is checked before anything is made. If the kernel refuses something midway,
    the namespaces made so far stay (as after a shell loop that stopped) and the error says where.
    """
    if not isinstance(n, int) or n < 0:
        raise NetlabError(f"n must be a whole number >= 0, not {n!r}")
    names.check_ifname(bridge)
    names.check_ifname(ifname)
    members = []
    net = _subnet(subnet, "subnet")
    host_net = _subnet(host_subnet, "host_subnet")
    for i in range(start, start + n):
        netns = names.check_netns_name(f"{prefix}{i}")
        if netns == HOST:
            raise InvalidName(f"{HOST!r} is the lab's host; choose another prefix")
        if os.path.lexists(os.path.join(NETNS_DIR, netns)):
            raise AlreadyExists(f"namespace {netns!r} already exists")
        members.append(_Member(netns, names.check_ifname(host_ifname.format(i=i)),
                               _nth(host_net, i + 1, host=True), _nth(net, i + 1, host=False)))
    if len({m.host_ifname for m in members}) != len(members):
        raise InvalidName(f"host_ifname {host_ifname!r} gives the same name twice: put {{i}} in it")
    if bridge in {m.host_ifname for m in members}:
        raise InvalidName(f"the bridge and a veth would both be called {bridge!r}")
    lab._call(_build_star, members, bridge, ifname, ipv6, lo_up)
    return [NetNS(lab, m.netns) for m in members]


def _subnet(cidr: str | None, what: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if cidr is None:
        return None
    try:
        return ipaddress.ip_network(cidr, strict=True)
    except ValueError as err:
        raise InvalidAddress(f"{what} {cidr!r} is not a network like 10.1.0.0/16: {err}") from None


def _nth(net, k: int, *, host: bool):
    if net is None:
        return None
    if k >= net.num_addresses - (1 if net.version == 4 else 0):
        raise InvalidAddress(f"{net} has no room for address number {k}: use a larger subnet")
    ip = net.network_address + k
    return ipaddress.ip_interface(f"{ip}/{ip.max_prefixlen}" if host else f"{ip}/{net.prefixlen}")


def _build_star(worker: NetlinkWorker, members: list[_Member], bridge: str, ifname: str,
                ipv6: bool, lo_up: bool) -> None:
    """On the netlink thread, which is in the lab's host between calls."""
    home = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    host = Rtnl()
    try:
        links = host.links()
        by_name = {name: index for index, name, _ in links}
        for m in members:
            if m.host_ifname in by_name:
                raise AlreadyExists(f"interface {m.host_ifname!r} already exists in namespace {HOST!r}")
        if bridge not in by_name:
            host.link_add_bridge(bridge)
            _commit(host, HOST)
            by_name = {name: index for index, name, _ in host.links()}
            if not ipv6:
                host.link_no_ipv6_autoconf(by_name[bridge])
            host.link_up(by_name[bridge], f"ip link set {bridge} up")
            _commit(host, HOST)
            links = host.links()
        br_index = by_name[bridge]
        ports = sum(1 for _, _, master in links if master == br_index)
        if ports + len(members) > BRIDGE_MAX_PORTS:
            raise NetlabError(f"a Linux bridge holds at most {BRIDGE_MAX_PORTS} ports: {bridge} has {ports}, "
                              f"{len(members)} more do not fit (use a second bridge)")
        next_index = max(index for index, _, _ in links) + 1 if links else 2
        for m in members:
            _one(host, home, m, next_index, br_index, bridge, ifname, ipv6, lo_up)
            next_index += 1
    finally:
        host.close()
        os.close(home)


def _one(host: Rtnl, home: int, m: _Member, index: int, br_index: int, bridge: str, ifname: str,
         ipv6: bool, lo_up: bool) -> None:
    path = os.path.join(NETNS_DIR, m.netns)
    with open(path, "x"):
        pass
    sock = fd = None
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            sock = Rtnl()
            fd = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
            syscalls.mount(syscalls.THREAD_NETNS, path, None, syscalls.MS_BIND)
        finally:
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    except BaseException:
        if sock is not None:
            sock.close()
        if fd is not None:
            os.close(fd)
        os.unlink(path)
        raise
    try:
        peer_index = 2  # a fresh namespace has only lo (1)
        host.link_add_veth(m.host_ifname, index, ifname, peer_index, fd, br_index)
        if not ipv6:
            host.link_no_ipv6_autoconf(index)
        if m.host_addr is not None:
            host.addr_add(index, m.host_addr, f"ip addr add {m.host_addr} dev {m.host_ifname}")
        host.link_up(index, f"ip link set {m.host_ifname} up")
        _commit(host, HOST)
        if not ipv6:
            sock.link_no_ipv6_autoconf(peer_index)
        if m.addr is not None:
            sock.addr_add(peer_index, m.addr, f"ip addr add {m.addr} dev {ifname}")
        sock.link_up(peer_index, f"ip link set {ifname} up")
        if lo_up:
            sock.link_up(1, "ip link set lo up")
        _commit(sock, m.netns)
    finally:
        sock.close()
        os.close(fd)


def _commit(sock: Rtnl, netns: str) -> None:
    try:
        sock.commit()
    except NetlinkError as err:
        mapped = _netlink_error(err)
        what = err.args[1] if len(err.args) > 1 else str(mapped)
        raise type(mapped)(f"in namespace {netns!r}, {what}") from err


__all__ = ["build_star", "Rtnl", "BRIDGE_MAX_PORTS"]
