"""Where netlink sockets live: one worker thread that opens a pyroute2 socket per namespace.

Why a thread of its own:

* pyroute2's synchronous ``IPRoute`` cannot run on the kernel's main thread, which runs an
  asyncio loop (pyroute2 0.9 raises "This event loop is already running").
* A socket is bound to the namespace it was *opened* in. The worker opens a namespace's
  socket by entering it for the duration of one ``socket()`` call and coming straight back
  (no fork). Nothing else ever runs on that thread, so the enter/leave pair cannot leak
  into user code.

Nothing is kept between calls: a socket or an fd inside a namespace keeps that namespace
alive, and ``ip netns del ns1`` must free ns1 (and the veth peers inside it) exactly as it
does without the lab. Sockets and fds opened during one :meth:`NetlinkWorker.call` are
closed when it returns.

Everything that talks netlink is a function ``fn(worker, ...)`` sent through :meth:`call`.
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

from pyroute2 import IPRoute

from . import syscalls

T = TypeVar("T")


class NetlinkWorker:
    """A thread that runs netlink work, with sockets opened per call, keyed by namespace name.

    ``resolve(name)`` gives the namespace file for a name. The thread is born where the
    creating thread is (the lab's host), which is also where it returns after opening a
    socket elsewhere.
    """

    def __init__(self, resolve: Callable[[str], str]) -> None:
        self._resolve = resolve
        self._sockets: dict[str, IPRoute] = {}
        self._fds: dict[str, int] = {}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._home: int | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="netlab-netlink", daemon=True)
        self._thread.start()

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        self._home = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        while True:
            item = self._queue.get()
            if item is None:
                break
            fn, args, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(self, *args)
            except BaseException as err:  # handed to the caller
                self._close_all()
                future.set_exception(err)
            else:
                self._close_all()  # before the caller goes on: it may `ip netns del` next
                future.set_result(result)
        os.close(self._home)
        while True:  # calls that raced with close() fail instead of waiting forever
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[2].set_exception(RuntimeError("the lab's netlink thread has stopped (the lab was reset)"))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(self, *args)`` on the worker thread and return (or raise) its result."""
        if threading.current_thread() is self._thread:
            return fn(self, *args)
        if self._stopping:
            raise RuntimeError("the lab's netlink thread has stopped (the lab was reset)")
        future: Future = Future()
        self._queue.put((fn, args, future))
        return future.result()

    def close(self) -> None:
        """Stop the thread (it holds no socket between calls)."""
        self._stopping = True
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    # -- on the thread only ---------------------------------------------------------------

    def ipr(self, netns: str) -> IPRoute:
        """The netlink socket opened inside ``netns`` (opened on first use in this call)."""
        sock = self._sockets.get(netns)
        if sock is None:
            fd = os.open(self._resolve(netns), os.O_RDONLY | os.O_CLOEXEC)
            try:
                with self.inside_fd(fd):
                    sock = IPRoute()
            except BaseException:
                os.close(fd)
                raise
            self._sockets[netns] = sock
            self._fds[netns] = fd
        return sock

    def netns_fd(self, netns: str) -> int:
        """An open fd of ``netns`` (closed with its socket, when the call returns)."""
        self.ipr(netns)
        return self._fds[netns]

    def inside_fd(self, fd: int) -> "_Inside":
        """Context manager: this thread inside the namespace ``fd``, then home again."""
        return _Inside(fd, self._home)

    def _close_all(self) -> None:
        for sock in self._sockets.values():
            try:
                sock.close()
            except Exception:
                pass
        for fd in self._fds.values():
            os.close(fd)
        self._sockets.clear()
        self._fds.clear()


class _Inside:
    def __init__(self, fd: int, home: int | None) -> None:
        self._fd, self._home = fd, home

    def __enter__(self) -> None:
        syscalls.setns(self._fd, syscalls.CLONE_NEWNET)

    def __exit__(self, *exc: object) -> None:
        syscalls.setns(self._home, syscalls.CLONE_NEWNET)
