"""Where commands run in the foreground: a process started inside a lab namespace, its output streamed live.

One left running while the next cells go on is a job (:mod:`.jobs`); a container's command is one
(:mod:`netlab_magic.docker.container_jobs`).

A command is started by the kernel's main thread after it entered the namespace (see
:meth:`Sandbox.entered`): the child is born inside, with no ``ip netns exec`` in between.
Every command gets its own process group, so an interrupt or a timeout stops the whole
pipeline the user typed, and nothing else.

A command whose output goes to a cell writes stdout and stderr into one pipe, so the cell
shows them in the order a terminal would (as IPython's ``!cmd`` does, through its terminal),
and :class:`Batched` hands the cell whole lines, a burst at a time, not the pieces the pipe gave.
"""

from __future__ import annotations

import codecs
import errno
import fcntl
import os
import pty
import select
import selectors
import shutil
import signal
import subprocess
import struct
import sys
import termios
import time
from typing import IO, Sequence

#: How long a command gets between SIGINT and SIGKILL when it is interrupted.
GRACE = 0.5
#: Output arriving this soon after the first byte not yet shown goes to the cell with it, as one
#: piece (IPython's ``!cmd`` shows what came in each 50 ms: ``ProcessHandler.read_timeout``).
BURST = 0.05
#: A line still without its end is shown after this long all the same (a prompt, progress dots).
PARTIAL_LINE = 0.5
#: Rows and columns of the terminal IPython's ``!cmd`` runs a command in (pexpect's default size).
TERMINAL_SIZE = (24, 80)


def shell_argv(script: str) -> list[str]:
    """argv running ``script`` the way ``%%bash`` does (bash, else sh)."""
    shell = shutil.which("bash") or "/bin/sh"
    return [shell, "-c", script]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("MPLBACKEND", None)  # the kernel's inline backend means nothing to a child process
    return env


