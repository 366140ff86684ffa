"""An outside world for the lab: another machine on the host's uplink, all inside the sandbox.

A Docker host has an uplink: ``eth0``, an address, a default route to a router. The lab's host
has none (nothing it sends can leave the sandbox). :func:`add_outside` gives it one, made of lab
parts only: a namespace ``outside`` (playing the internet, or another machine of the LAN) joined
to the host by a veth pair, ``eth0`` on both sides::

    outside  eth0 203.0.113.1/24  ══ veth ══  eth0 203.0.113.2/24  the lab's host
                                              default via 203.0.113.1

The outside knows only its own subnet, as a machine beyond a router does: a container's packet
gets an answer from it only once MASQUERADE made its source the host's 203.0.113.2, and it
reaches a container only through a port the host publishes (nat PREROUTING), never by the
container's address. 203.0.113.0/24 is TEST-NET-3 (RFC 5737), no one's real address; nothing
leaves the sandbox. Equivalent to::

    ip netns add outside
    ip link add eth0 type veth peer name eth0 netns outside
    ip addr add 203.0.113.2/24 dev eth0 && ip link set dev eth0 up
    ip -n outside addr add 203.0.113.1/24 dev eth0
    ip -n outside link set dev eth0 up && ip -n outside link set dev lo up
    ip route add default via 203.0.113.1
"""

from __future__ import annotations

from ipaddress import IPv4Interface

from ..errors import AlreadyExists
from ..lab.lab import Lab
from .plumbing import Undo, quietly, unwind

NAME = "outside"
UPLINK = "eth0"
OUTSIDE_IP = IPv4Interface("203.0.113.1/24")
HOST_IP = IPv4Interface("203.0.113.2/24")


def add_outside(lab: Lab | None = None, name: str = NAME) -> str:
    """Give the lab's host an uplink to namespace ``name`` (see the module); all or nothing.

    Returns the host's address on it (``203.0.113.2``), the one the outside reaches it by.
    """
    lab = lab or Lab.current()
    if name in lab.list_netns() or lab.host.link_exists(UPLINK):
        raise AlreadyExists(f"the lab already has an outside (namespace {name!r}, or an {UPLINK} in its host)")
    undo: Undo = []
    try:
        outside = lab.add_netns(name)
        undo.append(lambda: quietly(lab.del_netns, name))
        lab.host.add_veth(UPLINK, peer=UPLINK, peer_netns=name)
        undo.append(lambda: quietly(lab.host.link_del, UPLINK))
        lab.host.addr_add(UPLINK, str(HOST_IP))
        lab.host.link_up(UPLINK)
        outside.addr_add(UPLINK, str(OUTSIDE_IP))
        outside.link_up(UPLINK)
        outside.link_up("lo")
        lab.host.route_add("default", via=str(OUTSIDE_IP.ip))
    except BaseException:
        unwind(undo)
        raise
    return str(HOST_IP.ip)


__all__ = ["add_outside", "NAME", "UPLINK", "OUTSIDE_IP", "HOST_IP"]
