"""The iptables rules Docker's bridge driver installs, exactly, as ``iptables-save`` prints them.

Matches Docker Engine **20.10.24** (Debian bookworm's ``docker.io``, the talk's generation), IPv4,
iptables backend, and was checked against ``iptables-save`` taken from that dockerd in a throwaway
namespace (``tests/fixtures/docker/``). :func:`iptables_save` replays what dockerd runs, in the
order it runs it, on an in-memory copy of the ``filter`` and ``nat`` tables. The sources
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
``integration/network/bridge/iptablesdoc/generated/*.md``: an ipset ``docker-ext-bridges-v4``
replaces the per-bridge FORWARD jumps (``-m set --match-set docker-ext-bridges-v4 dst -j DOCKER``),
``-A DOCKER ! -i BRIDGE -o BRIDGE -j DROP`` closes each bridge to unpublished ports, and 28.0
moved the per-bridge rules into DOCKER-FORWARD, DOCKER-BRIDGE, DOCKER-CT and DOCKER-INTERNAL,
with raw-table PREROUTING rules that drop packets sent straight to container addresses (Docker's
"Packet filtering and firewalls" page).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .daemon import Container, Daemon, Network

DOCKER = "DOCKER"
DOCKER_USER = "DOCKER-USER"
ISOLATION_1 = "DOCKER-ISOLATION-STAGE-1"
ISOLATION_2 = "DOCKER-ISOLATION-STAGE-2"

#: Built-in chains per table, in the order iptables-save lists them.
_BUILTIN = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}


@dataclass
class Tables:
    """The filter and nat tables as iptables keeps them; rules in ``iptables-save`` form.

    Each method is one ``iptables`` call the way libnetwork makes it: it checks with ``-C``
    first, so adding a rule that is already there does nothing (``ProgramRule``).
    """

    chains: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {t: {c: [] for c in cs} for t, cs in _BUILTIN.items()})
    policies: dict[tuple[str, str], str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)  # the commands that changed something

    def new_chain(self, table: str, chain: str) -> None:
        """``iptables -t TABLE -N CHAIN`` unless it exists (``NewChain``)."""
        if chain not in self.chains[table]:
            self.chains[table][chain] = []
            self._run(table, f"-N {chain}")

    def policy(self, table: str, chain: str, target: str) -> None:
        """``iptables -t TABLE -P CHAIN TARGET`` (``SetDefaultPolicy``)."""
        self.policies[table, chain] = target
        self._run(table, f"-P {chain} {target}")

    def append(self, table: str, chain: str, rule: str) -> None:
        """``iptables -t TABLE -A CHAIN RULE`` unless present."""
        if rule not in self.chains[table][chain]:
            self.chains[table][chain].append(rule)
            self._run(table, f"-A {chain} {rule}")

    def insert(self, table: str, chain: str, rule: str) -> None:
        """``iptables -t TABLE -I CHAIN RULE`` (to the top) unless present."""
        if rule not in self.chains[table][chain]:
            self.chains[table][chain].insert(0, rule)
            self._run(table, f"-I {chain} {rule}")

    def to_top(self, table: str, chain: str, rule: str) -> None:
        """Delete the rule if present, then insert it first (``EnsureJumpRule``)."""
        rules = self.chains[table][chain]
        if rule in rules:
            rules.remove(rule)
            self._run(table, f"-D {chain} {rule}")
        rules.insert(0, rule)
        self._run(table, f"-I {chain} {rule}")

    def save(self) -> str:
        """The tables as ``iptables-save`` prints them (no comment lines, zero counters)."""
        lines: list[str] = []
        for table, builtin in _BUILTIN.items():
            chains = self.chains[table]
            order = [*builtin, *sorted(c for c in chains if c not in builtin)]
            lines.append(f"*{table}")
            for chain in order:
                policy = self.policies.get((table, chain), "ACCEPT") if chain in builtin else "-"
                lines.append(f":{chain} {policy} [0:0]")
            lines += [f"-A {chain} {rule}" for chain in order for rule in chains[chain]]
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def _run(self, table: str, args: str) -> None:
        self.log.append(f"iptables -t {table} {args}")


def build(daemon: Daemon) -> Tables:
    """Replay dockerd's start, then every network and container in the order they came."""
    t = Tables()
    hairpin = not daemon.userland_proxy
    _setup_ip_chains(t, daemon)
    for item in daemon.history:
        if isinstance(item, Network):
            _create_network(t, item, hairpin)
        else:
            _publish_ports(t, item, daemon.networks[item.network], hairpin)
    return t


def iptables_save(daemon: Daemon) -> str:
    """What ``iptables-save`` prints (filter, then nat) on a host running this dockerd."""
    return build(daemon).save()


def iptables_commands(daemon: Daemon) -> list[str]:
    """The ``iptables`` commands that changed something, in the order dockerd ran them."""
    return build(daemon).log


def sysctls(daemon: Daemon) -> dict[str, str]:
    """The sysctls dockerd sets: forwarding on; ``route_localnet`` per bridge in hairpin mode."""
    values = {"net.ipv4.ip_forward": "1"}  # setup_ip_forwarding.go (--ip-forward, on by default)
    if not daemon.userland_proxy:  # bridge.go: setupLoopbackAddressesRouting
        for net in daemon.networks.values():
            values[f"net.ipv4.conf.{net.bridge}.route_localnet"] = "1"
    return values


# -- what dockerd does, step by step ----------------------------------------------------------


def _setup_ip_chains(t: Tables, daemon: Daemon) -> None:
    """Driver start: setup_ip_forwarding.go, then setup_ip_tables.go ``setupIPChains``."""
    if not daemon.ip_forward:
        t.policy("filter", "FORWARD", "DROP")
    t.new_chain("nat", DOCKER)
    t.new_chain("filter", DOCKER)
    t.new_chain("filter", ISOLATION_1)
    t.new_chain("filter", ISOLATION_2)
    t.append("filter", ISOLATION_1, "-j RETURN")  # AddReturnRule
    t.append("filter", ISOLATION_2, "-j RETURN")


def _create_network(t: Tables, net: Network, hairpin: bool) -> None:
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


def _publish_ports(t: Tables, c: Container, net: Network, hairpin: bool) -> None:
    """iptables.go ``Forward``, once per ``-p``: DNAT, ACCEPT, and the hairpin MASQUERADE."""
    if net.internal:
        return  # internal networks publish nothing
    br = net.bridge
    for p in c.ports:
        match = f"-p {p.proto} -m {p.proto}"
        dst = "" if p.host_ip.is_unspecified else f"-d {p.host_ip}/32 "
        not_in = "" if hairpin else f"! -i {br} "
        t.append("nat", DOCKER, f"{dst}{not_in}{match} --dport {p.host_port} "
                                f"-j DNAT --to-destination {c.ip}:{p.container_port}")
        t.append("filter", DOCKER, f"-d {c.ip}/32 ! -i {br} -o {br} {match} "
                                   f"--dport {p.container_port} -j ACCEPT")
        t.append("nat", "POSTROUTING", f"-s {c.ip}/32 -d {c.ip}/32 {match} "
                                       f"--dport {p.container_port} -j MASQUERADE")


__all__ = ["Tables", "build", "iptables_save", "iptables_commands", "sysctls",
           "DOCKER", "DOCKER_USER", "ISOLATION_1", "ISOLATION_2"]
