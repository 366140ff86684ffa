"""The nf_tables session of a trace: ``nftrace`` switched on in the lab's namespaces, the reports read.

Every namespace gets a small owner table of its own, ``netlab-trace``, with a chain first on
each hook whose only rule is ``meta nftrace set 1`` (family ``ip``, and ``bridge`` for bridges);
one netlink socket in the lab's host hears the reports of every namespace, in the kernel's
order. The kernel drops owner tables with their socket, whatever happens.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

from ..errors import AlreadyExists, NetlabError
from ..linux import nftables as nft
from ..linux.iptables_save import parse_iptables_save
from ..linux.namespaces import open_current
from ..linux.rtnl import NetlinkError, Rtnl
from ..model import HOST
from .trace_model import HOOKS

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

#: Where NAT happens last in a hook (INPUT, POSTROUTING: source NAT at priority 100), a second,
#: empty chain after it shows what the packet became: ``INPUT-late``, ``POSTROUTING-late``.
LATE = "-late"
_IP_CHAINS = [nft.BaseChain(hook, number, PRIORITY, nft.NFTRACE_SET if hook in ("PREROUTING", "OUTPUT") else b"")
              for number, hook in enumerate(HOOKS)] + \
             [nft.BaseChain(hook + LATE, HOOKS.index(hook), -PRIORITY) for hook in ("INPUT", "POSTROUTING")]
_BRIDGE_CHAINS = [nft.BaseChain(hook, number, PRIORITY,
                                nft.PROTOCOL_IP + nft.NFTRACE_SET if hook == "PREROUTING" else b"")
                  for number, hook in enumerate(HOOKS)]


class TraceError(NetlabError):
    """A trace cannot run (another one runs, or the kernel refuses nftrace)."""


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
