"""Pids as the machine numbers them, for processes a netlab kernel reports in its own PID namespace."""

from __future__ import annotations

import os


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
