"""pyroute2's documented synchronous examples, unchanged, in the cells of a real netlab kernel."""

from __future__ import annotations

import json

from support.pyroute2_cells import ASYNC_CELL, GONE_CELL, HOST_CELL, IN_NS1_CELL, NETNS_CELL


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
