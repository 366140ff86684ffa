"""For the wrappers in this folder: a user and mount namespace of the caller's own, mapping the
user to itself (so it stays unprivileged), with a private mount table to change what a container
would (mask or lock /sys) before the netlab launcher starts inside it."""

import os

from netlab_magic.linux import syscalls


def enter() -> None:
    """The calling process in a new user namespace (uid and gid mapped to themselves) and mount namespace."""
    uid, gid = os.getuid(), os.getgid()
    syscalls.unshare(syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    syscalls.mount("none", "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
