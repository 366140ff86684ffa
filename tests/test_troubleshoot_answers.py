"""Notebook 07's broken labs, judged by what the kernel does: for each lab, fixes in several correct
forms pass; gaming answers (a catch-all, in disguise or not; a wider range; rules outside the chain
the lab is about or in a chain of one's own; weakening a protection; a setting the lab keeps;
another cable around the lab's path) fail, each with one line naming what went wrong. No stored
check output of notebook 07 gives a fixing command.

Judging an answer is the same as root and rootless (the same probes, traces and records): this
file runs in the root pass only; tests/test_troubleshoot.py builds and fixes every lab in both."""

from __future__ import annotations

import json
import pathlib
import re

import pytest

TROUBLE = "__import__('netlab_magic.troubleshoot', fromlist=['x'])"
API = "from netlab_magic import Lab; _lab = Lab.current()\n"
NOTEBOOK = pathlib.Path(__file__).resolve().parent.parent / "notebooks" / "07-when-it-does-not-work.ipynb"

DEL_RULES = ("iptables -D DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT && "
             "iptables -D DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack "
             "--ctstate RELATED,ESTABLISHED -j ACCEPT && ")
A_CABLE = ("!ip link add veth7 type veth peer name veth8 && ip link set veth7 netns {a} && ip link set veth8 netns {b}"
           " && ip netns exec {a} sh -c 'ip link set veth7 up && ip route add {to_b} dev veth7'"
           " && ip netns exec {b} sh -c 'ip link set veth8 up && ip route add {to_a} dev veth8'")

#: Correct fixes, several forms each (a cell, as a learner would type it); for the labs of Docker's own
#: failures, besides the form tests/test_troubleshoot.py runs in both passes.
CORRECT = {
    "link-down": ["!ip link set dev veth2 up", "!ip link set veth2 up", API + "_lab.host.link_up('veth2')",
                  "%%netns host\nip link set veth2 up"],
    "no-address": ["!ip addr add 10.0.0.2/24 dev veth2", "!ip address add 10.0.0.2/24 broadcast + dev veth2",
                   "!ip a a 10.0.0.2/24 dev veth2", API + "_lab.host.addr_add('veth2', '10.0.0.2/24')"],
    "wrong-subnet": ["%netns ns3 ip addr del 10.0.1.3/24 dev veth3 && ip addr add 10.0.0.3/24 dev veth3",
                     "%netns ns3 ip addr flush dev veth3 && ip addr add 10.0.0.3/24 dev veth3",
                     API + "_lab['ns3'].addr_del('veth3', '10.0.1.3/24'); _lab['ns3'].addr_add('veth3', '10.0.0.3/24')"],
    "forward-drop": ["!iptables -I FORWARD -o bridge0 -j ACCEPT",
                     "!iptables -A FORWARD -i bridge0 -o bridge0 -j ACCEPT",
                     "!iptables -I FORWARD -m physdev --physdev-is-bridged -j ACCEPT",
                     "!iptables -A FORWARD -s 10.0.0.0/24 -d 10.0.0.0/24 -j ACCEPT",
                     "!iptables -I FORWARD -i bridge0 -o bridge0 -m conntrack --ctstate NEW,RELATED,ESTABLISHED -j ACCEPT",
                     "!iptables -A FORWARD -o bridge0 -m state --state NEW,RELATED,ESTABLISHED -j ACCEPT"],
    "after-return": ["!" + DEL_RULES + "iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT && "
                     "iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack "
                     "--ctstate RELATED,ESTABLISHED -j ACCEPT",
                     "!" + DEL_RULES + "iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT && "
                     "iptables -I DOCKER-USER 2 -s 172.19.0.0/16 -d 172.18.0.0/16 -m state "
                     "--state RELATED,ESTABLISHED -j ACCEPT",
                     "!" + DEL_RULES + "iptables -I DOCKER-USER -s 172.18.0.2 -d 172.19.0.2 -p icmp -j ACCEPT && "
                     "iptables -I DOCKER-USER -m conntrack --ctstate ESTABLISHED --ctdir REPLY -j ACCEPT",
                     "!iptables -D DOCKER-USER -j RETURN",
                     "!iptables -D DOCKER-USER -j RETURN && iptables -A DOCKER-USER -j RETURN"],
    "no-forwarding": ["!sysctl -w net.ipv4.ip_forward=1", "!echo 1 > /proc/sys/net/ipv4/ip_forward",
                      "!sysctl -w net.ipv4.conf.all.forwarding=1",
                      "!sysctl -w net.ipv4.conf.veth2.forwarding=1 net.ipv4.conf.veth4.forwarding=1",
                      API + "_lab.host.sysctl('net.ipv4.ip_forward', 1)"],
    "no-route-back": ["%netns ns2 ip route add default via 10.2.0.254",
                      "%netns ns2 ip route add 10.1.0.0/24 via 10.2.0.254",
                      "%netns ns2 ip route add 10.1.0.1 via 10.2.0.254 dev veth3",
                      API + "_lab['ns2'].route_add('default', via='10.2.0.254')"],
    "dnat-only": ["!iptables -I DOCKER-USER -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -j ACCEPT"],
    "localnet-off": ["!echo 1 > /proc/sys/net/ipv4/conf/docker0/route_localnet",
                     API + "_lab.host.sysctl('net.ipv4.conf.docker0.route_localnet', 1)"],
    "stateless-reply": [
        "!iptables -D DOCKER-USER 1 && iptables -I DOCKER-USER -m conntrack --ctstate ESTABLISHED --ctdir REPLY "
        "-j ACCEPT"],
    "raw-drop": ["!iptables -t raw -I PREROUTING -s 203.0.113.1 -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT"],
    "stale-nat": ["!conntrack -D --reply-src 172.17.0.2"],
    "rp-strict": ["!echo 2 > /proc/sys/net/ipv4/conf/veth8/rp_filter",
                  API + "_lab.host.sysctl('net.ipv4.conf.veth8.rp_filter', 2)"],
}

