"""netlab_magic.changes on real labs: every kind of change is seen and said in one line, what an
exercise allows passes, the rest is named; looking at the lab (ping, trace, iptables -L) is no change."""

from __future__ import annotations

CHANGES = "__import__('netlab_magic.changes', fromlist=['x'])"
#: Demo 2's bridge (notebook 07's), ns3 on it, a FORWARD policy and a chain of the lab's own.
LAB_EXTRA = """
ip netns exec ns3 ip addr add 10.0.0.3/24 dev veth3
iptables -P FORWARD DROP
iptables -N KEEP
iptables -A KEEP -j RETURN
"""
EVERYTHING = """
iptables -A FORWARD -o bridge0 -j ACCEPT
iptables -P FORWARD ACCEPT
iptables -N MINE
iptables -t raw -A PREROUTING -s 10.0.0.3 -j ACCEPT
iptables -D KEEP -j RETURN
sysctl -qw net.ipv4.conf.all.rp_filter=2
echo 1 > /proc/sys/net/ipv4/ip_forward
ip link add veth5 type veth peer name veth6
ip link set veth5 netns ns1
ip link set veth6 netns ns3
ip link set veth4 nomaster
ip link set dev veth2 down
ip netns exec ns3 ip addr add 10.0.1.3/24 dev veth3
ip netns exec ns3 ip route add default via 10.0.0.10
ip netns add ns9
"""


def build(k) -> None:
    k.ok(f"_c = {CHANGES}; _lab = __import__('netlab_magic').Lab.current()\n"
         "from netlab_magic.troubleshoot.labs import BRIDGE as _BRIDGE\n"
         f"_lab.run('host', 'set -e\\n' + _BRIDGE + {LAB_EXTRA!r}, check=True); _before = _c.record(_lab)")


def test_every_kind_of_change_is_one_line(lab):
    build(lab)
    lab.ok(f"_lab.run('host', 'set -e\\n' + {EVERYTHING!r}, check=True)")
    # an nf_tables table of one's own (nft is not installed: the project's own socket makes it)
    lab.ok("from netlab_magic.linux import nftables as _nft\n"
           "with _lab.entered('host'): _sock = _nft.Nft()\n"
           "_sock.add_trace_table(_nft.NFPROTO_INET, 'mine', [])")
    changes = [tuple(c) for c in lab.value("[(c.subject, c.line) for c in _c.compare(_before, _c.record(_lab))]")]
    rp_before = lab.value("_before.sysctls['host']['net.ipv4.conf.all.rp_filter']")
    assert sorted(changes) == sorted([
        ("netns ns9", "a new namespace ns9"),
        ("cable ns1 ns3", "a new cable (veth pair) joins ns1 and ns3 (veth5 in ns1, veth6 in ns3)"),
        ("link host veth2", "veth2 in the host was set down"),
        ("link host veth4", "veth4 in the host left bridge0"),
        ("link ns3 veth3", "veth3 in ns3: new address 10.0.1.3/24"),
        ("route ns3", "a new route in ns3: default via 10.0.0.10 dev veth3"),
        ("sysctl host net.ipv4.ip_forward", "net.ipv4.ip_forward in the host changed 0 -> 1"),
        ("sysctl host net.ipv4.conf.all.rp_filter",
         f"net.ipv4.conf.all.rp_filter in the host changed {rp_before} -> 2"),
        ("iptables host filter FORWARD", "filter FORWARD: policy DROP -> ACCEPT"),
        ("iptables host filter FORWARD", "filter FORWARD: rule added `-A FORWARD -o bridge0 -j ACCEPT`"),
        ("iptables host filter KEEP", "filter KEEP: rule deleted `-A KEEP -j RETURN`"),
        ("iptables host filter MINE", "a new chain of your own, filter MINE"),
        ("iptables host raw PREROUTING", "raw PREROUTING: rule added `-A PREROUTING -s 10.0.0.3/32 -j ACCEPT`"),
        ("nftables host mine", "a new nf_tables table in the host: inet mine"),
    ]), changes
    lab.ok("_sock.close()")


def test_looking_is_no_change_and_what_is_allowed_passes(lab):
    build(lab)
    # reading the lab: ping both ways, a trace (its own nf_tables tables, gone after), iptables -L of
    # a table not loaded yet (iptables-nft makes it, empty), conntrack's table filling
    lab.ok("_lab.run('ns1', 'ping -c1 -W1 10.0.0.3; iptables -t raw -L -n; iptables -t mangle -S', check=False)\n"
           "_lab.trace('ns3', 'ping -c 1 -W 1 10.0.0.1')")
    assert lab.value("[c.line for c in _c.compare(_before, _c.record(_lab))]") == []
    lab.ok("_lab.run('host', 'iptables -I FORWARD -i bridge0 -o bridge0 -j ACCEPT; "
           "sysctl -qw net.ipv4.conf.veth4.rp_filter=0', check=True)")
    allowed = ("_c.Allowed(['iptables host filter FORWARD', 'sysctl host net.ipv4.conf.veth*.rp_filter'], "
               "task='filter FORWARD and one port\\'s rp_filter')")
    assert lab.value(f"str(_c.check_changes(_before, {allowed}))") == \
        "\u2714 only filter FORWARD and one port's rp_filter changed"


def test_what_is_not_allowed_is_named_with_the_exercise_s_reason(lab):
    build(lab)
    lab.ok("_lab.run('host', 'iptables -N MINE; "
           "iptables -A MINE -j ACCEPT; iptables -I FORWARD -j MINE; "
           "sysctl -qw net.ipv4.conf.all.rp_filter=2', check=True)")
    allowed = ("_c.Allowed(['iptables host filter FORWARD'], task='filter FORWARD', "
               "why={'sysctl host net.ipv4.conf.all.*': 'only veth4\\'s needed changing'})")
    line = lab.value(f"str(_c.check_changes(_before, {allowed}))")
    assert line.startswith("\u2718 only filter FORWARD changed \u2014 you also changed: ")
    assert "a new chain of your own, filter MINE (and 2 more changes not asked for)" in line \
        or "only veth4's needed changing" in line, line
    refused = lab.value(f"{allowed}.refused(_c.compare(_before, _c.record(_lab)))")
    assert "a new chain of your own, filter MINE" in refused
    assert "filter MINE: rule added `-A MINE -j ACCEPT`" in refused
    assert any(r.startswith("net.ipv4.conf.all.rp_filter in the host changed")
               and r.endswith(": only veth4's needed changing") for r in refused), refused
    assert len(refused) == 3, refused
