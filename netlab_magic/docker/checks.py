"""Self-checking exercises for the Docker notebooks (Demo 3 and Demo 4 of the talk).

Same style as :mod:`netlab_magic.checks`: each ``check_*`` reads the lab and returns a
:class:`~netlab_magic.checks.CheckResult` (✔ or ✘, with a hint); pass several to
:func:`~netlab_magic.checks.exercise`.

    >>> from netlab_magic.changes import record
    >>> before = record()                      # as the exercise begins
    >>> ...                                    # the learner's commands
    >>> from netlab_magic.checks import check_ping, exercise
    >>> from netlab_magic.docker.checks import check_blocked, check_kept_changes, check_opens_no_more
    >>> exercise(check_ping("dummy1", "172.19.0.2"),
    ...          check_blocked(("dummy2", "dummy1"), ("dummy1", "c0")),
    ...          check_opens_no_more(("dummy1", "dummy2")),
    ...          check_kept_changes(before, ["iptables host filter DOCKER-USER"], "DOCKER-USER"))

Over 400 lines: every check the Docker notebooks import, in one module as :mod:`netlab_magic.checks`
is for the others, each a short ``check_*`` with its helpers beside it, in two sections (TCP and
NAT; what must stay).

Nothing here changes the lab. ``check_http`` sends one HTTP request from inside a namespace of
the lab to the address asked for (lab addresses or the namespace's own ``localhost``);
``check_tcp`` starts a listener in the namespace asked for, for the time of one connection;
``check_dnat`` follows one connection in conntrack, to see where NAT really sent it.

What must *stay* is judged by effect, not by the text of rules:

- :func:`check_blocked` sends, for each pair of containers that must stay apart, every kind of
  :mod:`probe <netlab_magic.packets.probes>` (new conversations, and packets that only look like
  answers) and follows each in the kernel's trace: none may be delivered, and each must die
  where Docker drops it, or before (a DROP of the learner's own met first). A packet that now
  passes Docker's drop and dies further on means Docker's protection was weakened;
- :func:`check_opens_no_more` asks the rule set itself (:mod:`.verdict`) about every kind of new
  packet between the networks and from the outside, also those nothing sends today (another port,
  a container not yet started, a port DNATed there later): none that Docker drops may pass, but
  those the exercise opens;
- :func:`check_docker_rules_kept` compares every chain Docker made with the rules dockerd
  installs (the model, :func:`netlab_magic.docker.rules.build`): each rule there, in order;
- :func:`check_kept_changes` holds the learner to the chains and settings the exercise names
  (:mod:`netlab_magic.changes`: the lab recorded before the exercise, every other change named);
- :func:`check_proxy_serves` and :func:`check_source_kept` say that a published port still
  goes through ``docker-proxy`` and that a connection between containers keeps its source.

Feedback names the symptom and where to look, never the command that fixes it.
"""

from __future__ import annotations

import ipaddress
import random
import select
import shutil
import sys
import time
from typing import Any, Iterable
from urllib.parse import urlsplit

from ..checks import CheckResult, Missing, lab_or_current, run_check, where
from ..errors import NetlabError
from ..linux.iptables import Tables
from ..linux.process import stop_group
from ..model import HOST
from ..packets.conntrack import read_conntrack
from ..packets.probes import KINDS, OPENERS, Outcome, Probe, send_probes
from . import rules
from .verdict import Decision, Flow, decide

__all__ = ["check_http", "check_no_listener", "check_isolation_intact", "check_tcp", "check_dnat",
           "check_blocked", "check_opens_no_more", "check_docker_rules_kept", "check_kept_changes",
           "check_proxy_serves", "check_source_kept"]

#: What the lab's ``nginx`` image serves.
NGINX_TITLE = "Welcome to nginx!"

_FETCH_PY = (
    "import sys, urllib.request\n"
    "try:\n"
    "    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())\n"
    "except Exception as err:\n"
    "    reason = getattr(err, 'reason', err)\n"
    "    sys.stderr.write(f'{type(reason).__name__}: {reason}\\n')\n"
    "    sys.exit(7)\n"
)


def _fetch_argv(url: str, timeout: float) -> list[str]:
    if shutil.which("curl"):
        return ["curl", "-sS", "-m", str(timeout), url]
    return ["python3", "-c", _FETCH_PY, url, str(timeout)]


