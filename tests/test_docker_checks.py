"""netlab_magic.docker.checks: the exercises of notebooks 04 (isolation) and 05 (port forwarding).

Each exercise is played in a real kernel: the check says *Not yet* before, *Well done* after the
solution printed in the notebook, and catches the tempting wrong answers. Every packet stays
inside the lab's namespaces.
"""

from __future__ import annotations

import pytest

DEMO3 = [
    "%docker network create dummy1",
    "%docker network create dummy2",
    "%docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
    "%docker run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools",
    "%docker run --name=c0 -d alpine",
]
CHECK_04 = """
from netlab_magic.checks import check_ping, exercise
from netlab_magic.docker.checks import (check_answers_by_conntrack, check_docker_user_rule,
                                        check_isolation_intact, check_tcp)
bool(exercise(check_ping("dummy1", "172.19.0.2"),
              check_tcp("dummy1", "dummy2", "172.19.0.2"),
              check_ping("dummy2", "172.18.0.2", expect=False),
              check_tcp("dummy2", "dummy1", "172.18.0.2", expect=False),
              check_ping("dummy1", "172.17.0.2", expect=False),
              check_tcp("dummy1", "c0", "172.17.0.2", expect=False),
              check_ping("c0", "172.18.0.2", expect=False),
              check_answers_by_conntrack("dummy2"),
              check_docker_user_rule(),
              check_isolation_intact()))
"""
SOLUTION_04 = [
    "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
    "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
]

CHECK_05 = """
from netlab_magic.checks import exercise
from netlab_magic.docker.checks import check_dnat, check_http, check_no_listener
bool(exercise(check_http("host", "localhost:8889"),
              check_no_listener("host", 8889),
              check_dnat("host", "127.0.0.1:8889", to="nginx:80"),
              check_http("client", "172.17.0.1:8889")))
"""
SETUP_05 = [
    "%docker dockerd --userland-proxy=true",
    "%docker run -p 8888:80 --name=nginx -d nginx",
    "!iptables -t nat -I DOCKER -p tcp -m tcp --dport 8889 -j DNAT --to-destination 172.17.0.2:80",
    "%docker run --name=client -d alpine",
]
SOLUTION_05 = [
    "!iptables -t nat -I OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 8889 -j DNAT --to-destination 172.17.0.2:80",
    "!sysctl -w net.ipv4.conf.docker0.route_localnet=1",
    "!iptables -t nat -I POSTROUTING -s 127.0.0.1/32 -o docker0 -j MASQUERADE",
]


def _verdict(k, code: str) -> tuple[bool, str]:
    r = k.ok(code)
    return r.results[-1] == "True", r.stdout


def test_isolation_exercise_before_and_after_the_solution(lab):
    for cell in DEMO3:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_04)
    assert not ok
    assert "✘ dummy1 can ping 172.19.0.2" in out
    assert "✘ DOCKER-USER has a rule of yours" in out
    assert "✔ the DOCKER-ISOLATION chains are as Docker made them" in out
    for cell in SOLUTION_04:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_04)
    assert ok, out


RAW_28 = ["!iptables -t raw -I PREROUTING -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
          "!iptables -t raw -I PREROUTING -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT"]


def test_isolation_exercise_on_docker_28(lab):
    """28.5's raw PREROUTING drops a packet for a container that comes from another bridge, before
    FORWARD (and DOCKER-USER) ever sees it: 20.10's answer is not enough. Let through in raw (which
    knows no connections, so both ways), DOCKER-USER's ACCEPT suffices: DOCKER-CT lets the answers back."""
    lab.ok("%docker dockerd --version=28.5")
    for cell in DEMO3 + SOLUTION_04:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_04)
    assert not ok and "✘ dummy1 can ping 172.19.0.2 — no reply" in out, out
    drops = lab.ok("!iptables -t raw -L PREROUTING -v -n -x | grep 172.19.0.2").stdout.split()
    assert int(drops[0]) >= 1 and drops[2] == "DROP", drops
    lab.ok("!iptables -D DOCKER-USER " + SOLUTION_04[1].split("-I DOCKER-USER ", 1)[1])
    for cell in RAW_28:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_04)
    assert ok, out


