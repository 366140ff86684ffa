"""The pure parts of following a packet: no kernel, no privileges.

The ``--match`` language, packet headers, the kernel's trace messages, hops grouped into
packets (from reports shaped as the kernel sends them), pcap frames and conntrack's XML.
"""

from __future__ import annotations

import socket
import struct

import pytest

from netlab_magic.errors import InvalidArgument
from netlab_magic.linux import nftables as nft
from netlab_magic.linux.rtnl import attr
from netlab_magic.packets.capture import decode, read_pcap
from netlab_magic.packets.conntrack import parse_conntrack_xml
from netlab_magic.packets.headers import parse_ipv4
from netlab_magic.packets.trace_assembly import build_trace
from netlab_magic.packets.trace_match import parse_match
from netlab_magic.packets.trace_session import TABLE


def ipv4(src: str, dst: str, proto: int = 1, ident: int = 7, length: int = 84) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, ident, 0x4000, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))


def icmp(kind: int = 8, ident: int = 99, seq: int = 1) -> bytes:
    return struct.pack("!BBHHH", kind, 0, 0, ident, seq) + b"\0" * 12


def tcp(sport: int, dport: int, flags: int = 0x02, seq: int = 1000) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0)


# -- --match ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, header, iif, oif, expected", [
    ("-p icmp", (ipv4("10.0.0.1", "10.0.0.3"), icmp()), None, None, True),
    ("-p tcp", (ipv4("10.0.0.1", "10.0.0.3"), icmp()), None, None, False),
    ("-p tcp --dport 8888", (ipv4("127.0.0.1", "127.0.0.1", 6), tcp(40000, 8888)), None, None, True),
    ("-p tcp --dport 8000:8999", (ipv4("127.0.0.1", "127.0.0.1", 6), tcp(40000, 8888)), None, None, True),
    ("-p tcp ! --dport 8888", (ipv4("127.0.0.1", "127.0.0.1", 6), tcp(40000, 8888)), None, None, False),
    ("-s 10.0.0.0/24 -d 10.0.0.3", (ipv4("10.0.0.1", "10.0.0.3"), icmp()), None, None, True),
    ("! -s 10.0.0.0/24", (ipv4("10.0.0.1", "10.0.0.3"), icmp()), None, None, False),
    ("-o bridge0", (ipv4("10.0.0.1", "10.0.0.3"), icmp()), "veth2", "bridge0", True),
    ("-i veth+", (ipv4("10.0.0.1", "10.0.0.3"), icmp()), "veth2", None, True),
    ("-p icmp -m icmp --icmp-type echo-reply", (ipv4("10.0.0.1", "10.0.0.3"), icmp(0)), None, None, True),
])
def test_match(text, header, iif, oif, expected):
    assert parse_match(text)(parse_ipv4(*header), iif, oif) is expected


@pytest.mark.parametrize("text, words", [
    ("-m conntrack --ctstate NEW", "does not understand -m conntrack"),
    ("-p", "-p needs a value"),
    ("-x", "unknown option '-x'"),
    ("-p tcp --dport 99999", "is not a port"),
    ("! ! -p tcp", "'!' twice"),
    ("-p tcp !", "'!' at the end"),
    ("", "no test in it"),
    ("-p 'tcp", "No closing quotation"),
])
def test_bad_match_is_one_line(text, words):
    with pytest.raises(InvalidArgument) as err:
        parse_match(text)
    assert words in str(err.value) and "\n" not in str(err.value)


# -- the kernel's reports, assembled ---------------------------------------------------------------------

