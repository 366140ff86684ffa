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
import textwrap
from typing import Any, Mapping, Protocol, Sequence


class TracedCommand(Protocol):
    """What the pictures read of a :class:`netlab_magic.packets.trace_model.Trace`, which draws itself with them
    (``Trace.draw``, ``Trace.widget``): so the widgets need not import the trace back."""

    netns: str
    command: str
    match: str | None

    def to_dict(self) -> dict[str, Any]: ...
    def nothing_traced(self) -> str: ...
    def summary(self) -> str: ...
    def draw(self, packet: int | None = None, ax: Any = None) -> Any: ...


PANEL_W, PANEL_H, GAP = 10.0, 7.4, 1.4
COLORS = {"passed": "#2e9d4a", "drop": "#c0392b", "idle": "#c9ced6", "path": "#1f6feb", "text": "#24292f"}
#: Font sizes in the layout's units (both renderers use them: matplotlib turns them into points).
FONTS = {"title": 0.2, "netns": 0.2, "hook": 0.145, "nf": 0.125, "decision": 0.125, "end": 0.125, "badge": 0.115,
         "note": 0.12, "caption": 0.12, "link": 0.135}
#: A line of text is this many times its font size high; a character about this wide, on average.
LINE, CHAR = 1.3, 0.56
#: Notes are wrapped at this many characters, and a node shows at most this many lines of them.
NOTE_CHARS, NOTE_LINES = 30, 3
#: Nodes whose notes stand beside them (the path leaves INPUT and enters OUTPUT from below),
#: and how many characters wide they are there.
NOTE_BESIDE = {"ip:INPUT": "right", "ip:OUTPUT": "left"}
NOTE_BESIDE_CHARS = 24
#: Where the line between the two rows runs.
ROWS_SPLIT = 2.95

#: (kind, label, x, y): the picture's nodes. Kinds: hook (a box), decision (a diamond), end (a dot).
NODES: dict[str, tuple[str, str, float, float]] = {
    # the bridge's path (family bridge), and the iptables hooks br_netfilter calls from it
    "br:in": ("end", "port", 0.5, 0.95),
    "br:PREROUTING": ("hook", "PREROUTING", 2.0, 0.95),
    "br:decision": ("decision", "bridging", 3.7, 0.95),
    "br:FORWARD": ("hook", "FORWARD", 5.4, 0.95),
    "br:POSTROUTING": ("hook", "POSTROUTING", 7.3, 0.95),
    "br:out": ("end", "port", 9.5, 0.95),
    "br:INPUT": ("hook", "INPUT", 3.7, 1.9),
    "br:OUTPUT": ("hook", "OUTPUT", 8.5, 1.9),
    "brnf:PREROUTING": ("nf", "iptables", 2.0, 1.9),
    "brnf:FORWARD": ("nf", "iptables", 5.4, 1.9),
    "brnf:POSTROUTING": ("nf", "iptables", 6.9, 1.9),
    # the IP path (family ip): the talk's picture, and the second routing decision after OUTPUT
    "ip:in": ("end", "in", 0.5, 3.6),
    "ip:PREROUTING": ("hook", "PREROUTING", 2.0, 3.6),
    "ip:route_in": ("decision", "routing", 3.7, 3.6),
    "ip:FORWARD": ("hook", "FORWARD", 5.4, 3.6),
    "ip:POSTROUTING": ("hook", "POSTROUTING", 7.3, 3.6),
    "ip:out": ("end", "out", 9.5, 3.6),
    "ip:INPUT": ("hook", "INPUT", 3.7, 5.0),
    "ip:OUTPUT": ("hook", "OUTPUT", 6.9, 5.0),
    "ip:reroute": ("decision", "reroute", 8.9, 4.45),
    "ip:process": ("end", "local process", 3.7, 6.6),
    "ip:route_out": ("decision", "routing", 6.9, 6.6),
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
    ("ip:OUTPUT", "ip:POSTROUTING"), ("ip:OUTPUT", "ip:reroute"), ("ip:reroute", "ip:POSTROUTING"),
]

BRIDGE_NODES = {k for k in NODES if k.startswith(("br:", "brnf:"))}
#: Width and height of each kind of node (a diamond's are its diagonals).
SIZES = {"hook": (1.4, 0.5), "nf": (1.2, 0.36), "decision": (1.15, 0.72), "end": (0.24, 0.24)}
#: What each row is, said at its left (the legend of the two rows).
CAPTIONS = {"bridge": "bridge layer (frames port to port)", "ip": "IP layer (routing)"}


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


def _note(hop: Mapping[str, Any]) -> str:
    """What a hop says under its hook: ``nat DOCKER: DNAT to 172.17.0.2:80``, ``filter FORWARD: policy DROP``.

    A hook without an iptables chain says nothing (the table says so), unless the kernel skipped
    nat there; conntrack's rewriting says what the address became (the table has both).
    """
    if not hop.get("table"):
        note = (hop.get("note") or "").strip("()")
        return re.sub(r"(source|destination) \S+ -> ", r"\1 -> ", note)
    what = hop["reason"] if not hop.get("rule") and hop["reason"].startswith("policy ") else hop["decision"]
    return f"{hop['table']} {hop['chain']}: {what}"


def _with_decisions(nodes: list[str], rerouted: bool) -> list[str]:
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
            elif last == "ip:OUTPUT" and node == "ip:POSTROUTING" and rerouted:
                path.append("ip:reroute")
        if not path or path[-1] != node:
            path.append(node)
    return path


def _destination(hop: Mapping[str, Any]) -> str:
    """The destination address of a hop's packet, without its port."""
    return (hop.get("addresses") or "").partition(" > ")[2].split(":")[0]


