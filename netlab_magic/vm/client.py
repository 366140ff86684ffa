"""The host's side of the port: a call to the guest's lab, what it prints streamed back.

One reader thread cuts the socket's bytes into frames and hands each to its channel's queue;
the thread that made a call waits on that queue, so a cell's output streams as it comes, and
Jupyter's interrupt (``KeyboardInterrupt`` in the waiting thread) becomes a SIGNAL to the
guest, where the lab's code meets it as it would in a kernel and ends the call.
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
from typing import IO, Any, Callable

from ..errors import NetlabError
from ..linux import process
from . import protocol, remote

_LOST = -1  # a pseudo frame kind: the connection ended


class AgentLost(NetlabError):
    """The agent is gone (the VM stopped or crashed); the message says how, in one line."""


class AgentClient:
    """Calls to the guest's lab over one connected socket (see :mod:`.protocol`)."""

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

    def call(self, target: int, name: str, args: tuple = (), kwargs: dict | None = None,
             out: IO[str] | None = None, err: IO[str] | None = None) -> Any:
        """``name(*args, **kwargs)`` on object ``target`` of the guest (:data:`remote.LAB`: its lab);
        what it prints goes to ``out``/``err`` (default: this cell's) as it comes.

        Returns what it returned, or raises what it raised (the lab's own errors, its
        :class:`~netlab_magic.linux.process.Interrupted` after an interrupt); objects that stay in the
        guest come back as :class:`~.remote.Remote`. A VM that dies raises :class:`AgentLost`.
        """
        if self._lost is not None:
            raise AgentLost(self._lost)
        channel = next(self._ids)
        q: queue.Queue = queue.Queue()
        self._channels[channel] = q
        decoders = {protocol.OUT: (out or sys.stdout, _decoder()), protocol.ERR: (err or sys.stderr, _decoder())}
        try:
            self._send(protocol.CALL, channel, remote.host_dumps((target, name, args, kwargs or {})))
            kind, answer = self._pump(channel, q, decoders)
        finally:
            del self._channels[channel]
        if kind == "raised":
            raise answer
        return answer

    def _pump(self, channel: int, q: queue.Queue, decoders: dict) -> tuple[str, Any]:
        result = bytearray()
        interrupted = False
        while True:
            try:  # an interrupt while the call's output is written to the cell is the call's too
                kind, payload = q.get()
                if kind in decoders:
                    target, decoder = decoders[kind]
                    target.write(decoder.decode(payload))
                    target.flush()
                    continue
            except KeyboardInterrupt:
                if interrupted:  # a second interrupt: leave the call to end in the guest on its own
                    raise process.Interrupted("the call was stopped") from None
                interrupted = True
                self._send(protocol.SIGNAL, channel, str(int(signal.SIGINT)).encode())
                continue
            if kind == protocol.MORE:
                result += payload
            elif kind == protocol.RESULT:
                for target, decoder in decoders.values():
                    target.write(decoder.decode(b"", final=True))
                return remote.host_loads(bytes(result + payload), self.call)
            elif kind == _LOST:
                raise AgentLost(self._lost or "the VM's agent is gone")

    def close(self) -> None:
        """Close the port: the guest's server sees end of file, and the guest powers off."""
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
