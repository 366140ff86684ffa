"""The "Python 3 (netlab)" kernel launcher: an IPython kernel that starts inside its own
user and mount namespaces, so the lab works without root.

A process can only enter a new user namespace while it has one thread, and an IPython
kernel has several; so the launcher does it first, then ``exec``\\ s the ordinary kernel with
the extension loaded. The kernel stays in the machine's network namespace (its ZMQ sockets
must stay reachable by the Jupyter server); only the thread that runs cells moves into the lab.

As real root no user namespace is needed: the launcher only loads the extension.
"""

from __future__ import annotations

import os
import sys

from . import syscalls
from .sandbox import ERROR_ENV



def enter_user_namespace() -> None:
    """Become root inside a new user namespace (mapped to the calling user), with a private mount namespace."""
    uid, gid = os.getuid(), os.getgid()
    syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def main(argv: list[str] | None = None) -> None:
    """``python -m netlab_magic.kernel -f CONNECTION_FILE``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        try:
            enter_user_namespace()
        except OSError as err:
            message = (f"netlab: this machine refuses user namespaces ({err.strerror}); the lab needs them "
                       "to run without root. Fix: as root, `sysctl -w kernel.unprivileged_userns_clone=1 "
                       "user.max_user_namespaces=10000` (and on Ubuntu "
                       "`kernel.apparmor_restrict_unprivileged_userns=0`), or run Jupyter as root")
            print(message, file=sys.stderr)
            os.environ[ERROR_ENV] = message
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "--ext=netlab_magic", *argv])


if __name__ == "__main__":
    main()
