"""What an exercise changed in the lab: a record before, a record after, every difference in one line.

:func:`record` reads what a lab *is* (per namespace: the iptables tables, the sysctls that
decide forwarding and filtering, nf_tables tables of one's own, and from the lab's snapshot the
interfaces, cables, bridge ports, addresses and routes); :func:`compare` lists every
:class:`Change` between two records, each as a sentence a learner understands; an
:class:`Allowed` says which changes an exercise asks for, and :func:`check_changes` turns the
rest into a failed check that names them.

    >>> before = record(lab)
    >>> ...  # the learner's cells
    >>> check_changes(before, Allowed(["iptables host filter FORWARD"]), lab=lab)
    ✘ only filter FORWARD in the host changed — you also changed net.ipv4.conf.all.rp_filter
      in the host (1 -> 0): only veth3's needed changing

Each change has a *subject*, the thing that changed, which an :class:`Allowed` matches with
shell-style patterns (:mod:`fnmatch`):

- ``iptables NS TABLE CHAIN``: a chain's rules or policy; a chain made or deleted;
- ``sysctl NS KEY``: e.g. ``sysctl host net.ipv4.conf.veth3.rp_filter``;
- ``nftables NS TABLE``: an nf_tables table that is not iptables' (``nft add table ...``);
- ``link NS IFNAME``: an interface made, deleted, set up or down, its addresses, its bridge;
- ``cable NS1 NS2``: a veth pair between two namespaces (names sorted), made or removed;
- ``route NS``: a route added or removed by hand (routes the kernel adds for an address follow
  the address, and are not listed);
- ``netns NS``: a namespace made or deleted.

Firewall rules are read with iptables' own ``iptables-save`` (parsed by
:class:`netlab_magic.linux.iptables.Tables`: counters dropped), everything else through netlink
and ``/proc/sys`` inside each namespace: no ``ip`` output is parsed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping

from .checks import CheckResult, beside_the_lab, lab_or_current, run_check
from .linux import nftables
from .linux.iptables import Tables
from .model import HOST, Interface, LabSnapshot, Namespace

__all__ = ["LabRecord", "Change", "Allowed", "record", "compare", "check_changes", "SYSCTLS", "CONF_SYSCTLS"]

#: Per-namespace sysctls recorded (when the kernel has them).
SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv4.icmp_echo_ignore_all",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.ipv4.ip_nonlocal_bind",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.bridge.bridge-nf-call-arptables",
    "net.netfilter.nf_conntrack_tcp_loose",
)
#: Per-interface IPv4 settings recorded for ``all``, ``default`` and every interface.
CONF_SYSCTLS = ("rp_filter", "forwarding", "route_localnet", "proxy_arp", "accept_local",
                "arp_ignore", "arp_filter", "send_redirects", "accept_redirects")
#: The tables iptables-nft keeps in nf_tables, and the trace's own (neither is "one's own").
_NOT_OWN_NFT = {"filter", "nat", "raw", "mangle", "security", "broute", "netlab-trace"}
_HOOKS = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}


@dataclass(frozen=True)
class LabRecord:
    """What the lab was at one moment, as far as an exercise is concerned."""

    snapshot: LabSnapshot
    tables: Mapping[str, Tables]  # namespace -> its iptables (filter, nat, raw, mangle...)
    sysctls: Mapping[str, Mapping[str, str]]  # namespace -> key -> value
    nft_tables: Mapping[str, frozenset[str]] = field(default_factory=dict)  # namespace -> tables of one's own


@dataclass(frozen=True)
class Change:
    """One difference between two records: what changed (``subject``) and the sentence for it."""

    subject: str
    line: str

    def __str__(self) -> str:
        return self.line


# -- reading --------------------------------------------------------------------------------------

@beside_the_lab
def record(lab: Any = None) -> LabRecord:
    """Record the lab as it is now: firewall, sysctls, nf_tables tables, interfaces, cables, routes.

    Runs ``iptables-save`` once per namespace; the rest is read through netlink and ``/proc/sys``.
    """
    lab = lab_or_current(lab)
    snap = lab.snapshot()
    tables: dict[str, Tables] = {}
    sysctls: dict[str, dict[str, str]] = {}
    nft: dict[str, frozenset[str]] = {}
    for ns in snap.namespaces:
        tables[ns.name] = _iptables(lab, ns.name)
        keys = [*SYSCTLS, *(f"net.ipv4.conf.{c}.{k}" for c in ("all", "default", *(i.name for i in ns.interfaces))
                            for k in CONF_SYSCTLS)]
        with lab.entered(ns.name):
            sysctls[ns.name] = _read_sysctls(keys)
            nft[ns.name] = _own_nft_tables()
    return LabRecord(snap, tables, sysctls, nft)


def _iptables(lab: Any, netns: str) -> Tables:
    try:
        result = lab.run(netns, ["iptables-save"], timeout=20)
    except FileNotFoundError:
        return Tables()
    return Tables.parse(result.stdout if result.returncode == 0 else "")


def _read_sysctls(keys: Iterable[str]) -> dict[str, str]:
    """The values of ``keys`` in the namespace the calling thread is in (missing ones left out)."""
    values = {}
    for key in keys:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                values[key] = f.read().strip()
        except OSError:
            continue
    return values


def _own_nft_tables() -> frozenset[str]:
    """``nft list tables`` of the calling thread's namespace, less iptables' and the trace's tables."""
    try:
        with nftables.Nft() as nft:
            names = {f"{family} {name}" for family, number in (("ip", nftables.NFPROTO_IPV4),
                                                              ("inet", nftables.NFPROTO_INET),
                                                              ("bridge", nftables.NFPROTO_BRIDGE))
                     for name in nft.tables(number) if name not in _NOT_OWN_NFT}
    except OSError:
        return frozenset()
    return frozenset(names)


