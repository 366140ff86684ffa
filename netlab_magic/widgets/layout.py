"""Where things go: one layout shared by the live widget (SVG) and :func:`draw` (matplotlib).

The host sits in the centre with its bridges inside it; the other namespaces sit on
rings around it, ordered so that namespaces on the same bridge sit side by side.
Coordinates are abstract units, y pointing down (as in SVG). The result is a plain
JSON-ready dict; the browser only draws it.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..model import HOST, LabSnapshot

#: Stroke/fill colour of each operstate; anything else is drawn in ``OTHER_COLOR``.
STATE_COLORS: dict[str, str] = {
    "UP": "#2e9d4a",
    "DOWN": "#c0392b",
    "LOWERLAYERDOWN": "#e08a00",
    "UNKNOWN": "#7f8c8d",
}
OTHER_COLOR = "#8e44ad"

NS_R = 0.42  # namespace node radius
BRIDGE_R = 0.3  # bridge node radius
PORT_R = 0.075  # interface marker radius
RING_GAP = 1.7  # distance between rings
RING_SPACING = 1.55  # distance between neighbours on a ring
CLEARANCE = 0.6  # least distance between a node and a link passing it
DENSE = 24  # above this many namespaces, only the namespace-side labels are shown


def state_color(state: str | None) -> str:
    """The colour the widgets use for an operstate."""
    return STATE_COLORS.get(state or "", OTHER_COLOR)


def _as_dict(snapshot: LabSnapshot | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(snapshot, LabSnapshot):
        return snapshot.to_dict()
    return dict(snapshot)


def _bridge_r(name: str) -> float:
    """A bridge's half-width: wide enough for its name."""
    return max(BRIDGE_R, 0.045 * len(name) + 0.08)


def _natural(name: str) -> list[Any]:
    """Sort key putting c2 before c10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def _ns_id(ns: str) -> str:
    return f"ns:{ns}"


def _br_id(ns: str, br: str) -> str:
    return f"br:{ns}/{br}"


def _port_title(ns: str, i: Mapping[str, Any]) -> str:
    lines = [f"{ns}/{i['name']} ({i.get('kind') or '?'}, index {i.get('index')})"]
    lines.append(f"state {i.get('state')}, admin {'up' if i.get('admin_up') else 'down'}")
    lines.append(f"mtu {i.get('mtu')}" + (f", mac {i['mac']}" if i.get("mac") else ""))
    lines += list(i.get("addresses") or ())
    if i.get("master"):
        lines.append(f"port of bridge {i['master']}")
    peer = i.get("peer")
    if peer:
        lines.append(f"peer {peer.get('netns') or '(outside the lab)'}/{peer.get('ifname') or '?'}")
    return "\n".join(lines)


def _ns_title(ns: Mapping[str, Any]) -> str:
    ifaces = ns.get("interfaces") or ()
    lines = [f"namespace {ns['name']}: {len(ifaces)} interface(s)"]
    for i in ifaces:
        addrs = " ".join(i.get("addresses") or ())
        lines.append(f"  {i['name']} {i.get('state')} {addrs}".rstrip())
    routes = ns.get("routes") or ()
    if routes:
        lines.append("routes:")
        for r in routes:
            parts = [r.get("dst") or "?"]
            if r.get("gateway"):
                parts += ["via", r["gateway"]]
            if r.get("dev"):
                parts += ["dev", r["dev"]]
            lines.append("  " + " ".join(parts))
    return "\n".join(lines)


def _short_lines(i: Mapping[str, Any]) -> list[str]:
    """Name and up to two addresses, IPv6 link-local left to the tooltip."""
    if i.get("kind") == "loopback":
        return [i["name"]]
    addrs = [a for a in (i.get("addresses") or ()) if not a.lower().startswith("fe80:")]
    return [i["name"], *addrs[:2]]


def _label_place(px: float, py: float, ux: float, uy: float) -> dict[str, Any]:
    anchor = "start" if ux > 0.35 else "end" if ux < -0.35 else "middle"
    valign = "top" if uy > 0.35 else "bottom" if uy < -0.35 else "middle"
    return {"lx": px + ux * 0.14, "ly": py + uy * 0.14, "anchor": anchor, "valign": valign}


def _link_label(px: float, py: float, ux: float, uy: float) -> dict[str, Any]:
    """A link end's label: beside the line, on the side the line leans away from."""
    if abs(ux) < 0.5:  # a steep line: text to its left or right
        side = -1.0 if ux > 0 else 1.0
        return {"lx": px + side * 0.1 + ux * 0.25, "ly": py + uy * 0.25,
                "anchor": "start" if side > 0 else "end", "valign": "middle"}
    below = uy < 0  # a rising line: text under it, else above it
    return {"lx": px + ux * 0.12, "ly": py + (0.08 if below else -0.08),
            "anchor": "start" if ux > 0 else "end", "valign": "top" if below else "bottom"}


