"""What a trace is: each packet's hops as the kernel reported them, and how a trace shows itself.

A :class:`Trace` (what :meth:`Lab.trace` returns) holds its packets (:class:`Packet`), each a
path of hops (:class:`Hop`); it displays as one table per packet, and draws itself on the talk's
packet-flow picture (:mod:`.trace_figure`, :mod:`.trace_widget`). Made by :mod:`.trace_assembly`;
pure data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..display import Table, Tables
from ..linux import nftables as nft
from .headers import IPv4

HOOKS = nft.HOOKS

_BRIDGE_DOES = {"PREROUTING": "(the bridge takes the frame in)", "FORWARD": "(the bridge passes it port to port)",
                "INPUT": "(the bridge hands it up to the host)", "OUTPUT": "(the host sends it through the bridge)",
                "POSTROUTING": "(the bridge sends it out)"}


#: A NAT rule's target and where it sends the packet, as ``iptables -S`` prints it.
_NAT_TARGET = re.compile(r" -j (DNAT|SNAT|MASQUERADE|REDIRECT)(?: --to-(?:destination|source|ports) (\S+))?")


@dataclass(frozen=True)
class Hop:
    """One report of the kernel: the packet met ``table``'s chain ``chain`` on ``hook`` in ``netns``.

    ``rule`` is the rule that matched, as ``iptables -S`` prints it; ``None`` where the chain's
    policy decided (``verdict`` is the policy), where a user chain ended without a verdict
    (``RETURN``) or where the hook has no iptables chain at all (``table`` is ``None``: the
    packet passed). ``family`` is ``"bridge"`` for a bridge's own hook (the frame crossing
    ``bridge``); ``bridged`` marks an iptables hook that a bridge called (br_netfilter).
    """

    netns: str
    hook: str
    table: str | None
    chain: str | None
    rule: str | None
    verdict: str
    iif: str | None
    oif: str | None
    target: str | None = None
    family: str = "ip"
    bridge: str | None = None
    bridged: bool = False
    packet: int = 0
    header: IPv4 | None = field(default=None, compare=False)
    #: What connection tracking did to the packet at the end of the hook (its NAT), in words.
    note: str | None = None

    @property
    def decision(self) -> str:
        """The verdict as a learner reads it: ``ACCEPT``, ``DROP``, ``JUMP DOCKER``, ``DNAT to 172.17.0.2:80``.

        ``ACCEPT`` only where a rule or a policy accepted: a NAT rule says what it did (the kernel's
        verdict for it is ACCEPT), a hook without a chain, a bridge and conntrack decide nothing (``-``).
        """
        if self.table is None:
            return "-"
        nat = _NAT_TARGET.search(self.rule or "") if self.verdict == "ACCEPT" else None
        if nat:
            return f"{nat.group(1)} to {nat.group(2)}" if nat.group(2) else nat.group(1)
        return f"{self.verdict} {self.target}" if self.target else self.verdict

    @property
    def where(self) -> str:
        """``filter:FORWARD``, ``bridge bridge0``, or ``-`` for a hook without iptables chains."""
        if self.family == "bridge" and self.table is None:
            return f"bridge {self.bridge or '?'}"
        return f"{self.table}:{self.chain}" if self.table else "-"

    @property
    def reason(self) -> str:
        """The rule, ``policy DROP``, ``(end of chain)`` or ``(no iptables chain)``."""
        if self.rule:
            return self.rule
        if self.note:
            return self.note
        if self.table is None:
            return _BRIDGE_DOES.get(self.hook, "") if self.family == "bridge" else "(no iptables chain)"
        if self.chain in HOOKS and self.verdict in ("ACCEPT", "DROP"):
            return f"policy {self.verdict}"
        return "(end of chain)"

    @property
    def hook_label(self) -> str:
        """``PREROUTING``; ``bridge PREROUTING`` for the bridge's hook; ``(bridged)`` where br_netfilter called it."""
        if self.family == "bridge":
            return f"bridge {self.hook}"
        return f"{self.hook} (bridged)" if self.bridged else self.hook

    def __str__(self) -> str:
        return f"{self.netns} {self.hook_label} {self.where} {self.reason} -> {self.decision}"


