"""What "fixed" means in a broken lab, judged by effect: real packets, traces, the kernel's state.

Each function here makes a check for :class:`~netlab_magic.troubleshoot.scenarios.Scenario`: a
callable that takes the lab and returns one :class:`~netlab_magic.checks.CheckResult`. Its
sentence names the symptom and where to look, never the command that fixes it. Errors of the lab
(a namespace gone, a command refused) become a failed check through :func:`~netlab_magic.checks.run_check`.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any, Callable

from ..checks import SETTLE, CheckResult, Missing, run_check, where
from ..errors import NetlabError
from ..linux.iptables import Tables
from ..model import HOST
from ..packets.probes import Probe, send_probes

Check = Callable[[Any], CheckResult]


def _passed(ok: bool, failure: str) -> tuple[bool, str]:
    """A body's answer for :func:`run_check`: the failure's detail said only when it failed."""
    return ok, "" if ok else failure


def _trace_tip(src: str, dst: str) -> str:
    return f"`%netlab trace {src} -- ping -c 1 -W 1 {dst}` shows where it stops"


def _chain(lab: Any, table: str, chain: str) -> list[str]:
    """The rules of the host's ``table`` ``chain``, as iptables-save prints them."""
    return Tables.parse(lab.run(HOST, ["iptables-save", "-t", table]).stdout).chains.get(table, {}).get(chain, [])


def reaches(src: str, dst: str) -> Check:
    """``src`` pings ``dst`` and gets the answer (the round trip works)."""
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            result = lab.run(src, ["ping", "-c", "1", "-W", "1", dst], timeout=10)
            return _passed(result.returncode == 0, f"no answer yet: {_trace_tip(src, dst)}")
        return run_check(f"{where(src)} gets an answer from {dst}", body)
    return check


def serves(src: str, url: str) -> Check:
    """``src`` fetches ``url`` and gets the web server's answer (HTTP 200)."""
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            result = lab.run(src, ["curl", "-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}", url], timeout=10)
            return _passed(result.returncode == 0 and result.stdout == "200",
                           f"no answer yet: `%netlab trace {src} -- curl -m 1 {url}` shows where the request stops")
        return run_check(f"{where(src)} gets the web page at {url}", body)
    return check


def cut_off(src: str, dst: str, dst_netns: str, port: int | None = None, sport: int | None = None,
            source: str | None = None) -> Check:
    """A request from ``src`` to ``dst`` never arrives in ``dst_netns`` (one way, followed by a trace).

    A ping, or with ``port`` a TCP SYN to that port (from source port ``sport``, from the address
    ``source`` of ``src``, if given).
    """
    to = dst if port is None else f"{dst} port {port}" + ("" if sport is None else f" from port {sport}")
    what = f"what {where(src)} sends {'' if source is None else f'from {source} '}to {to} still never " \
           f"arrives in {dst_netns}"
    if port is None:
        probe, match = f"ping -c 1 -W 0.3 {dst}", f"-d {dst}"
    else:
        local = ("" if sport is None else f" --local-port {sport}") + \
                ("" if source is None else f" --interface {source}")
        probe, match = f"curl -s -m 0.5{local} http://{dst}:{port}/", f"-p tcp -d {dst} --dport {port}"

    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            arrived = [p for p in lab.trace(src, probe, match=match).packets if dst_netns in p.namespaces]
            if arrived:
                return False, (f"a request got there ({arrived[0].fate}): the fix lets through more than this lab "
                               "asks for")
            return True, ""
        return run_check(what, body)
    return check


def not_from_outside(src: str, fake: str, dst: str, dst_netns: str, asked: str,
                     let_through: str = "the sources your rules accept are more than") -> Check:
    """What ``src`` sends to ``dst`` from ``fake``, an address outside ``asked``, never arrives in ``dst_netns``.

    The request is made by hand (:class:`netlab_magic.packets.probes.Probe` with a ``source`` of its own)
    and followed by the trace: a rule that accepts a wider source range than the story asks lets it
    through.
    """
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            [outcome] = lab.call(send_probes, [Probe(src, dst, "ping", source=fake)])  # where the lab lives
            if outcome.packet is None:
                return False, "the request could not be sent (the trace never saw it leave)"
            return _passed(dst_netns not in outcome.packet.namespaces, f"it got there: {let_through} {asked}")
        return run_check(f"a request to {dst} from outside {asked} ({fake}, sent by {src}) never arrives in "
                         f"{dst_netns}", body)
    return check


def _interface(lab: Any, netns: str, ifname: str) -> Any:
    try:
        return lab.netns(netns).read().interface(ifname)
    except KeyError:
        raise Missing(f"there is no {ifname} in {where(netns)}") from None


def carries(netns: str, ifname: str) -> Check:
    """``ifname`` in ``netns`` is UP: up itself, and its other end up too (operstate, settled)."""
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            iface = _interface(lab, netns, ifname)
            deadline = time.monotonic() + SETTLE
            while iface.state != "UP" and iface.admin_up and time.monotonic() < deadline:
                time.sleep(0.1)  # the kernel reports a new operstate with up to a second's delay
                iface = _interface(lab, netns, ifname)
            return _passed(iface.state == "UP", f"it is {iface.state}: `%netlab status` shows both ends of the "
                                                "cable (notebook 01 says what each state means)")
        return run_check(f"{ifname} in {where(netns)} can carry packets (UP)", body)
    return check