@pytest.mark.parametrize("wrong, says", [
    # both directions open: dummy2 may start conversations too
    (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
      "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT"],
     "✘ dummy2 cannot reach 172.18.0.2 — it got a reply"),
    # a catch-all for dummy1, and echo replies let back without conntrack: ping works, the rest not
    (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -j ACCEPT",
      "!iptables -I DOCKER-USER -p icmp --icmp-type echo-reply -j ACCEPT"],
     "✘ dummy1 cannot reach 172.17.0.2 — it got a reply"),
    (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -j ACCEPT",
      "!iptables -I DOCKER-USER -p icmp --icmp-type echo-reply -j ACCEPT"],
     "✘ dummy1 opens a TCP connection to 172.19.0.2:8000 — none"),
    (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -j ACCEPT",
      "!iptables -I DOCKER-USER -p icmp --icmp-type echo-reply -j ACCEPT"],
     "✘ DOCKER-USER lets dummy2's packets through only as answers (conntrack) — '-p icmp -m icmp --icmp-type 0"),
    # answers recognised by their TCP flags instead of conntrack: TCP and ping work, but not by conntrack
    (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
      "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -p tcp ! --syn -j ACCEPT",
      "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -p icmp --icmp-type echo-reply -j ACCEPT"],
     "✘ DOCKER-USER lets dummy2's packets through only as answers (conntrack) — '-s 172.19.0.0/16"),
    # after DOCKER-USER's RETURN: never reached
    (["!iptables -A DOCKER-USER -s 172.18.0.0/16 -j ACCEPT"],
     "✘ DOCKER-USER has a rule of yours — it has, but after the RETURN"),
    # Docker's own chain edited
    (["!iptables -I DOCKER-ISOLATION-STAGE-2 -j RETURN"],
     "✘ the DOCKER-ISOLATION chains are as Docker made them"),
])
def test_isolation_exercise_wrong_answers(lab, wrong, says):
    for cell in DEMO3 + wrong:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_04)
    assert not ok
    assert says in out, out


def test_port_forwarding_exercise_before_and_after_the_solution(lab):
    for cell in SETUP_05:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_05)
    assert not ok
    assert "✘ the lab's host gets the web page at localhost:8889 — no page: " in out
    assert "✔ client gets the web page at 172.17.0.1:8889" in out
    for cell in SOLUTION_05:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_05)
    assert ok, out


def test_a_listener_on_the_port_is_not_the_answer(lab):
    for cell in SETUP_05:
        lab.ok(cell)
    lab.ok("%%netns host --bg --name cheat\nexec python3 -c \"import socket, time; s = socket.socket(); "
           "s.bind(('127.0.0.1', 8889)); s.listen(); time.sleep(60)\"")
    lab.ok("import time\nfor _ in range(100):\n    if ':8889' in __import__('subprocess').run(['ss', '-Hltn'], "
           "capture_output=True, text=True).stdout:\n        break\n    time.sleep(0.1)")  # it listens
    ok, out = _verdict(lab, CHECK_05)
    assert not ok
    assert "✘ nothing listens on TCP port 8889 in the lab's host" in out
    lab.ok("%netlab stop cheat")


