"""Where iptables counters are parsed: ``iptables-save -c`` text into chains, rules and counters.

Pure (no widget, no privileges); :mod:`.counters` draws it live.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s*")
_INLINE_C = re.compile(r"(?:^|\s)-c\s+(\d+)\s+(\d+)(?=\s|$)")
_TARGET = re.compile(r"(?:^|\s)-[jg]\s+(\S+)")

#: One sample of the history: (unix time, {counter key: (packets, bytes)}).
Sample = tuple[float, dict[str, tuple[int, int]]]


@dataclass(frozen=True)
class Rule:
    """One ``-A`` line: its chain, 1-based position, text after ``-A CHAIN`` and counters."""

    table: str
    chain: str
    index: int
    spec: str
    packets: int
    bytes: int
    key: str  # "table/chain/spec", "#n" appended for the n-th identical rule

    @property
    def target(self) -> str | None:
        m = _TARGET.search(self.spec)
        return m.group(1) if m else None


@dataclass(frozen=True)
class Chain:
    """A chain: its policy (``None`` for a user chain) with the policy's counters, and rules."""

    table: str
    name: str
    policy: str | None
    packets: int
    bytes: int
    rules: tuple[Rule, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.table}/{self.name}/policy"


@dataclass(frozen=True)
class Table:
    """One ``*table`` section of ``iptables-save``."""

    name: str
    chains: tuple[Chain, ...] = ()

    def __getitem__(self, chain: str) -> Chain:
        for c in self.chains:
            if c.name == chain:
                return c
        raise KeyError(chain)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for c in self.chains for r in c.rules)


def parse_iptables_save(text: str) -> dict[str, Table]:
    """Parse ``iptables-save -c`` output into ``{table name: Table}``.

    Counters come from the ``[packets:bytes]`` prefix (or an inline ``-c P B``);
    a line without them counts as zero. Raises ``ValueError`` on a line it cannot place.
    """
    tables: dict[str, Table] = {}
    table: str | None = None
    chains: dict[str, dict[str, Any]] = {}

    def close() -> None:
        if table is not None:
            tables[table] = Table(table, tuple(
                Chain(table, name, c["policy"], c["packets"], c["bytes"], tuple(c["rules"]))
                for name, c in chains.items()
            ))

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            close()
            table, chains = line[1:].strip(), {}
            continue
        if line == "COMMIT":
            close()
            table, chains = None, {}
            continue
        if table is None:
            raise ValueError(f"line {lineno}: outside a *table section: {line!r}")
        if line.startswith(":"):
            parts = line[1:].split()
            if len(parts) < 2:
                raise ValueError(f"line {lineno}: bad chain line: {line!r}")
            m = _COUNTERS.match(parts[2]) if len(parts) > 2 else None
            chains[parts[0]] = {
                "policy": None if parts[1] == "-" else parts[1],
                "packets": int(m.group(1)) if m else 0,
                "bytes": int(m.group(2)) if m else 0,
                "rules": [], "seen": {},
            }
            continue
        packets = nbytes = 0
        m = _COUNTERS.match(line)
        if m:
            packets, nbytes = int(m.group(1)), int(m.group(2))
            line = line[m.end():]
        if not line.startswith("-A "):
            raise ValueError(f"line {lineno}: not a rule: {raw!r}")
        _, chain, *rest = line.split(None, 2)
        spec = rest[0] if rest else ""
        inline = _INLINE_C.search(spec)
        if inline and not m:
            packets, nbytes = int(inline.group(1)), int(inline.group(2))
            spec = (spec[: inline.start()] + spec[inline.end():]).strip()
        c = chains.setdefault(chain, {"policy": None, "packets": 0, "bytes": 0, "rules": [], "seen": {}})
        n = c["seen"][spec] = c["seen"].get(spec, 0) + 1
        key = f"{table}/{chain}/{spec}" + (f"#{n}" if n > 1 else "")
        c["rules"].append(Rule(table, chain, len(c["rules"]) + 1, spec, packets, nbytes, key))
    close()
    return tables


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


