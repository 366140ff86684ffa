"""netlab_magic.docker.verdict: what a rule set decides for a packet in words, following jumps.

Pure: Docker's own rules (the model, :func:`netlab_magic.docker.rules.build`) and learners'
answers written as ``iptables-save`` lines; no kernel. The same answers are judged on real
kernels by tests/test_docker_checks.py.
"""

from __future__ import annotations

import pytest

from netlab_magic.docker import rules
from netlab_magic.docker.daemon import Daemon
from netlab_magic.linux.iptables import Tables
from netlab_magic.docker.verdict import Flow, decide


def demo3(version: str = "20.10") -> tuple[Tables, dict[str, str]]:
    """Notebook 04's lab: networks dummy1 and dummy2, a container in each and c0 on the default one."""
    d = Daemon(version=version)
    for net in ("dummy1", "dummy2"):
        d.network_create(net)
    for name, net in (("dummy1", "dummy1"), ("dummy2", "dummy2"), ("c0", "bridge")):
        d.run(name, network=net)
    return rules.build(d), {n: d.networks[n].bridge for n in d.networks}


def with_rules(tables: Tables, *lines: str) -> Tables:
    """``tables`` after the commands ``lines`` (``-N``, ``-A``, ``-I`` to the top; ``-t TABLE`` if not filter), in order."""
    t = Tables.parse(tables.save())
    for line in lines:
        words = line.split()
        table = words[words.index("-t") + 1] if "-t" in words else "filter"
        if "-t" in words:
            i = words.index("-t")
            del words[i:i + 2]
        op, chain, rule = words[0], words[1], " ".join(words[2:])
        if op == "-N":
            t.new_chain(table, chain)
        elif op == "-A":
            t.chains[table][chain].append(rule)
        else:
            t.chains[table][chain].insert(0, rule)
    return t


def flow(br: dict[str, str], src: str, dst: str, **kw) -> Flow:
    ips = {"dummy1": "172.18.0.2", "dummy2": "172.19.0.2", "bridge": "172.17.0.2"}
    return Flow(ips[src], ips[dst], br[src], br[dst], **kw)


def test_docker_drops_between_networks_and_lets_one_network_talk_inside():
    t, br = demo3()
    assert decide(t, "filter", "FORWARD", flow(br, "dummy1", "dummy2")).verdict == "DROP"
    d = decide(t, "filter", "FORWARD", flow(br, "dummy1", "dummy2"))
    assert d.chain == rules.ISOLATION_2 and d.rule == f"-A {rules.ISOLATION_2} -o {br['dummy2']} -j DROP"
    inside = Flow("172.18.0.3", "172.18.0.2", br["dummy1"], br["dummy1"])
    assert decide(t, "filter", "FORWARD", inside).verdict == "ACCEPT"


@pytest.mark.parametrize("answer, new_back_opens", [
    (["-I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
      "-I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"], False),
    (["-I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
      "-I DOCKER-USER -m state --state RELATED,ESTABLISHED -j ACCEPT"], False),
    (["-I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT", "-I DOCKER-USER -m conntrack --ctdir REPLY -j ACCEPT"],
     False),
    (["-I DOCKER-USER -m comment --comment \"dummy1 to dummy2 only\" -j ACCEPT"], True),
    (["-I DOCKER-USER -d 0.0.0.0/1 -j ACCEPT", "-I DOCKER-USER -d 128.0.0.0/1 -j ACCEPT"], True),
    (["-N MINE", "-A MINE -j ACCEPT", "-I DOCKER-USER -j MINE"], True),
    (["-I DOCKER-USER -m iprange --src-range 172.18.0.0-172.18.255.255 -d 172.19.0.0/16 -j ACCEPT"], False),
    (["-I DOCKER-USER -m iprange --src-range 172.16.0.0-172.31.255.255 -j ACCEPT"], True),
    (["-I DOCKER-USER -s 172.19.0.0/16 -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT"], False),
], ids=["conntrack", "state", "ctdir", "comment", "split-halves", "own-chain", "iprange", "iprange-wide", "not-syn"])
def test_a_new_connection_back_is_judged_by_what_the_rules_match(answer, new_back_opens):
    t, br = demo3()
    t = with_rules(t, *answer)
    back = decide(t, "filter", "FORWARD", flow(br, "dummy2", "dummy1"))
    assert (back.verdict == "ACCEPT") == new_back_opens, back
    if not new_back_opens and "172.18.0.0/16 -d 172.19" in answer[0]:  # the answers come back
        answer_back = flow(br, "dummy2", "dummy1", ctstate="ESTABLISHED", ctdir="REPLY", tcp_flags=0x10)
        assert decide(t, "filter", "FORWARD", answer_back).verdict == "ACCEPT"


def test_a_tcp_flags_rule_lets_a_lone_ack_through():
    t, br = demo3()
    t = with_rules(t, "-I DOCKER-USER -s 172.19.0.0/16 -p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT")
    assert decide(t, "filter", "FORWARD", flow(br, "dummy2", "dummy1", tcp_flags=0x10)).verdict == "ACCEPT"
    assert decide(t, "filter", "FORWARD", flow(br, "dummy2", "dummy1", tcp_flags=0x02)).verdict == "DROP"


def test_docker_28_drops_direct_access_in_raw():
    t, br = demo3("28.5")
    d = decide(t, "raw", "PREROUTING", flow(br, "dummy1", "dummy2"))
    assert d.verdict == "DROP" and d.rule == f"-A PREROUTING -d 172.19.0.2/32 ! -i {br['dummy2']} -j DROP"
    t = with_rules(t, "-t raw -I PREROUTING -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT")
    assert decide(t, "raw", "PREROUTING", flow(br, "dummy1", "dummy2")).verdict == "ACCEPT"
    assert decide(t, "raw", "PREROUTING", flow(br, "dummy2", "dummy1")).verdict == "DROP"


def test_an_unknown_match_is_said_and_counted_as_open():
    t, br = demo3()
    t = with_rules(t, "-I DOCKER-USER -m physdev --physdev-in veth1234 -j ACCEPT")
    d = decide(t, "filter", "FORWARD", flow(br, "dummy2", "dummy1"))
    assert d.verdict == "ACCEPT" and d.unknown == ("--physdev-in",)
