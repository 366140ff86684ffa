"""``python -m netlab_magic.packets.capture_worker IFNAME FILE [COUNT]``: tcpdump's ``-i IFNAME -U -w FILE``, in Python.

For where tcpdump cannot run: as root of a user namespace (the rootless lab), tcpdump insists on
dropping its privileges to its own user, which that namespace does not have. This reads every
frame of one interface (both directions, as tcpdump does) from an ``AF_PACKET`` socket and
appends it to a pcap file at once, until COUNT frames or SIGINT/SIGTERM. Run it inside the
interface's namespace (:func:`netlab_magic.packets.capture.start_capture` does).
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
LINKTYPE_ETHERNET = 1
SNAPLEN = 262144


def main(argv: list[str]) -> int:
    ifname, path = argv[0], argv[1]
    count = int(argv[2]) if len(argv) > 2 and argv[2] else 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    seen = 0
    with open(path, "wb", buffering=0) as out:
        out.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        print(f"capturing on {ifname}", flush=True)
        try:
            while not count or seen < count:
                data = sock.recv(SNAPLEN)
                now = time.time()
                out.write(struct.pack("=IIII", int(now), int((now % 1) * 1_000_000), len(data), len(data)) + data)
                seen += 1
        except KeyboardInterrupt:
            pass
    print(f"{seen} packets captured", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
