"""(d) The hand-written netlink floor: the least work a build can do from Python.

No fork and no library: raw ``AF_NETLINK`` sockets and ``struct``-packed requests. One thread
enters each new namespace (``unshare``), opens that namespace's socket and fd right there, bind-
mounts it where ``ip netns add`` would (``/run/netns/NAME``) and comes home. The veth's peer is
created directly inside its namespace (``IFLA_NET_NS_FD``), already enslaved to the bridge and up
on the host side, with explicit interface indexes so that nothing has to be looked up; each
namespace's three requests (address, link up, lo up) go in one ``sendmsg``.

Used by ``run.py`` only; runs in the lab's sandbox (the caller is inside the lab's host).
"""

from __future__ import annotations

import os
import socket
import struct
import threading

from netlab_magic.linux import syscalls

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x200, 0x400
RTM_NEWLINK, RTM_NEWADDR = 16, 20
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 1


def _attr(kind: int, payload: bytes) -> bytes:
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * (-n % 4)


def _msg(kind: int, flags: int, body: bytes, seq: int) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", 0, 0, index, flags, change)


def _addr(index: int, ip: str, plen: int) -> bytes:
    raw = socket.inet_aton(ip)
    return struct.pack("=BBBBI", socket.AF_INET, plen, 0, 0, index) + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw)


def _sock() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    s.bind((0, 0))
    return s


def _acks(sock: socket.socket, count: int) -> None:
    while count:
        data = sock.recv(65536)
        off = 0
        while off < len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if kind == 2:  # NLMSG_ERROR: an ack when the code is 0
                code = struct.unpack_from("=i", data, off + 16)[0]
                if code:
                    raise OSError(-code, os.strerror(-code))
                count -= 1
            off += (length + 3) & ~3


def build(n: int, *, ipv6: bool = True, bridge: str = "br0", prefix: str = "ns") -> None:
    """Build the star: bridge ``br0`` in the caller's namespace, ``n`` namespaces on it."""
    result: list[BaseException] = []

    def work() -> None:
        try:
            _build(n, ipv6, bridge, prefix)
        except BaseException as err:  # noqa: BLE001
            result.append(err)

    t = threading.Thread(target=work)  # born in the lab's host, like the netlink worker
    t.start()
    t.join()
    if result:
        raise result[0]


def _build(n: int, ipv6: bool, bridge: str, prefix: str) -> None:
    home = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    host = _sock()
    seq = 1
    br_index = 60000
    host.send(_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                   _ifinfo(br_index, IFF_UP, IFF_UP) + _attr(IFLA_IFNAME, bridge.encode() + b"\0")
                   + _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge")), seq))
    _acks(host, 1)
    if not ipv6:
        _write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")
    for i in range(n):
        name = f"{prefix}{i}"
        path = f"/run/netns/{name}"
        open(path, "x").close()
        syscalls.unshare(syscalls.CLONE_NEWNET)
        sock = _sock()
        fd = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        if not ipv6:
            _write_sysctl("net/ipv6/conf/default/disable_ipv6", "1")
        syscalls.mount(syscalls.THREAD_NETNS, path, None, syscalls.MS_BIND)
        syscalls.setns(home, syscalls.CLONE_NEWNET)
        host_index = 1000 + i
        peer = (_ifinfo(2) + _attr(IFLA_IFNAME, b"eth0\0") + _attr(IFLA_NET_NS_FD, struct.pack("=I", fd)))
        linkinfo = _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"veth")
                         + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer)))
        vname = f"veth{i}".encode() + b"\0"
        hi, lo = divmod(i + 1, 256)
        seq += 1
        host.send(_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                       _ifinfo(host_index, IFF_UP, IFF_UP) + _attr(IFLA_IFNAME, vname)
                       + _attr(IFLA_MASTER, struct.pack("=I", br_index)) + linkinfo, seq)
                  + _msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, _addr(host_index, f"10.2.{hi}.{lo}", 32), seq + 1))
        seq += 1
        _acks(host, 2)
        sock.send(_msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, _addr(2, f"10.1.{hi}.{lo}", 16), 1)
                  + _msg(RTM_NEWLINK, 0, _ifinfo(2, IFF_UP, IFF_UP), 2)
                  + _msg(RTM_NEWLINK, 0, _ifinfo(1, IFF_UP, IFF_UP), 3))
        _acks(sock, 3)
        sock.close()
        os.close(fd)
    host.close()
    os.close(home)


def _write_sysctl(key: str, value: str) -> None:
    with open("/proc/sys/" + key, "w") as f:  # the calling thread's namespace
        f.write(value)


def dumps(paths: list[str]) -> int:
    """The floor of a snapshot: in each namespace a fresh socket, a link, address and route dump, read
    to the end and not parsed. Returns the number of messages read."""
    import socket as _socket

    home = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
    total = 0
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
            try:
                sock = _sock()
                sock.setsockopt(270, 12, 1)  # NETLINK_GET_STRICT_CHK: the kernel filters the route dump
            finally:
                syscalls.setns(home, syscalls.CLONE_NEWNET)
                os.close(fd)
            try:
                # the requests ip (and the lab) send: links without statistics, the main table only
                link = _ifinfo() + _attr(29, struct.pack("=I", 1 << 3))  # IFLA_EXT_MASK: skip stats
                route = struct.pack("=BBBBBBBBI", _socket.AF_INET, 0, 0, 0, 254, 0, 0, 0, 0) + _attr(15, struct.pack("=I", 254))
                for seq, (kind, body) in enumerate(((18, link), (22, struct.pack("=BBBBI", 0, 0, 0, 0, 0)), (26, route)),
                                                   start=1):
                    sock.send(struct.pack("=IHHII", 16 + len(body), kind, 0x301, seq, 0) + body)
                    done = False
                    while not done:
                        data = sock.recv(1 << 17)
                        off = 0
                        while off < len(data):
                            length, mtype = struct.unpack_from("=IH", data, off)
                            total += 1
                            if mtype == 3:
                                done = True
                                break
                            off += (length + 3) & ~3
            finally:
                sock.close()
    finally:
        os.close(home)
    return total
