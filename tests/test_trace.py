"""Following the packet in a real kernel: the talk's Demos 2, 3 and 4 traced, root and rootless.

What a trace reports is checked against the kernel itself, never against hops typed in here:

* ``xtables-monitor --trace`` (iptables' own reader of the same kernel reports) runs in each
  namespace while the trace runs; the iptables hops of the trace are exactly what it printed,
  rule for rule, in its order;
* the rule or policy where the trace says a packet was dropped is the one whose packet counter
  (``iptables-save -c``) went up by exactly the packets dropped;
* every namespace's ``iptables-save`` is the same before and after (counters aside), also after a
  timeout, an interrupt or bad input, and no trace table is left anywhere.
"""

from __future__ import annotations

import re
import time

import pytest

from support.kernel_client import DEMO1, DEMO1_NS1

DEMO2 = """\
!iptables -P FORWARD DROP
!sysctl -qw net.bridge.bridge-nf-call-iptables=1
!ip netns add ns1
!ip link add veth1 type veth peer name veth2
!ip link set veth1 netns ns1
!ip link set dev veth2 up
%netns ns1 ip link set dev lo up && ip addr add 10.0.0.1/24 dev veth1 && ip link set dev veth1 up
!ip netns add ns3
!ip link add veth3 type veth peer name veth4
!ip link set veth3 netns ns3
!ip link set dev veth4 up
%netns ns3 ip link set dev lo up && ip addr add 10.0.0.3/24 dev veth3 && ip link set dev veth3 up
!ip link add bridge0 type bridge
!ip addr add 10.0.0.10/24 dev bridge0
!ip link set bridge0 up
!ip link set veth2 master bridge0
!ip link set veth4 master bridge0
"""
DEMO3 = [
    "%docker network create dummy1",
    "%docker network create dummy2",
    "%docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
    "%docker run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools",
]
LAB = "__import__('netlab_magic').Lab.current()"
NAMESPACES = f"['host', *{LAB}.list_netns()]"


# -- the kernel's own word: xtables-monitor, counters, iptables-save --------------------------------

def namespaces(k) -> list[str]:
    return k.value(NAMESPACES)


def start_monitors(k, names: list[str]) -> None:
    """``xtables-monitor --trace`` in each namespace, as a background job, listening before we go on."""
    for ns in names:
        k.ok(f"%%netns {ns} --bg --name mon-{ns}\nexec xtables-monitor --trace")
    time.sleep(0.5)


