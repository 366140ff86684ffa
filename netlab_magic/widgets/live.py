"""The widgets wired to the lab: what a notebook cell calls to watch the lab it builds.

    >>> from netlab_magic.widgets import topology, counters
    >>> topology()                        # the whole lab, following every change
    >>> counters("host", table="filter")  # the host's filter rules, counters live

However many of them a notebook shows, one thread reads the lab for all (and only while one
is on screen); the widgets of one lab, or of one namespace's table, share their reads.
"""

from __future__ import annotations

from ..backend import current
from ..lab.lab import Lab
from .counters_widget import CountersWidget
from .topology_widget import TopologyWidget


def topology(lab: Lab | None = None, interval: float = 0.5) -> TopologyWidget:
    """A live :class:`TopologyWidget` of ``lab`` (default: the kernel's lab)."""
    lab = lab or current()  # the kernel's lab, in this process or in its VM
    return TopologyWidget(lab.snapshot, interval=interval, key=("topology", id(lab)))


def counters(netns: str = "host", table: str = "filter", lab: Lab | None = None,
             interval: float = 1.0) -> CountersWidget:
    """A live :class:`CountersWidget` of one table in one namespace of the lab.

    Each refresh is one ``iptables-save -c -t TABLE`` run inside ``netns``.
    """
    lab = lab or current()  # the kernel's lab, in this process or in its VM
    lab.netns(netns)  # a missing namespace is an error now, not at every refresh

    def read() -> str:
        result = lab.run(netns, ["iptables-save", "-c", "-t", table], timeout=10)
        if result.returncode:
            raise RuntimeError(result.stderr.strip() or f"iptables-save exited {result.returncode}")
        return result.stdout

    where = "the lab's host" if netns == "host" else netns
    return CountersWidget(read, table=table, interval=interval, key=("counters", id(lab), netns, table),
                          where=where)
