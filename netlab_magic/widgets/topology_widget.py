"""The live topology widget: Python polls the lab, the browser draws an SVG."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ..model import LabSnapshot
from ._poll import Polled, Poller
from .layout import compute_layout

_HERE = pathlib.Path(__file__).parent


class TopologyWidget(Polled, anywidget.AnyWidget):
    """The lab as a live diagram: namespaces, bridges, veth pairs, state colours.

    ``source`` is called every ``interval`` seconds on a background thread (``None``
    or ``0``: only on :meth:`refresh`); the browser gets a new picture only when the
    snapshot changed. ``close()`` stops the loop.
    """

    _esm = _HERE / "topology.js"
    _css = _HERE / "topology.css"

    snapshot = traitlets.Dict().tag(sync=True)  # LabSnapshot.to_dict()
    layout = traitlets.Dict().tag(sync=True)  # compute_layout(snapshot)
    error = traitlets.Unicode("").tag(sync=True)  # last failure of source(), "" if none
    height = traitlets.Int(520).tag(sync=True)  # max height of the view, in pixels

    def __init__(
        self,
        source: Callable[[], LabSnapshot | dict[str, Any]],
        interval: float | None = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.refreshes = 0  # how many times source() was called
        self.pushes = 0  # how many times a changed snapshot was sent
        self.last_refresh = 0.0
        self._lock = threading.Lock()
        self._poller: Poller | None = None
        self.refresh()
        if interval:
            self._poller = Poller(self, TopologyWidget.refresh, interval, "netlab-topology")

    def refresh(self) -> bool:
        """Read the source once; send the new picture if it changed. True if it did."""
        with self._lock:
            self.refreshes += 1
            self.last_refresh = time.time()
            try:
                snap = self.source()
                data = snap.to_dict() if isinstance(snap, LabSnapshot) else dict(snap)
            except Exception as err:  # shown in the widget, the loop goes on
                self.error = f"{type(err).__name__}: {err}"
                return False
            if self.error:
                self.error = ""
            if data == self.snapshot:
                return False
            with self.hold_sync():
                self.layout = compute_layout(data)
                self.snapshot = data
            self.pushes += 1
            return True
