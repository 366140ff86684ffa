"""Where the lab is read: one link, address and route dump per namespace, into :mod:`netlab_magic.model`.

Runs on the calling thread: for each namespace it opens a raw rtnetlink socket *inside* it
(enter, ``socket()``, come back: no fork, microseconds), sends three dumps, and closes the
socket before returning, so a snapshot holds no namespace alive afterwards.

Which namespace the far end of a veth lives in: the link says only "peer index P in the
namespace with id N (as I see it)". The peer is the veth with index P whose own peer is this
link; where two namespaces both fit (indexes are per namespace, so it can happen), the
namespace ids are asked for the candidates only.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ..linux import namespaces
from ..linux.rtnl import IFF_UP, RT_TABLE_MAIN, Rtnl
from ..model import Interface, LabSnapshot, Namespace, Peer, Route

_PROTO = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp"}
_SCOPE = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


class _Dump:
    """One namespace's links, addresses and routes, with its fd and socket (until :meth:`close`)."""

    def __init__(self, name: str, path: str, home: int) -> None:
        self.name = name
        self.fd = namespaces.open_path(path)
        try:
            with namespaces.inside(self.fd, home):
                self.sock = Rtnl()
        except BaseException:
            os.close(self.fd)
            raise
        self.links = _settled(self.sock, self.sock.links())
        self.addrs = self.sock.addrs()
        self.routes = self.sock.routes(socket.AF_INET, RT_TABLE_MAIN)
        self.by_index = {link["index"]: link for link in self.links}

    def close(self) -> None:
        self.sock.close()
        os.close(self.fd)


def read_lab(paths: list[tuple[str, str]]) -> LabSnapshot:
    """Snapshot of the namespaces ``paths`` ((name, namespace file) pairs, in that order)."""
    dumps: list[_Dump] = []
    home = namespaces.open_current()
    try:
        for name, path in paths:
            dumps.append(_Dump(name, path, home))
        peers = _find_peers(dumps)
        return LabSnapshot(namespaces=tuple(_namespace(d, peers) for d in dumps))
    finally:
        os.close(home)
        for d in dumps:
            d.close()


def _namespace(d: _Dump, peers: dict[tuple[str, int], Peer]) -> Namespace:
    addr_by_index: dict[int, list[str]] = {}
    for a in sorted(d.addrs, key=lambda a: (a["family"] != socket.AF_INET, a["index"])):
        addr_by_index.setdefault(a["index"], []).append(f"{a['address']}/{a['prefixlen']}")
    interfaces = []
    for link in d.links:
        kind = "loopback" if link["ifname"] == "lo" else link["kind"]
        master = link["master"]
        interfaces.append(Interface(
            name=link["ifname"],
            index=link["index"],
            kind=kind or "device",
            state=link["operstate"],
            admin_up=bool(link["flags"] & IFF_UP),
            mtu=link["mtu"],
            mac=link["address"],
            addresses=tuple(addr_by_index.get(link["index"], ())),
            master=d.by_index[master]["ifname"] if master in d.by_index else None,
            peer=peers.get((d.name, link["index"])) if kind == "veth" else None,
        ))
    routes = tuple(Route(
        dst=f"{r['dst']}/{r['dst_len']}" if r["dst"] else "default",
        dev=d.by_index[r["oif"]]["ifname"] if r["oif"] in d.by_index else None,
        gateway=r["gateway"], src=r["prefsrc"],
        proto=_PROTO.get(r["proto"], str(r["proto"])),
        scope=_SCOPE.get(r["scope"], str(r["scope"])),
    ) for r in d.routes)
    return Namespace(name=d.name, interfaces=tuple(interfaces), routes=routes)


def _find_peers(dumps: list[_Dump]) -> dict[tuple[str, int], Peer]:
    """(namespace, veth index) -> where its peer is, for every veth of the lab."""
    veths = [(d, link) for d in dumps for link in d.links if link["kind"] == "veth" and link["link"]]
    # (index, peer index) -> veths across namespaces: the candidates for being someone's peer are the
    # veths whose index is its peer index and whose peer index is its index (one lookup per veth)
    pairs: dict[tuple[int, int], list[tuple[_Dump, dict[str, Any]]]] = {}
    for d, link in veths:
        if link["link_netnsid"] is not None:
            pairs.setdefault((link["index"], link["link"]), []).append((d, link))
    peers: dict[tuple[str, int], Peer] = {}
    for d, link in veths:
        if link["link_netnsid"] is None:  # both ends in this namespace
            other = d.by_index.get(link["link"])
            peers[(d.name, link["index"])] = Peer(d.name, other["ifname"] if other else None)
            continue
        fits = [(o, ol) for o, ol in pairs.get((link["link"], link["index"]), ()) if o is not d]
        if len(fits) > 1:  # ambiguous by indexes alone: ask which namespace has that id here
            fits = [(o, ol) for o, ol in fits if d.sock.nsid(o.fd) == link["link_netnsid"]]
        if len(fits) == 1:
            o, ol = fits[0]
            peers[(d.name, link["index"])] = Peer(o.name, ol["ifname"])
        else:  # the peer is in a namespace outside the lab's names (deleted, or not ours)
            peers[(d.name, link["index"])] = Peer(None, None)
    return peers


def _settled(sock: Rtnl, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Re-read the links whose operstate lags behind their flags.

    The kernel updates ``operstate`` lazily (its link watcher may run up to a second after
    ``ip link set ... up``), but a request for one device makes it settle that device first,
    which is why ``ip link show dev X`` is always right while a dump may be stale.
    """
    out = []
    for link in links:
        up = bool(link["flags"] & IFF_UP)
        carrier, oper = link["carrier"], link["operstate"]
        stale = (not up and oper not in ("DOWN", "UNKNOWN")) or (
            up and carrier is not None and bool(carrier) != (oper in ("UP", "UNKNOWN")))
        if stale:
            link = sock.link(index=link["index"]) or link
        out.append(link)
    return out
