"""The wire between the kernel and the guest's lab server: frames over one virtio-serial port.

A frame is a 9-byte header (type, channel, length; network byte order) and a payload. A
channel is one call: the host opens it with :data:`CALL`, the guest ends it with
:data:`RESULT`. What the call prints comes back as :data:`OUT` and :data:`ERR` frames on its
channel meanwhile. Calls and results are pickled (:mod:`.remote`).

Stdlib only: the frames are cut and joined the same way on both sides.
"""

from __future__ import annotations

import os
import struct
from typing import Iterator

HEADER = struct.Struct("!BII")
#: The largest payload of one frame; longer output is sent as several frames.
MAX_PAYLOAD = 65536

# host -> guest
CALL = 1     #: a pickled call (:func:`netlab_magic.vm.remote.dumps`) on a new channel
SIGNAL = 2   #: Jupyter's interrupt for the call on this channel (ASCII signal number; SIGINT)

# guest -> host
READY = 10   #: JSON facts about the guest (``kernel``): its lab is made, the server answers
OUT = 11     #: what the call printed to stdout
ERR = 12     #: what the call printed to stderr
MORE = 16    #: a part of the pickled result, more follows
RESULT = 17  #: the pickled result (its last part): the channel is closed

#: The server's own channel (READY): calls start at 1.
SERVER = 0


def frame(kind: int, channel: int, payload: bytes = b"") -> bytes:
    """One frame; ``payload`` must fit :data:`MAX_PAYLOAD`."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is larger than {MAX_PAYLOAD}")
    return HEADER.pack(kind, channel, len(payload)) + payload


def frames(kind: int, channel: int, data: bytes) -> Iterator[bytes]:
    """``data`` cut into as many frames as it needs (at least one)."""
    for start in range(0, max(len(data), 1), MAX_PAYLOAD):
        yield frame(kind, channel, data[start:start + MAX_PAYLOAD])


def result_frames(channel: int, data: bytes) -> Iterator[bytes]:
    """A pickled result as frames: :data:`MORE` for each part but the last, :data:`RESULT` for the last."""
    parts = [data[start:start + MAX_PAYLOAD] for start in range(0, max(len(data), 1), MAX_PAYLOAD)]
    for part in parts[:-1]:
        yield frame(MORE, channel, part)
    yield frame(RESULT, channel, parts[-1])


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
