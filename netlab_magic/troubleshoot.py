"""Broken labs to diagnose: each one a small lab with one thing wrong, and checks that it is fixed.

:func:`broken` resets the lab, builds one of :data:`SCENARIOS` (how, it does not say: that is
the puzzle) and records what it is (:mod:`netlab_magic.changes`); :func:`fixed` returns checks for
:func:`~netlab_magic.checks.exercise` that judge what the kernel does, not the text of a fix:
real packets for what must flow, in both directions, and a trace of what must stay blocked (it
must die on the way, one way); and nothing changed but what the lab is about (a chain of one's
own, a broader sysctl, another cable are named and refused). Their lines name the symptom and
where to look, never the command; :func:`show_me` tells the fault when asked.

    >>> broken("link-down")
    >>> exercise(fixed("link-down"))

Over 400 lines on purpose: half of it is :data:`SCENARIOS`, the catalogue of notebook 07's
labs (data: how each is built, its checks, its story), kept beside the few checks they share.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from .changes import Allowed, LabRecord, check_changes, record
from .checks import SETTLE, CheckResult, lab_or_current, where
from .errors import NetlabError, NotFound
from .linux.iptables import Tables
from .model import HOST
from .packets.probes import Probe, send_probes

__all__ = ["SCENARIOS", "Scenario", "broken", "fixed", "show_me"]

_DEMO1 = """
ip netns add ns1
ip link add veth1 type veth peer name veth2
ip link set veth1 netns ns1
ip netns exec ns1 ip link set dev lo up
ip netns exec ns1 ip addr add 10.0.0.1/24 dev veth1
ip netns exec ns1 ip link set dev veth1 up
"""
_BRIDGE = """
ip netns add ns1
ip link add veth1 type veth peer name veth2
ip link set veth1 netns ns1
ip netns exec ns1 ip link set dev lo up
ip netns exec ns1 ip addr add 10.0.0.1/24 dev veth1
ip netns exec ns1 ip link set dev veth1 up
ip netns add ns3
ip link add veth3 type veth peer name veth4
ip link set veth3 netns ns3
ip netns exec ns3 ip link set dev lo up
ip netns exec ns3 ip link set dev veth3 up
ip link add bridge0 type bridge
ip addr add 10.0.0.10/24 dev bridge0
ip link set bridge0 up
ip link set veth2 master bridge0
ip link set veth4 master bridge0
ip link set dev veth2 up
ip link set dev veth4 up
"""


def _routed(netns: str, inside: str, outside: str, network: str) -> str:
    """A namespace on a network of its own (``10.N.0.0/24``), the host its gateway (``.254``)."""
    return f"""
ip netns add {netns}
ip link add {inside} type veth peer name {outside}
ip link set {inside} netns {netns}
ip addr add {network}.254/24 dev {outside}
ip link set dev {outside} up
ip netns exec {netns} ip link set dev lo up
ip netns exec {netns} ip addr add {network}.1/24 dev {inside}
ip netns exec {netns} ip link set dev {inside} up
"""


_ROUTED = (_routed("ns1", "veth1", "veth2", "10.1.0") + "ip netns exec ns1 ip route add default via 10.1.0.254\n"
           + _routed("ns2", "veth3", "veth4", "10.2.0"))
_NS5 = _routed("ns5", "veth5", "veth6", "10.9.0") + "ip netns exec ns5 ip route add default via 10.9.0.254\n"


@dataclass(frozen=True)
class Scenario:
    """One broken lab: what the learner is told, how it is built, and what "fixed" means.

    ``checks`` probe the lab with real packets (what must pass, and what must stay blocked);
    ``allowed`` is what the fix may change (anything else changed is named and refused);
    ``fault`` is what :func:`show_me` tells when the learner asks: the fault, never the command.
    """

    name: str
    story: str
    build: Callable[[Any], None]
    checks: Callable[[Any], list[CheckResult]]
    allowed: Allowed
    fault: str


def _script(text: str) -> Callable[[Any], None]:
    def build(lab: Any) -> None:
        lab.run(HOST, "set -e\n" + text, check=True)
    return build


# -- checks: the symptom and where to look, never the command that fixes it ------------------------

def _trace_tip(src: str, dst: str) -> str:
    return f"`%netlab trace {src} -- ping -c 1 -W 1 {dst}` shows where it stops"


def _reaches(src: str, dst: str) -> Callable[[Any], CheckResult]:
    """``src`` pings ``dst`` and gets the answer (the round trip works)."""
    def check(lab: Any) -> CheckResult:
        what = f"{where(src)} gets an answer from {dst}"
        try:
            result = lab.run(src, ["ping", "-c", "1", "-W", "1", dst], timeout=10)
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        if result.returncode == 0:
            return CheckResult(True, what)
        return CheckResult(False, what, f"no answer yet: {_trace_tip(src, dst)}")
    return check


def _serves(src: str, url: str) -> Callable[[Any], CheckResult]:
    """``src`` fetches ``url`` and gets the web server's answer (HTTP 200)."""
    def check(lab: Any) -> CheckResult:
        what = f"{where(src)} gets the web page at {url}"
        try:
            result = lab.run(src, ["curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}", url], timeout=10)
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        if result.returncode == 0 and result.stdout == "200":
            return CheckResult(True, what)
        return CheckResult(False, what, f"no answer yet: `%netlab trace {src} -- curl -m 1 {url}` shows where "
                                        "the request stops")
    return check


