"""Where a traced packet goes on the talk's packet-flow picture: one layout for the widget and ``draw``.

The picture is the talk's: an incoming packet meets PREROUTING, then the routing decision
sends it to INPUT (a local program) or FORWARD; a program's packet takes the routing
decision, OUTPUT; both leave through POSTROUTING. Above it, the bridge's path: a frame
entering a port meets the bridge's PREROUTING, the bridge decides (to another port: FORWARD,
to the host: INPUT), and leaves through the bridge's POSTROUTING; with br_netfilter, the bridge
calls iptables' PREROUTING, FORWARD and POSTROUTING on the way (the small boxes under its hooks).

One *panel* per stretch of the packet's path in one namespace, left to right. Coordinates are
abstract units, y pointing down (as in SVG); the result is a plain JSON-ready dict.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

PANEL_W, PANEL_H, GAP = 10.0, 6.6, 1.4
COLORS = {"passed": "#2e9d4a", "drop": "#c0392b", "idle": "#c9ced6", "path": "#1f6feb", "text": "#24292f"}

#: (kind, label, x, y): the picture's nodes. Kinds: hook (a box), decision (a diamond), end (a dot).
NODES: dict[str, tuple[str, str, float, float]] = {
    # the bridge's path (family bridge), and the iptables hooks br_netfilter calls from it
    "br:in": ("end", "port", 0.5, 0.8),
    "br:PREROUTING": ("hook", "PREROUTING", 2.0, 0.8),
    "br:decision": ("decision", "bridging", 3.7, 0.8),
    "br:FORWARD": ("hook", "FORWARD", 5.5, 0.8),
    "br:POSTROUTING": ("hook", "POSTROUTING", 7.6, 0.8),
    "br:out": ("end", "port", 9.5, 0.8),
    "br:INPUT": ("hook", "INPUT", 3.7, 1.75),
    "br:OUTPUT": ("hook", "OUTPUT", 9.05, 1.75),
    "brnf:PREROUTING": ("nf", "iptables", 2.0, 1.75),
    "brnf:FORWARD": ("nf", "iptables", 5.5, 1.75),
    "brnf:POSTROUTING": ("nf", "iptables", 7.6, 1.75),
    # the IP path (family ip): the talk's picture
    "ip:in": ("end", "in", 0.5, 3.0),
    "ip:PREROUTING": ("hook", "PREROUTING", 2.0, 3.0),
    "ip:route_in": ("decision", "routing", 3.7, 3.0),
    "ip:FORWARD": ("hook", "FORWARD", 5.5, 3.0),
    "ip:POSTROUTING": ("hook", "POSTROUTING", 7.8, 3.0),
    "ip:out": ("end", "out", 9.5, 3.0),
    "ip:INPUT": ("hook", "INPUT", 3.7, 4.4),
    "ip:OUTPUT": ("hook", "OUTPUT", 7.8, 4.4),
    "ip:process": ("end", "local process", 3.7, 5.8),
    "ip:route_out": ("decision", "routing", 7.8, 5.8),
}

#: The picture's arrows (what any packet could do), drawn faint.
EDGES: list[tuple[str, str]] = [
    ("br:in", "br:PREROUTING"), ("br:PREROUTING", "br:decision"), ("br:decision", "br:FORWARD"),
    ("br:FORWARD", "br:POSTROUTING"), ("br:POSTROUTING", "br:out"), ("br:decision", "br:INPUT"),
    ("br:OUTPUT", "br:POSTROUTING"),
    ("br:PREROUTING", "brnf:PREROUTING"), ("br:FORWARD", "brnf:FORWARD"), ("br:POSTROUTING", "brnf:POSTROUTING"),
    ("ip:in", "ip:PREROUTING"), ("ip:PREROUTING", "ip:route_in"), ("ip:route_in", "ip:FORWARD"),
    ("ip:FORWARD", "ip:POSTROUTING"), ("ip:POSTROUTING", "ip:out"), ("ip:route_in", "ip:INPUT"),
    ("ip:INPUT", "ip:process"), ("ip:process", "ip:route_out"), ("ip:route_out", "ip:OUTPUT"),
    ("ip:OUTPUT", "ip:POSTROUTING"),
]

BRIDGE_NODES = {k for k in NODES if k.startswith(("br:", "brnf:"))}
#: Width and height of each kind of node (a diamond's are its diagonals).
SIZES = {"hook": (1.4, 0.5), "nf": (1.2, 0.36), "decision": (1.15, 0.72), "end": (0.24, 0.24)}


def _clip(node: Mapping[str, Any], tx: float, ty: float, margin: float = 0.05) -> tuple[float, float]:
    """Where the line from ``node``'s centre towards (tx, ty) leaves the node's shape."""
    x, y = node["x"], node["y"]
    dx, dy = tx - x, ty - y
    if dx == 0 and dy == 0:
        return x, y
    w, h = SIZES[node["kind"]]
    hw, hh = w / 2 + margin, h / 2 + margin
    if node["kind"] == "decision":  # |dx|/hw + |dy|/hh = 1
        t = 1 / (abs(dx) / hw + abs(dy) / hh)
    elif node["kind"] == "end":
        t = hw / (dx * dx + dy * dy) ** 0.5
    else:
        t = min(hw / abs(dx) if dx else float("inf"), hh / abs(dy) if dy else float("inf"))
    return x + dx * t, y + dy * t


def segment(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[float]:
    """The arrow from node ``a`` to node ``b``, from edge to edge: ``[x1, y1, x2, y2]``."""
    x1, y1 = _clip(a, b["x"], b["y"])
    x2, y2 = _clip(b, a["x"], a["y"])
    return [round(x1, 3), round(y1, 3), round(x2, 3), round(y2, 3)]


def _node_of(hop: Mapping[str, Any]) -> str:
    if hop["family"] == "bridge":
        return f"br:{hop['hook']}"
    if hop.get("bridged") and hop["hook"] in ("PREROUTING", "FORWARD", "POSTROUTING"):
        return f"brnf:{hop['hook']}"
    return f"ip:{hop['hook']}"


_NAT_TARGET = re.compile(r" -j (DNAT|SNAT|MASQUERADE|REDIRECT)(?: --to-(?:destination|source|ports) (\S+))?")


def _note(hop: Mapping[str, Any]) -> str:
    """What a hop says under its hook: ``nat DOCKER: DNAT 172.17.0.2:80``, ``filter FORWARD: DROP``."""
    if not hop.get("table"):
        return hop["note"].strip("()") if hop.get("note") else ""
    m = _NAT_TARGET.search(hop.get("rule") or "")
    decision = " ".join(x for x in m.groups() if x) if m else hop["decision"]
    return f"{hop['table']} {hop['chain']}: {decision}"


def _with_decisions(nodes: list[str]) -> list[str]:
    """The path through the picture: the routing or bridging decision between two hooks, where taken."""
    path: list[str] = []
    for node in nodes:
        if path:
            last = path[-1]
            if last == "ip:PREROUTING" and node in ("ip:INPUT", "ip:FORWARD"):
                path.append("ip:route_in")
            elif last in ("br:PREROUTING", "brnf:PREROUTING") and node in ("br:FORWARD", "br:INPUT"):
                path.append("br:decision")
            elif last == "br:INPUT" and node in ("ip:INPUT", "ip:FORWARD"):
                path.append("ip:route_in")
            elif last == "ip:process" and node == "ip:OUTPUT":
                path.append("ip:route_out")
        if not path or path[-1] != node:
            path.append(node)
    return path


def panel_layout(netns: str, hops: Sequence[Mapping[str, Any]], x0: float) -> dict[str, Any]:
    """One namespace's stretch: the nodes (traversed or not), the notes per node, the path taken."""
    hop_nodes = [_node_of(h) for h in hops]
    first, last = hops[0], hops[-1]
    start: list[str] = []
    if hop_nodes[0] == "ip:OUTPUT":
        start = ["ip:process"]
    elif hop_nodes[0] in ("ip:PREROUTING",):
        start = ["ip:in"]
    elif hop_nodes[0] == "br:PREROUTING":
        start = ["br:in"]
    end: list[str] = []
    dropped = last["verdict"] == "DROP"
    if not dropped:
        if hop_nodes[-1] == "ip:INPUT":
            end = ["ip:process"]
        elif hop_nodes[-1] in ("ip:POSTROUTING", "brnf:POSTROUTING"):
            end = ["br:out"] if hop_nodes[-1] == "brnf:POSTROUTING" else ["ip:out"]
        elif hop_nodes[-1] == "br:POSTROUTING":
            end = ["br:out"]
    path = _with_decisions(start + hop_nodes + end)
    bridge = any(n in BRIDGE_NODES for n in path)
    notes: dict[str, list[str]] = {}
    steps: dict[str, list[int]] = {}
    for hop, node in zip(hops, hop_nodes):
        steps.setdefault(node, []).append(hop["step"])
        text = _note(hop)
        if text and text not in notes.setdefault(node, []):
            notes[node].append(text)
    drop = hop_nodes[-1] if dropped else None
    nodes = []
    for key, (kind, label, x, y) in NODES.items():
        if key in BRIDGE_NODES and not bridge:
            continue
        state = "drop" if key == drop else ("passed" if key in path else "idle")
        w, h = SIZES[kind]
        nodes.append({"id": key, "kind": kind, "label": label, "x": x0 + x, "y": y, "w": w, "h": h, "state": state,
                      "steps": steps.get(key, []), "notes": notes.get(key, [])[:3]})
    at = {n["id"]: n for n in nodes}
    edges = [{"a": a, "b": b, "seg": segment(at[a], at[b])} for a, b in EDGES
             if bridge or not (a in BRIDGE_NODES or b in BRIDGE_NODES)]
    arrows = [segment(at[a], at[b]) for a, b in zip(path, path[1:])]
    labels = {}
    if start and start[0] in ("ip:in", "br:in"):
        labels[start[0]] = first.get("iif") or ""
    if end and end[0] in ("ip:out", "br:out"):
        # a bridge sends the frame out of a port: the last report of the bridge itself names it
        family = "bridge" if end[0] == "br:out" else "ip"
        labels[end[0]] = next((h.get("oif") for h in reversed(hops) if h["family"] == family and h.get("oif")), "") or ""
    bridges = sorted({h["bridge"] for h in hops if h["family"] == "bridge" and h.get("bridge")})
    return {"netns": netns, "x0": x0, "nodes": nodes, "edges": edges, "path": path, "arrows": arrows, "labels": labels,
            "bridge": ", ".join(bridges) + (" (br_netfilter)" if any(h.get("bridged") for h in hops) else ""),
            "drop": drop, "drop_text": (f"{last['table']} {last['chain']}: {last['reason']}" if dropped else "")}


