"""A container's masked ``/sys``: what it hides, and the paragraph that says why no lab starts there.

Below the sandbox, which raises it when mounting the lab's own ``/sys`` is refused; the doctor
repeats the same paragraph (through :func:`netlab_magic.sandbox.sandbox.refusal`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

MOUNTINFO = "/proc/self/mountinfo"


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def hidden_under_sys(read: Callable[[str], str | None] = _read) -> list[str]:
    """Mount points below /sys that hide what is there (a container's masked paths), from mountinfo."""
    hidden = []
    for line in (read(MOUNTINFO) or "").splitlines():
        fields = line.split()
        if len(fields) > 8 and fields[4].startswith("/sys/") and not fields[4].startswith("/sys/fs/cgroup"):
            fstype = fields[fields.index("-") + 1] if "-" in fields else ""
            if fstype in ("tmpfs", "devtmpfs") or fields[3] == "/null":
                hidden.append(fields[4])
    return hidden


def sysfs_refusal_text(err: OSError, read: Callable[[str], str | None] = _read) -> str:
    """One paragraph when the lab cannot mount its own /sys (a container's masked paths), and the change."""
    hidden = hidden_under_sys(read)
    what = (f"the container hides part of its /sys ({', '.join(hidden[:3])})" if hidden
            else "the container's /sys is not fully visible (masked paths such as /sys/firmware)")
    return (f"netlab: the lab cannot mount its own /sys here (mount sysfs: {os.strerror(err.errno)}): {what}, "
            "and inside a user namespace the kernel allows a new /sys only where nothing of the old one is "
            "hidden. Fix: start the container with `--security-opt systempaths=unconfined` (docker run; "
            "podman run: `--security-opt unmask=ALL`); on Kubernetes, the container's `securityContext: "
            "{procMount: Unmasked}`, which needs the pod's `hostUsers: false`. Then restart the kernel.")