def _require_netns(lab: Any, netns: str) -> None:
    if netns != HOST and netns not in lab.list_netns():
        have = ", ".join(lab.list_netns()) or "none"
        raise Missing(f"namespace {netns!r} does not exist (the lab has: host, {have})")


def check_http(netns: str, url: str, expect: bool = True, *, contains: str = NGINX_TITLE,
               timeout: float = 1.5, lab: Any = None) -> CheckResult:
    """One HTTP GET of ``url`` from inside ``netns``: does the answer contain ``contains``?

    With ``expect=False`` the check passes when it does *not* (refused, timed out, or another page).
    """
    if "://" not in url:
        url = "http://" + url
    server = urlsplit(url).netloc
    what = f"{where(netns)} gets the web page at {server}" if expect else \
        f"{where(netns)} does not get the web page at {server}"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, netns)
        result = the_lab.run(netns, _fetch_argv(url, timeout), timeout=timeout + 10)
        got = result.returncode == 0 and contains in result.stdout
        if got == expect:
            return True, ""
        if got:
            return False, f"it answered with {contains!r}"
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        if result.returncode == 0:
            reason = f"an answer came, but without {contains!r}"
        return False, f"no page: {reason}"
    return run_check(what, body)


def check_no_listener(netns: str, port: int, *, lab: Any = None) -> CheckResult:
    """No process in ``netns`` listens on TCP ``port`` (so a forwarding there is the kernel's, not a proxy's)."""
    what = f"nothing listens on TCP port {port} in {where(netns)}"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, netns)
        out = the_lab.run(netns, ["ss", "-Hltn", f"sport = :{port}"], check=True).stdout
        if not out.strip():
            return True, ""
        return False, "something does (ss -ltn shows it): do it with iptables, without a proxy"
    return run_check(what, body)


def _chain_rules(the_lab: Any, table: str, chain: str) -> list[str]:
    """The rules of ``chain`` as ``iptables -S`` prints them, without the ``-A CHAIN`` (or ``-N``)."""
    result = the_lab.run(HOST, ["iptables", "-t", table, "-S", chain])
    if result.returncode:
        raise Missing(f"there is no chain {chain} in the {table} table of the lab's host "
                       "(has dockerd started? run a %docker command first)")
    prefix = f"-A {chain} "
    return [line[len(prefix):] for line in result.stdout.splitlines() if line.startswith(prefix)]


def _daemon(the_lab: Any) -> Any:
    """The lab's dockerd model, or the hint that none runs yet."""
    from .engine import engine

    daemon = engine(the_lab).daemon
    if daemon is None:
        raise Missing("dockerd has not started in this lab (run a %docker command first)")
    return daemon


def check_isolation_intact(*, lab: Any = None) -> CheckResult:
    """``DOCKER-ISOLATION-STAGE-1`` and ``-2`` hold exactly the rules dockerd made (the lab's ``%docker``)."""
    what = "the DOCKER-ISOLATION chains are as Docker made them"

    def body():
        the_lab = lab_or_current(lab)
        daemon = _daemon(the_lab)
        want = rules.build(daemon).chains["filter"]
        for chain in (rules.ISOLATION_1, rules.ISOLATION_2):
            have = _chain_rules(the_lab, "filter", chain)
            if have != want[chain]:
                return False, (f"{chain} was changed: dockerd rewrites its own chains when it restarts; "
                               f"put your rule in {rules.DOCKER_USER}")
        return True, ""
    return run_check(what, body)


# -- TCP, answers and NAT: what ping alone cannot tell ---------------------------------------------------

_LISTEN_PY = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(); s.settimeout(float(sys.argv[2]))\n"
    "print('ready', flush=True)\n"
    "try:\n"
    "    c, _ = s.accept(); c.sendall(b'hello\\n'); c.close()\n"
    "except OSError:\n"
    "    pass\n"
)
_CONNECT_PY = (
    "import socket, sys\n"
    "try:\n"
    "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))\n"
    "    sys.exit(0 if c.recv(16) == b'hello\\n' else 3)\n"
    "except OSError as err:\n"
    "    sys.stderr.write(f'{type(err).__name__}: {err}\\n'); sys.exit(7)\n"
)


