"""Noticing that a container's command exited, on the kernel's main thread, between cells.

dockerd takes a container's network down as soon as its command exits. Here that teardown
changes namespaces, links and the firewall, which only the kernel's main thread may do (it lives
in the lab's host and the lab's mount namespace, and nothing else runs iptables then). So the
exit is noticed by the main thread's event loop, which the kernel returns to between cells: it
watches a pidfd of the command (or, without pidfds, a small thread waits on the command and wakes
the loop), then calls back. Without an event loop (the engine used from plain Python), nothing
is watched: the engine's next call reaps what exited.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, Callable


def main_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the kernel's main thread (where cells run), or None outside a kernel."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        loop = getattr(getattr(kernel, "io_loop", None), "asyncio_loop", None)
    except Exception:  # noqa: BLE001 - no IPython, or not a kernel
        return None
    if not isinstance(loop, asyncio.AbstractEventLoop) or loop.is_closed():
        return None
    return loop


def watch(proc: Any, exited: Callable[[], None]) -> None:
    """Call ``exited()`` on the main thread's event loop once ``proc`` (a Popen) has ended."""
    loop = main_loop()
    if loop is None:
        return
    if proc.poll() is not None:  # already gone (and reaped: its pid may be someone else's now)
        loop.call_soon(exited)
        return
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        def ready() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            exited()

        try:
            loop.add_reader(fd, ready)
            return
        except (NotImplementedError, RuntimeError, ValueError):
            os.close(fd)

    def wait() -> None:
        try:
            proc.wait()
        finally:
            try:
                loop.call_soon_threadsafe(exited)
            except RuntimeError:  # the loop is closed: the kernel is going away
                pass

    threading.Thread(target=wait, name="netlab-docker-watch", daemon=True).start()


def between_cells(lock: threading.RLock, reap: Callable[[], None], *, again: Callable[[], None]) -> None:
    """On the main thread, call ``reap()`` holding ``lock``; if a subshell's ``%docker`` command
    holds it, call ``again()`` a little later. A failure is logged: it must never break the kernel."""
    if threading.current_thread() is not threading.main_thread():
        return
    if not lock.acquire(blocking=False):
        asyncio.get_running_loop().call_later(0.2, again)
        return
    try:
        reap()
    except Exception:  # noqa: BLE001 - a cleanup between cells must never break the kernel
        logging.getLogger(__name__).warning("netlab: removing an exited container failed", exc_info=True)
    finally:
        lock.release()


__all__ = ["main_loop", "watch", "between_cells"]
