"""What the topology draws, read from a snapshot: the namespaces and their interfaces, the veth
pairs (each once; a stub where the peer is outside the lab), and the order of the ring."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..model import HOST
from .rings import br_id, ns_id

DENSE_PORTS = 24  # above this many interfaces (lo and bridges aside) interface labels are left out


def natural_key(name: str) -> list[Any]:
    """Sort key putting c2 before c10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name)]


class LabGraph:
    """What the layout draws, read from a snapshot: namespaces, interfaces, veth pairs, ring order."""

    def __init__(self, namespaces: list[Mapping[str, Any]]) -> None:
        self.namespaces = namespaces
        self.names = [ns["name"] for ns in namespaces]
        self.host = HOST if HOST in self.names else None
        self.ifaces: dict[tuple[str, str], Mapping[str, Any]] = {}
        for ns in namespaces:
            for i in ns.get("interfaces") or ():
                self.ifaces[(ns["name"], i["name"])] = i
        self.n_ports = sum(1 for i in self.ifaces.values() if i.get("kind") not in ("bridge", "loopback"))
        self.dense = self.n_ports > DENSE_PORTS
        by_name = {ns["name"]: ns for ns in namespaces}
        self.host_bridges = [b for b in (by_name[self.host].get("interfaces") or ())
                             if b.get("kind") == "bridge"] if self.host else []
        self.pairs, self.linked = self._pairs()
        self.anchor: dict[str, str] = {}
        self.order = self._ring_order()

    @classmethod
    def read(cls, snap: Mapping[str, Any]) -> "LabGraph":
        return cls(list(snap.get("namespaces") or ()))

    def end_node(self, ns: str, i: Mapping[str, Any]) -> str:
        """The node a link of interface ``i`` ends on: its bridge, or its namespace."""
        master = i.get("master")
        if master and (self.ifaces.get((ns, master)) or {}).get("kind") == "bridge":
            return br_id(ns, master)
        return ns_id(ns)

    def _pairs(self) -> tuple[list[tuple[tuple[str, str], tuple[str, str] | None]], set[tuple[str, str]]]:
        """Veth pairs (each once), and stubs (``None``) for peers outside the lab."""
        pairs: list[tuple[tuple[str, str], tuple[str, str] | None]] = []
        linked: set[tuple[str, str]] = set()
        for (ns, name), i in self.ifaces.items():
            if i.get("kind") == "bridge" or (ns, name) in linked:
                continue
            peer = i.get("peer")
            if not peer:
                continue
            other = (peer.get("netns"), peer.get("ifname"))
            if other in self.ifaces and other not in linked and other != (ns, name):
                pairs.append(((ns, name), other))  # type: ignore[arg-type]
                linked.update({(ns, name), other})  # type: ignore[arg-type]
            elif i.get("kind") == "veth":
                pairs.append(((ns, name), None))
                linked.add((ns, name))
        return pairs, linked

    def _ring_order(self) -> list[str]:
        """The ring's order: namespaces grouped by what they hang on in the host (``anchor``),
        then each followed by its neighbours."""
        host = self.host
        neighbours: dict[str, list[str]] = defaultdict(list)
        for a, b in self.pairs:
            if b is None or a[0] == b[0]:
                continue
            for x, y in ((a, b), (b, a)):
                if y[0] == host and x[0] != host:
                    self.anchor.setdefault(x[0], self.end_node(host, self.ifaces[y]))
                elif x[0] != host and y[0] != host:
                    neighbours[x[0]].append(y[0])
        ring = sorted((n for n in self.names if n != host), key=natural_key)
        group_order = [br_id(host, b["name"]) for b in self.host_bridges] + ([ns_id(host)] if host else [])
        order: list[str] = []
        placed: set[str] = set()

        def visit(n: str) -> None:
            stack = [n]
            while stack:
                cur = stack.pop()
                if cur in placed:
                    continue
                placed.add(cur)
                order.append(cur)
                stack.extend(sorted(set(neighbours[cur]) - placed, reverse=True))

        for g in group_order:
            for n in ring:
                if self.anchor.get(n) == g:
                    visit(n)
        for n in ring:
            visit(n)
        return order
