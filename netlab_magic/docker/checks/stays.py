"""What must stay, judged by effect: blocked flows followed in the trace, the rule set asked, Docker's rules kept.

See the package's docstring (:mod:`netlab_magic.docker.checks`) for what each check proves.
"""

from __future__ import annotations

from typing import Any, Iterable

from ...checks import CheckResult, Missing, beside_the_lab, lab_or_current, run_check
from ...errors import NetlabError
from ...linux.iptables import Tables
from ...model import HOST
from ...packets.probes import KINDS, OPENERS, Outcome, Probe, send_probes
from .. import rules
from ..verdict import Decision, Flow, decide
from .context import docker_daemon, require_netns


#: Where in the host a packet meets each hook and table, along its way (raw before nat before filter).
_HOOK_STEP = {"PREROUTING": 0, "INPUT": 1, "FORWARD": 1, "OUTPUT": 0, "POSTROUTING": 2}
_TABLE_STEP = {"raw": 0, "mangle": 1, "nat": 2, "filter": 3, "security": 4}


def _docker_stop(daemon: Any, dst: Any, direct: bool) -> tuple[str, str, str]:
    """``(table, chain, rule)``: the rule of Docker that drops a new conversation from another
    network to container ``dst`` (addressed to it ``direct``ly, or DNATed to it by a port).

    20.10: isolation stage 2's DROP for ``dst``'s bridge. 28.5 (``nat`` gateway mode): packets for
    the container's own address from elsewhere die first in raw PREROUTING (``filterDirectAccess``,
    see :mod:`.bridge28`); DNATed ones still meet stage 2.
    """
    net = daemon.networks[dst.network]
    if daemon.release.key != "20.10" and direct and net.gateway_mode == "nat" and not net.internal:
        return "raw", "PREROUTING", f"-d {dst.ip}/32 ! -i {net.bridge} -j DROP"
    return "filter", rules.ISOLATION_2, f"-o {net.bridge} -j DROP"


def _docker_words(table: str, chain: str, rule: str, daemon: Any) -> str:
    """What a rule of Docker's protects, in a learner's words."""
    words = rule.split()
    bridges = {n.bridge: n.name for n in daemon.networks.values()}
    if table == "raw" and "-d" in words and words[-1] == "DROP":
        ip = words[words.index("-d") + 1].split("/")[0]
        owner = next((c.name for c in daemon.containers.values() if str(c.ip) == ip), ip)
        return f"Docker's protection of {owner} (its drop of packets from other networks)"
    out = words[words.index("-o") + 1] if "-o" in words else None
    if chain == rules.ISOLATION_2 and out in bridges:
        return f"Docker's isolation of network {bridges[out]}"
    if chain == rules.DOCKER and words[-1] == "DROP" and out in bridges:
        return f"Docker's drop of everything not published into network {bridges[out]}"
    return f"Docker's rule `-A {chain} {rule}`"


def _later(hop: Any, table: str, chain: str) -> bool:
    """Did ``hop`` (in the host) come after the place of ``table``'s rule on ``chain``'s hook?"""
    hook = chain if chain in _HOOK_STEP else "FORWARD"
    return (_HOOK_STEP.get(hop.hook, 9), _TABLE_STEP.get(hop.table, 9)) > (_HOOK_STEP[hook], _TABLE_STEP[table])


@beside_the_lab
def check_blocked(*pairs: tuple[str, str] | tuple[str, str, str], lab: Any = None) -> list[CheckResult]:
    """For each ``(src, dst)`` pair of containers (or ``(src, dst, "IP:PORT")``: through a port
    DNATed to ``dst``), ``src`` cannot start a conversation with ``dst``, one check per pair.

    Every kind of probe (:data:`netlab_magic.packets.probes.KINDS`: TCP SYN, UDP, echo request, and a TCP
    ACK and an echo reply that answer nothing) is sent once, all pairs together, and followed in
    the kernel's trace. A pair passes when none of its packets is delivered and each dies where
    Docker drops it (:func:`_docker_stop`) or before it, at a DROP of the learner's own.
    """
    whats = [f"{p[0]} cannot start a conversation with {p[1]}" + (f" through {p[2]}" if len(p) > 2 else "")
             for p in pairs]
    try:
        the_lab = lab_or_current(lab)
        daemon = docker_daemon(the_lab)
        probes, stops = [], []
        for pair in pairs:
            src, dst = pair[0], pair[1]
            for netns in (src, dst):
                require_netns(the_lab, netns)
            if dst not in daemon.containers:
                raise Missing(f"there is no container {dst}")
            target = daemon.containers[dst]
            host, _, port = pair[2].rpartition(":") if len(pair) > 2 else (str(target.ip), "", "80")
            kinds = OPENERS + ("ack",) if len(pair) > 2 else tuple(KINDS)  # a port has no ICMP
            probes.append([Probe(src, host, kind, int(port)) for kind in kinds])
            stops.append(_docker_stop(daemon, target, direct=len(pair) <= 2))
        outcomes = send_probes(the_lab, [p for group in probes for p in group])
    except (Missing, NetlabError) as err:
        return [CheckResult(False, what, str(err)) for what in whats]
    results, i = [], 0
    for what, pair, group, stop in zip(whats, pairs, probes, stops):
        mine, i = outcomes[i:i + len(group)], i + len(group)
        ok, detail = _judge_blocked(mine, pair[1], stop, daemon)
        results.append(CheckResult(ok, what, detail))
    return results


