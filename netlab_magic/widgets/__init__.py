"""Widgets: the live lab topology, iptables counters, and a static matplotlib drawing.

Needs the ``widgets`` extra (anywidget, ipywidgets, matplotlib). The widgets take plain
callables, so they work with :meth:`Lab.snapshot` or anything returning the same data.
"""

from .counters import CountersWidget, parse_iptables_save, plot_counters
from .draw import draw
from .layout import compute_layout
from .live import counters, topology
from .topology import TopologyWidget

__all__ = [
    "CountersWidget",
    "TopologyWidget",
    "counters",
    "topology",
    "compute_layout",
    "draw",
    "parse_iptables_save",
    "plot_counters",
]