def report(table: str, chain: str, kind: int, *, trace_id: int, family: int = nft.NFPROTO_IPV4,
           handle: int | None = None, verdict: int | None = None, target: str | None = None, policy: int | None = None,
           iif: int | None = None, oif: int | None = None, packet: bytes | None = None) -> nft.TraceEvent:
    """A trace event built as the kernel sends it (NFT_MSG_TRACE attributes), then parsed."""
    be32 = lambda n: struct.pack(">I", n & 0xFFFFFFFF)  # noqa: E731
    body = struct.pack("=BBH", family, 0, 0)
    body += attr(nft.NFTA_TRACE_ID, be32(trace_id)) + attr(nft.NFTA_TRACE_TYPE, be32(kind))
    body += attr(nft.NFTA_TRACE_TABLE, table.encode() + b"\0") + attr(nft.NFTA_TRACE_CHAIN, chain.encode() + b"\0")
    if handle is not None:
        body += attr(nft.NFTA_TRACE_RULE_HANDLE, struct.pack(">Q", handle))
    if verdict is not None:
        v = attr(nft.NFTA_VERDICT_CODE, be32(verdict))
        if target:
            v += attr(nft.NFTA_VERDICT_CHAIN, target.encode() + b"\0")
        body += attr(nft.NFTA_TRACE_VERDICT, v)
    if policy is not None:
        body += attr(nft.NFTA_TRACE_POLICY, be32(policy))
    if iif:
        body += attr(nft.NFTA_TRACE_IIF, be32(iif))
    if oif:
        body += attr(nft.NFTA_TRACE_OIF, be32(oif))
    if packet:
        body += attr(nft.NFTA_TRACE_NETWORK_HEADER, packet[:20]) + attr(nft.NFTA_TRACE_TRANSPORT_HEADER, packet[20:40])
    return nft.parse_trace(body)


def hook(chain: str, trace_id: int, packet: bytes, family: int = nft.NFPROTO_IPV4, **links) -> list[nft.TraceEvent]:
    """The trace's own chain on a hook: its report(s), ending with its policy."""
    return [report(TABLE, chain, nft.NFT_TRACETYPE_RULE, trace_id=trace_id, family=family, verdict=-1, packet=packet,
                   **links),
            report(TABLE, chain, nft.NFT_TRACETYPE_POLICY, trace_id=trace_id, family=family, policy=1)]


def test_reports_become_hops_and_packets():
    """Demo 2's drop, as the kernel reports it: ns3 OUTPUT/POSTROUTING, the bridge, FORWARD's policy."""
    request = ipv4("10.0.0.3", "10.0.0.1") + icmp()
    events = [("ns3", e) for e in hook("OUTPUT", 1, request, oif=5) + hook("POSTROUTING", 1, request, oif=5)]
    events += [("host", e) for e in hook("PREROUTING", 2, request, nft.NFPROTO_BRIDGE, iif=4)
               + hook("PREROUTING", 2, request, iif=6) + hook("FORWARD", 2, request, nft.NFPROTO_BRIDGE, iif=4, oif=2)
               + hook("FORWARD", 2, request, iif=6, oif=6)]
    events += [("host", report("filter", "FORWARD", nft.NFT_TRACETYPE_RULE, trace_id=2, handle=3, verdict=-3,
                               target="DOCKER-USER", packet=request, iif=6, oif=6)),
               ("host", report("filter", "DOCKER-USER", nft.NFT_TRACETYPE_RULE, trace_id=2, handle=9, verdict=-5)),
               ("host", report("filter", "FORWARD", nft.NFT_TRACETYPE_RULE, trace_id=2, verdict=-1)),
               ("host", report("filter", "FORWARD", nft.NFT_TRACETYPE_POLICY, trace_id=2, policy=0))]
    interfaces = {"ns3": {5: ("veth3", None)}, "host": {2: ("veth2", "bridge0"), 4: ("veth4", "bridge0"),
                                                        6: ("bridge0", None)}}
    rules = {"host": {("filter", "FORWARD", 3): "-A FORWARD -j DOCKER-USER",
                      ("filter", "DOCKER-USER", 9): "-A DOCKER-USER -j RETURN"}}
    t = build_trace(events, netns="ns3", command="ping", interfaces=interfaces, rules=rules, returncode=1)
    [p] = t.packets
    assert [(h.netns, h.family, h.hook, h.table, h.chain, h.rule, h.decision) for h in p.hops] == [
        ("ns3", "ip", "OUTPUT", None, None, None, "-"),  # ACCEPT only where a rule or a policy accepted
        ("ns3", "ip", "POSTROUTING", None, None, None, "-"),
        ("host", "bridge", "PREROUTING", None, None, None, "-"),
        ("host", "ip", "PREROUTING", None, None, None, "-"),
        ("host", "bridge", "FORWARD", None, None, None, "-"),
        ("host", "ip", "FORWARD", "filter", "FORWARD", "-A FORWARD -j DOCKER-USER", "JUMP DOCKER-USER"),
        ("host", "ip", "FORWARD", "filter", "DOCKER-USER", "-A DOCKER-USER -j RETURN", "RETURN"),
        ("host", "ip", "FORWARD", "filter", "FORWARD", None, "DROP"),
    ]
    assert p.hops[3].bridged and p.hops[5].bridged and not p.hops[0].bridged
    assert p.hops[2].bridge == "bridge0" and (p.hops[4].iif, p.hops[4].oif) == ("veth4", "veth2")
    assert p.hops[-1].reason == "policy DROP" and (p.hops[-1].iif, p.hops[-1].oif) == ("bridge0", "bridge0")
    assert p.fate == "dropped in host by filter FORWARD policy DROP"
    assert str(p.header) == "ICMP echo-request 10.0.0.3 > 10.0.0.1"
    assert t.hops == list(p.hops) and t.drops == [p.hops[-1]]
    assert "policy DROP" in repr(t) and "<table>" in t._repr_html_()