def _judge_blocked(outcomes: list[Outcome], dst: str, stop: tuple[str, str, str], daemon: Any) -> tuple[bool, str]:
    table, chain, rule = stop
    for o in outcomes:
        if o.delivered == dst:
            kind = KINDS[o.probe.kind]
            if o.probe.kind not in OPENERS:
                return False, (f"{kind} was delivered to {dst}: something lets packets through because they look "
                               "like answers, where conntrack knows which packets answer a connection "
                               "(iptables -L -v -n: which of your rules counted it?)")
            return False, f"{kind} was delivered to {dst}: nothing stopped it (see its way: {_trace_hint(o.probe)})"
    for o in outcomes:
        hop = o.drop
        if hop is None:
            continue  # delivered elsewhere (the host itself), or it never left (no route): not to dst
        if (hop.netns, hop.table, hop.chain, hop.rule) == (HOST, table, chain, f"-A {chain} {rule}"):
            continue
        if hop.netns == HOST and _later(hop, table, chain):
            return False, (f"{KINDS[o.probe.kind]} now passes {_docker_words(table, chain, rule, daemon)} "
                           f"and dies later, in {hop.table} {hop.chain}: that protection no longer holds "
                           f"(read the counters of {table} {chain if chain in _HOOK_STEP else 'FORWARD'})")
    return True, ""


def _trace_hint(probe: Probe) -> str:
    """A command that shows the way of a packet like ``probe`` (observing, not fixing)."""
    if probe.kind == "ping":
        return f"%netlab trace {probe.src} -- ping -c 1 -W 1 {probe.dst}"
    udp = "-u " if probe.kind == "udp" else ""
    return f"%netlab trace {probe.src} -- nc {udp}-z -w 1 {probe.dst} {probe.port}"


@beside_the_lab
def check_docker_rules_kept(*, lab: Any = None) -> CheckResult:
    """Every chain Docker made holds all of dockerd's rules, in dockerd's order, with its policy:
    the learner's own rules may sit between them, none of Docker's is gone or moved."""
    what = "Docker's own rules are all there, in Docker's order"

    def body():
        the_lab = lab_or_current(lab)
        daemon = docker_daemon(the_lab)
        saved = the_lab.run(HOST, ["iptables-save"], check=True).stdout
        have, want = Tables.parse(saved), rules.build(daemon)
        for (table, chain), policy in want.policies.items():
            if have.policies.get((table, chain), "ACCEPT") != policy:
                return False, f"you changed the policy of {table} {chain}: Docker sets it to {policy}"
        for table, chains in want.chains.items():
            for chain, wanted in chains.items():
                rest = iter(have.chains.get(table, {}).get(chain, []))
                for rule in wanted:
                    if rule not in rest:  # consumes `rest` up to the rule: order matters
                        return False, (f"you changed {table} {chain}: {_docker_words(table, chain, rule, daemon)} "
                                       "is gone or moved (dockerd puts it back when it restarts)")
        return True, ""
    return run_check(what, body)


@beside_the_lab
def check_kept_changes(before: Any, allowed: Iterable[str], task: str, *,
                       why: dict[str, str] | None = None, lab: Any = None) -> CheckResult:
    """Since ``before`` (:func:`netlab_magic.changes.record`, taken as the exercise began) only what
    ``allowed`` names changed (:class:`~netlab_magic.changes.Allowed` patterns), plus chains of the
    learner's own (what they let through is judged by the probes; a jump to them is a change of
    the chain that jumps). Every other change is named, with ``why`` where the exercise gives one."""
    from ...changes import Allowed, check_changes, record

    the_lab = lab_or_current(lab)
    try:
        docker = rules.build(docker_daemon(the_lab))
    except Missing as err:
        return CheckResult(False, f"only {task} changed", str(err))
    now = record(the_lab)
    fresh = [f"iptables {HOST} {table} {chain}" for table, chains in now.tables[HOST].chains.items()
             for chain in chains if chain not in before.tables[HOST].chains.get(table, {})
             and chain not in _HOOK_STEP  # a table's built-in chains are nobody's own
             and chain not in docker.chains.get(table, {})]
    return check_changes(before, Allowed([*allowed, *fresh], why=why, task=task), lab=the_lab, after=now)


