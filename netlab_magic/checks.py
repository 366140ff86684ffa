"""Self-checking exercises: small checks on the lab that say plainly what is right and what is not.

Each ``check_*`` function looks at the lab (:meth:`Lab.snapshot` or a command run inside a
namespace) and returns a :class:`CheckResult`: true or false, shown as one line starting with
✔ or ✘. A false one says what was seen instead and where to look (a command that only shows),
never the command that would make it true: the exercise is to find that. An explicit second
step, :meth:`ExerciseResult.hint` (``_.hint()`` right after the check cell), says more: the
notebook section where the same step was done. :func:`exercise` prints several checks and
returns a bool-like :class:`ExerciseResult` whose display is the verdict.

    >>> from netlab_magic.checks import check_attached, check_ping, exercise
    >>> exercise(check_attached("bridge0", "veth6"),
    ...          check_ping("ns4", "10.0.0.1"))
    ✔ veth6 is a port of bridge0 (in the lab's host)
    ✘ ns4 can ping 10.0.0.1 — namespace 'ns4' does not exist (the lab has: host, ns1, ns3)
    Not yet: 1 of 2 checks pass. Stuck? _.hint() in the next cell says more.

Nothing here changes the lab: checks only read it, and ``ping`` only goes to the address
asked for, from inside the lab.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from .errors import NamespaceNotFound, NetlabError
from .model import HOST, Interface, LabSnapshot

__all__ = [
    "CheckResult", "ExerciseResult",
    "check_netns", "check_link", "check_addr", "check_no_addr", "check_veth", "check_attached",
    "check_route", "check_ping", "exercise",
]

F = TypeVar("F", bound=Callable[..., Any])

OK_MARK = "\u2714"  # ✔
FAIL_MARK = "\u2718"  # ✘
#: How long :func:`check_link` waits for a state that may still be settling (the kernel reports
#: operstate changes with up to a second's delay).
SETTLE = 1.5


@dataclass(frozen=True)
class CheckResult:
    """One statement about the lab (``what``) and whether it holds.

    When it does not: ``detail`` is the symptom (what was seen instead), ``look`` a command that
    shows it (never one that changes the lab), and ``more`` what :meth:`hint` reveals on request.
    """

    ok: bool
    what: str
    detail: str = ""
    look: str = ""
    more: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        line = f"{OK_MARK if self.ok else FAIL_MARK} {self.what}"
        if self.detail:
            line += f" \u2014 {self.detail}"
        if self.look and not self.ok:
            line += f" (look: {self.look})"
        return line

    def hint(self) -> str:
        """The second step: where the workbook did the same (empty when there is nothing more)."""
        return "" if self.ok else self.more

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class ExerciseResult:
    """The outcome of :func:`exercise`: true when every check passes. Displays as the verdict."""

    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> int:
        return sum(1 for c in self.checks if c.ok)

    @property
    def total(self) -> int:
        return len(self.checks)

    def __bool__(self) -> bool:
        return self.total > 0 and self.passed == self.total

    @property
    def verdict(self) -> str:
        if self:
            return "Well done: the check passes." if self.total == 1 else f"Well done: all {self.total} checks pass."
        verdict = f"Not yet: {self.passed} of {self.total} checks pass."
        if any(c.hint() for c in self.checks):
            verdict += " Stuck? _.hint() in the next cell says more."
        return verdict

    def hint(self) -> None:
        """Print, for each check that fails, what :meth:`CheckResult.hint` reveals."""
        for c in self.checks:
            if c.hint():
                print(f"{FAIL_MARK} {c.what}: {c.hint()}")

    def __str__(self) -> str:
        return "\n".join([*(str(c) for c in self.checks), self.verdict])

    def __repr__(self) -> str:
        return self.verdict


def exercise(*checks: CheckResult | Iterable[CheckResult]) -> ExerciseResult:
    """Print one ✔/✘ line per check and return the result (true when all pass).

    In a notebook the returned value displays as the verdict ("Well done: ..." or
    "Not yet: N of M checks pass."), right under the lines.
    """
    flat: list[CheckResult] = []
    for c in checks:
        if isinstance(c, CheckResult):
            flat.append(c)
        else:
            flat.extend(c)
    for c in flat:
        print(c)
    return ExerciseResult(tuple(flat))


# -- reading the lab --------------------------------------------------------------------------

def lab_or_current(lab: Any) -> Any:
    """``lab``, or the kernel's lab when it is None (checks take ``lab=`` for tests and embedding):
    :func:`netlab_magic.backend.current`, in this process or in its VM."""
    if lab is not None:
        return lab
    from .backend import current

    return current()


def beside_the_lab(check: F) -> F:
    """Decorator: ``check`` (a function with a ``lab=None`` parameter) runs whole where the lab lives.

    In-kernel that is a plain call. Where the VM runs the lab it is one :meth:`call
    <netlab_magic.vm.lab.VMLab.call>` to the guest, which runs ``check`` there on its own lab
    (not one forwarded call per snapshot or command), its result pickled back.
    """
    signature = inspect.signature(check)

    @functools.wraps(check)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        try:
            lab = lab_or_current(bound.arguments.get("lab"))
        except NetlabError:  # no lab here: the check says so in its own way
            return check(*args, **kwargs)
        if getattr(lab, "backend", "kernel") == "vm":
            bound.arguments.pop("lab", None)  # the guest's side gives the guest's own lab
            return lab.call(_called_beside, wrapper, bound.args, bound.kwargs)
        bound.arguments["lab"] = lab
        return check(*bound.args, **bound.kwargs)

    return wrapper  # type: ignore[return-value]


def _called_beside(lab: Any, check: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """The guest's side of :func:`beside_the_lab`: ``check`` on the lab of this process (``lab``)."""
    return check(*args, lab=lab, **kwargs)


