"""The lab where /sys is read-only and locked, as in a Docker container run with the recommended settings.

Docker mounts a container's /sys read-only; seen from the kernel's user namespace it is locked in
place. A sysfs mounted over it would be unmounted by the talk's ``ip netns exec``, which then
mounts a read-write one the kernel refuses ("mount of /sys failed"). So there the lab's host keeps
the container's /sys, and every namespace's /sys comes, read-only, with ``%%netns NAME`` and
``ip netns exec``. ``tests/helpers/readonly_sys.py`` makes /sys read-only and locked for the
kernel without a container; tests/test_containers.py does the same in a real one.
"""

from __future__ import annotations

import os

import pytest

from support.kernel_client import IS_ROOT, Kernel, helper_kernelspec

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "readonly_sys.py")

pytestmark = pytest.mark.skipif(IS_ROOT, reason="needs an unprivileged user (a container's non-root user)")


@pytest.fixture
def readonly_sys_kernel(tmp_path, monkeypatch):
    helper_kernelspec(tmp_path, "netlab-readonly-sys", HELPER, monkeypatch)
    k = Kernel("netlab-readonly-sys")
    yield k
    k.shutdown()


def test_ip_netns_exec_and_netns_cells_get_their_namespace_s_sys(readonly_sys_kernel):
    k = readonly_sys_kernel
    k.ok("!ip netns add ns1 && ip link add veth1 type veth peer name veth2 && ip link set veth1 netns ns1")
    assert k.ok("!ip netns exec ns1 ls /sys/class/net").stdout.split() == ["lo", "veth1"]
    assert k.ok("%netns ns1 ls /sys/class/net").stdout.split() == ["lo", "veth1"]
    assert "veth2" in k.ok("!ip -o link").stdout
    assert "Read-only file system" in k.run("!touch /sys/netlab-probe").stdout
    k.ok("%netlab reset")
    k.ok("!ip netns add ns1")
    assert k.ok("!ip netns exec ns1 ls /sys/class/net").stdout.split() == ["lo"]
