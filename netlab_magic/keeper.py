"""The lab keeper: a tiny process that tears the lab down if the kernel dies.

It runs beside the kernel, in the lab's private mount namespace (so it sees the lab's
``/run/netns``) but outside the lab's network namespaces. It waits on a pipe that only the
kernel holds open. When the kernel exits in any way, ``kill -9`` included, the pipe reaches
end-of-file (and the kernel's death signal arrives): the keeper then kills every process
inside the lab's network namespaces and exits. With the last process and the last mount
gone, the kernel frees the namespaces, and with them every interface, route and iptables rule.

Stdlib only: it starts with ``python -I -S`` in a few milliseconds. :func:`sweep` is also what
``%netlab reset`` uses.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time

NETNS_DIR = "/run/netns"
HOST_FILE = "/run/netlab/host"


def lab_netns_ids() -> set[tuple[int, int]]:
    """(device, inode) of every network namespace the lab has a name for, host included."""
    ids = set()
    for directory, only in ((os.path.dirname(HOST_FILE), os.path.basename(HOST_FILE)), (NETNS_DIR, None)):
        try:
            dir_dev = os.stat(directory).st_dev
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if only is not None and entry.name != only:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            # a bind-mounted namespace file (nsfs: another device); a plain empty file is not one
            if st.st_dev != dir_dev and st.st_size == 0 and st.st_ino:
                ids.add((st.st_dev, st.st_ino))
    return ids


def _is_nsfs(path: str) -> bool:
    # A bind-mounted namespace file; a plain empty file (a failed `ip netns add`) is not.
    try:
        return os.stat(path).st_dev != os.stat(os.path.dirname(path)).st_dev
    except OSError:
        return False


def processes_in(netns_ids: set[tuple[int, int]]) -> list[int]:
    """PIDs of the processes whose network namespace is one of ``netns_ids``."""
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, or not ours to look at
            continue
        if (st.st_dev, st.st_ino) in netns_ids:
            found.append(int(entry))
    return found


def sweep(netns_ids: set[tuple[int, int]] | None = None, rounds: int = 50) -> int:
    """Kill every process inside the lab's namespaces; return how many were killed.

    Repeats until a scan finds nobody, so processes forked during the sweep die too.
    """
    ids = lab_netns_ids() if netns_ids is None else netns_ids
    killed = 0
    for _ in range(rounds):
        pids = processes_in(ids) if ids else []
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    return killed


def main() -> None:
    """Entry point: ``python -I -S keeper.py FD`` with FD the read end of the kernel's pipe."""
    fd = int(sys.argv[1])
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    # The kernel's death arrives as end-of-file on the pipe, or as SIGTERM (the parent-death
    # signal). The handler does nothing itself: the signal only wakes the wait, through a pipe.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # the pipe alone is enough
        pass
    while True:
        ready, _, _ = select.select([fd, wake_r], [], [])
        if wake_r in ready:
            break
        try:
            if not os.read(fd, 4096):
                break
        except OSError:
            break
    sweep()


if __name__ == "__main__":
    main()
