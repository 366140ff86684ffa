"""Follow the packet: run a command and report every netfilter hook, chain and rule its packets met.

The kernel does the following (``nftrace``): while a trace runs, every namespace of the lab has
a small table of its own, ``netlab-trace``, with a chain first on each hook (priority -450,
before raw, conntrack and NAT) whose only rule is ``meta nftrace set 1``, in family ``ip`` and,
for bridges, in family ``bridge``. From then on the kernel reports each chain and rule an IPv4
packet meets, in every table (the iptables ones are nf_tables tables: Debian's ``iptables`` is
``iptables-nft``), with its verdict. One netlink socket in the lab's host hears the reports
of every namespace (``NETLINK_LISTEN_ALL_NSID``), in the one order the kernel made them.

The trace tables are *owner* tables: they belong to the socket that made them, and the kernel
removes them when it closes, whatever happens (an interrupt, a timeout, a killed kernel). The
iptables tables are never touched: ``iptables-save`` is the same before, during and after.

    >>> t = lab.trace("ns3", "ping -c 1 10.0.0.1")
    >>> t.packets[0].fate
    'dropped in host by filter FORWARD policy DROP'
    >>> [(h.netns, h.hook, h.table, h.chain, h.verdict) for h in t.hops][-1]
    ('host', 'FORWARD', 'filter', 'FORWARD', 'DROP')
"""

from __future__ import annotations

import errno
import io
import os
import re
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..display import Table, Tables
from ..errors import AlreadyExists, NetlabError
from ..linux import nftables as nft
from ..linux import process
from ..linux.iptables_save import parse_iptables_save
from ..linux.namespaces import open_current
from ..linux.rtnl import NetlinkError, Rtnl
from ..model import HOST
from .headers import IPv4, parse_ipv4
from .trace_match import Match, parse_match

if TYPE_CHECKING:
    from ..lab.lab import Lab

#: The name of the trace's own table in each namespace (iptables never lists it).
TABLE = "netlab-trace"
#: Its chains come first on each hook: before raw (-300), conntrack (-200) and NAT.
PRIORITY = -450
#: After the command, the trace listens on until nothing came for this long (replies, FINs) ...
QUIET = 0.02
#: ... but not longer than this.
LINGER = 0.25

HOOKS = nft.HOOKS
FAMILIES = {nft.NFPROTO_IPV4: "ip", nft.NFPROTO_BRIDGE: "bridge", nft.NFPROTO_INET: "inet", 10: "ip6"}

#: Where NAT happens last in a hook (INPUT, POSTROUTING: source NAT at priority 100), a second,
#: empty chain after it shows what the packet became: ``INPUT-late``, ``POSTROUTING-late``.
LATE = "-late"
_IP_CHAINS = [nft.BaseChain(hook, number, PRIORITY, nft.NFTRACE_SET if hook in ("PREROUTING", "OUTPUT") else b"")
              for number, hook in enumerate(HOOKS)] + \
             [nft.BaseChain(hook + LATE, HOOKS.index(hook), -PRIORITY) for hook in ("INPUT", "POSTROUTING")]
_BRIDGE_CHAINS = [nft.BaseChain(hook, number, PRIORITY,
                                nft.PROTOCOL_IP + nft.NFTRACE_SET if hook == "PREROUTING" else b"")
                  for number, hook in enumerate(HOOKS)]


_BRIDGE_DOES = {"PREROUTING": "(the bridge takes the frame in)", "FORWARD": "(the bridge passes it port to port)",
                "INPUT": "(the bridge hands it up to the host)", "OUTPUT": "(the host sends it through the bridge)",
                "POSTROUTING": "(the bridge sends it out)"}


#: A NAT rule's target and where it sends the packet, as ``iptables -S`` prints it.
_NAT_TARGET = re.compile(r" -j (DNAT|SNAT|MASQUERADE|REDIRECT)(?: --to-(?:destination|source|ports) (\S+))?")
#: What a hook with a nat chain but no report says: NAT looks at a connection's first packet only.
NAT_SKIPPED = "(nat skipped: the connection is already tracked)"


class TraceError(NetlabError):
    """A trace cannot run (another one runs, or the kernel refuses nftrace)."""


