"""pyroute2's documented synchronous examples, as cells of a netlab kernel (test_pyroute2_cells.py
runs them all; test_packaging.py runs three in the kernel a wheel installs)."""

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
