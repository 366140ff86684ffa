"""The counters widget: iptables chains with live packet/byte counters (parsing: :mod:`.iptables`)."""

from __future__ import annotations

import pathlib
import time
from collections import deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import anywidget
import traitlets

from ..web.esm import esm
from ._poll import UNSET, Feed, Polled
from ._static import StaticViews
from .iptables import (Chain, Sample, Table, counter_deltas, counter_label, flatten,  # noqa: F401
                       parse_iptables_save, plot_counters)
from .summary import counters_text

_HERE = pathlib.Path(__file__).parent


def _same_counters(a: str, b: str) -> bool:
    """Two ``iptables-save`` outputs with the same rules and counters (its comments carry the time)."""
    if a == b:
        return True

    def body(t: str) -> list[str]:
        return [ln for ln in t.splitlines() if not ln.startswith("#")]

    return body(a) == body(b)


class CountersWidget(Polled, StaticViews, anywidget.AnyWidget):
    """iptables chains with live packet/byte counters; what moved since the last cell is highlighted.

    ``read`` returns ``iptables-save -c`` text; the kernel's one poller calls it while a view
    is shown (every ``interval`` seconds while cells run, less often when nothing moves), and
    once when each cell starts: a row's delta is what moved since the last cell ran, and it
    stays highlighted until the next one runs. Click a rule to plot it over time.
    """

    _esm = esm(_HERE / "counters.js", "dom.js", "view.js")
    _css = _HERE / "counters.css"

    table = traitlets.Unicode("filter").tag(sync=True)
    where = traitlets.Unicode("").tag(sync=True)  # the namespace, for the header
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
        *,
        key: Hashable | None = None,
        where: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(table=table, where=where, **kwargs)
        self.read = read
        self.history: deque[Sample] = deque(maxlen=history)
        self.pushes = 0
        self._changed = False
        self.observe(self._on_selected, names="selected")
        self._start_feed(("counters", read) if key is None else key, read, interval, _same_counters)
        if self._feed is not None:
            self._feed.counts_moves = True

    def _tables(self, feed: Feed, value: Any, name: str) -> Table:
        """``table`` of one read (parsed once per feed)."""
        if value is feed.value:
            tables = feed.memo("tables", lambda: parse_iptables_save(value))
        else:
            tables = parse_iptables_save(value)
        # a table nobody touched yet is not printed at all: show it empty
        return tables.get(name, Table(name))

    def feed_update(self, feed: Feed, changed: bool) -> None:
        if feed.error or feed.value is UNSET:
            self.error = feed.error
            return
        try:
            tab = self._tables(feed, feed.value, self.table)
            base = self._tables(feed, feed.baseline, self.table) if feed.baseline is not UNSET else tab
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            return
        if self.error:
            self.error = ""
        flat = flatten(tab)
        moved = counter_deltas(flatten(base), flat)
        self.history.append((time.time(), flat))
        chains = [self._chain_dict(c, moved) for c in tab.chains]
        with self.hold_sync():
            self._update_series()
            if chains == self.chains:
                return
            self.chains = chains
        self.pushes += 1
        self._changed = True

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
            k: {"label": counter_label(k),
                "points": [[round(t - t0, 3), c[k][0]] for t, c in self.history if k in c]}
            for k in self.selected
        }

    def _on_selected(self, _change: Any) -> None:
        if self._feed is not None:
            with self._feed.lock:
                self._update_series()

    def plot(self, keys: Sequence[str] | None = None, field: str = "packets") -> Any:
        """The history as a matplotlib figure (default keys: the selected ones)."""
        return plot_counters(list(self.history), keys or (self.selected or None), field)

    # -- static views -------------------------------------------------------------------------

    def summary(self) -> str:
        """The table as text: chains, rules, counters, what moved since the last cell ran."""
        if self.error and not self.chains:
            return f"iptables table {self.table}: {self.error}"
        return counters_text(self.chains, self.table, self.where or None)

    def figure(self) -> Any:
        """The table as a matplotlib figure (what the widget shows, without the plot)."""
        from .draw import draw_counters

        return draw_counters(self.chains, self.table, self.where or None)

    def __repr__(self) -> str:
        rules = sum(len(c["rules"]) for c in self.chains)
        where = f" in {self.where}" if self.where else ""
        return f"<CountersWidget: iptables table {self.table}{where}, {len(self.chains)} chains, {rules} rules>"
