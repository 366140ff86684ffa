"""netlab_magic.docker.checks: the exercises of notebooks 04 (isolation) and 05 (port forwarding).

Each exercise is set up once, in the module's real kernel, as the notebook leaves the lab when
the exercise begins (its ``before`` recorded, its firewall saved). Then every answer is typed
in, checked, and taken back (``iptables-restore`` of the saved firewall, the sysctls as they
were, whatever else it made removed): correct answers in several forms pass, and answers of
each gaming kind fail, each with the one line that says what went wrong. Real namespaces, real
packets, real kernels; every packet stays inside the lab.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

ENGINE = "__import__('netlab_magic.docker.engine', fromlist=['engine']).engine()"
TAKE_BACK = """
import subprocess
from netlab_magic.changes import record
before = record()
_saved = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
def _take_back():
    subprocess.run(["iptables-restore"], input=_saved, text=True, check=True)
    for key, value in before.sysctls["host"].items():
        if key.endswith("route_localnet"):
            with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                f.write(value)
"""
DEMO3 = [
    "%docker network create dummy1",
    "%docker network create dummy2",
    "%docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
    "%docker run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools",
    "%docker run --name=c0 -d alpine",
    "%docker run --network=dummy1 --name=dummy1b -d alpine",
    f"br1, br2 = ({ENGINE}.daemon.networks['dummy1'].bridge, {ENGINE}.daemon.networks['dummy2'].bridge)",
]
CHECK_04 = """
from netlab_magic.checks import check_ping, exercise
from netlab_magic.docker.checks import (check_blocked, check_docker_rules_kept, check_kept_changes,
                                        check_opens_no_more, check_tcp)
bool(exercise(check_ping("dummy1", "172.19.0.2"),
              check_tcp("dummy1", "dummy2", "172.19.0.2"),
              check_blocked(("dummy2", "dummy1"), ("dummy1", "c0"), ("c0", "dummy1"), ("dummy2", "c0"), ("c0", "dummy2")),
              check_opens_no_more(("dummy1", "dummy2")),
              check_docker_rules_kept(),
              check_kept_changes(before, [{allowed}], "{task}")))
"""
SETUP_05 = [
    "%docker dockerd --userland-proxy=true",
    "%docker run -p 8888:80 --name=nginx -d nginx",
    "!iptables -t nat -I DOCKER -p tcp -m tcp --dport 8889 -j DNAT --to-destination 172.17.0.2:80",
    "%docker run --name=client -d alpine",
]
CHECK_05 = """
from netlab_magic.checks import exercise
from netlab_magic.docker.checks import (check_dnat, check_docker_rules_kept, check_http, check_kept_changes,
                                        check_no_listener, check_proxy_serves, check_source_kept)
bool(exercise(check_http("host", "localhost:8889"),
              check_no_listener("host", 8889),
              check_dnat("host", "127.0.0.1:8889", to="nginx:80"),
              check_http("client", "172.17.0.1:8889"),
              check_proxy_serves(8888),
              check_source_kept("client", "nginx:80"),
              check_docker_rules_kept(),
              check_kept_changes(before, ["iptables host nat OUTPUT", "iptables host nat POSTROUTING",
                                          "sysctl host net.ipv4.conf.docker0.route_localnet"],
                                 "nat OUTPUT, nat POSTROUTING and docker0's route_localnet",
                                 why={"sysctl host *route_localnet": "only docker0, where the packet leaves, needs it"})))
"""
SETUP_05_28 = [
    "%docker dockerd --version=28.5",
    "from netlab_magic.docker.outside import add_outside; add_outside()",
    "%docker run --name=web -d nginx",
    "%docker network create dummy1",
    "%docker run --network=dummy1 --name=other -d alpine",
    "!iptables -t nat -I DOCKER -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.17.0.2:80",
    "%netns outside ip route add 172.17.0.0/16 via 203.0.113.2",
]
CHECK_05_28 = """
from netlab_magic.checks import exercise
from netlab_magic.docker.checks import (check_blocked, check_dnat, check_docker_rules_kept, check_http,
                                        check_kept_changes, check_opens_no_more)
