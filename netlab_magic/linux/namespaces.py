"""Where a thread enters a network namespace and comes back, and where named namespaces are made.

Namespaces belong to threads: :func:`inside` moves only the calling thread, for the body of a
``with``, and brings it back. Coming back must not fail silently: a thread left in the wrong
namespace would run everything after it there, so a failed return raises
:class:`StrandedThread` (and says so on stderr) instead of going on.

:func:`new_named` is ``ip netns add``: a fresh namespace, bind-mounted at its path.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from . import syscalls

#: The namespace file of the *calling thread's* network namespace (not the process's).
THREAD_NETNS = syscalls.THREAD_NETNS


class StrandedThread(RuntimeError):
    """A thread could not come back from a namespace it entered."""


def open_current() -> int:
    """An fd of the calling thread's network namespace (the caller closes it)."""
    return os.open(THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)


def open_path(path: str) -> int:
    """An fd of the namespace bound at ``path`` (the caller closes it)."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


@contextmanager
def inside(target_fd: int, home_fd: int | None = None) -> Iterator[None]:
    """The calling thread inside namespace ``target_fd`` for the body, then back in ``home_fd``
    (default: the namespace it was in)."""
    own_home = home_fd is None
    home = open_current() if own_home else home_fd
    try:
        syscalls.setns(target_fd, syscalls.CLONE_NEWNET)
        try:
            yield
        finally:
            come_back(home)
    finally:
        if own_home:
            os.close(home)


@contextmanager
def inside_path(path: str) -> Iterator[None]:
    """:func:`inside` the namespace bound at ``path``."""
    fd = open_path(path)
    try:
        with inside(fd):
            yield
    finally:
        os.close(fd)


def come_back(home_fd: int) -> None:
    """Return the calling thread to ``home_fd``; raise :class:`StrandedThread` if the kernel refuses."""
    try:
        syscalls.setns(home_fd, syscalls.CLONE_NEWNET)
    except OSError as err:
        message = f"netlab: a thread could not return from a namespace ({err.strerror}); restart the kernel"
        print(message, file=sys.stderr)
        raise StrandedThread(message) from err


@contextmanager
def new_named(path: str) -> Iterator[None]:
    """``ip netns add``: a new namespace bound at ``path``; the body runs inside it, then the thread is back.

    If anything fails, ``path`` is removed again (nothing half-built). ``path`` must not exist.
    """
    with open(path, "x"):
        pass
    home = open_current()
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            syscalls.mount(THREAD_NETNS, path, None, syscalls.MS_BIND)
            yield
        finally:
            come_back(home)
    except BaseException:
        try:
            syscalls.umount(path)
        except OSError:
            pass
        os.unlink(path)
        raise
    finally:
        os.close(home)
