"""Where the kernel cannot get its namespaces, the doctor names the blocking setting and the exact change.

Each blocking setting of the platforms a workbook runs on, in one paragraph, never a traceback:
a seccomp filter (Docker's, Podman's and Kubernetes' default profiles), ``user.max_user_namespaces``
= 0, ``kernel.unprivileged_userns_clone`` = 0 and Ubuntu's AppArmor restriction
(``kernel.apparmor_restrict_unprivileged_userns`` = 1). The seccomp filter is real (a filter
with the effect of Docker's default profile, ``tests/helpers/seccomp_no_userns.py``), here and
in a real kernel; ``max_user_namespaces`` = 0 is real in ``test_cleanup.py`` (helpers/no_userns.py);
AppArmor and the old Debian sysctl cannot be switched on in this kernel, so their diagnosis is
fed the values those files hold on such machines.
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys

import pytest

from support.kernel_client import IS_ROOT, Kernel, helper_kernelspec
from netlab_magic.jupyter import doctor
from netlab_magic.sandbox import masked_sys

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "seccomp_no_userns.py")
MASKED_SYS = os.path.join(os.path.dirname(__file__), "helpers", "masked_sys.py")
EPERM = OSError(errno.EPERM, "Operation not permitted")


def fake(files: dict[str, str]):
    return lambda path: files.get(path)


SECCOMP = {"/proc/self/status": "Name:\tpython\nSeccomp:\t2\nSeccomp_filters:\t1\n"}


def paragraph(call, err, files, environ=None, container=None) -> str:
    text = doctor.refusal_text(call, err, read=fake(files), environ=environ or {},
                               exists=lambda p: p == container)
    assert "\n" not in text and "Traceback" not in text
    assert text.startswith("netlab: this machine refuses user namespaces")
    return text


def test_docker_default_seccomp_profile():
    text = paragraph("unshare(CLONE_NEWUSER)", EPERM, SECCOMP, container="/.dockerenv")
    assert "a seccomp filter refuses unshare(CLONE_NEWUSER)" in text
    assert "`--security-opt seccomp=unconfined --security-opt systempaths=unconfined` on `docker run`" in text
    assert "`--security-opt seccomp=unconfined --security-opt unmask=ALL`" in text  # podman's words
    assert "seccompProfile: {type: Unconfined}, procMount: Unmasked}" in text and "No privileged mode" in text


def test_kubernetes_runtime_default_seccomp_profile():
    text = paragraph("unshare(CLONE_NEWUSER)", EPERM, SECCOMP, environ={"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    fix = text.split("Fix: ", 1)[1]
    assert fix.startswith("start the container with the container's `securityContext: {seccompProfile: "
                          "{type: Unconfined}, procMount: Unmasked}` with the pod's `hostUsers: false`")
    assert "`Localhost` seccomp profile from scripts/netlab-seccomp.py" in fix and "--security-opt seccomp=unconfined" in fix


def test_max_user_namespaces_zero():
    text = paragraph("unshare(CLONE_NEWUSER)", OSError(errno.ENOSPC, "x"), {doctor.MAX_USERNS: "0"})
    assert "(unshare(CLONE_NEWUSER): No space left on device)" in text
    assert "What blocks them: user.max_user_namespaces is 0. Fix: as root on the machine: " \
           "`sysctl -w user.max_user_namespaces=15000`" in text
    on_node = paragraph("unshare(CLONE_NEWUSER)", OSError(errno.ENOSPC, "x"), {doctor.MAX_USERNS: "0"},
                        environ={"KUBERNETES_SERVICE_HOST": "x"})
    assert "on a Kubernetes node: on the node itself" in on_node


def test_unprivileged_userns_clone_zero():
    text = paragraph("unshare(CLONE_NEWUSER)", EPERM, {doctor.USERNS_CLONE: "0", doctor.MAX_USERNS: "15000"})
    assert "kernel.unprivileged_userns_clone is 0" in text and "`sysctl -w kernel.unprivileged_userns_clone=1`" in text


def test_ubuntu_apparmor_restriction():
    text = paragraph("writing /proc/self/uid_map", EPERM, {doctor.APPARMOR_USERNS: "1"})
    assert "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1" in text
    python = os.path.realpath(sys.executable)
    assert f"profile netlab-kernel {python} flags=(unconfined) {{\\n  userns,\\n}}" in text
    assert "apparmor_parser -r /etc/apparmor.d/netlab-kernel" in text
    assert "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`" in text


def test_the_apparmor_profile_command_writes_a_profile(tmp_path):
    """The printf in the advice, run as written, gives the profile AppArmor's parser reads."""
    command = re.search(r"`(printf .*?) > /etc/apparmor.d/netlab-kernel", doctor.apparmor_change("/usr/bin/python3.12"))
    out = subprocess.run(["bash", "-c", command.group(1)], capture_output=True, text=True, check=True).stdout
    assert out == ("abi <abi/4.0>,\ninclude <tunables/global>\n"
                   "profile netlab-kernel /usr/bin/python3.12 flags=(unconfined) {\n  userns,\n}\n")


