"""Where commands run: a process started inside a lab namespace, its output streamed live.

A command is started by the kernel's main thread after it entered the namespace (see
:meth:`Sandbox.entered`): the child is born inside, with no ``ip netns exec`` in between.
Every command gets its own process group, so an interrupt or a timeout stops the whole
pipeline the user typed, and nothing else.
"""

from __future__ import annotations

import codecs
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from typing import IO, Sequence

#: How long a command gets between SIGINT and SIGKILL when it is interrupted.
GRACE = 0.5


def shell_argv(script: str) -> list[str]:
    """argv running ``script`` the way ``%%bash`` does (bash, else sh)."""
    shell = shutil.which("bash") or "/bin/sh"
    return [shell, "-c", script]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("MPLBACKEND", None)  # the kernel's inline backend means nothing to a child process
    return env


def popen(argv: Sequence[str], *, merge_stderr: bool = False, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
    """Start ``argv`` in its own process group, output piped. Call inside ``Sandbox.entered``."""
    return subprocess.Popen(
        list(argv),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        start_new_session=True,
        env=child_env(),
        close_fds=True,
    )


def stop_group(proc: subprocess.Popen, grace: float = GRACE) -> None:
    """SIGINT the process group, then SIGKILL it if it is still there after ``grace`` seconds."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # stragglers of the group once the leader is gone
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Timeout(Exception):
    """The command ran longer than its ``--timeout``."""


def stream(proc: subprocess.Popen, out: IO[str] | None = None, err: IO[str] | None = None,
           timeout: float | None = None) -> int:
    """Copy the process's output to ``out``/``err`` as it comes; return its exit status.

    Ctrl-C (Jupyter's interrupt) stops the process group within :data:`GRACE` seconds and
    re-raises ``KeyboardInterrupt``. ``timeout`` stops it the same way and raises :class:`Timeout`.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    deadline = None if timeout is None else time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    decoders = {}
    for pipe, target in ((proc.stdout, out), (proc.stderr, err)):
        if pipe is not None:
            sel.register(pipe, selectors.EVENT_READ, target)
            decoders[pipe.fileno()] = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        while sel.get_map():
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if deadline is not None and wait == 0.0:
                stop_group(proc)
                raise Timeout(f"stopped after the {timeout:g} s timeout")
            for key, _ in sel.select(wait):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    key.data.write(decoders[key.fd].decode(b"", final=True))
                    continue
                key.data.write(decoders[key.fd].decode(data))
                key.data.flush()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            return proc.wait(remaining)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise Timeout(f"stopped after the {timeout:g} s timeout") from None
    except KeyboardInterrupt:
        stop_group(proc)
        raise
    finally:
        sel.close()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
