"""widgets/layout.py: the topology's layout, legible from 2 to 100 namespaces, deterministic."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")

from netlab_magic.model import Interface, LabSnapshot, Namespace  # noqa: E402
from netlab_magic.widgets import compute_layout, draw  # noqa: E402
from netlab_magic.widgets.lab_graph import DENSE_PORTS  # noqa: E402
from netlab_magic.widgets.layout import BOX, MAX_PX, MIN_PX, STATE_COLORS, state_color  # noqa: E402
from netlab_magic.widgets.rings import NS_R  # noqa: E402
from support.widgets import iface, star  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_poller")


def _shown_text(lay):
    """Every text block drawn: namespace and bridge names, interface labels."""
    return [n["text"] for n in lay["nodes"]] + [p["text"] for p in lay["ports"] if p["text"]]


@pytest.mark.parametrize("n", [2, 3, 8, 13, 14, 30, 100])
def test_layout_legible_from_2_to_100_namespaces(n):
    snap = star(n)
    lay = compute_layout(snap)
    json.dumps(lay)
    ns_nodes = [x for x in lay["nodes"] if x["kind"] == "netns"]
    assert [x["netns"] for x in ns_nodes] == list(snap.names)
    host = ns_nodes[0]
    assert host["host"] and (host["x"], host["y"]) == (0.0, 0.0)
    # one veth link per pair, every interface has a marker
    assert len([lk for lk in lay["links"] if lk["kind"] == "veth"]) == n - 1
    assert len(lay["ports"]) == sum(1 for ns in snap.namespaces for i in ns.interfaces if i.kind != "bridge")
    # no two namespaces overlap, and no link runs through a namespace it does not join
    for a in ns_nodes:
        for b in ns_nodes:
            if a is not b:
                assert math.hypot(a["x"] - b["x"], a["y"] - b["y"]) > a["r"] + b["r"] + 0.2
    ports = {p["id"]: p for p in lay["ports"]}
    for lk in lay["links"]:
        if lk["kind"] != "veth":
            continue
        ends = {ports[lk["a"]]["netns"], ports[lk["b"]]["netns"]}
        for x in ns_nodes:
            if x["netns"] not in ends:
                d = seg_point_dist(x["x"], x["y"], lk["x1"], lk["y1"], lk["x2"], lk["y2"])
                assert d > x["r"], (lk["id"], x["netns"])
    x0, y0, x1, y1 = lay["bounds"]
    for x in lay["nodes"]:
        hw, hh = x.get("w", x["r"]), x.get("h", x["r"])
        assert x0 <= x["x"] - hw and x["x"] + hw <= x1 and y0 <= x["y"] - hh and x["y"] + hh <= y1
    texts = _shown_text(lay)
    for t in texts:
        assert x0 <= t["box"][0] and t["box"][2] <= x1 and y0 <= t["box"][1] and t["box"][3] <= y1
    # dense by the number of interfaces: 13 namespaces = 24 veth ends, 14 = 26
    assert lay["dense"] == ((n - 1) * 2 > DENSE_PORTS)
    assert lay["counts"]["ports"] == (n - 1) * 2
    if not lay["dense"]:
        assert lay["counts"]["labels"] >= 0.9 * len(lay["ports"])  # (almost) every interface named
    # fitted to the default box, both ways, with every text at least 12 px high: no scrolling
    w, h = x1 - x0, y1 - y0
    fit = min(BOX[0] / w, BOX[1] / h)
    assert lay["scale"]["min"] <= fit * 1.03, (n, fit, lay["scale"])
    s = lay["scale"]["fit"]
    assert w * s <= BOX[0] * 1.03 and h * s <= BOX[1] * 1.03
    assert min(t["size"] for t in texts) * s >= MIN_PX * 0.97
    assert max(t["size"] for t in texts) * lay["scale"]["max"] <= MAX_PX * 1.5
    # and a small lab is enlarged: it fills the box one way or the other
    assert w * s >= BOX[0] * 0.6 or h * s >= BOX[1] * 0.95, (n, w * s, h * s)
    # no text over other text, over a namespace, or across a link
    boxes = [t["box"] for t in texts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] - 1e-6 and b[0] < a[2] - 1e-6 and a[1] < b[3] - 1e-6 and b[1] < a[3] - 1e-6), (a, b)
    for p in lay["ports"]:
        if p["text"]:
            for x in ns_nodes:
                if not x["host"]:
                    bx = p["text"]["box"]
                    qx, qy = min(max(x["x"], bx[0]), bx[2]), min(max(x["y"], bx[1]), bx[3])
                    assert math.hypot(qx - x["x"], qy - x["y"]) >= x["r"] - 1e-6, (p["id"], x["netns"])


def test_layout_landscape_lo_up_and_bridge_addresses():
    lay = compute_layout(star(3))
    x0, y0, x1, y1 = lay["bounds"]
    assert x1 - x0 > y1 - y0  # two namespaces left and right of the host, not above and below
    lo = {(p["netns"], p["ifname"]): p for p in lay["ports"]}[("c1", "lo")]
    assert (lo["state"], lo["operstate"], lo["admin_up"]) == ("UP", "UNKNOWN", True)  # lo works: UP
    assert "operstate UNKNOWN" in lo["title"]
    br = next(x for x in lay["nodes"] if x["kind"] == "bridge")
    assert br["text"]["lines"] == ["br0", "10.0.0.1/24"]  # drawn, not only in the tooltip
    assert br["addresses"] == ["10.0.0.1/24"]
    down = LabSnapshot((Namespace("host", (iface("lo", 1, "loopback", "DOWN"),)),))
    assert compute_layout(down)["ports"][0]["state"] == "DOWN"
    dummy = Interface("d0", 2, "dummy", "UNKNOWN", False, 1500, None)
    assert compute_layout(LabSnapshot((Namespace("host", (dummy,)),)))["ports"][0]["state"] == "DOWN"


def test_layout_of_a_small_box_and_of_a_lab_with_long_names():
    small = compute_layout(star(30), box=(400, 300))
    assert small["dense"] and small["fonts"]["ns"] > compute_layout(star(30))["fonts"]["ns"]
    names = LabSnapshot((Namespace("host", (iface("br-0123456789ab", 2, "bridge", addrs=["172.18.0.1/16"]),)),
                         *(Namespace(f"container-{k}", (iface("eth0", 2, peer=("host", f"veth{k}")),))
                           for k in range(6))))
    lay = compute_layout(names)
    br = next(x for x in lay["nodes"] if x["kind"] == "bridge")
    bw, _ = br["text"]["box"][2] - br["text"]["box"][0], None
    assert bw <= 2 * br["w"]  # the bridge is as wide as its name


def test_layout_bridge_ports_and_half_up_veth():
    snap = star(4, {1: ("DOWN", "LOWERLAYERDOWN")})
    lay = compute_layout(snap)
    br = next(x for x in lay["nodes"] if x["kind"] == "bridge")
    assert (br["netns"], br["name"], br["state"]) == ("host", "br0", "UP")
    ports = {(p["netns"], p["ifname"]): p for p in lay["ports"]}
    assert ports[("host", "veth1")]["node"] == "br:host/br0"  # a bridge port hangs on the bridge
    assert ports[("host", "veth3")]["node"] == "ns:host"  # a plain veth hangs on its namespace
    link = next(lk for lk in lay["links"] if lk["id"] == "link:host/veth1")
    assert (link["state_a"], link["state_b"], link["state"]) == ("DOWN", "LOWERLAYERDOWN", "MIXED")
    assert len({state_color(s) for s in ("UP", "DOWN", "LOWERLAYERDOWN")}) == 3
    assert lay["colors"]["LOWERLAYERDOWN"] == STATE_COLORS["LOWERLAYERDOWN"]


def test_layout_peer_outside_lab_and_namespace_bridge():
    snap = LabSnapshot((
        Namespace("host", (iface("eth9", 2, peer=(None, None)),)),
        Namespace("r1", (iface("br1", 2, "bridge"), iface("p1", 3, master="br1", peer=("r2", "p2")))),
        Namespace("r2", (iface("p2", 2, peer=("r1", "p1")),)),
    ))
    lay = compute_layout(snap)
    kinds = sorted(lk["kind"] for lk in lay["links"])
    assert kinds == ["member", "stub", "veth"]
    veth = next(lk for lk in lay["links"] if lk["kind"] == "veth")
    ports = {p["id"]: p for p in lay["ports"]}
    assert {ports[veth["a"]]["node"], ports[veth["b"]]["node"]} == {"br:r1/br1", "ns:r2"}


def test_layout_accepts_dicts_and_is_deterministic():
    snap = star(12)
    assert compute_layout(snap) == compute_layout(snap.to_dict())


def seg_point_dist(px, py, x1, y1, x2, y2):
    dx, dy = x2 - x1, y2 - y1
    t = max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / (dx * dx + dy * dy or 1)))
    return math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))


def test_ns_radius_constant_is_used():
    assert compute_layout(star(2))["nodes"][-1]["r"] == NS_R


@pytest.mark.parametrize("snap", [
    LabSnapshot(()),
    LabSnapshot((Namespace("host", (iface("lo", 1, "loopback", "UNKNOWN"),)),)),
    LabSnapshot((Namespace("a", (iface("x", 2, peer=("b", "y")),)), Namespace("b", (iface("y", 2, peer=("a", "x")),)))),
])
def test_small_and_hostless_snapshots(snap):
    lay = compute_layout(snap)
    assert len([n for n in lay["nodes"] if n["kind"] == "netns"]) == len(snap.namespaces)
    assert draw(snap).axes
    assert draw(snap)._repr_png_()[:4] == b"\x89PNG"