def where(netns: str) -> str:
    """How a check names a namespace in its sentence."""
    return "the lab's host" if netns == HOST else netns


class Missing(Exception):
    """Something a check needs is not there; the message says what, ``look`` where to see it."""

    def __init__(self, message: str, look: str = "") -> None:
        super().__init__(message)
        self.look = look


def _interface(snap: LabSnapshot, netns: str, ifname: str) -> Interface:
    if netns not in snap:
        raise Missing(f"namespace {netns!r} does not exist", "ip netns list")
    ns = snap[netns]
    try:
        return ns.interface(ifname)
    except KeyError:
        have = ", ".join(i.name for i in ns.interfaces) or "none"
        raise Missing(f"there is no interface {ifname} in {where(netns)} (it has: {have})",
                      show(netns, "link")) from None


def _ipv4(iface: Interface) -> list[str]:
    return [a for a in iface.addresses if ":" not in a]


def run_check(what: str, body, look: str = "", more: str = "") -> CheckResult:  # noqa: ANN001 - a callable returning (ok, detail)
    """A :class:`CheckResult` for ``what`` from ``body()``; a :class:`Missing` becomes a failed check with its message.

    ``look`` and ``more`` go with a failure (:class:`CheckResult`).
    """
    try:
        ok, detail = body()
    except Missing as err:
        return CheckResult(False, what, str(err), err.look or look, more)
    except NamespaceNotFound as err:
        return CheckResult(False, what, str(err), "ip netns list", more)
    except NetlabError as err:
        return CheckResult(False, what, str(err), look, more)
    return CheckResult(ok, what, detail, *((look, more) if not ok else ()))


def show(netns: str, command: str) -> str:
    """An ``ip`` command that shows something in ``netns`` (``ip -n NS ...``; on the host plain ``ip ...``)."""
    return f"ip {command}" if netns == HOST else f"ip -n {netns} {command}"


