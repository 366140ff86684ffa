"""``python -m netlab_magic.spoofed_ping SRC DST``: one ICMP echo request from a source address of one's choosing.

A check's probe for "does the rule set let in what comes from *another* range than the one it
names?": sent from inside a namespace of the lab (a raw IPv4 socket: root of that namespace's
user namespace is enough), with a source address no interface there has, so no answer can come
back; a trace tells how far it went (:mod:`netlab_magic.troubleshoot`). The kernel fills in the
IPv4 header's checksum and length; the ICMP checksum is computed here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(src: str, dst: str, ident: int, seq: int = 1) -> bytes:
    """An IPv4 packet carrying an ICMP echo request from ``src`` to ``dst`` (TTL 64, 8 bytes of data)."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, ident & 0xFFFF, seq) + b"netlab!\0"
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, socket.IPPROTO_ICMP, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return header + icmp


def main(argv: list[str]) -> int:
    src, dst = argv[0], argv[1]
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        sock.sendto(echo_request(src, dst, os.getpid()), (dst, 0))
    time.sleep(0.2)  # for the trace: the packet crosses the lab while the command still runs
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
