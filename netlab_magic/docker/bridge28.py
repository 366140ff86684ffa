"""Docker Engine 28.5's bridge driver: the iptables rules it installs, in its order.

Modelled on libnetwork at moby/moby v28.5.2 (``libnetwork/drivers/bridge/internal/iptabler``:
``iptabler.go``, ``network.go``, ``endpoint.go``, ``port.go``; ``libnetwork/firewall_linux.go``),
IPv4, iptables backend, and checked against moby's own generated documents of that release
(``integration/network/bridge/iptablesdoc/generated/``; copies of the rules compared in
``tests/fixtures/docker28/``). Its steps (:func:`start`, :func:`network`, :func:`container`),
replayed by :func:`netlab_magic.docker.rules.build`, do on an in-memory :class:`~.tables.Tables`
what dockerd runs (its sysctls are 20.10's: forwarding, ``route_localnet`` without the proxy):

- driver start (``setupIPChains``): chains DOCKER (nat and filter), DOCKER-FORWARD,
  DOCKER-BRIDGE, DOCKER-CT, DOCKER-ISOLATION-STAGE-1 and -2; nat PREROUTING and OUTPUT jump to
  DOCKER (OUTPUT only for ``! -d 127.0.0.0/8`` with the userland proxy); FORWARD jumps to
  DOCKER-FORWARD, which jumps to DOCKER-CT, DOCKER-ISOLATION-STAGE-1, DOCKER-BRIDGE;
- the controller (``setupUserChains``): DOCKER-USER, jumped to first from FORWARD, and empty
  (no ``-j RETURN`` any more);
- a network (``setupIPTables``): its MASQUERADE (not in ``routed`` gateway mode); the "skip
  DNAT" RETURN with the userland proxy; the local-source MASQUERADE without it; ICC as the
  outgoing ACCEPT in DOCKER-FORWARD (``-i BR -j ACCEPT``, or ``-i BR ! -o BR -j ACCEPT`` plus a
  DROP when ICC is off); the DOCKER chain's per-bridge DROP of everything not published
  (``setDefaultForwardRule``; an ACCEPT in ``nat-unprotected`` mode); the conntrack ACCEPT in
  DOCKER-CT; the jump from DOCKER-BRIDGE; isolation (``setINC``). An ``--internal`` network
  gets only its two DROPs in DOCKER-ISOLATION-STAGE-1 and its ICC rule;
- a container (``AddEndpoint``): raw PREROUTING drops packets for its address that do not come
  from its bridge (``filterDirectAccess``; not in ``nat-unprotected`` or ``routed`` mode);
- a published port (``setPerPortIptables``): raw DROP of remote packets to a port published on
  a loopback address; DNAT in nat DOCKER (with ``! -i BR`` when the proxy runs); the hairpin
  MASQUERADE only without the proxy; the ACCEPT at the top of filter DOCKER (not in
  ``nat-unprotected`` mode). In ``routed`` mode no host port is mapped: only the ACCEPT.

Why Docker moved things (its "Packet filtering and firewalls" page and the generated documents
say so): rules in FORWARD itself were at the mercy of FORWARD's policy and of other software's
rules there, so Docker now owns DOCKER-FORWARD and only jumps to it; a container was reachable
on every port by any host that routed its address via the Docker host, so the DOCKER chain now
ends with a DROP per bridge and only published ports are ACCEPTed; and such hosts could still
reach a container's address directly, so raw PREROUTING drops it unless it came in by the
container's own bridge.
"""

from __future__ import annotations

from ..linux.iptables import Tables
from .bridge20 import (DOCKER, DOCKER_USER, ISOLATION_1, ISOLATION_2,  # the chains 20.10 had, kept
                       dnat_rule, hairpin_masquerade_rule, open_port_rule,  # a port's rules' words
                       sysctls)  # the same sysctls
from .daemon import Container, Daemon, Network

DOCKER_FORWARD = "DOCKER-FORWARD"
DOCKER_BRIDGE = "DOCKER-BRIDGE"
DOCKER_CT = "DOCKER-CT"


def start(t: Tables, daemon: Daemon, hairpin: bool) -> None:
    """Driver start, then the controller's DOCKER-USER."""
    _setup_ip_chains(t, daemon, hairpin)
    _setup_user_chain(t)


def network(t: Tables, net: Network, hairpin: bool) -> None:
    """A network, then the controller's ``arrangeUserFilterRule`` (after every network)."""
    _create_network(t, net, hairpin)
    _setup_user_chain(t)


def container(t: Tables, c: Container, net: Network, hairpin: bool) -> None:
    """A running container: its endpoint, then its published ports."""
    _add_endpoint(t, c, net)
    _publish_ports(t, c, net, hairpin)


# -- what dockerd does, step by step ----------------------------------------------------------


