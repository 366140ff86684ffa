"""Start the netlab kernel (or ``--exec CMD``) where /sys is read-only and locked, as in a Docker container.

Run as an unprivileged user: this wrapper enters a user and mount namespace of its own (mapping
the user to itself, so it stays unprivileged), makes /sys read-only, and starts the netlab
launcher, whose own user namespace inherits /sys locked and read-only: what a container run
with ``--security-opt systempaths=unconfined`` gives (Docker mounts a container's /sys
read-only). Nothing is masked: a read-only sysfs can be mounted, a read-write one cannot.
"""

import os
import sys

from netlab_magic import syscalls

MS_REMOUNT = 0x20

uid, gid = os.getuid(), os.getgid()
syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
syscalls.mount("none", "/sys", None, MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY)
if sys.argv[1:2] == ["--exec"]:
    os.execvp(sys.argv[2], sys.argv[2:])
os.execv(sys.executable, [sys.executable, "-m", "netlab_magic.kernel", *sys.argv[1:]])
