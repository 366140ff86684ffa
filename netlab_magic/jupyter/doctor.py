"""``%netlab doctor``: which mode the lab runs in, and whether each capability is there.

Each check is small, runs inside the lab's host where it concerns networking, and comes with
advice when it fails. Used by the magic and by ``python -m netlab_magic doctor``.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from ..display import Table
from ..errors import NetlabError
from ..sandbox.isolation import INIT_NAME, PIDNS_ENV
from ..sandbox.sandbox import ADVICE, privilege_mode, refusal


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


# -- what blocks user namespaces, and the exact change that allows them ------------------------

MAX_USERNS = "/proc/sys/user/max_user_namespaces"
USERNS_CLONE = "/proc/sys/kernel/unprivileged_userns_clone"
APPARMOR_USERNS = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
SECCOMP_PROFILE_DOC = "docs/deploy.md"


@dataclass(frozen=True)
class Blocker:
    """A setting of the platform that refuses user namespaces, and the exact change that allows them."""

    setting: str
    change: str


def _status_field(name: str, read=_read) -> str | None:
    text = read("/proc/self/status") or ""
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


def container_kind(environ=os.environ, exists=os.path.exists) -> str | None:
    """``"kubernetes"``, ``"podman"``, ``"docker"`` or None: where this process seems to run."""
    if environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if exists("/run/.containerenv"):
        return "podman"
    if exists("/.dockerenv"):
        return "docker"
    return None


def seccomp_change(kind: str | None) -> str:
    """How to run the container without the default seccomp profile's refusal of user namespaces."""
    docker = ("`--security-opt seccomp=unconfined --security-opt systempaths=unconfined` on `docker run` "
              "(`podman run`: `--security-opt seccomp=unconfined --security-opt unmask=ALL`)")
    k8s = ("the container's `securityContext: {seccompProfile: {type: Unconfined}, procMount: Unmasked}` with "
           "the pod's `hostUsers: false` (or a `Localhost` seccomp profile from scripts/netlab-seccomp.py: "
           f"{SECCOMP_PROFILE_DOC})")
    first, second = (k8s, docker) if kind == "kubernetes" else (docker, "on Kubernetes, " + k8s)
    return (f"start the container with {first}; {second}. The lab also mounts its own /sys, which is why the "
            "system paths must not be masked. No privileged mode and no added capability is needed: the "
            "kernel is root only inside its own user namespace")


def apparmor_change(python: str | None = None) -> str:
    python = python or os.path.realpath(sys.executable)
    profile = (f"abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile netlab-kernel {python} "
               "flags=(unconfined) {\\n  userns,\\n}\\n")
    return ("as root, an AppArmor profile that lets this Python make user namespaces: "
            f"`printf '{profile}' > /etc/apparmor.d/netlab-kernel && "
            "apparmor_parser -r /etc/apparmor.d/netlab-kernel`; or, for the whole machine, "
            "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`")


def userns_blockers(failed_errno: int | None = None, call: str = "unshare", read=_read,
                    environ=os.environ, exists=os.path.exists) -> list[Blocker]:
    """What refuses user namespaces here, the first to fix first.

    ``failed_errno`` and ``call`` describe the launcher's failure when there was one (a seccomp
    filter answers ``unshare`` with EPERM before the kernel looks at any sysctl).
    """
    kind = container_kind(environ, exists)
    where = {"kubernetes": " (on a Kubernetes node: on the node itself)",
             "docker": " (in a container: on its host)", "podman": " (in a container: on its host)"}.get(kind, "")
    found = []
    seccomp = _status_field("Seccomp", read) == "2"
    if seccomp and failed_errno == errno.EPERM and call.startswith("unshare"):
        found.append(Blocker(
            "a seccomp filter refuses unshare(CLONE_NEWUSER) (in a container: its platform's default "
            "seccomp profile, Docker's, Podman's or Kubernetes' RuntimeDefault)", seccomp_change(kind)))
    if read(MAX_USERNS) == "0":
        found.append(Blocker("user.max_user_namespaces is 0",
                             f"as root on the machine{where}: `sysctl -w user.max_user_namespaces=15000`, "
                             "kept in /etc/sysctl.d/99-netlab.conf"))
    if read(USERNS_CLONE) == "0":
        found.append(Blocker("kernel.unprivileged_userns_clone is 0",
                             f"as root on the machine{where}: `sysctl -w kernel.unprivileged_userns_clone=1`, "
                             "kept in /etc/sysctl.d/99-netlab.conf"))
    if read(APPARMOR_USERNS) == "1":
        found.append(Blocker("AppArmor restricts unprivileged user namespaces "
                             "(kernel.apparmor_restrict_unprivileged_userns = 1, as on Ubuntu 23.10 and later)",
                             apparmor_change()))
    if seccomp and not found and failed_errno == errno.EPERM:
        found.append(Blocker("a seccomp filter refuses it (the container's or service's seccomp profile)",
                             seccomp_change(kind)))
    return found


