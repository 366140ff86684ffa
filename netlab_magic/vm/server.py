"""The guest's lab server: netlab_magic's own in-kernel lab, inside the VM, answering the host's calls.

Started by the guest's init (``guest_init.sh``, PID 1, which is not the server: when the server
ends, init powers the VM off, and QEMU exits) with the kernel's own Python and this package,
both read from the host's ``/`` (shared read-only). The guest's root needs no user namespace:
the server makes :class:`netlab_magic.lab.lab.Lab` as root makes it on a bare machine (its own
mounts, its own host namespace; no keeper: the VM is that), then says READY.

Each call (:mod:`.protocol`'s CALL, pickled by :mod:`.remote`) runs on the main thread, one at a
time, as cells run in a kernel: what it prints streams back on its channel, its result or its
exception is pickled back. A SIGNAL for the running call is Jupyter's interrupt: the main
thread gets SIGINT, so the lab's code meets the ``KeyboardInterrupt`` it meets in a kernel.
End of file on the port (the host went away) ends the server.
"""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading

from typing import TYPE_CHECKING

from ..errors import NetlabError
from . import late_site, protocol
from .remote import Objects

if TYPE_CHECKING:
    from ..lab.lab import Lab


class _ChannelText(io.TextIOBase):
    """``sys.stdout`` or ``sys.stderr`` during a call: each write a frame on the call's channel."""

    def __init__(self, server: "Server", kind: int, channel: int) -> None:
        self._server, self._kind, self._channel = server, kind, channel

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._server.send(self._kind, self._channel, text.encode())
        return len(text)


class Server:
    """The lab's calls over the port at file descriptor ``port``."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._send_lock = threading.Lock()
        self._calls: queue.Queue = queue.Queue()
        self._running: int | None = None  # the channel of the call on the main thread

    def send(self, kind: int, channel: int, data: bytes = b"") -> None:
        chunks = protocol.frames(kind, channel, data)
        with self._send_lock:
            for chunk in chunks:
                protocol.write_all(self.port, chunk)

    def serve(self) -> None:
        from ..linux.jobs import Job, JobTable
        from ..lab.lab import Lab, NetNS

        # No keeper: the VM is this lab's keeper (when the server ends, however it ends, init powers
        # the VM off, and every namespace and process with it). One less interpreter to start on the
        # guest's one CPU while the first cell waits (measured: its first call 0.20 -> 0.13 s).
        lab = Lab(keeper=False)
        # what holds processes, threads or namespaces stays here: the host gets a reference
        objects = Objects(lab, (Lab, NetNS, Job, JobTable, subprocess.Popen, threading.Thread))
        signal.signal(signal.SIGINT, self._interrupted)
        threading.Thread(target=self._read, name="netlab-vm-port", daemon=True).start()
        self.send(protocol.READY, protocol.SERVER, json.dumps({"kernel": os.uname().release}).encode())
        while (call := self._calls.get()) is not None:
            self._answer(objects, *call)

    def _read(self) -> None:
        reader = protocol.Reader()
        while data := os.read(self.port, 65536):
            for kind, channel, payload in reader.feed(data):
                if kind == protocol.CALL:
                    self._calls.put((channel, payload))
                elif kind == protocol.SIGNAL and channel == self._running:
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
        self._calls.put(None)  # the host went away

    def _interrupted(self, signum: int, frame: object) -> None:
        if self._running is not None:  # late for a call that just ended: nothing to stop
            raise KeyboardInterrupt

    def _answer(self, objects: Objects, channel: int, payload: bytes) -> None:
        saved = sys.stdout, sys.stderr
        try:
            sys.stdout = _ChannelText(self, protocol.OUT, channel)
            sys.stderr = _ChannelText(self, protocol.ERR, channel)
            self._running = channel
            target, name, args, kwargs = objects.loads(payload)
            answer: tuple = ("value", objects.invoke(target, name, args, kwargs))
        except BaseException as exc:  # noqa: BLE001 - KeyboardInterrupt included: the host raises it again
            answer = ("raised", exc)
        finally:
            self._running = None
            sys.stdout, sys.stderr = saved
        try:
            data = objects.dumps(answer)
        except Exception as exc:  # noqa: BLE001 - an exception that does not pickle: its one line does
            data = objects.dumps(("raised", NetlabError(f"{type(answer[1]).__name__}: {answer[1]} ({exc})")))
        with self._send_lock:
            for chunk in protocol.result_frames(channel, data):
                protocol.write_all(self.port, chunk)


#: The variables of ``%%netns NAME --python`` cells in the VM: the guest's interpreter's own, kept across cells.
PYTHON_CELLS: dict = {"__name__": "__main__"}


class GuestValue:
    """The last line's value of a ``%%netns --python`` cell in the guest: it shows as its ``repr`` there."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def run_python(lab: "Lab", netns: str, source: str) -> GuestValue | None:
    """A ``%%netns NETNS --python`` cell, run by the guest's interpreter with its sockets opened inside ``netns``.

    Called through :meth:`VMLab.call <netlab_magic.vm.lab.VMLab.call>`. Its variables are the guest's
    (:data:`PYTHON_CELLS`), not the kernel's; the last line's value, if it is an expression (and not
    None), comes back as a :class:`GuestValue` (the cell's ``Out``, shown as its ``repr``). An
    exception prints its traceback and is one line for the cell.
    """
    import ast
    import traceback

    late_site.complete()  # the learner's code meets the interpreter a bare python3 gives: site-packages, .pth
    try:
        tree = ast.parse(source, "<%%netns --python>")
    except SyntaxError as err:
        raise NetlabError(f"SyntaxError in the Python cell: {err}") from None
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    with lab.entered(netns):
        try:
            exec(compile(tree, "<%%netns --python>", "exec"), PYTHON_CELLS)  # noqa: S102 - the learner's own cell
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<%%netns --python>", "eval"), PYTHON_CELLS)  # noqa: S307
                if value is not None:
                    return GuestValue(repr(value))
        except Exception as exc:  # noqa: BLE001 - the learner's code: its traceback, then one line
            traceback.print_exc()
            raise NetlabError(f"the Python cell raised {type(exc).__name__} in the VM's guest: {exc}") from None
    return None


#: ioctl(2) on /dev/urandom: reseed the kernel's generator from its pool now (linux/random.h: _IO('R', 0x07)).
RNDRESEEDCRNG = 0x5207


def reseed() -> None:
    """Have the guest kernel reseed its random generator from its pool, where init put the host's
    bytes: a VM restored from the boot's snapshot (:mod:`.snapshot`) would otherwise draw the very
    numbers every VM restored from it draws (the snapshot holds the generator's state)."""
    import fcntl

    fd = os.open("/dev/urandom", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


def main(port_path: str) -> None:
    """The server's start (guest_init.sh runs it with ``python -I -S``: :mod:`.late_site` runs ``site`` later)."""
    reseed()  # before the lab draws anything (names, ids, ports)
    late_site.defer()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    Server(os.open(port_path, os.O_RDWR)).serve()
