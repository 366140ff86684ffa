"""Nothing survives the lab: kernel kill -9, kernel restart, and loading without privileges."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from support import strays
from support.kernel_client import DEMO1, DEMO1_NS1, IS_ROOT, Kernel
from support.pids import machine_pid


def _uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def _started(pid: int) -> float:
    """When the process started, in seconds since boot."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")


def _netns_inode_users(inodes: set[int], born_before: float | None = None) -> list[int]:
    """PIDs of processes anywhere on the machine still inside one of these network namespaces.

    Namespace inode numbers are reused once freed, so with ``born_before`` only processes that
    existed before that moment (seconds since boot) count: a new kernel's lab may get the old numbers.
    """
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes and (
                        born_before is None or _started(int(entry)) < born_before):
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _mount_ns_users(inode: int, born_before: float) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/mnt").st_ino == inode and _started(int(entry)) < born_before:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def build_busy_lab(k: Kernel) -> dict:
    """Demo 1 plus a bridge, iptables rules, a background job and a stray `&` process."""
    k.ok(DEMO1)
    k.ok(DEMO1_NS1)
    k.ok("!ip link add bridge0 type bridge && iptables -P FORWARD DROP && iptables -A FORWARD -o bridge0 -j ACCEPT")
    k.ok("%%netns ns1 --bg --name listener\nnc -l 8080")
    # strays that escape every job table and survive on their own: only the keeper can find them
    tag, _ = strays.start_strays(k)
    info = k.value(
        "{'netns': [__import__('os').stat(p).st_ino for p in ('/run/netlab/host', '/run/netns/ns1')],"
        " 'mnt': __import__('os').stat('/proc/self/ns/mnt').st_ino,"
        " 'job': __import__('netlab_magic').Lab.current().jobs.get('listener').proc.pid,"
        " 'keeper': __import__('netlab_magic').Lab.current().sandbox._keeper.pid,"
        " 'pidns': __import__('os').stat('/proc/self/ns/pid').st_ino}")
    info["job"], info["keeper"] = (machine_pid(info["pidns"], info[key]) for key in ("job", "keeper"))
    assert _netns_inode_users(set(info["netns"])), "the lab should be alive and busy"
    info["uptime"] = _uptime() + 0.01
    info["strays"] = tag
    return info


def assert_nothing_left(info: dict) -> None:
    inodes, t0 = set(info["netns"]), info["uptime"]
    assert strays.gone(info["strays"]), f"strays survived the lab: {strays.find(info['strays'])}"
    assert _wait_until(lambda: not _netns_inode_users(inodes, t0)), \
        f"processes still in the lab's namespaces: {_netns_inode_users(inodes, t0)}"
    assert _wait_until(lambda: not _mount_ns_users(info["mnt"], t0)), "the lab's mount namespace is still in use"
    for pid in (info["job"], info["keeper"]):
        assert _wait_until(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid)), f"pid {pid} survived"


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_kill_9_of_the_kernel_leaves_nothing(fresh_kernel):
    info = build_busy_lab(fresh_kernel)
    os.kill(fresh_kernel.pid, signal.SIGKILL)
    assert_nothing_left(info)


def test_kernel_restart_leaves_nothing_and_gives_a_fresh_lab(fresh_kernel):
    info = build_busy_lab(fresh_kernel)
    fresh_kernel.km.restart_kernel(now=False)
    fresh_kernel.kc.wait_for_ready(timeout=60)
    assert_nothing_left(info)
    assert fresh_kernel.ok("!ip netns list").stdout.strip() == ""


def test_shutdown_leaves_nothing(jupyter_path):
    k = Kernel("netlab-test")
    info = build_busy_lab(k)
    k.shutdown()
    assert_nothing_left(info)


@pytest.mark.skipif(not IS_ROOT, reason="an ordinary kernel can build a lab only as root")
def test_load_ext_in_an_ordinary_root_kernel(jupyter_path):
    k = Kernel("python3")
    try:
        k.ok("%load_ext netlab_magic")
        info = build_busy_lab(k)
        assert k.value("__import__('netlab_magic').Lab.current().mode") == "root"
    finally:
        os.kill(k.pid, signal.SIGKILL)
    assert_nothing_left(info)


@pytest.mark.skipif(IS_ROOT, reason="needs an unprivileged user")
def test_load_ext_without_privileges_says_what_to_do(jupyter_path):
    k = Kernel("python3")
    try:
        r = k.run("%load_ext netlab_magic")
        assert r.usage_error is not None and "install-kernel" in r.usage_error, r
        assert "Traceback" not in r.stderr
        r = k.run("%netns host true")
        assert r.usage_error is not None and "install-kernel" in r.usage_error
        assert k.ok("!echo the kernel still works").stdout.strip() == "the kernel still works"
    finally:
        k.shutdown()


def test_keeper_alone_sweeps_the_lab_when_its_pipe_closes(tmp_path):
    """The keeper, driven directly: a process in a lab namespace dies when the kernel's pipe closes."""
    # The lab is built in a child python that holds the pipe; killing that child is the 'kernel dying'.
    script = tmp_path / "owner.py"
    script.write_text(
        "import os, sys, time\n"
        "from netlab_magic import Lab\n"
        "lab = Lab.current()\n"
        "lab.add_netns('ns1')\n"
        "p = lab.popen('ns1', ['sleep', '600'])\n"
        "print(p.pid, os.stat('/run/netns/ns1').st_ino, flush=True)\n"
        "time.sleep(600)\n")
    launcher = [sys.executable, "-c",
                "import os, sys; from netlab_magic.jupyter import kernel;"
                "os.geteuid() != 0 and kernel.enter_user_namespace();"
                f"os.execv(sys.executable, [sys.executable, {str(script)!r}])"]
    owner = subprocess.Popen(launcher, stdout=subprocess.PIPE, text=True)
    pid, inode = map(int, owner.stdout.readline().split())
    assert _netns_inode_users({inode}) == [pid]
    owner.kill()
    owner.wait()
    assert _wait_until(lambda: not _netns_inode_users({inode}))


@pytest.mark.skipif(IS_ROOT, reason="needs an unprivileged user (root needs no user namespace)")
def test_a_host_that_forbids_user_namespaces_is_explained_in_one_line(jupyter_path):
    k = Kernel("netlab-no-userns")
    try:
        r = k.run("%netns host true")
        assert r.usage_error is not None and r.usage_error.startswith(
            "netlab: this machine refuses user namespaces"), r
        assert "sysctl -w user.max_user_namespaces=" in r.usage_error  # the setting that blocks, and its fix
        text = k.ok("%netlab doctor").results[0]
        assert re.search(r"^\s*mode\s+NO\s+no lab: the kernel could not enter a user namespace", text, re.M), text
        assert re.search(r"^\s*user namespaces\s+NO\s+user.max_user_namespaces is 0", text, re.M), text
    finally:
        k.shutdown()
