"""Predict, then run: the prediction cells of notebooks 01 and 02 driven with a right and a wrong answer,
and left unfilled, in a real kernel against the real steps (one ping each)."""

from __future__ import annotations

SETUP = "from netlab_magic.predictions import predict, ping, PING_CHOICES\n"

# Notebook 01: ns1 has no cable yet.
NO_CABLE = "!ip netns add ns1\n%netns ns1 ip link set dev lo up\n"
# Notebook 02: ns1 and ns3 on two cables of one network, no bridge.
TWO_CABLES = """!ip netns add ns1
!ip link add veth1 type veth peer name veth2
!ip link set veth1 netns ns1
!ip addr add 10.0.0.2/24 dev veth2
!ip link set dev veth2 up
%netns ns1 ip link set dev lo up && ip addr add 10.0.0.1/24 dev veth1 && ip link set dev veth1 up
!ip netns add ns3
!ip link add veth3 type veth peer name veth4
!ip addr add 10.0.0.4/24 dev veth4
!ip link set dev veth4 up
!ip link set veth3 netns ns3
%netns ns3 ip link set dev lo up && ip addr add 10.0.0.3/24 dev veth3 && ip link set dev veth3 up
"""


# Notebook 03: the same two cables, now ports of bridge0, on a host set up as Docker sets it.
BRIDGE = """!iptables -P FORWARD DROP
!sysctl -w net.bridge.bridge-nf-call-iptables=1
!ip addr flush dev veth2
!ip addr flush dev veth4
!ip link add bridge0 type bridge
!ip addr add 10.0.0.10/24 dev bridge0
!ip link set bridge0 up
!ip link set veth2 master bridge0
!ip link set veth4 master bridge0
"""


def step(lab, answer: str | None, netns: str, address: str, look: str, look_in: str | None = None) -> str:
    return lab.ok(SETUP + f"p = predict('what happens?', PING_CHOICES, answer={answer!r})\n"
                          f"p.beside(ping({netns!r}, {address!r}, look={look!r}, look_in={look_in!r}))").stdout


def right_then_wrong(lab, netns: str, address: str, happened: str, wrong: str, look: str = "",
                     look_in: str | None = None) -> tuple[str, str]:
    """The step run twice, predicted right then wrong: each said so beside what happened; both outputs."""
    right_out = step(lab, happened, netns, address, look, look_in)
    assert f"\u2714 you said: {happened} \u00b7 it happened: {happened}" in right_out, right_out
    wrong_out = step(lab, wrong, netns, address, look, look_in)
    assert f"\u2718 you said: {wrong.lower()} \u00b7 it happened: {happened}" in wrong_out, wrong_out
    return right_out, wrong_out


def test_notebook_01_the_ping_without_a_cable(lab):
    lab.ok(NO_CABLE)
    right, _ = right_then_wrong(lab, "ns1", "10.0.0.2", "unreachable", "Reply", "ip route get 10.0.0.2")
    assert "your prediction: unreachable" in right
    assert "evidence: ping: connect: Network is unreachable" in right
    assert "evidence: ip route get 10.0.0.2: RTNETLINK answers: Network is unreachable" in right


def test_notebook_02_ns3_s_ping_without_a_bridge(lab):
    lab.ok(TWO_CABLES)
    right, _ = right_then_wrong(lab, "ns3", "10.0.0.1", "no reply", "reply", "ip neigh show 10.0.0.1")
    assert "evidence: 1 packets transmitted, 0 received, 100% packet loss" in right
    assert "evidence: ip neigh show 10.0.0.1: 10.0.0.1 dev veth3 INCOMPLETE" in right


def test_an_unfilled_or_unknown_prediction_is_one_line_and_the_step_still_runs(lab):
    lab.ok(NO_CABLE)
    out = step(lab, None, "ns1", "10.0.0.2", "")
    assert "no prediction yet: write answer= one of 'reply', 'no reply', 'unreachable' above" in out
    assert "it happened: unreachable (no prediction yet)" in out and "\u2714" not in out and "\u2718" not in out
    out = step(lab, "maybe", "ns1", "10.0.0.2", "")
    assert "'maybe' is not one of 'reply', 'no reply', 'unreachable'" in out
    assert "it happened: unreachable ('maybe' is not one of 'reply', 'no reply', 'unreachable')" in out