@pytest.mark.parametrize("wrong", [
    # to docker-proxy's port: the proxy carries it, not a DNAT to the container
    ["!iptables -t nat -I OUTPUT -d 127.0.0.1 -p tcp --dport 8889 -j REDIRECT --to-ports 8888"],
    ["!iptables -t nat -I OUTPUT -d 127.0.0.1 -p tcp --dport 8889 -j DNAT --to-destination 127.0.0.1:8888"],
    ["!iptables -t nat -I OUTPUT -d 127.0.0.1 -p tcp --dport 8889 -j DNAT --to-destination 172.17.0.1:8888",
     "!sysctl -w net.ipv4.conf.docker0.route_localnet=1",
     "!iptables -t nat -I POSTROUTING -s 127.0.0.1/32 -o docker0 -j MASQUERADE"],
], ids=["redirect", "dnat-to-the-proxy", "dnat-to-the-proxy-on-docker0"])
def test_a_path_through_the_userland_proxy_is_not_the_answer(lab, wrong):
    for cell in SETUP_05 + wrong:
        lab.ok(cell)
    ok, out = _verdict(lab, CHECK_05)
    assert not ok
    assert "✔ the lab's host gets the web page at localhost:8889" in out  # it does work...
    assert "✘ a connection to 127.0.0.1:8889 is DNATed to nginx:80 (conntrack shows it) — it ended at " in out, out
    assert "on the host itself" in out  # ...but docker-proxy carries it


SETUP_05_28 = [
    "%docker dockerd --version=28.5",
    "from netlab_magic.docker.outside import add_outside; add_outside()",
    "%docker run --name=web -d nginx",
    "%docker network create dummy1",
    "%docker run --network=dummy1 --name=other -d alpine",
    "!iptables -t nat -I DOCKER -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.17.0.2:80",
]
CHECK_05_28 = """
from netlab_magic.checks import exercise
from netlab_magic.docker.checks import check_dnat, check_docker_chain_intact, check_http
bool(exercise(check_http("outside", "203.0.113.2:8888"),
              check_dnat("outside", "203.0.113.2:8888", to="web:80"),
              check_http("other", "172.18.0.1:8888", expect=False),
              check_docker_chain_intact()))
"""


@pytest.mark.parametrize("answer, ok", [
    (["!iptables -I DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT"], True),
    (["!iptables -A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT"], False),
    (["!iptables -D DOCKER ! -i docker0 -o docker0 -j DROP"], False),
    (["!iptables -I DOCKER-USER -j ACCEPT"], False),
], ids=["the-filter-half", "after-the-drop", "the-drop-deleted", "docker-user-accepts-all"])
def test_the_outside_exercise_on_docker_28(lab, answer, ok):
    """From another machine, a by-hand DNAT needs the filter half of -p too: an ACCEPT above the
    DOCKER chain's DROP for the bridge, and nothing that opens more."""
    for cell in SETUP_05_28:
        lab.ok(cell)
    assert not _verdict(lab, CHECK_05_28)[0]
    for cell in answer:
        lab.ok(cell)
    verdict, out = _verdict(lab, CHECK_05_28)
    assert verdict == ok, out


def test_checks_before_dockerd_say_so(lab):
    r = lab.ok("from netlab_magic.docker.checks import check_isolation_intact, check_http\n"
               "print(check_isolation_intact()); print(check_http('nowhere', 'localhost:1'))")
    assert "✘ the DOCKER-ISOLATION chains are as Docker made them — there is no chain" in r.stdout \
        or "dockerd has not started" in r.stdout
    assert "namespace 'nowhere' does not exist" in r.stdout


@pytest.mark.parametrize("on", [False, True])
def test_a_container_reaches_its_own_published_port_through_the_host(lab, on):
    """Notebook 05 shows it: proxy off, Docker puts the container's bridge port in hairpin mode
    (libnetwork bridge.go CreateEndpoint); proxy on, docker-proxy serves it."""
    lab.ok(f"%docker dockerd --userland-proxy={str(on).lower()}")
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    ports = lab.ok("!bridge -d link show").stdout
    assert ("hairpin on" in ports) != on, ports
    r = lab.ok("from netlab_magic.docker.checks import check_http\nprint(check_http('nginx', '172.17.0.1:8888'))")
    assert r.stdout.startswith("✔"), r.stdout
