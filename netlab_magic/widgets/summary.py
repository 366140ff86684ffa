"""The widgets in plain text: what a notebook shows where JavaScript does not run.

GitHub, nbviewer, ``nbconvert --to markdown``, a terminal, an untrusted notebook: there the
widgets' outputs fall back on this text (and a static picture). Pure functions of the data the
widgets already hold, IPv6 link-local addresses left out (they are random).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .tooltips import display_state


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def topology_head(snapshot: Mapping[str, Any]) -> str:
    """``3 namespaces, 2 veth pairs, 1 bridge``."""
    namespaces = list(snapshot.get("namespaces") or ())
    ifs = [(ns["name"], i) for ns in namespaces for i in ns.get("interfaces") or ()]
    pairs = {frozenset({(ns, i["name"]), (i["peer"]["netns"], i["peer"]["ifname"])})
             for ns, i in ifs if i.get("kind") == "veth" and i.get("peer")}
    bridges = sum(1 for _, i in ifs if i.get("kind") == "bridge")
    return (f"{plural(len(namespaces), 'namespace')}, {plural(len(pairs), 'veth pair')}, "
            f"{plural(bridges, 'bridge')}")


def topology_text(snapshot: Mapping[str, Any]) -> str:
    """The lab, one line per interface: state, addresses, bridge, the other end of a veth."""
    namespaces = list(snapshot.get("namespaces") or ())
    lines = [f"netlab topology: {topology_head(snapshot)}"]
    width = max((len(ns["name"]) for ns in namespaces), default=0) + 2
    for ns in namespaces:
        ifaces = list(ns.get("interfaces") or ())
        if not ifaces:
            lines.append(f"{ns['name'] + ':':<{width}}(no interfaces)")
        for k, i in enumerate(ifaces):
            lead = f"{ns['name'] + ':':<{width}}" if k == 0 else " " * width
            lines.append(lead + _iface_line(ns, i))
    return "\n".join(lines)


def _iface_line(ns: Mapping[str, Any], i: Mapping[str, Any]) -> str:
    parts = [i["name"]]
    if i.get("kind") == "bridge":
        parts.append("(bridge)")
    parts.append(display_state(i) + ("" if i.get("admin_up") else " (admin down)"))
    parts += [a for a in i.get("addresses") or () if not a.lower().startswith("fe80:")]
    if i.get("kind") == "bridge":
        ports = [p["name"] for p in ns.get("interfaces") or () if p.get("master") == i["name"]]
        parts.append(f"ports: {', '.join(ports)}" if ports else "no ports")
    elif i.get("master"):
        parts.append(f"port of {i['master']}")
    peer = i.get("peer")
    if peer:
        where = f"{peer.get('netns')}/{peer.get('ifname')}" if peer.get("netns") else "(outside the lab)"
        parts.append(f"<-> {where}")
    return " ".join(parts)


def _human(n: int) -> str:
    if n < 100000:
        return str(n)
    for d, s in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if n >= d:
            return f"{n / d:.0f}{s}" if n >= 10 * d else f"{n / d:.1f}{s}"
    return str(n)


def moved_text(dp: int, db: int) -> str:
    """``+3 pkts, +252 B``: what a row moved since the last cell ran ("" if nothing)."""
    if not (dp or db):
        return ""
    return f"+{_human(dp)} pkt{'' if dp == 1 else 's'}, +{_human(db)} B"


def counters_head(chains: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
    """(rules, rows that moved since the last cell, policies and rules alike, rows in all)."""
    rules = sum(len(c["rules"]) for c in chains)
    rows = [c for c in chains if c.get("policy")] + [r for c in chains for r in c["rules"]]
    moved = sum(1 for r in rows if r.get("dpackets") or r.get("dbytes"))
    return rules, moved, len(rows)


def counters_text(chains: Sequence[Mapping[str, Any]], table: str, where: str | None = None,
                  limit: int = 200) -> str:
    """The table as ``iptables -L -v -x`` would list it, with what moved since the last cell ran."""
    rules, moved, _ = counters_head(chains)
    place = f" in {where}" if where else ""
    if not chains:
        return f"iptables table {table}{place}: empty (no rules yet)"
    lines = [f"iptables table {table}{place}: {plural(len(chains), 'chain')}, {plural(rules, 'rule')}; "
             f"{moved} moved since the last cell ran"]
    shown = 0
    for c in chains:
        if c.get("policy"):
            head = f"Chain {c['name']} (policy {c['policy']} {c['packets']} packets, {c['bytes']} bytes)"
        else:
            head = f"Chain {c['name']} (user chain)"
        delta = moved_text(c.get("dpackets", 0), c.get("dbytes", 0)) if c.get("policy") else ""
        lines.append(head + (f"  {delta}" if delta else ""))
        if c["rules"]:
            lines.append(f"  {'#':>3} {'pkts':>8} {'bytes':>10}  rule")
        for r in c["rules"]:
            if shown >= limit:
                break
            shown += 1
            delta = moved_text(r.get("dpackets", 0), r.get("dbytes", 0))
            lines.append(f"  {r['index']:>3} {r['packets']:>8} {r['bytes']:>10}  {r['spec']}"
                         + (f"  [{delta}]" if delta else ""))
    if shown < rules:
        lines.append(f"  ... {rules - shown} more rules")
    return "\n".join(lines)
