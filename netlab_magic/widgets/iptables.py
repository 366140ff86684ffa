"""iptables counters over time: each rule's and policy's key, their deltas between samples, a plot.

``iptables-save -c`` text is read by :mod:`netlab_magic.linux.iptables_save`; pure (no widget, no
privileges); :mod:`.counters_widget` draws it live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..linux.iptables_save import Chain, Rule, Table, parse_iptables_save  # noqa: F401 - where the counters widget and users import them

#: One sample of the history: (unix time, {counter key: (packets, bytes)}).
Sample = tuple[float, dict[str, tuple[int, int]]]


def flatten(table: Table) -> dict[str, tuple[int, int]]:
    """``{key: (packets, bytes)}`` for every chain policy and rule of a table."""
    out: dict[str, tuple[int, int]] = {}
    for c in table.chains:
        if c.policy is not None:
            out[c.key] = (c.packets, c.bytes)
        for r in c.rules:
            out[r.key] = (r.packets, r.bytes)
    return out


def counter_deltas(
    before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]
) -> dict[str, tuple[int, int]]:
    """What moved between two :func:`flatten` results: ``{key: (dpackets, dbytes)}``.

    New keys are not deltas; a counter that went down was zeroed, so its delta is its value.
    """
    out: dict[str, tuple[int, int]] = {}
    for key, (p, b) in after.items():
        if key not in before:
            continue
        p0, b0 = before[key]
        dp, db = (p - p0, b - b0) if p >= p0 and b >= b0 else (p, b)
        if dp or db:
            out[key] = (dp, db)
    return out


def counter_label(key: str) -> str:
    table, chain, spec = key.split("/", 2)
    return f"{chain} policy" if spec == "policy" else f"{chain}: {spec}"


def plot_counters(
    history: Iterable[Sample],
    keys: Sequence[str] | None = None,
    field: str = "packets",
    ax: Any = None,
) -> Any:
    """Plot counters over time (default: the 5 that moved most); returns the figure."""
    from matplotlib.figure import Figure

    samples = list(history)
    col = 0 if field == "packets" else 1
    if keys is None:
        if samples:
            first, last = samples[0][1], samples[-1][1]
            moved = {k: v[col] - first.get(k, (0, 0))[col] for k, v in last.items()}
            keys = [k for k in sorted(moved, key=lambda k: -moved[k]) if moved[k] > 0][:5]
        else:
            keys = []
    if ax is None:
        fig = Figure(figsize=(7, 3))
        ax = fig.add_subplot()
    t0 = samples[0][0] if samples else 0.0
    for key in keys:
        pts = [(t - t0, c[key][col]) for t, c in samples if key in c]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=counter_label(key), gid=key)
    ax.set_xlabel("seconds")
    ax.set_ylabel(field)
    if keys:
        ax.legend(fontsize=7, loc="upper left")
    return ax.figure