def _setup_ip_chains(t: Tables, daemon: Daemon, hairpin: bool) -> None:
    """Driver start: setupIPForwarding (FilterForwardDrop), then iptabler.go ``setupIPChains``."""
    if not daemon.ip_forward:
        t.policy("filter", "FORWARD", "DROP")
    t.new_chain("nat", DOCKER)
    for chain in (DOCKER, DOCKER_FORWARD, DOCKER_BRIDGE, DOCKER_CT, ISOLATION_1, ISOLATION_2):
        t.new_chain("filter", chain)
    # addNATJumpRules
    t.append("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {DOCKER}")
    loopback = "" if hairpin else "! -d 127.0.0.0/8 "
    t.append("nat", "OUTPUT", f"{loopback}-m addrtype --dst-type LOCAL -j {DOCKER}")
    # EnsureJumpRule, in reverse order: each goes to the top
    t.to_top("filter", "FORWARD", f"-j {DOCKER_FORWARD}")
    for chain in (DOCKER_BRIDGE, ISOLATION_1, DOCKER_CT):
        t.to_top("filter", DOCKER_FORWARD, f"-j {chain}")


def _setup_user_chain(t: Tables) -> None:
    """firewall_linux.go ``setupUserChains``: DOCKER-USER, jumped to first from FORWARD."""
    t.new_chain("filter", DOCKER_USER)
    t.to_top("filter", "FORWARD", f"-j {DOCKER_USER}")


def _create_network(t: Tables, net: Network, hairpin: bool) -> None:
    """network.go ``setupIPTables``."""
    br, subnet = net.bridge, net.subnet
    if net.internal:
        # setupInternalNetworkRules: no way out of the subnet, in either direction; then ICC.
        t.insert("filter", ISOLATION_1, f"! -d {subnet} -i {br} -j DROP")
        t.insert("filter", ISOLATION_1, f"! -s {subnet} -o {br} -j DROP")
        t.append("filter", DOCKER_FORWARD, f"-i {br} -o {br} -j {'ACCEPT' if net.icc else 'DROP'}")
        return
    routed, unprotected = net.gateway_mode == "routed", net.gateway_mode == "nat-unprotected"
    # setupNonInternalNetworkRules
    if net.masquerade:
        if not routed:
            t.insert("nat", "POSTROUTING", f"-s {subnet} ! -o {br} -j MASQUERADE")
        if not hairpin:
            t.insert("nat", DOCKER, f"-i {br} -j RETURN")  # "SKIP DNAT"
    if hairpin:
        t.insert("nat", "POSTROUTING", f"-o {br} -m addrtype --src-type LOCAL -j MASQUERADE")
    if not net.icc:  # setIcc
        t.append("filter", DOCKER_FORWARD, f"-i {br} -o {br} -j DROP")
    if routed:  # setICMP
        t.append("filter", DOCKER, f"-o {br} -p icmp -j ACCEPT")
    t.append("filter", DOCKER_FORWARD, f"-i {br} -j ACCEPT" if net.icc else f"-i {br} ! -o {br} -j ACCEPT")
    # setDefaultForwardRule, the conntrack ACCEPT, the jump from DOCKER-BRIDGE
    t.append("filter", DOCKER, f"! -i {br} -o {br} -j {'ACCEPT' if unprotected else 'DROP'}")
    t.append("filter", DOCKER_CT, f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    t.append("filter", DOCKER_BRIDGE, f"-o {br} -j {DOCKER}")
    # setINC
    if routed:
        t.insert("filter", ISOLATION_1, f"-o {br} -j RETURN")
        t.insert("filter", ISOLATION_1, f"-i {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    t.append("filter", ISOLATION_1, f"-i {br} ! -o {br} -j {ISOLATION_2}")
    t.insert("filter", ISOLATION_2, f"-o {br} -j DROP")


def _add_endpoint(t: Tables, c: Container, net: Network) -> None:
    """endpoint.go ``filterDirectAccess``: only packets from its own bridge reach the container's address."""
    if not net.internal and net.gateway_mode == "nat":
        t.append("raw", "PREROUTING", f"-d {c.ip}/32 ! -i {net.bridge} -j DROP")


def _publish_ports(t: Tables, c: Container, net: Network, hairpin: bool) -> None:
    """port.go ``setPerPortIptables``, once per ``-p``."""
    if net.internal:
        return  # internal networks publish nothing
    for p in c.ports:
        if net.gateway_mode != "routed":  # routed: no port is mapped on the host
            if p.host_ip.is_loopback:  # filterPortMappedOnLoopback
                t.append("raw", "PREROUTING",
                         f"-d {p.host_ip}/32 ! -i lo -p {p.proto} -m {p.proto} --dport {p.host_port} -j DROP")
            t.append("nat", DOCKER, dnat_rule(p, c, net.bridge, hairpin))  # setPerPortNAT
            if hairpin:
                t.append("nat", "POSTROUTING", hairpin_masquerade_rule(p, c))
        if net.gateway_mode != "nat-unprotected":  # setPerPortForwarding: at the top, above the DROP
            t.insert("filter", DOCKER, open_port_rule(p, c, net.bridge))


__all__ = ["start", "network", "container", "sysctls", "DOCKER", "DOCKER_USER", "DOCKER_FORWARD", "DOCKER_BRIDGE", "DOCKER_CT",
           "ISOLATION_1", "ISOLATION_2"]
