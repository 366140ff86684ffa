"""Capture and conntrack in a real kernel (root: tcpdump; rootless: the capture worker), with real packets."""

from __future__ import annotations

import re
import time

import pytest

from support.kernel_client import DEMO1, DEMO1_NS1, IS_ROOT

CAPTURE = "__import__('netlab_magic.packets.capture', fromlist=['x'])"
LAB = "__import__('netlab_magic').Lab.current()"


def build(k) -> None:
    k.ok(DEMO1)
    k.ok(DEMO1_NS1)


def test_a_background_capture_shows_the_ping_and_its_arp(lab):
    build(lab)
    r = lab.ok("%netlab capture veth2 --bg")
    assert r.stdout.startswith("[capture-veth2] capturing on veth2 in host: "), r.stdout
    engine = "exec tcpdump -i veth2" if IS_ROOT else "-m netlab_magic.packets.capture_worker veth2"
    assert engine in lab.ok("%netlab jobs").results[0]
    lab.ok("%netns ns1 ping -c 2 -i 0.2 10.0.0.2")
    shown = lab.ok("%netlab capture veth2 --show").results[0]
    assert "capture on veth2 in host (capturing)" in shown
    assert re.search(r"ARP\s+who-has 10\.0\.0\.2 tell 10\.0\.0\.1", shown), shown
    for seq in (1, 2):
        assert re.search(rf"10\.0\.0\.1\s+10\.0\.0\.2\s+ICMP\s+echo request, seq {seq}", shown), shown
        assert re.search(rf"10\.0\.0\.2\s+10\.0\.0\.1\s+ICMP\s+echo reply, seq {seq}", shown), shown
    assert "IPv6" not in shown.split("\n", 1)[1]
    only = lab.ok("%netlab capture veth2 --show --match '-p icmp --icmp-type echo-reply'").results[0]
    assert only.count("echo reply") == 2 and "request" not in only and "ARP" not in only
    assert "capture-veth2  host       running" in lab.ok("%netlab jobs").results[0]
    path = f"/tmp/netlab-test-{time.time_ns()}.pcap"
    r = lab.ok(f"%netlab capture veth2 --stop --pcap {path}")
    assert re.match(r"saved \d+ packets to ", r.stdout) and "(stopped)" in r.results[0]
    frames = lab.value(f"[str(f) for f in {CAPTURE}.read_pcap({path!r})]")
    assert sum("echo request" in f for f in frames) == 2
    lab.ok(f"import os; os.unlink({path!r})")
    assert "capture-veth2" in lab.ok("%netlab jobs").results[0]  # stopped, still listed
    lab.ok("%netlab capture veth2 --bg")  # again, on the same interface
    lab.ok("%netlab reset")
    assert lab.ok("%netlab jobs").results[0].endswith("(no jobs)")


def test_the_capture_worker_writes_what_tcpdump_writes(lab):
    """The rootless engine, also run as root: the same packets, the same table."""
    build(lab)
    lab.ok(f"cap = {CAPTURE}.start_capture({LAB}, 'veth1', engine='netlab')")
    lab.ok("%netns ns1 ping -c 1 10.0.0.2")
    text = lab.value("repr(cap.stop().table())")
    assert cap_lines(text) == ["ICMP echo request, seq 1 10.0.0.1 10.0.0.2", "ICMP echo reply, seq 1 10.0.0.2 10.0.0.1"]


def cap_lines(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        m = re.match(r"\s+\d+\s+[\d.]+\s+(\S+)\s+(\S+)\s+(ICMP)\s+(.*)$", line)
        if m:
            found.append(f"{m.group(3)} {m.group(4).strip()} {m.group(1)} {m.group(2)}")
    return found


def test_a_foreground_capture_stops_at_its_count(lab):
    build(lab)
    lab.ok("%%netns ns1 --bg --name pinger\nsleep 0.5; ping -c 3 -i 0.2 10.0.0.2")
    t0 = time.monotonic()
    text = lab.ok("%netlab capture veth1 -c 20 -t 2 --match '-p icmp'").results[0]
    assert time.monotonic() - t0 < 6
    assert text.count("echo request") == 3 and text.count("echo reply") == 3, text


@pytest.mark.parametrize("cell, message", [
    ("%netlab capture nowhere --bg", "no namespace of the lab has an interface 'nowhere'"),
    ("%netlab capture lo --bg", "interface 'lo' is in several namespaces (host, ns1): say which with --netns"),
    ("%netlab capture veth2 --show", "no capture on 'veth2': start one with %netlab capture veth2 --bg"),
    ("%netlab capture veth2 --bg --stop", "choose one of --bg, --show and --stop"),
    ("%netlab capture veth2 --netns ns1 --bg", "interface 'veth2' does not exist in namespace 'ns1'"),
    ("%netlab capture veth2 --bg --match '-p bogus'", "unknown protocol 'bogus'"),
    ("%netlab conntrack nowhere", "namespace 'nowhere' does not exist"),
])
def test_bad_input_is_one_line(lab, cell, message):
    build(lab)
    r = lab.run(cell)
    assert r.usage_error and message in r.usage_error, (r.usage_error, r.stderr)
    assert "capture-" not in lab.ok("%netlab jobs").results[0]


def test_conntrack_shows_the_dnat_and_the_masquerade_of_demo4(lab):
    lab.ok("%docker dockerd --userland-proxy=false")
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    assert "no connection tracked" in lab.ok("%netlab conntrack nginx").results[0]
    lab.ok("!curl -s localhost:8888 > /dev/null")
    text = lab.ok("%netlab conntrack host").results[0]
    line = next(ln for ln in text.splitlines() if ":8888 " in ln)
    m = re.search(r"tcp\s+(\S+)\s+127\.0\.0\.1:(\d+) > 127\.0\.0\.1:8888\s+172\.17\.0\.2:80 > 172\.17\.0\.1:(\d+)\s+"
                  r"DNAT to 172\.17\.0\.2:80, SNAT to 172\.17\.0\.1:(\d+)\s+ASSURED", line)
    assert m, line
    assert m.group(1) in ("TIME_WAIT", "CLOSE", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "ESTABLISHED")
    assert m.group(3) == m.group(4)
    conns = lab.value(f"[(c.protocol, c.dnat, c.snat) for c in __import__('netlab_magic.packets.conntrack', fromlist=['x'])"
                      f".read_conntrack({LAB}, 'host')]")
    assert ["tcp", "172.17.0.2:80", f"172.17.0.1:{m.group(4)}"] in conns


def test_help(lab):
    assert "%netlab capture [OPTIONS] IFACE" in lab.ok("%netlab capture --help").stdout
    assert "%netlab conntrack [OPTIONS] NETNS" in lab.ok("%netlab conntrack --help").stdout