def test_a_match_keeps_the_connection_and_its_replies():
    syn = ipv4("127.0.0.1", "127.0.0.1", 6, ident=1, length=60) + tcp(40000, 8888)
    synack = ipv4("172.17.0.2", "172.17.0.1", 6, ident=0, length=60) + tcp(80, 40000, 0x12, seq=5)
    other = ipv4("10.0.0.1", "10.0.0.3", ident=3) + icmp()
    events = [("host", e) for e in hook("OUTPUT", 1, syn)] + [("nginx", e) for e in hook("OUTPUT", 2, synack)] \
        + [("host", e) for e in hook("OUTPUT", 3, other)]
    t = build_trace(events, netns="host", command="curl", match=parse_match("-p tcp --dport 8888"))
    assert [str(p.header) for p in t.packets] == ["TCP [S] 127.0.0.1:40000 > 127.0.0.1:8888"]
    # the answer belongs to the connection once NAT is known: the flow from 172.17.0.2:80 back to 40000
    synack_natted = ipv4("127.0.0.1", "127.0.0.1", 6, ident=0, length=60) + tcp(8888, 40000, 0x12, seq=5)
    events += [("host", e) for e in hook("PREROUTING", 4, synack_natted)]
    t = build_trace(events, netns="host", command="curl", match=parse_match("-p tcp --dport 8888"))
    assert [str(p.header).split()[1] for p in t.packets] == ["[S]", "[S.]"]


def test_a_hook_without_a_report_says_whether_it_has_no_chain_or_nat_skipped_it():
    """The answer of a NATed connection meets no nat chain: the kernel consults nat for a first packet only."""
    synack = ipv4("172.17.0.2", "172.17.0.1", 6, ident=0, length=60) + tcp(80, 40000, 0x12, seq=5)
    events = [("host", e) for e in hook("PREROUTING", 4, synack, iif=6) + hook("INPUT", 4, synack, iif=6)]
    t = build_trace(events, netns="host", command="curl", nat_hooks={"host": {"PREROUTING", "OUTPUT", "POSTROUTING"}})
    assert [(h.hook, h.reason, h.decision) for h in t.packets[0].hops] == [
        ("PREROUTING", "(nat skipped: the connection is already tracked)", "-"),
        ("INPUT", "(no iptables chain)", "-")]


def test_a_nat_rule_says_what_it_did():
    dnat = ipv4("127.0.0.1", "127.0.0.1", 6, ident=1, length=60) + tcp(40000, 8888)
    events = [("host", e) for e in hook("OUTPUT", 1, dnat)]
    events += [("host", report("nat", "OUTPUT", nft.NFT_TRACETYPE_RULE, trace_id=1, handle=4, verdict=1, packet=dnat)),
               ("host", report("nat", "POSTROUTING", nft.NFT_TRACETYPE_RULE, trace_id=1, handle=5, verdict=1)),
               ("host", report("filter", "OUTPUT", nft.NFT_TRACETYPE_POLICY, trace_id=1, policy=1))]
    rules = {"host": {("nat", "OUTPUT", 4): "-A OUTPUT -p tcp -j DNAT --to-destination 172.17.0.2:80",
                      ("nat", "POSTROUTING", 5): "-A POSTROUTING -o docker0 -j MASQUERADE"}}
    t = build_trace(events, netns="host", command="curl", rules=rules)
    assert [h.decision for h in t.packets[0].hops] == ["DNAT to 172.17.0.2:80", "MASQUERADE", "ACCEPT"]




