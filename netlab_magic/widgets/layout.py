"""Where things go: one layout shared by the live widget (SVG) and :func:`draw` (matplotlib).

The host sits in the centre with its bridges inside it; the other namespaces sit on
rings around it (ellipses, stretched to suit a landscape box), ordered so that namespaces on
the same bridge sit side by side. Coordinates are abstract units, y pointing down (as in SVG).
Text has a size in units too, and every label comes with its box: a label that would overlap
another, or a namespace, is left out (its details stay in the tooltip). The result is a plain
JSON-ready dict; the browser only scales and draws it.

Scale: ``scale.min`` is the least number of pixels per unit at which every label drawn is at
least :data:`MIN_PX` pixels high, ``scale.max`` the most before text passes :data:`MAX_PX`;
``scale.fit`` fits ``bounds`` into ``box`` (the default box of the live view). The browser
fits its own box, within ``[min, max]`` (scrolling rather than shrinking text below 12 px).
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..display import STATE_COLOURS
from ..model import HOST, LabSnapshot

#: Stroke/fill colour of each operstate, the same as ``%netlab status`` uses (one table, in
#: :mod:`netlab_magic.display`); anything else is drawn in ``OTHER_COLOR``.
STATE_COLORS: dict[str, str] = STATE_COLOURS
OTHER_COLOR = "#8e44ad"

NS_R = 0.42  # namespace node radius
PORT_R = 0.075  # interface marker radius
RING_GAP = 1.7  # distance between rings
RING_SPACING = 1.55  # distance between neighbours on a ring
CLEARANCE = 0.7  # least distance between a node and a link passing it
HOST_GAP = 1.75  # from the host's edge to the first ring
DENSE_PORTS = 24  # above this many interfaces (lo and bridges aside) interface labels are left out
BOX = (900, 520)  # the box (px) the picture is fitted to unless the browser says otherwise
MIN_PX = 12  # no text smaller than this once fitted
MAX_PX = 16  # when enlarging a small lab, text stops growing here
DENSE_PX = 13  # namespace names of a dense lab, at the fitted scale of BOX
#: Text sizes in units (a sparse lab): interface labels, namespace names, the host, bridges.
FONT = {"port": 0.155, "ns": 0.2, "host": 0.23, "bridge": 0.155}
CHAR_W = 0.6  # average character width, in em (system-ui; generous for digits)
LINE_H = 1.22  # line height, in em
ASCENT, DESCENT = 0.8, 0.24  # of a line, in em


def state_color(state: str | None) -> str:
    """The colour the widgets use for an operstate."""
    return STATE_COLORS.get(state or "", OTHER_COLOR)


def display_state(i: Mapping[str, Any]) -> str:
    """The state to draw: the operstate, except that ``UNKNOWN`` is what ``lo`` (and dummies,
    which have no carrier to report) always say: administratively up, such a device works."""
    state = i.get("state") or "UNKNOWN"
    if state == "UNKNOWN":
        return "UP" if i.get("admin_up") else "DOWN"
    return state


def snapshot_dict(snapshot: LabSnapshot | Mapping[str, Any]) -> dict[str, Any]:
    """A :class:`LabSnapshot` or its ``to_dict()`` as the plain dict the layout reads."""
    if isinstance(snapshot, LabSnapshot):
        return snapshot.to_dict()
    return dict(snapshot)


def _natural(name: str) -> list[Any]:
    """Sort key putting c2 before c10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


def _ns_id(ns: str) -> str:
    return f"ns:{ns}"


def _br_id(ns: str, br: str) -> str:
    return f"br:{ns}/{br}"


def _v4_first(addrs: Sequence[str]) -> list[str]:
    """Addresses worth printing: IPv6 link-local ones are left to the tooltip."""
    return [a for a in addrs if not a.lower().startswith("fe80:")]


