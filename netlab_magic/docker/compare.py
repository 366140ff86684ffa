"""Two Docker releases side by side: the rules each would install for the same networks and containers.

:func:`side_by_side` takes what this lab's dockerd was told (its networks and containers, with
their ids and addresses) and replays it under two releases (:func:`netlab_magic.docker.rules.build`),
then prints each chain of each table in two columns, the rules both have on the same line::

    Docker 20.10                                 │ Docker 28.5
    filter FORWARD                               │ filter FORWARD
      -j DOCKER-USER                             │   -j DOCKER-USER
      -j DOCKER-ISOLATION-STAGE-1                │
                                                 │   -j DOCKER-FORWARD

Bridges ``br-<12 hex>`` are shown by their network's name (``<dummy1>``). Nothing is changed:
it reads the engine's model, which is what the lab's host holds.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from ..checks import beside_the_lab, lab_or_current
from ..linux.iptables import BUILTIN, TABLE_ORDER, Tables
from . import rules, versions
from .daemon import Daemon


def as_release(daemon: Daemon, key: str) -> Tables:
    """The rules release ``key`` would install for what ``daemon`` was told, in its order."""
    other = copy.copy(daemon)
    other.version, other.release = key, versions.release(key)
    return rules.build(other)


@beside_the_lab
def side_by_side(left: str = "20.10", right: str = "28.5", *, tables: tuple[str, ...] = TABLE_ORDER,
                 daemon: Daemon | None = None, lab: Any = None) -> None:
    """Print every chain of ``tables`` under both releases, in two columns (see the module)."""
    if daemon is None:
        from .engine import engine

        daemon = engine(lab_or_current(lab)).start()
    names = {net.bridge: f"<{net.name}>" for net in daemon.networks.values() if net.bridge.startswith("br-")}
    both = (as_release(daemon, left), as_release(daemon, right))
    rows: list[tuple[str, str]] = []
    for table in tables:
        chains = [c for c in BUILTIN[table] if c in both[0].chains[table]]
        chains += sorted({c for t in both for c in t.chains[table]} - set(chains))
        for chain in chains:
            a, b = ([_short(r, names) for r in t.chains[table].get(chain, [])] for t in both)
            if not a and not b:
                continue
            heads = [f"{table} {chain}" + ("" if chain in t.chains[table] else " (no such chain)") for t in both]
            rows += [("", ""), (heads[0], heads[1])] + _aligned(a, b)
    width = max(len(r[0]) for r in rows) + 1
    print(f"{'Docker ' + left:{width}}│ Docker {right}")
    for l, r in rows:
        print(f"{l:{width}}│ {r}".rstrip())


def _aligned(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    """The two chains' rules, the same rules on one row, the others each on its own side."""
    rows = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [(f"  {x}", f"  {x}") for x in a[i1:i2]]
        else:
            rows += [(f"  {x}", "") for x in a[i1:i2]] + [("", f"  {x}") for x in b[j1:j2]]
    return rows


def _short(rule: str, names: dict[str, str]) -> str:
    for bridge, name in names.items():
        rule = rule.replace(bridge, name)
    return rule


__all__ = ["side_by_side", "as_release"]
