"""The "Python 3 (netlab)" kernel launcher: an IPython kernel that starts inside its own
user and mount namespaces, so the lab works without root, and in a PID namespace of its own.

A process can only enter a new user namespace while it has one thread, and an IPython
kernel has several; so the launcher does it first, then ``exec``\\ s the ordinary kernel with
the extension loaded. The kernel stays in the machine's network namespace (its ZMQ sockets
must stay reachable by the Jupyter server); only the thread that runs cells moves into the lab.
Before that, the launcher forks as ``unshare --pid --fork --mount-proc`` does
(:func:`netlab_magic.sandbox.isolation.enter_pid_namespace`): the kernel and everything it starts see
and signal only their own processes; the launcher waits outside, the process Jupyter knows.

As real root no user namespace is needed: the launcher only makes the PID namespace and loads
the extension.

Where the lab will run in a small VM (:mod:`netlab_magic.backend`), the launcher starts it last,
just before the ``exec``: it boots while ``ipykernel`` loads, and the kernel takes it over.
"""

from __future__ import annotations

import os
import sys

from ..linux import syscalls
from ..sandbox.sandbox import ERROR_ENV



class UsernsError(OSError):
    """Entering the user namespace failed; ``call`` says which step (``unshare(CLONE_NEWUSER)``, a map write)."""

    def __init__(self, call: str, err: OSError) -> None:
        super().__init__(err.errno, err.strerror)
        self.call = call


def enter_user_namespace() -> None:
    """Become root inside a new user namespace (mapped to the calling user), with a private mount namespace."""
    uid, gid = os.getuid(), os.getgid()
    try:
        syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
    except OSError as err:
        raise UsernsError("unshare(CLONE_NEWUSER)", err) from err
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        try:
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        except OSError as err:
            raise UsernsError(f"writing /proc/self/{name}", err) from err


def main(argv: list[str] | None = None) -> None:
    """``python -m netlab_magic.jupyter.kernel -f CONNECTION_FILE``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        try:
            enter_user_namespace()
        except OSError as err:
            from .doctor import refusal_text  # only on this path: the launcher stays small

            message = refusal_text(getattr(err, "call", "unshare(CLONE_NEWUSER)"), err)
            print(message, file=sys.stderr)
            os.environ[ERROR_ENV] = message
    if not os.environ.get(ERROR_ENV):
        from ..sandbox.isolation import PIDNS_ENV, enter_pid_namespace

        refused = enter_pid_namespace()
        if refused:
            os.environ[PIDNS_ENV] = refused
    from ..backend import start_early

    start_early()  # where the lab runs in a VM, it boots while ipykernel loads
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "--ext=netlab_magic", *argv])


if __name__ == "__main__":
    main()
