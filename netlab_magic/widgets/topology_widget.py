"""The live topology widget: Python reads the lab, the browser draws an SVG."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Hashable
from typing import Any

import anywidget
import traitlets

from ..model import LabSnapshot
from ..web.esm import esm
from ._poll import Feed, Polled
from ._static import StaticViews
from .layout import compute_layout, snapshot_dict
from .summary import topology_head, topology_text

_HERE = pathlib.Path(__file__).parent


class TopologyWidget(Polled, StaticViews, anywidget.AnyWidget):
    """The lab as a live diagram: namespaces, bridges, veth pairs, state colours.

    ``source()`` (anything returning a :class:`LabSnapshot` or its ``to_dict()``) is read by
    the kernel's one poller while a view of the widget is shown: every ``interval`` seconds
    while cells run, less often when nothing changes (``None`` or ``0``: only on
    :meth:`refresh`). The browser gets a new picture only when the snapshot changed. Widgets
    with the same ``source`` (or ``key``) share their reads. ``.layout`` is ipywidgets' own
    (``w.layout.height = "300px"``: the picture fits that box); ``height`` is the largest
    height (px) the view takes otherwise.
    """

    _esm = esm(_HERE / "topology.js", "dom.js", "view.js")
    _css = _HERE / "topology.css"

    diagram = traitlets.Dict().tag(sync=True)  # compute_layout(snapshot)
    error = traitlets.Unicode("").tag(sync=True)  # last failure of source(), "" if none
    height = traitlets.Int(520).tag(sync=True)  # max height of the view, in pixels

    def __init__(
        self,
        source: Callable[[], LabSnapshot | dict[str, Any]],
        interval: float | None = 0.5,
        *,
        key: Hashable | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.snapshot: dict[str, Any] = {}  # LabSnapshot.to_dict() of what is drawn
        self.pushes = 0  # how many times a changed picture was sent
        self._changed = False
        self._start_feed(("topology", source) if key is None else key, source, interval)

    def feed_update(self, feed: Feed, changed: bool) -> None:
        if feed.error:
            self.error = feed.error
            return
        if self.error:
            self.error = ""
        if not changed and self.diagram:
            return
        data = feed.memo("dict", lambda: snapshot_dict(feed.value))
        if data == self.snapshot and self.diagram:
            return
        lay = feed.memo("layout", lambda: compute_layout(data))
        self.snapshot = data
        self.diagram = lay
        self.pushes += 1
        self._changed = True

    # -- static views -------------------------------------------------------------------------

    def summary(self) -> str:
        """The lab as text (what the widget shows where no JavaScript runs)."""
        if self.error and not self.snapshot:
            return f"netlab topology: {self.error}"
        return topology_text(self.snapshot)

    def figure(self) -> Any:
        """The picture the widget shows, as a matplotlib figure (see :func:`draw`)."""
        from .draw import draw

        return draw(self.snapshot, layout=self.diagram or None)

    def __repr__(self) -> str:
        return f"<TopologyWidget: {topology_head(self.snapshot)}>"
