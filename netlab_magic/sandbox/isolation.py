"""What makes a lab a container for processes: a PID namespace and a host name of its own.

**Processes.** The "Python 3 (netlab)" kernel starts the way ``unshare --pid --fork
--mount-proc`` starts a command (:func:`enter_pid_namespace`, called by its launcher,
:mod:`netlab_magic.jupyter.kernel`): the launcher stays outside and waits; inside a new PID namespace a
small init (PID 1) mounts the namespace's ``/proc`` and reaps orphans; the kernel is its child.
Everything the kernel starts, from any thread and any API (``!cmd``, ``%%netns``, jobs,
``subprocess``), is born in that namespace: it sees (``ps -e``, ``/proc``) and signals (``kill``,
``pkill``, ``killall``) only the kernel, its keeper and the lab's processes, never another
kernel's or the machine's. Python in cells reads the same ``/proc``, where ``/proc/self`` is the
kernel. When the init ends (the kernel ended, or the launcher was killed), Linux kills every
process left in the namespace.

An ordinary kernel that loads the extension as root (``%load_ext``) has no launcher: its lab's
processes share the kernel's PID namespace.

**Host name.** The lab's threads have a UTS namespace of their own (:func:`own_host_name`),
named as the machine was when the kernel's first lab started: ``hostname X`` in a cell renames
the lab, never the machine. A reset names it back.
"""

from __future__ import annotations

import os
import select
import signal
import socket

from ..linux import syscalls

#: The pid of the Jupyter process that started the kernel (jupyter_client sets it; ipykernel watches it).
PARENT_ENV = "JPY_PARENT_PID"
#: How often the launcher looks whether that process is still there (ipykernel's own period).
PARENT_POLL = 1.0

#: Set by the launcher when the kernel keeps the launcher's PID namespace: why (``%netlab doctor`` says it).
PIDNS_ENV = "NETLAB_PIDNS_REFUSED"
#: What ``ps`` shows for the init (PID 1).
INIT_NAME = "netlab-init"

_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x2, 0x4, 0x8
_PR_SET_PDEATHSIG, _PR_SET_NAME = 1, 15


# -- processes ----------------------------------------------------------------------------------

def enter_pid_namespace() -> str | None:
    """Fork as ``unshare --pid --fork --mount-proc`` does; return in the child that becomes the kernel.

    The calling process (the launcher, single-threaded) never returns: it waits outside for the
    init and exits with its status. Returns None once inside, or why this kernel keeps the
    launcher's PID namespace (where the namespace or its /proc is refused: nothing changed then).
    """
    refused = _probe()
    if refused is not None:
        return refused
    syscalls.unshare(syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # before any child can end
    init = os.fork()
    if init:
        _wait_outside(init)
    _private_proc()
    syscalls.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the launcher killed: the whole namespace goes
    syscalls.prctl(_PR_SET_NAME, INIT_NAME.encode())
    kernel = os.fork()
    if kernel == 0:
        syscalls.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        # ipykernel watches the parent Jupyter named, or exits if its own is PID 1 (an init it
        # thinks it was orphaned to): the launcher watches Jupyter instead (_wait_outside)
        os.environ.pop(PARENT_ENV, None)
        return None
    _init(kernel)


def _probe() -> str | None:
    """Try, in a throw-away child, what :func:`enter_pid_namespace` needs; None, or why it is refused."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            syscalls.unshare(syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS)
            inner = os.fork()
            if inner == 0:
                try:
                    _private_proc()
                    os._exit(0)
                except OSError as err:
                    os._exit(err.errno or 1)
            code = os.waitstatus_to_exitcode(os.waitpid(inner, 0)[1])
        except OSError as err:
            code = err.errno or 1
        finally:
            os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return None if code == 0 else f"no PID namespace of its own: {os.strerror(code) if code > 0 else code}"


def _private_proc() -> None:
    """The calling process's mount namespace private, with a /proc of its own PID namespace."""
    syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
    syscalls.mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)


def _wait_outside(init: int) -> None:
    """The launcher: wait for the init and exit as it does. Jupyter's SIGTERM, or the death of the
    Jupyter process that started the kernel (``JPY_PARENT_PID``, as ipykernel watches it), ends
    the namespace."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Jupyter's interrupt is for the kernel (same process group)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: os.kill(init, signal.SIGKILL))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    parent = os.getppid()
    watch_parent = os.environ.get(PARENT_ENV) == str(parent)
    ended = os.pidfd_open(init)
    while not select.select([ended], [], [], PARENT_POLL)[0]:
        if watch_parent and os.getppid() != parent:
            os.kill(init, signal.SIGKILL)
    os._exit(_exit_code(os.waitpid(init, 0)[1]))


def _init(kernel: int) -> None:
    """PID 1: reap every orphan of the namespace; exit as the kernel does, when it does."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)  # Jupyter's interrupt reaches our process group: it is the kernel's
    os.closerange(3, 1 << 16)
    while True:
        signal.sigwait({signal.SIGCHLD})
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if pid == 0:
                break
            if pid == kernel:
                os._exit(_exit_code(status))


def _exit_code(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


# -- host name ----------------------------------------------------------------------------------

_machine_names: tuple[str, str] | None = None


def machine_names() -> tuple[str, str]:
    """The machine's host and domain names, as the calling thread saw them the first time it asked."""
    global _machine_names
    if _machine_names is None:
        _machine_names = (socket.gethostname(), _domainname())
    return _machine_names


def own_host_name() -> None:
    """``unshare --uts``: the calling thread gets a UTS namespace of its own, with the machine's names."""
    names = machine_names()
    syscalls.unshare(syscalls.CLONE_NEWUTS)
    name_host(names)


def name_host(names: tuple[str, str]) -> None:
    """Set the calling thread's host and domain names (in its UTS namespace) to ``names``."""
    host, domain = names
    if socket.gethostname() != host:
        socket.sethostname(host)
    if _domainname() != domain:
        syscalls.setdomainname(domain)


def _domainname() -> str:
    """The calling thread's domain name (``domainname``; Linux answers for the reader's UTS namespace)."""
    try:
        with open("/proc/sys/kernel/domainname") as f:
            return f.read().strip()
    except OSError:
        return "(none)"
