"""``%netlab doctor``: which mode the lab runs in, and whether each capability is there.

Each check is small, runs inside the lab's host where it concerns networking, and comes with
advice when it fails. Used by the magic and by ``python -m netlab_magic doctor``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from .display import Table
from .sandbox import ADVICE, privilege_mode, refusal


@dataclass(frozen=True)
class Check:
    """One capability: its name, whether it works, what was seen, and what to do if not."""

    name: str
    ok: bool
    detail: str
    advice: str = ""


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def user_namespaces() -> Check:
    """Can an unprivileged user make a user namespace here?"""
    max_ns = _read("/proc/sys/user/max_user_namespaces")
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")
    apparmor = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    problems = []
    if max_ns is not None and max_ns == "0":
        problems.append("user.max_user_namespaces is 0")
    if clone == "0":
        problems.append("kernel.unprivileged_userns_clone is 0")
    if apparmor == "1":
        problems.append("AppArmor restricts unprivileged user namespaces")
    if problems:
        return Check("user namespaces", False, "; ".join(problems),
                     "as root: sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=10000 "
                     "kernel.apparmor_restrict_unprivileged_userns=0, or run the lab as root")
    return Check("user namespaces", True, f"allowed (max {max_ns or '?'})")


def tool(name: str, package: str) -> Check:
    path = shutil.which(name)
    if path:
        return Check(name, True, path)
    return Check(name, False, "not found", f"install it: apt-get install {package}")


def run_checks(lab=None) -> list[Check]:  # noqa: ANN001 - a Lab, imported lazily
    """All checks. With a ``lab``, networking checks run inside the lab's host."""
    mode = lab.mode if lab is not None else privilege_mode()
    problem = refusal()
    if problem:
        mode_check = Check("mode", False, "no lab: the kernel could not enter a user namespace", problem)
    elif lab is None and mode == "none":
        mode_check = Check("mode", False, "not root: an ordinary kernel cannot make a lab", ADVICE)
    elif lab is None:
        mode_check = Check("mode", True, f"{mode}: a lab can be made here")
    else:
        mode_check = Check("mode", True, {"root": "root: the lab is a private namespace of this kernel",
                                          "rootless": "rootless: root inside a user namespace (the netlab kernel)"}[mode])
    checks = [mode_check,
              user_namespaces(),
              tool("ip", "iproute2"), tool("iptables", "iptables"), tool("ping", "iputils-ping"),
              tool("nc", "netcat-openbsd"), tool("bash", "bash")]
    if lab is not None and shutil.which("iptables"):
        result = lab.run("host", ["iptables", "-w", "-S", "FORWARD"])
        checks.append(Check("iptables in the lab", result.returncode == 0,
                            (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "",
                            "" if result.returncode == 0 else "iptables could not read the lab's filter table"))
    if lab is not None:
        brnf = lab.run("host", ["cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"])
        checks.append(Check("br_netfilter", brnf.returncode == 0,
                            "bridged traffic can go through iptables" if brnf.returncode == 0 else "not available",
                            "" if brnf.returncode == 0 else "Demo 2's FORWARD drop on the bridge needs br_netfilter"))
    return checks


def report(checks: list[Check]) -> Table:
    return Table("netlab doctor", ["check", "ok", "detail", "advice"],
                 [[c.name, "yes" if c.ok else "NO", c.detail, c.advice] for c in checks])
