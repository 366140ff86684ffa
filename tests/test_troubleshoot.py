"""Notebook 07's broken labs: each is broken as its story says, its solution fixes it, and a
catch-all "fix" (policy ACCEPT, a rule accepting everything, br_netfilter off) does not pass."""

from __future__ import annotations

import pytest

SOLUTIONS = {
    "link-down": ["!ip link set dev veth2 up"],
    "no-address": ["!ip addr add 10.0.0.2/24 dev veth2"],
    "wrong-subnet": ["%netns ns3 ip addr del 10.0.1.3/24 dev veth3 && ip addr add 10.0.0.3/24 dev veth3"],
    "forward-drop": ["!iptables -I FORWARD -o bridge0 -j ACCEPT"],
    "after-return": ["!iptables -D DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                     "!iptables -D DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack "
                     "--ctstate RELATED,ESTABLISHED -j ACCEPT",
                     "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                     "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack "
                     "--ctstate RELATED,ESTABLISHED -j ACCEPT"],
    "no-forwarding": ["!sysctl -w net.ipv4.ip_forward=1"],
    "no-route-back": ["%netns ns2 ip route add default via 10.2.0.254"],
}
CATCH_ALLS = [
    ("forward-drop", "!iptables -P FORWARD ACCEPT"),
    ("forward-drop", "!iptables -A FORWARD -j ACCEPT"),
    ("forward-drop", "!sysctl -w net.bridge.bridge-nf-call-iptables=0"),
    ("after-return", "!iptables -F DOCKER-ISOLATION-STAGE-2"),
    ("after-return", "!iptables -I DOCKER-USER -j ACCEPT"),
    ("wrong-subnet", "%netns ns3 ip addr add 10.0.0.3/24 dev veth3"),  # the wrong address is left behind
]
TROUBLE = "__import__('netlab_magic.troubleshoot', fromlist=['x'])"


def results(k, name: str) -> list[bool]:
    return k.value(f"[c.ok for c in {TROUBLE}.fixed({name!r})]")


@pytest.mark.parametrize("name", list(SOLUTIONS))
def test_broken_then_fixed(lab, name):
    story = lab.ok(f"{TROUBLE}.broken({name!r})").stdout
    assert story.startswith(f"[{name}] ")
    assert not all(results(lab, name)), "the lab must start broken"
    for cell in SOLUTIONS[name]:
        lab.ok(cell)
    lab.ok("import time; time.sleep(0.5)")  # links settle
    assert all(results(lab, name)), lab.value(f"[str(c) for c in {TROUBLE}.fixed({name!r})]")


@pytest.mark.parametrize("name, cell", CATCH_ALLS)
def test_a_catch_all_is_not_a_fix(lab, name, cell):
    lab.ok(f"{TROUBLE}.broken({name!r})")
    lab.ok(cell)
    assert not all(results(lab, name))


def test_an_unknown_lab_is_one_line(lab):
    r = lab.run(f"{TROUBLE}.broken('nope')")
    assert r.error and r.error[0] == "NotFound" and "there are: link-down, no-address" in r.error[1]
