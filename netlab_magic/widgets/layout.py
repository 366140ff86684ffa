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

The parts: :mod:`.lab_graph` reads the snapshot, :mod:`.rings` places the nodes,
:mod:`.tooltips` says what each shows, :mod:`.text_boxes` measures text and finds room for it;
here, the drawing (:class:`_Drawing`) puts ports, links and labels on the nodes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..display import STATE_COLOURS
from ..model import LabSnapshot
from .lab_graph import LabGraph
from .rings import br_id, ns_id, place_nodes
from .text_boxes import Space, text_beside, text_block, v4_first
from .tooltips import display_state, ns_title, port_title, short_lines

#: Stroke/fill colour of each operstate, the same as ``%netlab status`` uses (one table, in
#: :mod:`netlab_magic.display`); anything else is drawn in ``OTHER_COLOR``.
STATE_COLORS: dict[str, str] = STATE_COLOURS
OTHER_COLOR = "#8e44ad"

PORT_R = 0.075  # interface marker radius
BOX = (900, 520)  # the box (px) the picture is fitted to unless the browser says otherwise
MIN_PX = 12  # no text smaller than this once fitted
MAX_PX = 16  # when enlarging a small lab, text stops growing here
DENSE_PX = 13  # namespace names of a dense lab, at the fitted scale of BOX
#: Text sizes in units (a sparse lab): interface labels, namespace names, the host, bridges.
FONT = {"port": 0.155, "ns": 0.2, "host": 0.23, "bridge": 0.155}


def state_color(state: str | None) -> str:
    """The colour the widgets use for an operstate."""
    return STATE_COLORS.get(state or "", OTHER_COLOR)


def snapshot_dict(snapshot: LabSnapshot | Mapping[str, Any]) -> dict[str, Any]:
    """A :class:`LabSnapshot` or its ``to_dict()`` as the plain dict the layout reads."""
    if isinstance(snapshot, LabSnapshot):
        return snapshot.to_dict()
    return dict(snapshot)


# ------------------------------------------------------------------ the layout


def compute_layout(snapshot: LabSnapshot | Mapping[str, Any],
                   box: tuple[float, float] = BOX) -> dict[str, Any]:
    """Node, link, interface and label positions for a snapshot (or its ``to_dict()``).

    ``box`` is the (width, height) in pixels the picture should fit: it chooses the ring's
    shape, and the text size of a dense lab.
    """
    graph = LabGraph.read(snapshot_dict(snapshot))
    # text as large as the box allows: at least MIN_PX (DENSE_PX for the names of a dense lab)
    # once fitted; larger text takes more room, so twice at most
    fonts = dict(FONT)
    if graph.dense:
        fonts["port"] = 0.0
    lay = _Drawing(graph, fonts, box).build()
    for _ in range(2):
        x0, y0, x1, y1 = lay["bounds"]
        fit = min(box[0] / (x1 - x0), box[1] / (y1 - y0))
        smallest = min(v for v in fonts.values() if v)
        need = (DENSE_PX if graph.dense else MIN_PX) / fit
        if need <= smallest * 1.02:
            break
        fonts = {k: v * need / smallest for k, v in fonts.items()}
        lay = _Drawing(graph, fonts, box).build()
    return lay