def stop_monitors(k, names: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """What each monitor printed: ``(table, chain, rule as iptables -S prints it, or "policy X")``."""
    time.sleep(0.3)
    found = {}
    for ns in names:
        out = k.ok(f"%netlab output mon-{ns}").stdout
        k.ok(f"%netlab stop mon-{ns}")
        found[ns] = monitor_reports(out)
    return found


def monitor_reports(out: str) -> list[tuple[str, str, str]]:
    """The iptables reports of the monitor's output; those of multicast packets (the kernel's IGMP
    housekeeping, which a trace leaves out unless asked) are skipped."""
    reports = []
    multicast = False
    for line in out.splitlines():
        if line.startswith("PACKET:"):
            dst = re.search(r" DST=(\d+)\.", line)
            multicast = bool(dst) and 224 <= int(dst.group(1)) <= 239
            continue
        if multicast:
            continue
        m = re.match(r"\s*TRACE: 2 [0-9a-f]+ ([^:\s]+):([^:\s]+):(rule|policy|return):(\S*)\s*(.*)$", line)
        if not m or m.group(1) == "netlab-trace":
            continue
        table, chain, kind, verdict, rule = m.groups()
        if kind == "policy":
            reports.append((table, chain, f"policy {verdict}"))
        elif kind == "rule":
            reports.append((table, chain, re.sub(r"^-4 -t \S+ ", "", rule.strip())))
    return reports


def traced_reports(trace: dict, ns: str) -> list[tuple[str, str, str]]:
    """The trace's iptables hops in ``ns``, in the kernel's order, as the monitor words them."""
    return [(h["table"], h["chain"], h["rule"] or f"policy {h['verdict']}") for h in trace["hops"]
            if h["netns"] == ns and h["table"] and h["family"] == "ip" and (h["rule"] or h["chain"].isupper()
                                                                             and h["verdict"] != "RETURN")]


def saves(k) -> dict[str, list[str]]:
    """``iptables-save`` of every namespace, comments dropped and counters zeroed."""
    found = {}
    for ns in namespaces(k):
        out = k.ok(f"%netns {ns} iptables-save").stdout
        found[ns] = [re.sub(r"\[\d+:\d+\]$", "[0:0]", ln) for ln in out.splitlines() if not ln.startswith("#")]
    return found


def counters(k, ns: str = "host") -> dict[str, int]:
    """Packet counters of ``iptables-save -c``: ``{"filter FORWARD policy": n, "filter -A FORWARD ...": n}``."""
    out = k.ok(f"%netns {ns} iptables-save -c").stdout
    found, table = {}, ""
    for line in out.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif m := re.match(r"^:(\S+) (\S+) \[(\d+):\d+\]", line):
            if m.group(2) != "-":
                found[f"{table} {m.group(1)} policy"] = int(m.group(3))
        elif m := re.match(r"^\[(\d+):\d+\] (-A .*)$", line):
            found[f"{table} {m.group(2)}"] = int(m.group(1))
    return found


def moved(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}


def trace(k, netns: str, command: str, match: str | None = None) -> dict:
    k.ok(f"t = {LAB}.trace({netns!r}, {command!r}, {match!r})", timeout=60)
    return k.value("t.to_dict() | {'hops': [__import__('netlab_magic.packets.trace_model', fromlist=['x']).hop_dict(h) "
                   "for h in t.hops]}")


def leftovers(k) -> list:
    return k.value(f"__import__('netlab_magic.packets.trace_session', fromlist=['x']).trace_tables({LAB})")


def traced_and_checked(k, netns: str, command: str, match: str | None = None) -> tuple[dict, dict[str, int]]:
    """Trace with the monitors listening; the trace equals what they heard; iptables-save unchanged.

    Returns the trace and how the host's counters moved.
    """
    names = namespaces(k)
    before_save, before_counts = saves(k), counters(k)
    start_monitors(k, names)
    t = trace(k, netns, command, match)
    heard = stop_monitors(k, names)
    for ns in names:
        if match is None:  # a match hides packets the monitor still hears
            assert traced_reports(t, ns) == heard[ns], (ns, traced_reports(t, ns), heard[ns])
    assert saves(k) == before_save
    assert leftovers(k) == []
    return t, moved(before_counts, counters(k))


# -- Demo 2: the bridge, FORWARD policy DROP, then the ACCEPT rule ---------------------------------------

def test_demo2_drop_is_the_forward_policy_then_the_accept_rule_passes(lab):
    lab.ok(DEMO2)
    time.sleep(1)
    t, counted = traced_and_checked(lab, "ns3", "ping -c 1 -W 1 10.0.0.1")
    assert t["returncode"] == 1
    [packet] = t["packets"]  # the request; no reply
    drop = packet["hops"][-1]
    assert (drop["netns"], drop["hook"], drop["table"], drop["chain"], drop["rule"], drop["verdict"]) == \
        ("host", "FORWARD", "filter", "FORWARD", None, "DROP")
    assert drop["bridged"], "br_netfilter called FORWARD from the bridge"
    assert counted == {"filter FORWARD policy": 1}, counted  # the kernel's counter agrees: the policy dropped it
    assert packet["fate"] == "dropped in host by filter FORWARD policy DROP"
    path = [(h["netns"], h["family"], h["hook"]) for h in packet["hops"]]
    assert path[:2] == [("ns3", "ip", "OUTPUT"), ("ns3", "ip", "POSTROUTING")]
    assert ("host", "bridge", "PREROUTING") in path and ("host", "bridge", "FORWARD") in path

    lab.ok("!iptables -I FORWARD -o bridge0 -j ACCEPT")
    t, counted = traced_and_checked(lab, "ns3", "ping -c 1 -W 1 10.0.0.1")
    assert t["returncode"] == 0
    request, reply = t["packets"]
    assert counted == {"filter -A FORWARD -o bridge0 -j ACCEPT": 2}, counted  # request and reply, no drop
    for p, src, dst in ((request, "ns3", "ns1"), (reply, "ns1", "ns3")):
        hops = p["hops"]
        assert (hops[0]["netns"], hops[0]["hook"]) == (src, "OUTPUT")
        assert (hops[-1]["netns"], hops[-1]["hook"]) == (dst, "INPUT")
        assert p["fate"] == f"delivered in {dst}"
        [accept] = [h for h in hops if h["table"] == "filter"]
        assert (accept["netns"], accept["hook"], accept["rule"], accept["verdict"]) == \
            ("host", "FORWARD", "-A FORWARD -o bridge0 -j ACCEPT", "ACCEPT")
        assert [h["netns"] for h in hops if h["hook"] == "INPUT"] == [dst]


def test_a_ping_that_arp_cannot_deliver_passes_postrouting_and_is_not_sent(lab):
    lab.ok(DEMO1)
    lab.ok(DEMO1_NS1)
    time.sleep(0.5)
    t = trace(lab, "ns1", "ping -c 1 -W 1 10.0.0.7")  # no one has 10.0.0.7
    [packet] = t["packets"]
    assert [(h["netns"], h["hook"]) for h in packet["hops"]] == [("ns1", "OUTPUT"), ("ns1", "POSTROUTING")]
    assert packet["fate"].startswith("passed POSTROUTING in ns1 towards veth1; not sent: "), packet["fate"]
    assert "no answer to ARP for 10.0.0.7 on veth1" in packet["fate"]  # it never left: ip neigh says why


def test_a_packet_towards_a_link_without_carrier_is_not_sent(lab):
    lab.ok("!ip netns add ns1 && ip link add veth1 type veth peer name veth2 && ip link set veth1 netns ns1")
    lab.ok("%netns ns1 ip addr add 10.0.0.1/24 dev veth1 && ip link set dev veth1 up")  # veth2 stays down
    t = trace(lab, "ns1", "ping -c 1 -W 1 10.0.0.2")
    [packet] = t["packets"]
    assert packet["fate"].startswith("passed POSTROUTING in ns1 towards veth1; not sent: veth1 has no carrier")


# -- Demo 3: Docker's isolation --------------------------------------------------------------------------

def test_demo3_the_drop_is_the_isolation_stage_2_rule(lab):
    for cell in DEMO3:
        lab.ok(cell)
    bridge = "br-" + lab.ok("%docker network inspect -f '{{.Id}}' dummy2").stdout.strip()[:12]
    t, counted = traced_and_checked(lab, "dummy1", "ping -c 1 -W 1 172.19.0.2")
    [packet] = t["packets"]
    drop = packet["hops"][-1]
    rule = f"-A DOCKER-ISOLATION-STAGE-2 -o {bridge} -j DROP"
    assert (drop["netns"], drop["hook"], drop["table"], drop["chain"], drop["rule"], drop["verdict"]) == \
        ("host", "FORWARD", "filter", "DOCKER-ISOLATION-STAGE-2", rule, "DROP")
    assert counted.get(f"filter {rule}") == 1, counted
    jumps = [(h["chain"], h["target"]) for h in packet["hops"] if h["verdict"] == "JUMP"]
    assert ("FORWARD", "DOCKER-USER") in jumps and ("DOCKER-ISOLATION-STAGE-1", "DOCKER-ISOLATION-STAGE-2") in jumps


# -- Demo 4: port forwarding, the DNAT in nat OUTPUT -----------------------------------------------------

def test_demo4_curl_localhost_is_dnatted_in_nat_output_and_answered_un_natted(lab):
    lab.ok("%docker dockerd --userland-proxy=false")
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    time.sleep(0.5)
    t, _ = traced_and_checked(lab, "host", "curl -s -m 3 localhost:8888", match="-p tcp --dport 8888")
    assert "Welcome to nginx!" in t["output"]
    syn = t["packets"][0]
    hops = syn["hops"]
    nat = [(h["hook"], h["table"], h["chain"], h["verdict"], h["target"]) for h in hops if h["table"] == "nat"]
    assert nat[0] == ("OUTPUT", "nat", "OUTPUT", "JUMP", "DOCKER"), nat
    dnat = next(h for h in hops if h["table"] == "nat" and h["chain"] == "DOCKER")
    assert dnat["hook"] == "OUTPUT" and "-j DNAT --to-destination 172.17.0.2:80" in dnat["rule"]
    assert dnat["decision"] == "DNAT to 172.17.0.2:80"  # what the rule did (the kernel's verdict: ACCEPT)
    masquerade = next(h for h in hops if h["table"] == "nat" and h["chain"] == "POSTROUTING")
    assert masquerade["decision"] == "MASQUERADE"
    # the kernel routed the packet again after nat OUTPUT changed its destination: the picture says so
    from netlab_magic.packets.trace_picture import trace_layout
    host = trace_layout(syn)["panels"][0]
    assert host["path"][host["path"].index("ip:OUTPUT") + 1] == "ip:reroute", host["path"]
    assert syn["header"].endswith("127.0.0.1:8888") and "[S]" in syn["header"]
    assert syn["fate"] == "delivered in nginx"
    seen_by_nginx = [h["packet"] for h in hops if h["netns"] == "nginx" and h["hook"] == "INPUT"]
    assert seen_by_nginx and seen_by_nginx[0].endswith("172.17.0.2:80"), seen_by_nginx
    # the answer: sent by nginx from port 80, delivered on the host from 127.0.0.1:8888 (conntrack undid the NAT)
    answer = next(p for p in t["packets"] if p["header"].startswith("TCP [S.]"))
    assert answer["header"].split()[2].endswith(":80")
    assert answer["fate"] == "delivered in host"
    last = [h["packet"] for h in answer["hops"] if h["netns"] == "host" and h["hook"] == "INPUT"][-1]
    assert last.split()[2] == "127.0.0.1:8888"
    assert not [h for h in answer["hops"] if h["table"] == "nat"], "NAT chains see only a connection's first packet"
    # and the hook says so, instead of "no iptables chain" (Docker's nat PREROUTING is there)
    [pre] = [h for h in answer["hops"] if (h["netns"], h["family"], h["hook"]) == ("host", "ip", "PREROUTING")]
    assert pre["reason"] == "(nat skipped: the connection is already tracked)" and pre["decision"] == "-", pre


def test_demo4_with_the_proxy_the_packet_ends_at_its_socket(lab):
    lab.ok("%docker dockerd --userland-proxy=true")
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    time.sleep(0.5)
    t = trace(lab, "host", "curl -s -m 3 localhost:8888")
    first = t["packets"][0]
    assert first["header"].startswith("TCP [S] 127.0.0.1:") and first["header"].endswith("127.0.0.1:8888")
    assert first["fate"] == "delivered in host"
    assert {h["netns"] for h in first["hops"]} == {"host"}
    # a second connection, from the proxy (172.17.0.1) to nginx's port 80
    second = next(p for p in t["packets"] if p["header"].startswith("TCP [S] 172.17.0.1:"))
    assert second["header"].endswith("172.17.0.2:80") and second["fate"] == "delivered in nginx"


# -- ending badly: timeout, interrupt, bad input ---------------------------------------------------------

def test_a_timeout_stops_the_command_shows_the_trace_and_leaves_nothing(lab):
    lab.ok(DEMO1)
    lab.ok(DEMO1_NS1)
    before = saves(lab)
    t0 = time.monotonic()
    r = lab.ok("%netlab trace ns1 --timeout 1.5 -- echo $$; exec ping -i 0.2 10.0.0.2")
    assert time.monotonic() - t0 < 8
    pid = int(r.stdout.split()[0])
    assert "(stopped after the 1.5 s timeout; what was traced until then:)" in r.stderr
    assert "ICMP echo-request 10.0.0.1 > 10.0.0.2: delivered in host" in r.results[0]
    assert saves(lab) == before and leftovers(lab) == []
    assert not lab.value(f"__import__('os').path.exists('/proc/{pid}')")  # the ping was stopped


def test_an_interrupt_is_one_line_and_leaves_no_trace_table(lab):
    lab.ok(DEMO1)
    before = saves(lab)
    msg = lab.send("%netlab trace host -- echo started; sleep 30")
    deadline = time.time() + 10
    while time.time() < deadline:
        m = lab.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") == msg and m["msg_type"] == "stream" and "started" in m["content"]["text"]:
            break
    lab.km.interrupt_kernel()
    reply = lab.collect(msg)
    assert reply.error and reply.error[0] == "KeyboardInterrupt"
    assert len(reply.traceback) <= 1
    assert saves(lab) == before and leftovers(lab) == []


@pytest.mark.parametrize("cell, message", [
    ("%netlab trace nowhere -- ping -c 1 10.0.0.1", "namespace 'nowhere' does not exist (the lab has: host"),
    ("%netlab trace host --match '-m conntrack --ctstate NEW' -- true", "the trace does not understand -m conntrack"),
    ("%netlab trace host --match '-p foo' -- true", "unknown protocol 'foo'"),
    ("%netlab trace host --match '-s 10.0.0.300' -- true", "'10.0.0.300' is not an IPv4 address"),
    ("%netlab trace host --match \"-p tcp -- true", "No closing quotation"),
    ("%netlab trace host", "%netlab trace needs a command"),
    ("%netlab trace host --bogus -- true", "%netlab trace: unsupported flag --bogus"),
])
def test_bad_input_is_one_line_and_leaves_nothing(lab, cell, message):
    r = lab.run(cell)
    assert r.usage_error and message in r.usage_error, (r.usage_error, r.stderr)
    assert r.traceback == [] and leftovers(lab) == []


def test_help(lab):
    out = lab.ok("%netlab trace --help").stdout
    assert "Usage:  %netlab trace [OPTIONS] NETNS -- COMMAND" in out
    for word in ("--match", "--timeout", "--widget", "dropped it"):
        assert word in out
    assert "trace [-m MATCH] [-t SECONDS] [--draw] [--widget] NETNS -- COMMAND" in lab.ok("%netlab --help").stdout


# -- showing it: the table, the picture, the widget ----------------------------------------------------

def test_the_table_the_picture_and_the_widget(lab):
    lab.ok(DEMO2)
    time.sleep(1)
    r = lab.ok("t = %netlab trace ns3 -- ping -c 1 -W 1 10.0.0.1\nt")
    text = r.results[0]
    assert "packet 1: ICMP echo-request 10.0.0.3 > 10.0.0.1: dropped in host by filter FORWARD policy DROP" in text
    assert re.search(r"host\s+FORWARD \(bridged\)\s+filter:FORWARD\s+policy DROP\s+DROP", text), text
    assert "<table>" in r.html[0]
    states = lab.value("{p.get_gid(): p.get_label() for ax in t.draw().axes for p in ax.patches if p.get_gid() "
                       "and '/' in p.get_gid()}")
    assert states["host/brnf:FORWARD"] == "drop"
    assert states["ns3/ip:OUTPUT"] == "passed" and states["host/ip:INPUT"] == "idle"
    w = lab.value("(lambda w: [w.title, len(w.layouts), [r['verdict'] for r in w.rows[0]][-1]])(t.widget())")
    assert w[1] == 1 and w[2] == "DROP" and "ping -c 1 -W 1 10.0.0.1" in w[0]


# -- what it costs ------------------------------------------------------------------------------------------

@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="the benchmark builds labs: needs root "
                    "(or root in a user namespace)")
def test_the_benchmark_runs_and_tracing_a_ping_costs_less_than_300_ms_over_it():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "benchmarks", "trace.py"), "--quick"],
                          capture_output=True, text=True, timeout=110, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for method in ("ping", "trace", "xt-monitor"):
        assert re.search(rf"\s{method}\s+[\d.]+ms", proc.stdout), proc.stdout
    assert "trace meets the bar: < 300 ms over the ping itself" in proc.stdout, proc.stdout
