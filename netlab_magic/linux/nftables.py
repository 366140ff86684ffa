"""Where nf_tables netlink messages are made and read: the few ``nft`` requests tracing needs.

iptables on Debian is ``iptables-nft``: every ``iptables`` rule is an nf_tables rule in a table
of family ``ip``, and the kernel can report each rule and policy a packet meets
(``nftrace``). :class:`Nft` is a raw ``NETLINK_NETFILTER`` socket of the namespace the calling
thread is in when it is made (as :class:`~netlab_magic.linux.rtnl.Rtnl` is for links), with the
requests ``nft`` would send:

* ``nft add table ip NAME { flags owner; }`` plus base chains and one ``meta nftrace set 1``
  rule, in one transaction (:meth:`Nft.add_trace_table`); an *owner* table belongs to the
  socket and the kernel deletes it when the socket closes, whatever happens to this process;
* ``nft -a list chain``'s rule handles in order (:meth:`Nft.rule_handles`);
* ``nft monitor trace``: :func:`trace_socket` and :func:`parse_trace`.

The message layouts are those of ``linux/netfilter/nf_tables.h`` and ``nfnetlink.h``;
nf_tables' numbers travel in network byte order.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from .rtnl import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR, Netlink, NetlinkError, attr, attrs, messages

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
NFNLGRP_NFTRACE = 9
NLM_F_APPEND = 0x800
SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NETLINK_LISTEN_ALL_NSID = 270, 1, 8

NFPROTO_INET, NFPROTO_IPV4, NFPROTO_BRIDGE = 1, 2, 7

# nf_tables.h: messages
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_DELTABLE = 0, 1, 2
NFT_MSG_NEWCHAIN, NFT_MSG_GETCHAIN = 3, 4
NFT_MSG_NEWRULE, NFT_MSG_GETRULE = 6, 7
NFT_MSG_TRACE = 17
# attributes
NFTA_TABLE_NAME, NFTA_TABLE_FLAGS = 1, 2
NFT_TABLE_F_OWNER = 0x2
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK, NFTA_CHAIN_POLICY, NFTA_CHAIN_TYPE = 1, 3, 4, 5, 7
NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY = 1, 2
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_HANDLE, NFTA_RULE_EXPRESSIONS = 1, 2, 3, 4
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_IMMEDIATE_DREG, NFTA_IMMEDIATE_DATA = 1, 2
NFTA_DATA_VALUE = 1
NFTA_META_DREG, NFTA_META_KEY, NFTA_META_SREG = 1, 2, 3
NFT_META_PROTOCOL, NFT_META_NFTRACE = 1, 12
NFTA_CMP_SREG, NFTA_CMP_OP, NFTA_CMP_DATA = 1, 2, 3
NFT_CMP_EQ = 0
NFT_REG_1 = 1
(NFTA_TRACE_TABLE, NFTA_TRACE_CHAIN, NFTA_TRACE_RULE_HANDLE, NFTA_TRACE_TYPE, NFTA_TRACE_VERDICT,
 NFTA_TRACE_ID, NFTA_TRACE_LL_HEADER, NFTA_TRACE_NETWORK_HEADER, NFTA_TRACE_TRANSPORT_HEADER,
 NFTA_TRACE_IIF, NFTA_TRACE_IIFTYPE, NFTA_TRACE_OIF, NFTA_TRACE_OIFTYPE, NFTA_TRACE_MARK,
 NFTA_TRACE_NFPROTO, NFTA_TRACE_POLICY) = range(1, 17)
NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN = 1, 2
NFT_TRACETYPE_POLICY, NFT_TRACETYPE_RETURN, NFT_TRACETYPE_RULE = 1, 2, 3

#: The netfilter hooks of families ip and bridge, by number (``NF_INET_*``, ``NF_BR_*``).
HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")

#: Verdict codes as ``nft monitor trace`` names them (``NF_*``, ``NFT_*``).
VERDICTS = {0: "DROP", 1: "ACCEPT", 2: "STOLEN", 3: "QUEUE", 4: "REPEAT", 5: "STOP",
            -1: "CONTINUE", -2: "BREAK", -3: "JUMP", -4: "GOTO", -5: "RETURN"}

_HDR = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")  # family, version, res_id (big endian)
_BE32 = struct.Struct(">I")
_BE32S = struct.Struct(">i")
_BE64 = struct.Struct(">Q")


def _msg_type(msg: int) -> int:
    return (NFNL_SUBSYS_NFTABLES << 8) | msg


def _nfgen(family: int, res_id: int = 0) -> bytes:
    return _NFGEN.pack(family, 0, socket.htons(res_id))


def _name(text: str) -> bytes:
    return text.encode() + b"\0"


def _expr(name: str, data: bytes) -> bytes:
    return attr(NFTA_LIST_ELEM, attr(NFTA_EXPR_NAME, _name(name)) + attr(NFTA_EXPR_DATA, data))


#: ``meta nftrace set 1``, as nft compiles it: an immediate into register 1, then a meta set.
NFTRACE_SET = (_expr("immediate", attr(NFTA_IMMEDIATE_DREG, _BE32.pack(NFT_REG_1))
                     + attr(NFTA_IMMEDIATE_DATA | 0x8000, attr(NFTA_DATA_VALUE, b"\x01")))
               + _expr("meta", attr(NFTA_META_KEY, _BE32.pack(NFT_META_NFTRACE))
                       + attr(NFTA_META_SREG, _BE32.pack(NFT_REG_1))))


#: ``meta protocol ip``: the frame carries IPv4 (for chains of family bridge).
PROTOCOL_IP = (_expr("meta", attr(NFTA_META_DREG, _BE32.pack(NFT_REG_1)) + attr(NFTA_META_KEY, _BE32.pack(NFT_META_PROTOCOL)))
               + _expr("cmp", attr(NFTA_CMP_SREG, _BE32.pack(NFT_REG_1)) + attr(NFTA_CMP_OP, _BE32.pack(NFT_CMP_EQ))
                       + attr(NFTA_CMP_DATA | 0x8000, attr(NFTA_DATA_VALUE, b"\x08\x00"))))


@dataclass(frozen=True)
class BaseChain:
    """A base chain to create: its name, hook (``HOOKS`` index) and priority."""

    name: str
    hook: int
    priority: int
    #: The chain's one rule, as expressions (e.g. :data:`NFTRACE_SET`); none if empty.
    rule: bytes = b""


class Nft(Netlink):
    """A raw ``NETLINK_NETFILTER`` socket of the namespace the *calling thread* is in when made.

    Close it (or use it as a context manager): an open socket keeps its namespace alive, and an
    *owner* table it made lives exactly as long as it.
    """

    def __init__(self) -> None:
        super().__init__(NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
        except BaseException:
            self.sock.close()
            raise

    def _header(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        self._seq += 1
        return self._seq, _HDR.pack(_HDR.size + len(body), kind, flags | NLM_F_REQUEST, self._seq, 0) + body

    def transaction(self, requests: list[tuple[int, int, bytes]], what: str) -> None:
        """Send ``(msg, flags, body)`` requests as one nf_tables transaction: all of it, or nothing."""
        parts = [self._header(NFNL_MSG_BATCH_BEGIN, 0, _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES))[1]]
        acks = []
        for msg, flags, body in requests:
            seq, data = self._header(_msg_type(msg), flags | NLM_F_ACK, body)
            acks.append(seq)
            parts.append(data)
        parts.append(self._header(NFNL_MSG_BATCH_END, 0, _nfgen(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES))[1])
        self.sock.send(b"".join(parts))
        pending = set(acks)
        first: NetlinkError | None = None
        while pending:
            data = self.sock.recv(1 << 16)
            for kind, seq, body in messages(data):
                if kind == NLMSG_ERROR and seq in pending:
                    pending.discard(seq)
                    code = -struct.unpack_from("=i", body)[0]
                    if code and first is None:
                        first = NetlinkError(code, f"{what}: {os.strerror(code)}")
                    if code:  # the transaction was aborted: the rest is not acknowledged
                        pending.clear()
        if first is not None:
            raise first

    # -- the requests -------------------------------------------------------------------------

    def add_trace_table(self, family: int, table: str, chains: list[BaseChain]) -> None:
        """``nft add table FAMILY TABLE { flags owner; }``, its base chains (``type filter hook H
        priority P; policy accept;``) and, where asked, the rule ``meta nftrace set 1``."""
        requests = [(NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL,
                     _nfgen(family) + attr(NFTA_TABLE_NAME, _name(table))
                     + attr(NFTA_TABLE_FLAGS, _BE32.pack(NFT_TABLE_F_OWNER)))]
        for chain in chains:
            hook = attr(NFTA_HOOK_HOOKNUM, _BE32.pack(chain.hook)) + attr(NFTA_HOOK_PRIORITY, _BE32S.pack(chain.priority))
            requests.append((NFT_MSG_NEWCHAIN, NLM_F_CREATE,
                             _nfgen(family) + attr(NFTA_CHAIN_TABLE, _name(table))
                             + attr(NFTA_CHAIN_NAME, _name(chain.name)) + attr(NFTA_CHAIN_HOOK | 0x8000, hook)
                             + attr(NFTA_CHAIN_POLICY, _BE32.pack(1)) + attr(NFTA_CHAIN_TYPE, _name("filter"))))
            if chain.rule:
                requests.append((NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND,
                                 _nfgen(family) + attr(NFTA_RULE_TABLE, _name(table))
                                 + attr(NFTA_RULE_CHAIN, _name(chain.name))
                                 + attr(NFTA_RULE_EXPRESSIONS | 0x8000, chain.rule)))
        self.transaction(requests, f"nft add table {table}")

    def del_tables(self, tables: list[tuple[int, str]]) -> None:
        """``nft delete table FAMILY TABLE`` for each ``(family, table)``, in one transaction.

        Cheaper than letting the socket's close drop its owner tables: the kernel frees deleted
        tables in the background (one RCU grace period for all), while a close waits for one.
        """
        self.transaction([(NFT_MSG_DELTABLE, 0, _nfgen(family) + attr(NFTA_TABLE_NAME, _name(table)))
                          for family, table in tables], "nft delete table " + ", ".join(t for _, t in tables))

    def _dump(self, msg: int, family: int, what: str) -> list[bytes]:
        return self.dump(_msg_type(msg), _nfgen(family), what)

    def tables(self, family: int = NFPROTO_IPV4) -> list[str]:
        """``nft list tables FAMILY``: the names of the family's tables."""
        return [_str(attrs(body, _NFGEN.size).get(NFTA_TABLE_NAME))
                for body in self._dump(NFT_MSG_GETTABLE, family, "nft list tables")]

    def rule_handles(self, family: int = NFPROTO_IPV4) -> dict[tuple[str, str], list[int]]:
        """``nft -a list ruleset``'s rule handles: ``{(table, chain): [handle, ...]}`` in chain order."""
        found: dict[tuple[str, str], list[int]] = {}
        for body in self._dump(NFT_MSG_GETRULE, family, "nft list ruleset"):
            a = attrs(body, _NFGEN.size, _RULE_ATTRS)
            key = (_str(a.get(NFTA_RULE_TABLE)), _str(a.get(NFTA_RULE_CHAIN)))
            found.setdefault(key, []).append(_BE64.unpack(a[NFTA_RULE_HANDLE][:8])[0])
        return found

    def base_chains(self, family: int = NFPROTO_IPV4) -> set[tuple[str, str]]:
        """``nft list chains``' base chains (those on a hook): ``{(table, chain)}``."""
        found = set()
        for body in self._dump(NFT_MSG_GETCHAIN, family, "nft list chains"):
            a = attrs(body, _NFGEN.size, _CHAIN_ATTRS)
            if NFTA_CHAIN_HOOK in a:
                found.add((_str(a.get(NFTA_CHAIN_TABLE)), _str(a.get(NFTA_CHAIN_NAME))))
        return found