class _Drawing:
    """One layout of a :class:`LabGraph` at one set of text sizes: nodes, links, ports, labels, bounds."""

    def __init__(self, graph: LabGraph, fonts: dict[str, float], box: Sequence[float]) -> None:
        self.g, self.fonts, self.box = graph, fonts, box
        self.nodes: dict[str, dict[str, Any]] = place_nodes(graph.namespaces, graph.host, graph.host_bridges,
                                                       graph.order, graph.anchor, fonts, box)["nodes"]
        self.space = Space()
        self.node_list: list[dict[str, Any]] = []
        self.ports: list[dict[str, Any]] = []
        self.links: list[dict[str, Any]] = []
        self.used: dict[str, list[float]] = defaultdict(list)  # port angles taken on each node
        self.labels: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []  # (priority, port, candidates)
        self.lone_count: dict[str, int] = defaultdict(int)

    def build(self) -> dict[str, Any]:
        self.add_nodes()
        self.add_links()
        self.add_members()
        self.add_lone_ports()
        self.place_labels()
        return self.result()

    # --- nodes
    def add_nodes(self) -> None:
        """Node records of namespaces and bridges, with their names."""
        host, fonts, nodes = self.g.host, self.fonts, self.nodes
        for ns in self.g.namespaces:
            nid = ns_id(ns["name"])
            p = nodes[nid]
            is_host = ns["name"] == host
            size = fonts["host"] if is_host else fonts["ns"]
            cy = p["y"] - p["r"] + 0.28 + size * 0.3 if is_host else p["y"]
            text = text_block([ns["name"]], size, p["x"], cy, bold=True)
            self.node_list.append({
                "id": nid, "kind": "netns", "netns": ns["name"], "name": ns["name"],
                "host": is_host, "state": None, **p, "title": ns_title(ns), "text": text,
            })
            self.space.take(text["box"])
            if not is_host:
                self.space.circles.append((p["x"], p["y"], p["r"]))
            for i in ns.get("interfaces") or ():
                if i.get("kind") == "bridge":
                    self.add_bridge(ns["name"], i)

    def add_bridge(self, ns: str, i: Mapping[str, Any]) -> None:
        bid = br_id(ns, i["name"])
        b = self.nodes[bid]
        text = text_block(b["lines"], self.fonts["bridge"], b["x"], b["y"], bold=True)
        self.node_list.append({
            "id": bid, "kind": "bridge", "netns": ns, "name": i["name"],
            "host": False, "state": display_state(i), "operstate": i.get("state"),
            "x": b["x"], "y": b["y"], "r": b["r"], "w": b["w"], "h": b["h"],
            "title": port_title(ns, i), "text": text,
            "addresses": v4_first(i.get("addresses") or ()),
        })
        self.space.take([b["x"] - b["w"], b["y"] - b["h"], b["x"] + b["w"], b["y"] + b["h"]])

    # --- ports and their label candidates
    def edge(self, nid: str, ux: float, uy: float) -> tuple[float, float]:
        """Where the direction (ux, uy) from node ``nid``'s centre leaves its shape."""
        n = self.nodes[nid]
        if "w" in n:  # a bridge: a rectangle
            t = min(n["w"] / abs(ux) if abs(ux) > 1e-9 else math.inf,
                    n["h"] / abs(uy) if abs(uy) > 1e-9 else math.inf)
            return n["x"] + t * ux, n["y"] + t * uy
        return n["x"] + n["r"] * ux, n["y"] + n["r"] * uy

    def port(self, ns: str, i: Mapping[str, Any], nid: str, ang: float) -> dict[str, Any]:
        """Interface ``i``'s marker on node ``nid``, at angle ``ang``."""
        host = self.g.host
        self.used[nid].append(ang)
        if host is not None and nid.startswith(br_id(host, "")):  # a bridge drawn inside the host:
            self.used[ns_id(host)].append(ang)  # its links cross the host's edge there; keep lo & co. off them
        ux, uy = math.cos(ang), math.sin(ang)
        px, py = self.edge(nid, ux, uy)
        rec = {
            "id": f"if:{ns}/{i['name']}", "netns": ns, "ifname": i["name"], "kind": i.get("kind"),
            "state": display_state(i), "operstate": i.get("state"), "admin_up": bool(i.get("admin_up")),
            "node": nid, "x": px, "y": py, "r": PORT_R, "label": False, "lines": short_lines(i),
            "title": port_title(ns, i), "text": None,
        }
        self.ports.append(rec)
        self.space.take([px - PORT_R, py - PORT_R, px + PORT_R, py + PORT_R])
        return rec

    def link_labels(self, p: dict[str, Any], tx: float, ty: float, priority: int) -> None:
        """Candidates beside the line from port ``p`` towards (tx, ty)."""
        if not self.fonts["port"]:
            return
        dx, dy = tx - p["x"], ty - p["y"]
        d = math.hypot(dx, dy) or 1.0
        ux, uy = dx / d, dy / d
        size = self.fonts["port"]
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
                    cands.append(text_beside(lines, size, ax, ay, nx, ny, 0.06))
        self.labels.append((priority, p, cands))

    def lone_labels(self, p: dict[str, Any], ux: float, uy: float) -> None:
        """Candidates beside a port with no link, outwards."""
        if not self.fonts["port"]:
            return
        size = self.fonts["port"]
        cands = [text_beside(lines, size, p["x"], p["y"], ux, uy, PORT_R + 0.05)
                 for lines in (p["lines"], p["lines"][:1])]
        self.labels.append((3, p, cands))

    def outward(self, nid: str) -> float:
        """The angle pointing away from the centre at node ``nid`` (down for the host)."""
        n = self.nodes[nid]
        if nid == ns_id(self.g.host or ""):
            return math.pi / 2
        return math.atan2(n["y"], n["x"]) if (n["x"] or n["y"]) else math.pi / 2

    # --- links
    def add_links(self) -> None:
        """Links between nodes (parallel links fan out a little), and stubs for peers outside the lab."""
        g = self.g
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for k, (a, b) in enumerate(g.pairs):
            if b is not None:
                na, nb_ = g.end_node(a[0], g.ifaces[a]), g.end_node(b[0], g.ifaces[b])
                groups[(min(na, nb_), max(na, nb_))].append(k)
        fan: dict[int, float] = {}
        for members in groups.values():
            for j, k in enumerate(members):
                fan[k] = (j - (len(members) - 1) / 2) * 0.35
        for k, (a, b) in enumerate(g.pairs):
            if b is None:
                self.add_stub(a)
            else:
                self.add_veth(a, b, fan[k])

    def add_stub(self, a: tuple[str, str]) -> None:
        """A veth whose peer is outside the lab: a short line outwards, ending in a circle."""
        ia = self.g.ifaces[a]
        na = self.g.end_node(a[0], ia)
        ang = self.outward(na) + 0.5 * self.lone_count[na]
        self.lone_count[na] += 1
        pa = self.port(a[0], ia, na, ang)
        sx, sy = pa["x"] + 0.5 * math.cos(ang), pa["y"] + 0.5 * math.sin(ang)
        self.links.append({
            "id": f"link:{a[0]}/{a[1]}", "kind": "stub", "a": pa["id"], "b": None,
            "x1": pa["x"], "y1": pa["y"], "x2": sx, "y2": sy, "mx": sx, "my": sy,
            "state_a": pa["state"], "state_b": None, "state": pa["state"],
        })
        self.link_labels(pa, sx, sy, 1)

    def add_veth(self, a: tuple[str, str], b: tuple[str, str], fan: float) -> None:
        """A veth pair between two nodes (a small loop outside it when both ends are on one)."""
        g = self.g
        ia, ib = g.ifaces[a], g.ifaces[b]
        na, nb_ = g.end_node(a[0], ia), g.end_node(b[0], ib)
        A, B = self.nodes[na], self.nodes[nb_]
        apex = None
        if na == nb_:
            base = self.outward(na) + 0.9 * self.lone_count[na]
            self.lone_count[na] += 2
            ang_a, ang_b = base - 0.35, base + 0.35
            reach = A["r"] + 0.45
            apex = (A["x"] + reach * math.cos(base), A["y"] + reach * math.sin(base))
        else:
            base = math.atan2(B["y"] - A["y"], B["x"] - A["x"])
            ang_a, ang_b = base + fan, base + math.pi - fan
        pa = self.port(a[0], ia, na, ang_a)
        pb = self.port(b[0], ib, nb_, ang_b)
        sa, sb = pa["state"], pb["state"]
        mx, my = apex or ((pa["x"] + pb["x"]) / 2, (pa["y"] + pb["y"]) / 2)
        self.links.append({
            "id": f"link:{a[0]}/{a[1]}", "kind": "veth", "a": pa["id"], "b": pb["id"],
            "x1": pa["x"], "y1": pa["y"], "x2": pb["x"], "y2": pb["y"], "mx": mx, "my": my,
            "state_a": sa, "state_b": sb, "state": sa if sa == sb else "MIXED",
        })
        for p, q in ((pa, pb), (pb, pa)):  # the far namespace's end first: it is what a learner built
            tx, ty = (mx, my) if apex else (q["x"], q["y"])
            self.link_labels(p, tx, ty, 2 if p["netns"] == g.host else 1)

    def add_members(self) -> None:
        """Bridges belong to their namespace (a dashed line, unless drawn inside it)."""
        for node in self.node_list:
            if node["kind"] == "bridge" and node["netns"] != self.g.host:
                c = self.nodes[ns_id(node["netns"])]
                self.links.append({
                    "id": f"member:{node['netns']}/{node['name']}", "kind": "member",
                    "a": ns_id(node["netns"]), "b": node["id"],
                    "x1": c["x"], "y1": c["y"], "x2": node["x"], "y2": node["y"],
                    "mx": (c["x"] + node["x"]) / 2, "my": (c["y"] + node["y"]) / 2,
                    "state_a": None, "state_b": node["state"], "state": node["state"],
                })

    def free_angle(self, nid: str) -> float:
        """The middle of the widest gap between the ports already on node ``nid``."""
        taken = self.used[nid]
        out = self.outward(nid)
        if not taken:
            return out
        best, best_d = 0.0, -1.0
        for k in range(72):
            a = out + math.pi * (k % 2 * 2 - 1) * (k // 2) / 36
            d = min(abs((a - t + math.pi) % (2 * math.pi) - math.pi) for t in taken)
            if d > best_d + 1e-9:
                best, best_d = a, d
        return best

    def add_lone_ports(self) -> None:
        """Everything else (lo, dummies, unpaired veths): markers in the widest free gap."""
        for (ns, name), i in self.g.ifaces.items():
            if (ns, name) in self.g.linked or i.get("kind") == "bridge":
                continue
            nid = self.g.end_node(ns, i)
            ang = self.free_angle(nid)
            p = self.port(ns, i, nid, ang)
            self.lone_labels(p, math.cos(ang), math.sin(ang))

    # --- labels, bounds, the result
    def place_labels(self) -> None:
        """Labels, most useful first; one that fits nowhere stays in the tooltip."""
        for lk in self.links:
            if lk["kind"] == "member":
                self.space.segments.append((lk["x1"], lk["y1"], lk["x2"], lk["y2"]))
            else:
                self.space.segments.append((lk["x1"], lk["y1"], lk["mx"], lk["my"]))
                self.space.segments.append((lk["mx"], lk["my"], lk["x2"], lk["y2"]))
        for _, p, cands in sorted(self.labels, key=lambda x: x[0]):
            for c in cands:
                if self.space.free(c["box"]):
                    p["text"], p["label"] = c, True
                    self.space.take(c["box"])
                    break

    def bounds(self) -> list[float]:
        """Everything drawn, and a small margin."""
        boxes = [[n["x"] - n.get("w", n["r"]), n["y"] - n.get("h", n["r"]),
                  n["x"] + n.get("w", n["r"]), n["y"] + n.get("h", n["r"])] for n in self.nodes.values()]
        boxes += [n["text"]["box"] for n in self.node_list]
        boxes += [p["text"]["box"] for p in self.ports if p["text"]]
        boxes += [[min(lk["x2"], lk["mx"]), min(lk["y2"], lk["my"]), max(lk["x2"], lk["mx"]), max(lk["y2"], lk["my"])]
                  for lk in self.links]
        if not boxes:
            return [-1.0, -1.0, 1.0, 1.0]
        pad = 0.2
        return [min(b[0] for b in boxes) - pad, min(b[1] for b in boxes) - pad,
                max(b[2] for b in boxes) + pad, max(b[3] for b in boxes) + pad]

    def result(self) -> dict[str, Any]:
        bounds = self.bounds()
        ports, links, node_list = self.ports, self.links, self.node_list
        shown = [n["text"]["size"] for n in node_list] + [p["text"]["size"] for p in ports if p["text"]]
        smallest = min(shown, default=FONT["ns"])
        lo, hi = MIN_PX / smallest, MAX_PX / smallest
        return {
            "nodes": node_list, "links": links, "ports": ports, "bounds": bounds,
            "dense": self.g.dense, "colors": {**STATE_COLORS, "OTHER": OTHER_COLOR}, "fonts": self.fonts,
            "scale": {"min": lo, "max": hi, "fit": fit_scale(bounds, self.box, lo, hi)},
            "box": list(self.box),
            "counts": {"namespaces": len(self.g.namespaces),
                       "veth": sum(1 for lk in links if lk["kind"] == "veth"),
                       "bridges": sum(1 for n in node_list if n["kind"] == "bridge"), "ports": self.g.n_ports,
                       "labels": sum(1 for p in ports if p["text"])},
        }


def fit_scale(bounds: Sequence[float], box: Sequence[float], lo: float, hi: float) -> float:
    """Pixels per unit: ``bounds`` fitted into ``box`` (both ways), kept within ``[lo, hi]``."""
    w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
    s = min(box[0] / w if w > 0 else hi, box[1] / h if h > 0 else hi)
    return max(lo, min(hi, s))