def rerouted(hops: Sequence[Mapping[str, Any]]) -> bool:
    """Whether NAT in OUTPUT changed the destination, so that the kernel routed the packet again.

    After nat OUTPUT, ``nf_nat_ipv4_local_fn`` (net/netfilter/nf_nat_proto.c) calls
    ``ip_route_me_harder`` when the destination address differs from the one first routed.
    """
    out = [_destination(h) for h in hops if h["family"] == "ip" and h["hook"] == "OUTPUT" and _destination(h)]
    post = [_destination(h) for h in hops if h["family"] == "ip" and h["hook"] == "POSTROUTING" and _destination(h)]
    return bool(out and post and out[0] != post[0])


def _steps(steps: list[int]) -> str:
    """``1,2,3,7`` as ``1–3,7``: the numbers of a node's hops in the table."""
    runs: list[list[int]] = []
    for n in steps:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ",".join(f"{r[0]}\u2013{r[-1]}" if len(r) > 2 else ",".join(map(str, r)) for r in runs)


def text_width(text: str, size: float) -> float:
    """About how wide ``text`` is at font ``size`` (both in the layout's units)."""
    return len(text) * size * CHAR


def _note_lines(notes: list[str], chars: int = NOTE_CHARS) -> list[str]:
    lines = [line for note in notes for line in textwrap.wrap(note, chars, break_on_hyphens=False)]
    if len(lines) > NOTE_LINES:
        lines = lines[:NOTE_LINES - 1] + [f"(+{len(lines) - NOTE_LINES + 1} lines: see the table)"]
    return lines


def panel_layout(netns: str, hops: Sequence[Mapping[str, Any]], x0: float) -> dict[str, Any]:
    """One namespace's stretch: the nodes (traversed or not), their notes and step badges, the path taken.

    Every text has its place here (``x``, ``y`` of its first line's top, font ``size``), so that
    the widget and ``draw`` put it at the same spot.
    """
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
    path = _with_decisions(start + hop_nodes + end, rerouted(hops))
    bridge = any(n in BRIDGE_NODES for n in path)
    notes: dict[str, list[str]] = {}
    steps: dict[str, list[int]] = {}
    for hop, node in zip(hops, hop_nodes):
        steps.setdefault(node, []).append(hop["step"])
        text = _note(hop)
        if hop["verdict"] == "DROP":
            text = "\u2718 " + text
        if text and text not in notes.setdefault(node, []):
            notes[node].append(text)
    drop = hop_nodes[-1] if dropped else None
    labels: dict[str, str] = {}
    if start and start[0] in ("ip:in", "br:in"):
        labels[start[0]] = first.get("iif") or ""
    if end and end[0] in ("ip:out", "br:out"):
        # a bridge sends the frame out of a port: the last report of the bridge itself names it
        family = "bridge" if end[0] == "br:out" else "ip"
        labels[end[0]] = next((h.get("oif") for h in reversed(hops) if h["family"] == family and h.get("oif")), "") or ""
    nodes = []
    for key, (kind, label, x, y) in NODES.items():
        if key in BRIDGE_NODES and not bridge:
            continue
        state = "drop" if key == drop else ("passed" if key in path else "idle")
        w, h = SIZES[kind]
        node: dict[str, Any] = {"id": key, "kind": kind, "label": label, "x": x0 + x, "y": y, "w": w, "h": h,
                                "state": state, "steps": steps.get(key, []), "notes": notes.get(key, []),
                                "size": FONTS[kind]}
        if kind == "end":  # its name under the dot: the interface where the packet came in or left
            node["label"] = labels.get(key) or label
            node["label_y"] = y + h / 2 + 0.06
        side = NOTE_BESIDE.get(key)
        node["note_lines"] = _note_lines(node["notes"], NOTE_BESIDE_CHARS if side else NOTE_CHARS)
        if side:  # beside the box, from its top: "start" or "end" is where the text is anchored
            node["note_x"] = x0 + x + (w / 2 + 0.08) * (1 if side == "right" else -1)
            node["note_y"], node["note_anchor"] = y - h / 2 + 0.1, ("start" if side == "right" else "end")
        else:
            node["note_x"], node["note_y"], node["note_anchor"] = x0 + x, y + h / 2 + 0.07, "middle"
        if node["steps"]:
            text = _steps(node["steps"])
            bw = 0.1 + text_width(text, FONTS["badge"])
            node["badge"] = {"text": text, "x": x0 + x + w / 2 - 0.15, "y": y - h / 2 - 0.2, "w": bw, "h": 0.26}
        nodes.append(node)
    at = {n["id"]: n for n in nodes}
    edges = [{"a": a, "b": b, "seg": segment(at[a], at[b])} for a, b in EDGES
             if bridge or not (a in BRIDGE_NODES or b in BRIDGE_NODES)]
    arrows = [segment(at[a], at[b]) for a, b in zip(path, path[1:])]
    bridges = sorted({h["bridge"] for h in hops if h["family"] == "bridge" and h.get("bridge")})
    name = ", ".join(bridges) + (" (br_netfilter)" if any(h.get("bridged") for h in hops) else "")
    captions = [{"text": CAPTIONS["ip"], "x": x0 + PANEL_W - 0.15, "y": PANEL_H - 0.42, "size": FONTS["caption"]}]
    if bridge:
        captions.append({"text": f"{CAPTIONS['bridge']}: {name}" if name else CAPTIONS["bridge"],
                         "x": x0 + PANEL_W - 0.15, "y": 0.22, "size": FONTS["caption"]})
    return {"netns": netns, "x0": x0, "nodes": nodes, "edges": edges, "path": path, "arrows": arrows, "labels": labels,
            "bridge": name, "captions": captions, "split": ROWS_SPLIT if bridge else None,
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
            "colors": COLORS, "fonts": FONTS, "line": LINE}