#: Gaming answers: (lab, cell, a line of the refusal).
GAMING = [
    # another cable around the lab's path
    ("link-down", "!ip addr del 10.0.0.2/24 dev veth2 && ip link add veth7 type veth peer name veth8 && "
                  "ip link set veth8 netns ns1 && ip addr add 10.0.0.2/24 dev veth7 && ip link set veth7 up && "
                  "ip netns exec ns1 sh -c 'ip addr del 10.0.0.1/24 dev veth1; ip addr add 10.0.0.1/24 dev veth8; "
                  "ip link set veth8 up'",
     "a new cable (veth pair) joins host and ns1 (veth7 in the host, veth8 in ns1): a cable of your own"),
    # a setting the lab keeps
    ("link-down", "!ip link set veth2 up && ip netns exec ns1 ip link set veth1 mtu 1400",
     "veth1 in ns1: MTU 1500 -> 1400: ns1's side was right"),
    # answering oneself: ns1 gets its echo reply from its own lo
    ("link-down", "%netns ns1 ip addr add 10.0.0.2/32 dev lo",
     "lo in ns1: new address 10.0.0.2/32: ns1's side was right"),
    # a wider network than asked
    ("no-address", "!ip addr add 10.0.0.2/8 dev veth2",
     "veth2 has 10.0.0.2/8: another network than the story's (10.0.0.0/24)"),
    # the address elsewhere, and a route around
    ("no-address", "!ip addr add 10.0.0.2/32 dev lo && ip route add 10.0.0.0/24 dev veth2",
     "lo in the host: new address 10.0.0.2/32: the lab is about the host's end of ns1's cable"),
    ("wrong-subnet", "%netns ns3 ip addr add 10.0.0.3/24 dev veth3",
     "veth3 is also in 10.0.1.3/24: one interface, one network here"),
    ("wrong-subnet", "%netns ns3 ip addr del 10.0.1.3/24 dev veth3 && ip addr add 10.0.0.3/16 dev veth3",
     "veth3 has 10.0.0.3/16: another network than the story's (10.0.0.0/24)"),
    ("wrong-subnet", "%netns ns3 ip route add 10.0.0.0/24 dev veth3 src 10.0.1.3",
     "a new route in ns3: 10.0.0.0/24 dev veth3 scope link src 10.0.1.3: a route to a subnet comes with an "
     "address in it"),
    # catch-alls, plain and in disguise, and a wider source range: what ns3 sends to ns5 gets there
    ("forward-drop", "!iptables -P FORWARD ACCEPT", "FORWARD's policy is still DROP \u2014 it is ACCEPT"),
    ("forward-drop", "!iptables -A FORWARD -j ACCEPT", "never arrives in ns5 \u2014 a request got there"),
    ("forward-drop", "!iptables -A FORWARD -m comment --comment 'bridge0 only' -j ACCEPT",
     "never arrives in ns5 \u2014 a request got there"),
    ("forward-drop", "!iptables -A FORWARD -d 0.0.0.0/1 -j ACCEPT && iptables -A FORWARD -d 128.0.0.0/1 -j ACCEPT",
     "never arrives in ns5 \u2014 a request got there"),
    ("forward-drop", "!iptables -A FORWARD -s 10.0.0.0/8 -j ACCEPT", "never arrives in ns5 \u2014 a request got there"),
    ("forward-drop", "!iptables -I FORWARD -i bridge0 -j ACCEPT", "never arrives in ns5 \u2014 a request got there"),
    # blinding the probe: a catch-all, and the link to ns5 set down so that nothing can reach it
    ("forward-drop", "!iptables -A FORWARD -j ACCEPT && ip link set veth6 down",
     "veth6 in the host was set down: the links were right: the drop is in filter FORWARD"),
    # an ACCEPT behind a jump to a chain of one's own
    ("forward-drop", "!iptables -N MINE && iptables -A MINE -o bridge0 -j ACCEPT && iptables -I FORWARD -j MINE",
     "a new chain of your own, filter MINE: a chain of your own hides what it accepts"),
    # rules outside the chain the lab is about
    ("forward-drop", "!iptables -t mangle -I FORWARD -o bridge0 -j ACCEPT",
     "mangle FORWARD: rule added `-A FORWARD -o bridge0 -j ACCEPT`: the drop is in filter FORWARD"),
    # weakening the lab's protection
    ("forward-drop", "!sysctl -w net.bridge.bridge-nf-call-iptables=0",
     "net.bridge.bridge-nf-call-iptables in the host changed 1 -> 0: Docker's rules see bridged traffic"),
    ("forward-drop", A_CABLE.format(a="ns1", b="ns3", to_a="10.0.0.1", to_b="10.0.0.3"),
     "a new cable (veth pair) joins ns1 and ns3 (veth7 in ns1, veth8 in ns3): a cable of your own"),
    ("after-return", "!iptables -I DOCKER-USER -j ACCEPT", "never arrives in dummy1 \u2014 a request got there"),
    ("after-return", "!" + DEL_RULES + "iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT && "
                     "iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT",
     "never arrives in dummy1 \u2014 a request got there"),
    ("after-return", "!" + DEL_RULES + "iptables -I DOCKER-USER -s 172.16.0.0/12 -d 172.19.0.0/16 -j ACCEPT && "
                     "iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack "
                     "--ctstate RELATED,ESTABLISHED -j ACCEPT",
     "(172.20.0.5, sent by dummy1) never arrives in dummy2 \u2014 it got there: the sources your rules accept are "
     "more than 172.18.0.0/16"),
    ("after-return", "!iptables -I DOCKER-USER -d 0.0.0.0/1 -j ACCEPT && iptables -I DOCKER-USER -d 128.0.0.0/1 -j ACCEPT",
     "never arrives in dummy1 \u2014 a request got there"),
    ("after-return", "!iptables -I FORWARD -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT && iptables -I FORWARD "
                     "-s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
     "ACCEPT`: Docker's FORWARD: dockerd rewrites it (DOCKER-USER is yours)"),
    ("after-return", "!iptables -F DOCKER-ISOLATION-STAGE-2",
     "filter DOCKER-ISOLATION-STAGE-2: rule deleted"),
    ("after-return", "!iptables -N MINE && iptables -A MINE -s 172.18.0.0/16 -j ACCEPT && iptables -A MINE -m "
                     "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT && iptables -I DOCKER-USER -j MINE",
     "a new chain of your own, filter MINE: a chain of your own hides what it accepts"),
    ("no-forwarding", A_CABLE.format(a="ns1", b="ns2", to_a="10.1.0.0/24", to_b="10.2.0.0/24"),
     "a new cable (veth pair) joins ns1 and ns2 (veth7 in ns1, veth8 in ns2): a cable of your own"),
    ("no-forwarding", "!sysctl -w net.ipv4.ip_forward=1 net.ipv4.conf.veth2.proxy_arp=1",
     "net.ipv4.conf.veth2.proxy_arp in the host changed 0 -> 1: that setting was right"),
    ("no-route-back", "!iptables -t nat -A POSTROUTING -o veth4 -j MASQUERADE",
     "nat POSTROUTING: rule added `-A POSTROUTING -o veth4 -j MASQUERADE`: NAT hides ns1's address"),
    ("no-route-back", A_CABLE.format(a="ns1", b="ns2", to_a="10.1.0.0/24", to_b="10.2.0.0/24"),
     "a new cable (veth pair) joins ns1 and ns2"),
    # the filter half for every container, or for all of web's ports; in Docker's FORWARD
    ("dnat-only", "!iptables -I DOCKER-USER -j ACCEPT", "never arrives in db \u2014 a request got there"),
    ("dnat-only", "!iptables -I DOCKER-USER -d 172.17.0.2 -j ACCEPT", "port 22 still never arrives in web"),
    ("dnat-only", "!iptables -I FORWARD -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT",
     "filter FORWARD: rule added `-A FORWARD -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT`: Docker's FORWARD"),
    # the setting for every interface
    ("localnet-off", "!sysctl -w net.ipv4.conf.all.route_localnet=1",
     "net.ipv4.conf.all.route_localnet in the host changed 0 -> 1: conf/all counts for every interface"),
    # a stateless reply rule (any packet from port 80 passes); the old rule kept; a catch-all
    ("stateless-reply", "!iptables -R DOCKER-USER 1 -s 172.19.0.0/16 -d 172.18.0.0/16 -p tcp --sport 80 -j ACCEPT",
     "port 9 from port 80 still never arrives in dummy1 \u2014 a request got there"),
    ("stateless-reply", "!iptables -I DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
     "port 80 still never arrives in dummy1 \u2014 a request got there"),
    ("stateless-reply", "!iptables -I DOCKER-USER -j ACCEPT", "never arrives in dummy1 \u2014 a request got there"),
    # Docker's protection removed; a raw ACCEPT for any source; a catch-all in DOCKER-USER
    ("raw-drop", "!iptables -t raw -D PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP",
     "`-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP` is gone"),
    ("raw-drop", "!iptables -t raw -I PREROUTING -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT",
     "from 198.51.100.1 to 172.17.0.2 port 80 still never arrives in web \u2014 a request got there"),
    ("raw-drop", "!iptables -t raw -I PREROUTING -s 203.0.113.0/24 -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT && "
                 "iptables -I DOCKER-USER -j ACCEPT", "filter DOCKER-USER: rule added"),
    # the old filter half back (logs1 gets the logs again); a sender of one's own from a new port
    ("stale-nat", "!iptables -I DOCKER-USER -d 172.17.0.2 -p udp --dport 5140 -j ACCEPT",
     "some still go to logs1"),
    ("stale-nat", API + "_lab.jobs.stop('sender'); _lab.start_job('outside', 'while :; do echo tick; sleep 0.5; done "
                        "| nc -u -p 40515 203.0.113.2 5140', name='sender')",
     "none reaches logs2"),
    # rp_filter off, for all; the host's route moved
    ("rp-strict", "!sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth8.rp_filter=0",
     "(198.51.100.7, sent by ns1) never arrives in ns2 \u2014 it got there: the host now takes sources from outside"),
    ("rp-strict", "!ip route add 10.1.0.1/32 via 10.3.0.1",
     "a new route in the host: 10.1.0.1/32 via 10.3.0.1 dev veth8: the routes were right"),
]