# -- comparing ------------------------------------------------------------------------------------

def compare(before: LabRecord, after: LabRecord) -> list[Change]:
    """Every change from ``before`` to ``after``, one :class:`Change` each, in a stable order."""
    changes: list[Change] = []
    old, new = set(before.snapshot.names), set(after.snapshot.names)
    changes += [Change(f"netns {n}", f"a new namespace {n}") for n in sorted(new - old)]
    changes += [Change(f"netns {n}", f"namespace {n} is gone") for n in sorted(old - new)]
    changes += _cables(before.snapshot, after.snapshot)
    for name in [n for n in after.snapshot.names if n in old]:
        changes += _interfaces(before.snapshot[name], after.snapshot[name])
        changes += _routes(before.snapshot[name], after.snapshot[name])
        changes += _sysctls(name, before.sysctls.get(name, {}), after.sysctls.get(name, {}))
        changes += _firewall(name, before.tables.get(name, Tables()), after.tables.get(name, Tables()))
        changes += _nft(name, before.nft_tables.get(name, frozenset()), after.nft_tables.get(name, frozenset()))
    return changes


def _in(netns: str) -> str:
    return "in the host" if netns == HOST else f"in {netns}"


def _cable_ends(snap: LabSnapshot) -> dict[frozenset[tuple[str, str]], tuple[str, str]]:
    """Each veth pair as its two ends {(netns, ifname), ...} -> the namespaces it joins (sorted)."""
    cables = {}
    for ns in snap.namespaces:
        for i in ns.interfaces:
            if i.kind == "veth" and i.peer is not None:
                far = (i.peer.netns or "outside the lab", i.peer.ifname or "?")
                cables[frozenset({(ns.name, i.name), far})] = tuple(sorted((ns.name, far[0])))
    return cables


