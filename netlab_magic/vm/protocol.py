"""The wire between the kernel and the guest's agent: frames over one virtio-serial port.

A frame is a 9-byte header (type, channel, length; network byte order) and a payload. A
channel is one command: the host opens it with :data:`RUN`, the guest ends it with
:data:`EXIT` (or :data:`FAIL` if it could not start). Several channels run at once, so a
background command and a cell can share the port.

Stdlib only, no relative imports: the guest runs :mod:`netlab_magic.vm.agent` with
``python3 -I -S``, which imports this file as the top-level module ``protocol``.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Iterator

HEADER = struct.Struct("!BII")
#: The largest payload of one frame; longer output is sent as several frames.
MAX_PAYLOAD = 65536

# host -> guest
RUN = 1      #: JSON ``{"argv": [...], "netns": NAME or null}``: start a command (stdin: /dev/null) on a new
             #: channel, inside namespace NAME as ``ip netns exec NAME`` would (its own /sys)
SIGNAL = 2   #: a signal number (ASCII) for the command's whole process group

# guest -> host
READY = 10   #: JSON facts about the guest (``kernel``): the agent answers
OUT = 11     #: the command's stdout
ERR = 12     #: the command's stderr
EXIT = 13    #: the exit status (ASCII; negative: killed by that signal); the channel is closed
FAIL = 14    #: the command could not start (the reason, UTF-8); the channel is closed
NO_NETNS = 15  #: the namespace asked for does not exist: JSON list of those that do; the channel is closed

#: The agent's own channel (READY): commands start at 1.
AGENT = 0


def frame(kind: int, channel: int, payload: bytes = b"") -> bytes:
    """One frame; ``payload`` must fit :data:`MAX_PAYLOAD`."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD}")
    return HEADER.pack(kind, channel, len(payload)) + payload


def frames(kind: int, channel: int, data: bytes) -> Iterator[bytes]:
    """``data`` cut into as many frames as it needs (at least one)."""
    for start in range(0, max(len(data), 1), MAX_PAYLOAD):
        yield frame(kind, channel, data[start:start + MAX_PAYLOAD])


def run_payload(argv: list[str], netns: str | None = None, merge_stderr: bool = False) -> bytes:
    """A RUN request; with ``merge_stderr`` the command's stderr comes as OUT, in order with its stdout."""
    return json.dumps({"argv": argv, "netns": netns, "merge_stderr": merge_stderr}).encode()


class Reader:
    """Cuts a byte stream into frames: :meth:`feed` what was read, get back complete frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        self._buffer += data
        out = []
        while len(self._buffer) >= HEADER.size:
            kind, channel, length = HEADER.unpack_from(self._buffer)
            if length > MAX_PAYLOAD:
                raise ValueError(f"frame of {length} bytes: the stream is out of step")
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            out.append((kind, channel, bytes(self._buffer[HEADER.size:end])))
            del self._buffer[:end]
        return out


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to a blocking ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