#: What gives the fix away: a command that changes a link, an address, a route, a rule or a sysctl.
FIXING = re.compile(r"\bip (-\S+ )*(link|l|addr|address|a|route|r|ro)\s+(set|add|a|del|delete|flush|replace)\b"
                    r"|\biptables\b[^\n]*\s-[IADPFNRX]\s|\bsysctl\s+(-\S+\s+)*-w\b|>\s*/proc/sys"
                    r"|\.(link_up|addr_add|addr_del|route_add|sysctl)\(")


def results(k, name: str) -> list[str]:
    return k.value(f"[str(c) for c in {TROUBLE}.fixed({name!r})]")


def attempt(kernel, name: str, cell: str) -> list[str]:
    kernel.ok(f"{TROUBLE}.broken({name!r})")
    kernel.ok(cell)
    return results(kernel, name)


@pytest.mark.parametrize("name, cell", [(n, c) for n, cells in CORRECT.items() for c in cells],
                         ids=lambda v: v if v in CORRECT else None)
def test_a_correct_fix_passes(kernel, name, cell):
    lines = attempt(kernel, name, cell)
    assert all(line.startswith("\u2714") for line in lines), lines


@pytest.mark.parametrize("name, cell, why", GAMING, ids=lambda v: v if v in CORRECT else None)
def test_a_gaming_answer_is_refused_in_one_line(kernel, name, cell, why):
    lines = attempt(kernel, name, cell)
    failed = [line for line in lines if line.startswith("\u2718")]
    assert failed, lines
    assert any(why in line for line in failed), failed
    assert all("\n" not in line for line in failed)