def _cut_off(src: str, dst: str, dst_netns: str, port: int | None = None, sport: int | None = None,
             source: str | None = None) -> Callable[[Any], CheckResult]:
    """A request from ``src`` to ``dst`` never arrives in ``dst_netns`` (one way, followed by a trace).

    A ping, or with ``port`` a TCP SYN to that port (from source port ``sport``, from the address
    ``source`` of ``src``, if given).
    """
    def check(lab: Any) -> CheckResult:
        to = dst if port is None else f"{dst} port {port}" + ("" if sport is None else f" from port {sport}")
        what = f"what {where(src)} sends {'' if source is None else f'from {source} '}to {to} still never " \
               f"arrives in {dst_netns}"
        if port is None:
            probe, match = f"ping -c 1 -W 0.3 {dst}", f"-d {dst}"
        else:
            local = ("" if sport is None else f" --local-port {sport}") + \
                    ("" if source is None else f" --interface {source}")
            probe, match = f"curl -s -m 0.5{local} http://{dst}:{port}/", f"-p tcp -d {dst} --dport {port}"
        try:
            trace = lab.trace(src, probe, match=match)
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        arrived = [p for p in trace.packets if dst_netns in p.namespaces]
        if not arrived:
            return CheckResult(True, what)
        return CheckResult(False, what, f"a request got there ({arrived[0].fate}): the fix lets through "
                                        f"more than this lab asks for")
    return check


def _not_from_outside(src: str, fake: str, dst: str, dst_netns: str, asked: str,
                      let_through: str = "the sources your rules accept are more than") -> Callable[[Any], CheckResult]:
    """What ``src`` sends to ``dst`` from ``fake``, an address outside ``asked``, never arrives in ``dst_netns``.

    The request is made by hand (:class:`netlab_magic.packets.probes.Probe` with a ``source`` of its own)
    and followed by the trace: a rule that accepts a wider source range than the story asks lets it
    through.
    """
    def check(lab: Any) -> CheckResult:
        what = f"a request to {dst} from outside {asked} ({fake}, sent by {src}) never arrives in {dst_netns}"
        try:
            [outcome] = send_probes(lab, [Probe(src, dst, "ping", source=fake)])
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        if outcome.packet is None:
            return CheckResult(False, what, "the request could not be sent (the trace never saw it leave)")
        if dst_netns not in outcome.packet.namespaces:
            return CheckResult(True, what)
        return CheckResult(False, what, f"it got there: {let_through} {asked}")
    return check


def _carries(netns: str, ifname: str) -> Callable[[Any], CheckResult]:
    """``ifname`` in ``netns`` is UP: up itself, and its other end up too (operstate, settled)."""
    def check(lab: Any) -> CheckResult:
        what = f"{ifname} in {where(netns)} can carry packets (UP)"
        try:
            iface = lab.netns(netns).read().interface(ifname)
            deadline = time.monotonic() + SETTLE
            while iface.state != "UP" and iface.admin_up and time.monotonic() < deadline:
                time.sleep(0.1)  # the kernel reports a new operstate with up to a second's delay
                iface = lab.netns(netns).read().interface(ifname)
        except KeyError:
            return CheckResult(False, what, f"there is no {ifname} in {where(netns)}")
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        if iface.state == "UP":
            return CheckResult(True, what)
        return CheckResult(False, what, f"it is {iface.state}: `%netlab status` shows both ends of the cable "
                                        "(notebook 01 says what each state means)")
    return check


def _address(netns: str, ifname: str, cidr: str) -> Callable[[Any], CheckResult]:
    """``ifname`` in ``netns`` has ``cidr``, and no IPv4 address outside its network."""
    want = ipaddress.ip_interface(cidr)

    def check(lab: Any) -> CheckResult:
        what = f"{want.ip} is on {ifname} in {where(netns)}, in {want.network} and no other network"
        try:
            iface = lab.netns(netns).read().interface(ifname)
        except KeyError:
            return CheckResult(False, what, f"there is no {ifname} in {where(netns)}")
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        v4 = [ipaddress.ip_interface(a) for a in iface.addresses if ":" not in a]
        if want not in v4:
            other = [str(a) for a in v4 if a.ip == want.ip]
            return CheckResult(False, what, f"{ifname} has {other[0]}: another network than the story's "
                                            f"({want.network})" if other else
                               f"not yet: `ip addr` in {where(netns)} shows what {ifname} has")
        stray = [str(a) for a in v4 if a.network != want.network]
        return CheckResult(not stray, what, "" if not stray else
                           f"{ifname} is also in {', '.join(stray)}: one interface, one network here")
    return check