def _cables(before: LabSnapshot, after: LabSnapshot) -> list[Change]:
    old, new = _cable_ends(before), _cable_ends(after)
    out = []
    for ends, joins in sorted(new.items(), key=lambda kv: sorted(kv[0])):
        if ends not in old:
            out.append(Change(f"cable {' '.join(joins)}", _cable_line("a new cable (veth pair) joins", ends, joins)))
    for ends, joins in sorted(old.items(), key=lambda kv: sorted(kv[0])):
        if ends not in new:
            out.append(Change(f"cable {' '.join(joins)}", _cable_line("the cable is gone that joined", ends, joins)))
    return out


def _cable_line(what: str, ends: frozenset[tuple[str, str]], joins: tuple[str, str]) -> str:
    named = ", ".join(f"{ifname} {_in(netns)}" for netns, ifname in sorted(ends))
    if joins[0] == joins[1]:
        return f"{what} two interfaces {_in(joins[0])} ({named})"
    return f"{what} {joins[0]} and {joins[1]} ({named})"


def _v4(iface: Interface) -> list[str]:
    """Addresses that a learner sets (IPv6 link-local ones come and go with the link)."""
    return [a for a in iface.addresses if not ipaddress.ip_interface(a).is_link_local]


def _interfaces(before: Namespace, after: Namespace) -> list[Change]:
    old = {i.name: i for i in before.interfaces}
    new = {i.name: i for i in after.interfaces}
    out = []
    for name, i in new.items():
        subject, where = f"link {after.name} {name}", f"{name} {_in(after.name)}"
        if name not in old:
            if i.kind != "veth":  # a veth's birth is its cable's
                out.append(Change(subject, f"a new {i.kind} {where}"))
            continue
        was = old[name]
        if was.kind != i.kind:
            out.append(Change(subject, f"{where} is now a {i.kind} (was a {was.kind})"))
        if was.admin_up != i.admin_up:
            out.append(Change(subject, f"{where} was set {'up' if i.admin_up else 'down'}"))
        if was.master != i.master:
            out.append(Change(subject, f"{where} joined {i.master}" if i.master and not was.master else
                              f"{where} left {was.master}" if not i.master else
                              f"{where} moved from {was.master} to {i.master}"))
        if was.mtu != i.mtu:
            out.append(Change(subject, f"{where}: MTU {was.mtu} -> {i.mtu}"))
        out += [Change(subject, f"{where}: new address {a}") for a in _v4(i) if a not in was.addresses]
        out += [Change(subject, f"{where}: address {a} removed") for a in _v4(was) if a not in i.addresses]
    out += [Change(f"link {after.name} {name}", f"{name} {_in(after.name)} is gone")
            for name, i in old.items() if name not in new and i.kind != "veth"]
    return out


def _routes(before: Namespace, after: Namespace) -> list[Change]:
    def by_hand(ns: Namespace) -> list[str]:
        return [str(r) for r in ns.routes if r.proto != "kernel"]
    old, new = by_hand(before), by_hand(after)
    where = _in(after.name)
    return ([Change(f"route {after.name}", f"a new route {where}: {r}") for r in new if r not in old]
            + [Change(f"route {after.name}", f"a route removed {where}: {r}") for r in old if r not in new])


def _sysctls(netns: str, before: Mapping[str, str], after: Mapping[str, str]) -> list[Change]:
    changed = {key: value for key, value in after.items() if key in before and before[key] != value}
    forward = changed.get("net.ipv4.ip_forward")
    if forward is not None:  # the kernel sets these with it (devinet.c, inet_forward_change)
        changed = {key: value for key, value in changed.items() if not (
            key.startswith("net.ipv4.conf.") and key.endswith(".forwarding") and value == forward
            or key == "net.ipv4.conf.all.accept_redirects" and value == str(1 - int(forward)))}
    return [Change(f"sysctl {netns} {key}", f"{key} {_in(netns)} changed {before[key]} -> {value}")
            for key, value in changed.items()]


