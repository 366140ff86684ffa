"""The links of Docker's bridge networking, made in the lab: bridges, and a container's veth pair.

What ``drivers/bridge`` does with netlink, done with the lab's API (each call names its ``ip``
equivalent): a network is a bridge in the lab's host with the gateway address, up; a container
is a namespace named after it, with a veth pair whose host end (``veth<7 hex>``) is a port of the
bridge and whose other end is ``eth0`` with Docker's address and MAC, ``lo`` up and a default
route via the gateway. Each step that builds something pushes its undo on ``undo``, so a caller
whose later step fails takes everything down again.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import AlreadyExists
from ..lab.lab import Lab
from .daemon import Container, Network

Undo = list[Callable[[], None]]


def make_bridge(lab: Lab, net: Network, undo: Undo) -> None:
    """``ip link add BRIDGE type bridge``, its gateway address, up."""
    host = lab.host
    if host.link_exists(net.bridge):
        raise AlreadyExists(f"Error response from daemon: the lab's host already has an "
                            f"interface {net.bridge!r}")
    host.add_bridge(net.bridge)
    undo.append(lambda: quietly(host.link_del, net.bridge))
    host.addr_add(net.bridge, f"{net.gateway}/{net.subnet.prefixlen}")
    host.link_up(net.bridge)


def plumb(lab: Lab, c: Container, net: Network, hairpin: bool, undo: Undo) -> None:
    """The container's namespace, its veth pair on the bridge, address, MAC and route.

    ``hairpin`` (no userland proxy): the bridge port in hairpin mode (bridge.go ``CreateEndpoint``),
    so that a container reaches its own published port through the host: the DNATed packet goes
    back out of the port it came in by.
    """
    host = lab.host
    ns = lab.add_netns(c.netns)
    undo.append(lambda: quietly(lab.del_netns, c.netns))
    host.add_veth(c.veth, peer="eth0", peer_netns=c.netns)
    undo.append(lambda: quietly(host.link_del, c.veth))
    ns.link_set_address("eth0", c.mac)
    ns.addr_add("eth0", f"{c.ip}/{net.subnet.prefixlen}")
    ns.link_up("lo")
    ns.link_up("eth0")
    if not net.internal:  # an --internal network has no way out, so no default route
        ns.route_add("default", via=str(net.gateway))
    host.link_set_master(c.veth, net.bridge)
    if hairpin:
        host.bridge_port_hairpin(c.veth, True)
    host.link_up(c.veth)


def unplumb(lab: Lab, c: Container) -> None:
    """The container's veth and namespace go (what Docker removes when a container stops)."""
    if lab.host.link_exists(c.veth):
        quietly(lab.host.link_del, c.veth)
    if c.netns in lab.list_netns():
        quietly(lab.del_netns, c.netns)


def unwind(undo: Undo) -> None:
    """Run the undo steps, last first."""
    for step in reversed(undo):
        quietly(step)


def quietly(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn``; an error is ignored (undoing: the first error is the one reported)."""
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - undoing: keep going
        pass


__all__ = ["make_bridge", "plumb", "unplumb", "unwind", "quietly"]
