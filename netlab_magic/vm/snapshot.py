"""The boot's snapshot: a VM saved where every boot is the same, restored instead of booted.

Most of a boot under TCG is the same every time: QEMU loads the kernel, the guest kernel starts,
the initramfs loads its modules. Only then does anything depend on who boots it (the kernel's
Python, this package's directory, the time). The guest's init waits there for the host's word
(:func:`~.machine.boot_word`, guest_init.sh), and that is where :func:`make` saves a VM (QEMU's
own migration stream, ``migrate`` to a file); :class:`~.machine.Machine` then starts QEMU with
``-incoming`` on that file, and the guest goes on from the read as if it had booted, the word
setting its clock and feeding its random pool (the lab's server has the kernel reseed from it
before anything else).

The snapshot is saved before the image's ``/`` is mounted: QEMU refuses to save a VM while a 9p
share is mounted, and everything after the mount reads this machine's files, which may change.

:func:`make` runs where the image is prepared (``netlab-magic vm prepare``), into the image's
directory, named after everything it depends on (:func:`key`: QEMU's binary, the kernel, the
initramfs with this package's init, QEMU's command line): a change to any of them is a name
:func:`find` does not find, and the VM boots as before. A snapshot QEMU refuses all the same
makes the machine boot afresh (:meth:`~.machine.Machine.wait_ready`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Callable

from .image import Image, init_archive
from .machine import QEMU, Machine, VMError, qemu_argv

#: What the guest's init prints at its snapshot point (guest_init.sh).
WAITING = "netlab-boot: waiting for the host's word"
#: How long :func:`make` waits for the boot to reach that point, and for QEMU to save it.
BOOT_TIMEOUT = 120.0
SAVE_TIMEOUT = 120.0


def key(image: Image) -> str:
    """What a snapshot of ``image``'s boot depends on, hashed: QEMU's binary, the kernel, the initramfs
    and this package's init, and QEMU's command line (fixed numbers standing in for its descriptors',
    which differ from one start to the next)."""
    digest = hashlib.sha256()
    qemu = shutil.which(QEMU)
    for file in (qemu, image.vmlinux):
        st = os.stat(file) if file else None
        # whole seconds: an image's layers are tar files, which keep no finer time (Docker, Binder)
        digest.update(f"{file} {st and st.st_size} {st and int(st.st_mtime)}\0".encode())
    digest.update(image.initrd.read_bytes() + init_archive())
    digest.update("\0".join(qemu_argv(image, 3, 4, "/proc/self/fd/5")).encode())
    return digest.hexdigest()[:16]


def path(image: Image) -> Path:
    """Where the snapshot of ``image``'s boot is (or would be)."""
    return image.directory / f"snapshot-{key(image)}.qemu"


def find(image: Image) -> Path | None:
    """The snapshot of ``image``'s boot, if one was made for this QEMU, kernel, init and command line."""
    try:
        found = path(image)
    except OSError:
        return None
    return found if found.is_file() else None


def make(image: Image, progress: Callable[[str], None] = print) -> Path:
    """Boot ``image`` to its snapshot point and save it there (a few seconds); return the snapshot.

    Kept if it exists already; older snapshots in the image's directory go. Raises
    :class:`~.machine.VMError` (one line) if the VM does not get there or QEMU does not save it.
    """
    target = path(image)
    if target.is_file():
        return target
    if not os.access(image.directory, os.W_OK):
        raise VMError(f"{image.directory} is not writable here (the image's owner can save the snapshot)")
    for left in image.directory.glob("snapshot-*.qemu.part"):  # a save that was killed
        left.unlink(missing_ok=True)
    progress("saving a snapshot of the VM's boot (later boots restore it) ...")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    machine = Machine(image)
    partial = target.with_name(target.name + ".part")
    try:
        machine.start(word=False, monitor=theirs)
        theirs.close()
        deadline = time.monotonic() + BOOT_TIMEOUT
        while machine.alive() and WAITING not in machine.console() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not machine.alive() or WAITING not in machine.console():
            said = [line for line in machine.console().splitlines() if line.strip()]
            raise VMError(f"the VM did not reach its snapshot point: {said[-1] if said else 'no console output'}")
        monitor = _Monitor(ours)
        with open(partial, "wb") as out:
            monitor.send_fd("getfd snapshot", out.fileno())
        monitor.command("migrate -d fd:snapshot")
        deadline = time.monotonic() + SAVE_TIMEOUT
        while not (status := _ended(monitor.command("info migrate"))):
            if time.monotonic() > deadline:
                raise VMError("QEMU did not finish saving the VM's snapshot")
            time.sleep(0.05)
        if status != "completed":
            raise VMError(f"QEMU could not save the VM's snapshot: {status}")
        os.chmod(partial, 0o644)  # every user of a shared image restores it
        partial.replace(target)
    finally:
        ours.close()
        machine.stop()  # at once: it never had a client to say goodbye to
        partial.unlink(missing_ok=True)
    for old in image.directory.glob("snapshot-*.qemu"):
        if old != target:
            old.unlink(missing_ok=True)
    progress(f"the VM's snapshot is ready: {target} ({target.stat().st_size >> 20} MiB)")
    return target


def _ended(info: str) -> str:
    """``completed`` / ``failed ...`` from ``info migrate``'s status line, or "" while it runs."""
    for line in info.splitlines():
        if "Migration status:" in line:
            status = line.split("Migration status:", 1)[1].strip()
            return status if status.startswith(("completed", "failed", "cancelled")) else ""
    return ""


class _Monitor:
    """QEMU's human monitor on a socket: a command, its answer up to the next prompt."""

    PROMPT = b"(qemu) "

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(30)
        self._read_to_prompt()  # the banner

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\n")
        return self._read_to_prompt()

    def send_fd(self, line: str, fd: int) -> str:
        """``line`` (``getfd NAME``) with ``fd`` passed along (SCM_RIGHTS), as the monitor expects it."""
        socket.send_fds(self.sock, [line.encode() + b"\n"], [fd])
        return self._read_to_prompt()

    def _read_to_prompt(self) -> str:
        data = b""
        while not data.endswith(self.PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise VMError("QEMU's monitor closed while saving the VM's snapshot")
            data += chunk
        return data.decode(errors="replace")


__all__ = ["WAITING", "key", "path", "find", "make"]
