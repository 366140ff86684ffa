"""Notebook 07's broken labs, root and rootless: each is broken as its story says and its solution
(the notebook's) fixes it; the checks need the lab broken() built; a bad name is one line.
(Many forms of each fix, and gaming answers: tests/test_troubleshoot_answers.py.)"""

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
    "dnat-only": ["!iptables -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT"],
    "localnet-off": ["!sysctl -w net.ipv4.conf.docker0.route_localnet=1"],
    "stateless-reply": ["!iptables -R DOCKER-USER 1 -s 172.19.0.0/16 -d 172.18.0.0/16 "
                        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"],
    "rp-strict": ["!sysctl -w net.ipv4.conf.veth8.rp_filter=2"],
    "stale-nat": ["!conntrack -D -p udp --dport 5140"],
    "raw-drop": ["!iptables -t raw -I PREROUTING -s 203.0.113.0/24 -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT"],
}
TROUBLE = "__import__('netlab_magic.troubleshoot', fromlist=['x'])"


def results(k, name: str) -> list[str]:
    return k.value(f"[str(c) for c in {TROUBLE}.fixed({name!r})]")


@pytest.mark.parametrize("name", list(SOLUTIONS))
def test_broken_then_fixed(kernel, name):
    story = kernel.ok(f"{TROUBLE}.broken({name!r})").stdout
    assert story.startswith(f"[{name}] ")
    for cell in SOLUTIONS[name]:
        kernel.ok(cell)
    lines = results(kernel, name)
    assert all(line.startswith("\u2714") for line in lines), lines


def test_the_checks_need_the_lab_broken_first(kernel):
    kernel.ok("%netlab reset")
    assert results(kernel, "no-route-back") == [
        "\u2718 the lab is the one broken('no-route-back') built \u2014 the lab was reset or rebuilt since: "
        "run broken('no-route-back') again"]


def test_an_unknown_lab_is_one_line(kernel):
    r = kernel.run(f"{TROUBLE}.broken('nope')")
    assert r.error and r.error[0] == "NotFound" and "there are: link-down, no-address" in r.error[1]
