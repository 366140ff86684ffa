"""The counters widget: iptables chains with live packet/byte counters (parsing: :mod:`.iptables`)."""

from __future__ import annotations

import pathlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anywidget
import traitlets

from ._poll import Polled, Poller
from .iptables import (Chain, Sample, Table, _label, counter_deltas, flatten,  # noqa: F401
                       parse_iptables_save, plot_counters)

_HERE = pathlib.Path(__file__).parent


class CountersWidget(Polled, anywidget.AnyWidget):
    """iptables chains with live packet/byte counters; rules that moved are highlighted.

    ``read`` returns ``iptables-save -c`` text and is called once per refresh, every
    ``interval`` seconds on a background thread. Click a rule to plot it over time.
    ``close()`` stops the loop.
    """

    _esm = _HERE / "counters.js"
    _css = _HERE / "counters.css"

    table = traitlets.Unicode("filter").tag(sync=True)
    chains = traitlets.List().tag(sync=True)  # what the browser draws, deltas included
    selected = traitlets.List(traitlets.Unicode()).tag(sync=True)  # keys to plot
    series = traitlets.Dict().tag(sync=True)  # {key: {"label", "points": [[t, packets], ...]}}
    error = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(480).tag(sync=True)

    def __init__(
        self,
        read: Callable[[], str],
        table: str = "filter",
        interval: float | None = 1.0,
        history: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, **kwargs)
        self.read = read
        self.history: deque[Sample] = deque(maxlen=history)
        self.refreshes = 0
        self.pushes = 0
        self._prev: dict[str, tuple[int, int]] | None = None
        self._lock = threading.RLock()
        self._poller: Poller | None = None
        self.observe(self._on_selected, names="selected")
        self.refresh()
        if interval:
            self._poller = Poller(self, CountersWidget.refresh, interval, "netlab-counters")

    def refresh(self) -> bool:
        """Read the counters once; send them if they changed. True if they did."""
        with self._lock:
            self.refreshes += 1
            try:
                # a table nobody touched yet is not printed at all: show it empty
                tab = parse_iptables_save(self.read()).get(self.table, Table(self.table))
            except Exception as err:
                self.error = f"{type(err).__name__}: {err}"
                return False
            if self.error:
                self.error = ""
            flat = flatten(tab)
            moved = counter_deltas(self._prev or {}, flat)
            self._prev = flat
            self.history.append((time.time(), flat))
            chains = [self._chain_dict(c, moved) for c in tab.chains]
            with self.hold_sync():
                self._update_series()
                if chains == self.chains:
                    return False
                self.chains = chains
            self.pushes += 1
            return True

    @staticmethod
    def _chain_dict(c: Chain, moved: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
        dp, db = moved.get(c.key, (0, 0))
        return {
            "name": c.name, "policy": c.policy, "key": c.key, "packets": c.packets,
            "bytes": c.bytes, "dpackets": dp, "dbytes": db,
            "rules": [
                {"key": r.key, "index": r.index, "spec": r.spec, "target": r.target,
                 "packets": r.packets, "bytes": r.bytes,
                 "dpackets": moved.get(r.key, (0, 0))[0], "dbytes": moved.get(r.key, (0, 0))[1]}
                for r in c.rules
            ],
        }

    def _update_series(self) -> None:
        if not self.selected and not self.series:
            return
        t0 = self.history[0][0] if self.history else 0.0
        self.series = {
            k: {"label": _label(k),
                "points": [[round(t - t0, 3), c[k][0]] for t, c in self.history if k in c]}
            for k in self.selected
        }

    def _on_selected(self, _change: Any) -> None:
        with self._lock:
            self._update_series()

    def plot(self, keys: Sequence[str] | None = None, field: str = "packets") -> Any:
        """The history as a matplotlib figure (default keys: the selected ones)."""
        return plot_counters(list(self.history), keys or (self.selected or None), field)
