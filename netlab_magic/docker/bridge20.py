"""Docker Engine 20.10.24's bridge driver: the iptables rules it installs, exactly, in its order.

Matches Docker Engine **20.10.24** (Debian bookworm's ``docker.io``, the talk's generation), IPv4,
iptables backend, and was checked against ``iptables-save`` taken from that dockerd in a throwaway
namespace (``tests/fixtures/docker/``). Its steps (:func:`start`, :func:`network`,
:func:`container`), replayed by :func:`netlab_magic.docker.rules.build` in the order dockerd ran
them, act on an in-memory copy of the ``filter`` and ``nat`` tables (:class:`~.tables.Tables`). The sources
(docker/libnetwork, vendored as ``vendor/github.com/docker/libnetwork`` in moby 20.10):

- ``drivers/bridge/setup_ip_tables.go``: ``setupIPChains`` (chains DOCKER, DOCKER-ISOLATION-STAGE-1
  and -2 with their RETURN), ``setupIPTablesInternal`` (MASQUERADE, skip-DNAT, hairpin MASQUERADE,
  ICC, outgoing ACCEPT), ``setupInternalNetworkRules``, ``setINC`` (isolation between bridges).
- ``iptables/iptables.go``: ``ProgramChain`` (jumps to DOCKER from nat PREROUTING/OUTPUT and from
  filter FORWARD, the conntrack ACCEPT), ``Forward`` (per published port: DNAT, ACCEPT, hairpin
  MASQUERADE), ``EnsureJumpRule``, ``AddReturnRule``.
- ``firewall_linux.go``: ``arrangeUserFilterRule`` (DOCKER-USER, jumped to first from FORWARD).
- ``drivers/bridge/setup_ip_forwarding.go``: FORWARD policy DROP when Docker enables forwarding.
- ``drivers/bridge/bridge.go``: ``isolateNetwork`` (not for ``--internal`` networks),
  ``setupLoopbackAddressesRouting`` (``route_localnet=1`` when the userland proxy is off).

What the userland proxy (``--userland-proxy``, on by default) changes, "hairpin mode" being
proxy off:

- proxy on: nat ``-A DOCKER -i BRIDGE -j RETURN`` per bridge, DNAT with ``! -i BRIDGE``, and the
  OUTPUT jump only for ``! -d 127.0.0.0/8`` (``docker-proxy`` serves localhost clients).
- proxy off: no skip rule and DNAT without ``! -i``, so containers reach published ports through
  the host's addresses; OUTPUT jumps to DOCKER for 127.0.0.0/8 too; per bridge
  ``-A POSTROUTING -o BRIDGE -m addrtype --src-type LOCAL -j MASQUERADE`` and
  ``net.ipv4.conf.BRIDGE.route_localnet=1`` so that 127.0.0.1:PORT can be DNATed to a container.
- both: the per-port ``-A POSTROUTING -s IP/32 -d IP/32 -p tcp -m tcp --dport PORT -j MASQUERADE``.

Where later engines differ (read from their sources, not captured here): 23.0 to 25.x keep these
IPv4 rules (the code moved to moby/moby ``libnetwork/``). Later ones changed the filter table step
by step, and moby documents each state of it in
``integration/network/bridge/iptablesdoc/generated/*.md``.
"""

from __future__ import annotations

from ..linux.iptables import Tables
from .daemon import Container, Daemon, Network, PortBinding

DOCKER = "DOCKER"
DOCKER_USER = "DOCKER-USER"
ISOLATION_1 = "DOCKER-ISOLATION-STAGE-1"
ISOLATION_2 = "DOCKER-ISOLATION-STAGE-2"


def sysctls(daemon: Daemon) -> dict[str, str]:
    """The sysctls dockerd sets: forwarding on; ``route_localnet`` per bridge in hairpin mode."""
    values = {"net.ipv4.ip_forward": "1"}  # setup_ip_forwarding.go (--ip-forward, on by default)
    if not daemon.userland_proxy:  # bridge.go: setupLoopbackAddressesRouting
        for net in daemon.networks.values():
            values[f"net.ipv4.conf.{net.bridge}.route_localnet"] = "1"
    return values


# -- what dockerd does, step by step ----------------------------------------------------------


def start(t: Tables, daemon: Daemon, hairpin: bool) -> None:
    """Driver start: setup_ip_forwarding.go, then setup_ip_tables.go ``setupIPChains``."""
    if not daemon.ip_forward:
        t.policy("filter", "FORWARD", "DROP")
    t.new_chain("nat", DOCKER)
    t.new_chain("filter", DOCKER)
    t.new_chain("filter", ISOLATION_1)
    t.new_chain("filter", ISOLATION_2)
    t.append("filter", ISOLATION_1, "-j RETURN")  # AddReturnRule
    t.append("filter", ISOLATION_2, "-j RETURN")


