"""A traced packet's path as a static matplotlib figure, on the talk's packet-flow picture.

Laid out by :mod:`.trace_picture` (the live widget draws the same layout): traversed hooks
filled green with their step numbers, the path as blue arrows, the drop point in red.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

from .trace_picture import CHAR, COLORS, FONTS, LINE, PANEL_H, PANEL_W, TracedCommand, trace_layout

_FILL = {"passed": "#dff3e4", "drop": "#fbe1de", "idle": "#ffffff"}
_HA = {"start": "left", "middle": "center", "end": "right"}
#: Inches per unit of the layout.
SCALE = 0.62
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


def draw_trace(trace: TracedCommand, packet: int | None = None, ax: Axes | None = None) -> Figure:
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
    """Packets laid out by :func:`.trace_picture.trace_layout`, one row each (``nothing``: what to say for none)."""
    if not layouts:
        fig = TraceFigure(figsize=(6, 1))
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, nothing, ha="center", va="center", fontsize=9, wrap=True)
        ax.set_axis_off()
        return fig
    width = max(lay["bounds"][2] for lay in layouts)
    fig = TraceFigure(figsize=(min(width * SCALE, 36), len(layouts) * (PANEL_H + 1.8) * SCALE))
    for row, lay in enumerate(layouts):
        draw_packet(lay, fig.add_subplot(len(layouts), 1, row + 1), width=width)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.97, bottom=0.02, hspace=0.12)
    return fig


def _pt(size: float) -> float:
    """A font size in the layout's units, in points (at SCALE inches per unit)."""
    return size * SCALE * 72


def draw_packet(lay: dict[str, Any], ax: Axes, width: float | None = None) -> None:
    """One packet's layout into ``ax``."""
    x0, y0, x1, y1 = lay["bounds"]
    x1 = max(x1, width or 0)
    # the title in the lines the picture is wide enough for
    chars = max(20, int((x1 - x0) / (lay["fonts"]["title"] * CHAR)) - 2)
    title = "\n".join(textwrap.wrap(f"{lay['title']}: {lay['fate']}", chars))
    ax.set_title(title, loc="left", fontsize=_pt(lay["fonts"]["title"]), color=COLORS["text"])
    for panel in lay["panels"]:
        _panel(ax, panel)
    for link in lay["links"]:
        ax.add_patch(FancyArrowPatch((link["x1"], link["y1"]), (link["x2"], link["y2"]), arrowstyle="-|>",
                                     mutation_scale=12, color=COLORS["path"], lw=2, shrinkA=0, shrinkB=0, zorder=6))
    ax.set_xlim(x0 - 0.1, x1 + 0.1)
    ax.set_ylim(y1 + 0.1, y0 - 0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()


def _lines(ax: Axes, x: float, y: float, lines: list[str], size: float, gid: str, **kwargs: Any) -> None:
    """Lines of text, the first one's top at ``y``, each where the layout counted it."""
    for i, line in enumerate(lines):
        ax.text(x, y + i * size * LINE, line, va="top", fontsize=_pt(size), gid=gid, **kwargs)


def _panel(ax: Axes, panel: dict[str, Any]) -> None:
    x0 = panel["x0"]
    ax.add_patch(FancyBboxPatch((x0 + 0.05, 0.1), PANEL_W - 0.1, PANEL_H - 0.2,
                                boxstyle="round,pad=0,rounding_size=0.25", fc="#f6f8fa", ec="#8c959f", lw=1,
                                zorder=0, gid=f"netns:{panel['netns']}"))
    ax.text(x0 + 0.3, 0.22, panel["netns"], ha="left", va="top", fontsize=_pt(FONTS["netns"]), weight="bold",
            color="#2c5aa0", zorder=7)
    if panel["split"] is not None:
        ax.plot([x0 + 0.15, x0 + PANEL_W - 0.15], [panel["split"]] * 2, color="#c9ced6", lw=0.8, ls=(0, (4, 3)),
                zorder=0.5)
    for caption in panel["captions"]:
        ax.text(caption["x"], caption["y"], caption["text"], ha="right", va="top", fontsize=_pt(caption["size"]),
                style="italic", color="#6b4a00", zorder=7)
    for edge in panel["edges"]:
        x1, y1, x2, y2 = edge["seg"]
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=7,
                                     color=COLORS["idle"], lw=0.8, shrinkA=0, shrinkB=0, zorder=1))
    for x1, y1, x2, y2 in panel["arrows"]:
        ax.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=10,
                                     color=COLORS["path"], lw=2, shrinkA=0, shrinkB=0, zorder=5))
    for node in panel["nodes"]:
        _node(ax, panel["netns"], node)


def _node(ax: Axes, netns: str, node: dict[str, Any]) -> None:
    x, y, state, kind = node["x"], node["y"], node["state"], node["kind"]
    gid = f"{netns}/{node['id']}"
    lw = 1.8 if state != "idle" else 0.8
    text_color = COLORS["text"] if state != "idle" else "#8c959f"
    w, h = node["w"], node["h"]
    if kind in ("hook", "nf"):
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                               fc=_FILL[state], ec=_EDGE[state], lw=lw, zorder=3, gid=gid, label=state)
        ax.add_patch(patch)
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=_pt(node["size"]),
                weight="bold" if state != "idle" else "normal", color=text_color, zorder=4, gid=f"{gid}:label")
    elif kind == "decision":
        ax.add_patch(Polygon([(x - w / 2, y), (x, y - h / 2), (x + w / 2, y), (x, y + h / 2)], closed=True,
                             fc=_FILL[state], ec=_EDGE[state], lw=lw, zorder=3, gid=gid, label=state))
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=_pt(node["size"]), color=text_color,
                zorder=4, gid=f"{gid}:label")
    else:
        ax.add_patch(Circle((x, y), w / 2, fc=_EDGE[state] if state != "idle" else "white", ec=_EDGE[state], lw=lw,
                            zorder=3, gid=gid, label=state))
        _lines(ax, x, node["label_y"], [node["label"]], node["size"], f"{gid}:label", ha="center",
               color=text_color, zorder=4)
    badge = node.get("badge")
    if badge:
        ax.add_patch(Rectangle((badge["x"], badge["y"]), badge["w"], badge["h"], fc=_EDGE[state] if state == "drop"
                               else COLORS["path"], ec="none", zorder=6, gid=f"{gid}:badge"))
        ax.text(badge["x"] + 0.05, badge["y"] + badge["h"] / 2, badge["text"], ha="left", va="center",
                fontsize=_pt(FONTS["badge"]), color="white", zorder=7, gid=f"{gid}:badge")
    for i, line in enumerate(node["note_lines"]):
        colour = COLORS["drop"] if state == "drop" else COLORS["text"]
        ax.text(node["note_x"], node["note_y"] + i * FONTS["note"] * LINE, line, ha=_HA[node["note_anchor"]], va="top",
                fontsize=_pt(FONTS["note"]),
                color=colour, zorder=6, gid=f"{gid}:note",
                bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.85})