def test_a_later_packet_with_a_reused_trace_id_is_not_joined_to_a_delivered_one():
    """The kernel's trace id is a hash of the skb's address, the flow's hash and the input interface
    (net/netfilter/nf_tables_trace.c: "using skb address as ID results in ... quick reuse"): the
    next packet of a flow may come in on the same interface in the same recycled skb, with the id of
    a packet already delivered. Notebook 06's SYN-ACK once showed two INPUT hops more that way."""
    synack = ipv4("172.17.0.2", "127.0.0.1", 6, ident=0, length=60) + tcp(80, 40000, 0x12, seq=5)
    ack = ipv4("172.17.0.2", "127.0.0.1", 6, ident=1, length=52) + tcp(80, 40000, 0x10, seq=6)
    events = []
    for packet in (synack, ack):  # each: the bridge (id 4, iif veth), then the host's INPUT (id 7, iif docker0)
        events += [("host", e) for e in hook("PREROUTING", 4, packet, nft.NFPROTO_BRIDGE, iif=5)
                   + hook("INPUT", 4, packet, nft.NFPROTO_BRIDGE, iif=5) + hook("INPUT", 7, packet, iif=6)]
    interfaces = {"host": {5: ("veth0", "docker0"), 6: ("docker0", None)}}
    t = build_trace(events, netns="nginx", command="curl", interfaces=interfaces)
    assert [[(h.family, h.hook) for h in p.hops] for p in t.packets] == \
        [[("bridge", "PREROUTING"), ("bridge", "INPUT"), ("ip", "INPUT")]] * 2, t
    assert [str(p.header).split()[1] for p in t.packets] == ["[S.]", "[.]"]


# -- pcap and conntrack ----------------------------------------------------------------------------------

def test_pcap_frames(tmp_path):
    mac1, mac2 = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    arp = mac2 + mac1 + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac1 + socket.inet_aton("10.0.0.1") \
        + b"\0" * 6 + socket.inet_aton("10.0.0.2")
    ping = mac2 + mac1 + b"\x08\x00" + ipv4("10.0.0.1", "10.0.0.2") + icmp(8, seq=3)
    path = tmp_path / "x.pcap"
    data = struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, frame in enumerate((arp, ping)):
        data += struct.pack("=IIII", 100, 500000 * i, len(frame), len(frame)) + frame
    path.write_bytes(data + b"\x01\x02")  # a frame still being written
    frames = read_pcap(str(path))
    assert [f.info for f in frames] == ["who-has 10.0.0.2 tell 10.0.0.1", "echo request, seq 3"]
    assert frames[1].time == pytest.approx(0.5) and frames[1].source == "10.0.0.1" and frames[0].protocol == "ARP"
    assert decode(1, 0.0, b"\x00").protocol == "?"


CONNTRACK_XML = """<?xml version="1.0" encoding="utf-8"?>
<conntrack>
<flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>127.0.0.1</src><dst>127.0.0.1</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>55670</sport><dport>8888</dport></layer4></meta><meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>172.17.0.2</src><dst>172.17.0.1</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>80</sport><dport>55670</dport></layer4></meta><meta direction="independent"><state>TIME_WAIT</state><timeout>119</timeout><mark>0</mark><use>1</use><id>413465141</id><assured/></meta></flow>
<flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>10.0.0.2</src><dst>10.0.0.1</dst></layer3><layer4 protonum="1" protoname="icmp"></layer4></meta><meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>10.0.0.1</src><dst>10.0.0.2</dst></layer3><layer4 protonum="1" protoname="icmp"></layer4></meta><meta direction="independent"><timeout>29</timeout><mark>0</mark><use>1</use><id>1473586420</id></meta></flow>
</conntrack>
"""


def test_conntrack_xml():
    icmp_flow, tcp_flow = parse_conntrack_xml(CONNTRACK_XML)
    assert (icmp_flow.protocol, icmp_flow.nat, icmp_flow.state) == ("icmp", "-", None)
    assert str(tcp_flow.original) == "127.0.0.1:55670 > 127.0.0.1:8888"
    assert tcp_flow.nat == "DNAT to 172.17.0.2:80, SNAT to 172.17.0.1:55670"
    assert tcp_flow.assured and tcp_flow.state == "TIME_WAIT" and not tcp_flow.unreplied
    assert parse_conntrack_xml("") == []
