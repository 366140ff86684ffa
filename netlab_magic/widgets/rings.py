"""Where the topology's nodes go: the host in the centre with its bridges inside it, the other
namespaces on rings of ellipses around it (stretched and turned to fit the box), their bridges
just outside them."""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from .text_boxes import text_size, v4_first

NS_R = 0.42  # namespace node radius
RING_GAP = 1.7  # distance between rings
RING_SPACING = 1.55  # distance between neighbours on a ring
CLEARANCE = 0.7  # least distance between a node and a link passing it
HOST_GAP = 1.75  # from the host's edge to the first ring


def ns_id(ns: str) -> str:
    """A namespace's node id."""
    return f"ns:{ns}"


def br_id(ns: str, br: str) -> str:
    """A bridge's node id."""
    return f"br:{ns}/{br}"


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


def ring_slots(n: int, r0: float, ax: float = 1.0, phase: float = 0.0) -> list[tuple[float, float]]:
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


def bridge_box(b: Mapping[str, Any], size: float) -> dict[str, Any]:
    """A bridge's box: its name and first two addresses, with a margin."""
    lines = [b["name"], *v4_first(b.get("addresses") or ())[:2]]
    w, h = text_size(lines, size, bold=True)
    hw, hh = w / 2 + 0.12, h / 2 + 0.08
    return {"lines": lines, "w": hw, "h": hh, "r": math.hypot(hw, hh)}


def place_nodes(namespaces: Sequence[Mapping[str, Any]], host: str | None,
           host_bridges: Sequence[Mapping[str, Any]], order: Sequence[str], anchor: Mapping[str, str],
           fonts: Mapping[str, float], box: Sequence[float]) -> dict[str, Any]:
    """Positions of namespaces and bridges: the host in the centre, the others on the ring
    whose shape (stretch, start) fits ``box`` best. ``fit``: the scale that would fit it."""
    nodes: dict[str, dict[str, Any]] = {}
    bboxes = {b["name"]: bridge_box(b, fonts["bridge"]) for b in host_bridges}
    title_h = 0.28 + fonts["host"] * 1.3  # room for the host's name, at the top of its circle
    if host:
        host_r, rb = _host_size(bboxes, title_h)
        nodes[ns_id(host)] = {"x": 0.0, "y": 0.0, "r": host_r}
        r0 = host_r + HOST_GAP
    else:
        host_r = rb = 0.0
        r0 = 0.0 if len(order) == 1 else max(1.2, len(order) * RING_SPACING / (2 * math.pi))
    fit, pts = _best_ring(len(order), r0, host_r, fonts, box)
    for name, (x, y) in zip(order, pts):
        nodes[ns_id(name)] = {"x": x, "y": y, "r": NS_R}
    if host and host_bridges:
        _place_host_bridges(nodes, host, host_bridges, bboxes, order, anchor, rb, title_h)
    _place_other_bridges(nodes, namespaces, host, fonts)
    return {"nodes": nodes, "fit": fit}


def _host_size(bboxes: Mapping[str, Mapping[str, Any]], title_h: float) -> tuple[float, float]:
    """The host's radius, and the radius of the circle its bridges sit on (0: one in the middle)."""
    nb = len(bboxes)
    if nb == 0:
        return max(0.62, title_h + 0.2), 0.0
    if nb == 1:
        (bb,) = bboxes.values()
        return max(0.95, math.hypot(bb["w"], bb["h"] + title_h * 0.5) + 0.2, bb["h"] * 2 + title_h), 0.0
    big = max(bb["r"] for bb in bboxes.values())
    rb = max(0.6, nb * (2 * big + 0.2) / (2 * math.pi))
    return rb + big + 0.45, rb


def _best_ring(n: int, r0: float, host_r: float, fonts: Mapping[str, float],
               box: Sequence[float]) -> tuple[float, list[tuple[float, float]]]:
    """The ring's slots for ``n`` namespaces: the stretch and start that let the picture be
    largest in ``box``; and the scale that fits it."""
    margin_x = NS_R + (1.4 if fonts["port"] else 0.25 + fonts["ns"] * 2)
    margin_y = NS_R + (0.7 if fonts["port"] else 0.15 + fonts["ns"])
    best: tuple[float, float, list[tuple[float, float]]] | None = None
    for stretch in (1.0, 1.25, 1.5, 1.75, 2.0):
        for phase in ((0.0, 0.25, 0.5) if n > 1 else (0.0,)):
            if n > 2:
                phase = phase / n  # part of a slot: turns the ring a little
            pts = ring_slots(n, r0, stretch, phase)
            xs = [x for x, _ in pts] + [-host_r, host_r]
            ys = [y for _, y in pts] + [-host_r, host_r]
            w = max(xs) - min(xs) + 2 * margin_x
            h = max(ys) - min(ys) + 2 * margin_y
            s = min(box[0] / w, box[1] / h)
            if best is None or s > best[0] + 1e-6:
                best = (s, stretch, pts)
    fit, _, pts = best if best else (1.0, 1.0, [])
    return fit, pts


def _place_host_bridges(nodes: dict[str, dict[str, Any]], host: str, host_bridges: Sequence[Mapping[str, Any]],
                        bboxes: Mapping[str, Mapping[str, Any]], order: Sequence[str],
                        anchor: Mapping[str, str], rb: float, title_h: float) -> None:
    """The host's bridges, inside it, each towards the namespaces it serves (pushed apart)."""
    nb = len(host_bridges)
    angles: list[tuple[float, str]] = []
    for k, b in enumerate(host_bridges):
        bid = br_id(host, b["name"])
        members = [nodes[ns_id(n)] for n in order if anchor.get(n) == bid]
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
        if nb == 1:
            x, y = 0.0, title_h * 0.5
        else:
            x, y = rb * math.cos(ang), rb * math.sin(ang)
        nodes[br_id(host, b)] = {"x": x, "y": y, **bboxes[b]}


def _place_other_bridges(nodes: dict[str, dict[str, Any]], namespaces: Sequence[Mapping[str, Any]],
                         host: str | None, fonts: Mapping[str, float]) -> None:
    """Bridges in other namespaces: just outside their namespace."""
    for ns in namespaces:
        if ns["name"] == host:
            continue
        brs = [i for i in (ns.get("interfaces") or ()) if i.get("kind") == "bridge"]
        c = nodes[ns_id(ns["name"])]
        out = math.atan2(c["y"], c["x"]) if (c["x"] or c["y"]) else -math.pi / 2
        for k, b in enumerate(brs):
            bb = bridge_box(b, fonts["bridge"])
            ang = out + (k - (len(brs) - 1) / 2) * 0.7
            d = NS_R + bb["r"] + 0.35
            nodes[br_id(ns["name"], b["name"])] = {"x": c["x"] + d * math.cos(ang),
                                                    "y": c["y"] + d * math.sin(ang), **bb}
