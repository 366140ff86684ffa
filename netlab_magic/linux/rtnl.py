"""Where netlink messages are made and read: a raw rtnetlink socket, ``struct`` in, dicts out.

Everything the lab asks the kernel about links, addresses and routes goes through
:class:`Rtnl`, a plain ``AF_NETLINK`` socket of the namespace the calling thread was in when it
was made (see :mod:`netlab_magic.linux.namespaces`). Requests are the ones ``ip`` sends, byte for
byte in spirit; each method names its ``ip`` equivalent. The socket itself, :class:`Netlink`
(any netlink protocol: its sequence numbers and dumps), is :class:`~netlab_magic.linux.nftables.Nft`'s too.

Why not pyroute2's ``IPRoute`` here: it costs about 1 ms per request and 0.35 ms to decode one
link, where the kernel's own work is tens of microseconds, and it is an import of 130 ms (users'
cells may use it: :mod:`netlab_magic.jupyter.pyroute2_cells`). The message layouts are those of
``linux/rtnetlink.h``, ``linux/if_link.h`` and ``linux/if_addr.h`` (pyroute2 documents them
too, and the tests cross-check this reader against ``ip -j``).

Longer than most modules on purpose: one reader and one writer for the three kinds of object
the lab uses (links, addresses, routes), kept together because they share the wire format.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import struct
from typing import Any, Iterator, Self

# netlink.h
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLA_F_NESTED = 0x8000
# rtnetlink.h
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWNSID, RTM_GETNSID = 88, 90
RT_TABLE_MAIN = 254
# if_link.h
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_STATS, IFLA_MASTER, IFLA_STATS64 = 1, 3, 4, 5, 7, 10, 23
IFLA_PROTINFO, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_AF_SPEC, IFLA_NET_NS_FD = 12, 16, 18, 26, 28
IFLA_EXT_MASK, IFLA_CARRIER, IFLA_LINK_NETNSID = 29, 33, 37
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFLA_BRPORT_MODE = 4  # hairpin
IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE = 8, 1
IFF_UP = 0x1
# if_addr.h, rtnetlink.h (routes), net_namespace.h
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_TABLE = 1, 4, 5, 7, 15
NETNSA_NSID, NETNSA_FD = 1, 3
RTEXT_FILTER_SKIP_STATS = 1 << 3
_SOL_NETLINK, _NETLINK_GET_STRICT_CHK = 270, 12

OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_U32 = struct.Struct("=I")
_NLA = struct.Struct("=HH")
_I32 = struct.Struct("=i")


class NetlinkError(OSError):
    """The kernel refused a request: ``errno`` is its error code, the message says what was asked."""

    @property
    def code(self) -> int:
        return self.errno or 0


# -- encoding ------------------------------------------------------------------------------------

def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute (type-length-value, padded to 4 bytes)."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def ifinfo(index: int = 0, flags: int = 0, change: int = 0, family: int = socket.AF_UNSPEC) -> bytes:
    return _IFINFO.pack(family, 0, index, flags, change)


# -- decoding ------------------------------------------------------------------------------------

def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, seq, body) of each netlink message in ``data``."""
    off = 0
    while off + _HDR.size <= len(data):
        length, kind, _flags, seq, _pid = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        yield kind, seq, data[off + _HDR.size: off + length]
        off += (length + 3) & ~3


def attrs(body: bytes, off: int, wanted: frozenset[int] | None = None) -> dict[int, bytes]:
    """The attributes of a message body from offset ``off``, by type (nested flag cleared);
    only those in ``wanted`` if given (a link carries ~50, a snapshot needs 10)."""
    found = {}
    end = len(body)
    unpack = _NLA.unpack_from
    while off + 4 <= end:
        length, kind = unpack(body, off)
        if length < 4:
            break
        kind &= 0x3FFF
        if wanted is None or kind in wanted:
            found[kind] = body[off + 4: off + length]
        off += (length + 3) & ~3
    return found


