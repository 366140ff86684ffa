"""Start the netlab kernel (or ``--exec CMD``) where /sys is read-only and locked, as in a Docker container.

Run as an unprivileged user: this wrapper enters a user and mount namespace of its own (mapping
the user to itself, so it stays unprivileged), makes /sys read-only, and starts the netlab
launcher, whose own user namespace inherits /sys locked and read-only: what a container run
with ``--security-opt systempaths=unconfined`` gives (Docker mounts a container's /sys
read-only). Nothing is masked: a read-only sysfs can be mounted, a read-write one cannot.
"""

import os
import sys

import own_userns  # this folder's: the script's own directory is on sys.path
from netlab_magic.linux import syscalls

MS_REMOUNT = 0x20

own_userns.enter()
syscalls.mount("none", "/sys", None, MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY)
if sys.argv[1:2] == ["--exec"]:
    os.execvp(sys.argv[2], sys.argv[2:])
os.execv(sys.executable, [sys.executable, "-m", "netlab_magic.jupyter.kernel", *sys.argv[1:]])
