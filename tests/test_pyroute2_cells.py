"""pyroute2's documented synchronous examples, unchanged, in the cells of a real netlab kernel."""

from __future__ import annotations

import json

# pyroute2's own examples (docs: "IPRoute module", "Network namespaces"), with the lab's names
HOST_CELL = """\
from pyroute2 import IPRoute
with IPRoute() as ipr:
    ipr.link('add', ifname='veth1', kind='veth', peer='veth2')
    idx = ipr.link_lookup(ifname='veth1')[0]
    ipr.addr('add', index=idx, address='10.0.0.1', prefixlen=24)
    ipr.link('set', index=idx, state='up')
    print(sorted(link.get('ifname') for link in ipr.get_links()))
"""

NETNS_CELL = """\
from pyroute2 import NetNS
with NetNS('ns1') as ns:                 # made by pyroute2 (flags=os.O_CREAT), as `ip netns add ns1`
    print(sorted(link.get('ifname') for link in ns.get_links()))
with IPRoute() as ipr:
    ipr.link('set', index=ipr.link_lookup(ifname='veth2')[0], net_ns_fd='ns1')
"""

IN_NS1_CELL = """\
%%netns ns1 --python
from pyroute2 import IPRoute
with IPRoute() as ipr:
    idx = ipr.link_lookup(ifname='veth2')[0]
    ipr.addr('add', index=idx, address='10.0.0.2', prefixlen=24)
    ipr.link('set', index=idx, state='up')
    ipr.route('add', dst='10.9.0.0/24', gateway='10.0.0.1')
    print(sorted(link.get('ifname') for link in ipr.get_links()))
"""

ASYNC_CELL = """\
from pyroute2 import AsyncIPRoute
async with AsyncIPRoute() as ipr:
    names = sorted([link.get('ifname') async for link in await ipr.get_links()])
print(names)
"""

GONE_CELL = """\
import json, time
for _ in range(100):                     # the kernel removes a namespace's veths a moment later
    with IPRoute() as ipr:
        names = [link.get('ifname') for link in ipr.get_links()]
    if 'veth1' not in names:
        break
    time.sleep(0.05)
print(json.dumps(names))
"""


def test_pyroute2_examples_act_on_the_lab_and_hold_nothing(lab):
    # on the lab's host: the machine's interfaces are not there to see
    assert lab.ok(HOST_CELL).stdout.strip() == "['lo', 'veth1', 'veth2']"
    assert "10.0.0.1/24" in lab.ok("!ip -br addr show veth1").stdout
    assert lab.ok(NETNS_CELL).stdout.strip() == "['lo']"
    assert lab.ok("!ip netns list").stdout.split()[0] == "ns1"
    # inside %%netns ns1 --python: ns1's links; the route is ns1's, and packets cross the pair
    assert lab.ok(IN_NS1_CELL).stdout.strip() == "['lo', 'veth2']"
    assert "10.9.0.0/24 via 10.0.0.1 dev veth2" in lab.ok("%netns ns1 ip route").stdout
    assert "1 received" in lab.ok("%netns ns1 ping -c 1 -W 2 10.0.0.1").stdout
    assert "10.9.0.0" not in lab.ok("!ip route").stdout
    # the async API still runs on the kernel's own loop, with top-level await
    assert lab.ok(ASYNC_CELL).stdout.strip() == "['lo', 'veth1']"
    # nothing held open: deleting ns1 frees it, and its veth2 takes veth1 away with it
    lab.ok("!ip netns del ns1")
    gone = lab.ok(GONE_CELL)
    assert json.loads(gone.stdout.strip().splitlines()[-1]) == ["lo"]
