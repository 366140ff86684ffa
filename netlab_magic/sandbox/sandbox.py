"""Where the lab's private world is made: mount namespace, the lab's host, the keeper.

After :meth:`Sandbox.enter`, the calling thread (the kernel's main thread, which runs the
cells) lives in:

* a private **mount namespace** with a fresh tmpfs on ``/run``: ``ip netns add`` writes its
  namespace files to the lab's own ``/run/netns``, iptables its lock to the lab's own
  ``/run/xtables.lock``; the machine's ``/run`` is never written. That tmpfs carries a name of
  its own (:attr:`Sandbox.marker`): every process born in the lab, even one that later made
  namespaces of its own, carries it in its mount table, which is how the keeper finds it;
* the lab's **host**: a new network namespace with only ``lo`` (no uplink), which plays the
  talk's host, and a ``/sys`` mounted from inside it. ``!ip link`` and ``!ls /sys/class/net``
  in a cell show the lab's host, never the machine;
* a **UTS namespace** of its own, named as the machine is (:func:`isolation.own_host_name`):
  ``hostname X`` in a cell renames the lab, never the machine. (The lab's own *processes*
  come from the kernel's launcher: see :mod:`netlab_magic.sandbox.isolation`.)

Only the main thread moves; the kernel's other threads, and the ZMQ sockets it opened
before, stay in the machine's network namespace, so Jupyter keeps talking to the kernel.
A thread of the kernel that must run user code (an ipykernel subshell) joins the lab with
:meth:`Sandbox.adopt_thread`. A command started in a namespace other than the host gets a
mount namespace of its own with that namespace's ``/sys``, as ``ip netns exec`` gives it
(:meth:`Sandbox.spawning`).

Privileges: real root, or root inside a user namespace (the "Python 3 (netlab)" kernel
starts the kernel in one, see :mod:`netlab_magic.jupyter.kernel`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import subprocess
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import NamespaceNotFound, PrivilegeError
from ..linux import namespaces, syscalls
from ..model import HOST
from ..names import check_netns_name
from . import isolation, keeper
from .masked_sys import sysfs_refusal_text

NETNS_DIR = keeper.NETNS_DIR
HOST_FILE = keeper.HOST_FILE

ADVICE = (
    "netlab needs root, or the 'Python 3 (netlab)' kernel which runs rootless in a user "
    "namespace: install it with `python -m netlab_magic install-kernel`, then pick that kernel"
)


#: Set by the kernel launcher (:mod:`netlab_magic.jupyter.kernel`) when it could not enter a user namespace,
#: and by :meth:`Sandbox.enter` when the lab cannot have its own /sys.
ERROR_ENV = "NETLAB_KERNEL_ERROR"


def refusal() -> str | None:
    """Why this kernel cannot have a lab (its launcher could not enter a user namespace), or None.

    The one place that reads the launcher's verdict: the lab, the magics and the doctor ask here.
    """
    return os.environ.get(ERROR_ENV) or None


def privilege_mode() -> str:
    """``"root"`` (real root), ``"rootless"`` (root in a user namespace) or ``"none"``."""
    try:
        with open("/proc/self/uid_map") as f:
            first = f.read().split()
    except OSError:
        first = []
    if os.geteuid() != 0:
        return "none"
    if first[:3] == ["0", "0", "4294967295"]:
        return "root"
    return "rootless"


class Sandbox:
    """The private mount namespace, the lab's host network namespace and the keeper process.

    One per kernel process. :meth:`new_host` replaces the host (that is what a reset does).
    """

    def __init__(self, keeper: bool = True) -> None:
        self.mode = privilege_mode()
        #: Whether :meth:`enter` starts the keeper; not where something else ends the lab with this
        #: process (the VM's guest: its init powers the VM off when the lab's server ends).
        self.keeper = keeper
        self._thread = threading.current_thread()
        self._origin_fd: int | None = None
        self.host_fd: int | None = None
        self.mnt_fd: int | None = None
        #: The name of the lab's ``/run`` tmpfs: a process whose mount table shows it is the lab's.
        self.marker = f"netlab-{os.getpid()}-{os.urandom(6).hex()}"  # (secrets' hashlib: 0.3 s in a VM's guest)
        #: Counts hosts: a reset makes a new one, and adopted threads follow it.
        self.generation = 0
        self._keeper: subprocess.Popen | None = None
        self._keeper_pipe: int | None = None
        self.uts_fd: int | None = None
        self._adopted = threading.local()

    # -- entering and leaving -------------------------------------------------------------

    def enter(self) -> None:
        """Make the private world and move the calling (main) thread into a fresh lab host."""
        if self._thread is not threading.main_thread():
            raise PrivilegeError("netlab must be loaded from the kernel's main thread")
        if self.mode == "none":
            raise PrivilegeError(ADVICE)
        self._origin_fd = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
            syscalls.mount(self.marker, "/run", "tmpfs", 0, "mode=0755")
        except OSError as err:
            os.close(self._origin_fd)
            self._origin_fd = None
            if err.errno in (errno.EPERM, errno.EACCES):
                raise PrivilegeError(f"cannot make the lab's private mounts ({err.strerror}): {ADVICE}") from err
            raise
        self.mnt_fd = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        isolation.own_host_name()
        self.uts_fd = os.open("/proc/thread-self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
        os.makedirs(NETNS_DIR, exist_ok=True)
        _mount_netns_dir()
        os.makedirs(os.path.dirname(HOST_FILE), exist_ok=True)
        if self.keeper:
            self._start_keeper()
        try:
            self.new_host()
        except SysfsRefused as err:  # a container that hides part of its /sys: no lab here, and why
            self._stop_keeper()
            message = sysfs_refusal_text(err)
            os.environ[ERROR_ENV] = message  # what refusal() tells the magics and the doctor from now on
            raise PrivilegeError(message) from err

    def _start_keeper(self) -> None:
        read_end, write_end = os.pipe()
        self._keeper = subprocess.Popen(
            [sys.executable, "-I", "-S", keeper.__file__, str(read_end), self.marker, str(os.getpid())],
            pass_fds=(read_end,),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Jupyter's interrupt (SIGINT to our group) must not reach it
        )
        os.close(read_end)
        self._keeper_pipe = write_end

    def _stop_keeper(self) -> None:
        if self._keeper is not None:
            os.close(self._keeper_pipe)
            self._keeper.wait()
            self._keeper = None

    def new_host(self) -> None:
        """Give the main thread a brand-new, empty host namespace (``lo`` up, no uplink).

        The old host is let go only once the new one has ``lo`` up: freeing a namespace holds
        the kernel's rtnl lock for a while, and bringing a link up needs that lock too.
        """
        old_fd, self.host_fd = self.host_fd, None
        syscalls.unshare(syscalls.CLONE_NEWNET)
        _loopback_up()
        if _locked_readonly_sys():
            # A container's /sys: read-only and locked in place. The host keeps it (the container's
            # own, read-only): a sysfs mounted over it would be unmounted by `ip netns exec`, which
            # then mounts a read-write one the kernel refuses. Each namespace's /sys still comes
            # with `%%netns NAME` and `ip netns exec` (read-only): check now that it can.
            self._check_sysfs_mountable()
        else:
            _mount_sysfs()  # the old host's /sys goes with it (a sysfs mount holds its namespace)
        if old_fd is not None:
            os.close(old_fd)
        _unmount_quietly(HOST_FILE)
        with open(HOST_FILE, "w"):
            pass
        syscalls.mount(syscalls.THREAD_NETNS, HOST_FILE, None, syscalls.MS_BIND)
        self.host_fd = os.open(HOST_FILE, os.O_RDONLY | os.O_CLOEXEC)
        self.generation += 1

    def _check_sysfs_mountable(self) -> None:
        """Mount a sysfs in a throw-away copy of the lab's mounts, then come back; raise SysfsRefused if refused."""
        cwd = os.open(".", os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            try:
                _mount_sysfs()
            finally:
                syscalls.setns(self.mnt_fd, syscalls.CLONE_NEWNS)
                os.fchdir(cwd)
        finally:
            os.close(cwd)

    def _drop_host(self) -> None:
        if self.host_fd is not None:
            os.close(self.host_fd)
            self.host_fd = None
        _unmount_quietly(HOST_FILE)

    def sweep(self) -> int:
        """Kill every process of the lab (in its namespaces, named or not); the kernel and keeper live on."""
        spare = {os.getpid()}
        if self._keeper is not None:
            spare.add(self._keeper.pid)
        return keeper.sweep(self.marker, spare=spare)

    def renew(self) -> None:
        """What a reset does: kill every process in the lab, make a fresh host, drop every old namespace."""
        self.sweep()
        self.new_host()
        self._drop_netns_dir()
        isolation.name_host(isolation.machine_names())

    def destroy_namespaces(self) -> None:
        """Kill every process in the lab and remove every namespace file (host included)."""
        self.sweep()
        self._drop_netns_dir()
        self._drop_host()

    def _drop_netns_dir(self) -> None:
        # One lazy unmount of /run/netns detaches every namespace file at once (a loop of
        # `ip netns del` pays a umount, with an RCU grace period, and an unlink each); then a
        # fresh, empty /run/netns.
        while True:
            try:
                syscalls.umount(NETNS_DIR)
            except OSError:
                break
        _mount_netns_dir()

    def leave(self) -> None:
        """Destroy the lab and put the main thread back in its original network namespace.

        Rootless, the way back is closed (the machine's namespace belongs to the machine's
        user namespace, where this kernel has no privileges): the thread gets a fresh, empty
        namespace instead, which is as close to "no lab" as a rootless kernel can be.
        """
        self.destroy_namespaces()
        if self._origin_fd is not None:
            try:
                syscalls.setns(self._origin_fd, syscalls.CLONE_NEWNET)
            except PermissionError:
                syscalls.unshare(syscalls.CLONE_NEWNET)
            os.close(self._origin_fd)
            self._origin_fd = None
        self._stop_keeper()
        for fd in (self.mnt_fd, self.uts_fd):
            if fd is not None:
                os.close(fd)
        self.mnt_fd = self.uts_fd = None

    # -- threads ------------------------------------------------------------------------------

    def adopt_thread(self) -> None:
        """Move the calling thread into the lab: its mount namespace and its current host.

        For threads the kernel made before the lab, or apart from it (an ipykernel subshell):
        without this they would run user code in the machine's network. Cheap when the thread
        is already in the current host; after a reset it follows to the new one.
        """
        if threading.current_thread() is threading.main_thread():
            return
        state = self._adopted
        if getattr(state, "generation", None) == self.generation:
            return
        if self.mnt_fd is None or self.host_fd is None:
            raise PrivilegeError("this thread cannot join the lab: the lab is closed")
        if not getattr(state, "joined", False):
            cwd = os.readlink(f"/proc/{os.getpid()}/task/{os.getpid()}/cwd")  # the main thread's
            syscalls.unshare(syscalls.CLONE_FS)  # a mount namespace is entered by a thread with its own fs
            syscalls.setns(self.mnt_fd, syscalls.CLONE_NEWNS)
            os.chdir(cwd)
            syscalls.setns(self.uts_fd, syscalls.CLONE_NEWUTS)
            state.joined = True
        syscalls.setns(self.host_fd, syscalls.CLONE_NEWNET)
        state.generation = self.generation

    # -- namespaces -------------------------------------------------------------------------

    def list_netns(self) -> list[str]:
        """Named namespaces of the lab (``ip netns list``), sorted."""
        try:
            here, names = os.stat(NETNS_DIR).st_dev, os.listdir(NETNS_DIR)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if keeper.is_nsfs(os.path.join(NETNS_DIR, n), here))

    def netns_path(self, name: str) -> str:
        """The namespace file for ``name`` (``host`` is the lab's host); raises if missing."""
        if name == HOST:
            return HOST_FILE
        check_netns_name(name)
        path = os.path.join(NETNS_DIR, name)
        if not keeper.is_nsfs(path):
            have = ", ".join([HOST, *self.list_netns()])
            raise NamespaceNotFound(f"namespace {name!r} does not exist (the lab has: {have})")
        return path

    @contextmanager
    def spawning(self, name: str) -> Iterator[None]:
        """Like :meth:`entered`, for starting processes: outside the host, they also see ``name``'s ``/sys``.

        As ``ip netns exec`` does, the process gets a mount namespace of its own (a copy of the
        lab's) with a sysfs mounted from inside ``name``; the calling thread comes back to the
        lab's mount namespace and its working directory. Nothing is kept: the copy lives only
        as long as the processes started in the body.
        """
        with self.entered(name):
            if name == HOST or self.mnt_fd is None:
                yield
                return
            cwd = os.open(".", os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
            try:
                syscalls.unshare(syscalls.CLONE_NEWNS)
                try:
                    _mount_sysfs()
                    yield
                finally:
                    syscalls.setns(self.mnt_fd, syscalls.CLONE_NEWNS)
                    os.fchdir(cwd)
            finally:
                os.close(cwd)

    @contextmanager
    def entered(self, name: str) -> Iterator[None]:
        """Run the body with the *calling thread* inside namespace ``name``, then come back.

        Processes forked in the body start inside it. The thread comes back to the namespace it
        was in (see :func:`netlab_magic.linux.namespaces.inside`); a thread already inside stays put.
        """
        path = self.netns_path(name)
        if name == HOST and self.host_fd is not None and _same_file(os.fstat(self.host_fd), namespaces.THREAD_NETNS):
            yield
            return
        with namespaces.inside_path(path):
            yield


def _same_file(st: os.stat_result, path: str) -> bool:
    try:
        other = os.stat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (other.st_dev, other.st_ino)


def _locked_readonly_sys() -> bool:
    """Is /sys read-only and impossible to unmount here (a container's /sys, seen from a user namespace)?"""
    if not os.statvfs("/sys").f_flag & os.ST_RDONLY:
        return False
    return privilege_mode() == "rootless"


def _mount_sysfs() -> None:
    """``/sys`` of the calling thread's network namespace, as ``ip netns exec`` mounts it."""
    flags = 0
    try:
        syscalls.umount("/sys")
    except OSError:  # rootless, the machine's /sys may be locked in place: mount over it
        # ...read-only if it is (a container's /sys): the kernel refuses a more permissive one
        if os.statvfs("/sys").f_flag & os.ST_RDONLY:
            flags = syscalls.MS_RDONLY
    try:
        syscalls.mount("sysfs", "/sys", "sysfs", flags)
    except PermissionError as err:
        raise SysfsRefused(err.errno, os.strerror(err.errno)) from err


class SysfsRefused(PermissionError):
    """The kernel refused the lab its own /sys (inside a user namespace: part of the old one is hidden)."""


def _mount_netns_dir() -> None:
    """A tmpfs of its own on /run/netns, so that a reset can drop every namespace file at once."""
    syscalls.mount("netlab-netns", NETNS_DIR, "tmpfs", 0, "mode=0755")


_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def _loopback_up() -> None:
    """``ip link set lo up`` in the calling thread's namespace (an ioctl: no netlink thread, no pyroute2)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        ifr = fcntl.ioctl(sock, _SIOCGIFFLAGS, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack_from("16sH", ifr)[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _unmount_quietly(path: str) -> None:
    try:
        syscalls.umount(path)
    except OSError:
        pass
    try:
        os.unlink(path)
    except OSError:
        pass

