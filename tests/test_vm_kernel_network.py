"""The VM backend forced where namespaces work: the kernel's own cells are in an empty namespace.

A real "Python 3 (netlab)" kernel with ``NETLAB_BACKEND=vm`` (root in the root pass, rootless in
the rootless pass): a plain cell's ``socket.if_nameindex()`` and ``/proc/self/net/dev``, on the
main thread and in an ipykernel subshell, show ``lo`` and nothing else, never the machine's
interfaces; the lab says so (the doctor's "plain Python" row); ``kill -9`` of the kernel leaves no process in that namespace,
no keeper and no QEMU; the machine's interfaces are the same before and after.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest

from support.kernel_client import Kernel
from support.pids import parents, processes
from netlab_magic.backend import vm_ready
from netlab_magic.vm.kernel_network import WALLED

pytestmark = pytest.mark.skipif(vm_ready() is not None, reason=f"the VM's pieces are not installed: {vm_ready()}")

VM_LAB = "__import__('netlab_magic.vm.lab', fromlist=['VMLab']).VMLab.existing()"
PLAIN_CELL = ("import socket\n"
              "print([name for _, name in socket.if_nameindex()])\n"
              "print([line.split(':')[0].strip() for line in open('/proc/self/net/dev').readlines()[2:]])")


def _descendants(pid: int, named: str) -> list[int]:
    """The live processes under ``pid`` whose command line holds ``named``."""
    family, found = parents(), []
    for child in family:
        ancestor = child
        while ancestor > 1 and ancestor != pid:
            ancestor = family.get(ancestor, 0)
        if ancestor == pid and child != pid:
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    if named.encode() in f.read():
                        found.append(child)
            except OSError:
                pass
    return found


def _in_netns(inode: int) -> list[int]:
    return processes(lambda entry: os.stat(f"/proc/{entry}/ns/net").st_ino == inode)


def _gone(pids: list[int], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{pid}") and not _zombie(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_plain_cells_of_the_vm_backend_are_in_an_empty_namespace_and_kill_9_leaves_nothing(monkeypatch):
    machine = socket.if_nameindex()
    monkeypatch.setenv("NETLAB_BACKEND", "vm")
    k = Kernel("netlab")
    try:
        assert k.ok(PLAIN_CELL).stdout.splitlines() == ["['lo']", "['lo']"]
        subshell = k.create_subshell()
        assert k.ok(PLAIN_CELL, subshell=subshell).stdout.splitlines() == ["['lo']", "['lo']"]
        assert k.value(f"{VM_LAB}.kernel_network.reaches") == WALLED  # the doctor's row (in a booted VM: test_vm_pyroute2.py)
        inode = k.value("__import__('os').stat('/proc/thread-self/ns/net').st_ino")
        assert inode != os.stat("/proc/self/ns/net").st_ino
        walls = _descendants(k.pid, "keeper.py") + _descendants(k.pid, "qemu-system")
        assert len(walls) == 2, walls  # the keeper, and QEMU (booting, or up)
        inside = _in_netns(inode)  # the kernel (QEMU, started by its launcher before, is not)
    except BaseException:
        k.shutdown()
        raise
    os.kill(k.pid, signal.SIGKILL)
    assert _gone(walls), f"survived the kernel: {[p for p in walls if os.path.exists(f'/proc/{p}')]}"
    assert _gone(inside), f"still in the kernel's empty namespace: {[p for p in inside if os.path.exists(f'/proc/{p}')]}"
    assert socket.if_nameindex() == machine