def _forwards(netns: str, *ifnames: str) -> Callable[[Any], CheckResult]:
    """``netns`` routes what comes in through each of ``ifnames`` (its ``forwarding`` is on)."""
    def check(lab: Any) -> CheckResult:
        what = f"{where(netns)} passes on what comes in through {' and '.join(ifnames)}"
        try:
            off = [i for i in ifnames if lab.netns(netns).sysctl(f"net.ipv4.conf.{i}.forwarding") != "1"]
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        return CheckResult(not off, what, "" if not off else
                           f"not through {' and '.join(off)}: the trace shows where the request vanished")
    return check


def _policy_drop(lab: Any) -> CheckResult:
    what = "FORWARD's policy is still DROP"
    try:
        policy = Tables.parse(lab.run(HOST, ["iptables-save", "-t", "filter"]).stdout).policies.get(
            ("filter", "FORWARD"), "ACCEPT")
    except NetlabError as err:
        return CheckResult(False, what, str(err))
    return CheckResult(policy == "DROP", what, "" if policy == "DROP" else
                       f"it is {policy}: every forwarded packet not dropped by a rule would pass")


def _brnf_on(lab: Any) -> CheckResult:
    what = "the bridge still sends its traffic through iptables (br_netfilter)"
    value = lab.netns(HOST).sysctl("net.bridge.bridge-nf-call-iptables")
    return CheckResult(value == "1", what, "" if value == "1" else "turned off: Docker's own rules would see nothing")


def _docker_user_before_return(lab: Any) -> CheckResult:
    what = "every rule of DOCKER-USER is read (none after its RETURN)"
    try:
        rules = Tables.parse(lab.run(HOST, ["iptables-save", "-t", "filter"]).stdout).chains["filter"].get(
            "DOCKER-USER", [])
    except NetlabError as err:
        return CheckResult(False, what, str(err))
    ret = [i for i, r in enumerate(rules) if r == "-j RETURN"]
    if ret and ret[0] < len(rules) - 1:
        return CheckResult(False, what, "a packet that meets the RETURN goes back to FORWARD: `iptables -S "
                                        "DOCKER-USER` lists the rules in the order they are read")
    return CheckResult(True, what)


def _delivered_to(src: str, match: str, dst_netns: str, not_netns: str, job: str) -> Callable[[Any], CheckResult]:
    """What ``src``'s running ``job`` sends (``match``) is delivered in ``dst_netns``, none in ``not_netns``.

    Nothing is sent for the check: a trace follows the job's own packets for a second.
    """
    def check(lab: Any) -> CheckResult:
        what = f"what {where(src)}'s running {job} sends arrives in {dst_netns}, and nothing of it in {not_netns}"
        try:
            running = lab.jobs.get(job).running
        except (KeyError, NetlabError):
            running = False
        if not running:
            return CheckResult(False, what, f"{job} is no longer running: the lab is about a flow that is "
                                            f"already open (run broken() again)")
        try:
            trace = lab.trace(src, "sleep 0.8", match=match)  # the job sends every half second
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        there = [p for p in trace.packets if dst_netns in p.namespaces]
        astray = [p for p in trace.packets if not_netns in p.namespaces]
        if there and not astray:
            return CheckResult(True, what)
        where_to = f"some still go to {not_netns}" if astray else f"none reaches {dst_netns}"
        return CheckResult(False, what, f"{where_to}: `%netlab trace {src} --match \"{match}\" -- sleep 1` follows "
                                        f"them, `%netlab conntrack` shows what the host remembers of the flow")
    return check


def _rules_kept(table: str, chain: str, *rules: str, whose: str) -> Callable[[Any], CheckResult]:
    """``rules`` (as iptables-save prints them) are still in ``table`` ``chain`` of the host."""
    def check(lab: Any) -> CheckResult:
        what = f"{whose} in {table} {chain} are all still there"
        try:
            now = Tables.parse(lab.run(HOST, ["iptables-save", "-t", table]).stdout).chains.get(table, {}).get(chain, [])
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        gone = [r for r in rules if r not in now]
        return CheckResult(not gone, what, "" if not gone else
                           f"`-A {chain} {gone[0]}` is gone: `iptables -t {table} -S {chain}` lists what is left")
    return check


def _route(netns: str, to: str) -> Callable[[Any], CheckResult]:
    target = ipaddress.ip_address(to)

    def check(lab: Any) -> CheckResult:
        what = f"{netns} has a way back to {to}"
        routes = lab.netns(netns).read().routes
        ok = any(r.dst == "default" or target in ipaddress.ip_network(r.dst, strict=False) for r in routes)
        return CheckResult(ok, what, "" if ok else f"none of its routes covers it: `ip route` in {netns} lists them")
    return check