#: Where the workbook does each step the checks look for (what :meth:`CheckResult.hint` reveals).
SECTIONS = {
    "netns": "notebook 01, 'A namespace without a cable', makes ns1 the talk's way",
    "lo": "notebook 00, 'Reading a cell: on the host, or inside a namespace?': what demo's lo needed "
          "before it answered a ping",
    "link": "notebook 01, 'The veth pair': what each end needed before it carried a packet "
            "(and notebook 02 for an end whose other end is not up)",
    "addr": "notebook 01, 'The veth pair', gives each end its address; notebook 02, 'Why: the host's "
            "routing table', shows what an address adds to the routing table",
    "no_addr": "notebook 02, 'Why: the host's routing table': an address that is left over keeps its "
               "route; `ip addr help` lists the verbs of `ip addr`",
    "veth": "notebook 01, 'The veth pair': how veth1 got into ns1 while veth2 stayed on the host",
    "attached": "notebook 03, 'The bridge': how veth2 and veth4 became ports of bridge0",
    "route": "notebook 02, 'Why: the host's routing table': where the host's routes come from",
    "ping": "notebook 02, 'Why: the host's routing table' (a reply must find its way back too), "
            "and notebook 07 for a way to look for the fault step by step",
}


# -- the checks ---------------------------------------------------------------------------------

@beside_the_lab
def check_netns(name: str, *, lab: Any = None) -> CheckResult:
    """Namespace ``name`` exists (``ip netns list`` shows it)."""
    def body():
        have = lab_or_current(lab).list_netns()
        if name == HOST or name in have:
            return True, ""
        return False, f"it does not (namespaces: {', '.join(have) or 'none'})"
    return run_check(f"namespace {name} exists", body, "ip netns list", SECTIONS["netns"])


@beside_the_lab
def check_link(netns: str, ifname: str, state: str = "UP", *, lab: Any = None) -> CheckResult:
    """Interface ``ifname`` in ``netns`` is in operstate ``state`` (``UP`` by default).

    ``lo`` counts as up when it was set up (its operstate is always ``UNKNOWN``).
    """
    want = state.upper()

    def body():
        iface = _interface(lab_or_current(lab).snapshot(), netns, ifname)
        deadline = time.monotonic() + SETTLE
        while iface.state != want and iface.admin_up and iface.kind != "loopback" and time.monotonic() < deadline:
            time.sleep(0.1)  # the kernel reports a new state with up to a second's delay
            iface = _interface(lab_or_current(lab).snapshot(), netns, ifname)
        if iface.kind == "loopback" and want == "UP":
            if iface.admin_up:
                return True, ""
            return False, "it is down (no UP among its flags)"
        if iface.state == want:
            return True, ""
        seen = f"it is {iface.state}"
        if want == "UP" and not iface.admin_up:
            seen += " (no UP among its flags)"
        elif want == "UP" and iface.state == "LOWERLAYERDOWN":
            seen += " (UP among its flags, but the link below it has no carrier)"
        return False, seen
    return run_check(f"{ifname} in {where(netns)} is {want}", body, show(netns, f"link show {ifname}"),
                     SECTIONS["lo" if ifname == "lo" else "link"])


@beside_the_lab
def check_addr(netns: str, ifname: str, cidr: str, *, lab: Any = None) -> CheckResult:
    """Interface ``ifname`` in ``netns`` has the address ``cidr`` (e.g. ``10.0.0.1/24``)."""
    want = str(ipaddress.ip_interface(cidr))

    def body():
        iface = _interface(lab_or_current(lab).snapshot(), netns, ifname)
        if want in iface.addresses:
            return True, ""
        have = _ipv4(iface)
        seen = f"it has {', '.join(have)}" if have else "it has no IPv4 address"
        return False, seen
    return run_check(f"{ifname} in {where(netns)} has {want}", body, show(netns, f"addr show dev {ifname}"),
                     SECTIONS["addr"])


@beside_the_lab
def check_no_addr(netns: str, ifname: str, cidr: str, *, lab: Any = None) -> CheckResult:
    """Interface ``ifname`` in ``netns`` does *not* have ``cidr`` (an interface that is gone passes too)."""
    want = str(ipaddress.ip_interface(cidr))

    def body():
        snap = lab_or_current(lab).snapshot()
        try:
            iface = _interface(snap, netns, ifname)
        except Missing:
            return True, ""
        if want in iface.addresses:
            return False, "it still has it"
        return True, ""
    return run_check(f"{ifname} in {where(netns)} does not have {want}", body,
                     show(netns, f"addr show dev {ifname}"), SECTIONS["no_addr"])