def trace_layout(packet: Mapping[str, Any]) -> dict[str, Any]:
    """A packet (``Trace.to_dict()["packets"][i]``) laid out: one panel per namespace stretch, left to right."""
    stretches: list[tuple[str, list[dict[str, Any]]]] = []
    for step, hop in enumerate(packet["hops"], 1):
        hop = dict(hop, step=step)
        if not stretches or stretches[-1][0] != hop["netns"]:
            stretches.append((hop["netns"], []))
        stretches[-1][1].append(hop)
    panels = [panel_layout(netns, hops, i * (PANEL_W + GAP)) for i, (netns, hops) in enumerate(stretches)]
    links = []
    for left, right in zip(panels, panels[1:]):
        a = next(n for n in left["nodes"] if n["id"] == left["path"][-1])
        b = next(n for n in right["nodes"] if n["id"] == right["path"][0])
        x1, y1, x2, y2 = segment(a, b)
        links.append({"from": left["netns"], "to": right["netns"], "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                      "out": left["labels"].get(a["id"], ""), "in": right["labels"].get(b["id"], "")})
    width = len(panels) * PANEL_W + max(0, len(panels) - 1) * GAP
    return {"title": f"packet {packet['index'] + 1}: {packet['header']}", "fate": packet["fate"],
            "panels": panels, "links": links, "bounds": [0.0, -0.6, max(width, PANEL_W), PANEL_H],
            "colors": COLORS}