def _docker(*lines: str, outside: bool = False, then: str = "") -> Callable[[Any], None]:
    """A lab built with ``%docker`` (each of ``lines``), an outside world if asked, then ``then`` in the host."""
    def build(lab: Any) -> None:
        from IPython import get_ipython

        from .docker.outside import add_outside

        shell = get_ipython()
        if shell is None or "docker" not in shell.magics_manager.magics["line"]:
            raise NetlabError("this lab is built with %docker: run it in a notebook with netlab loaded")
        if outside:
            add_outside(lab)
        with contextlib.redirect_stdout(io.StringIO()):
            for line in lines:
                shell.run_line_magic("docker", line)
        if then:
            lab.run(HOST, "set -e\n" + then, check=True)
    return build


def _stale_nat(lab: Any) -> None:
    """Logs sent from outside through a DNAT to logs1; then the DNAT (and its filter half) moved to logs2."""
    _docker("run -d --name logs1 busybox", "run -d --name logs2 busybox", outside=True,
            then="iptables -t nat -A DOCKER ! -i docker0 -p udp --dport 5140 -j DNAT --to-destination 172.17.0.2\n"
                 "iptables -I DOCKER-USER -d 172.17.0.2 -p udp --dport 5140 -j ACCEPT\n")(lab)
    for netns in ("logs1", "logs2"):
        lab.start_job(netns, f"exec {sys.executable} -c 'import socket; s = socket.socket(socket.AF_INET, "
                             "socket.SOCK_DGRAM); s.bind((\"\", 5140))\nwhile True: s.recv(2048)'",
                      name=f"collector-{netns}")
    lab.start_job("outside", f"exec {sys.executable} -c 'import socket, time; s = socket.socket(socket.AF_INET, "
                             "socket.SOCK_DGRAM); s.bind((\"\", 40514))\nwhile True: s.sendto(b\"<14>tick\", "
                             "(\"203.0.113.2\", 5140)); time.sleep(0.5)'", name="sender")
    time.sleep(0.6)  # its first packets: conntrack has the flow, NATed to logs1
    lab.run(HOST, "set -e\n"
                  "iptables -t nat -R DOCKER 1 ! -i docker0 -p udp --dport 5140 -j DNAT --to-destination 172.17.0.3\n"
                  "iptables -R DOCKER-USER 1 -d 172.17.0.3 -p udp --dport 5140 -j ACCEPT\n", check=True)


_DUMMIES = ("network create dummy1", "network create dummy2",
            "run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
            "run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools")