def _port_title(ns: str, i: Mapping[str, Any]) -> str:
    lines = [f"{ns}/{i['name']} ({i.get('kind') or '?'}, index {i.get('index')})"]
    state = i.get("state")
    shown = display_state(i)
    if state != shown:
        lines.append(f"state {shown} (operstate {state}: {i.get('kind') or 'this device'} reports no carrier), "
                     f"admin {'up' if i.get('admin_up') else 'down'}")
    else:
        lines.append(f"state {state}, admin {'up' if i.get('admin_up') else 'down'}")
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
        lines.append(f"  {i['name']} {display_state(i)} {addrs}".rstrip())
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
    return [i["name"], *_v4_first(i.get("addresses") or ())[:2]]


# ------------------------------------------------------------------ text boxes


def text_size(lines: Sequence[str], size: float, bold: bool = False) -> tuple[float, float]:
    """Width and height (units) of ``lines`` of text of ``size`` units."""
    cw = CHAR_W * (1.06 if bold else 1.0)
    w = max((len(s) for s in lines), default=0) * cw * size
    h = (max(len(lines), 1) - 1) * LINE_H * size + (ASCENT + DESCENT) * size
    return w, h


def _text(lines: Sequence[str], size: float, cx: float, cy: float, anchor: str = "middle",
          bold: bool = False) -> dict[str, Any]:
    """A text block centred on (cx, cy): where each line's baseline goes, and its box."""
    w, h = text_size(lines, size, bold)
    x0, y0 = cx - w / 2, cy - h / 2
    x = {"start": x0, "end": x0 + w}.get(anchor, cx)
    return {"lines": list(lines), "size": size, "x": x, "y": y0 + ASCENT * size, "dy": LINE_H * size,
            "anchor": anchor, "bold": bold, "box": [x0, y0, x0 + w, y0 + h]}


def _beside(lines: Sequence[str], size: float, px: float, py: float, nx: float, ny: float,
            gap: float) -> dict[str, Any]:
    """A text block just off point (px, py) in direction (nx, ny), aligned towards the point."""
    w, h = text_size(lines, size)
    reach = abs(nx) * w / 2 + abs(ny) * h / 2 + gap
    anchor = "start" if nx > 0.3 else "end" if nx < -0.3 else "middle"
    return _text(lines, size, px + nx * reach, py + ny * reach, anchor)


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _hits_circle(box: Sequence[float], cx: float, cy: float, r: float) -> bool:
    qx, qy = min(max(cx, box[0]), box[2]), min(max(cy, box[1]), box[3])
    return (qx - cx) ** 2 + (qy - cy) ** 2 < r * r


def _hits_segment(box: Sequence[float], x1: float, y1: float, x2: float, y2: float) -> bool:
    """Whether the segment crosses the box (Liang-Barsky clipping)."""
    dx, dy = x2 - x1, y2 - y1
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x1 - box[0]), (dx, box[2] - x1), (-dy, y1 - box[1]), (dy, box[3] - y1)):
        if abs(p) < 1e-12:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return False
    return True


class _Space:
    """Boxes, circles and lines already drawn, so that labels go where nothing is."""

    def __init__(self) -> None:
        self.boxes: list[Sequence[float]] = []
        self.circles: list[tuple[float, float, float]] = []
        self.segments: list[tuple[float, float, float, float]] = []

    def free(self, box: Sequence[float]) -> bool:
        return (not any(_overlap(box, b) for b in self.boxes)
                and not any(_hits_circle(box, *c) for c in self.circles)
                and not any(_hits_segment(box, *s) for s in self.segments))

    def take(self, box: Sequence[float]) -> None:
        self.boxes.append(box)


# ------------------------------------------------------------------ rings