def check_tcp(src: str, dst: str, ip: str, expect: bool = True, *, port: int = 8000, timeout: float = 1.5,
              lab: Any = None) -> CheckResult:
    """A TCP connection from ``src`` to ``ip:port``, answered by a listener this check starts in
    namespace ``dst`` for that one connection. With ``expect=False`` it passes when none is made."""
    what = (f"{where(src)} opens a TCP connection to {ip}:{port}" if expect
            else f"{where(src)} cannot open a TCP connection to {ip}:{port}")

    def body():
        the_lab = lab_or_current(lab)
        for netns in (src, dst):
            _require_netns(the_lab, netns)
        listener = the_lab.popen(dst, [sys.executable, "-c", _LISTEN_PY, str(port), str(timeout + 5)])
        try:
            ready, _, _ = select.select([listener.stdout], [], [], 10)
            if not ready or b"ready" not in listener.stdout.readline():
                raise Missing(f"no listener could be started in {where(dst)} on port {port}")
            result = the_lab.run(src, [sys.executable, "-c", _CONNECT_PY, ip, str(port), str(timeout)],
                                 timeout=timeout + 10)
        finally:
            stop_group(listener)
        connected = result.returncode == 0
        if connected == expect:
            return True, ""
        if connected:
            return False, "it was made: the answers came back, and so did the connection"
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return False, f"none: {reason} (ping works with one packet each way; TCP needs its answers back too)"
    return run_check(what, body)


_GET_FROM_PY = (
    "import socket, sys\n"
    "host, port, sport, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])\n"
    "try:\n"
    "    c = socket.create_connection((host, port), timeout=timeout, source_address=('', sport))\n"
    "    c.sendall(f'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n'.encode())\n"
    "    data = b''\n"
    "    while chunk := c.recv(65536):\n"
    "        data += chunk\n"
    "    sys.stdout.write(data.decode(errors='replace'))\n"
    "except OSError as err:\n"
    "    sys.stderr.write(f'{type(err).__name__}: {err}\\n'); sys.exit(7)\n"
)


def _connect_and_follow(the_lab: Any, netns: str, host: str, port: int, nat_in: str,
                        timeout: float) -> tuple[str | None, Any]:
    """One HTTP GET from ``netns`` to ``host:port`` and its conntrack entry in ``nat_in``:
    ``(why no page came, or None; the connection, or None)``."""
    sport = random.randint(40000, 59999)
    result = the_lab.run(netns, [sys.executable, "-c", _GET_FROM_PY, host, str(port), str(sport), str(timeout)],
                         timeout=timeout + 10)
    if NGINX_TITLE not in result.stdout:
        return (result.stderr.strip().splitlines() or ["an answer without the page"])[-1], None
    for _ in range(10):  # the entry is there as soon as the connection is
        found = [c for c in read_conntrack(the_lab, nat_in, "tcp")
                 if (c.original.dst, c.original.dport, c.original.sport) == (host, port, sport)]
        if found:
            return None, found[0]
        time.sleep(0.1)
    return None, None


def _local_addresses(the_lab: Any, netns: str) -> set[str]:
    return {a.split("/")[0] for i in the_lab.netns(netns).read().interfaces for a in i.addresses}


def check_dnat(netns: str, address: str, to: str, *, nat_in: str = HOST, timeout: float = 1.5,
               lab: Any = None) -> CheckResult:
    """One HTTP request from ``netns`` to ``address`` (``IP:PORT``) gets the page, and conntrack (in
    ``nat_in``, the lab's host) shows that connection DNATed to ``to`` (``IP:PORT``, or
    ``CONTAINER:PORT``): the kernel carried it to the container, no program on the way."""
    host, _, port = address.rpartition(":")
    what = f"a connection to {address} is DNATed to {to} (conntrack shows it)"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, netns)
        name, _, to_port = to.rpartition(":")
        target = f"{_container_ip(the_lab, name)}:{to_port}"
        failed, conn = _connect_and_follow(the_lab, netns, host, int(port), nat_in, timeout)
        if failed:
            return False, f"no page came: {failed}"
        if conn is None:
            return False, f"conntrack in {where(nat_in)} never saw that connection"
        reply = conn.reply
        if reply.source == target:
            return True, ""
        if reply.src in _local_addresses(the_lab, nat_in) or reply.src.startswith("127."):
            return False, (f"it ended at {reply.source}, on the host itself: a program listening there "
                           "carried it on to the container, not the kernel's DNAT")
        return False, f"it was sent to {reply.source}, not to {target}"
    return run_check(what, body)