_after_return = _docker(*_DUMMIES, then="iptables -A DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT\n"
                                        "iptables -A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 "
                                        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")


def _all(*checks: Callable[[Any], CheckResult]) -> Callable[[Any], list[CheckResult]]:
    return lambda lab: [check(lab) for check in checks]


#: Said of changes every lab keeps: a cable or namespace of one's own goes around the lab's point.
_AROUND = {"cable *": "a cable of your own goes around the path this lab is about",
           "netns *": "the lab's namespaces are the ones in the story",
           "nftables *": "a table of your own next to iptables hides what it does"}


#: Docker's chains are dockerd's: a learner's rules between its networks belong in DOCKER-USER.
_DOCKER_USER_ONLY = Allowed(["iptables host filter DOCKER-USER"], {
    "iptables host filter DOCKER-ISOLATION*": "Docker's isolation between its networks must stay as Docker made it "
                                              "(DOCKER-USER is yours)",
    "iptables host filter DOCKER*": "Docker's own chain: dockerd rewrites it (DOCKER-USER is yours)",
    "iptables host filter FORWARD": "Docker's FORWARD: dockerd rewrites it (DOCKER-USER is yours)",
    "iptables host filter *": "a chain of your own hides what it accepts: the rules belong in DOCKER-USER",
    "iptables host raw *": "Docker's own protection of its containers",
    "iptables host *": "Docker's NAT and tables: the rules belong in DOCKER-USER",
    "sysctl *": "Docker's settings", **_AROUND}, task="DOCKER-USER")

#: ns1's second link to the host (veth7 = 10.3.0.1, veth8 = 10.3.0.254), and its route to ns2 through it.
#: Its ARP questions name veth7's own address (arp_announce 2): with the packet's source, 10.1.0.1,
#: the host's rp_filter would refuse the question, not the packet (arp.c checks the sender's route).
_SECOND_LINK = """
ip link add veth7 type veth peer name veth8
ip link set veth7 netns ns1
ip addr add 10.3.0.254/24 dev veth8
ip link set dev veth8 up
ip netns exec ns1 ip addr add 10.3.0.1/24 dev veth7
ip netns exec ns1 ip link set dev veth7 up
ip netns exec ns1 ip route add 10.2.0.0/24 via 10.3.0.254 src 10.1.0.1
ip netns exec ns1 sysctl -qw net.ipv4.conf.veth7.arp_announce=2
"""

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("link-down",
             "ns1 (10.0.0.1) is joined to the host (10.0.0.2) by a veth pair, as in Demo 1. "
             "ns1 cannot ping the host.",
             _script(_DEMO1 + "ip addr add 10.0.0.2/24 dev veth2\n"),
             _all(_carries("ns1", "veth1"), _reaches("ns1", "10.0.0.2"), _reaches(HOST, "10.0.0.1")),
             Allowed(["link host veth2"], {"link ns1 *": "ns1's side was right",
                                           "link host *": "the lab is about the host's end of ns1's cable", **_AROUND},
                     task="the host's end of the cable"),
             "veth1 is up, but its other end, veth2 in the host, was never set up: a veth carries packets "
             "only when both ends are up (LOWERLAYERDOWN, notebook 01)."),
    Scenario("no-address",
             "ns1 (10.0.0.1) is joined to the host (10.0.0.2) by a veth pair, as in Demo 1. "
             "Both ends are up, and still ns1 cannot ping the host.",
             _script(_DEMO1 + "ip link set dev veth2 up\n"),
             _all(_address(HOST, "veth2", "10.0.0.2/24"), _reaches("ns1", "10.0.0.2"), _reaches(HOST, "10.0.0.1")),
             Allowed(["link host veth2"], {"link ns1 *": "ns1's side was right",
                                           "link host *": "the lab is about the host's end of ns1's cable",
                                           "route *": "a route to a subnet comes with an address in it", **_AROUND},
                     task="the host's end of the cable"),
             "Nobody in the host has 10.0.0.2: veth2 has no IPv4 address at all, so nobody answers ns1's "
             "ARP question (notebook 01, the addresses of Demo 1)."),
    Scenario("wrong-subnet",
             "ns1 (10.0.0.1) and ns3 (10.0.0.3) sit on bridge0 (10.0.0.10), as in Demo 2. "
             "ns1 reaches the bridge; ns3 cannot ping ns1, nor the bridge.",
             _script(_BRIDGE + "ip netns exec ns3 ip addr add 10.0.1.3/24 dev veth3\n"),
             _all(_address("ns3", "veth3", "10.0.0.3/24"), _reaches("ns3", "10.0.0.1"), _reaches("ns1", "10.0.0.3"),
                  _reaches("ns3", "10.0.0.10")),
             Allowed(["link ns3 veth3"], {"link ns1 *": "ns1 was right: the fault is ns3's",
                                          "link host *": "the bridge was right: the fault is ns3's",
                                          "route *": "a route to a subnet comes with an address in it", **_AROUND},
                     task="ns3's interface"),
             "ns3's only address, 10.0.1.3/24, is in another subnet than the bridge and ns1 (10.0.0.0/24): "
             "ns3 has a route to 10.0.1.0/24 and none to 10.0.0.0/24 (notebook 02)."),
    Scenario("forward-drop",
             "ns1 (10.0.0.1) and ns3 (10.0.0.3) sit on bridge0 (10.0.0.10) of a host that runs Docker "
             "(FORWARD policy DROP, br_netfilter on, ip_forward on). Both reach the bridge's address; ns3 "
             "cannot ping ns1. The host also routes to ns5 (10.9.0.1), on a network of its own that ns1 "
             "and ns3 must not reach: let them talk to each other, and to nothing more.",
             _script("iptables -P FORWARD DROP\nsysctl -qw net.bridge.bridge-nf-call-iptables=1\n"
                     "sysctl -qw net.ipv4.ip_forward=1\n" + _BRIDGE + _NS5
                     + "ip netns exec ns3 ip addr add 10.0.0.3/24 dev veth3\n"
                       "ip netns exec ns1 ip route add default via 10.0.0.10\n"
                       "ip netns exec ns3 ip route add default via 10.0.0.10\n"),
             _all(_reaches("ns3", "10.0.0.1"), _reaches("ns1", "10.0.0.3"), _cut_off("ns3", "10.9.0.1", "ns5"),
                  _cut_off("ns1", "10.9.0.1", "ns5"), _policy_drop, _brnf_on),
             Allowed(["iptables host filter FORWARD"], {
                 "iptables host filter *": "a chain of your own hides what it accepts: the drop is in FORWARD",
                 "iptables host *": "the drop is in filter FORWARD: the fix belongs there",
                 "sysctl host net.bridge.*": "Docker's rules see bridged traffic only through br_netfilter",
                 "sysctl host *": "the host's settings are Docker's: the drop is in filter FORWARD",
                 "link *": "the links were right: the drop is in filter FORWARD",
                 "route *": "the routes were right", **_AROUND},
                 task="filter FORWARD in the host"),
             "br_netfilter hands every frame that bridge0 passes between two of its ports to iptables' "
             "FORWARD, whose policy is DROP, and no rule accepts it (notebook 03, Demo 2)."),
    Scenario("after-return",
             "Docker's Demo 3: containers dummy1 (172.18.0.2) and dummy2 (172.19.0.2) on two networks. "
             "A colleague added two rules to DOCKER-USER so that dummy1 can reach dummy2 (and get the "
             "replies; dummy2 must still not reach dummy1), but the ping still fails.",
             _after_return,
             _all(_reaches("dummy1", "172.19.0.2"), _cut_off("dummy2", "172.18.0.2", "dummy1"),
                  _not_from_outside("dummy1", "172.20.0.5", "172.19.0.2", "dummy2", "172.18.0.0/16"),
                  _docker_user_before_return),
             _DOCKER_USER_ONLY,
             "Both rules of your colleague come after DOCKER-USER's `-j RETURN`: a chain is read from the "
             "top, so every packet returns to FORWARD before it meets them (notebook 04)."),
    Scenario("no-forwarding",
             "ns1 (10.1.0.1/24) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of "
             "both (10.1.0.254 and 10.2.0.254). Each pings its gateway; ns1 cannot ping ns2.",
             _script(_ROUTED + "ip netns exec ns2 ip route add default via 10.2.0.254\n"
                     "sysctl -qw net.ipv4.ip_forward=0\n"),
             _all(_forwards(HOST, "veth2", "veth4"), _reaches("ns1", "10.2.0.1"), _reaches("ns2", "10.1.0.1")),
             Allowed(["sysctl host net.ipv4.ip_forward", "sysctl host net.ipv4.conf.*.forwarding"],
                     {"iptables *": "nothing in the firewall drops it", "route *": "the routes were right",
                      "link *": "the links and addresses were right", "sysctl *": "that setting was right",
                      **_AROUND},
                     task="the host's forwarding"),
             "The host is not a router: net.ipv4.ip_forward is 0 in its namespace, so what comes in for "
             "another network is not passed on (notebook 02, Demo 1.5)."),
    Scenario("no-route-back",
             "ns1 (10.1.0.1/24) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of "
             "both (10.1.0.254 and 10.2.0.254) and forwards between them. ns1 cannot ping ns2.",
             _script(_ROUTED + "sysctl -qw net.ipv4.ip_forward=1\n"),
             _all(_route("ns2", "10.1.0.1"), _reaches("ns1", "10.2.0.1"), _reaches("ns2", "10.1.0.1")),
             Allowed(["route ns2"], {"iptables host nat *": "NAT hides ns1's address from ns2: this lab is "
                                                            "about ns2's way back",
                                     "route *": "that namespace's routes were right",
                                     "link *": "the links and addresses were right", **_AROUND},
                     task="ns2's routes"),
             "ns2 has a route only to its own network (10.2.0.0/24): its answer to 10.1.0.1 has no way "
             "out (notebook 02, Demo 1.5)."),
    # -- Docker's own failures ------------------------------------------------------------------------
    Scenario("dnat-only",
             "A host runs Docker 20.10; its uplink eth0 (203.0.113.2) leads to a machine outside (203.0.113.1) "
             "that routes 172.17.0.0/16 through the host. Containers web (172.17.0.2, a web server on port "
             "80) and db (172.17.0.3) were started without -p. A colleague published web's port 80 as the "
             "host's 8080 by hand: the outside should get web's page at http://203.0.113.2:8080/ and reach "
             "nothing else of the containers. The outside's curl hangs.",
             _docker("run -d --name web nginx", "run -d --name db redis", outside=True,
                     then="ip netns exec outside ip route add 172.17.0.0/16 via 203.0.113.2\n"
                          "iptables -t nat -A DOCKER ! -i docker0 -p tcp --dport 8080 "
                          "-j DNAT --to-destination 172.17.0.2:80\n"),
             _all(_serves("outside", "http://203.0.113.2:8080/"), _cut_off("outside", "172.17.0.3", "db"),
                  _cut_off("outside", "172.17.0.2", "web", port=22), _docker_user_before_return),
             Allowed(["iptables host filter DOCKER", "iptables host filter DOCKER-USER"], {
                 "iptables host nat *": "the DNAT was right: the trace shows it rewrite the destination",
                 "iptables host filter DOCKER-ISOLATION*": "Docker's isolation between its networks must stay",
                 "iptables host filter FORWARD": "Docker's FORWARD: dockerd rewrites it (what a published port "
                                                 "needs goes in DOCKER, or yours in DOCKER-USER)",
                 "iptables host filter *": "a chain of your own hides what it accepts",
                 "iptables host raw *": "Docker's own protection of its containers",
                 "iptables host *": "Docker's tables: the missing rule is a filter rule",
                 "route *": "the routes were right", "sysctl *": "Docker's settings", **_AROUND},
                 task="filter DOCKER or DOCKER-USER"),
             "The DNAT rewrote the request's destination to 172.17.0.2:80, so the host forwards it, and "
             "filter FORWARD (policy DROP) has no rule that accepts it: `docker run -p` writes two rules, a "
             "DNAT in nat DOCKER and an ACCEPT for the container's port in filter DOCKER, and the colleague "
             "wrote only the first (notebook 05)."),
    Scenario("localnet-off",
             "A host runs Docker 20.10 with the userland proxy off (no docker-proxy: the kernel's NAT serves "
             "published ports). Container web (172.17.0.2) publishes its port 80 as 8080. On the host, "
             "curl 172.17.0.2 gets the page and curl 127.0.0.1:8080 hangs. Make the host's 127.0.0.1:8080 "
             "answer, with the proxy still off.",
             _docker("run -d -p 8080:80 --name web nginx",
                     then="sysctl -qw net.ipv4.conf.docker0.route_localnet=0\n"),
             _all(_serves(HOST, "http://127.0.0.1:8080/"), _serves(HOST, "http://172.17.0.2/")),
             Allowed(["sysctl host net.ipv4.conf.docker0.route_localnet"], {
                 "sysctl host net.ipv4.conf.all.*": "conf/all counts for every interface of the host: only "
                                                    "docker0 needed changing",
                 "sysctl host net.ipv4.conf.default.*": "that is the value of interfaces made from now on: "
                                                        "only docker0 needed changing",
                 "sysctl *": "that setting was right",
                 "iptables *": "Docker's rules were right: the trace shows the DNAT happen",
                 "route *": "the routes were right", "link *": "the links were right", **_AROUND},
                 task="docker0's settings"),
             "OUTPUT's DNAT turns 127.0.0.1:8080 into 172.17.0.2:80, but the source stays 127.0.0.1 until "
             "POSTROUTING, and the kernel routes a packet with a loopback source out of an interface only "
             "where that interface's route_localnet is 1 (Documentation/networking/ip-sysctl.rst). dockerd "
             "sets it on each bridge when the proxy is off (bridge.go, setupLoopbackAddressesRouting); "
             "docker0's is 0."),
    Scenario("stateless-reply",
             "Containers dummy1 (172.18.0.2) on network dummy1, web2 (172.19.0.2, a web server on port 80) "
             "and dummy2 (172.19.0.3) on network dummy2. dummy1 must get web2's page; nothing on dummy2 may "
             "open a connection to dummy1. A colleague wrote one rule in DOCKER-USER for each way; dummy1's "
             "curl hangs.",
             _docker("network create dummy1", "network create dummy2",
                     "run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
                     "run --network=dummy2 --name=web2 -d nginx",
                     "run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools",
                     then="iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -p tcp --dport 80 -j ACCEPT\n"
                          "iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -p tcp --dport 80 -j ACCEPT\n"),
             _all(_serves("dummy1", "http://172.19.0.2/"), _cut_off("dummy2", "172.18.0.2", "dummy1", port=80),
                  _cut_off("dummy2", "172.18.0.2", "dummy1", port=9, sport=80), _docker_user_before_return),
             _DOCKER_USER_ONLY,
             "The rule meant for web2's answers matches packets *to* port 80 from dummy2's network. An "
             "answer comes *from* port 80, to dummy1's port of the moment: the rule matches none of it, "
             "and it lets anything on dummy2 open a connection to dummy1's port 80. Which packet answers a "
             "connection is what conntrack knows, not a port number (notebook 04)."),
    Scenario("rp-strict",
             "ns1 (10.1.0.1) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of both and "
             "forwards between them. ns1 has a second link to the host, veth7 (10.3.0.1/24; the host's end "
             "is veth8, 10.3.0.254), and its owner routes what goes to ns2 through it, from 10.1.0.1. ns1 "
             "cannot ping ns2, nor ns2 ns1. Keep ns1's routes, and keep the host refusing sources it has "
             "no route to.",
             _script(_ROUTED + "ip netns exec ns2 ip route add default via 10.2.0.254\n" + _SECOND_LINK
                     + "sysctl -qw net.ipv4.ip_forward=1\n"
                       "sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.veth8.rp_filter=1\n"),
             _all(_reaches("ns1", "10.2.0.1"), _reaches("ns2", "10.1.0.1"),
                  _not_from_outside("ns1", "198.51.100.7", "10.2.0.1", "ns2", "the networks the host has routes to",
                                    let_through="the host now takes sources from outside")),
             Allowed(["sysctl host net.ipv4.conf.veth8.rp_filter"], {
                 "sysctl host net.ipv4.conf.all.*": "conf/all counts for every interface of the host: only veth8's "
                                                    "needed changing",
                 "sysctl *": "that setting was right",
                 "route ns1": "ns1's routes are its owner's choice: the story keeps them",
                 "route *": "the routes were right: the host drops what comes in on veth8",
                 "iptables *": "nothing in the firewall drops it",
                 "link *": "the links and addresses were right", **_AROUND},
                 task="veth8's settings"),
             "The host filters reverse paths strictly (rp_filter 1): it takes a packet from 10.1.0.1 only "
             "on the interface it would answer 10.1.0.1 through, veth2. ns1 sends through veth7, so its "
             "packets come in on veth8 and die after PREROUTING (nstat's IPReversePathFilter counts them; "
             "notebook 02). The kernel uses the higher of conf/all and the interface's value."),
    Scenario("raw-drop",
             "A host was upgraded from Docker 20.10 to 28.5. Its uplink eth0 (203.0.113.2) leads to the LAN "
             "203.0.113.0/24, where a machine (outside, 203.0.113.1) routes 172.17.0.0/16 through the host; "
             "it also speaks for another network, from 198.51.100.1. Container web (172.17.0.2) "
             "publishes port 80 as 8080, and db (172.17.0.3) publishes nothing. The LAN used to fetch web's "
             "page from the container's own address, http://172.17.0.2/; since the upgrade that hangs, and "
             "the host's 8080 still answers. Let the LAN reach web's port 80 directly again, and no one "
             "else anything more.",
             _docker("dockerd --version=28.5", "run -d -p 8080:80 --name web nginx", "run -d --name db redis",
                     outside=True,
                     then="ip netns exec outside sh -c 'ip route add 172.17.0.0/16 via 203.0.113.2 && "
                          "ip addr add 198.51.100.1/32 dev lo'\n"),
             _all(_serves("outside", "http://172.17.0.2/"), _serves("outside", "http://203.0.113.2:8080/"),
                  _cut_off("outside", "172.17.0.2", "web", port=80, source="198.51.100.1"),
                  _cut_off("outside", "172.17.0.3", "db", port=80),
                  _rules_kept("raw", "PREROUTING", "-d 172.17.0.2/32 ! -i docker0 -j DROP",
                              "-d 172.17.0.3/32 ! -i docker0 -j DROP", whose="Docker's drops")),
             Allowed(["iptables host raw PREROUTING"], {
                 "iptables host filter *": "filter already accepts web's port 80 (Docker's DOCKER chain): the "
                                           "trace shows where the request dies",
                 "iptables host nat *": "no NAT is involved in reaching a container by its own address",
                 "iptables host raw *": "a chain of your own hides what it accepts",
                 "iptables host *": "Docker's tables",
                 "sysctl *": "Docker's settings", "route *": "the routes were right",
                 "link *": "the links and addresses were right", **_AROUND},
                 task="raw PREROUTING"),
             "Docker 28 protects each container in the raw table, before connection tracking and NAT: raw "
             "PREROUTING drops every packet for 172.17.0.2 that does not come in through docker0 "
             "(libnetwork's filterDirectAccess). The LAN's request comes in through eth0: it dies there, "
             "although filter's DOCKER chain accepts web's published port 80 (notebook 04)."),
    Scenario("stale-nat",
             "A host runs Docker 20.10; the machine outside (203.0.113.1, on the host's eth0) sends its logs "
             "over UDP, every half second from its port 40514, to the host's port 5140, which an admin "
             "forwarded by hand (a DNAT, and an ACCEPT in DOCKER-USER) to the collector logs1 (172.17.0.2). "
             "The collector moved to logs2 (172.17.0.3) and the admin changed both rules to 172.17.0.3; "
             "logs2 receives nothing. The sender keeps running: make its logs reach logs2.",
             _stale_nat,
             _all(_delivered_to("outside", "-p udp --sport 40514 --dport 5140", "logs2", "logs1", "sender")),
             Allowed([], {"iptables *": "the admin's rules are right now: they are not what the flow follows",
                          "sysctl *": "the host's settings were right", "route *": "the routes were right",
                          "link *": "the links and addresses were right", **_AROUND},
                     task="the host's conntrack table"),
             "NAT is decided once per connection, on its first packet, and remembered in conntrack: the "
             "sender's flow (203.0.113.1:40514 to 203.0.113.2:5140) was NATed to 172.17.0.2 before the rule "
             "changed, and every packet of it since follows that entry, never the nat table. As long as "
             "packets keep coming, the entry never times out (notebook 06)."),
]}