@dataclass(frozen=True)
class Packet:
    """One packet's path: its hops in order, what it was at the start, and how it ended."""

    index: int
    hops: tuple[Hop, ...]
    header: IPv4 | None
    fate: str

    @property
    def drop(self) -> Hop | None:
        """The hop that dropped it, if one did."""
        last = self.hops[-1] if self.hops else None
        return last if last is not None and last.verdict == "DROP" else None

    @property
    def namespaces(self) -> list[str]:
        """The namespaces it crossed, in order."""
        seen: list[str] = []
        for hop in self.hops:
            if not seen or seen[-1] != hop.netns:
                seen.append(hop.netns)
        return seen

    def path(self, bridge: bool = False) -> list[str]:
        """The hooks it passed, as ``"NETNS HOOK"`` (one per hook, however many chains it met there).

        With ``bridge`` the bridge's own hooks are in too, as ``"NETNS bridge HOOK"``.
        """
        steps: list[str] = []
        last: tuple | None = None
        for hop in self.hops:
            if hop.family == "bridge" and not bridge:
                continue
            key = (hop.netns, hop.family, hop.hook)
            if key != last:
                steps.append(f"{hop.netns} bridge {hop.hook}" if hop.family == "bridge" else f"{hop.netns} {hop.hook}")
            last = key
        return steps

    def table(self) -> Table:
        """Its hops as a table (what a :class:`Trace` shows for each packet)."""
        return packet_table(self)

    def __str__(self) -> str:
        return f"{self.header or 'a packet'}: {self.fate}"

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


@dataclass
class Trace:
    """What :meth:`Lab.trace` saw: the command's result and its packets' paths.

    ``hops`` lists every hop of every packet in the order the kernel reported them;
    ``packets`` groups them per packet. Displays as one table per packet; :meth:`draw` gives
    the path on the talk's packet-flow picture.
    """

    netns: str
    command: str
    match: str | None
    returncode: int | None
    output: str
    packets: list[Packet]
    hops: list[Hop]
    #: The kernel had more reports than the socket could hold: some hops are missing.
    lost: bool = False
    #: The command was stopped by the timeout.
    timed_out: bool = False

    @property
    def drops(self) -> list[Hop]:
        """The hops where a packet was dropped."""
        return [p.drop for p in self.packets if p.drop is not None]

    def table(self) -> Tables:
        """One table per packet: a line per hop (namespace, hook, table:chain, rule or policy, verdict)."""
        tables = [packet_table(p) for p in self.packets]
        if not tables:
            tables = [Table(f"trace of {self.command!r} in {self.netns}", ["hop"], [],
                            empty=self.nothing_traced())]
        if self.lost:
            tables.append(Table("some reports of the kernel were lost (too many packets)", ["hop"], [],
                                empty="trace a shorter command, or use --match"))
        return Tables(tables)

    def nothing_traced(self) -> str:
        """What to say when no packet was seen."""
        return ("no IPv4 packet" + (f" matching {self.match!r}" if self.match else "")
                + " went through netfilter while the command ran (was one sent? no route, no address?)")

    def summary(self) -> str:
        """One line per packet: what it was and how it ended."""
        if not self.packets:
            return self.nothing_traced()
        return "\n".join(f"packet {p.index + 1}: {p}" for p in self.packets)

    def draw(self, packet: int | None = None, ax: Any = None) -> Any:
        """The path on the talk's packet-flow picture (matplotlib); every packet, or just ``packet``."""
        from .trace_figure import draw_trace

        return draw_trace(self, packet=packet, ax=ax)

    def widget(self) -> Any:
        """The same picture, live in JupyterLab: step through the hops of each packet."""
        from .trace_widget import TraceWidget

        return TraceWidget(self)

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-ready data (what the widget draws)."""
        return {
            "netns": self.netns, "command": self.command, "match": self.match, "returncode": self.returncode,
            "output": self.output, "lost": self.lost, "timed_out": self.timed_out,
            "packets": [{"index": p.index, "header": str(p.header) if p.header else "", "fate": p.fate,
                         "hops": [hop_dict(h) for h in p.hops]} for p in self.packets],
        }

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def hop_dict(h: Hop) -> dict[str, Any]:
    """A hop as JSON-ready data, with what the table shows of it (``where``, ``reason``, ``decision``)."""
    return {"netns": h.netns, "hook": h.hook, "table": h.table, "chain": h.chain, "rule": h.rule, "note": h.note,
            "verdict": h.verdict, "target": h.target, "iif": h.iif, "oif": h.oif, "family": h.family,
            "bridge": h.bridge, "bridged": h.bridged, "where": h.where, "reason": h.reason,
            "decision": h.decision, "hook_label": h.hook_label,
            "packet": str(h.header) if h.header else "",
            "addresses": f"{h.header.source} > {h.header.destination}" if h.header else ""}


def packet_table(p: Packet) -> Table:
    """A packet's hops as a table; the packet column shows where its addresses changed (NAT)."""
    rows = []
    shown = None
    for n, h in enumerate(p.hops, 1):
        seen = f"{h.header.source} > {h.header.destination}" if h.header else ""
        rows.append([str(n), h.netns, h.hook_label, h.where, h.reason, h.decision, h.iif or "-", h.oif or "-",
                     seen if seen != shown else ""])
        shown = seen or shown
    return Table(f"packet {p.index + 1}: {p.header or 'IPv4'}: {p.fate}",
                 ["#", "namespace", "hook", "table:chain", "rule or policy", "verdict", "in", "out", "addresses"], rows)
