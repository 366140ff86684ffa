"""Where the lab is read: netlink dumps of every namespace turned into :mod:`netlab_magic.model`.

Runs on the netlink worker thread (see :mod:`netlab_magic.netlink`): one link, address and
route dump per namespace, plus the namespace-id table that tells which namespace the far
end of a veth lives in.
"""

from __future__ import annotations

import socket

from .model import Interface, LabSnapshot, Namespace, Peer, Route
from .netlink import NetlinkWorker

_PROTO = {0: "unspec", 1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp"}
_SCOPE = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_MAIN_TABLE = 254
_IFF_UP = 0x1


def read_lab(worker: NetlinkWorker, names: list[str]) -> LabSnapshot:
    """Snapshot of the namespaces ``names`` (in that order). Call on the worker thread."""
    dumps = {name: _dump(worker, name) for name in names}
    nsid_maps: dict[str, dict[int, str]] = {}

    def peer_netns(owner: str, nsid: int) -> str | None:
        if owner not in nsid_maps:
            nsid_maps[owner] = _nsid_map(worker, owner, names)
        return nsid_maps[owner].get(nsid)

    namespaces = []
    for name in names:
        links, addrs, routes = dumps[name]
        by_index = {link["index"]: link.get("ifname") for link in links}
        addr_by_index: dict[int, list[str]] = {}
        for a in sorted(addrs, key=lambda a: (a["family"] != socket.AF_INET, a["index"])):
            addr_by_index.setdefault(a["index"], []).append(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
        interfaces = []
        for link in links:
            peer = None
            kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
            if link.get("ifname") == "lo":
                kind = "loopback"
            if kind == "veth" and link.get("IFLA_LINK") is not None:
                nsid = link.get("IFLA_LINK_NETNSID")
                if nsid is None:
                    peer = Peer(name, by_index.get(link.get("IFLA_LINK")))
                else:
                    other = peer_netns(name, nsid)
                    ifname = None
                    if other is not None:
                        other_links = {lk["index"]: lk.get("ifname") for lk in dumps[other][0]}
                        ifname = other_links.get(link.get("IFLA_LINK"))
                    peer = Peer(other, ifname)
            master = link.get("IFLA_MASTER")
            interfaces.append(
                Interface(
                    name=link.get("ifname"),
                    index=link["index"],
                    kind=kind or "device",
                    state=_state(link),
                    admin_up=bool(link["flags"] & _IFF_UP),
                    mtu=link.get("mtu") or 0,
                    mac=link.get("address"),
                    addresses=tuple(addr_by_index.get(link["index"], ())),
                    master=by_index.get(master) if master else None,
                    peer=peer,
                )
            )
        namespaces.append(
            Namespace(name=name, interfaces=tuple(interfaces), routes=tuple(_routes(routes, by_index)))
        )
    return LabSnapshot(namespaces=tuple(namespaces))


def _state(link) -> str:
    """The operational state as ``ip link show dev X`` reports it (see :func:`_dump`)."""
    return link.get("operstate") or "UNKNOWN"


def _settled(ipr, links: list) -> list:
    """Re-read the links whose operstate lags behind their flags.

    The kernel updates ``operstate`` lazily (its link watcher may run up to a second after
    ``ip link set ... up``), but a request for one device makes it settle that device first,
    which is why ``ip link show dev X`` is always right while a dump may be stale.
    """
    out = []
    for link in links:
        up = bool(link["flags"] & _IFF_UP)
        carrier = link.get("IFLA_CARRIER")
        oper = link.get("operstate")
        stale = (not up and oper not in ("DOWN", None)) or (
            up and carrier is not None and bool(carrier) != (oper in ("UP", "UNKNOWN")))
        if stale:
            fresh = ipr.get_links(link["index"])
            link = fresh[0] if fresh else link
        out.append(link)
    return out


def _dump(worker: NetlinkWorker, name: str):
    ipr = worker.ipr(name)
    links = _settled(ipr, sorted(ipr.get_links(), key=lambda link: link["index"]))
    addrs = list(ipr.get_addr())
    routes = [r for r in ipr.get_routes(family=socket.AF_INET) if r.get("RTA_TABLE", r["table"]) == _MAIN_TABLE]
    return links, addrs, routes


def _nsid_map(worker: NetlinkWorker, owner: str, names: list[str]) -> dict[int, str]:
    """nsid (as seen from ``owner``) -> lab namespace name."""
    ipr = worker.ipr(owner)
    found = {}
    for other in names:
        if other == owner:
            continue
        try:
            nsid = ipr.get_netnsid(fd=worker.netns_fd(other)).get("nsid")
        except Exception:
            continue
        if nsid is not None and nsid >= 0:
            found[nsid] = other
    return found


def _routes(routes: list, by_index: dict[int, str]) -> list[Route]:
    out = []
    for r in routes:
        dst = r.get("RTA_DST")
        out.append(
            Route(
                dst=f"{dst}/{r['dst_len']}" if dst else "default",
                dev=by_index.get(r.get("RTA_OIF")),
                gateway=r.get("RTA_GATEWAY"),
                src=r.get("RTA_PREFSRC"),
                proto=_PROTO.get(r["proto"], str(r["proto"])),
                scope=_SCOPE.get(r["scope"], str(r["scope"])),
            )
        )
    return out
