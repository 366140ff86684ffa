"""The trace widget: a traced packet's path on the packet-flow picture, live in JupyterLab.

Python lays every packet out once (:mod:`.trace_picture`, the layout :func:`draw_trace` draws
too) and holds the state: which ``packet`` is shown and which ``step`` (hop) is selected; the
browser draws the picture and the hop table and sends clicks back by setting those two.
Nothing polls: a trace is over when it is shown.
"""

from __future__ import annotations

import base64
import io
import pathlib
from typing import Any

import anywidget
import traitlets

from ..web.esm import esm
from .trace_picture import TracedCommand, trace_layout

_HERE = pathlib.Path(__file__).parent


class TraceWidget(anywidget.AnyWidget):
    """Each packet of a :class:`~netlab_magic.packets.trace_model.Trace`: its path drawn, its hops in a table.

    ``packet`` (0-based) chooses the packet; ``step`` (1-based, 0 for none) marks one hop in
    the table and the picture. ``next()`` / ``previous()`` step through the hops as the
    buttons do.
    """

    _esm = esm(_HERE / "trace.js", "dom.js")
    _css = _HERE / "trace.css"

    layouts = traitlets.List().tag(sync=True)  # trace_layout(packet) of each packet
    rows = traitlets.List().tag(sync=True)  # per packet: its hops, as the table shows them
    title = traitlets.Unicode("").tag(sync=True)
    packet = traitlets.Int(0).tag(sync=True)
    step = traitlets.Int(0).tag(sync=True)

    def __init__(self, trace: TracedCommand, **kwargs: Any) -> None:
        data = trace.to_dict()
        layouts = [trace_layout(p) for p in data["packets"]]
        rows = [[{"step": n, "netns": h["netns"], "hook": h["hook_label"], "where": h["where"], "reason": h["reason"],
                  "verdict": h["decision"], "iif": h["iif"] or "-", "oif": h["oif"] or "-",
                  "addresses": h["addresses"]}
                 for n, h in enumerate(p["hops"], 1)] for p in data["packets"]]
        title = f"trace of {trace.command!r} in {trace.netns}" + (f", --match {trace.match!r}" if trace.match else "")
        if not layouts:
            title += f": {trace.nothing_traced()}"
        super().__init__(layouts=layouts, rows=rows, title=title, **kwargs)
        self.trace = trace

    @traitlets.validate("packet")
    def _valid_packet(self, proposal: Any) -> int:
        return max(0, min(int(proposal["value"]), max(0, len(self.layouts) - 1)))

    @traitlets.observe("packet")
    def _packet_changed(self, _change: Any) -> None:
        self.step = 0

    def _hops(self) -> int:
        return len(self.rows[self.packet]) if self.rows else 0

    def next(self) -> None:
        """Select the next hop of the packet (the first after the last)."""
        if self._hops():
            self.step = self.step % self._hops() + 1

    def previous(self) -> None:
        """Select the previous hop."""
        if self._hops():
            self.step = (self.step - 2) % self._hops() + 1

    def __repr__(self) -> str:
        return f"<TraceWidget: {self.title}, {len(self.layouts)} packet(s)>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view, and for static viewers (nbconvert, GitHub) the picture and the tables."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        data = dict(data)
        if self.layouts:
            buf = io.BytesIO()
            self.trace.draw().savefig(buf, format="png", dpi=72, facecolor="white", bbox_inches="tight")
            data["image/png"] = base64.b64encode(buf.getvalue()).decode("ascii")
        data["text/plain"] = f"{self!r}\n{self.trace.summary()}"
        return data, meta
