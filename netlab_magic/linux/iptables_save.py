"""``iptables-save`` text, read: its tables, their chains (policy and counters) and rules in order.

The one reader of that text in the package: the counters widget, the Docker model's tables
(:meth:`netlab_magic.linux.iptables.Tables.parse`), the tracer's rule texts and the put-back of a
failed ``iptables-restore`` all read it here. Pure (no process, no privileges).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]\s*")
_INLINE_C = re.compile(r"(?:^|\s)-c\s+(\d+)\s+(\d+)(?=\s|$)")
_TARGET = re.compile(r"(?:^|\s)-[jg]\s+(\S+)")


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
    def line(self) -> str:
        """The rule as ``iptables-save`` prints it, without counters: ``-A CHAIN SPEC``."""
        return f"-A {self.chain} {self.spec}" if self.spec else f"-A {self.chain}"

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

    def save(self) -> list[str]:
        """The section as ``iptables-save --counters`` prints it, ``*TABLE`` to ``COMMIT``
        (what ``iptables-restore --counters`` takes back)."""
        return [f"*{self.name}",
                *(f":{c.name} {c.policy or '-'} [{c.packets}:{c.bytes}]" for c in self.chains),
                *(f"[{r.packets}:{r.bytes}] {r.line}" for r in self.rules),
                "COMMIT"]


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
