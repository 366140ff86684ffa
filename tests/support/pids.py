"""The machine's processes, read from /proc: which match a test, and pids as the machine numbers them
for processes a netlab kernel reports in its own PID namespace."""

from __future__ import annotations

import os
from typing import Callable, TypeVar

T = TypeVar("T")


def read_each(read: Callable[[str], T]) -> dict[int, T]:
    """``read`` of each process's pid (as text, for /proc/PID/...); a process that vanishes meanwhile is left out."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                found[int(entry)] = read(entry)
            except OSError:
                pass
    return found


def processes(test: Callable[[str], object]) -> list[int]:
    """The pids whose /proc entry passes ``test``."""
    return [pid for pid, passed in read_each(test).items() if passed]


def parents() -> dict[int, int]:
    """Each live process's parent."""
    def parent(entry: str) -> int:
        with open(f"/proc/{entry}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    return read_each(parent)


def machine_pid(pidns: int, pid: int) -> int:
    """The machine's pid of process ``pid`` of the PID namespace whose inode is ``pidns``."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino != pidns:
                    continue
                with open(f"/proc/{entry}/status") as f:
                    nspid = next(line for line in f if line.startswith("NSpid:")).split()
            except (OSError, StopIteration):
                continue
            if int(nspid[-1]) == pid:
                return int(entry)
    raise AssertionError(f"no process {pid} in the kernel's PID namespace")
