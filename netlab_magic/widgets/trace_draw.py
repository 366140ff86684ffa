"""A traced packet's path as a static matplotlib figure, on the talk's packet-flow picture.

Laid out by :mod:`.trace_layout` (the live widget draws the same layout): traversed hooks
filled green with their step numbers, the path as blue arrows, the drop point in red.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

from .trace_layout import COLORS, PANEL_H, PANEL_W, trace_layout

if TYPE_CHECKING:
    from ..trace import Trace

_FILL = {"passed": "#dff3e4", "drop": "#fbe1de", "idle": "#ffffff"}
_EDGE = {"passed": COLORS["passed"], "drop": COLORS["drop"], "idle": COLORS["idle"]}


class TraceFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that Jupyter shows as a PNG by itself (no ``%matplotlib`` needed)."""

    def __repr__(self) -> str:
        w, h = self.bbox.size
        return f"<Figure size {w:g}x{h:g} with {len(self.axes)} Axes>"

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=90, facecolor="white", bbox_inches="tight")
        return buf.getvalue()


def draw_trace(trace: "Trace", packet: int | None = None, ax: Axes | None = None) -> Figure:
    """Every packet of ``trace`` (one row each), or only packet number ``packet`` (0-based).

    Each hook box has the ``gid`` ``"<netns>/<node>"`` (e.g. ``"host/ip:FORWARD"``) and a
    ``"drop"``, ``"passed"`` or ``"idle"`` state in its label, for tests and tools.
    """
    packets = trace.to_dict()["packets"]
    if packet is not None:
        packets = [p for p in packets if p["index"] == packet]
    layouts = [trace_layout(p) for p in packets]
    if ax is not None:
        if len(layouts) != 1:
            raise ValueError("draw one packet (packet=N) into a given ax")
        draw_packet(layouts[0], ax)
        return ax.figure
    return draw_layouts(layouts, trace.nothing_traced())


def draw_layouts(layouts: list[dict[str, Any]], nothing: str = "no packet") -> Figure:
    """Packets laid out by :func:`.trace_layout.trace_layout`, one row each (``nothing``: what to say for none)."""
    if not layouts:
        fig = TraceFigure(figsize=(6, 1))
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, nothing, ha="center", va="center", fontsize=9, wrap=True)
        ax.set_axis_off()
        return fig
    width = max(lay["bounds"][2] for lay in layouts)
    scale = 0.62
    fig = TraceFigure(figsize=(min(width * scale, 36), len(layouts) * (PANEL_H + 1.4) * scale))
    for row, lay in enumerate(layouts):
        draw_packet(lay, fig.add_subplot(len(layouts), 1, row + 1), width=width)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.97, bottom=0.02, hspace=0.12)
    return fig