def test_seccomp_in_a_container_on_ubuntu_names_both_in_order():
    files = {**SECCOMP, doctor.APPARMOR_USERNS: "1"}
    text = paragraph("unshare(CLONE_NEWUSER)", EPERM, files, container="/run/.containerenv")
    assert text.index("seccomp filter") < text.index("Then also: AppArmor restricts")


MOUNTINFO = """\
126 122 0:48 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
177 126 0:54 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
190 126 0:61 / /sys/firmware ro,relatime - tmpfs tmpfs ro
191 126 0:6 /null /sys/devices/virtual/powercap ro,nosuid - devtmpfs udev rw
"""


def test_a_masked_sys_names_what_the_container_hides_and_the_change():
    text = masked_sys.sysfs_refusal_text(PermissionError(errno.EPERM, "x"), read=fake({"/proc/self/mountinfo": MOUNTINFO}))
    assert "\n" not in text and "Traceback" not in text
    assert text.startswith("netlab: the lab cannot mount its own /sys here (mount sysfs: Operation not permitted): "
                           "the container hides part of its /sys (/sys/firmware, /sys/devices/virtual/powercap)")
    assert "`--security-opt systempaths=unconfined`" in text and "`--security-opt unmask=ALL`" in text
    assert "procMount: Unmasked" in text and "hostUsers: false" in text


def test_nothing_known_blocks_it():
    text = paragraph("unshare(CLONE_NEWUSER)", EPERM, {doctor.MAX_USERNS: "15000"})
    assert "No sysctl or seccomp filter here explains it" in text


def test_a_real_seccomp_filter_is_named_by_the_launcher():
    """The launcher's own failure under Docker's refusal, as a container's non-root user."""
    code = ("from netlab_magic.jupyter import kernel, doctor\n"
            "try:\n    kernel.enter_user_namespace()\n"
            "except OSError as e:\n    print(doctor.refusal_text(e.call, e))\n"
            "else:\n    print('entered')\n")
    r = subprocess.run([sys.executable, HELPER, "--as-nobody", "--exec", sys.executable, "-c", code],
                       capture_output=True, text=True, cwd="/", env={**os.environ, "PYTHONPATH": _package_root()})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("netlab: this machine refuses user namespaces (unshare(CLONE_NEWUSER): "
                               "Operation not permitted)"), r.stdout
    assert "seccomp filter refuses" in r.stdout and "--security-opt seccomp=unconfined" in r.stdout


def _package_root() -> str:
    import netlab_magic

    return os.path.dirname(os.path.dirname(netlab_magic.__file__))


@pytest.fixture
def seccomp_kernel_path(tmp_path, monkeypatch):
    helper_kernelspec(tmp_path, "netlab-seccomp", HELPER, monkeypatch)