bool(exercise(check_http("outside", "203.0.113.2:8888"),
              check_dnat("outside", "203.0.113.2:8888", to="web:80"),
              check_blocked(("other", "web", "172.18.0.1:8888"), ("outside", "web")),
              check_opens_no_more(("outside", "web:80")),
              check_docker_rules_kept(),
              check_kept_changes(before, ["iptables host filter DOCKER"], "filter DOCKER")))
"""
EXERCISES = {
    "04": (DEMO3, CHECK_04.replace("{allowed}", '"iptables host filter DOCKER-USER"').replace("{task}", "DOCKER-USER")),
    "04-28": (["%docker dockerd --version=28.5", *DEMO3],
              CHECK_04.replace("{allowed}", '"iptables host filter DOCKER-USER", "iptables host raw PREROUTING"')
              .replace("{task}", "DOCKER-USER and raw PREROUTING")),
    "05": (SETUP_05, CHECK_05),
    "05-28": (SETUP_05_28, CHECK_05_28),
}


def ready(kernel, name: str) -> str:
    """The lab as exercise ``name`` begins (built once per module kernel, then only taken back)."""
    setup, check = EXERCISES[name]
    if getattr(kernel, "exercise", None) != name:
        kernel.ok("%netlab reset")
        for cell in setup:
            kernel.ok(cell)
        kernel.ok(TAKE_BACK)
        kernel.exercise = name
    kernel.ok("_take_back()")
    return check


def answer(kernel, name: str, cells: list[str], undo: list[str] = ()) -> tuple[bool, str]:
    """Type ``cells`` into exercise ``name``'s lab and run its check: (passed, what it printed)."""
    check = ready(kernel, name)
    try:
        for cell in cells:
            kernel.ok(cell)
        r = kernel.ok(check)
    finally:
        for cell in undo:
            kernel.ok(cell)
    return r.results[-1] == "True", r.stdout


# -- 04: let dummy1 talk to dummy2 (Docker 20.10) -----------------------------------------------

RELATED = "-m conntrack --ctstate RELATED,ESTABLISHED"


CORRECT_04 = {
    "addresses-conntrack": [f"!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                            f"!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 {RELATED} -j ACCEPT"],
    "bridges-state": ["!iptables -I DOCKER-USER -i {br1} -o {br2} -j ACCEPT",
                      "!iptables -I DOCKER-USER -i {br2} -o {br1} -m state --state RELATED,ESTABLISHED -j ACCEPT"],
    "containers-ctdir-reply": ["!iptables -I DOCKER-USER -s 172.18.0.2 -d 172.19.0.2 -j ACCEPT",
                               "!iptables -I DOCKER-USER -m conntrack --ctdir REPLY -j ACCEPT"],
    "own-chain": ["!iptables -N FROM-DUMMY1", "!iptables -A FROM-DUMMY1 -o {br2} -j ACCEPT",
                  "!iptables -I DOCKER-USER -i {br1} -j FROM-DUMMY1",
                  "!iptables -I DOCKER-USER -m conntrack --ctstate ESTABLISHED -j ACCEPT"],
}
GAMING_04 = {
    "both-directions": (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                         "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT"],
                        "\u2718 dummy2 cannot start a conversation with dummy1 \u2014 a TCP SYN was delivered to dummy1"),
    "answers-by-flags": (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                          "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -p tcp ! --syn -j ACCEPT",
                          "!iptables -I DOCKER-USER -s 172.19.0.0/16 -p icmp --icmp-type echo-reply -j ACCEPT"],
                         "\u2718 dummy2 cannot start a conversation with dummy1 \u2014 a TCP ACK that answers nothing "
                         "was delivered to dummy1: something lets packets through because they look like answers"),
    "outside-the-named-chain": (["!iptables -I FORWARD -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                                 f"!iptables -I FORWARD -s 172.19.0.0/16 -d 172.18.0.0/16 {RELATED} -j ACCEPT"],
                                "\u2718 only DOCKER-USER changed \u2014 you also changed: filter FORWARD: rule added"),
    "accept-behind-own-chain": (["!iptables -N MINE", "!iptables -A MINE -j ACCEPT", "!iptables -I DOCKER-USER -j MINE"],
                                "\u2718 dummy2 cannot start a conversation with dummy1 \u2014 a TCP SYN was delivered"),
    "wider-source": (["!iptables -I DOCKER-USER -s 172.16.0.0/12 -d 172.19.0.0/16 -j ACCEPT",
                      f"!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 {RELATED} -j ACCEPT"],
                     "\u2718 c0 cannot start a conversation with dummy2 \u2014 a TCP SYN was delivered to dummy2"),
    "docker-chain-weakened": (["!iptables -I DOCKER-ISOLATION-STAGE-2 -o {br2} -j RETURN"],
                              "\u2718 only DOCKER-USER changed \u2014 you also changed: filter DOCKER-ISOLATION-STAGE-2"),
    "docker-rule-deleted": (["!iptables -D DOCKER-ISOLATION-STAGE-2 -o {br2} -j DROP"],
                            "\u2718 Docker's own rules are all there, in Docker's order \u2014 you changed filter "
                            "DOCKER-ISOLATION-STAGE-2: Docker's isolation of network dummy2 is gone"),
    "catch-all-with-a-comment": (["!iptables -I DOCKER-USER -m comment --comment 'dummy1 to dummy2 only' -j ACCEPT"],
                                 "would now pass, where Docker drops it; it meets `-A DOCKER-USER -m comment --comment "
                                 '"dummy1 to dummy2 only" -j ACCEPT`'),
    "split-halves": (["!iptables -I DOCKER-USER -d 0.0.0.0/1 -j ACCEPT", "!iptables -I DOCKER-USER -d 128.0.0.0/1 -j ACCEPT"],
                     "\u2718 your rules open nothing more than the exercise asks"),
    "new-and-established": ([f"!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                             "!iptables -I DOCKER-USER -s 172.19.0.0/16 -p udp -m conntrack --ctstate NEW,ESTABLISHED "
                             "-j ACCEPT",
                             f"!iptables -I DOCKER-USER -s 172.19.0.0/16 {RELATED} -j ACCEPT"],
                            "\u2718 dummy2 cannot start a conversation with dummy1 \u2014 a UDP datagram was delivered"),
    "after-the-return": (["!iptables -A DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                         "\u2718 dummy1 can ping 172.19.0.2 \u2014 no reply"),
    "flags-behind-own-chain": (["!iptables -N ANSWERS", "!iptables -A ANSWERS -p tcp ! --syn -j ACCEPT",
                                "!iptables -A ANSWERS -p icmp --icmp-type echo-reply -j ACCEPT",
                                "!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -j ANSWERS",
                                "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                               "\u2718 dummy2 cannot start a conversation with dummy1 \u2014 a TCP ACK that answers nothing"),
    "forward-and-a-token-rule": (["!iptables -I FORWARD -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                                  f"!iptables -I FORWARD -s 172.19.0.0/16 -d 172.18.0.0/16 {RELATED} -j ACCEPT",
                                  "!iptables -I DOCKER-USER -s 10.99.0.0/16 -j RETURN"],
                                 "\u2718 only DOCKER-USER changed \u2014 you also changed: filter FORWARD: rule added"),
    "one-source-more": (["!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                         "!iptables -I DOCKER-USER -s 172.17.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                         f"!iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 {RELATED} -j ACCEPT"],
                        "\u2718 c0 cannot start a conversation with dummy2 \u2014 a TCP SYN was delivered to dummy2"),
    "a-cable-around-the-firewall": (["!ip link add cheat1 type veth peer name cheat2",
                                     "!ip link set cheat1 netns dummy1 && ip link set cheat2 netns dummy2",
                                     "%netns dummy1 ip addr add 10.99.0.1/24 dev cheat1 && ip link set cheat1 up",
                                     "%netns dummy2 ip addr add 10.99.0.2/24 dev cheat2 && ip link set cheat2 up",
                                     "%netns dummy1 ip route add 172.19.0.2/32 via 10.99.0.2",
                                     "%netns dummy2 ip route add 172.18.0.2/32 via 10.99.0.1"],
                                    "\u2718 only DOCKER-USER changed \u2014 you also changed: a new cable (veth pair) joins "
                                    "dummy1 and dummy2"),
    "a-port-moved-to-the-other-bridge": ([f"v1 = {ENGINE}.daemon.containers['dummy1'].veth", "!ip link set {v1} master {br2}"],
                                         "\u2718 only DOCKER-USER changed \u2014 you also changed: veth"),
}


# -- 04: the same on Docker 28 --------------------------------------------------------------------

CORRECT_04_28 = {
    "addresses": ["!iptables -t raw -I PREROUTING -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                  "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
    "bridges-state": ["!iptables -t raw -I PREROUTING -i {br1} -d 172.19.0.2 -j ACCEPT",
                      "!iptables -I DOCKER-USER -i {br1} -o {br2} -j ACCEPT",
                      "!iptables -I DOCKER-USER -m state --state RELATED,ESTABLISHED -j ACCEPT"],
    "containers-comment": ["!iptables -t raw -I PREROUTING -s 172.18.0.2 -d 172.19.0.2 -m comment --comment "
                           "'dummy1 to dummy2' -j ACCEPT",
                           "!iptables -I DOCKER-USER -s 172.18.0.2 -d 172.19.0.2 -j ACCEPT"],
}
GAMING_04_28 = {
    "raw-both-directions": (["!iptables -t raw -I PREROUTING -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                             "!iptables -t raw -I PREROUTING -s 172.19.0.0/16 -d 172.18.0.0/16 -j ACCEPT",
                             "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                            "\u2718 dummy2 cannot start a conversation with dummy1 \u2014 a TCP SYN now passes Docker's "
                            "protection of dummy1 (its drop of packets from other networks) and dies later, in filter "
                            "DOCKER-ISOLATION-STAGE-2"),
    "raw-accepts-all": (["!iptables -t raw -I PREROUTING -j ACCEPT",
                         "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                        "\u2718 c0 cannot start a conversation with dummy2 \u2014 a TCP SYN now passes Docker's "
                        "protection of dummy2"),
    "raw-wider-than-asked": (["!iptables -t raw -I PREROUTING -d 172.19.0.0/16 -j ACCEPT",
                              "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                             "\u2718 c0 cannot start a conversation with dummy2 \u2014 a TCP SYN now passes"),
    "raw-drop-deleted": (["!iptables -t raw -D PREROUTING -d 172.19.0.2/32 ! -i {br2} -j DROP",
                          "!iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                         "\u2718 Docker's own rules are all there, in Docker's order \u2014 you changed raw PREROUTING: "
                         "Docker's protection of dummy2 (its drop of packets from other networks) is gone"),
    "in-dockers-own-chain": (["!iptables -t raw -I PREROUTING -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT",
                              "!iptables -I DOCKER-FORWARD -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT"],
                             "\u2718 only DOCKER-USER and raw PREROUTING changed \u2014 you also changed: filter "
                             "DOCKER-FORWARD"),
}


# -- 05: localhost:8889 without a proxy -----------------------------------------------------------

LOCALNET = "!sysctl -w net.ipv4.conf.docker0.route_localnet=1"


CORRECT_05 = {
    "the-solution": ["!iptables -t nat -I OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 8889 -j DNAT --to-destination "
                     "172.17.0.2:80", LOCALNET, "!iptables -t nat -I POSTROUTING -s 127.0.0.1/32 -o docker0 -j MASQUERADE"],
    "dockers-own-masquerade": ["!iptables -t nat -A OUTPUT -o lo -p tcp --dport 8889 -j DNAT --to-destination 172.17.0.2:80",
                               LOCALNET, "!iptables -t nat -A POSTROUTING -o docker0 -m addrtype --src-type LOCAL -j MASQUERADE"],
    "own-chain-snat": ["!iptables -t nat -N LOCAL8889", "!iptables -t nat -A LOCAL8889 -p tcp --dport 8889 -j DNAT "
                       "--to-destination 172.17.0.2:80", "!iptables -t nat -I OUTPUT -d 127.0.0.1 -j LOCAL8889", LOCALNET,
                       "!iptables -t nat -I POSTROUTING -s 127.0.0.0/8 -o docker0 -j SNAT --to-source 172.17.0.1"],
    "the-talks-rule-reused": ["!iptables -t nat -I OUTPUT -d 127.0.0.1 -p tcp --dport 8889 -j DOCKER", LOCALNET,
                              "!iptables -t nat -I POSTROUTING -s 127.0.0.1 -o docker0 -j MASQUERADE"],
}
DNAT_8889 = "!iptables -t nat -I OUTPUT -d 127.0.0.1/32 -p tcp --dport 8889 -j DNAT --to-destination 172.17.0.2:80"
MASQ_LOCAL = "!iptables -t nat -I POSTROUTING -s 127.0.0.1/32 -o docker0 -j MASQUERADE"
GAMING_05 = {
    "a-broader-sysctl": ([DNAT_8889, "!sysctl -w net.ipv4.conf.all.route_localnet=1", MASQ_LOCAL],
                         "\u2718 only nat OUTPUT, nat POSTROUTING and docker0's route_localnet changed \u2014 you also "
                         "changed: net.ipv4.conf.all.route_localnet in the host changed 0 -> 1: only docker0, where the "
                         "packet leaves, needs it"),
    "a-wider-masquerade": ([DNAT_8889, LOCALNET, "!iptables -t nat -I POSTROUTING -o docker0 -j MASQUERADE"],
                           "\u2718 nginx sees client's own address when client connects to it \u2014 it arrives from "
                           "172.17.0.1"),
    "the-proxy-bypassed": (["!iptables -t nat -I OUTPUT -d 127.0.0.1 -j DOCKER", LOCALNET, MASQ_LOCAL],
                           "\u2718 docker-proxy still serves localhost:8888 (the userland proxy stays on) \u2014 the kernel "
                           "now sends localhost:8888 on to 172.17.0.2:80 itself"),
    "a-catch-all-dnat": (["!iptables -t nat -I OUTPUT -d 127.0.0.0/8 -p tcp -j DNAT --to-destination 172.17.0.2:80",
                          LOCALNET, MASQ_LOCAL],
                         "\u2718 docker-proxy still serves localhost:8888"),
    "dockers-rule-deleted": ([DNAT_8889, LOCALNET, MASQ_LOCAL, "!iptables -t nat -D DOCKER -i docker0 -j RETURN"],
                             "\u2718 Docker's own rules are all there, in Docker's order \u2014 you changed nat DOCKER"),
    "the-proxy-stopped": ([DNAT_8889, LOCALNET, MASQ_LOCAL, "%netlab stop docker-proxy-8888-tcp"],
                          "\u2718 docker-proxy still serves localhost:8888 (the userland proxy stays on) \u2014 "
                          "localhost:8888 gives no page any more"),
    "to-the-proxys-port": (["!iptables -t nat -I OUTPUT -d 127.0.0.1 -p tcp --dport 8889 -j REDIRECT --to-ports 8888"],
                           "\u2718 a connection to 127.0.0.1:8889 is DNATed to nginx:80 (conntrack shows it) \u2014 "
                           "it ended at "),
    "a-listener-on-the-port": (["%%netns host --bg --name cheat\nexec python3 -c \"import socket, time; s = socket.socket(); "
                                "s.bind(('127.0.0.1', 8889)); s.listen(); time.sleep(60)\"",
                                "import time\nfor _ in range(100):\n    if ':8889' in __import__('subprocess').run("
                                "['ss', '-Hltn'], capture_output=True, text=True).stdout:\n        break\n    time.sleep(0.1)"],
                               "\u2718 nothing listens on TCP port 8889 in the lab's host \u2014 something does"),
    "outside-the-named-chains": ([DNAT_8889, LOCALNET, "!iptables -t mangle -I OUTPUT -p tcp --dport 8889 -j ACCEPT",
                                  MASQ_LOCAL],
                                 "\u2718 only nat OUTPUT, nat POSTROUTING and docker0's route_localnet changed \u2014 you "
                                 "also changed: mangle OUTPUT"),
}


# -- 05: from another machine, on Docker 28 -------------------------------------------------------

ACCEPT_80 = "!iptables -I DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT"


CORRECT_05_28 = {
    "the-solution": [ACCEPT_80],
    "from-eth0": ["!iptables -I DOCKER -i eth0 -o docker0 -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT"],
    "own-chain": ["!iptables -N PUBLISH", "!iptables -A PUBLISH -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT",
                  "!iptables -I DOCKER -o docker0 -j PUBLISH"],
}
GAMING_05_28 = {
    "docker-user-accepts-all": (["!iptables -I DOCKER-USER -j ACCEPT"],
                                "\u2718 other cannot start a conversation with web through 172.18.0.1:8888 \u2014 a TCP SYN "
                                "was delivered to web"),
    "outside-the-named-chain": (["!iptables -I FORWARD -i eth0 -d 172.17.0.2 -p tcp --dport 80 -j ACCEPT"],
                                "\u2718 only filter DOCKER changed \u2014 you also changed: filter FORWARD"),
    "catch-all-into-the-bridge": (["!iptables -I DOCKER -o docker0 -j ACCEPT"],
                                  "\u2718 your rules open nothing more than the exercise asks \u2014 a new TCP connection "
                                  "to port 81 from outside to web, once DNATed there, would now pass"),
    "a-catch-all-with-a-comment": (["!iptables -I DOCKER -m comment --comment 'web port 80' -j ACCEPT"],
                                   "\u2718 your rules open nothing more than the exercise asks"),
    "split-halves": (["!iptables -I DOCKER -s 0.0.0.0/1 -o docker0 -j ACCEPT",
                      "!iptables -I DOCKER -s 128.0.0.0/1 -o docker0 -j ACCEPT"],
                     "\u2718 your rules open nothing more than the exercise asks"),
    "wider-than-the-container": (["!iptables -I DOCKER -d 172.17.0.0/16 ! -i docker0 -o docker0 -p tcp --dport 80 "
                                  "-j ACCEPT"],
                                 "\u2718 your rules open nothing more than the exercise asks \u2014 a new TCP connection to "
                                 "port 80 from outside to a container not started yet in bridge"),
    "dockers-drop-deleted": (["!iptables -D DOCKER ! -i docker0 -o docker0 -j DROP"],
                             "\u2718 Docker's own rules are all there, in Docker's order \u2014 you changed filter DOCKER: "
                             "Docker's drop of everything not published into network bridge is gone"),
    "raw-protection-deleted": ([ACCEPT_80, "!iptables -t raw -D PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP"],
                               "\u2718 outside cannot start a conversation with web \u2014 a TCP SYN was delivered to web"),
    "a-cable-to-the-container": (["!ip link add cheat1 type veth peer name cheat2 netns web",
                                  "!ip addr add 10.99.0.1/24 dev cheat1 && ip link set cheat1 up",
                                  "%netns web ip addr add 10.99.0.2/24 dev cheat2 && ip link set cheat2 up", ACCEPT_80],
                                 "\u2718 only filter DOCKER changed \u2014 you also changed: a new cable (veth pair) joins "
                                 "host and web"),
}


# -- every answer, exercise by exercise (each exercise's lab built once) -----------------------------

#: Per exercise: the answers that pass (name -> cells), those that fail (name -> (cells, the line
#: that says why)), and what to take back after each besides the firewall and the sysctls.
ANSWERS = {
    "04": (CORRECT_04, GAMING_04, ["!ip -n dummy1 link del cheat1 2>/dev/null; true"]),
    "04-28": (CORRECT_04_28, GAMING_04_28, []),
    "05": (CORRECT_05, GAMING_05, ["!iptables -t mangle -F OUTPUT 2>/dev/null; true"]),
    "05-28": (CORRECT_05_28, GAMING_05_28, ["!ip link del cheat1 2>/dev/null; true"]),
}
TAKE_BACK_ALSO = {"a-port-moved-to-the-other-bridge": ["!ip link set {v1} master {br1}"],
                  "a-listener-on-the-port": ["%netlab stop cheat"]}
CASES = [(exercise, name) for exercise, (good, bad, _) in ANSWERS.items() for name in ("nothing yet", *good, *bad)]


@pytest.mark.parametrize("exercise, name", CASES, ids=[f"{e}:{n}" for e, n in CASES])
def test_an_answer(kernel, exercise, name):
    """Nothing yet: only what must change fails. A correct form passes; a gaming one fails, saying why."""
    good, bad, undo = ANSWERS[exercise]
    if name == "nothing yet":
        ok, out = answer(kernel, exercise, [])
        assert not ok and out.count("\u2718") == 2, out  # the ping or the page, TCP or the DNAT
        assert "\u2714 only" in out and "\u2714 Docker's own rules are all there" in out, out
        return
    cells = good[name] if name in good else bad[name][0]
    ok, out = answer(kernel, exercise, cells, undo=undo + TAKE_BACK_ALSO.get(name, []))
    if name == "the-proxy-stopped":  # the answers after it need a running proxy: build the exercise again
        kernel.exercise = None
    if name in good:
        assert ok, out
    else:
        assert not ok
        assert bad[name][1] in out, out


# -- what the checks print ------------------------------------------------------------------------

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
#: What would hand out the fix: a command that changes the firewall, a sysctl, a link or a route.
FIXING = re.compile(r"iptables(-restore)? [^|]*(-[AIDRNXFP] |-t \w+ -[AIDRNXFP] )|sysctl -w|ip (link|addr|route) "
                    r"(add|set|del)|--to-destination")


@pytest.mark.parametrize("notebook", ["04-docker-isolation.ipynb", "05-port-forwarding.ipynb"])
def test_no_stored_check_output_hands_out_the_fix(notebook):
    cells = json.loads((NOTEBOOKS / notebook).read_text())["cells"]
    checks = [c for c in cells if c["cell_type"] == "code" and "netlab_magic.docker.checks" in "".join(c["source"])]
    assert len(checks) >= 2
    for cell in checks:
        text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                       for o in cell.get("outputs", []))
        assert "\u2718" in text or "Well done" in text, text  # the stored output is a check's
        assert not FIXING.search(text), FIXING.search(text)


def test_the_fix_pattern_sees_a_fix():
    """The test above can fail: the old hint of notebook 04 is caught."""
    assert FIXING.search("\u2718 DOCKER-USER has a rule of yours \u2014 it has none yet; try: iptables -I DOCKER-USER ...")
    assert not FIXING.search("(see its way: %netlab trace dummy2 -- nc -z -w 1 172.18.0.2 80)")


def test_checks_before_dockerd_say_so(kernel):
    kernel.ok("%netlab reset")
    kernel.exercise = None
    r = kernel.ok("from netlab_magic.docker.checks import check_blocked, check_http\n"
                  "print(check_blocked(('a', 'b'))[0]); print(check_http('nowhere', 'localhost:1'))")
    assert "\u2718 a cannot start a conversation with b \u2014 dockerd has not started" in r.stdout, r.stdout
    assert "namespace 'nowhere' does not exist" in r.stdout


@pytest.mark.parametrize("on", [False, True])
def test_a_container_reaches_its_own_published_port_through_the_host(lab, on):
    """Notebook 05 shows it: proxy off, Docker puts the container's bridge port in hairpin mode
    (libnetwork bridge.go CreateEndpoint); proxy on, docker-proxy serves it."""
    lab.exercise = None
    lab.ok(f"%docker dockerd --userland-proxy={str(on).lower()}")
    lab.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    ports = lab.ok("!bridge -d link show").stdout
    assert ("hairpin on" in ports) != on, ports
    r = lab.ok("from netlab_magic.docker.checks import check_http\nprint(check_http('nginx', '172.17.0.1:8888'))")
    assert r.stdout.startswith("\u2714"), r.stdout
