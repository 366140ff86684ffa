"""From the kernel's reports to packets and hops: the assembly of a :class:`~.trace_model.Trace`.

Pure: no kernel, no lab (the recorded reports in tests/fixtures/traces are enough).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

from ..linux import nftables as nft
from .headers import IPv4, parse_ipv4
from .trace_match import Match
from .trace_model import HOOKS, Hop, Packet, Trace
from .trace_session import LATE, TABLE

FAMILIES = {nft.NFPROTO_IPV4: "ip", nft.NFPROTO_BRIDGE: "bridge", nft.NFPROTO_INET: "inet", 10: "ip6"}
#: What a hook with a nat chain but no report says: NAT looks at a connection's first packet only.
NAT_SKIPPED = "(nat skipped: the connection is already tracked)"


@dataclass
class _PacketBuild:
    hops: list[dict] = field(default_factory=list)
    #: The header last seen: what is matched against a stretch that may continue this packet.
    header: IPv4 | None = None
    #: Delivered (INPUT) or dropped: no later stretch continues it.
    finished: bool = False


@dataclass
class _Segment:
    """The reports of one packet in one namespace under one trace id (one stretch of its path)."""

    netns: str
    packet: _PacketBuild
    #: The hook each family is in now (``{"ip": "FORWARD", "bridge": "FORWARD"}``).
    hooks: dict[str, str] = field(default_factory=dict)
    #: Inside the trace's own chain: its remaining reports say nothing new.
    in_marker: bool = False
    last_marker: tuple[str, str] = ("", "")
    #: The hop standing for an iptables hook with no chain, until a chain of it reports.
    placeholder: dict | None = None
    header: IPv4 | None = None
    bridged: bool = False
    #: The interfaces of the last report that named them (a policy's report names none).
    links: tuple[int | None, int | None] = (None, None)


def assemble(events: Sequence[tuple[str, nft.TraceEvent]],
             interfaces: dict[str, dict[int, tuple[str, str | None]]] | None = None,
             rules: dict[str, dict[tuple[str, str, int], str]] | None = None,
             nat_hooks: dict[str, set[str]] | None = None) -> list[list[dict]]:
    """Group the kernel's reports (in its order) into packets, each a list of hop dicts in order
    (``seq``: the report's place in the kernel's order).

    A hook where no iptables chain reported says why: it has none, or (``nat_hooks``: the hooks
    of each namespace with a nat chain) the kernel skipped nat, which it consults only for a
    connection's first packet, once per hook (:data:`NAT_SKIPPED`).

    Reports of one packet in one namespace share a trace id; the id changes where the packet
    enters another namespace (or comes in again), so stretches are joined by what no hop changes
    (protocol, length, IP id, TCP sequence or ICMP echo sequence). An id is not unique in time
    (the kernel hashes the skb's address, which is soon reused): a hook reported under the id of
    a packet already delivered or dropped begins another packet. Pure: no kernel, no lab.
    """
    assembly = _Assembly(interfaces or {}, rules or {}, nat_hooks or {})
    for seq, (netns, ev) in enumerate(events):
        family = FAMILIES.get(ev.family, str(ev.family))
        header = parse_ipv4(ev.network, ev.transport)
        if ev.table == TABLE and ev.chain.endswith(LATE):
            assembly.hook_ended(seq, netns, ev, family, header)
        elif ev.table == TABLE:
            assembly.hook_entered(seq, netns, ev, family, header)
        else:
            assembly.chain_reported(seq, netns, ev, family, header)
    return [p.hops for p in assembly.packets if p.hops]


class _Assembly:
    """The packets assembled so far, and the stretch (segment) of each open trace id."""

    def __init__(self, interfaces: dict[str, dict[int, tuple[str, str | None]]],
                 rules: dict[str, dict[tuple[str, str, int], str]], nat_hooks: dict[str, set[str]]) -> None:
        self.interfaces, self.rules, self.nat_hooks = interfaces, rules, nat_hooks
        self.segments: dict[tuple[str, int], _Segment] = {}
        self.packets: list[_PacketBuild] = []

    def link(self, netns: str, index: int | None) -> tuple[str | None, str | None]:
        """``(name, its bridge)`` of interface ``index`` in ``netns``."""
        if not index:
            return None, None
        return self.interfaces.get(netns, {}).get(index, (f"if{index}", None))

    def new_packet(self, header: IPv4 | None) -> _PacketBuild:
        self.packets.append(_PacketBuild(header=header))
        return self.packets[-1]

    def continued(self, header: IPv4 | None) -> _PacketBuild:
        """The unfinished packet this header continues (the same identity), or a new one."""
        if header is not None:
            for candidate in reversed(self.packets):
                if not candidate.finished and candidate.header is not None \
                        and candidate.header.identity == header.identity:
                    return candidate
        return self.new_packet(header)

    def hook_ended(self, seq: int, netns: str, ev: nft.TraceEvent, family: str, header: IPv4 | None) -> None:
        """The trace's ``-late`` chain: at the end of a hook, did NAT change the packet?"""
        seg = self.segments.get((netns, ev.id))
        if seg is None or header is None or seg.header is None \
                or (header.source, header.destination) == (seg.header.source, seg.header.destination):
            return
        seg.packet.hops.append({
            "netns": netns, "hook": ev.chain[:-len(LATE)], "table": None, "chain": None, "rule": None,
            "verdict": "ACCEPT", "iif": self.link(netns, ev.iif)[0], "oif": self.link(netns, ev.oif)[0],
            "family": family, "bridge": None, "bridged": seg.bridged, "header": header, "seq": seq,
            "note": nat_note(seg.header, header)})
        seg.header = seg.packet.header = header

    def hook_entered(self, seq: int, netns: str, ev: nft.TraceEvent, family: str, header: IPv4 | None) -> None:
        """The trace's own chain, first on the hook: the packet entered a hook (a hop, for now)."""
        key = (netns, ev.id)
        seg = self.segments.get(key)
        if seg is not None and seg.in_marker:  # the rest of the marker chain's reports say nothing new
            if ev.iif or ev.oif:
                seg.links = (ev.iif, ev.oif)
            if ev.type == nft.NFT_TRACETYPE_POLICY:
                seg.in_marker = False
            return
        hook = ev.chain
        # seg.packet.finished: the id is a hash of the skb's address, the flow and the input
        # interface, so the flow's next packet may come in with the id of one already delivered
        if seg is None or seg.packet.finished or (family, hook) in (("ip", "OUTPUT"), ("bridge", "PREROUTING")) or (
                (family, hook) == ("ip", "PREROUTING") and seg.last_marker != ("bridge", "PREROUTING")):
            made_here = (family, hook) == ("ip", "OUTPUT")
            seg = _Segment(netns, self.new_packet(header) if made_here else self.continued(header))
            self.segments[key] = seg
        seg.in_marker = ev.type != nft.NFT_TRACETYPE_POLICY
        seg.bridged = family == "ip" and seg.last_marker == ("bridge", hook)
        seg.last_marker = (family, hook)
        seg.hooks[family] = hook
        seg.links = (ev.iif, ev.oif)
        if header is not None:
            seg.header = seg.packet.header = header
        iif, in_bridge = self.link(netns, ev.iif)
        oif, out_bridge = self.link(netns, ev.oif)
        hop = {"netns": netns, "hook": hook, "table": None, "chain": None, "rule": None, "verdict": "ACCEPT",
               "iif": iif, "oif": oif, "family": family,
               "bridge": (in_bridge or out_bridge) if family == "bridge" else None,
               "bridged": seg.bridged, "header": seg.header, "seq": seq,
               "note": NAT_SKIPPED if family == "ip" and hook in self.nat_hooks.get(netns, ()) else None}
        seg.packet.hops.append(hop)
        seg.placeholder = hop if family == "ip" else None
        if (family, hook) == ("ip", "INPUT"):
            seg.packet.finished = True

    def chain_reported(self, seq: int, netns: str, ev: nft.TraceEvent, family: str, header: IPv4 | None) -> None:
        """A report of another table: iptables' (family ip), or an nft table someone made."""
        key = (netns, ev.id)
        seg = self.segments.get(key)
        if seg is None:
            seg = _Segment(netns, self.continued(header))
            self.segments[key] = seg
        if header is not None:
            seg.header = seg.packet.header = header
        if ev.iif or ev.oif:
            seg.links = (ev.iif, ev.oif)
        base = ev.chain in HOOKS
        end_of_chain = ev.handle is None and ev.type in (nft.NFT_TRACETYPE_RULE, nft.NFT_TRACETYPE_RETURN)
        if end_of_chain and base:
            return  # the policy's report follows
        if seg.placeholder is not None and family == "ip":  # the hook has a chain: no placeholder hop
            if seg.placeholder in seg.packet.hops:
                seg.packet.hops.remove(seg.placeholder)
            seg.placeholder = None
        rule = None
        if ev.handle is not None:
            rule = self.rules.get(netns, {}).get((ev.table, ev.chain, ev.handle), f"(rule handle {ev.handle})")
        verdict = "RETURN" if end_of_chain else (ev.verdict or "CONTINUE")
        seg.packet.hops.append({
            "netns": netns, "hook": seg.hooks.get(family, ev.chain if base else "?"),
            "table": ev.table, "chain": ev.chain, "rule": rule, "verdict": verdict,
            "target": ev.target if verdict in ("JUMP", "GOTO") else None,
            "iif": self.link(netns, seg.links[0])[0], "oif": self.link(netns, seg.links[1])[0], "family": family,
            "bridge": None, "bridged": seg.bridged and family == "ip", "header": seg.header, "seq": seq})
        if verdict == "DROP":
            seg.packet.finished = True


def nat_note(before: IPv4, after: IPv4) -> str:
    """``(conntrack NAT: source 172.17.0.2:80 -> 127.0.0.1:8888)``: what changed between two headers."""
    changes = []
    if before.source != after.source:
        changes.append(f"source {before.source} -> {after.source}")
    if before.destination != after.destination:
        changes.append(f"destination {before.destination} -> {after.destination}")
    return f"(conntrack NAT: {', '.join(changes) or 'rewritten'})"


def fate(hops: Sequence[Hop]) -> str:
    """How the packet's path ended, in a sentence."""
    if not hops:
        return "not seen"
    last = hops[-1]
    if last.verdict == "DROP":
        return f"dropped in {last.netns} by {last.table} {last.chain} {last.rule or 'policy DROP'}"
    if last.verdict in ("STOLEN", "QUEUE"):
        return f"taken by {last.where} in {last.netns} ({last.verdict})"
    if last.family == "ip" and last.hook == "INPUT":
        return f"delivered in {last.netns}"
    if last.hook == "POSTROUTING":
        out = f" towards {last.oif}" if last.oif else ""
        return f"passed POSTROUTING in {last.netns}{out}; no namespace of the lab received it"
    if last.family == "ip" and last.hook == "PREROUTING":
        return (f"vanished in {last.netns} after PREROUTING: the routing decision found no way "
                f"(no route? ip_forward off? rp_filter?)")
    return f"vanished in {last.netns} after {last.hook_label}, outside netfilter"


def build_trace(events: Sequence[tuple[str, nft.TraceEvent]], *, netns: str, command: str,
                match: Match | None = None, returncode: int | None = 0, output: str = "",
                interfaces: dict[str, dict[int, tuple[str, str | None]]] | None = None,
                rules: dict[str, dict[tuple[str, str, int], str]] | None = None,
                nat_hooks: dict[str, set[str]] | None = None,
                lost: bool = False, timed_out: bool = False) -> Trace:
    """A :class:`Trace` from the kernel's reports: packets assembled, chosen by ``match``, numbered."""
    groups = []
    for hops in assemble(events, interfaces, rules, nat_hooks):
        groups.append([(h.pop("seq"), Hop(**h)) for h in hops])
    chosen = select_packets([[hop for _, hop in g] for g in groups], match)
    keep = {id(hop) for g in chosen for hop in g}
    packets: list[Packet] = []
    ordered: list[tuple[int, Hop]] = []
    for g in groups:
        if not any(id(hop) in keep for _, hop in g):
            continue
        n = len(packets)
        numbered = [(seq, replace(hop, packet=n)) for seq, hop in g]
        ordered += numbered
        hops = tuple(hop for _, hop in numbered)
        packets.append(Packet(n, hops, next((h.header for h in hops if h.header), None), fate(hops)))
    return Trace(netns=netns, command=command, match=match.text if match else None, returncode=returncode,
                 output=output, packets=packets, hops=[hop for _, hop in sorted(ordered, key=lambda x: x[0])],
                 lost=lost, timed_out=timed_out)


def select_packets(groups: list[list[Hop]], match: Match | None) -> list[list[Hop]]:
    """The packets to show: those ``match`` picks at some hop, with every packet of their connections.

    Without a match: every packet but IGMP (the kernel's multicast housekeeping).
    """
    def headers(hops: list[Hop]) -> list[IPv4]:
        return [h.header for h in hops if h.header is not None]

    if match is None:
        return [g for g in groups if not any(h.proto == 2 for h in headers(g))]
    picked = {i for i, g in enumerate(groups) if any(h.header is not None and match(h.header, h.iif, h.oif) for h in g)}
    flows = {f for i in picked for h in headers(groups[i]) for f in (h.flow(), h.reply_flow())}
    grown = True
    while grown:
        grown = False
        for i, g in enumerate(groups):
            if i not in picked and any(h.flow() in flows for h in headers(g)):
                picked.add(i)
                flows |= {f for h in headers(g) for f in (h.flow(), h.reply_flow())}
                grown = True
    return [g for i, g in enumerate(groups) if i in picked]
