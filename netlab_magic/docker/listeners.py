"""Is anything listening on a TCP port inside a namespace? Asked of the kernel, with no packet sent.

``docker run -d nginx`` returns once the container's web server listens, as a client retrying
would notice. How this lab finds out, and why that way:

- not by connecting to the port: the probe would be a real connection (it shows in the
  container's ``tcpdump``, in the server's log, in conntrack), in a lab that is about watching
  packets;
- not by reading ``/proc/net/tcp``: text whose layout (hex, byte order, state codes) this
  code would have to parse, from whatever thread asks;
- but with **sock_diag**, the netlink family ``ss`` itself uses: one ``SOCK_DIAG_BY_FAMILY``
  dump of the sockets in state LISTEN, structs in and out. The socket is opened inside the
  namespace (``Lab.entered``, for the ``socket()`` call only), queried from where the caller
  is, and closed before :func:`listening` returns, like :mod:`netlab_magic.linux.rtnl`'s.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10

_HDR = struct.Struct("=IHHII")  # nlmsghdr
#: inet_diag_req_v2: family, protocol, ext, pad, states, then inet_diag_sockid (48 bytes, zero)
_REQ = struct.Struct("=BBBxI48x")
#: inet_diag_msg: family, state, timer, retrans, then sockid's sport (network order)
_MSG = struct.Struct("=BBBB2s")


def listening(lab, netns: str, port: int) -> bool:  # noqa: ANN001 - a Lab
    """True if a TCP socket in namespace ``netns`` listens on ``port`` (any address, v4 or v6)."""
    with lab.entered(netns):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    try:
        return any(port in _listening_ports(sock, family) for family in (socket.AF_INET, socket.AF_INET6))
    finally:
        sock.close()


def _listening_ports(sock: socket.socket, family: int) -> set[int]:
    body = _REQ.pack(family, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN)
    sock.send(_HDR.pack(_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
    ports: set[int] = set()
    while True:
        data = sock.recv(65536)
        off = 0
        while off + _HDR.size <= len(data):
            length, kind, _, _, _ = _HDR.unpack_from(data, off)
            if kind == NLMSG_DONE:
                return ports
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", data, off + _HDR.size)[0]
                raise OSError(code, os.strerror(code))
            _, state, _, _, sport = _MSG.unpack_from(data, off + _HDR.size)
            if state == TCP_LISTEN:
                ports.add(int.from_bytes(sport, "big"))
            off += (length + 3) & ~3
        if not data:
            return ports


__all__ = ["listening"]