def test_no_stored_check_output_gives_the_fix():
    """What the checks and show_me printed in notebook 07 (a real run) names symptoms, never commands."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    checked = 0
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or not ("fixed(" in source or "show_me(" in source):
            continue
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            checked += 1
            assert not FIXING.search(text), text
    assert checked >= 7
    assert FIXING.search("try: ip addr del 10.0.0.3/24 dev veth3") and FIXING.search("iptables -I FORWARD -o x -j ACCEPT")


def test_hints_and_faults_name_no_fixing_command():
    """07's hints, and what show_me() tells, point at the fault; lab 3's hint points at its own fault."""
    from netlab_magic.troubleshoot import SCENARIOS

    hints = [("".join(c["source"])) for c in json.loads(NOTEBOOK.read_text())["cells"]
             if c["cell_type"] == "markdown" and "<summary>Hint" in "".join(c["source"])]
    assert len(hints) == len(SCENARIOS)
    for text in [*hints, *(s.fault for s in SCENARIOS.values()), *(s.story for s in SCENARIOS.values())]:
        assert not FIXING.search(text), text
    wrong_subnet = hints[list(SCENARIOS).index("wrong-subnet")]
    assert "two addresses in one subnet" not in wrong_subnet and "/24" in wrong_subnet


def test_a_spoofed_echo_request_is_well_formed():
    """The probe's packet, read back by the parser the trace uses, says what it was made to say."""
    from netlab_magic.packets.headers import parse_ipv4
    from netlab_magic.packets.probes import checksum, icmp_echo, ipv4_packet

    packet = ipv4_packet("172.20.0.5", "172.19.0.2", icmp_echo("ping", 0x1234))
    header = parse_ipv4(packet[:20], packet[20:])
    assert (header.src, header.dst, header.icmp_type, header.icmp_id) == ("172.20.0.5", "172.19.0.2", 8, 0x1234)
    assert checksum(packet[20:]) == 0