def _scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise NotFound(f"no broken lab called {name!r} (there are: {', '.join(SCENARIOS)})") from None


#: What each broken lab was when :func:`broken` built it: (the lab's generation, the record).
_BUILT: dict[str, tuple[int, LabRecord]] = {}


def broken(name: str, lab: Any = None) -> None:
    """Reset the lab and build the broken lab ``name``; print what is wrong, as a user would say it."""
    scenario = _scenario(name)
    lab = lab_or_current(lab)
    lab.reset()
    scenario.build(lab)
    _BUILT[name] = (lab.generation, record(lab))
    print(f"[{name}] {scenario.story}")


def fixed(name: str, lab: Any = None) -> list[CheckResult]:
    """Checks that the broken lab ``name`` is fixed for real (pass them to ``exercise``).

    The traffic the story asks for flows both ways, what must stay blocked dies on the way (one
    way, followed by a trace), and nothing changed but what the lab is about.
    """
    scenario = _scenario(name)
    lab = lab_or_current(lab)
    built = _BUILT.get(name)
    if built is None or built[0] != lab.generation:
        return [CheckResult(False, f"the lab is the one broken({name!r}) built",
                            f"the lab was reset or rebuilt since: run broken({name!r}) again")]
    return [*scenario.checks(lab), check_changes(built[1], scenario.allowed, lab=lab)]


def show_me(name: str) -> None:
    """Print what is wrong in the broken lab ``name`` (the fault, not the command that fixes it)."""
    print(f"[{name}] {_scenario(name).fault}")
