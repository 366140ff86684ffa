"""Building many namespaces at once: :func:`build_star`, and the raw netlink it needs.

``build_star(lab, 100)`` makes what a loop of the talk's commands makes, a hundred times:

    ip netns add ns0
    ip link add veth0 type veth peer name eth0 netns ns0
    ip link set veth0 master br0 && ip link set veth0 up
    ip -n ns0 addr add 10.1.0.1/16 dev eth0
    ip -n ns0 link set eth0 up && ip -n ns0 link set lo up

at the cost of the kernel's own work (about 3 ms a namespace on a 2-core VM, as fast as a hand-
written netlink floor, see ``benchmarks/``), where the per-call API (:class:`~netlab_magic.lab.lab.NetNS`)
sends one request a step and first looks each interface up by name.

How: the calling thread, in the lab's host (``lab.entered``), does everything. It enters each
new namespace (``unshare``), opens a raw rtnetlink socket and an fd there, bind-mounts it at
``/run/netns/NAME`` as ``ip netns add`` does, and comes home. The veth's peer is created
directly inside its namespace, enslaved and numbered in the same request, so nothing is moved
or looked up; each namespace's requests go in one ``sendmsg`` per side. No fork on this path.

IPv6: with ``ipv6=False`` (the default, as Docker does for a network without IPv6) the new
links get ``addrgenmode none``: no link-local address, hence no DAD and no MLD reports. Those
multicasts are flooded by the bridge to every port, so with IPv6 on a build costs O(N^2): on a
2-core VM 3 ms a namespace for the first 200, 24 ms for the 800th-1000th (with IPv6 off: 4 -> 7 ms,
the bridge's own per-port work). IPv6 addresses added by hand later still work.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from . import names
from .errors import AlreadyExists, InvalidAddress, InvalidName, NetlabError
from .lab.lab import Lab, NetNS, commit
from .linux import namespaces
from .linux.rtnl import Rtnl
from .model import HOST
from .sandbox.sandbox import NETNS_DIR

#: A Linux bridge holds at most this many ports (BR_MAX_PORTS - 1); the next fails with EXFULL.
BRIDGE_MAX_PORTS = 1023

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
    with lab.entered(HOST):
        _build_star(members, bridge, ifname, ipv6, lo_up)
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


def _build_star(members: list[_Member], bridge: str, ifname: str, ipv6: bool, lo_up: bool) -> None:
    """With the calling thread in the lab's host."""
    host = Rtnl()
    try:
        links = [(link["index"], link["ifname"], link["master"] or 0) for link in host.links()]
        by_name = {name: index for index, name, _ in links}
        for m in members:
            if m.host_ifname in by_name:
                raise AlreadyExists(f"interface {m.host_ifname!r} already exists in namespace {HOST!r}")
        if bridge not in by_name:
            host.link_add_bridge(bridge)
            commit(host, HOST)
            by_name = {link["ifname"]: link["index"] for link in host.links()}
            if not ipv6:
                host.link_no_ipv6_autoconf(by_name[bridge])
            host.link_up(by_name[bridge], f"ip link set {bridge} up")
            commit(host, HOST)
            links = [(link["index"], link["ifname"], link["master"] or 0) for link in host.links()]
        br_index = by_name[bridge]
        ports = sum(1 for _, _, master in links if master == br_index)
        if ports + len(members) > BRIDGE_MAX_PORTS:
            raise NetlabError(f"a Linux bridge holds at most {BRIDGE_MAX_PORTS} ports: {bridge} has {ports}, "
                              f"{len(members)} more do not fit (use a second bridge)")
        next_index = max(index for index, _, _ in links) + 1 if links else 2
        for m in members:
            _one(host, m, next_index, br_index, bridge, ifname, ipv6, lo_up)
            next_index += 1
    finally:
        host.close()


def _one(host: Rtnl, m: _Member, index: int, br_index: int, bridge: str, ifname: str,
         ipv6: bool, lo_up: bool) -> None:
    path = os.path.join(NETNS_DIR, m.netns)
    sock = fd = None
    try:
        with namespaces.new_named(path):
            sock = Rtnl()
            fd = namespaces.open_current()
    except BaseException:
        if sock is not None:
            sock.close()
        if fd is not None:
            os.close(fd)
        raise
    try:
        peer_index = 2  # a fresh namespace has only lo (1)
        host.link_add_veth(m.host_ifname, ifname, peer_netns_fd=fd, index=index, peer_index=peer_index,
                           master=br_index)
        if not ipv6:
            host.link_no_ipv6_autoconf(index)
        if m.host_addr is not None:
            host.addr_add(index, m.host_addr, f"ip addr add {m.host_addr} dev {m.host_ifname}")
        host.link_up(index, f"ip link set {m.host_ifname} up")
        commit(host, HOST)
        if not ipv6:
            sock.link_no_ipv6_autoconf(peer_index)
        if m.addr is not None:
            sock.addr_add(peer_index, m.addr, f"ip addr add {m.addr} dev {ifname}")
        sock.link_up(peer_index, f"ip link set {ifname} up")
        if lo_up:
            sock.link_up(1, "ip link set lo up")
        commit(sock, m.netns)
    finally:
        sock.close()
        os.close(fd)