def address(netns: str, ifname: str, cidr: str) -> Check:
    """``ifname`` in ``netns`` has ``cidr``, and no IPv4 address outside its network."""
    want = ipaddress.ip_interface(cidr)

    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            v4 = [ipaddress.ip_interface(a) for a in _interface(lab, netns, ifname).addresses if ":" not in a]
            if want not in v4:
                other = [str(a) for a in v4 if a.ip == want.ip]
                return False, (f"{ifname} has {other[0]}: another network than the story's ({want.network})"
                               if other else f"not yet: `ip addr` in {where(netns)} shows what {ifname} has")
            stray = [str(a) for a in v4 if a.network != want.network]
            return _passed(not stray, f"{ifname} is also in {', '.join(stray)}: one interface, one network here")
        return run_check(f"{want.ip} is on {ifname} in {where(netns)}, in {want.network} and no other network", body)
    return check


def forwards(netns: str, *ifnames: str) -> Check:
    """``netns`` routes what comes in through each of ``ifnames`` (its ``forwarding`` is on)."""
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            off = [i for i in ifnames if lab.netns(netns).sysctl(f"net.ipv4.conf.{i}.forwarding") != "1"]
            return _passed(not off, f"not through {' and '.join(off)}: the trace shows where the request vanished")
        return run_check(f"{where(netns)} passes on what comes in through {' and '.join(ifnames)}", body)
    return check


def policy_drop(lab: Any) -> CheckResult:
    """The host's filter FORWARD policy is still DROP."""
    def body() -> tuple[bool, str]:
        policy = Tables.parse(lab.run(HOST, ["iptables-save", "-t", "filter"]).stdout).policies.get(
            ("filter", "FORWARD"), "ACCEPT")
        return _passed(policy == "DROP", f"it is {policy}: every forwarded packet not dropped by a rule would pass")
    return run_check("FORWARD's policy is still DROP", body)


def brnf_on(lab: Any) -> CheckResult:
    """Bridged traffic still goes through iptables (``bridge-nf-call-iptables`` is 1)."""
    def body() -> tuple[bool, str]:
        value = lab.netns(HOST).sysctl("net.bridge.bridge-nf-call-iptables")
        return _passed(value == "1", "turned off: Docker's own rules would see nothing")
    return run_check("the bridge still sends its traffic through iptables (br_netfilter)", body)


def docker_user_before_return(lab: Any) -> CheckResult:
    """No rule of DOCKER-USER stands after its ``-j RETURN`` (where no packet would meet it)."""
    def body() -> tuple[bool, str]:
        rules = _chain(lab, "filter", "DOCKER-USER")
        ret = [i for i, r in enumerate(rules) if r == "-j RETURN"]
        return _passed(not (ret and ret[0] < len(rules) - 1),
                       "a packet that meets the RETURN goes back to FORWARD: `iptables -S DOCKER-USER` lists the "
                       "rules in the order they are read")
    return run_check("every rule of DOCKER-USER is read (none after its RETURN)", body)


def delivered_to(src: str, match: str, dst_netns: str, not_netns: str, job: str) -> Check:
    """What ``src``'s running ``job`` sends (``match``) is delivered in ``dst_netns``, none in ``not_netns``.

    Nothing is sent for the check: a trace follows the job's own packets for a second.
    """
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            try:
                running = lab.jobs.get(job).running
            except (KeyError, NetlabError):
                running = False
            if not running:
                return False, (f"{job} is no longer running: the lab is about a flow that is already open "
                               f"(run broken() again)")
            trace = lab.trace(src, "sleep 0.8", match=match)  # the job sends every half second
            there = [p for p in trace.packets if dst_netns in p.namespaces]
            astray = [p for p in trace.packets if not_netns in p.namespaces]
            where_to = f"some still go to {not_netns}" if astray else f"none reaches {dst_netns}"
            return _passed(bool(there) and not astray,
                           f"{where_to}: `%netlab trace {src} --match \"{match}\" -- sleep 1` follows them, "
                           f"`%netlab conntrack` shows what the host remembers of the flow")
        return run_check(f"what {where(src)}'s running {job} sends arrives in {dst_netns}, and nothing of it in "
                         f"{not_netns}", body)
    return check


def rules_kept(table: str, chain: str, *rules: str, whose: str) -> Check:
    """``rules`` (as iptables-save prints them) are still in ``table`` ``chain`` of the host."""
    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            gone = [r for r in rules if r not in _chain(lab, table, chain)]
            if gone:
                return False, f"`-A {chain} {gone[0]}` is gone: `iptables -t {table} -S {chain}` lists what is left"
            return True, ""
        return run_check(f"{whose} in {table} {chain} are all still there", body)
    return check


def route(netns: str, to: str) -> Check:
    """``netns`` has a route that covers ``to`` (a way back)."""
    target = ipaddress.ip_address(to)

    def check(lab: Any) -> CheckResult:
        def body() -> tuple[bool, str]:
            routes = lab.netns(netns).read().routes
            ok = any(r.dst == "default" or target in ipaddress.ip_network(r.dst, strict=False) for r in routes)
            return _passed(ok, f"none of its routes covers it: `ip route` in {netns} lists them")
        return run_check(f"{netns} has a way back to {to}", body)
    return check


def every(*checks: Check) -> Callable[[Any], list[CheckResult]]:
    """All of ``checks``, in order, as one callable (a scenario's ``checks``)."""
    return lambda lab: [check(lab) for check in checks]
