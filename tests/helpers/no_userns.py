"""Start the netlab kernel on a "machine" that forbids user namespaces, as some hosts do.

Run as an unprivileged user: this wrapper enters a user namespace of its own (mapping the user
to itself, so it stays unprivileged) and sets ``user.max_user_namespaces`` to 0 there, which
the kernel honours for everything below. The netlab launcher's own ``unshare`` then fails
exactly as it would on such a host.
"""

import os
import sys

from netlab_magic.linux import syscalls

uid, gid = os.getuid(), os.getgid()
syscalls.unshare(syscalls.CLONE_NEWUSER)
for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
    with open(f"/proc/self/{name}", "w") as f:
        f.write(text)
with open("/proc/sys/user/max_user_namespaces", "w") as f:
    f.write("0")
os.execv(sys.executable, [sys.executable, "-m", "netlab_magic.jupyter.kernel", *sys.argv[1:]])
