"""The host's side of the agent's port: run a command in the guest, its output streamed back.

One reader thread cuts the socket's bytes into frames and hands each to its channel's queue;
the thread that runs a command waits on that queue, so a cell's output streams as it comes,
and Jupyter's interrupt (``KeyboardInterrupt`` in the waiting thread) becomes a signal to the
command's process group in the guest, as :func:`netlab_magic.linux.process.stream` does on the host.
"""

from __future__ import annotations

import itertools
import json
import queue
import select
import signal
import socket
import sys
import threading
import time
from typing import IO, Callable

from ..errors import NamespaceNotFound, NetlabError
from ..linux import process
from ..model import HOST
from . import protocol

_LOST = -1  # a pseudo frame kind: the connection ended


class AgentLost(NetlabError):
    """The agent is gone (the VM stopped or crashed); the message says how, in one line."""


class AgentClient:
    """Commands in the guest over one connected socket (see :mod:`.protocol`)."""

    def __init__(self, conn: socket.socket, on_lost: Callable[[], str]) -> None:
        self._conn = conn
        self._on_lost = on_lost
        self._send_lock = threading.Lock()
        self._channels: dict[int, queue.Queue] = {0: queue.Queue()}
        self._ids = itertools.count(1)
        self._lost: str | None = None
        self.hello: dict = {}
        self._reader = threading.Thread(target=self._read, name="netlab-vm-agent", daemon=True)
        self._reader.start()

    # -- the reader thread ----------------------------------------------------------------

    def _read(self) -> None:
        reader = protocol.Reader()
        try:
            while True:
                data = self._conn.recv(65536)
                if not data:
                    break
                for kind, channel, payload in reader.feed(data):
                    q = self._channels.get(channel)
                    if q is not None:
                        q.put((kind, payload))
        except (OSError, ValueError):
            pass
        self._lost = self._on_lost() if self._lost is None else self._lost
        for q in list(self._channels.values()):
            q.put((_LOST, b""))

    # -- commands -------------------------------------------------------------------------

    def wait_hello(self, left: Callable[[], float], exit_fd: int) -> bool:
        """Wait for the agent's READY frame; False if time ran out or QEMU ended first."""
        q = self._channels[0]
        while True:
            try:
                kind, payload = q.get(timeout=min(0.2, max(left(), 0.0)))
            except queue.Empty:
                if left() <= 0 or select.select([exit_fd], [], [], 0)[0]:
                    return False
                continue
            if kind == protocol.READY:
                self.hello = json.loads(payload)
                return True
            if kind == _LOST:
                return False

    def _send(self, kind: int, channel: int, payload: bytes = b"") -> None:
        with self._send_lock:
            try:
                self._conn.sendall(protocol.frame(kind, channel, payload))
            except OSError as err:
                raise AgentLost(self._lost or f"the VM's agent is unreachable ({err.strerror})") from err

    def run(self, argv: list[str], out: IO[str] | None = None, err: IO[str] | None = None,
            timeout: float | None = None, netns: str | None = None) -> int:
        """Run ``argv`` in the guest (inside namespace ``netns``, as ``ip netns exec`` would), copying
        its output to ``out``/``err`` as it comes; return its exit status.

        A missing ``netns`` raises :class:`~netlab_magic.errors.NamespaceNotFound`.

        ``timeout`` stops it and raises :class:`netlab_magic.linux.process.Timeout`; an interrupt stops it
        and raises :class:`netlab_magic.linux.process.Interrupted`; a VM that dies raises :class:`AgentLost`.
        Statuses follow ``subprocess``: negative for a signal.
        """
        out = out or sys.stdout
        err = err or sys.stderr
        if self._lost is not None:
            raise AgentLost(self._lost)
        channel = next(self._ids)
        q: queue.Queue = queue.Queue()
        self._channels[channel] = q
        decoders = {protocol.OUT: (out, _decoder()), protocol.ERR: (err, _decoder())}
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._send(protocol.RUN, channel, protocol.run_payload(argv, netns))
            try:
                return self._pump(channel, q, decoders, deadline, timeout, netns)
            except KeyboardInterrupt:
                self._stop(channel, q, decoders)
                raise process.Interrupted("the command was stopped") from None
        finally:
            del self._channels[channel]

    def _pump(self, channel: int, q: queue.Queue, decoders: dict, deadline: float | None,
              timeout: float | None, netns: str | None) -> int:
        while True:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                self._stop(channel, q, decoders)
                raise process.Timeout(f"stopped after the {timeout:g} s timeout")
            try:
                kind, payload = q.get(timeout=wait)
            except queue.Empty:
                continue
            if kind in decoders:
                target, decoder = decoders[kind]
                target.write(decoder.decode(payload))
                target.flush()
            elif kind == protocol.EXIT:
                for target, decoder in decoders.values():
                    target.write(decoder.decode(b"", final=True))
                return int(payload)
            elif kind == protocol.FAIL:
                return _fail(payload, decoders)
            elif kind == protocol.NO_NETNS:
                have = ", ".join([HOST, *json.loads(payload)])
                raise NamespaceNotFound(f"namespace {netns!r} does not exist (the lab has: {have})")
            elif kind == _LOST:
                raise AgentLost(self._lost or "the VM's agent is gone")

    def _stop(self, channel: int, q: queue.Queue, decoders: dict) -> None:
        """SIGINT the command's group, SIGKILL after the grace period; drain until it exits."""
        self._send(protocol.SIGNAL, channel, str(int(signal.SIGINT)).encode())
        for sig, grace in ((signal.SIGKILL, process.GRACE), (None, 5.0)):
            end = time.monotonic() + grace
            while (left := end - time.monotonic()) > 0:
                try:
                    kind, payload = q.get(timeout=left)
                except queue.Empty:
                    break
                if kind in (protocol.EXIT, protocol.FAIL, _LOST):
                    return
                if kind in decoders:
                    target, decoder = decoders[kind]
                    target.write(decoder.decode(payload))
            if sig is not None:
                self._send(protocol.SIGNAL, channel, str(int(sig)).encode())

    def close(self) -> None:
        """Close the port: the agent sees end of file, and the guest powers off."""
        if self._lost is None:
            self._lost = "the VM was stopped"
        try:
            self._conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._conn.close()


def _decoder():  # noqa: ANN202
    import codecs

    return codecs.getincrementaldecoder("utf-8")("replace")


def _fail(payload: bytes, decoders: dict) -> int:
    target, _ = decoders[protocol.ERR]
    target.write(payload.decode(errors="replace") + "\n")
    return 127
