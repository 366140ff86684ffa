"""The widgets on the real lab, in a real kernel: the model follows what cells do."""

from __future__ import annotations

import time


def poll(k, expr: str, want, timeout: float = 5.0):
    deadline = time.time() + timeout
    while True:
        got = k.value(expr)
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.2)


def test_topology_follows_cells(lab):
    lab.ok("from netlab_magic.widgets import topology\nw = topology(interval=0.2)")
    lab.ok("!ip netns add ns1\n!ip link add veth1 type veth peer name veth2 netns ns1")
    names = "[n['name'] for n in w.snapshot['namespaces']]"
    assert poll(lab, names, ["host", "ns1"]) == ["host", "ns1"]
    state = "[i['state'] for i in w.snapshot['namespaces'][0]['interfaces'] if i['name'] == 'veth1']"
    lab.ok("!ip link set veth1 up")
    assert poll(lab, state, ["LOWERLAYERDOWN"]) in (["LOWERLAYERDOWN"], ["DOWN"])
    lab.ok("%netns ns1 ip link set veth2 up")
    assert poll(lab, state, ["UP"]) == ["UP"]
    lab.ok("w.close()")
    n = lab.value("w.refreshes")
    time.sleep(0.6)
    assert lab.value("w.refreshes") == n  # the poller stopped with the widget


def test_counters_follow_traffic(lab):
    lab.ok("!ip link add veth1 type veth peer name veth2 && ip addr add 10.9.0.1/24 dev veth1 && "
           "ip link set veth1 up && ip link set veth2 up && iptables -A OUTPUT -d 10.9.0.2 -j ACCEPT")
    lab.ok("from netlab_magic.widgets import counters\nc = counters('host', interval=0.2)")
    rule = "[r['packets'] for ch in c.chains if ch['name'] == 'OUTPUT' for r in ch['rules']]"
    assert lab.value(rule) == [0]
    lab.run("!ping -c 2 -i 0.2 -W 1 10.9.0.2")  # nobody answers; the packets still leave
    got = poll(lab, rule, [2])
    assert got and got[0] >= 2, got
    lab.ok("c.close()")
