"""How ``%docker`` changes the lab host's firewall: one ``iptables-restore --noflush``, all or nothing.

Pure tests of the rule model's diff (netlab_magic.linux.iptables), then real kernels: a change is
one ``iptables-save`` (what is there) and one ``iptables-restore --noflush`` (the change, on
stdin); a change that fails midway, after one table was committed, leaves every rule and counter
as it was; rules a learner added by hand stay where they are. Every packet stays in the lab.
"""

from __future__ import annotations

import re

from netlab_magic.docker.daemon import Daemon
from netlab_magic.docker.rules import build
from netlab_magic.linux.iptables import Command, Tables, diff, effective, restore_payload

# -- the rule model: from one state to another ------------------------------------------------------


def test_payload_is_one_block_per_table_in_order():
    cmds = [Command("nat", "-I", "POSTROUTING", "-s 10.0.0.0/24 -j MASQUERADE"),
            Command("filter", "-N", "X"), Command("nat", "-A", "DOCKER", "-j RETURN"),
            Command("filter", "-I", "X", "-j DROP", position=2), Command("filter", "-P", "FORWARD", "DROP")]
    assert restore_payload(cmds) == (
        "*nat\n-I POSTROUTING -s 10.0.0.0/24 -j MASQUERADE\n-A DOCKER -j RETURN\nCOMMIT\n"
        "*filter\n-N X\n-I X 2 -j DROP\n-P FORWARD DROP\nCOMMIT\n")


def test_effective_checks_like_libnetwork_and_counts_the_learners_rules():
    real = Tables.parse("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [3:180]\n:OUTPUT ACCEPT [0:0]\n"
                        ":DOCKER - [0:0]\n[1:60] -A FORWARD -j MINE\n[0:0] -A FORWARD -j DOCKER\nCOMMIT\n")
    got = effective([Command("filter", "-N", "DOCKER"),  # exists: not made again
                     Command("filter", "-A", "FORWARD", "-j DOCKER"),  # there: not added again
                     Command("filter", "-D", "FORWARD", "-j GONE"),  # not there: not deleted
                     Command("filter", "-P", "FORWARD", "DROP"),  # already
                     Command("filter", "-I", "FORWARD", "-o br0 -j ACCEPT", after="-j DOCKER")], real)
    assert [c.line() for c in got] == ["-I FORWARD 3 -o br0 -j ACCEPT"]  # after DOCKER, counting MINE


def test_diff_of_a_removed_network_deletes_exactly_its_rules():
    d = Daemon(userland_proxy=False)
    d.network_create("one")
    before = build(d)
    d.network_rm("one")
    cmds = diff(before, build(d))
    assert cmds and all(c.op == "-D" and "br-" in c.rule for c in cmds)
    assert all(d.networks["bridge"].bridge not in c.rule for c in cmds)


# -- in a real lab -------------------------------------------------------------------------------------


def save_with_counters(k) -> list[tuple[str, int]]:
    """iptables-save: each line without its counters, and the packets it counted."""
    out = []
    for ln in k.ok("!iptables-save --counters").stdout.splitlines():
        m = re.fullmatch(r"(?:\[(\d+):\d+\] )?(.*?)(?: \[(\d+):\d+\])?", ln)
        if not ln.startswith("#"):
            out.append((m[2], int(m[1] or m[3] or 0)))
    return out


def same_rules_counters_kept(after, before) -> bool:
    """The same lines in the same order, and no counter went back (the host itself may talk
    meanwhile: an IGMP report out of a bridge is counted, so counters may only grow)."""
    return [t for t, _ in after] == [t for t, _ in before] and all(
        a >= b for (_, a), (_, b) in zip(after, before))


RECORD = """
from netlab_magic.docker import firewall as _fw
_calls = []
_orig_iptables = _fw.Firewall._iptables
def _recording(self, argv, stdin=None, check=True):
    _calls.append((argv, stdin))
    return _orig_iptables(self, argv, stdin, check)
_fw.Firewall._iptables = _recording
"""


def test_a_change_is_one_iptables_restore_on_stdin(lab):
    lab.ok("%docker ps")
    lab.ok(RECORD)
    try:
        lab.ok("%docker network create dummy1")
        calls = lab.value("[a for a, _ in _calls]")
        payload = lab.value("_calls[1][1]")
    finally:
        lab.ok("_fw.Firewall._iptables = _orig_iptables")
    assert calls == [["iptables-save", "--counters"], ["iptables-restore", "--noflush"]]
    assert payload.startswith("*nat\n") and "*filter\n" in payload and payload.count("COMMIT") == 2
    assert "-I FORWARD -j DOCKER-USER" in payload


def test_a_change_that_fails_midway_leaves_the_rules_as_they_were(lab):
    """The nat table is committed, then the filter table fails: the nat table is put back."""
    for cell in ("%docker network create dummy1", "%docker run --network=dummy1 --name=c1 -d busybox",
                 "%docker exec c1 ping -c 1 -W 1 172.18.0.1"):
        lab.ok(cell)
    before = save_with_counters(lab)
    lab.ok("from netlab_magic.docker import bridge20 as _b\n_orig_create = _b.network\n"
           "def _broken(t, net, hairpin):\n    _orig_create(t, net, hairpin)\n"
           "    t.append('filter', 'FORWARD', '-j NO-SUCH-CHAIN')\n_b.network = _broken")
    try:
        r = lab.run("%docker network create dummy2")
    finally:
        lab.ok("_b.network = _orig_create")
    assert r.usage_error and r.usage_error.startswith("Error response from daemon: iptables failed: ")
    assert "Traceback" not in r.stdout + r.stderr
    assert any(n for _, n in before)  # the ping was counted: a put-back without counters would show
    assert same_rules_counters_kept(save_with_counters(lab), before)  # every table
    assert len(lab.ok("!ip -br link show type bridge").stdout.splitlines()) == 2  # docker0, dummy1's
    assert [ln.split()[1] for ln in lab.ok("%docker network ls").stdout.splitlines()[1:]] == ["bridge", "dummy1"]
    lab.ok("%docker network create dummy2")  # and the same change works once the bug is gone
    assert "-A DOCKER-ISOLATION-STAGE-2 -o br-" in lab.ok("!iptables -S DOCKER-ISOLATION-STAGE-2").stdout


def test_rules_added_by_hand_stay_where_they_are(lab):
    lab.ok("%docker network create dummy1")
    lab.ok("!iptables -I FORWARD 3 -s 192.0.2.9 -j DROP")
    lab.ok("!iptables -t nat -I DOCKER -p tcp --dport 8889 -j DNAT --to-destination 172.17.0.9:80")
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    lab.ok("%docker rm -f nginx")
    lab.ok("%docker network rm dummy1")
    forward = lab.ok("!iptables -S FORWARD").stdout
    assert "-A FORWARD -s 192.0.2.9/32 -j DROP" in forward
    assert re.search(r"--dport 8889 -j DNAT", lab.ok("!iptables -t nat -S DOCKER").stdout.splitlines()[1])