_CHAIN_ATTRS = frozenset({NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK})
_RULE_ATTRS = frozenset({NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_HANDLE})


def _str(raw: bytes | None) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace") if raw is not None else ""


# -- trace events ---------------------------------------------------------------------------------

def trace_socket(all_namespaces: bool) -> socket.socket:
    """``nft monitor trace``: a socket of the calling thread's namespace, joined to the trace group.

    With ``all_namespaces`` it also hears every namespace that has an id here (``ip netns
    list-id``), in the one order the kernel made the events; :func:`receive` says whose each is.
    """
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK,
                         NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
        for size_option in (33, socket.SO_RCVBUF):  # SO_RCVBUFFORCE where allowed
            try:
                sock.setsockopt(socket.SOL_SOCKET, size_option, 8 << 20)
                break
            except OSError:
                continue
        if all_namespaces:
            sock.setsockopt(SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, NFNLGRP_NFTRACE)
    except BaseException:
        sock.close()
        raise
    return sock


def receive(sock: socket.socket) -> list[tuple[int | None, bytes]]:
    """The trace messages waiting on ``sock``: ``(nsid or None for this namespace, body)`` each.

    Raises ``BlockingIOError`` when there is nothing, ``OSError(ENOBUFS)`` when events were lost.
    """
    data, ancdata, _flags, _addr = sock.recvmsg(1 << 18, socket.CMSG_SPACE(4))
    nsid = None
    for level, kind, value in ancdata:
        if level == SOL_NETLINK and kind == NETLINK_LISTEN_ALL_NSID:
            nsid = struct.unpack("=i", value[:4])[0]
    return [(nsid, body) for kind, _seq, body in messages(data) if kind == _msg_type(NFT_MSG_TRACE)]


