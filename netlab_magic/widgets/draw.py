"""The topology as a static matplotlib figure, laid out exactly like the live widget."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyBboxPatch

from ..model import LabSnapshot
from .layout import compute_layout, state_color

_DASH = {"DOWN": (0, (4, 2.5)), "LOWERLAYERDOWN": (0, (1, 2))}
_VA = {"top": "top", "bottom": "bottom", "middle": "center"}
_HA = {"start": "left", "end": "right", "middle": "center"}


def draw(snapshot: LabSnapshot | Mapping[str, Any], ax: Axes | None = None) -> Figure:
    """Draw a snapshot; returns the figure (a new one unless ``ax`` is given).

    Each namespace is one patch whose ``gid`` is ``"netns:<name>"``; each veth half is a
    line whose ``gid`` is ``"if:<netns>/<ifname>"``.
    """
    lay = compute_layout(snapshot)
    x0, y0, x1, y1 = lay["bounds"]
    if ax is None:
        scale = 0.75
        w = min(max((x1 - x0) * scale, 4.0), 40.0)
        fig = Figure(figsize=(w, w * (y1 - y0) / (x1 - x0)))
        ax = fig.add_subplot()
    fig = ax.figure
    font = 7 if not lay["dense"] else 5
    ports = {p["id"]: p for p in lay["ports"]}

    for link in lay["links"]:
        if link["kind"] == "member":
            ax.add_line(Line2D([link["x1"], link["x2"]], [link["y1"], link["y2"]], color="#999",
                               lw=0.8, ls=(0, (2, 2)), zorder=1))
            continue
        mx, my = link["mx"], link["my"]  # the midpoint, or the apex of a loop
        halves = [(ports[link["a"]], link["x1"], link["y1"], mx, my)]
        if link["b"]:
            halves.append((ports[link["b"]], link["x2"], link["y2"], mx, my))
        else:
            halves = [(ports[link["a"]], link["x1"], link["y1"], link["x2"], link["y2"])]
        for p, xa, ya, xb, yb in halves:
            ax.add_line(Line2D([xa, xb], [ya, yb], color=state_color(p["state"]), lw=2,
                               ls=_DASH.get(p["state"], "-"), zorder=1,
                               gid=f"if:{p['netns']}/{p['ifname']}"))

    for n in lay["nodes"]:
        if n["kind"] == "bridge":
            patch = FancyBboxPatch((n["x"] - n["r"], n["y"] - 0.75 * n["r"]), 2 * n["r"], 1.5 * n["r"],
                                   boxstyle="round,pad=0,rounding_size=0.07", fc="#fff8e6",
                                   ec=state_color(n["state"]), lw=1.5, zorder=3,
                                   gid=f"bridge:{n['netns']}/{n['name']}")
            ax.add_patch(patch)
            ax.text(n["x"], n["y"], n["name"], ha="center", va="center", fontsize=font,
                    weight="bold", color="#6b4a00", zorder=4)
        else:
            fc, ec = ("#e3ecf8", "#2c5aa0") if n["host"] else ("#f4f6f8", "#555")
            ax.add_patch(Circle((n["x"], n["y"]), n["r"], fc=fc, ec=ec, lw=1.5 if n["host"] else 1,
                                zorder=2, gid=f"netns:{n['netns']}"))
            y = n["y"] - n["r"] + 0.3 if n["host"] else n["y"]
            ax.text(n["x"], y, n["name"], ha="center", va="center", fontsize=font + 1, weight="bold",
                    color=ec, zorder=4)

    for p in lay["ports"]:
        c = state_color(p["state"])  # admin down: hollow
        ax.add_patch(Circle((p["x"], p["y"]), p["r"], fc=c if p["admin_up"] else "white",
                            ec="white" if p["admin_up"] else c, lw=0.5 if p["admin_up"] else 1.2,
                            zorder=5, gid=f"port:{p['netns']}/{p['ifname']}"))
        if p["label"]:
            ax.text(p["lx"], p["ly"], "\n".join(p["lines"]), ha=_HA[p["anchor"]],
                    va=_VA[p["valign"]], fontsize=font - 1, zorder=6, linespacing=1.1)

    handles = [Line2D([], [], color=state_color(s), lw=2, ls=_DASH.get(s, "-"), label=s)
               for s in ("UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN")]
    handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec=state_color("DOWN"),
                          label="admin down"))
    ax.legend(handles=handles, loc="upper left", fontsize=font, frameon=False,
              ncols=5 if fig.get_figwidth() > 6 else 2)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # y points down, as in the SVG
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig
