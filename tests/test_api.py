"""The Python API in a real kernel: every operation, checked against what `ip` itself reports."""

from __future__ import annotations

import json


SETUP = "from netlab_magic import Lab\nlab = Lab.current()\n"


def api(k, code: str):
    return k.ok(SETUP + code)


def ip_json(k, netns: str, args: str):
    out = k.ok(f"%netns {netns} ip -j {args}").stdout
    return json.loads(out)


def test_demo2_bridge_built_through_the_api(lab):
    api(lab, """
for ns, veth, peer, ip in (("ns1", "veth1", "veth2", "10.0.0.1/24"), ("ns3", "veth3", "veth4", "10.0.0.3/24")):
    n = lab.add_netns(ns)
    lab.host.add_veth(peer, peer=veth, peer_netns=n)
    n.addr_add(veth, ip); n.link_up(veth); n.link_up("lo")
    lab.host.link_up(peer)
lab.host.add_bridge("bridge0")
lab.host.addr_add("bridge0", "10.0.0.10/24")
lab.host.link_up("bridge0")
lab.host.link_set_master("veth2", "bridge0")
lab.host.link_set_master("veth4", "bridge0")
""")
    links = {link["ifname"]: link for link in ip_json(lab, "host", "link show")}
    assert links["veth2"]["master"] == "bridge0" and links["veth4"]["master"] == "bridge0"
    routes = lab.ok("%netns host ip route").stdout
    assert "10.0.0.0/24 dev bridge0 proto kernel scope link src 10.0.0.10" in routes
    assert "1 received" in lab.ok("%netns ns1 ping -c 1 -W 2 10.0.0.3").stdout

    snap = lab.value("""[(n.name, [(i.name, i.kind, i.state, [a for a in i.addresses if '.' in a], i.master,
        i.peer and [i.peer.netns, i.peer.ifname]) for i in n.interfaces if i.name != 'lo'],
        [str(r) for r in n.routes]) for n in Lab.current().snapshot().namespaces]""")
    host, ns1, ns3 = snap
    assert host[0] == "host"
    assert ["bridge0", "bridge", "UP", ["10.0.0.10/24"], None, None] in host[1]
    assert ["veth2", "veth", "UP", [], "bridge0", ["ns1", "veth1"]] in host[1]
    assert ns1 == ["ns1", [["veth1", "veth", "UP", ["10.0.0.1/24"], None, ["host", "veth2"]]],
                   ["10.0.0.0/24 dev veth1 proto kernel scope link src 10.0.0.1"]]
    assert ns3[1][0][5] == ["host", "veth4"]


def test_snapshot_state_is_what_ip_link_shows(lab):
    """Demo 1.5's half-up veth, and a kernel quirk worth knowing.

    Kernel 6.x (link_watch.c, default_operstate) calls a veth without carrier LOWERLAYERDOWN
    only if the device that has the peer's *index* in the veth's own namespace exists and has
    no carrier either; otherwise plain DOWN. The snapshot must agree with `ip link show` either
    way, at once, without waiting for the kernel's link watcher.
    """
    api(lab, "lab.host.add_veth('a', peer='b'); lab.host.link_up('a')")  # host index 2: up, no carrier
    api(lab, "n = lab.add_netns('ns3')\nlab.host.add_veth('veth4', peer='veth3', peer_netns=n)\nlab.host.link_up('veth4')")
    assert lab.value("Lab.current().netns('ns3').read().interface('veth3').index") == 2
    state = lab.value("Lab.current().snapshot()['host'].interface('veth4').state")
    assert state == ip_json(lab, "host", "link show veth4")[0]["operstate"] == "LOWERLAYERDOWN"
    api(lab, "lab.netns('ns3').link_up('veth3')")
    assert lab.value("Lab.current().snapshot()['host'].interface('veth4').state") == "UP"


def test_addresses_routes_and_moves(lab):
    api(lab, """
n = lab.add_netns("red")
lab.host.add_veth("a", peer="b")
lab.host.link_set_netns("b", "red")
n.addr_add("b", "192.0.2.2/24"); n.link_up("b")
lab.host.addr_add("a", "192.0.2.1/24"); lab.host.link_up("a")
n.route_add("default", via="192.0.2.1")
n.route_add("198.51.100.0/24", dev="b")
""")
    routes = lab.ok("%netns red ip route").stdout
    assert "default via 192.0.2.1 dev b" in routes
    assert "198.51.100.0/24 dev b scope link" in routes
    api(lab, "lab.netns('red').route_del('198.51.100.0/24', dev='b')\nlab.netns('red').addr_flush('b')")
    assert "198.51.100.0/24" not in lab.ok("%netns red ip route").stdout
    assert ip_json(lab, "red", "addr show dev b")[0]["addr_info"] == [] or all(
        a["family"] == "inet6" for a in ip_json(lab, "red", "addr show dev b")[0]["addr_info"])
    api(lab, "lab.host.link_down('a')")
    assert "state DOWN" in lab.ok("%netns host ip link show a").stdout
    api(lab, "lab.host.link_del('a')")
    assert lab.value("[i.name for i in Lab.current().netns('red').read().interfaces]") == ["lo"]


