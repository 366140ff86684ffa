"""The lab keeper: a tiny process that tears the lab down if the kernel dies.

It runs beside the kernel, in the lab's private mount namespace (so it sees the lab's
``/run/netns``) but outside the lab's network namespaces. It waits on a pipe that only the
kernel holds open. When the kernel exits in any way, ``kill -9`` included, the pipe reaches
end-of-file (and the kernel's death signal arrives): the keeper then kills every process
of the lab and exits: every process inside the lab's named namespaces, and every process
descending from the lab's private world, in a namespace with no name or one it made itself
(see :func:`lab_processes`). With the last process and the last mount
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


def is_nsfs(path: str, dir_dev: int | None = None) -> bool:
    """True if ``path`` is a bind-mounted namespace file; a plain empty file (a failed ``ip netns add``) is not.
    ``dir_dev``: the device of its directory, if the caller asks for many files of one directory."""
    try:
        return os.stat(path).st_dev != (os.stat(os.path.dirname(path)).st_dev if dir_dev is None else dir_dev)
    except OSError:
        return False


def _carries(mountinfo_of: str, marker: str) -> bool:
    """True if the mount table of /proc/PID shows the lab's ``/run`` (its tmpfs named ``marker``)."""
    try:
        with open(f"/proc/{mountinfo_of}/mountinfo") as f:
            table = f.read()
    except OSError:
        return False
    needle = f" - tmpfs {marker} "
    return needle in table


def lab_processes(marker: str, netns_ids: set[tuple[int, int]], spare: set[int]) -> list[int]:
    """PIDs of the lab's processes: every process whose mount table descends from the lab's
    (it shows the lab's ``/run``), whatever network namespace it is in, named or not; and every
    process inside one of ``netns_ids``. Processes in ``spare`` are left out.

    A mount namespace copied from the lab's (``unshare -m``, ``ip netns exec``) keeps the lab's
    ``/run``, so a process that made namespaces of its own is still found. Each mount namespace's
    table is read once.
    """
    verdict: dict[tuple[int, int], bool] = {}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spare:
            continue
        try:
            mnt = os.stat(f"/proc/{entry}/ns/mnt")
            net = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, or not ours to look at
            continue
        key = (mnt.st_dev, mnt.st_ino)
        if key not in verdict:
            verdict[key] = _carries(entry, marker)
        if verdict[key] or (net.st_dev, net.st_ino) in netns_ids:
            found.append(int(entry))
    return found


def sweep(marker: str, spare: set[int] = frozenset(), rounds: int = 100) -> int:
    """Kill every process of the lab (see :func:`lab_processes`); return how many were killed.

    Repeats until a scan finds nobody, so processes forked during the sweep die too.
    """
    spare = set(spare) | {os.getpid()}
    killed = 0
    for _ in range(rounds):
        pids = lab_processes(marker, lab_netns_ids(), spare)
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


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def main() -> None:
    """Entry point: ``python -I -S keeper.py FD MARKER KERNEL_PID``.

    FD is the read end of the kernel's pipe, MARKER the name of the lab's ``/run`` tmpfs.
    """
    fd, marker, kernel = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    kernel_born = _start_time(kernel)
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
    # The kernel shares the lab's mount table: spare it while it is still the kernel (it may be
    # leaving cleanly), never a process that got its pid afterwards.
    spare = {kernel} if kernel_born is not None and _start_time(kernel) == kernel_born else set()
    sweep(marker, spare)


if __name__ == "__main__":
    main()
