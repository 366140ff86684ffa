"""Widgets: the live lab topology, iptables counters, and a static matplotlib drawing.

The static parts (:func:`draw`, :func:`compute_layout`, :func:`parse_iptables_save`) need only
matplotlib; the live widgets need anywidget and ipywidgets, imported when first used. The
widget classes take plain callables, so they work with :meth:`Lab.snapshot` or anything
returning the same data; :func:`topology` and :func:`counters` wire them to the kernel's lab.
One thread reads for all of them, only while one is on screen (:mod:`._poll`); each output
also carries a PNG and a text summary, for wherever no widget can be drawn. See docs/widgets.md.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .draw import draw
from .iptables import parse_iptables_save
from .layout import compute_layout

_LAZY = {
    "TopologyWidget": ".topology_widget",
    "CountersWidget": ".counters_widget",
    "plot_counters": ".iptables",
    "topology": ".live",
    "counters": ".live",
}

__all__ = ["CountersWidget", "TopologyWidget", "compute_layout", "counters", "draw",
           "parse_iptables_save", "plot_counters", "topology"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