@beside_the_lab
def check_veth(netns: str, ifname: str, peer_netns: str, peer: str, *, lab: Any = None) -> CheckResult:
    """``ifname`` in ``netns`` is a veth whose other end is ``peer`` in ``peer_netns``."""
    def body():
        iface = _interface(lab_or_current(lab).snapshot(), netns, ifname)
        if iface.kind != "veth" or iface.peer is None:
            return False, f"{ifname} is a {iface.kind}, not a veth"
        if (iface.peer.netns, iface.peer.ifname) == (peer_netns, peer):
            return True, ""
        other = iface.peer.netns or "outside the lab"
        return False, f"its other end is {iface.peer.ifname or '?'} in {where(other)}"
    return run_check(f"{ifname} in {where(netns)} is a veth to {peer} in {where(peer_netns)}", body,
                     show(netns, f"link show {ifname}"), SECTIONS["veth"])


@beside_the_lab
def check_attached(bridge: str, ifname: str, netns: str = HOST, *, lab: Any = None) -> CheckResult:
    """``ifname`` is a port of ``bridge`` (``ip link set IFNAME master BRIDGE``), both in ``netns``."""
    def body():
        snap = lab_or_current(lab).snapshot()
        br = _interface(snap, netns, bridge)
        if br.kind != "bridge":
            return False, f"{bridge} is a {br.kind}, not a bridge"
        iface = _interface(snap, netns, ifname)
        if iface.master == bridge:
            return True, ""
        if iface.master:
            return False, f"it is a port of {iface.master}"
        return False, "it is not a port of any bridge"
    return run_check(f"{ifname} is a port of {bridge} (in {where(netns)})", body,
                     show(netns, f"link show master {bridge}"), SECTIONS["attached"])


@beside_the_lab
def check_route(netns: str, dst: str, *, dev: str | None = None, via: str | None = None,
                lab: Any = None) -> CheckResult:
    """``netns`` has a route to ``dst`` (a CIDR or ``default``), out of ``dev`` / via ``via`` if given."""
    want_dst = dst if dst == "default" else str(ipaddress.ip_network(dst, strict=False))
    what = f"{where(netns)} has a route to {want_dst}" + (f" via {via}" if via else "") + \
        (f" dev {dev}" if dev else "")

    def body():
        snap = lab_or_current(lab).snapshot()
        if netns not in snap:
            raise Missing(f"namespace {netns!r} does not exist", "ip netns list")
        routes = [r for r in snap[netns].routes if r.dst == want_dst]
        if not routes:
            return False, f"there is none (routes: {'; '.join(str(r) for r in snap[netns].routes) or 'none'})"
        for r in routes:
            if (dev is None or r.dev == dev) and (via is None or r.gateway == via):
                return True, ""
        return False, f"it goes elsewhere: {'; '.join(str(r) for r in routes)}"
    return run_check(what, body, show(netns, "route"), SECTIONS["route"])


@beside_the_lab
def check_ping(src_netns: str, dst_ip: str, expect: bool = True, *, lab: Any = None) -> CheckResult:
    """One ``ping -c 1 -W 1 DST_IP`` from inside ``src_netns``: does it get a reply?

    With ``expect=False`` the check passes when there is *no* reply (e.g. before a firewall
    rule lets the packet through).
    """
    dst = str(ipaddress.ip_address(dst_ip))
    what = f"{src_netns} can ping {dst}" if expect else f"{src_netns} cannot reach {dst}"

    def body():
        result = lab_or_current(lab).run(src_netns, ["ping", "-c", "1", "-W", "1", dst], timeout=10)
        replied = result.returncode == 0
        if replied == expect:
            return True, ""
        if replied:
            return False, "it got a reply"
        return False, _why_no_reply(result.stdout + result.stderr)
    return run_check(what, body, show(src_netns, f"route get {dst}"), SECTIONS["ping"])


def _why_no_reply(output: str) -> str:
    if "Network is unreachable" in output:
        return "no route: Network is unreachable (no address or link up for that network?)"
    if "Destination Host Unreachable" in output:
        return "no reply: nobody answered ARP for that address (Destination Host Unreachable)"
    if "packet loss" in output:
        return "no reply (100% packet loss)"
    last = output.strip().splitlines()[-1:] or ["no output"]
    return f"ping failed: {last[0]}"