def _u32(raw: bytes | None) -> int | None:
    return _U32.unpack(raw[:4])[0] if raw else None


def _str(raw: bytes | None) -> str | None:
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw is not None else None


def _ip(family: int, raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return socket.inet_ntop(family, raw)


_LINK_ATTRS = frozenset({IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_OPERSTATE, IFLA_LINKINFO,
                         IFLA_CARRIER, IFLA_LINK_NETNSID})
_ADDR_ATTRS = frozenset({IFA_ADDRESS, IFA_LOCAL})
_ROUTE_ATTRS = frozenset({RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PREFSRC, RTA_TABLE})


class _Memo:
    """Parsed messages by their bytes: the lab mostly reads what it read a moment ago (a live view
    polls), and an unchanged message is the same bytes. Bounded; dropped whole when full."""

    def __init__(self, parse, limit: int = 8192) -> None:  # noqa: ANN001
        self._parse, self._limit, self._seen = parse, limit, {}

    def __call__(self, body: bytes) -> dict[str, Any]:
        found = self._seen.get(body)
        if found is None:
            if len(self._seen) >= self._limit:
                self._seen = {}
            found = self._seen[body] = self._parse(body)
        return dict(found)


_COUNTERS = frozenset({IFLA_STATS, IFLA_STATS64})


class _LinkReader:
    """Decodes ``RTM_NEWLINK`` bodies, remembering the part that does not change between reads.

    A link is ~45 attributes, and no two reads of it are the same bytes: its packet counters
    (``RTEXT_FILTER_SKIP_STATS`` skips only per-VF and per-family ones), a bridge's timers, IPv6's
    cacheinfo. But the kernel writes the name, state, MTU, master, carrier and MAC first and the
    counters after them (``rtnl_fill_ifinfo``), so the attributes before the counters are
    remembered by their bytes and only the few after them are walked on each read.

    Sound whatever the kernel's order: a remembered prefix is looked up by its exact bytes, and
    identical bytes walk to identical attribute boundaries, so a hit at the offset where this
    message's counters seem to start means they do start there."""

    def __init__(self, limit: int = 8192) -> None:
        self._limit = limit
        # prefix bytes -> (its wanted attributes, decoded links by what followed the prefix)
        self._heads: dict[bytes, tuple[dict[int, bytes], dict[tuple, dict[str, Any]]]] = {}
        self._mark = b""  # the 4 bytes that open the first counters attribute, once seen

    def __call__(self, body: bytes) -> dict[str, Any]:
        entry = None
        if self._mark:
            cut = body.find(self._mark, _IFINFO.size)
            if cut > 0:
                entry = self._heads.get(body[:cut])
        if entry is None:
            entry, cut = self._head(body)
        tail = []  # what follows the counters, walked each time
        off, end, unpack = cut, len(body), _NLA.unpack_from
        while off + 4 <= end:
            length, kind = unpack(body, off)
            if length < 4:
                break
            kind &= 0x3FFF
            if kind in _LINK_ATTRS:  # a bridge's or a port's timers tick in its LINKINFO: keep the kind
                value = body[off + 4: off + length]
                tail.append((kind, _info_kind(value) if kind == IFLA_LINKINFO else value))
            off += (length + 3) & ~3
        key = tuple(tail)
        fields = entry[1].get(key)
        if fields is None:
            if len(entry[1]) >= 16:  # what follows the counters is a link's kind and peer: it rarely changes
                entry[1].clear()
            fields = entry[1][key] = _link_fields(body, {**entry[0], **dict(tail)})
        return dict(fields)

    def _head(self, body: bytes) -> tuple[tuple[dict[int, bytes], dict[tuple, dict[str, Any]]], int]:
        """The wanted attributes before the counters (remembered), and where the counters start."""
        found: dict[int, bytes] = {}
        entry: tuple[dict[int, bytes], dict[tuple, dict[str, Any]]] = (found, {})
        off, end = _IFINFO.size, len(body)
        while off + 4 <= end:
            length, kind = _NLA.unpack_from(body, off)
            if length < 4:
                break
            kind &= 0x3FFF
            if kind in _COUNTERS:
                if len(self._heads) >= self._limit:
                    self._heads = {}
                self._heads[body[:off]] = entry
                self._mark = body[off: off + 4]
                return entry, off
            if kind in _LINK_ATTRS:
                found[kind] = body[off + 4: off + length]
            off += (length + 3) & ~3
        return entry, end


def _info_kind(linkinfo: bytes) -> bytes:
    """The ``IFLA_INFO_KIND`` attribute (header included) of an ``IFLA_LINKINFO``, or b""."""
    off = 0
    while off + 4 <= len(linkinfo):
        length, kind = _NLA.unpack_from(linkinfo, off)
        if length < 4:
            break
        if kind & 0x3FFF == IFLA_INFO_KIND:
            return linkinfo[off: off + length]
        off += (length + 3) & ~3
    return b""


def _link_fields(body: bytes, a: dict[int, bytes]) -> dict[str, Any]:
    """An ``RTM_NEWLINK`` body as ``ip link`` shows it, from its header and wanted attributes."""
    _family, _type, index, flags, _change = _IFINFO.unpack_from(body)
    kind = None
    if IFLA_LINKINFO in a:
        kind = _str(attrs(a[IFLA_LINKINFO], 0).get(IFLA_INFO_KIND))
    mac = a.get(IFLA_ADDRESS)
    netnsid = a.get(IFLA_LINK_NETNSID)
    return {
        "index": index,
        "flags": flags,
        "ifname": _str(a.get(IFLA_IFNAME)),
        "mtu": _u32(a.get(IFLA_MTU)) or 0,
        "operstate": OPERSTATES[a[IFLA_OPERSTATE][0]] if IFLA_OPERSTATE in a and a[IFLA_OPERSTATE][0] < 7
        else "UNKNOWN",
        "carrier": a[IFLA_CARRIER][0] if IFLA_CARRIER in a else None,
        "master": _u32(a.get(IFLA_MASTER)) or None,
        "link": _u32(a.get(IFLA_LINK)),
        "link_netnsid": _I32.unpack(netnsid[:4])[0] if netnsid else None,
        "address": ":".join(f"{b:02x}" for b in mac) if mac and len(mac) == 6 else None,
        "kind": kind,
    }


def _parse_addr(body: bytes) -> dict[str, Any]:
    """An ``RTM_NEWADDR`` body: the address ``ip addr`` shows (IFA_LOCAL where there is one)."""
    family, prefixlen, _flags, scope, index = _IFADDR.unpack_from(body)
    a = attrs(body, _IFADDR.size, _ADDR_ATTRS)
    return {"family": family, "prefixlen": prefixlen, "scope": scope, "index": index,
            "address": _ip(family, a.get(IFA_LOCAL, a.get(IFA_ADDRESS)))}


def _parse_route(body: bytes) -> dict[str, Any]:
    """An ``RTM_NEWROUTE`` body."""
    family, dst_len, _src_len, _tos, table, proto, scope, rtype, _flags = _RTMSG.unpack_from(body)
    a = attrs(body, _RTMSG.size, _ROUTE_ATTRS)
    return {"family": family, "dst_len": dst_len, "table": _u32(a.get(RTA_TABLE)) or table, "proto": proto,
            "scope": scope, "type": rtype, "dst": _ip(family, a.get(RTA_DST)),
            "gateway": _ip(family, a.get(RTA_GATEWAY)), "oif": _u32(a.get(RTA_OIF)),
            "prefsrc": _ip(family, a.get(RTA_PREFSRC))}


parse_link = _LinkReader()
parse_addr = _Memo(_parse_addr)
parse_route = _Memo(_parse_route)


_DUMP_LINKS = ifinfo() + attr(IFLA_EXT_MASK, _U32.pack(RTEXT_FILTER_SKIP_STATS))  # what ip link asks


@functools.lru_cache(maxsize=None)
def _addr_request(family: int) -> bytes:
    return _IFADDR.pack(family, 0, 0, 0, 0)


@functools.lru_cache(maxsize=None)
def _route_request(family: int, table: int) -> bytes:
    """What ``ip route show table TABLE`` asks (the kernel filters by table: NETLINK_GET_STRICT_CHK)."""
    body = _RTMSG.pack(family, 0, 0, 0, table if table < 256 else 0, 0, 0, 0, 0)
    return body + attr(RTA_TABLE, _U32.pack(table)) if table else body


# -- the socket ----------------------------------------------------------------------------------

class Netlink:
    """A raw netlink socket of ``protocol``, of the namespace the *calling thread* is in when it
    is made: its sequence numbers and :meth:`dump` (:class:`Rtnl`, :class:`~netlab_magic.linux.nftables.Nft`).

    Use it as a context manager, or :meth:`close` it: an open socket keeps its namespace alive.
    """

    def __init__(self, protocol: int) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        self._seq = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def dump(self, kind: int, body: bytes, what: str = "") -> list[bytes]:
        """The bodies of every message a dump request returns."""
        self._seq += 1
        seq = self._seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
        found = []
        unpack = _HDR.unpack_from
        while True:  # the hot loop of a snapshot: messages() inlined
            data = self.sock.recv(1 << 17)
            off, end = 0, len(data)
            while off + 16 <= end:
                length, mtype, _flags, mseq, _pid = unpack(data, off)
                if length < 16:
                    break
                if mseq == seq:
                    if mtype == NLMSG_DONE:
                        return found
                    if mtype == NLMSG_ERROR:
                        code = -_I32.unpack_from(data, off + 16)[0]
                        raise NetlinkError(code, f"{what}: {os.strerror(code)}")
                    found.append(data[off + 16: off + length])
                off += (length + 3) & ~3


class Rtnl(Netlink):
    """A raw rtnetlink socket of the namespace the *calling thread* is in when it is made.

    Requests are queued with :meth:`add` and sent together by :meth:`commit` (one ``sendmsg``,
    one ack each); the first error is raised after every ack is read. :meth:`dump` and
    :meth:`get` read. Use it as a context manager, or :meth:`close` it: an open socket keeps its
    namespace alive.
    """

    def __init__(self) -> None:
        super().__init__(socket.NETLINK_ROUTE)
        self.sock.setsockopt(_SOL_NETLINK, _NETLINK_GET_STRICT_CHK, 1)  # dumps filtered by the kernel, as ip asks
        self._queue: list[bytes] = []
        self._what: dict[int, str] = {}

    # -- plumbing --------------------------------------------------------------------------------

    def add(self, kind: int, body: bytes, flags: int = 0, what: str = "") -> None:
        """Queue a request that the kernel acknowledges; ``what`` names it in an error."""
        self._seq += 1
        self._queue.append(_HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
                           + body)
        self._what[self._seq] = what

    def commit(self) -> None:
        """Send the queued requests; raise :class:`NetlinkError` (naming what failed) on the first error."""
        if not self._queue:
            return
        self.sock.send(b"".join(self._queue))
        pending = len(self._queue)
        self._queue.clear()
        first: NetlinkError | None = None
        while pending:
            for kind, seq, body in messages(self.sock.recv(1 << 16)):
                if kind != NLMSG_ERROR:
                    continue
                pending -= 1
                code = -_I32.unpack_from(body)[0]
                if code and first is None:
                    first = NetlinkError(code, f"{self._what.get(seq, '')}: {os.strerror(code)}")
        self._what.clear()
        if first is not None:
            raise first

    def request(self, kind: int, body: bytes, flags: int = 0, what: str = "") -> None:
        """One acknowledged request, sent now."""
        self.add(kind, body, flags, what)
        self.commit()

    def get(self, kind: int, body: bytes, what: str = "") -> bytes:
        """The one reply to a non-dump ``get`` request."""
        self._seq += 1
        seq = self._seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body)
        while True:
            for mtype, mseq, mbody in messages(self.sock.recv(1 << 16)):
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    code = -_I32.unpack_from(mbody)[0]
                    raise NetlinkError(code, f"{what}: {os.strerror(code)}")
                return mbody

    # -- reading ---------------------------------------------------------------------------------

    def links(self) -> list[dict[str, Any]]:
        """``ip link``: every link, by index."""
        bodies = self.dump(RTM_GETLINK, _DUMP_LINKS, "ip link")
        return sorted((parse_link(b) for b in bodies), key=lambda link: link["index"])

    def link(self, *, index: int = 0, name: str | None = None) -> dict[str, Any] | None:
        """``ip link show dev NAME``: one link (its operstate settled), or None if there is none."""
        body = ifinfo(index) + (attr(IFLA_IFNAME, _name(name)) if name else b"")
        try:
            return parse_link(self.get(RTM_GETLINK, body, f"ip link show {name or index}"))
        except NetlinkError as err:
            if err.code in (19, 2):  # ENODEV, ENOENT
                return None
            raise

    def index(self, name: str) -> int | None:
        """The index of link ``name``, or None."""
        link = self.link(name=name)
        return link["index"] if link else None

    def addrs(self, family: int = socket.AF_UNSPEC) -> list[dict[str, Any]]:
        """``ip addr``: every address."""
        return [parse_addr(b) for b in self.dump(RTM_GETADDR, _addr_request(family), "ip addr")]

    def routes(self, family: int = socket.AF_INET, table: int = RT_TABLE_MAIN) -> list[dict[str, Any]]:
        """``ip route show table TABLE`` (default: ``ip route``) for one family; table 0: all."""
        return [r for r in (parse_route(b) for b in self.dump(RTM_GETROUTE, _route_request(family, table), "ip route"))
                if not table or r["table"] == table]

    def nsid(self, netns_fd: int) -> int | None:
        """``ip netns list-id``'s id for the namespace ``netns_fd``, as this namespace sees it (None if unset)."""
        body = struct.pack("=Bxxx", socket.AF_UNSPEC) + attr(NETNSA_FD, _U32.pack(netns_fd))
        reply = attrs(self.get(RTM_GETNSID, body, "ip netns list-id"), 4)
        raw = reply.get(NETNSA_NSID)
        value = _I32.unpack(raw[:4])[0] if raw else -1
        return None if value < 0 else value

    # -- the requests ----------------------------------------------------------------------------

    def link_add_bridge(self, name: str) -> None:
        """``ip link add NAME type bridge``."""
        self.add(RTM_NEWLINK, ifinfo() + attr(IFLA_IFNAME, _name(name))
                 + attr(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge")),
                 NLM_F_CREATE | NLM_F_EXCL, f"ip link add {name} type bridge")

    def link_add_veth(self, name: str, peer: str, *, peer_netns_fd: int | None = None, index: int = 0,
                      peer_index: int = 0, master: int = 0) -> None:
        """``ip link add NAME type veth peer name PEER [netns FD]`` (optionally with indexes and a master)."""
        peer_spec = ifinfo(peer_index) + attr(IFLA_IFNAME, _name(peer))
        if peer_netns_fd is not None:
            peer_spec += attr(IFLA_NET_NS_FD, _U32.pack(peer_netns_fd))
        info = attr(IFLA_INFO_KIND, b"veth") + attr(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_spec))
        body = ifinfo(index) + attr(IFLA_IFNAME, _name(name)) + attr(IFLA_LINKINFO, info)
        if master:
            body += attr(IFLA_MASTER, _U32.pack(master))
        self.add(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL, f"ip link add {name} type veth peer name {peer}")

    def link_del(self, index: int, what: str = "") -> None:
        """``ip link del DEV``."""
        self.add(RTM_DELLINK, ifinfo(index), 0, what or f"ip link del {index}")

    def link_set(self, index: int, *, up: bool | None = None, master: int | None = None,
                 mac: str | None = None, netns_fd: int | None = None, what: str = "") -> None:
        """``ip link set DEV [up|down] [master M|nomaster] [address MAC] [netns FD]``."""
        flags = change = 0
        if up is not None:
            flags, change = (IFF_UP if up else 0), IFF_UP
        body = ifinfo(index, flags, change)
        if master is not None:
            body += attr(IFLA_MASTER, _U32.pack(master))
        if mac is not None:
            body += attr(IFLA_ADDRESS, bytes(int(x, 16) for x in mac.split(":")))
        if netns_fd is not None:
            body += attr(IFLA_NET_NS_FD, _U32.pack(netns_fd))
        self.add(RTM_NEWLINK, body, 0, what or f"ip link set {index}")

    def link_up(self, index: int, what: str = "") -> None:
        """``ip link set DEV up``."""
        self.link_set(index, up=True, what=what or f"ip link set {index} up")

    def link_no_ipv6_autoconf(self, index: int, what: str = "") -> None:
        """``ip link set DEV addrgenmode none``: no link-local address (send before ``up``)."""
        spec = attr(IFLA_AF_SPEC, attr(socket.AF_INET6, attr(IFLA_INET6_ADDR_GEN_MODE,
                                                             bytes([IN6_ADDR_GEN_MODE_NONE]))))
        self.add(RTM_NEWLINK, ifinfo(index) + spec, 0, what or f"ip link set {index} addrgenmode none")

    def bridge_port_hairpin(self, index: int, on: bool, what: str = "") -> None:
        """``bridge link set dev DEV hairpin on|off``."""
        protinfo = attr(IFLA_PROTINFO | NLA_F_NESTED, attr(IFLA_BRPORT_MODE, bytes([1 if on else 0])))
        self.add(RTM_SETLINK, ifinfo(index, family=socket.AF_BRIDGE) + protinfo, 0,
                 what or f"bridge link set dev {index} hairpin {'on' if on else 'off'}")

    def addr_add(self, index: int, iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface, what: str = "",
                 delete: bool = False) -> None:
        """``ip addr add|del CIDR dev DEV``."""
        family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        raw = iface.ip.packed
        body = _IFADDR.pack(family, iface.network.prefixlen, 0, 0, index) + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
        if delete:
            self.add(RTM_DELADDR, body, 0, what or f"ip addr del {iface}")
        else:
            self.add(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL, what or f"ip addr add {iface}")

    def route(self, command: str, *, dst: ipaddress.IPv4Network | ipaddress.IPv6Network,
              gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None, oif: int | None = None,
              what: str = "") -> None:
        """``ip route add|del DST [via GATEWAY] [dev DEV]`` (iproute2's defaults: proto boot, scope link
        for a route without a gateway)."""
        family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
        if command == "add":  # RTPROT_BOOT, RTN_UNICAST; scope universe via a gateway, else link
            kind, flags, proto, rtype, scope = RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, 3, 1, 0 if gateway else 253
        else:  # RT_SCOPE_NOWHERE: a route of any scope, as `ip route del` asks
            kind, flags, proto, rtype, scope = RTM_DELROUTE, 0, 0, 0, 255
        body = _RTMSG.pack(family, dst.prefixlen, 0, 0, RT_TABLE_MAIN, proto, scope, rtype, 0)
        if dst.prefixlen:
            body += attr(RTA_DST, dst.network_address.packed)
        if gateway is not None:
            body += attr(RTA_GATEWAY, gateway.packed)
        if oif is not None:
            body += attr(RTA_OIF, _U32.pack(oif))
        self.add(kind, body, flags, what or f"ip route {command} {dst}")