def refusal_text(call: str, err: OSError, read=_read, environ=os.environ, exists=os.path.exists) -> str:
    """The launcher's one paragraph when it cannot enter a user namespace: what blocks it, what to change."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    head = (f"netlab: this machine refuses user namespaces ({call}: {reason}); "
            "the lab needs them to run without root.")
    blockers = userns_blockers(err.errno, call, read, environ, exists)
    if not blockers:
        body = (" No sysctl or seccomp filter here explains it: a security module (SELinux, AppArmor) may. "
                "Fix: allow unprivileged user namespaces for this Python, e.g. as root `sysctl -w "
                "kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000`.")
    else:
        body = f" What blocks them: {blockers[0].setting}. Fix: {blockers[0].change}."
        for b in blockers[1:]:
            body += f" Then also: {b.setting}; fix: {b.change}."
    return head + body + " Then restart the kernel (or run Jupyter as root, where the lab needs no user namespace)."


def user_namespaces() -> Check:
    """Can an unprivileged user make a user namespace here? If not, what blocks it."""
    max_ns = _read(MAX_USERNS)
    blockers = userns_blockers()
    if blockers:
        return Check("user namespaces", False, "; ".join(b.setting for b in blockers),
                     " ".join(f"{b.change}." for b in blockers))
    return Check("user namespaces", True, f"allowed (max {max_ns or '?'})")


# -- the tools the notebooks call, and the one line that installs the missing ones ------------

OS_RELEASE = "/etc/os-release"


@dataclass(frozen=True)
class Tool:
    """A command the workbook calls: what it is for, and its package in each distribution family."""

    command: str
    use: str
    debian: str
    fedora: str
    arch: str
    must_say: tuple[tuple[str, str], ...] = ()  # (argument, a word its output must contain)
    expected: str = ""                           # which flavour that proves, for the report


TOOLS: tuple[Tool, ...] = (
    Tool("ip", "every demo (ip netns, ip link, ip addr, ip route)", "iproute2", "iproute", "iproute2"),
    Tool("iptables", "Docker's rules, counters, traces (the nf_tables backend: %netlab trace sees its rules)",
         "iptables", "iptables-nft", "iptables-nft", (("-V", "nf_tables"),), "iptables-nft"),
    Tool("ping", "reachability in every demo", "iputils-ping", "iputils", "iputils"),
    Tool("nc", "listeners and clients (`nc -l 8080`, `nc -N`)", "netcat-openbsd", "netcat", "openbsd-netcat",
         (("-h", "OpenBSD"), ("-h", "-N")), "OpenBSD netcat with -N"),
    Tool("curl", "the web server in notebooks 05-07", "curl", "curl", "curl"),
    Tool("tcpdump", "%netlab capture, as root", "tcpdump", "tcpdump", "tcpdump"),
    Tool("conntrack", "%netlab conntrack and the NAT exercises", "conntrack", "conntrack-tools", "conntrack-tools"),
    Tool("bash", "%%netns cells", "bash", "bash", "bash"),
)

# Debian's and Ubuntu's names are the ones scripts/setup.sh installs; Fedora's and Arch's are
# their package indexes' names for the same programs.
_INSTALL = {"debian": "apt-get install -y", "fedora": "dnf install -y", "arch": "pacman -S --needed"}


def distribution_family(read=_read) -> str | None:
    """``"debian"`` (Debian, Ubuntu and their kin), ``"fedora"``, ``"arch"`` or None, from os-release."""
    fields = {}
    for line in (read(OS_RELEASE) or "").splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip().strip('"')
    names = {fields.get("ID", ""), *fields.get("ID_LIKE", "").split()}
    for family, members in (("debian", {"debian", "ubuntu"}), ("fedora", {"fedora"}), ("arch", {"arch"})):
        if names & members:
            return family
    return None


def install_line(tools: list[Tool], family: str | None) -> str:
    """The one command that installs ``tools`` on this distribution family (as root)."""
    if family is None:
        return ("install with your distribution's packages: "
                + ", ".join(f"{t.command} (Debian's {t.debian})" for t in tools))
    return " ".join([_INSTALL[family], *dict.fromkeys(getattr(t, family) for t in tools)])


def _says(path: str, argument: str) -> str:
    try:
        out = subprocess.run([path, argument], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout + out.stderr


def tool_check(tool: Tool, family: str | None = None) -> Check:
    """Is ``tool`` on PATH, and the flavour the workbook needs? If not, the line that installs it."""
    path = shutil.which(tool.command)
    fix = install_line([tool], family)
    if not path:
        return Check(tool.command, False, f"not found (used for {tool.use})", fix)
    for argument, word in tool.must_say:
        if word not in _says(path, argument):
            return Check(tool.command, False, f"{path} is not {tool.expected} (used for {tool.use})", fix)
    return Check(tool.command, True, path)


def tool_checks(read=_read) -> list[Check]:
    """One check per tool, and when some are missing a last one with the line that installs them all."""
    family = distribution_family(read)
    checks = [tool_check(t, family) for t in TOOLS]
    missing = [t for t, c in zip(TOOLS, checks) if not c.ok]
    if missing:
        checks.append(Check("install", False, "missing: " + ", ".join(t.command for t in missing),
                            install_line(missing, family)))
    return checks


def own_processes(environ=os.environ, read=_read) -> str:
    """Whether the kernel's commands see and signal only their own processes (the launcher's PID
    namespace), or why not: said in the "mode" row (the demos run either way)."""
    refused = environ.get(PIDNS_ENV)
    if refused:
        return f"processes shared with the machine ({refused})"
    if (read("/proc/1/comm") or "").strip() == INIT_NAME:
        return f"its own processes (PID 1: {INIT_NAME})"
    return "processes shared with the machine (an ordinary kernel: the 'Python 3 (netlab)' kernel has its own)"


def run_checks(lab=None) -> list[Check]:  # noqa: ANN001 - a Lab, imported lazily
    """All checks. With a ``lab``, networking checks run inside the lab's host."""
    mode = lab.mode if lab is not None else privilege_mode()
    problem = refusal()
    if mode == "vm":
        mode_check = Check("mode", True, "vm: the lab is a small virtual machine (QEMU) this kernel started")
    elif problem:
        why = ("the kernel could not enter a user namespace" if "refuses user namespaces" in problem
               else "the lab cannot have its own /sys" if "/sys" in problem else "see the advice")
        mode_check = Check("mode", False, f"no lab: {why}", problem)
    elif lab is None and mode == "none":
        mode_check = Check("mode", False, "not root: an ordinary kernel cannot make a lab", ADVICE)
    elif lab is None:
        mode_check = Check("mode", True, f"{mode}: a lab can be made here")
    else:
        mode_check = Check("mode", True, {"root": "root: the lab is a private namespace of this kernel",
                                          "rootless": "rootless: root inside a user namespace (the netlab kernel)"}[mode]
                           + "; " + own_processes())
    checks = [*backend_checks(),
              mode_check,
              user_namespaces(),
              *tool_checks()]
    if mode == "vm" and lab is not None:  # the kernel's own cells are not in the guest: what they reach
        checks.append(Check("plain Python", True, lab.kernel_network.reaches))
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