@pytest.mark.skipif(IS_ROOT, reason="needs an unprivileged user (root needs no user namespace)")
def test_a_kernel_under_dockers_seccomp_profile_says_what_to_change(seccomp_kernel_path):
    k = Kernel("netlab-seccomp")
    try:
        r = k.run("%netns host true")
        assert r.usage_error is not None and "Traceback" not in r.stderr, r
        assert "seccomp filter refuses unshare(CLONE_NEWUSER)" in r.usage_error
        assert "--security-opt seccomp=unconfined" in r.usage_error and "seccompProfile" in r.usage_error
        text = k.ok("%netlab doctor").results[0]
        assert re.search(r"^\s*mode\s+NO\s+no lab: the kernel could not enter a user namespace", text, re.M), text
        assert k.ok("print(1 + 1)").stdout.strip() == "2"  # the kernel itself works
    finally:
        k.shutdown()


@pytest.fixture
def masked_sys_kernel_path(tmp_path, monkeypatch):
    helper_kernelspec(tmp_path, "netlab-masked-sys", MASKED_SYS, monkeypatch)


@pytest.mark.skipif(IS_ROOT, reason="needs an unprivileged user (root needs no user namespace)")
def test_a_kernel_whose_sys_is_masked_as_in_a_container_says_what_to_change(masked_sys_kernel_path):
    """Docker's and Kubernetes' masked /sys/firmware: the user namespace works, the lab's own /sys does not."""
    k = Kernel("netlab-masked-sys")
    try:
        for _ in range(2):  # the same answer the second time, without trying (and failing) again
            r = k.run("%netns host true")
            assert r.usage_error is not None and "Traceback" not in r.stderr, r
            assert r.usage_error.startswith("netlab: the lab cannot mount its own /sys here"), r
            assert "(/sys/firmware)" in r.usage_error and "systempaths=unconfined" in r.usage_error
        text = k.ok("%netlab doctor").results[0]
        assert re.search(r"^\s*mode\s+NO\s+no lab: the lab cannot have its own /sys", text, re.M), text
        assert k.ok("print(1 + 1)").stdout.strip() == "2"
    finally:
        k.shutdown()


# -- the tools the notebooks call ------------------------------------------------------------

OS_RELEASES = {
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n',
    "ubuntu": 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n',
    "fedora": 'NAME="Fedora Linux"\nID=fedora\n',
    "arch": 'NAME="Arch Linux"\nID=arch\n',
    "nixos": 'NAME=NixOS\nID=nixos\n',
}


@pytest.mark.parametrize("name, line", [
    ("debian", "apt-get install -y netcat-openbsd curl conntrack"),
    ("ubuntu", "apt-get install -y netcat-openbsd curl conntrack"),
    ("fedora", "dnf install -y netcat curl conntrack-tools"),
    ("arch", "pacman -S --needed openbsd-netcat curl conntrack-tools"),
    ("nixos", "install with your distribution's packages: nc (Debian's netcat-openbsd), "
              "curl (Debian's curl), conntrack (Debian's conntrack)"),
])
def test_the_install_line_is_the_distributions(name, line):
    family = doctor.distribution_family(fake({doctor.OS_RELEASE: OS_RELEASES[name]}))
    tools = [t for t in doctor.TOOLS if t.command in ("curl", "nc", "conntrack")]
    assert doctor.install_line(tools, family) == line


def test_a_netcat_without_dash_n_is_named_with_its_package(tmp_path, monkeypatch):
    fake_nc = tmp_path / "nc"
    fake_nc.write_text("#!/bin/sh\necho 'GNU netcat 0.7.1, a rewrite of the famous networking tool.'\n")
    fake_nc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    nc = next(t for t in doctor.TOOLS if t.command == "nc")
    check = doctor.tool_check(nc, "debian")
    assert not check.ok and check.detail.startswith(f"{fake_nc} is not OpenBSD netcat with -N")
    assert check.advice == "apt-get install -y netcat-openbsd"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert doctor.tool_check(nc, "debian").ok  # this machine's: OpenBSD netcat


def test_own_processes_says_why_a_pid_namespace_was_refused():
    refused = doctor.own_processes(environ={"NETLAB_PIDNS_REFUSED": "no PID namespace of its own: Operation not permitted"})
    assert refused == "processes shared with the machine (no PID namespace of its own: Operation not permitted)"
    assert doctor.own_processes(environ={}, read=lambda path: "netlab-init\n").startswith("its own processes")
    assert "an ordinary kernel" in doctor.own_processes(environ={}, read=lambda path: "systemd\n")