# -- what a trace is ------------------------------------------------------------------------------

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
                         "hops": [_hop_dict(h) for h in p.hops]} for p in self.packets],
        }

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def _hop_dict(h: Hop) -> dict[str, Any]:
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


# -- switching the kernel's trace on and off -----------------------------------------------------

@dataclass
class _Source:
    """A listening socket, and which namespace its reports come from (by nsid, or all its own)."""

    sock: socket.socket
    names: dict[int | None, str]


class Tracing:
    """``nftrace`` switched on in the given namespaces of ``lab`` for the length of a ``with`` block.

    The reports are read on a thread of their own while the body runs; :meth:`finish` waits for
    the last of them and returns them in the kernel's order, as ``(netns, event)`` pairs.
    """

    def __init__(self, lab: "Lab", namespaces: Sequence[str]) -> None:
        self.lab = lab
        self.namespaces = list(namespaces)
        self.sockets: dict[str, nft.Nft] = {}
        self.tables: dict[str, list[tuple[int, str]]] = {}
        self.sources: list[_Source] = []
        self.bridges = True
        self.events: list[tuple[str, bytes]] = []
        self.lost = False
        self._last = time.monotonic()
        self._stop_r, self._stop_w = -1, -1
        self._reader: threading.Thread | None = None

    def __enter__(self) -> "Tracing":
        try:
            self._listen()
            for netns in self.namespaces:
                self._switch_on(netns)
            self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
            self._reader = threading.Thread(target=self._read, name="netlab-trace", daemon=True)
            self._reader.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listen(self) -> None:
        with self.lab.entered(HOST):
            host = nft.trace_socket(all_namespaces=True)
            rtnl = Rtnl()
        self.sources.append(_Source(host, {None: HOST}))
        try:
            for netns in self.namespaces:
                if netns == HOST:
                    continue
                with self.lab.entered(netns):
                    fd = open_current()
                try:
                    nsid = rtnl.nsid(fd)
                finally:
                    os.close(fd)
                if nsid is not None:
                    self.sources[0].names[nsid] = netns
                else:  # no id in the host: it gets a socket of its own (its order among the others is lost)
                    with self.lab.entered(netns):
                        sock = nft.trace_socket(all_namespaces=False)
                    self.sources.append(_Source(sock, {None: netns}))
        finally:
            rtnl.close()

    def _switch_on(self, netns: str) -> None:
        with self.lab.entered(netns):
            sock = nft.Nft()
        self.sockets[netns] = sock
        try:
            sock.add_trace_table(nft.NFPROTO_IPV4, TABLE, _IP_CHAINS)
            self.tables[netns] = [(nft.NFPROTO_IPV4, TABLE)]
        except NetlinkError as err:
            if err.code == errno.EEXIST:
                raise AlreadyExists(f"another trace is running in namespace {netns!r}; wait for it to end") from err
            raise TraceError(f"cannot switch on the kernel's packet trace in {netns!r}: "
                             f"{os.strerror(err.code)}") from err
        if self.bridges:
            try:
                sock.add_trace_table(nft.NFPROTO_BRIDGE, TABLE, _BRIDGE_CHAINS)
                self.tables[netns].append((nft.NFPROTO_BRIDGE, TABLE))
            except NetlinkError:  # no nf_tables for bridges in this kernel: iptables hooks only
                self.bridges = False

    def _read(self) -> None:
        socks = {s.sock.fileno(): s for s in self.sources}
        poller = select.poll()
        for fd in socks:
            poller.register(fd, select.POLLIN)
        poller.register(self._stop_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == self._stop_r:
                    self._drain(socks.values())
                    return
                self._drain([socks[fd]])

    def _drain(self, sources: Iterable[_Source]) -> None:
        for source in sources:
            while True:
                try:
                    batch = nft.receive(source.sock)
                except BlockingIOError:
                    break
                except OSError as err:
                    if err.errno == errno.ENOBUFS:
                        self.lost = True
                        continue
                    raise
                for nsid, body in batch:
                    netns = source.names.get(nsid)
                    if netns is not None:  # a namespace of the lab (an id of something else: not ours)
                        self.events.append((netns, body))
                if batch:
                    self._last = time.monotonic()

    def finish(self) -> list[tuple[str, nft.TraceEvent]]:
        """Wait until the reports stop coming (at most :data:`LINGER`), and return them parsed."""
        deadline = time.monotonic() + LINGER
        self._last = max(self._last, time.monotonic())
        while time.monotonic() < deadline and time.monotonic() - self._last < QUIET:
            time.sleep(QUIET / 4)
        self._stop_reader()
        return [(netns, nft.parse_trace(body)) for netns, body in self.events]

    def _stop_reader(self) -> None:
        if self._reader is not None:
            os.write(self._stop_w, b"x")
            self._reader.join(5)
            self._reader = None

    def rules(self, netns: str) -> dict[tuple[str, str, int], str]:
        """``{(table, chain, handle): "-A CHAIN ..."}`` of ``netns``'s iptables rules, as ``iptables -S`` prints them."""
        handles = self.sockets[netns].rule_handles(nft.NFPROTO_IPV4)
        saved = self.lab.run(netns, ["iptables-save"])
        found: dict[tuple[str, str, int], str] = {}
        if saved.returncode:
            return found
        for table in parse_iptables_save(saved.stdout).values():
            for chain in table.chains:
                numbers = handles.get((table.name, chain.name), [])
                if len(numbers) == len(chain.rules):
                    found.update({(table.name, chain.name, n): rule.line for n, rule in zip(numbers, chain.rules)})
        return found

    def nat_hooks(self, netns: str) -> set[str]:
        """The hooks where ``netns``'s iptables nat table has a chain (``iptables -t nat``'s built-in chains)."""
        return {chain for table, chain in self.sockets[netns].base_chains(nft.NFPROTO_IPV4)
                if table == "nat" and chain in HOOKS}

    def interfaces(self, netns: str) -> dict[int, tuple[str, str | None]]:
        """``{ifindex: (name, its bridge or None)}`` of ``netns`` now."""
        with self.lab.entered(netns):
            rtnl = Rtnl()
        try:
            links = rtnl.links()
        finally:
            rtnl.close()
        names = {link["index"]: link["ifname"] for link in links}
        return {link["index"]: (link["ifname"], names.get(link["master"])) for link in links}

    def close(self) -> None:
        """Switch the trace off: delete the trace tables, close every socket.

        Were a deletion to fail (or this process die first), closing the socket drops its owner
        tables all the same.
        """
        self._stop_reader()
        for netns, sock in self.sockets.items():
            try:
                if self.tables.get(netns):
                    sock.del_tables(self.tables[netns])
            except OSError:
                pass
        self.tables.clear()
        for sock in self.sockets.values():
            try:
                sock.close()
            except OSError:
                pass
        self.sockets.clear()
        for source in self.sources:
            source.sock.close()
        self.sources.clear()
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1


def trace_tables(lab: "Lab") -> list[tuple[str, str]]:
    """``(netns, family)`` of every trace table still in the lab: none once every trace has ended."""
    found = []
    for netns in [HOST, *lab.list_netns()]:
        with lab.entered(netns):
            sock = nft.Nft()
        with sock:
            for number, family in ((nft.NFPROTO_IPV4, "ip"), (nft.NFPROTO_BRIDGE, "bridge")):
                if TABLE in sock.tables(number):
                    found.append((netns, family))
    return found


# -- from the kernel's reports to packets and hops ----------------------------------------------------

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
    (protocol, length, IP id, TCP sequence or ICMP echo sequence). Pure: no kernel, no lab.
    """
    interfaces = interfaces or {}
    rules = rules or {}
    nat_hooks = nat_hooks or {}
    open_segments: dict[tuple[str, int], _Segment] = {}
    packets: list[_PacketBuild] = []

    def link(netns: str, index: int | None) -> tuple[str | None, str | None]:
        if not index:
            return None, None
        return interfaces.get(netns, {}).get(index, (f"if{index}", None))

    def new_packet(header: IPv4 | None) -> _PacketBuild:
        packets.append(_PacketBuild(header=header))
        return packets[-1]

    def continued(header: IPv4 | None) -> _PacketBuild:
        if header is not None:
            for candidate in reversed(packets):
                if not candidate.finished and candidate.header is not None \
                        and candidate.header.identity == header.identity:
                    return candidate
        return new_packet(header)

    for seq, (netns, ev) in enumerate(events):
        family = FAMILIES.get(ev.family, str(ev.family))
        key = (netns, ev.id)
        seg = open_segments.get(key)
        header = parse_ipv4(ev.network, ev.transport)

        if ev.table == TABLE and ev.chain.endswith(LATE):  # the end of a hook: did NAT change the packet?
            if seg is not None and header is not None and seg.header is not None \
                    and (header.source, header.destination) != (seg.header.source, seg.header.destination):
                hook = ev.chain[:-len(LATE)]
                seg.packet.hops.append({
                    "netns": netns, "hook": hook, "table": None, "chain": None, "rule": None, "verdict": "ACCEPT",
                    "iif": link(netns, ev.iif)[0], "oif": link(netns, ev.oif)[0], "family": family, "bridge": None,
                    "bridged": seg.bridged, "header": header, "seq": seq, "note": nat_note(seg.header, header)})
                seg.header = seg.packet.header = header
            continue
        if ev.table == TABLE:  # the trace's own chain: the packet entered a hook
            if seg is not None and seg.in_marker:
                if ev.iif or ev.oif:
                    seg.links = (ev.iif, ev.oif)
                if ev.type == nft.NFT_TRACETYPE_POLICY:
                    seg.in_marker = False
                continue
            hook = ev.chain
            if seg is None or (family, hook) in (("ip", "OUTPUT"), ("bridge", "PREROUTING")) or (
                    (family, hook) == ("ip", "PREROUTING") and seg.last_marker != ("bridge", "PREROUTING")):
                made_here = (family, hook) == ("ip", "OUTPUT")
                seg = _Segment(netns, new_packet(header) if made_here else continued(header))
                open_segments[key] = seg
            seg.in_marker = ev.type != nft.NFT_TRACETYPE_POLICY
            seg.bridged = family == "ip" and seg.last_marker == ("bridge", hook)
            seg.last_marker = (family, hook)
            seg.hooks[family] = hook
            seg.links = (ev.iif, ev.oif)
            if header is not None:
                seg.header = seg.packet.header = header
            iif, in_bridge = link(netns, ev.iif)
            oif, out_bridge = link(netns, ev.oif)
            hop = {"netns": netns, "hook": hook, "table": None, "chain": None, "rule": None, "verdict": "ACCEPT",
                   "iif": iif, "oif": oif, "family": family,
                   "bridge": (in_bridge or out_bridge) if family == "bridge" else None,
                   "bridged": seg.bridged, "header": seg.header, "seq": seq,
                   "note": NAT_SKIPPED if family == "ip" and hook in nat_hooks.get(netns, ()) else None}
            seg.packet.hops.append(hop)
            seg.placeholder = hop if family == "ip" else None
            if (family, hook) == ("ip", "INPUT"):
                seg.packet.finished = True
            continue

        # a report of another table: iptables' (family ip), or an nft table someone made
        if seg is None:
            seg = _Segment(netns, continued(header))
            open_segments[key] = seg
        if header is not None:
            seg.header = seg.packet.header = header
        if ev.iif or ev.oif:
            seg.links = (ev.iif, ev.oif)
        base = ev.chain in HOOKS
        end_of_chain = ev.handle is None and ev.type in (nft.NFT_TRACETYPE_RULE, nft.NFT_TRACETYPE_RETURN)
        if end_of_chain and base:
            continue  # the policy's report follows
        if seg.placeholder is not None and family == "ip":
            if seg.placeholder in seg.packet.hops:
                seg.packet.hops.remove(seg.placeholder)
            seg.placeholder = None
        rule = None
        if ev.handle is not None:
            rule = rules.get(netns, {}).get((ev.table, ev.chain, ev.handle), f"(rule handle {ev.handle})")
        verdict = "RETURN" if end_of_chain else (ev.verdict or "CONTINUE")
        hop = {"netns": netns, "hook": seg.hooks.get(family, ev.chain if base else "?"),
               "table": ev.table, "chain": ev.chain, "rule": rule, "verdict": verdict,
               "target": ev.target if verdict in ("JUMP", "GOTO") else None,
               "iif": link(netns, seg.links[0])[0], "oif": link(netns, seg.links[1])[0], "family": family,
               "bridge": None, "bridged": seg.bridged and family == "ip", "header": seg.header, "seq": seq}
        seg.packet.hops.append(hop)
        if verdict == "DROP":
            seg.packet.finished = True
    return [p.hops for p in packets if p.hops]


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


# -- the whole thing ------------------------------------------------------------------------------

class _Tee(io.TextIOBase):
    """Writes to a stream (the cell's output) and keeps a copy."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        if self.stream is not None:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        if self.stream is not None:
            self.stream.flush()


def run_trace(lab: "Lab", netns: str, command: str, match: str | None = None, *, timeout: float | None = None,
              stream: bool = False) -> Trace:
    """Run ``command`` (bash) in ``netns`` with the kernel's packet trace on in every namespace of the lab.

    With ``stream`` the command's output goes to the cell as it comes (and is kept in
    ``Trace.output``). ``timeout`` stops the command; what was traced until then is returned
    (``timed_out`` is set). Jupyter's interrupt stops it and the trace. Either way the trace
    tables are gone when this returns.
    """
    lab.require(netns)
    matcher = parse_match(match) if match is not None else None
    namespaces = [HOST, *lab.list_netns()]
    out, err = _Tee(sys.stdout if stream else None), _Tee(sys.stderr if stream else None)
    timed_out = False
    with Tracing(lab, namespaces) as tracing:
        proc = lab.popen(netns, process.shell_argv(command))
        try:
            code: int | None = process.stream(proc, out=out, err=err, timeout=timeout)
        except process.Timeout:
            code, timed_out = None, True
        events = tracing.finish()
        seen = {n for n, _ in events}
        interfaces = {n: tracing.interfaces(n) for n in seen}
        rules = {n: tracing.rules(n) for n in seen
                 if any(ev.handle is not None and ev.table != TABLE for m, ev in events if m == n)}
        nat_hooks = {n: tracing.nat_hooks(n) for n in seen}
        lost = tracing.lost
    trace = build_trace(events, netns=netns, command=command, match=matcher, returncode=code,
                        output=out.copy.getvalue() + err.copy.getvalue(), interfaces=interfaces, rules=rules,
                        nat_hooks=nat_hooks, lost=lost, timed_out=timed_out)
    for i, p in enumerate(trace.packets):
        last = p.hops[-1] if p.hops else None
        if last and last.hook == "POSTROUTING" and last.oif and p.header and last.verdict != "DROP":
            why = why_not_sent(lab, last.netns, last.oif, str(p.header.destination))
            if why:
                trace.packets[i] = replace(p, fate=f"{p.fate.split(';')[0]}; not sent: {why}")
    return trace


def why_not_sent(lab: "Lab", netns: str, oif: str, dst: str) -> str:
    """Why a packet that passed POSTROUTING towards ``oif`` did not leave, where the kernel says so:
    the link has no carrier (``ip link``: ``NO-CARRIER``), or the next hop never answered ARP
    (``ip neigh``: ``INCOMPLETE`` or ``FAILED``). Empty when neither holds (it was sent)."""
    link = lab.run(netns, ["ip", "-o", "link", "show", "dev", oif]).stdout
    if "NO-CARRIER" in link or " state DOWN " in link or "LOWERLAYERDOWN" in link:
        return f"{oif} has no carrier"  # (its state word, DOWN or LOWERLAYERDOWN, can be a race)
    route = lab.run(netns, ["ip", "route", "get", dst, "oif", oif]).stdout
    via = re.search(r"\bvia (\S+)", route)
    hop = via.group(1) if via else dst
    neigh = lab.run(netns, ["ip", "neigh", "show", hop, "dev", oif]).stdout.split()
    if neigh and neigh[-1] in ("INCOMPLETE", "FAILED"):
        return f"no answer to ARP for {hop} on {oif}"
    return ""
