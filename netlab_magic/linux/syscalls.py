"""The few Linux system calls the sandbox needs, through libc (Python 3.11 has no os.setns).

Namespaces are per *thread*: ``setns`` and ``unshare`` change only the calling thread
(and what it forks afterwards). Keep that in mind everywhere these are used.
"""

from __future__ import annotations

import ctypes
import os

CLONE_FS = 0x00000200
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """``unshare(2)``: give the calling thread new namespaces of the kinds in ``flags``."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    """``setns(2)``: move the calling thread into the namespace that ``fd`` refers to."""
    _check(_libc.setns(fd, nstype), "setns")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """``mount(2)``."""
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def prctl(option: int, arg: int | bytes) -> None:
    """``prctl(2)`` with one argument."""
    _check(_libc.prctl(option, arg, 0, 0, 0), "prctl")


def setdomainname(name: str) -> None:
    """``setdomainname(2)`` (``socket.sethostname`` is the host name's)."""
    data = name.encode()
    _check(_libc.setdomainname(data, len(data)), "setdomainname")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    """``umount2(2)``, lazily by default."""
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


#: The namespace file of the *calling thread's* network namespace (not the process's).
THREAD_NETNS = "/proc/thread-self/ns/net"