def popen(argv: Sequence[str], *, merge_stderr: bool = False, stdin: int | None = subprocess.DEVNULL,
          terminal: bool = False) -> subprocess.Popen:
    """Start ``argv`` in its own process group, output piped. Call inside ``Sandbox.entered``.

    With ``terminal``, stdout and stderr are one pseudo-terminal of :data:`TERMINAL_SIZE`, read
    as ``proc.stdout``: what IPython's ``!cmd`` gives a command (lines end in ``\\r\\n``; ``ss``
    and ``ls`` lay out their columns for a terminal).
    """
    if not terminal:
        return subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            start_new_session=True,
            env=child_env(),
            close_fds=True,
        )
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *TERMINAL_SIZE, 0, 0))
        proc = subprocess.Popen(list(argv), stdin=stdin, stdout=slave, stderr=slave, start_new_session=True,
                                env=child_env(), close_fds=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    proc.stdout = open(master, "rb")  # noqa: SIM115 - closed as a pipe is (stream, the job's reader)
    return proc


def stop_group(proc: subprocess.Popen, grace: float = GRACE) -> None:
    """SIGINT the process group, then SIGKILL it if it is still there after ``grace`` seconds (0: SIGKILL at once)."""
    stop_groups([proc], grace)


def stop_groups(procs: Sequence[subprocess.Popen], grace: float = GRACE) -> None:
    """Stop several process groups at once: SIGINT to all, one shared ``grace``, then SIGKILL.

    Stopping forty jobs that ignore SIGINT costs one grace period, not forty. A ``grace`` of 0
    sends SIGKILL alone.
    """
    if grace > 0:
        for proc in procs:
            _killpg(proc, signal.SIGINT)
        deadline = time.monotonic() + grace
        for proc in procs:
            wait_exit(proc, deadline - time.monotonic())
    for proc in procs:  # what ignored SIGINT, and stragglers of each group once its leader is gone
        _killpg(proc, signal.SIGKILL)
    for proc in procs:
        wait_exit(proc, 5.0)


def wait_exit(proc: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``proc`` to end, and reap it; whether it has ended.

    The kernel wakes the wait the moment the process ends (a pidfd), where ``Popen.wait(timeout)``
    polls in sleeps that grow to 50 ms and can see a process gone up to 50 ms after it ended.
    """
    if proc.poll() is not None:
        return True
    try:  # not reaped yet (poll above): the pid is still this process's, a zombie at worst
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # another thread reaped it meanwhile
        try:
            proc.wait(max(0.0, timeout))
        except subprocess.TimeoutExpired:
            pass
        return proc.returncode is not None
    try:
        select.select([pidfd], [], [], max(0.0, timeout))
    finally:
        os.close(pidfd)
    return proc.poll() is not None


def _killpg(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def describe_exit(code: int) -> str:
    """How the lab words an exit status everywhere: ``exit status 1``, ``killed by signal 9``."""
    return f"exit status {code}" if code >= 0 else f"killed by signal {-code}"


class Timeout(Exception):
    """The command ran longer than its ``--timeout``."""


class Interrupted(KeyboardInterrupt):
    """Jupyter's interrupt stopped a command: shown as one line, not a traceback.

    Still a ``KeyboardInterrupt``, so "run all" stops at this cell as it does for ``!sleep``.
    """

    def _render_traceback_(self) -> list[str]:  # IPython's hook for how an exception is shown
        return [f"KeyboardInterrupt: {self}" if str(self) else "KeyboardInterrupt"]


# Frontends and nbclient see the error's name: keep it the one they know for an interrupt.
Interrupted.__name__ = Interrupted.__qualname__ = "KeyboardInterrupt"


class Batched:
    """A command's output on its way to a cell: decoded, and written in whole lines, a burst at a time.

    Each ``flush`` of ``target`` becomes one output in the notebook. A pipe hands over whatever
    was written so far: ping writes ``ping: ``, ``connect`` and ``: Network is unreachable``
    separately, which flushed as read were three outputs (three lines in a static view). Here a
    line goes out when it is whole, with what else came within :data:`BURST` of it; a line
    without its end waits at most :data:`PARTIAL_LINE`.
    """

    def __init__(self, target: IO[str]) -> None:
        self.target = target
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = ""
        self._since = 0.0

    def feed(self, data: bytes, now: float) -> None:
        """Take what the process wrote (``now``: ``time.monotonic()``); :meth:`write_due` writes it."""
        text = self._decoder.decode(data)
        if text and not self._pending:
            self._since = now
        self._pending += text

    def due(self) -> float | None:
        """When :meth:`write_due` next writes (``time.monotonic()``); None if nothing waits."""
        if not self._pending:
            return None
        return self._since + (BURST if "\n" in self._pending else PARTIAL_LINE)

    def write_due(self, now: float) -> None:
        """Write to the cell what is due: the whole lines waiting (or a line end long overdue)."""
        due = self.due()
        if due is None or now < due:
            return
        cut = self._pending.rfind("\n") + 1 or len(self._pending)
        self._write(self._pending[:cut])
        self._pending, self._since = self._pending[cut:], now

    def close(self) -> None:
        """The output ended (or the caller stops reading): write everything still waiting."""
        self._pending += self._decoder.decode(b"", final=True)
        if self._pending:
            self._write(self._pending)
            self._pending = ""

    def _write(self, text: str) -> None:
        self.target.write(text)
        self.target.flush()


def stream(proc: subprocess.Popen, out: IO[str] | None = None, err: IO[str] | None = None,
           timeout: float | None = None, keep_open: bool = False) -> int:
    """Copy the process's output to ``out``/``err`` as it comes (:class:`Batched`); return its exit status.

    A process started with ``merge_stderr`` (:func:`popen`) has one pipe: all of it goes to ``out``.
    Returns when the process exits, as ``!cmd &`` does, not when its output ends: a background
    process it left (``nc -l 8080 &``) may hold the pipes for hours. With ``keep_open`` such
    pipes stay open on ``proc`` (see :func:`holds_output`) for the caller to hand to a reader;
    otherwise they are closed.

    Ctrl-C (Jupyter's interrupt) stops the process group within :data:`GRACE` seconds and
    raises :class:`Interrupted`. ``timeout`` stops it the same way and raises :class:`Timeout`.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    deadline = None if timeout is None else time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    batches: dict[int, Batched] = {}
    pipes = [p for p in (proc.stdout, proc.stderr) if p is not None]
    for pipe, target in ((proc.stdout, out), (proc.stderr, err)):
        if pipe is not None:
            batches[pipe.fileno()] = Batched(target)
            sel.register(pipe, selectors.EVENT_READ, batches[pipe.fileno()])
    exit_fd = os.pidfd_open(proc.pid)
    sel.register(exit_fd, selectors.EVENT_READ, None)
    exited = False
    try:
        while not exited or sel.get_map():
            now = time.monotonic()
            for batch in batches.values():
                batch.write_due(now)
            due = min((d for d in (b.due() for b in batches.values()) if d is not None), default=None)
            if exited:
                wait = 0.0  # drain what is there now; what comes later belongs to the background
            elif deadline is not None and deadline <= now:
                _stop_and_close(proc, pipes)
                raise Timeout(f"stopped after the {timeout:g} s timeout")
            else:
                wait = min((t for t in (deadline, due) if t is not None), default=None)
                wait = None if wait is None else max(0.0, wait - now)
            ready = sel.select(wait)
            if exited and not ready:
                break
            for key, _ in ready:
                if key.fd == exit_fd:
                    exited = True
                    sel.unregister(exit_fd)
                    continue
                data = _read(key.fd)
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
                    continue
                key.data.feed(data, time.monotonic())
        return proc.wait()
    except KeyboardInterrupt:
        _stop_and_close(proc, pipes)
        raise Interrupted("the command was stopped") from None
    finally:
        for batch in batches.values():
            batch.close()
        sel.close()
        os.close(exit_fd)
        if not keep_open:
            for pipe in pipes:
                pipe.close()


def _read(fd: int) -> bytes:
    """What ``fd`` has (at most 64 KiB); ``b""`` at its end, which a terminal's master side reports as EIO."""
    try:
        return os.read(fd, 65536)
    except OSError as err:
        if err.errno == errno.EIO:
            return b""
        raise


def holds_output(proc: subprocess.Popen) -> bool:
    """True if :func:`stream` returned while something the process left still holds its output."""
    return any(p is not None and not p.closed for p in (proc.stdout, proc.stderr))


def _stop_and_close(proc: subprocess.Popen, pipes: list) -> None:
    stop_group(proc)
    for pipe in pipes:
        pipe.close()