def _firewall(netns: str, before: Tables, after: Tables) -> list[Change]:
    out = []
    for table in sorted(set(before.chains) | set(after.chains)):
        old, new = before.chains.get(table, {}), after.chains.get(table, {})
        for chain in sorted(set(old) | set(new), key=lambda c: (c not in _HOOKS, c)):
            subject = f"iptables {netns} {table} {chain}"
            where = f"{table} {chain}" + ("" if netns == HOST else f" (in {netns})")
            if chain not in _HOOKS and (chain in old) != (chain in new):
                out.append(Change(subject, f"a new chain of your own, {where}" if chain in new
                                  else f"chain {where} was deleted"))
            p_old = before.policies.get((table, chain), "ACCEPT")
            p_new = after.policies.get((table, chain), "ACCEPT")
            if p_old != p_new:
                out.append(Change(subject, f"{where}: policy {p_old} -> {p_new}"))
            r_old, r_new = old.get(chain, []), new.get(chain, [])
            added, removed = _multiset_minus(r_new, r_old), _multiset_minus(r_old, r_new)
            out += [Change(subject, f"{where}: rule added `-A {chain} {r}`") for r in added]
            out += [Change(subject, f"{where}: rule deleted `-A {chain} {r}`") for r in removed]
            if not added and not removed and r_old != r_new:
                out.append(Change(subject, f"{where}: its rules were reordered"))
    return out


def _multiset_minus(a: list[str], b: list[str]) -> list[str]:
    left = list(b)
    out = []
    for item in a:
        if item in left:
            left.remove(item)
        else:
            out.append(item)
    return out


def _nft(netns: str, before: frozenset[str], after: frozenset[str]) -> list[Change]:
    return ([Change(f"nftables {netns} {t.split()[1]}", f"a new nf_tables table {_in(netns)}: {t}")
             for t in sorted(after - before)]
            + [Change(f"nftables {netns} {t.split()[1]}", f"nf_tables table {t} {_in(netns)} was deleted")
               for t in sorted(before - after)])


# -- judging --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Allowed:
    """What an exercise lets the learner change: patterns over :attr:`Change.subject`.

    ``why`` gives, for things the exercise keeps (patterns too), the reason said when they
    changed anyway (``{"sysctl host net.ipv4.conf.all.*": "only veth3's needed changing"}``).
    ``task`` says in a few words what may change ("filter FORWARD in the host"): the check's
    sentence.
    """

    patterns: tuple[str, ...] = ()
    why: Mapping[str, str] = field(default_factory=dict)
    task: str = ""

    def __init__(self, patterns: Iterable[str] = (), why: Mapping[str, str] | None = None,
                 task: str = "") -> None:
        object.__setattr__(self, "patterns", tuple(patterns))
        object.__setattr__(self, "why", dict(why or {}))
        object.__setattr__(self, "task", task)

    def allows(self, change: Change) -> bool:
        """True if the exercise asks for (or lets pass) this change."""
        return any(fnmatchcase(change.subject, p) for p in self.patterns)

    def refused(self, changes: Iterable[Change]) -> list[str]:
        """The changes not allowed, each as one line with the reason (when the exercise gave one)."""
        out = []
        for c in changes:
            if self.allows(c):
                continue
            reason = next((why for p, why in self.why.items() if fnmatchcase(c.subject, p)), "")
            out.append(f"{c.line}: {reason}" if reason else c.line)
        return out


def check_changes(before: LabRecord, allowed: Allowed, *, lab: Any = None,
                  after: LabRecord | None = None) -> CheckResult:
    """A check that nothing but what ``allowed`` lets change has changed since ``before``.

    When it fails, its detail names the first change that was not asked for (and how many more).
    """
    what = f"only {allowed.task} changed" if allowed.task else "nothing changed that the exercise keeps"

    def body():
        now = after if after is not None else record(lab)
        refused = allowed.refused(compare(before, now))
        if not refused:
            return True, ""
        more = f" (and {len(refused) - 1} more change{'s' if len(refused) > 2 else ''} not asked for)" \
            if len(refused) > 1 else ""
        return False, f"you also changed: {refused[0]}{more}"
    return run_check(what, body)