@lru_cache(maxsize=64)
def _ellipse(ax: float) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """Perimeter of the ellipse with semi-axes (ax, 1), and a table to place points at equal arc."""
    steps = 720
    thetas, arcs = [0.0], [0.0]
    px, py = ax, 0.0
    for k in range(1, steps + 1):
        t = 2 * math.pi * k / steps
        x, y = ax * math.cos(t), math.sin(t)
        arcs.append(arcs[-1] + math.hypot(x - px, y - py))
        thetas.append(t)
        px, py = x, y
    return arcs[-1], tuple(thetas), tuple(arcs)


def _at_fraction(ax: float, frac: float) -> float:
    """The parameter angle of the point a fraction ``frac`` of the way round the ellipse."""
    per, thetas, arcs = _ellipse(ax)
    s = (frac % 1.0) * per
    k = min(max(bisect.bisect_left(arcs, s), 1), len(arcs) - 1)
    a0, a1 = arcs[k - 1], arcs[k]
    return thetas[k - 1] + (thetas[k] - thetas[k - 1]) * ((s - a0) / (a1 - a0) if a1 > a0 else 0.0)


def _ring_slots(n: int, r0: float, ax: float = 1.0, phase: float = 0.0) -> list[tuple[float, float]]:
    """``n`` positions around the centre, zig-zagging over ``K`` concentric ellipses from ``r0``.

    Slot ``i`` sits a fraction ``i/n`` round, on ring ``i % K``, so a straight line from an
    outer slot to the centre passes between the nodes of the inner rings. ``K`` is the ring
    count that keeps the picture smallest. The ellipses have semi-axes (ax*r, r).
    """
    if n == 0:
        return []
    per = _ellipse(ax)[0]
    best: tuple[float, int, float, int] | None = None
    for k in range(1, min(n, 12) + 1):
        slots = -(-n // k) * k  # whole turns of the zig-zag, so the ends do not collide
        radius = max(r0, slots * max(CLEARANCE, RING_SPACING / k) / per)
        outer = radius + (k - 1) * RING_GAP
        if best is None or outer < best[0] - 1e-9:
            best = (outer, k, radius, slots)
    _, k, radius, slots = best  # type: ignore[misc]
    out = []
    for i in range(n):
        rad = radius + (i % k) * RING_GAP
        t = _at_fraction(ax, phase + i / slots)
        out.append((rad * ax * math.cos(t), rad * math.sin(t)))
    return out


# ------------------------------------------------------------------ the layout


def compute_layout(snapshot: LabSnapshot | Mapping[str, Any],
                   box: tuple[float, float] = BOX) -> dict[str, Any]:
    """Node, link, interface and label positions for a snapshot (or its ``to_dict()``).

    ``box`` is the (width, height) in pixels the picture should fit: it chooses the ring's
    shape, and the text size of a dense lab.
    """
    snap = snapshot_dict(snapshot)
    namespaces: list[Mapping[str, Any]] = list(snap.get("namespaces") or ())
    names = [ns["name"] for ns in namespaces]
    host = HOST if HOST in names else None
    by_name = {ns["name"]: ns for ns in namespaces}
    ifaces: dict[tuple[str, str], Mapping[str, Any]] = {}
    for ns in namespaces:
        for i in ns.get("interfaces") or ():
            ifaces[(ns["name"], i["name"])] = i
    n_ports = sum(1 for i in ifaces.values() if i.get("kind") not in ("bridge", "loopback"))
    dense = n_ports > DENSE_PORTS

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
    host_bridges = [b for b in (by_name[host].get("interfaces") or ()) if b.get("kind") == "bridge"] if host else []
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
    group_order = [_br_id(host, b["name"]) for b in host_bridges] + ([_ns_id(host)] if host else [])
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

    def build(fonts: dict[str, float]) -> dict[str, Any]:
        geo = _place(namespaces, host, host_bridges, order, anchor, fonts, box)
        nodes: dict[str, dict[str, Any]] = geo["nodes"]

        # --- node records, with their names
        space = _Space()
        node_list: list[dict[str, Any]] = []
        for ns in namespaces:
            nid = _ns_id(ns["name"])
            p = nodes[nid]
            is_host = ns["name"] == host
            size = fonts["host"] if is_host else fonts["ns"]
            cy = p["y"] - p["r"] + 0.28 + size * 0.3 if is_host else p["y"]
            text = _text([ns["name"]], size, p["x"], cy, bold=True)
            node_list.append({
                "id": nid, "kind": "netns", "netns": ns["name"], "name": ns["name"],
                "host": is_host, "state": None, **p, "title": _ns_title(ns), "text": text,
            })
            space.take(text["box"])
            if not is_host:
                space.circles.append((p["x"], p["y"], p["r"]))
            for i in ns.get("interfaces") or ():
                if i.get("kind") == "bridge":
                    bid = _br_id(ns["name"], i["name"])
                    b = nodes[bid]
                    text = _text(b["lines"], fonts["bridge"], b["x"], b["y"], bold=True)
                    node_list.append({
                        "id": bid, "kind": "bridge", "netns": ns["name"], "name": i["name"],
                        "host": False, "state": display_state(i), "operstate": i.get("state"),
                        "x": b["x"], "y": b["y"], "r": b["r"], "w": b["w"], "h": b["h"],
                        "title": _port_title(ns["name"], i), "text": text,
                        "addresses": _v4_first(i.get("addresses") or ()),
                    })
                    space.take([b["x"] - b["w"], b["y"] - b["h"], b["x"] + b["w"], b["y"] + b["h"]])

        ports: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        used: dict[str, list[float]] = defaultdict(list)  # port angles taken on each node
        labels: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []  # (priority, port, candidates)

        def edge(nid: str, ux: float, uy: float) -> tuple[float, float]:
            n = nodes[nid]
            if "w" in n:  # a bridge: a rectangle
                t = min(n["w"] / abs(ux) if abs(ux) > 1e-9 else math.inf,
                        n["h"] / abs(uy) if abs(uy) > 1e-9 else math.inf)
                return n["x"] + t * ux, n["y"] + t * uy
            return n["x"] + n["r"] * ux, n["y"] + n["r"] * uy

        def port(ns: str, i: Mapping[str, Any], nid: str, ang: float) -> dict[str, Any]:
            used[nid].append(ang)
            if host is not None and nid.startswith(_br_id(host, "")):  # a bridge drawn inside the host:
                used[_ns_id(host)].append(ang)  # its links cross the host's edge there; keep lo & co. off them
            ux, uy = math.cos(ang), math.sin(ang)
            px, py = edge(nid, ux, uy)
            rec = {
                "id": f"if:{ns}/{i['name']}", "netns": ns, "ifname": i["name"], "kind": i.get("kind"),
                "state": display_state(i), "operstate": i.get("state"), "admin_up": bool(i.get("admin_up")),
                "node": nid, "x": px, "y": py, "r": PORT_R, "label": False, "lines": _short_lines(i),
                "title": _port_title(ns, i), "text": None,
            }
            ports.append(rec)
            space.take([px - PORT_R, py - PORT_R, px + PORT_R, py + PORT_R])
            return rec

        def link_labels(p: dict[str, Any], tx: float, ty: float, priority: int) -> None:
            """Candidates beside the line from port ``p`` towards (tx, ty)."""
            if not fonts["port"]:
                return
            dx, dy = tx - p["x"], ty - p["y"]
            d = math.hypot(dx, dy) or 1.0
            ux, uy = dx / d, dy / d
            size = fonts["port"]
            cands = []
            for lines in (p["lines"], p["lines"][:1]):
                for t in (0.2, 0.45):
                    if t * d > d / 2 + 0.1:
                        continue
                    ax, ay = p["x"] + ux * t * d, p["y"] + uy * t * d
                    for side in (1, -1):
                        nx, ny = -uy * side, ux * side
                        if side == 1 and ny < 0 and abs(ny) > 0.2:  # prefer the side below/right first
                            nx, ny = -nx, -ny
                        elif side == -1 and ny > 0 and abs(ny) > 0.2:
                            nx, ny = -nx, -ny
                        cands.append(_beside(lines, size, ax, ay, nx, ny, 0.06))
            labels.append((priority, p, cands))

        def lone_labels(p: dict[str, Any], ux: float, uy: float) -> None:
            if not fonts["port"]:
                return
            size = fonts["port"]
            cands = [_beside(lines, size, p["x"], p["y"], ux, uy, PORT_R + 0.05)
                     for lines in (p["lines"], p["lines"][:1])]
            labels.append((3, p, cands))

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
                pa = port(a[0], ia, na, ang)
                sx, sy = pa["x"] + 0.5 * math.cos(ang), pa["y"] + 0.5 * math.sin(ang)
                links.append({
                    "id": f"link:{a[0]}/{a[1]}", "kind": "stub", "a": pa["id"], "b": None,
                    "x1": pa["x"], "y1": pa["y"], "x2": sx, "y2": sy, "mx": sx, "my": sy,
                    "state_a": pa["state"], "state_b": None, "state": pa["state"],
                })
                link_labels(pa, sx, sy, 1)
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
            pa = port(a[0], ia, na, ang_a)
            pb = port(b[0], ib, nb_, ang_b)
            sa, sb = pa["state"], pb["state"]
            mx, my = apex or ((pa["x"] + pb["x"]) / 2, (pa["y"] + pb["y"]) / 2)
            links.append({
                "id": f"link:{a[0]}/{a[1]}", "kind": "veth", "a": pa["id"], "b": pb["id"],
                "x1": pa["x"], "y1": pa["y"], "x2": pb["x"], "y2": pb["y"], "mx": mx, "my": my,
                "state_a": sa, "state_b": sb, "state": sa if sa == sb else "MIXED",
            })
            for p, q in ((pa, pb), (pb, pa)):  # the far namespace's end first: it is what a learner built
                tx, ty = (mx, my) if apex else (q["x"], q["y"])
                link_labels(p, tx, ty, 2 if p["netns"] == host else 1)

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
            out = outward(nid)
            if not taken:
                return out
            best, best_d = 0.0, -1.0
            for k in range(72):
                a = out + math.pi * (k % 2 * 2 - 1) * (k // 2) / 36
                d = min(abs((a - t + math.pi) % (2 * math.pi) - math.pi) for t in taken)
                if d > best_d + 1e-9:
                    best, best_d = a, d
            return best

        for (ns, name), i in ifaces.items():
            if (ns, name) in linked or i.get("kind") == "bridge":
                continue
            nid = end_node(ns, i)
            ang = free_angle(nid)
            p = port(ns, i, nid, ang)
            lone_labels(p, math.cos(ang), math.sin(ang))

        # --- labels, most useful first; one that fits nowhere stays in the tooltip
        for lk in links:
            if lk["kind"] == "member":
                space.segments.append((lk["x1"], lk["y1"], lk["x2"], lk["y2"]))
            else:
                space.segments.append((lk["x1"], lk["y1"], lk["mx"], lk["my"]))
                space.segments.append((lk["mx"], lk["my"], lk["x2"], lk["y2"]))
        for _, p, cands in sorted(labels, key=lambda x: x[0]):
            for c in cands:
                if space.free(c["box"]):
                    p["text"], p["label"] = c, True
                    space.take(c["box"])
                    break

        # --- bounds: everything drawn, and a small margin
        boxes = [[n["x"] - n.get("w", n["r"]), n["y"] - n.get("h", n["r"]),
                  n["x"] + n.get("w", n["r"]), n["y"] + n.get("h", n["r"])] for n in nodes.values()]
        boxes += [n["text"]["box"] for n in node_list]
        boxes += [p["text"]["box"] for p in ports if p["text"]]
        boxes += [[min(lk["x2"], lk["mx"]), min(lk["y2"], lk["my"]), max(lk["x2"], lk["mx"]), max(lk["y2"], lk["my"])]
                  for lk in links]
        if boxes:
            pad = 0.2
            bounds = [min(b[0] for b in boxes) - pad, min(b[1] for b in boxes) - pad,
                      max(b[2] for b in boxes) + pad, max(b[3] for b in boxes) + pad]
        else:
            bounds = [-1.0, -1.0, 1.0, 1.0]
        shown = [n["text"]["size"] for n in node_list] + [p["text"]["size"] for p in ports if p["text"]]
        smallest = min(shown, default=FONT["ns"])
        w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
        lo, hi = MIN_PX / smallest, MAX_PX / smallest
        return {
            "nodes": node_list, "links": links, "ports": ports, "bounds": bounds,
            "dense": dense, "colors": {**STATE_COLORS, "OTHER": OTHER_COLOR}, "fonts": fonts,
            "scale": {"min": lo, "max": hi, "fit": fit_scale(bounds, box, lo, hi)},
            "box": list(box),
            "counts": {"namespaces": len(namespaces), "veth": sum(1 for lk in links if lk["kind"] == "veth"),
                       "bridges": sum(1 for n in node_list if n["kind"] == "bridge"), "ports": n_ports,
                       "labels": sum(1 for p in ports if p["text"])},
        }

    # text as large as the box allows: at least MIN_PX (DENSE_PX for the names of a dense lab)
    # once fitted; larger text takes more room, so twice at most
    fonts = dict(FONT)
    if dense:
        fonts["port"] = 0.0
    lay = build(fonts)
    for _ in range(2):
        x0, y0, x1, y1 = lay["bounds"]
        fit = min(box[0] / (x1 - x0), box[1] / (y1 - y0))
        smallest = min(v for v in fonts.values() if v)
        need = (DENSE_PX if dense else MIN_PX) / fit
        if need <= smallest * 1.02:
            break
        fonts = {k: v * need / smallest for k, v in fonts.items()}
        lay = build(fonts)
    return lay


def fit_scale(bounds: Sequence[float], box: Sequence[float], lo: float, hi: float) -> float:
    """Pixels per unit: ``bounds`` fitted into ``box`` (both ways), kept within ``[lo, hi]``."""
    w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
    s = min(box[0] / w if w > 0 else hi, box[1] / h if h > 0 else hi)
    return max(lo, min(hi, s))


def _bridge_box(b: Mapping[str, Any], size: float) -> dict[str, Any]:
    lines = [b["name"], *_v4_first(b.get("addresses") or ())[:2]]
    w, h = text_size(lines, size, bold=True)
    hw, hh = w / 2 + 0.12, h / 2 + 0.08
    return {"lines": lines, "w": hw, "h": hh, "r": math.hypot(hw, hh)}


def _place(namespaces: Sequence[Mapping[str, Any]], host: str | None,
           host_bridges: Sequence[Mapping[str, Any]], order: Sequence[str], anchor: Mapping[str, str],
           fonts: Mapping[str, float], box: Sequence[float]) -> dict[str, Any]:
    """Positions of namespaces and bridges: the host in the centre, the others on the ring
    whose shape (stretch, start) fits ``box`` best. ``fit``: the scale that would fit it."""
    nodes: dict[str, dict[str, Any]] = {}
    nb = len(host_bridges)
    bboxes = {b["name"]: _bridge_box(b, fonts["bridge"]) for b in host_bridges}
    title_h = 0.28 + fonts["host"] * 1.3  # room for the host's name, at the top of its circle
    if host:
        big = max((bb["r"] for bb in bboxes.values()), default=0.3)
        if nb == 0:
            host_r = max(0.62, title_h + 0.2)
            rb = 0.0
        elif nb == 1:
            (bb,) = bboxes.values()
            host_r = max(0.95, math.hypot(bb["w"], bb["h"] + title_h * 0.5) + 0.2, bb["h"] * 2 + title_h)
            rb = 0.0
        else:
            rb = max(0.6, nb * (2 * big + 0.2) / (2 * math.pi))
            host_r = rb + big + 0.45
        nodes[_ns_id(host)] = {"x": 0.0, "y": 0.0, "r": host_r}
        r0 = host_r + HOST_GAP
    else:
        host_r = rb = 0.0
        r0 = 0.0 if len(order) == 1 else max(1.2, len(order) * RING_SPACING / (2 * math.pi))

    # the ring: the stretch and start that let the picture be largest in the box
    margin_x = NS_R + (1.4 if fonts["port"] else 0.25 + fonts["ns"] * 2)
    margin_y = NS_R + (0.7 if fonts["port"] else 0.15 + fonts["ns"])
    best: tuple[float, float, list[tuple[float, float]]] | None = None
    n = len(order)
    for stretch in (1.0, 1.25, 1.5, 1.75, 2.0):
        for phase in ((0.0, 0.25, 0.5) if n > 1 else (0.0,)):
            if n > 2:
                phase = phase / n  # part of a slot: turns the ring a little
            pts = _ring_slots(n, r0, stretch, phase)
            xs = [x for x, _ in pts] + [-host_r, host_r]
            ys = [y for _, y in pts] + [-host_r, host_r]
            w = max(xs) - min(xs) + 2 * margin_x
            h = max(ys) - min(ys) + 2 * margin_y
            s = min(box[0] / w, box[1] / h)
            if best is None or s > best[0] + 1e-6:
                best = (s, stretch, pts)
    fit, _, pts = best if best else (1.0, 1.0, [])
    for name, (x, y) in zip(order, pts):
        nodes[_ns_id(name)] = {"x": x, "y": y, "r": NS_R}

    # host bridges: towards the namespaces they serve
    if host and nb:
        angles: list[tuple[float, str]] = []
        for k, b in enumerate(host_bridges):
            bid = _br_id(host, b["name"])
            members = [nodes[_ns_id(n)] for n in order if anchor.get(n) == bid]
            if nb == 1:
                ang = math.pi / 2
            elif members:
                sx, sy = sum(m["x"] for m in members), sum(m["y"] for m in members)
                ang = math.atan2(sy, sx) if abs(sx) + abs(sy) > 1e-6 else 2 * math.pi * k / nb
            else:
                ang = 2 * math.pi * k / nb + math.pi / nb
            angles.append((ang, b["name"]))
        angles.sort()
        gap = 2 * math.pi / nb * 0.8
        fixed = [a for a, _ in angles]
        for _ in range(3):  # push apart bridges that would overlap
            for j in range(1, nb):
                if fixed[j] - fixed[j - 1] < gap:
                    fixed[j] = fixed[j - 1] + gap
        for ang, (_, b) in zip(fixed, angles):
            bb = bboxes[b]
            if nb == 1:
                x, y = 0.0, title_h * 0.5
            else:
                x, y = rb * math.cos(ang), rb * math.sin(ang)
            nodes[_br_id(host, b)] = {"x": x, "y": y, **bb}

    # bridges in other namespaces: just outside their namespace
    for ns in namespaces:
        if ns["name"] == host:
            continue
        brs = [i for i in (ns.get("interfaces") or ()) if i.get("kind") == "bridge"]
        c = nodes[_ns_id(ns["name"])]
        out = math.atan2(c["y"], c["x"]) if (c["x"] or c["y"]) else -math.pi / 2
        for k, b in enumerate(brs):
            bb = _bridge_box(b, fonts["bridge"])
            ang = out + (k - (len(brs) - 1) / 2) * 0.7
            d = NS_R + bb["r"] + 0.35
            nodes[_br_id(ns["name"], b["name"])] = {"x": c["x"] + d * math.cos(ang),
                                                    "y": c["y"] + d * math.sin(ang), **bb}
    return {"nodes": nodes, "fit": fit}