def network(t: Tables, net: Network, hairpin: bool) -> None:
    """bridge.go ``createNetwork``: setupIPTables, isolateNetwork; then the controller's
    ``arrangeUserFilterRule`` (firewall_linux.go), run after every network creation."""
    br, subnet = net.bridge, net.subnet
    if net.internal:
        # setupInternalNetworkRules: no way out of the subnet, in either direction.
        t.insert("filter", ISOLATION_1, f"! -d {subnet} -i {br} -j DROP")
        t.insert("filter", ISOLATION_1, f"! -s {subnet} -o {br} -j DROP")
        _set_icc(t, br, net.icc)
    else:
        # setupIPTablesInternal
        if net.masquerade:
            t.insert("nat", "POSTROUTING", f"-s {subnet} ! -o {br} -j MASQUERADE")
        if net.masquerade and not hairpin:
            t.insert("nat", DOCKER, f"-i {br} -j RETURN")  # "SKIP DNAT"
        if hairpin:
            t.insert("nat", "POSTROUTING", f"-o {br} -m addrtype --src-type LOCAL -j MASQUERADE")
        _set_icc(t, br, net.icc)
        t.insert("filter", "FORWARD", f"-i {br} ! -o {br} -j ACCEPT")
        # iptables.go ProgramChain, nat then filter
        t.append("nat", "PREROUTING", f"-m addrtype --dst-type LOCAL -j {DOCKER}")
        loopback = "" if hairpin else "! -d 127.0.0.0/8 "
        t.append("nat", "OUTPUT", f"{loopback}-m addrtype --dst-type LOCAL -j {DOCKER}")
        t.insert("filter", "FORWARD", f"-o {br} -j {DOCKER}")
        t.insert("filter", "FORWARD",
                 f"-o {br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    t.to_top("filter", "FORWARD", f"-j {ISOLATION_1}")
    if not net.internal:
        # setINC: leaving this bridge for another interface goes to stage 2, which drops
        # whatever then enters another Docker bridge.
        t.insert("filter", ISOLATION_1, f"-i {br} ! -o {br} -j {ISOLATION_2}")
        t.insert("filter", ISOLATION_2, f"-o {br} -j DROP")
    t.new_chain("filter", DOCKER_USER)
    t.append("filter", DOCKER_USER, "-j RETURN")
    t.to_top("filter", "FORWARD", f"-j {DOCKER_USER}")


def _set_icc(t: Tables, br: str, icc: bool) -> None:
    """setup_ip_tables.go ``setIcc``: one bridge's containers may talk (insert) or not (append)."""
    if icc:
        t.insert("filter", "FORWARD", f"-i {br} -o {br} -j ACCEPT")
    else:
        t.append("filter", "FORWARD", f"-i {br} -o {br} -j DROP")


def container(t: Tables, c: Container, net: Network, hairpin: bool) -> None:
    """iptables.go ``Forward``, once per ``-p``: DNAT, ACCEPT, and the hairpin MASQUERADE."""
    if net.internal:
        return  # internal networks publish nothing
    for p in c.ports:
        t.append("nat", DOCKER, dnat_rule(p, c, net.bridge, hairpin))
        t.append("filter", DOCKER, open_port_rule(p, c, net.bridge))
        t.append("nat", "POSTROUTING", hairpin_masquerade_rule(p, c))


# -- a published port's rules: the same words in 20.10 and 28.5 ----------------------------------------

def dnat_rule(p: PortBinding, c: Container, br: str, hairpin: bool) -> str:
    """nat DOCKER: the host's port to the container's (``! -i BRIDGE`` when the proxy serves it)."""
    dst = "" if p.host_ip.is_unspecified else f"-d {p.host_ip}/32 "
    not_in = "" if hairpin else f"! -i {br} "
    return f"{dst}{not_in}-p {p.proto} -m {p.proto} --dport {p.host_port} -j DNAT --to-destination {c.ip}:{p.container_port}"


def open_port_rule(p: PortBinding, c: Container, br: str) -> str:
    """filter DOCKER: packets from elsewhere may enter the bridge for this container's port."""
    return f"-d {c.ip}/32 ! -i {br} -o {br} -p {p.proto} -m {p.proto} --dport {p.container_port} -j ACCEPT"


def hairpin_masquerade_rule(p: PortBinding, c: Container) -> str:
    """nat POSTROUTING: a container reaching its own published port gets the host's address as source."""
    return f"-s {c.ip}/32 -d {c.ip}/32 -p {p.proto} -m {p.proto} --dport {p.container_port} -j MASQUERADE"


__all__ = ["start", "network", "container", "sysctls", "dnat_rule", "open_port_rule", "hairpin_masquerade_rule",
           "DOCKER", "DOCKER_USER", "ISOLATION_1", "ISOLATION_2"]
