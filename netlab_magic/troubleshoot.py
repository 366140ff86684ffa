"""Broken labs to diagnose: each one a small lab with one thing wrong, and checks that it is fixed.

:func:`broken` resets the lab and builds one of :data:`SCENARIOS` (how, it does not say: that is
the puzzle); :func:`fixed` returns checks for :func:`~netlab_magic.checks.exercise` that pass only
when the fix is real: the traffic flows, *and* what should stay closed stays closed (no
catch-all ``ACCEPT``, no firewall switched off). Their hints describe, never give the command.

    >>> broken("link-down")
    >>> exercise(fixed("link-down"))
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
from dataclasses import dataclass
from typing import Any, Callable

from .checks import CheckResult, lab_or_current
from .errors import NetlabError, NotFound
from .model import HOST

__all__ = ["SCENARIOS", "Scenario", "broken", "fixed"]

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
_ROUTED = """
ip netns add ns1
ip link add veth1 type veth peer name veth2
ip link set veth1 netns ns1
ip addr add 10.1.0.254/24 dev veth2
ip link set dev veth2 up
ip netns exec ns1 ip link set dev lo up
ip netns exec ns1 ip addr add 10.1.0.1/24 dev veth1
ip netns exec ns1 ip link set dev veth1 up
ip netns exec ns1 ip route add default via 10.1.0.254
ip netns add ns2
ip link add veth3 type veth peer name veth4
ip link set veth3 netns ns2
ip addr add 10.2.0.254/24 dev veth4
ip link set dev veth4 up
ip netns exec ns2 ip link set dev lo up
ip netns exec ns2 ip addr add 10.2.0.1/24 dev veth3
ip netns exec ns2 ip link set dev veth3 up
"""


@dataclass(frozen=True)
class Scenario:
    """One broken lab: what the learner is told, how it is built, and what "fixed" means."""

    name: str
    story: str
    build: Callable[[Any], None]
    checks: Callable[[Any], list[CheckResult]]


def _script(text: str) -> Callable[[Any], None]:
    def build(lab: Any) -> None:
        lab.run(HOST, "set -e\n" + text, check=True)
    return build


# -- checks with neutral words (a hint, never the command) ------------------------------------------

def _ping(src: str, dst: str, expect: bool = True) -> Callable[[Any], CheckResult]:
    def check(lab: Any) -> CheckResult:
        what = f"{src} gets an answer from {dst}" if expect else f"{src} still gets no answer from {dst}"
        try:
            result = lab.run(src, ["ping", "-c", "1", "-W", "1", dst], timeout=10)
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        answered = result.returncode == 0
        if answered == expect:
            return CheckResult(True, what)
        return CheckResult(False, what, "no answer yet" if expect else
                           "it answers: the fix opens more than it should")
    return check


def _states(netns: str, *ifnames: str) -> Callable[[Any], CheckResult]:
    def check(lab: Any) -> CheckResult:
        what = f"{' and '.join(ifnames)} in {netns} {'are' if len(ifnames) > 1 else 'is'} up"
        try:
            ns = lab.netns(netns).read()
            down = [i.name for i in ns.interfaces if i.name in ifnames and i.state != "UP"]
        except NetlabError as err:
            return CheckResult(False, what, str(err))
        return CheckResult(not down, what, "" if not down else "; ".join(
            f"{i.name} is {i.state}" for i in ns.interfaces if i.name in down))
    return check


def _address(netns: str, ifname: str, cidr: str) -> Callable[[Any], CheckResult]:
    want = ipaddress.ip_interface(cidr)

    def check(lab: Any) -> CheckResult:
        what = f"{ifname} in {netns} has {want} and no address outside {want.network}"
        try:
            iface = lab.netns(netns).read().interface(ifname)
        except (NetlabError, KeyError) as err:
            return CheckResult(False, what, f"no interface {ifname} in {netns}" if isinstance(err, KeyError) else str(err))
        v4 = [ipaddress.ip_interface(a) for a in iface.addresses if ":" not in a]
        if want not in v4:
            return CheckResult(False, what, "not that address yet")
        stray = [str(a) for a in v4 if a.network != want.network]
        return CheckResult(not stray, what, "" if not stray else f"it still has {', '.join(stray)}")
    return check


def _sysctl(netns: str, key: str, value: str) -> Callable[[Any], CheckResult]:
    def check(lab: Any) -> CheckResult:
        what = f"{key} is {value} in {'the host' if netns == HOST else netns}"
        have = lab.netns(netns).sysctl(key)
        return CheckResult(have == value, what, "" if have == value else f"it is {have}")
    return check


def _iptables_S(lab: Any, chain: str) -> list[str]:
    result = lab.run(HOST, ["iptables", "-S", chain])
    if result.returncode:
        raise NotFound(f"there is no chain {chain} in the host's filter table")
    return result.stdout.splitlines()


def _forward_still_guarded(lab: Any) -> CheckResult:
    what = "FORWARD still drops what no rule accepts (policy DROP, no rule accepting everything)"
    try:
        rules = _iptables_S(lab, "FORWARD")
    except NetlabError as err:
        return CheckResult(False, what, str(err))
    if "-P FORWARD DROP" not in rules:
        return CheckResult(False, what, "the policy was changed: every forwarded packet would pass")
    if "-A FORWARD -j ACCEPT" in rules:
        return CheckResult(False, what, "a rule accepts every packet: that is no firewall at all")
    return CheckResult(True, what)


def _brnf_on(lab: Any) -> CheckResult:
    what = "the bridge still sends its traffic through iptables (br_netfilter)"
    value = lab.netns(HOST).sysctl("net.bridge.bridge-nf-call-iptables")
    return CheckResult(value == "1", what, "" if value == "1" else "turned off: Docker's own rules would see nothing")


def _docker_user_before_return(lab: Any) -> CheckResult:
    what = "your rules in DOCKER-USER come before its RETURN"
    try:
        rules = [r for r in _iptables_S(lab, "DOCKER-USER") if r.startswith("-A ")]
    except NetlabError as err:
        return CheckResult(False, what, str(err))
    mine = [i for i, r in enumerate(rules) if r != "-A DOCKER-USER -j RETURN"]
    ret = [i for i, r in enumerate(rules) if r == "-A DOCKER-USER -j RETURN"]
    if not mine:
        return CheckResult(False, what, "there are none")
    if ret and max(mine) > ret[0]:
        return CheckResult(False, what, "a packet that reaches the RETURN goes back to FORWARD: "
                                        "what comes after it is never read")
    return CheckResult(True, what)


def _isolation_intact(lab: Any) -> CheckResult:
    from .docker.checks import check_isolation_intact

    return check_isolation_intact(lab=lab)


def _route(netns: str, to: str) -> Callable[[Any], CheckResult]:
    target = ipaddress.ip_address(to)

    def check(lab: Any) -> CheckResult:
        what = f"{netns} has a route towards {to}"
        routes = lab.netns(netns).read().routes
        ok = any(r.dst == "default" or target in ipaddress.ip_network(r.dst, strict=False) for r in routes)
        return CheckResult(ok, what, "" if ok else "none of its routes covers it")
    return check


def _after_return(lab: Any) -> None:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or "docker" not in shell.magics_manager.magics["line"]:
        raise NetlabError("the after-return lab is built with %docker: run it in a notebook with netlab loaded")
    with contextlib.redirect_stdout(io.StringIO()):
        for line in ("network create dummy1", "network create dummy2",
                     "run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
                     "run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools"):
            shell.run_line_magic("docker", line)
    lab.run(HOST, "set -e\n"
                  "iptables -A DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT\n"
                  "iptables -A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 "
                  "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n", check=True)


def _all(*checks: Callable[[Any], CheckResult]) -> Callable[[Any], list[CheckResult]]:
    return lambda lab: [check(lab) for check in checks]


SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("link-down",
             "ns1 (10.0.0.1) is joined to the host (10.0.0.2) by a veth pair, as in Demo 1. "
             "ns1 cannot ping the host.",
             _script(_DEMO1 + "ip addr add 10.0.0.2/24 dev veth2\n"),
             _all(_states("ns1", "veth1"), _states(HOST, "veth2"), _ping("ns1", "10.0.0.2"))),
    Scenario("no-address",
             "ns1 (10.0.0.1) is joined to the host (10.0.0.2) by a veth pair, as in Demo 1. "
             "Both ends are up, and still ns1 cannot ping the host.",
             _script(_DEMO1 + "ip link set dev veth2 up\n"),
             _all(_address(HOST, "veth2", "10.0.0.2/24"), _ping("ns1", "10.0.0.2"))),
    Scenario("wrong-subnet",
             "ns1 (10.0.0.1) and ns3 (10.0.0.3) sit on bridge0 (10.0.0.10), as in Demo 2. "
             "ns1 reaches the bridge; ns3 cannot ping ns1, nor the bridge.",
             _script(_BRIDGE + "ip netns exec ns3 ip addr add 10.0.1.3/24 dev veth3\n"),
             _all(_address("ns3", "veth3", "10.0.0.3/24"), _ping("ns3", "10.0.0.1"), _ping("ns1", "10.0.0.3"))),
    Scenario("forward-drop",
             "ns1 (10.0.0.1) and ns3 (10.0.0.3) sit on bridge0 (10.0.0.10) of a host that runs Docker "
             "(FORWARD policy DROP, br_netfilter on). Both reach the bridge's address; ns3 cannot ping ns1.",
             _script("iptables -P FORWARD DROP\nsysctl -qw net.bridge.bridge-nf-call-iptables=1\n" + _BRIDGE
                     + "ip netns exec ns3 ip addr add 10.0.0.3/24 dev veth3\n"),
             _all(_ping("ns3", "10.0.0.1"), _ping("ns1", "10.0.0.3"), _forward_still_guarded, _brnf_on)),
    Scenario("after-return",
             "Docker's Demo 3: containers dummy1 (172.18.0.2) and dummy2 (172.19.0.2) on two networks. "
             "A colleague added two rules to DOCKER-USER so that dummy1 can reach dummy2 (and get the "
             "replies), but the ping still fails.",
             _after_return,
             _all(_ping("dummy1", "172.19.0.2"), _ping("dummy2", "172.18.0.2", expect=False),
                  _docker_user_before_return, _isolation_intact)),
    Scenario("no-forwarding",
             "ns1 (10.1.0.1/24) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of "
             "both (10.1.0.254 and 10.2.0.254). Each pings its gateway; ns1 cannot ping ns2.",
             _script(_ROUTED + "ip netns exec ns2 ip route add default via 10.2.0.254\n"
                     "sysctl -qw net.ipv4.ip_forward=0\n"),
             _all(_sysctl(HOST, "net.ipv4.ip_forward", "1"), _ping("ns1", "10.2.0.1"))),
    Scenario("no-route-back",
             "ns1 (10.1.0.1/24) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of "
             "both (10.1.0.254 and 10.2.0.254) and forwards between them. ns1 cannot ping ns2.",
             _script(_ROUTED + "sysctl -qw net.ipv4.ip_forward=1\n"),
             _all(_route("ns2", "10.1.0.1"), _ping("ns1", "10.2.0.1"))),
]}


def _scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise NotFound(f"no broken lab called {name!r} (there are: {', '.join(SCENARIOS)})") from None


def broken(name: str, lab: Any = None) -> None:
    """Reset the lab and build the broken lab ``name``; print what is wrong, as a user would say it."""
    scenario = _scenario(name)
    lab = lab_or_current(lab)
    lab.reset()
    scenario.build(lab)
    print(f"[{name}] {scenario.story}")


def fixed(name: str, lab: Any = None) -> list[CheckResult]:
    """Checks that the broken lab ``name`` is fixed for real (pass them to ``exercise``)."""
    return _scenario(name).checks(lab_or_current(lab))