def draw_packet(lay: dict[str, Any], ax: Axes, width: float | None = None) -> None:
    """One packet's layout into ``ax``."""
    x0, y0, x1, y1 = lay["bounds"]
    x1 = max(x1, width or 0)
    ax.set_title(f"{lay['title']}: {lay['fate']}", loc="left", fontsize=9, color=COLORS["text"])
    for panel in lay["panels"]:
        _panel(ax, panel)
    for link in lay["links"]:
        ax.add_patch(FancyArrowPatch((link["x1"], link["y1"]), (link["x2"], link["y2"]), arrowstyle="-|>",
                                     mutation_scale=12, color=COLORS["path"], lw=2, shrinkA=0, shrinkB=0, zorder=6))
        label = "\n\u2192 ".join(x for x in (link["out"], link["in"]) if x)
        ax.text((link["x1"] + link["x2"]) / 2, (link["y1"] + link["y2"]) / 2 - 0.2, label, ha="center", va="bottom",
                fontsize=6, color=COLORS["path"], zorder=7,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
    ax.set_xlim(x0 - 0.1, x1 + 0.1)
    ax.set_ylim(y1 + 0.1, y0 - 0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _panel(ax: Axes, panel: dict[str, Any]) -> None:
    x0 = panel["x0"]
    ax.add_patch(FancyBboxPatch((x0 + 0.05, 0.1), PANEL_W - 0.1, PANEL_H - 0.2,
                                boxstyle="round,pad=0,rounding_size=0.25", fc="#f6f8fa", ec="#8c959f", lw=1,
                                zorder=0, gid=f"netns:{panel['netns']}"))
    ax.text(x0 + 0.3, 0.28, panel["netns"], ha="left", va="top", fontsize=9, weight="bold", color="#2c5aa0", zorder=7)
    if panel["bridge"]:
        ax.text(x0 + PANEL_W - 0.3, 2.25, f"bridge {panel['bridge']}", ha="right", va="center", fontsize=6.5,
                color="#6b4a00", zorder=7)
    at = {n["id"]: n for n in panel["nodes"]}
    for edge in panel["edges"]:
        x1, y1, x2, y2 = edge["seg"]
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=7,
                                     color=COLORS["idle"], lw=0.8, shrinkA=0, shrinkB=0, zorder=1))
    for x1, y1, x2, y2 in panel["arrows"]:
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=10,
                                     color=COLORS["path"], lw=2, shrinkA=0, shrinkB=0, zorder=5))
    for node in panel["nodes"]:
        _node(ax, panel["netns"], node, panel["labels"].get(node["id"]))
    if panel["drop"]:
        node = at[panel["drop"]]
        ax.text(node["x"] + node["w"] / 2 + 0.08, node["y"], "\u2718 DROP", ha="left", va="center", fontsize=7,
                weight="bold", color=COLORS["drop"], zorder=8)


def _node(ax: Axes, netns: str, node: dict[str, Any], label: str | None) -> None:
    x, y, state, kind = node["x"], node["y"], node["state"], node["kind"]
    gid = f"{netns}/{node['id']}"
    lw = 1.8 if state != "idle" else 0.8
    text_color = COLORS["text"] if state != "idle" else "#8c959f"
    w, h = node["w"], node["h"]
    if kind in ("hook", "nf"):
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                               fc=_FILL[state], ec=_EDGE[state], lw=lw, zorder=3, gid=gid, label=state)
        ax.add_patch(patch)
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=6.5 if kind == "hook" else 5.5,
                weight="bold" if state != "idle" else "normal", color=text_color, zorder=4, gid=f"{gid}:label")
    elif kind == "decision":
        ax.add_patch(Polygon([(x - w / 2, y), (x, y - h / 2), (x + w / 2, y), (x, y + h / 2)], closed=True,
                             fc=_FILL[state], ec=_EDGE[state], lw=lw, zorder=3, gid=gid, label=state))
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=5.5, color=text_color, zorder=4,
                gid=f"{gid}:label")
    else:
        ax.add_patch(Circle((x, y), w / 2, fc=_EDGE[state] if state != "idle" else "white", ec=_EDGE[state], lw=lw,
                            zorder=3, gid=gid, label=state))
        text = node["label"] + (f"\n{label}" if label else "")
        ax.text(x, y + 0.22, text, ha="center", va="top", fontsize=5.5, color=text_color, zorder=4, gid=f"{gid}:label")
    if node["steps"]:
        steps = ",".join(str(s) for s in node["steps"][:4]) + ("\u2026" if len(node["steps"]) > 4 else "")
        ax.add_patch(Rectangle((x + 0.55, y - 0.52), 0.12 + 0.14 * len(steps), 0.26, fc=COLORS["path"], ec="none",
                               zorder=6, gid=f"{gid}:badge"))
        ax.text(x + 0.61, y - 0.39, steps, ha="left", va="center", fontsize=5, color="white", zorder=7,
                gid=f"{gid}:badge")
    for i, note in enumerate(node["notes"]):
        colour = COLORS["drop"] if "DROP" in note else COLORS["text"]
        ax.text(x, y + 0.3 + 0.22 * i, note if len(note) < 38 else note[:36] + "\u2026", ha="center", va="top",
                fontsize=5.3, color=colour, zorder=6, gid=f"{gid}:note",
                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.85})



