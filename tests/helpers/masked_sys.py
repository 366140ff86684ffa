"""Start the netlab kernel where part of /sys is hidden, as Docker and Kubernetes mask /sys/firmware.

Run as an unprivileged user: this wrapper enters a user and mount namespace of its own (mapping
the user to itself, so it stays unprivileged), mounts an empty tmpfs over /sys/firmware (what a
container's "masked paths" are), and starts the netlab launcher. The launcher's own user
namespace inherits that mount locked in place, so the lab's new /sys is refused exactly as in a
container started without ``--security-opt systempaths=unconfined``.
"""

import os
import sys

from netlab_magic import syscalls

uid, gid = os.getuid(), os.getgid()
syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
syscalls.mount("masked", "/sys/firmware", "tmpfs", syscalls.MS_RDONLY)
os.execv(sys.executable, [sys.executable, "-m", "netlab_magic.kernel", *sys.argv[1:]])