def check_proxy_serves(port: int, *, lab: Any = None) -> CheckResult:
    """dockerd runs with its userland proxy, and a connection from the host to ``localhost:PORT``
    still ends at ``docker-proxy`` on the host (conntrack: not DNATed by the kernel)."""
    what = f"docker-proxy still serves localhost:{port} (the userland proxy stays on)"

    def body():
        the_lab = lab_or_current(lab)
        if not _daemon(the_lab).userland_proxy:
            return False, "dockerd runs without its userland proxy: this exercise keeps it on"
        failed, conn = _connect_and_follow(the_lab, HOST, "127.0.0.1", port, HOST, 1.5)
        if failed:
            return False, f"localhost:{port} gives no page any more: {failed} (is docker-proxy still running? %netlab jobs)"
        if conn is not None and conn.reply.src not in _local_addresses(the_lab, HOST) \
                and not conn.reply.src.startswith("127."):
            return False, (f"the kernel now sends localhost:{port} on to {conn.reply.source} itself, past "
                           "docker-proxy: a rule of yours reaches further than the port it was meant for "
                           "(%netlab conntrack host shows it)")
        return True, ""
    return run_check(what, body)


def check_source_kept(src: str, to: str, *, lab: Any = None) -> CheckResult:
    """A connection from container ``src`` to ``to`` (``CONTAINER:PORT``) arrives with ``src``'s own
    address: nothing on the way rewrites its source (a MASQUERADE broader than the exercise needs)."""
    name, _, port = to.rpartition(":")
    what = f"{name} sees {src}'s own address when {src} connects to it"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, src)
        ip = _container_ip(the_lab, name)
        failed, conn = _connect_and_follow(the_lab, src, ip, int(port), HOST, 1.5)
        if failed:
            return False, f"no page came: {failed}"
        if conn is not None and conn.reply.dst != conn.original.src:
            return False, (f"it arrives from {conn.reply.dst}: a MASQUERADE rewrites packets it was not "
                           f"meant for (%netlab conntrack host shows the rewrite; which rule matched? "
                           f"iptables -t nat -L POSTROUTING -v -n)")
        return True, ""
    return run_check(what, body)


def _container_ip(the_lab: Any, name: str) -> str:
    """A container's address (or ``name`` itself, if it is an address)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    daemon = _daemon(the_lab)
    if name not in daemon.containers:
        raise Missing(f"there is no container {name}")
    return str(daemon.containers[name].ip)


# -- what must stay: blocked flows, Docker's rules, the rest of the lab -----------------------------

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
        daemon = _daemon(the_lab)
        probes, stops = [], []
        for pair in pairs:
            src, dst = pair[0], pair[1]
            for netns in (src, dst):
                _require_netns(the_lab, netns)
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


def check_docker_rules_kept(*, lab: Any = None) -> CheckResult:
    """Every chain Docker made holds all of dockerd's rules, in dockerd's order, with its policy:
    the learner's own rules may sit between them, none of Docker's is gone or moved."""
    what = "Docker's own rules are all there, in Docker's order"

    def body():
        the_lab = lab_or_current(lab)
        daemon = _daemon(the_lab)
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


def check_kept_changes(before: Any, allowed: Iterable[str], task: str, *,
                       why: dict[str, str] | None = None, lab: Any = None) -> CheckResult:
    """Since ``before`` (:func:`netlab_magic.changes.record`, taken as the exercise began) only what
    ``allowed`` names changed (:class:`~netlab_magic.changes.Allowed` patterns), plus chains of the
    learner's own (what they let through is judged by the probes; a jump to them is a change of
    the chain that jumps). Every other change is named, with ``why`` where the exercise gives one."""
    from ..changes import Allowed, check_changes, record

    the_lab = lab_or_current(lab)
    try:
        docker = rules.build(_daemon(the_lab))
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
        daemon = _daemon(the_lab)
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
        from .outside import OUTSIDE_IP
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