#: The packets :func:`check_opens_no_more` asks about, for each source and destination:
#: (protocol, port, ICMP type, TCP flags, conntrack state, in words).
_SERVICES = (
    ("tcp", 80, None, 0x02, "NEW", "a new TCP connection to port 80"),
    ("tcp", 81, None, 0x02, "NEW", "a new TCP connection to port 81"),
    ("udp", 53, None, 0, "NEW", "a UDP datagram to port 53"),
    ("icmp", None, 8, 0, "NEW", "a ping"),
    ("tcp", 80, None, 0x10, "NEW", "a TCP ACK that answers nothing"),
    ("icmp", None, 0, 0, "INVALID", "an echo reply that answers nothing"),
)


@beside_the_lab
def check_opens_no_more(*opened: tuple[str, str], lab: Any = None) -> CheckResult:
    """The firewall lets no new packet through that Docker's own rules drop, but those the
    exercise opens: each ``(FROM, TO)``, FROM a network's name or ``"outside"`` (the host's
    uplink), TO a network's name (anything into it) or ``"CONTAINER:PORT"`` (TCP to that port,
    arriving DNATed as through a published port).

    Asked of the rule sets, not of packets (:func:`netlab_magic.docker.verdict.decide`, raw
    PREROUTING then filter FORWARD, against :func:`netlab_magic.docker.rules.build`): from every
    network and the outside to every container, to a free address of every network, on another
    port, addressed directly or DNATed there.
    """
    what = "your rules open nothing more than the exercise asks"

    def body():
        the_lab = lab_or_current(lab)
        daemon = docker_daemon(the_lab)
        docker, now = rules.build(daemon), Tables.parse(the_lab.run(HOST, ["iptables-save"], check=True).stdout)
        for source, network, target, words, flow, dnat in _questions(daemon, the_lab.netns(HOST).read().interfaces):
            if _opened(opened, source, network, target, flow.proto, flow.dport, dnat):
                continue
            was, got = _forwarded(docker, flow, dnat), _forwarded(now, flow, dnat)
            if was.verdict != "ACCEPT" and got.verdict == "ACCEPT":
                how = ", once DNATed there," if dnat else ""
                doubt = (f" (or so it seems: what {', '.join(got.unknown)} matches is not known here)"
                         if got.unknown else "")
                return False, (f"{words} from {source} to {target}{how} would now pass, where Docker drops it; "
                               f"it meets {got}{doubt}")
        return True, ""
    return run_check(what, body)


def _questions(daemon: Any, host_interfaces: Iterable[Any]) -> Iterable[tuple[str, str, str, str, Flow, bool]]:
    """``(source, network, target, words, flow, dnat)``: every packet :func:`check_opens_no_more` asks
    about, from each network and the outside (if the host has its uplink) into every other network."""
    interfaces = list(host_interfaces)
    local = frozenset(a.split("/")[0] for i in interfaces for a in i.addresses)
    sources = [(name, net.bridge, str(_first_ip(daemon, net))) for name, net in daemon.networks.items()]
    if any(i.name == "eth0" for i in interfaces):
        from ..outside import OUTSIDE_IP
        sources.append(("outside", "eth0", str(OUTSIDE_IP.ip)))
    for net in daemon.networks.values():
        targets = [(c.name, str(c.ip)) for c in daemon.containers.values() if c.network == net.name]
        targets.append((f"a container not started yet in {net.name}", str(net.subnet[200])))
        for (source, iif, src), (target, dst) in ((s, t) for s in sources if s[1] != net.bridge for t in targets):
            for proto, port, icmp, flags, state, words in _SERVICES:
                flow = Flow(src, dst, iif, net.bridge, proto, port, icmp_type=icmp, tcp_flags=flags,
                            ctstate=state, local=local)
                yield source, net.name, target, words, flow, False
                if proto != "icmp":  # a port can be DNATed there
                    yield source, net.name, target, words, flow, True


def _first_ip(daemon: Any, net: Any) -> Any:
    return next((c.ip for c in daemon.containers.values() if c.network == net.name), net.subnet[100])


def _opened(opened: Iterable[tuple[str, str]], source: str, network: str, target: str, proto: str,
            port: int | None, dnat: bool) -> bool:
    for src, to in opened:
        if src != source:
            continue
        name, _, to_port = to.partition(":")
        if not to_port and name == network:
            return True
        if to_port and name == target and dnat and proto == "tcp" and port == int(to_port):
            return True
    return False


def _forwarded(tables: Tables, flow: Flow, dnat: bool) -> Decision:
    """raw PREROUTING (which sees a DNATed packet still addressed to the host), then filter FORWARD."""
    if not dnat:
        raw = decide(tables, "raw", "PREROUTING", flow)
        if raw.verdict != "ACCEPT":  # an ACCEPT in raw only ends the raw table
            return raw
    return decide(tables, "filter", "FORWARD", flow)