@dataclass(frozen=True)
class TraceEvent:
    """One ``nft monitor trace`` line: which chain of which table met the packet, and what it decided."""

    id: int
    family: int
    table: str
    chain: str
    type: int  # NFT_TRACETYPE_*
    handle: int | None  # the rule (type RULE)
    verdict: str  # ACCEPT, DROP, CONTINUE, JUMP, RETURN, ...
    target: str | None  # the chain of a JUMP or GOTO
    iif: int | None
    oif: int | None
    network: bytes | None  # the packet's network header, as this chain saw it (first event of a chain)
    transport: bytes | None


def parse_trace(body: bytes) -> TraceEvent:
    """An ``NFT_MSG_TRACE`` body as a :class:`TraceEvent`."""
    family = body[0]
    a = attrs(body, _NFGEN.size)

    def be32(key: int) -> int | None:
        raw = a.get(key)
        return _BE32.unpack(raw[:4])[0] if raw else None

    kind = be32(NFTA_TRACE_TYPE) or 0
    code, target = None, None
    if NFTA_TRACE_VERDICT in a:
        v = attrs(a[NFTA_TRACE_VERDICT], 0)
        if NFTA_VERDICT_CODE in v:
            code = _BE32S.unpack(v[NFTA_VERDICT_CODE][:4])[0]
        if NFTA_VERDICT_CHAIN in v:
            target = _str(v[NFTA_VERDICT_CHAIN])
    if kind == NFT_TRACETYPE_POLICY and NFTA_TRACE_POLICY in a:
        code = be32(NFTA_TRACE_POLICY)
    if kind == NFT_TRACETYPE_RETURN and code is None:
        code = -5
    handle = a.get(NFTA_TRACE_RULE_HANDLE)
    return TraceEvent(
        id=be32(NFTA_TRACE_ID) or 0,
        family=family,
        table=_str(a.get(NFTA_TRACE_TABLE)),
        chain=_str(a.get(NFTA_TRACE_CHAIN)),
        type=kind,
        handle=_BE64.unpack(handle[:8])[0] if handle else None,
        verdict=VERDICTS.get(code, str(code)) if code is not None else "",
        target=target,
        iif=be32(NFTA_TRACE_IIF),
        oif=be32(NFTA_TRACE_OIF),
        network=a.get(NFTA_TRACE_NETWORK_HEADER),
        transport=a.get(NFTA_TRACE_TRANSPORT_HEADER),
    )
