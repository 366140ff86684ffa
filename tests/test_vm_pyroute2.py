"""pyroute2 in plain cells of the VM backend acts on the guest's lab, as it acts on the lab in-kernel.

A real "Python 3 (netlab)" kernel with ``NETLAB_BACKEND=vm``, a real VM, real pyroute2 on both
sides: notebook 08's cells unchanged (``IPRoute``, ``pyroute2.netns``, ``IPRoute(netns=...)``,
``AsyncIPRoute``), their effect seen by ``!ip`` in the guest; pyroute2's own errors and message
classes in the kernel; what is not forwarded is one line and never the kernel's network.
Notebook 08 itself runs in the VM with the rest of the workbook (scripts/test-rootless.sh).
Runs as an unprivileged user (the rootless pass), as tests/test_vm.py does.
"""

from __future__ import annotations

import pytest

from support.kernel_client import IS_ROOT, Kernel
from netlab_magic.backend import vm_ready

pytest.importorskip("pyroute2")
pytestmark = [
    pytest.mark.skipif(IS_ROOT, reason="the VM runs as an unprivileged user: see the rootless pass"),
    pytest.mark.skipif(vm_ready() is not None, reason=f"the VM's pieces are not installed: {vm_ready()}"),
]

BOOT = 120  # seconds a cell may wait for a boot on a loaded 2-core machine


@pytest.fixture(scope="module")
def kernel():
    mp = pytest.MonkeyPatch()
    mp.setenv("NETLAB_BACKEND", "vm")
    k = Kernel("netlab")
    try:
        k.ok("%netlab reset", timeout=BOOT)
        yield k
    finally:
        k.shutdown()
        mp.undo()


def test_iproute_acts_on_the_guests_lab_and_answers_with_pyroute2s_messages(kernel):
    k = kernel
    r = k.ok("from pyroute2 import IPRoute\n"
             "with IPRoute() as ipr:\n"
             "    ipr.link('add', ifname='br9', kind='bridge')\n"
             "    index = ipr.link_lookup(ifname='br9')[0]\n"
             "    ipr.link('set', index=index, state='up')\n"
             "    links = ipr.get_links()\n"
             "print([link.get('ifname') for link in links])\n"
             "print(type(links).__name__, type(links[0]).__module__, type(links[0]).__name__, links[0]['index'])",
             timeout=BOOT)
    names, kinds = r.stdout.splitlines()
    assert names == "['lo', 'br9']"
    assert kinds == "tuple pyroute2.netlink.rtnl.ifinfmsg ifinfmsg 1"
    assert "br9" in k.ok("!ip -br link show br9").stdout  # in the guest's lab
    doctor = k.ok("%netlab doctor").results[0]
    assert "a plain cell's pyroute2 (IPRoute, NetNS, AsyncIPRoute, pyroute2.netns) acts on the VM's lab; its other " \
           "sockets are in an empty network namespace of the kernel (lo only, no uplink)" in doctor, doctor


def test_notebook_08s_demo2_cell_builds_the_lab_in_the_guest(kernel):
    k = kernel
    k.ok("%netlab reset")
    k.ok("from pyroute2 import IPRoute, netns\n"
         "with IPRoute() as ipr:\n"
         "    ipr.link('add', ifname='bridge0', kind='bridge')\n"
         "    bridge = ipr.link_lookup(ifname='bridge0')[0]\n"
         "    ipr.addr('add', index=bridge, address='10.0.0.10', prefixlen=24)\n"
         "    ipr.link('set', index=bridge, state='up')\n"
         "    netns.create('ns1')\n"
         "    ipr.link('add', ifname='veth2', kind='veth', peer={'ifname': 'veth1', 'net_ns_fd': 'ns1'})\n"
         "    ipr.link('set', index=ipr.link_lookup(ifname='veth2')[0], master=bridge, state='up')\n"
         "    with IPRoute(netns='ns1') as inner:\n"
         "        veth = inner.link_lookup(ifname='veth1')[0]\n"
         "        inner.addr('add', index=veth, address='10.0.0.1', prefixlen=24)\n"
         "        inner.link('set', index=veth, state='up')\n")
    assert k.ok("print(netns.listnetns())").stdout.strip() == "['ns1']"
    r = k.ok("%netns host ping -c 1 -W 5 10.0.0.1")
    assert "1 received" in r.stdout, r
    r = k.ok("from pyroute2 import AsyncIPRoute\n"
             "async with AsyncIPRoute() as ipr:\n"
             "    print([link.get('ifname') async for link in await ipr.get_links()])")
    assert r.stdout.strip() == "['lo', 'bridge0', 'veth2']"


def test_pyroute2s_errors_cross_as_its_own(kernel):
    k = kernel
    k.ok("%netlab reset")
    r = k.ok("from pyroute2 import IPRoute, NetlinkError\n"
             "with IPRoute() as ipr:\n"
             "    try:\n"
             "        ipr.link('add', ifname='lo', kind='bridge')\n"
             "    except NetlinkError as err:\n"
             "        print(type(err).__module__, err.code, err)")
    assert r.stdout.strip() == "pyroute2.netlink.exceptions 17 (17, 'File exists')", r
    r = k.run("from pyroute2 import IPRoute\nIPRoute().link('del', index=99)")
    assert r.error == ("NetlinkError", "(19, 'No such device')"), r  # uncaught: pyroute2's own, as in-kernel


@pytest.mark.parametrize("cell, line", [
    ("from pyroute2 import NDB\nNDB()", "NotForwarded: pyroute2.NDB does not run in a plain cell: in the VM backend"),
    ("from pyroute2.iproute.linux import IPRoute as Long\nLong()",
     "NotForwarded: pyroute2 would open a netlink socket (AsyncIPRoute) in the kernel, which is not the lab"),
    ("from pyroute2 import netns\nnetns.setns('ns1')", "NotForwarded: pyroute2.netns.setns does not run in a plain cell"),
    ("from pyroute2 import IPRoute\nIPRoute().link_lookup(lambda link: True)",
     "NotForwarded: IPRoute.link_lookup's arguments cannot cross to the lab's VM"),
])
def test_what_is_not_forwarded_is_one_line(kernel, cell, line):
    r = kernel.run(cell)
    assert r.error is not None and r.error[0] == "NotForwarded", r
    assert len(r.traceback) == 1 and r.traceback[0].startswith(line), r.traceback
