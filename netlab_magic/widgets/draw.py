"""The widgets as static matplotlib figures: the topology laid out exactly like the live view,
and a counters table. Both show themselves in Jupyter (PNG), ``%matplotlib inline`` or not.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle
from matplotlib.patheffects import withStroke

from ..model import LabSnapshot
from .layout import BOX, compute_layout, fit_scale, state_color
from .summary import counters_head, moved_text, plural

#: The box a static picture is fitted to (px): as wide as the live view, taller (pages scroll).
STATIC_BOX = (BOX[0], 640)
DPI = 100
LINK_PX = 3.0
_DASH = {"DOWN": (7 / LINK_PX, 4 / LINK_PX), "LOWERLAYERDOWN": (2 / LINK_PX, 3.5 / LINK_PX)}
_LEGEND_PX = 30
_MIN_WIDTH_PX = 660  # the legend and the counts above the picture


class LabFigure(Figure):
    """A matplotlib :class:`~matplotlib.figure.Figure` that Jupyter shows as a PNG by itself.

    Without ``%matplotlib inline`` a bare Figure only prints ``<Figure size ...>``; this one
    has ``_repr_png_``. Everything else is the Figure's (``savefig``, ``axes``...).
    """

    def __repr__(self) -> str:
        w, h = self.bbox.size
        return f"<Figure size {w:g}x{h:g} with {len(self.axes)} Axes>"

    def _repr_png_(self) -> bytes:
        return png(self)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (white background), in 256 colours: a quarter of the size, for
    the notebook that stores it, and the same picture (matplotlib brings Pillow)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi, facecolor="white")
    try:
        from PIL import Image

        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        out = io.BytesIO()
        img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, format="PNG", optimize=True)
        return out.getvalue()
    except Exception:  # no Pillow: the full-colour PNG
        return buf.getvalue()


def _pt(px: float) -> float:
    """Pixels (at DPI) in points, for line widths and font sizes."""
    return px * 72.0 / DPI


def draw(snapshot: LabSnapshot | Mapping[str, Any], ax: Axes | None = None,
         layout: Mapping[str, Any] | None = None) -> Figure:
    """Draw a snapshot: a new :class:`LabFigure` (shown as a PNG), or into ``ax`` (its figure).

    Artists are added without touching the axes' data limits (set once, to the picture's
    bounds): a 100-namespace lab draws in a quarter of a second.

    The picture is the live widget's, fitted to 900 px wide with text of at least 12 px. Each
    namespace is one patch whose ``gid`` is ``"netns:<name>"``; each veth half is a line whose
    ``gid`` is ``"if:<netns>/<ifname>"``. ``layout``: a :func:`compute_layout` result to reuse.
    """
    lay = layout or compute_layout(snapshot)
    x0, y0, x1, y1 = lay["bounds"]
    w, h = x1 - x0, y1 - y0
    if ax is None:
        s = fit_scale(lay["bounds"], STATIC_BOX, lay["scale"]["min"], lay["scale"]["max"])
        wpx, hpx = max(w * s, _MIN_WIDTH_PX), h * s  # room for the legend (the picture is centred)
        fig = LabFigure(figsize=(wpx / DPI, (hpx + _LEGEND_PX) / DPI), dpi=DPI)
        ax = fig.add_axes((0, 0, 1, hpx / (hpx + _LEGEND_PX)))
        legend = True
    else:
        fig = ax.figure
        bb = ax.get_window_extent()
        s = min(bb.width / w, bb.height / h) * DPI / fig.dpi
        legend = False
    _draw_layout(ax, lay, s)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)  # y points down, as in the SVG
    ax.set_aspect("equal")
    ax.set_axis_off()
    if legend:
        handles = [Line2D([], [], color=state_color(st), lw=_pt(LINK_PX), ls=(0, _DASH[st]) if st in _DASH else "-",
                          label=st) for st in ("UP", "DOWN", "LOWERLAYERDOWN")]
        handles.append(Line2D([], [], ls="", marker="o", mfc="white", mec=state_color("DOWN"), mew=1.5,
                              label="admin down"))
        c = lay.get("counts") or {}
        fig.legend(handles=handles, loc="upper left", fontsize=_pt(12), frameon=False, ncols=4,
                   borderaxespad=0.2, handlelength=1.8, columnspacing=1.2)
        fig.text(0.995, 1 - 6 / fig.bbox.height, f"{plural(c.get('namespaces', 0), 'namespace')}, "
                 f"{plural(c.get('veth', 0), 'veth pair')}", ha="right", va="top", fontsize=_pt(12), color="#444")
    return fig


def _text(ax: Axes, t: Mapping[str, Any], s: float, color: str, halo: str = "white",
          zorder: int = 6) -> None:
    ha = {"start": "left", "end": "right"}.get(t["anchor"], "center")
    size = _pt(t["size"] * s)
    for k, line in enumerate(t["lines"]):
        ax.text(t["x"], t["y"] + k * t["dy"], line, ha=ha, va="baseline", fontsize=size,
                fontweight="bold" if t.get("bold") and k == 0 else "normal",
                color=color if k == 0 else "#555", zorder=zorder,
                path_effects=[withStroke(linewidth=_pt(3), foreground=halo)])


def _draw_layout(ax: Axes, lay: Mapping[str, Any], s: float) -> None:
    ports = {p["id"]: p for p in lay["ports"]}
    for link in lay["links"]:
        if link["kind"] == "member":
            ax.add_artist(Line2D([link["x1"], link["x2"]], [link["y1"], link["y2"]], color="#999",
                               lw=_pt(1.3), ls=(0, (3, 2.3)), zorder=2))
            continue
        mx, my = link["mx"], link["my"]  # the midpoint, or the apex of a loop
        if link["b"]:
            halves = [(ports[link["a"]], link["x1"], link["y1"], mx, my),
                      (ports[link["b"]], link["x2"], link["y2"], mx, my)]
        else:
            halves = [(ports[link["a"]], link["x1"], link["y1"], link["x2"], link["y2"])]
            ax.add_artist(Circle((link["x2"], link["y2"]), 5 / s, fc="white", ec="#999", lw=_pt(1.3), zorder=3))
        for p, xa, ya, xb, yb in halves:
            st = p["state"]
            ax.add_artist(Line2D([xa, xb], [ya, yb], color=state_color(st), lw=_pt(LINK_PX),
                               ls=(0, _DASH[st]) if st in _DASH else "-", zorder=2, solid_capstyle="butt",
                               gid=f"if:{p['netns']}/{p['ifname']}"))

    for n in lay["nodes"]:
        if n["kind"] == "bridge":
            ax.add_artist(FancyBboxPatch((n["x"] - n["w"], n["y"] - n["h"]), 2 * n["w"], 2 * n["h"],
                                        boxstyle=f"round,pad=0,rounding_size={min(n['h'], 0.08)}",
                                        fc="#fff8e6", ec=state_color(n["state"]), lw=_pt(2), zorder=3,
                                        gid=f"bridge:{n['netns']}/{n['name']}"))
            _text(ax, n["text"], s, "#6b4a00", halo="#fff8e6", zorder=4)
        else:
            fc, ec = ("#e3ecf8", "#2c5aa0") if n["host"] else ("#f4f6f8", "#555")
            ax.add_artist(Circle((n["x"], n["y"]), n["r"], fc=fc, ec=ec, lw=_pt(2 if n["host"] else 1.3),
                                zorder=1 if n["host"] else 3, gid=f"netns:{n['netns']}"))
            _text(ax, n["text"], s, "#2c5aa0" if n["host"] else "#222", zorder=7)

    pr = min(max(0.075 * s, 3.5), 6) / s
    for p in lay["ports"]:
        c = state_color(p["state"])  # admin down: hollow
        ax.add_artist(Circle((p["x"], p["y"]), pr, fc=c if p["admin_up"] else "white",
                            ec="white" if p["admin_up"] else c, lw=_pt(1 if p["admin_up"] else 2),
                            zorder=5, gid=f"port:{p['netns']}/{p['ifname']}"))
        if p.get("text"):
            _text(ax, p["text"], s, "#222")


# ------------------------------------------------------------------ counters


def draw_counters(chains: Sequence[Mapping[str, Any]], table: str = "filter", where: str | None = None,
                  limit: int = 40) -> LabFigure:
    """The counters widget's table as a figure: chains, rules, packets, bytes, what moved."""
    rows: list[tuple[str, Mapping[str, Any] | None]] = []
    shown = 0
    total = sum(len(c["rules"]) for c in chains)
    for c in chains:
        rows.append(("chain", c))
        for r in c["rules"]:
            if shown < limit:
                rows.append(("rule", r))
                shown += 1
    if shown < total:
        rows.append(("more", None))
    line = 19.0
    head = 30.0
    width, height = 900.0, head + line * (max(len(rows), 1) + 1) + 8
    fig = LabFigure(figsize=(width / DPI, height / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    rules, moved, _ = counters_head(chains)
    place = f" in {where}" if where else ""
    title = (f"iptables table {table}{place}: {len(chains)} chains, {rules} rules, {moved} moved since the last cell ran"
             if chains else f"iptables table {table}{place}: empty (no rules yet)")
    ax.text(6, 20, title, fontsize=_pt(13), weight="bold", va="baseline", color="#222")
    mono = {"family": "monospace", "fontsize": _pt(12)}
    y = head
    if chains:
        for x, ha, label in ((40, "right", "#"), (130, "right", "pkts"), (230, "right", "bytes"),
                             (245, "left", "moved"), (420, "left", "rule")):
            ax.text(x, y + line - 5, label, ha=ha, color="#666", fontsize=_pt(12))
        y += line
    for kind, item in rows:
        base = y + line - 5
        if kind == "more":
            ax.text(10, base, f"... {total - shown} more rules", color="#666", **mono)
        elif kind == "chain" and item is not None:
            ax.add_artist(Rectangle((0, y + 1), width, line - 1, fc="#f0f3f7", ec="none"))
            if item.get("policy"):
                txt = f"Chain {item['name']} (policy {item['policy']})  {item['packets']} pkts  {item['bytes']} B"
            else:
                txt = f"Chain {item['name']} (user chain)"
            delta = moved_text(item.get("dpackets", 0), item.get("dbytes", 0)) if item.get("policy") else ""
            if delta:
                ax.add_artist(Rectangle((0, y + 1), width, line - 1, fc="#fff1d6", ec="none"))
            ax.text(6, base, txt, weight="bold", fontsize=_pt(12), color="#222")
            ax.text(560, base, delta, color="#b35c00", weight="bold", **mono)
        elif item is not None:
            delta = moved_text(item.get("dpackets", 0), item.get("dbytes", 0))
            if delta:
                ax.add_artist(Rectangle((0, y + 1), width, line - 1, fc="#fff1d6", ec="none"))
            ax.text(40, base, str(item["index"]), ha="right", color="#888", **mono)
            ax.text(130, base, str(item["packets"]), ha="right", **mono)
            ax.text(230, base, str(item["bytes"]), ha="right", **mono)
            ax.text(245, base, delta, color="#b35c00", weight="bold", **mono)
            spec = item["spec"] if len(item["spec"]) <= 62 else item["spec"][:61] + "…"
            ax.text(420, base, spec, **mono)
        y += line
    return fig