def _ring_slots(n: int, r0: float) -> list[tuple[float, float]]:
    """``n`` (radius, angle) slots in angle order, zig-zagging over ``K`` rings from ``r0``.

    Slot ``i`` sits at angle ``2*pi*i/n`` on ring ``i % K``, so a straight line from an
    outer slot to the centre passes between the nodes of the inner rings. ``K`` is
    the ring count that keeps the picture smallest.
    """
    if n == 0:
        return []
    best: tuple[float, int, float, int] | None = None
    for k in range(1, min(n, 12) + 1):
        slots = -(-n // k) * k  # whole turns of the zig-zag, so the ends do not collide
        radius = max(r0, slots * max(CLEARANCE, RING_SPACING / k) / (2 * math.pi))
        outer = radius + (k - 1) * RING_GAP
        if best is None or outer < best[0] - 1e-9:
            best = (outer, k, radius, slots)
    _, k, radius, slots = best  # type: ignore[misc]
    return [(radius + (i % k) * RING_GAP, -math.pi / 2 + 2 * math.pi * i / slots) for i in range(n)]


def compute_layout(snapshot: LabSnapshot | Mapping[str, Any]) -> dict[str, Any]:
    """Node, link and interface positions for a snapshot (or its ``to_dict()``)."""
    snap = _as_dict(snapshot)
    namespaces: list[Mapping[str, Any]] = list(snap.get("namespaces") or ())
    names = [ns["name"] for ns in namespaces]
    host = HOST if HOST in names else None
    by_name = {ns["name"]: ns for ns in namespaces}
    ifaces: dict[tuple[str, str], Mapping[str, Any]] = {}
    for ns in namespaces:
        for i in ns.get("interfaces") or ():
            ifaces[(ns["name"], i["name"])] = i

    def end_node(ns: str, i: Mapping[str, Any]) -> str:
        master = i.get("master")
        if master and (ifaces.get((ns, master)) or {}).get("kind") == "bridge":
            return _br_id(ns, master)
        return _ns_id(ns)

    # --- links: veth pairs (deduplicated), stubs for peers outside the lab
    pairs: list[tuple[tuple[str, str], tuple[str, str] | None]] = []
    linked: set[tuple[str, str]] = set()
    for (ns, name), i in ifaces.items():
        if i.get("kind") == "bridge" or (ns, name) in linked:
            continue
        peer = i.get("peer")
        if not peer:
            continue
        other = (peer.get("netns"), peer.get("ifname"))
        if other in ifaces and other not in linked and other != (ns, name):
            pairs.append(((ns, name), other))  # type: ignore[arg-type]
            linked.update({(ns, name), other})  # type: ignore[arg-type]
        elif i.get("kind") == "veth":
            pairs.append(((ns, name), None))
            linked.add((ns, name))

    # --- ring order: group namespaces by what they hang on in the host
    host_bridges = [b["name"] for b in (by_name[host].get("interfaces") or ()) if b.get("kind") == "bridge"] if host else []
    neighbours: dict[str, list[str]] = defaultdict(list)
    anchor: dict[str, str] = {}
    for a, b in pairs:
        if b is None or a[0] == b[0]:
            continue
        for x, y in ((a, b), (b, a)):
            if y[0] == host and x[0] != host:
                anchor.setdefault(x[0], end_node(host, ifaces[y]))
            elif x[0] != host and y[0] != host:
                neighbours[x[0]].append(y[0])
    ring = sorted((n for n in names if n != host), key=_natural)
    group_order = [_br_id(host, b) for b in host_bridges] + ([_ns_id(host)] if host else [])
    order: list[str] = []
    placed: set[str] = set()

    def visit(n: str) -> None:
        stack = [n]
        while stack:
            cur = stack.pop()
            if cur in placed:
                continue
            placed.add(cur)
            order.append(cur)
            stack.extend(sorted(set(neighbours[cur]) - placed, reverse=True))

    for g in group_order:
        for n in ring:
            if anchor.get(n) == g:
                visit(n)
    for n in ring:
        visit(n)

    # --- host and its bridges in the centre
    nodes: dict[str, dict[str, Any]] = {}
    nb = len(host_bridges)
    if host:
        big = max((_bridge_r(b) for b in host_bridges), default=BRIDGE_R)
        rb = 0.0 if nb <= 1 else max(0.6, nb * (2 * big + 0.2) / (2 * math.pi))
        host_r = 0.62 if nb == 0 else (1.0 if nb == 1 else rb + big + 0.45)
        nodes[_ns_id(host)] = {"x": 0.0, "y": 0.0, "r": host_r}
    else:
        rb, host_r = 0.0, 0.0
    r0 = (host_r + 1.9) if host else (0.0 if len(ring) == 1 else max(1.2, len(ring) * RING_SPACING / (2 * math.pi)))
    for n, (radius, ang) in zip(order, _ring_slots(len(order), r0)):
        nodes[_ns_id(n)] = {"x": radius * math.cos(ang), "y": radius * math.sin(ang), "r": NS_R}

    # host bridges: towards the namespaces they serve
    if host and nb:
        angles: list[tuple[float, str]] = []
        for k, b in enumerate(host_bridges):
            bid = _br_id(host, b)
            members = [nodes[_ns_id(n)] for n in order if anchor.get(n) == bid]
            if nb == 1:
                ang = math.pi / 2
            elif members:
                ang = math.atan2(sum(m["y"] for m in members), sum(m["x"] for m in members))
                if abs(sum(m["y"] for m in members)) + abs(sum(m["x"] for m in members)) < 1e-6:
                    ang = 2 * math.pi * k / nb
            else:
                ang = 2 * math.pi * k / nb + math.pi / nb
            angles.append((ang, b))
        angles.sort()
        gap = 2 * math.pi / nb * 0.8
        fixed = [a for a, _ in angles]
        for _ in range(3):  # push apart bridges that would overlap
            for j in range(1, nb):
                if fixed[j] - fixed[j - 1] < gap:
                    fixed[j] = fixed[j - 1] + gap
        for ang, (_, b) in zip(fixed, angles):
            dist = 0.25 if nb == 1 else rb
            nodes[_br_id(host, b)] = {"x": dist * math.cos(ang), "y": dist * math.sin(ang), "r": _bridge_r(b)}

    # bridges in other namespaces: just outside their namespace
    for ns in namespaces:
        if ns["name"] == host:
            continue
        brs = [i["name"] for i in (ns.get("interfaces") or ()) if i.get("kind") == "bridge"]
        c = nodes[_ns_id(ns["name"])]
        out = math.atan2(c["y"], c["x"]) if (c["x"] or c["y"]) else -math.pi / 2
        for k, b in enumerate(brs):
            ang = out + (k - (len(brs) - 1) / 2) * 0.7
            d = NS_R + _bridge_r(b) + 0.35
            nodes[_br_id(ns["name"], b)] = {"x": c["x"] + d * math.cos(ang), "y": c["y"] + d * math.sin(ang), "r": _bridge_r(b)}

    # --- node records
    node_list: list[dict[str, Any]] = []
    for ns in namespaces:
        nid = _ns_id(ns["name"])
        p = nodes[nid]
        node_list.append({
            "id": nid, "kind": "netns", "netns": ns["name"], "name": ns["name"],
            "host": ns["name"] == host, "state": None, **p, "title": _ns_title(ns),
        })
        for i in ns.get("interfaces") or ():
            if i.get("kind") == "bridge":
                bid = _br_id(ns["name"], i["name"])
                node_list.append({
                    "id": bid, "kind": "bridge", "netns": ns["name"], "name": i["name"],
                    "host": False, "state": i.get("state"), **nodes[bid],
                    "title": _port_title(ns["name"], i),
                })

    dense = len(namespaces) > DENSE
    ports: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []

    used: dict[str, list[float]] = defaultdict(list)  # port angles taken on each node

    def port(ns: str, i: Mapping[str, Any], nid: str, ang: float, role: str) -> dict[str, Any]:
        n = nodes[nid]
        used[nid].append(ang)
        if host is not None and nid.startswith(_br_id(host, "")):  # a bridge drawn inside the host:
            used[_ns_id(host)].append(ang)  # its links cross the host's edge there; keep lo & co. off them
        ux, uy = math.cos(ang), math.sin(ang)
        px, py = n["x"] + n["r"] * ux, n["y"] + n["r"] * uy
        show = not dense or (role == "link" and ns != host and not nid.startswith("br:"))
        rec = {
            "id": f"if:{ns}/{i['name']}", "netns": ns, "ifname": i["name"], "kind": i.get("kind"),
            "state": i.get("state"), "admin_up": bool(i.get("admin_up")), "node": nid,
            "x": px, "y": py, "r": PORT_R, "label": show, "lines": _short_lines(i),
            "title": _port_title(ns, i),
            **(_link_label if role == "link" else _label_place)(px, py, ux, uy),
        }
        ports.append(rec)
        return rec

    # links between nodes; parallel links fan out a little
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for k, (a, b) in enumerate(pairs):
        if b is not None:
            na, nb_ = end_node(a[0], ifaces[a]), end_node(b[0], ifaces[b])
            groups[(min(na, nb_), max(na, nb_))].append(k)
    fan: dict[int, float] = {}
    for members in groups.values():
        for j, k in enumerate(members):
            fan[k] = (j - (len(members) - 1) / 2) * 0.35
    lone_count: dict[str, int] = defaultdict(int)

    def outward(nid: str) -> float:
        n = nodes[nid]
        if nid == _ns_id(host or ""):
            return math.pi / 2
        return math.atan2(n["y"], n["x"]) if (n["x"] or n["y"]) else math.pi / 2

    for k, (a, b) in enumerate(pairs):
        ia = ifaces[a]
        na = end_node(a[0], ia)
        if b is None:  # peer outside the lab
            ang = outward(na) + 0.5 * lone_count[na]
            lone_count[na] += 1
            pa = port(a[0], ia, na, ang, "link")
            sx, sy = pa["x"] + 0.5 * math.cos(ang), pa["y"] + 0.5 * math.sin(ang)
            links.append({
                "id": f"link:{a[0]}/{a[1]}", "kind": "stub", "a": pa["id"], "b": None,
                "x1": pa["x"], "y1": pa["y"], "x2": sx, "y2": sy, "mx": sx, "my": sy,
                "state_a": pa["state"], "state_b": None, "state": pa["state"],
            })
            continue
        ib = ifaces[b]
        nb_ = end_node(b[0], ib)
        A, B = nodes[na], nodes[nb_]
        apex = None
        if na == nb_:  # both ends on one node: a small loop outside it
            base = outward(na) + 0.9 * lone_count[na]
            lone_count[na] += 2
            ang_a, ang_b = base - 0.35, base + 0.35
            reach = A["r"] + 0.45
            apex = (A["x"] + reach * math.cos(base), A["y"] + reach * math.sin(base))
        else:
            base = math.atan2(B["y"] - A["y"], B["x"] - A["x"])
            ang_a, ang_b = base + fan[k], base + math.pi - fan[k]
        pa = port(a[0], ia, na, ang_a, "link")
        pb = port(b[0], ib, nb_, ang_b, "link")
        sa, sb = pa["state"], pb["state"]
        mx, my = apex or ((pa["x"] + pb["x"]) / 2, (pa["y"] + pb["y"]) / 2)
        links.append({
            "id": f"link:{a[0]}/{a[1]}", "kind": "veth", "a": pa["id"], "b": pb["id"],
            "x1": pa["x"], "y1": pa["y"], "x2": pb["x"], "y2": pb["y"], "mx": mx, "my": my,
            "state_a": sa, "state_b": sb, "state": sa if sa == sb else "MIXED",
        })

    # bridges belong to their namespace (dashed line, unless drawn inside it)
    for node in node_list:
        if node["kind"] == "bridge" and node["netns"] != host:
            c = nodes[_ns_id(node["netns"])]
            links.append({
                "id": f"member:{node['netns']}/{node['name']}", "kind": "member",
                "a": _ns_id(node["netns"]), "b": node["id"],
                "x1": c["x"], "y1": c["y"], "x2": node["x"], "y2": node["y"],
                "mx": (c["x"] + node["x"]) / 2, "my": (c["y"] + node["y"]) / 2,
                "state_a": None, "state_b": node["state"], "state": node["state"],
            })

    # everything else (lo, dummies, unpaired veths): markers in the widest free gap
    def free_angle(nid: str) -> float:
        taken = used[nid]
        if not taken:
            return outward(nid)
        best, best_d = 0.0, -1.0
        for k in range(72):
            a = outward(nid) + math.pi * (k % 2 * 2 - 1) * (k // 2) / 36
            d = min(abs((a - t + math.pi) % (2 * math.pi) - math.pi) for t in taken)
            if d > best_d + 1e-9:
                best, best_d = a, d
        return best

    for (ns, name), i in ifaces.items():
        if (ns, name) in linked or i.get("kind") == "bridge":
            continue
        nid = end_node(ns, i)
        port(ns, i, nid, free_angle(nid), "lone")

    if nodes:
        xs0 = [n["x"] - n["r"] for n in nodes.values()]
        xs1 = [n["x"] + n["r"] for n in nodes.values()]
        ys0 = [n["y"] - n["r"] for n in nodes.values()]
        ys1 = [n["y"] + n["r"] for n in nodes.values()]
        bounds = [min(xs0) - 1.5, min(ys0) - 0.9, max(xs1) + 1.5, max(ys1) + 0.9]
    else:
        bounds = [-1.0, -1.0, 1.0, 1.0]
    return {
        "nodes": node_list, "links": links, "ports": ports, "bounds": bounds,
        "dense": dense, "colors": {**STATE_COLORS, "OTHER": OTHER_COLOR},
    }