def test_sysctl_is_per_namespace(lab):
    api(lab, "lab.add_netns('r1')\nprint(lab.netns('r1').sysctl('net.ipv4.ip_forward', 1))")
    assert lab.ok("%netns r1 cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    assert lab.ok("%netns host cat /proc/sys/net/ipv4/ip_forward").stdout.strip() == "0"
    assert lab.value("Lab.current().host.sysctl('net.ipv4.ip_forward')") == "0"


def test_list_and_delete_namespaces(lab):
    api(lab, "lab.add_netns('b2'); lab.add_netns('a1')")
    assert lab.value("Lab.current().list_netns()") == ["a1", "b2"]
    assert lab.ok("!ip netns list").stdout.split() == ["b2", "a1"] or set(
        lab.ok("!ip netns list").stdout.split()) == {"a1", "b2"}
    api(lab, "lab.del_netns('a1')")
    assert lab.ok("!ip netns list").stdout.split() == ["b2"]
    lab.ok("!ip netns del b2")
    assert lab.value("Lab.current().list_netns()") == []


def test_run_and_check(lab):
    r = lab.value("(lambda r: [r.returncode, r.stdout])(__import__('netlab_magic').Lab.current().run('host', 'echo hi; exit 4'))")
    assert r == [4, "hi\n"]
    reply = lab.run(SETUP + "lab.run('host', 'exit 2', check=True)")
    assert reply.error[0] == "CommandFailed"


def test_unload_gives_the_kernel_back_and_reload_makes_a_new_lab(fresh_kernel):
    k = fresh_kernel
    inode = k.value("__import__('os').stat('/proc/thread-self/ns/net').st_ino")
    k.ok("%unload_ext netlab_magic")
    after = k.value("__import__('os').stat('/proc/thread-self/ns/net').st_ino")
    assert after != inode  # back in the namespace the kernel started in
    k.ok("%load_ext netlab_magic")
    assert k.ok("!ip netns list; ip -o link show | wc -l").stdout.split() == ["1"]


def test_run_from_another_thread_comes_back(lab):
    """A widget's refresh thread may run commands in the lab (e.g. iptables-save -c)."""
    r = api(lab, """
import os, threading
lab.add_netns('ns5')
seen = []
def refresh():
    here = lambda: os.stat('/proc/thread-self/ns/net').st_ino
    seen.extend([here(), lab.run('ns5', 'echo in ns5').stdout, here()])
t = threading.Thread(target=refresh); t.start(); t.join()
print(seen[1].strip(), seen[0] == seen[2])
""")
    assert r.stdout.strip() == "in ns5 True"


def test_the_snapshot_reads_what_ip_reads(lab):
    """The raw netlink reader against iproute2's own JSON, namespace by namespace, link by link;
    then again after every kind of change, so that what the reader remembers between reads (the
    part of a link message before its counters) is shown never to hide a change."""
    lab.ok("!ip netns add ns1; ip netns add ns2; ip netns add ns3")
    lab.ok("!ip link add veth1 type veth peer name veth2 netns ns1; ip link add br0 type bridge")
    lab.ok("!ip link add a type veth peer name b netns ns2; ip -n ns2 link add c type veth peer name d netns ns3")
    lab.ok("!ip link set veth1 master br0; ip link set veth1 up; ip link set br0 up; ip addr add 10.0.0.10/24 dev br0")
    lab.ok("!ip -n ns1 addr add 10.0.0.1/24 dev veth2; ip -n ns1 link set veth2 up; ip -n ns1 link set lo up")
    lab.ok("!ip -n ns1 route add default via 10.0.0.10; ip -n ns2 link set c up; ip -n ns2 link add dummy0 type dummy")
    peers = {("host", "veth1"): ["ns1", "veth2"], ("ns1", "veth2"): ["host", "veth1"], ("host", "a"): ["ns2", "b"],
             ("ns2", "b"): ["host", "a"], ("ns2", "c"): ["ns3", "d"], ("ns3", "d"): ["ns2", "c"]}
    assert_snapshot_is_what_ip_shows(lab, ["host", "ns1", "ns2", "ns3"], peers)
    # each change lands in a different part of the link message: header flags, name, MTU, master,
    # MAC, carrier, the peer's namespace; and addresses and routes
    lab.ok("!set -e; ip link set veth1 nomaster; ip link set br0 down; ip link set a name a2; ip link set a2 mtu 1400")
    lab.ok("!set -e; ip -n ns1 link set veth2 address 02:00:00:00:00:42; ip -n ns1 addr add 10.9.0.1/16 dev veth2")
    lab.ok("!set -e; ip -n ns1 route add 10.8.0.0/16 via 10.0.0.10; ip -n ns3 link set dev d netns ns1")
    lab.ok("!set -e; ip -n ns2 link set c down; ip link set veth1 master br0; ip -n ns2 link del b")
    peers = {("host", "veth1"): ["ns1", "veth2"], ("ns1", "veth2"): ["host", "veth1"], ("ns2", "c"): ["ns1", "d"],
             ("ns1", "d"): ["ns2", "c"]}
    assert_snapshot_is_what_ip_shows(lab, ["host", "ns1", "ns2", "ns3"], peers)


def assert_snapshot_is_what_ip_shows(lab, names, peers):
    snap = lab.value("[[n.name, [[i.name, i.index, i.kind, i.state, i.mtu, i.mac, list(i.addresses), i.master,"
                     " i.peer and [i.peer.netns, i.peer.ifname]] for i in n.interfaces],"
                     " [[r.dst, r.dev, r.gateway, r.proto, r.scope] for r in n.routes]]"
                     " for n in __import__('netlab_magic').Lab.current().snapshot().namespaces]")
    assert [n for n, _, _ in snap] == names
    for name, interfaces, routes in snap:
        links = {link["ifname"]: link for link in ip_json(lab, name, "link show")}
        addrs = {a["ifname"]: [f"{x['local']}/{x['prefixlen']}" for x in a["addr_info"]]
                 for a in ip_json(lab, name, "addr show")}
        assert sorted(links) == sorted(i[0] for i in interfaces), name
        for ifname, index, kind, state, mtu, mac, addresses, master, peer in interfaces:
            link = links[ifname]
            assert (index, state, mtu, master) == (link["ifindex"], link["operstate"], link["mtu"],
                                                    link.get("master")), (name, ifname)
            assert mac == (link["address"] if link["link_type"] == "ether" else mac)
            assert addresses == addrs[ifname], (name, ifname)
            if kind == "veth":
                assert peer == peers[(name, ifname)], (name, ifname, peer)
        ip_routes = ip_json(lab, name, "route show")
        assert [[r["dst"] if "/" in r["dst"] or r["dst"] == "default" else r["dst"] + "/32", r.get("dev"),
                 r.get("gateway"), r.get("protocol", "boot"), r.get("scope", "universe")] for r in ip_routes] \
            == routes, name


def test_hairpin_and_link_exists(lab):
    api(lab, "lab.host.add_bridge('br0'); lab.host.add_veth('v1', peer='v2'); lab.host.link_set_master('v1', 'br0')")
    assert lab.value("Lab.current().host.link_exists('v1')") is True
    assert lab.value("Lab.current().host.link_exists('v9')") is False
    api(lab, "lab.host.bridge_port_hairpin('v1')")
    assert "hairpin on" in lab.ok("!bridge -d link show dev v1").stdout
    api(lab, "lab.host.bridge_port_hairpin('v1', False)")
    assert "hairpin off" in lab.ok("!bridge -d link show dev v1").stdout
