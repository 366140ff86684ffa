"""How each broken lab is built: the talk's labs as shell scripts, and Docker's with ``%docker``.

A builder is a callable that takes the lab and makes the broken lab in it. What is broken is not
said here (that is the puzzle): :mod:`~netlab_magic.troubleshoot.scenarios` says it.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from typing import Any, Callable

from ..errors import NetlabError
from ..model import HOST
from ..packets.conntrack import read_conntrack

#: Demo 1: ns1 (10.0.0.1/24) joined to the host by veth1/veth2 (the host's end left as it is).
DEMO1 = """
ip netns add ns1
ip link add veth1 type veth peer name veth2
ip link set veth1 netns ns1
ip netns exec ns1 ip link set dev lo up
ip netns exec ns1 ip addr add 10.0.0.1/24 dev veth1
ip netns exec ns1 ip link set dev veth1 up
"""
#: Demo 2: Demo 1's ns1, and ns3 (no address yet), both on bridge0.
BRIDGE = DEMO1 + """ip netns add ns3
ip link add veth3 type veth peer name veth4
ip link set veth3 netns ns3
ip netns exec ns3 ip link set dev lo up
ip netns exec ns3 ip link set dev veth3 up
ip link add bridge0 type bridge
ip addr add 10.0.0.10/24 dev bridge0
ip link set bridge0 up
ip link set veth2 master bridge0
ip link set veth4 master bridge0
ip link set dev veth2 up
ip link set dev veth4 up
"""


def routed(netns: str, inside: str, outside: str, network: str) -> str:
    """A namespace on a network of its own (``10.N.0.0/24``), the host its gateway (``.254``)."""
    return f"""
ip netns add {netns}
ip link add {inside} type veth peer name {outside}
ip link set {inside} netns {netns}
ip addr add {network}.254/24 dev {outside}
ip link set dev {outside} up
ip netns exec {netns} ip link set dev lo up
ip netns exec {netns} ip addr add {network}.1/24 dev {inside}
ip netns exec {netns} ip link set dev {inside} up
"""


ROUTED = (routed("ns1", "veth1", "veth2", "10.1.0") + "ip netns exec ns1 ip route add default via 10.1.0.254\n"
           + routed("ns2", "veth3", "veth4", "10.2.0"))
NS5 = routed("ns5", "veth5", "veth6", "10.9.0") + "ip netns exec ns5 ip route add default via 10.9.0.254\n"


def script(text: str) -> Callable[[Any], None]:
    def build(lab: Any) -> None:
        lab.run(HOST, "set -e\n" + text, check=True)
    return build



def docker(*lines: str, outside: bool = False, then: str = "") -> Callable[[Any], None]:
    """A lab built with ``%docker`` (each of ``lines``), an outside world if asked, then ``then`` in the host."""
    def build(lab: Any) -> None:
        from IPython import get_ipython

        from ..docker.outside import add_outside

        shell = get_ipython()
        if shell is None or "docker" not in shell.magics_manager.magics["line"]:
            raise NetlabError("this lab is built with %docker: run it in a notebook with netlab loaded")
        if outside:
            add_outside(lab)
        with contextlib.redirect_stdout(io.StringIO()):
            for line in lines:
                shell.run_line_magic("docker", line)
        if then:
            lab.run(HOST, "set -e\n" + then, check=True)
    return build


def stale_nat(lab: Any) -> None:
    """Logs sent from outside through a DNAT to logs1; then the DNAT (and its filter half) moved to logs2."""
    docker("run -d --name logs1 busybox", "run -d --name logs2 busybox", outside=True,
            then="iptables -t nat -A DOCKER ! -i docker0 -p udp --dport 5140 -j DNAT --to-destination 172.17.0.2\n"
                 "iptables -I DOCKER-USER -d 172.17.0.2 -p udp --dport 5140 -j ACCEPT\n")(lab)
    for netns in ("logs1", "logs2"):
        lab.start_job(netns, f"exec {sys.executable} -c 'import socket; s = socket.socket(socket.AF_INET, "
                             "socket.SOCK_DGRAM); s.bind((\"\", 5140))\nwhile True: s.recv(2048)'",
                      name=f"collector-{netns}")
    lab.start_job("outside", f"exec {sys.executable} -c 'import socket, time; s = socket.socket(socket.AF_INET, "
                             "socket.SOCK_DGRAM); s.bind((\"\", 40514))\nwhile True: s.sendto(b\"<14>tick\", "
                             "(\"203.0.113.2\", 5140)); time.sleep(0.5)'", name="sender")
    wait_for_nat(lab, "udp", 40514, "172.17.0.2:5140")  # its first packet: conntrack has the flow, NATed to logs1
    lab.run(HOST, "set -e\n"
                  "iptables -t nat -R DOCKER 1 ! -i docker0 -p udp --dport 5140 -j DNAT --to-destination 172.17.0.3\n"
                  "iptables -R DOCKER-USER 1 -d 172.17.0.3 -p udp --dport 5140 -j ACCEPT\n", check=True)


def wait_for_nat(lab: Any, protocol: str, sport: int, dnat: str, timeout: float = 60.0) -> None:
    """Until the host's conntrack holds a ``protocol`` flow from port ``sport`` DNATed to ``dnat`` (ADDR:PORT).

    What the kernel decided, read until it is there, not a guess at how long a sender takes to
    start (seconds where Python starts slowly, as in the VM's guest under TCG).
    """
    deadline = time.monotonic() + timeout
    while not any(c.original.sport == sport and c.dnat == dnat for c in read_conntrack(lab, HOST, protocol)):
        if time.monotonic() > deadline:
            raise NetlabError(f"no {protocol} flow from port {sport} was NATed to {dnat} within {timeout:g} s")
        time.sleep(0.05)


DUMMIES = ("network create dummy1", "network create dummy2",
            "run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
            "run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools")
after_return = docker(*DUMMIES, then="iptables -A DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -j ACCEPT\n"
                                        "iptables -A DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 "
                                        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n")




#: ns1's second link to the host (veth7 = 10.3.0.1, veth8 = 10.3.0.254), and its route to ns2 through it.
#: Its ARP questions name veth7's own address (arp_announce 2): with the packet's source, 10.1.0.1,
#: the host's rp_filter would refuse the question, not the packet (arp.c checks the sender's route).
SECOND_LINK = """
ip link add veth7 type veth peer name veth8
ip link set veth7 netns ns1
ip addr add 10.3.0.254/24 dev veth8
ip link set dev veth8 up
ip netns exec ns1 ip addr add 10.3.0.1/24 dev veth7
ip netns exec ns1 ip link set dev veth7 up
ip netns exec ns1 ip route add 10.2.0.0/24 via 10.3.0.254 src 10.1.0.1
ip netns exec ns1 sysctl -qw net.ipv4.conf.veth7.arp_announce=2
"""