def test_notebook_03_the_forward_drop(lab):
    lab.ok(TWO_CABLES + BRIDGE)
    look = "iptables -L FORWARD -v -n | head -1"
    right, wrong = right_then_wrong(lab, "ns3", "10.0.0.1", "no reply", "reply", look, "host")
    assert f"evidence: {look} (in host): Chain FORWARD (policy DROP 1 packets, 84 bytes)" in right
    assert "(policy DROP 2 packets, 168 bytes)" in wrong


def test_notebook_04_the_isolation_ping(lab):
    lab.ok("%docker network create dummy1\n%docker network create dummy2\n"
           "%docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools\n"
           "%docker run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools\n")
    look = "iptables -S DOCKER-ISOLATION-STAGE-2 -v"
    right, wrong = right_then_wrong(lab, "dummy1", "172.19.0.2", "no reply", "unreachable", look, "host")
    assert " -c 1 84 -j DROP" in right.split("(in host):")[1]
    assert " -c 2 168 -j DROP" in wrong


def fetch_step(lab, name: str, answer: str | None, look: str) -> str:
    return lab.ok("from netlab_magic.predictions import predict, fetch, FETCH_CHOICES\n"
                  f"{name} = predict('what comes?', FETCH_CHOICES, answer={answer!r})\n"
                  f"{name}.beside(fetch('host', 'localhost:8888', look={look!r}))").stdout


def test_notebook_05_the_curl_after_the_container_was_replaced_and_the_dnat_by_hand(lab):
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx\n%docker stop nginx\n%docker rm nginx\n"
           "%docker run --name=web -d nginx\n")
    right = fetch_step(lab, "replaced", "refused", "iptables -t nat -S DOCKER")
    assert "\u2714 you said: refused \u00b7 it happened: refused" in right
    assert "evidence: iptables -t nat -S DOCKER: -N DOCKER\n" in right
    wrong = fetch_step(lab, "replaced", "page", "")
    assert "\u2718 you said: page \u00b7 it happened: refused" in wrong
    lab.ok("!iptables -t nat -I DOCKER -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.17.0.2:80")
    right = fetch_step(lab, "by_hand", "page", "iptables -t nat -S DOCKER -v")
    assert "\u2714 you said: page \u00b7 it happened: page" in right
    assert "evidence: <title>Welcome to nginx!</title>" in right
    assert "--dport 8888 -c 1 60 -j DNAT --to-destination 172.17.0.2:80" in right
    wrong = fetch_step(lab, "by_hand", "timeout", "")
    assert "\u2718 you said: timeout \u00b7 it happened: page" in wrong


def test_notebook_06_a_path_predicted_right_wrong_and_not_yet(lab):
    """06's prediction cells, empty in the stored run, against the kernel's trace of Demo 2's drop."""
    lab.ok(TWO_CABLES + BRIDGE + "from netlab_magic.trace_checks import check_drop, check_path\n"
           "t = %netlab trace ns3 -- ping -c 1 -W 1 10.0.0.1")
    right = "['ns3 OUTPUT', 'ns3 POSTROUTING', 'host PREROUTING', 'host FORWARD']"
    wrong = "['ns3 OUTPUT', 'ns3 POSTROUTING', 'ns1 PREROUTING', 'ns1 INPUT']"
    assert lab.value(f"[r.ok for r in check_path(t, {right}, end='dropped in host')] + [check_drop(t, 'FORWARD').ok]") \
        == [True, True, True]
    assert lab.value(f"[r.ok for r in check_path(t, {wrong}, end='delivered in ns1')] + [check_drop(t, 'INPUT').ok]") \
        == [False, False, False]
    assert lab.value("[str(r) for r in check_path(t, [], end='')] + [str(check_drop(t, ''))]") == [
        "\u2718 packet 1 goes the way you said \u2014 write your prediction first: a list like [\"ns3 OUTPUT\", ...]",
        "\u2718 packet 1 was dropped in (which chain?) \u2014 name the chain you expect to drop it"]