VM_SETUP = "apt-get install -y qemu-system-x86 kmod && netlab-magic vm prepare"


def backend_checks() -> list[Check]:
    """Which lab runs and why (:func:`netlab_magic.backend.chosen`); whether the VM could run here."""
    from ..backend import VM, chosen, vm_ready

    try:
        choice = chosen()
    except NetlabError as err:
        return [Check("backend", False, str(err), "NETLAB_BACKEND=kernel or NETLAB_BACKEND=vm")]
    missing = vm_ready()
    checks = [Check("backend", not (choice.name == VM and missing), f"{choice.name}: {choice.reason}")]
    if choice.name == VM:
        checks.append(Check("VM", not missing, f"missing: {missing}" if missing else
                            "QEMU (TCG, -nic none) and Debian's kernel, running this package's own lab: in the VM, "
                            "!commands, %%netns, %netns, jobs (--bg, what a cell leaves running), %docker, %netlab "
                            "status, trace, capture, conntrack, reset and doctor run, Lab.current() is the VM's lab "
                            "(the checks and the widgets read it); %%netns --python runs in the guest's Python, "
                            "with variables of its own (not the kernel's)", VM_SETUP if missing else ""))
        if not missing:
            checks.append(_boot_check())
    elif missing and refusal():
        checks.append(Check("VM", False, f"not set up, and the kernel refuses namespaces here: missing {missing}",
                            f"{VM_SETUP} (apt-get as root; an image: binder/apt.txt and postBuild), then start the kernel again"))
    elif missing:
        checks.append(Check("VM", True, "not set up (it runs the lab only where the kernel refuses namespaces)",
                            f"to have it: {VM_SETUP}"))
    else:
        checks.append(Check("VM", True, "ready, where the kernel refuses namespaces (NETLAB_BACKEND=vm forces it)"))
    return checks


def _boot_check() -> Check:
    """How this kernel's VM started (or will): restored from the boot's snapshot, or booted."""
    from ..backend import existing
    from ..vm import image, snapshot

    machine = getattr(existing(), "machine", None)
    if machine is not None and machine.restored_from is not None:
        return Check("VM boot", True, f"restored from the snapshot of its boot ({machine.restored_from})")
    if machine is not None and machine.restore_refused:
        return Check("VM boot", True, f"booted from the start: QEMU refused the boot's snapshot "
                                      f"({machine.restore_refused})", "netlab-magic vm prepare (saves it again)")
    img = image.find()
    saved = snapshot.find(img) if img is not None else None
    if saved is None:
        return Check("VM boot", True, "booted from the start: no snapshot of this boot for this QEMU, kernel and "
                                      "machine", "netlab-magic vm prepare (saves one: the next VMs start ~2 s sooner)")
    verb = "booted from the start (it started before the snapshot was saved)" if machine is not None else \
        "will be restored from the snapshot of its boot"
    return Check("VM boot", True, f"{verb} ({saved})")


def report(checks: list[Check]) -> Table:
    return Table("netlab doctor", ["check", "ok", "detail", "advice"],
                 [[c.name, "yes" if c.ok else "NO", c.detail, c.advice] for c in checks])
