"""Notebook 07's broken labs: for each, the story a learner is told, how it is built, what "fixed" means.

Data, one :class:`Scenario` a lab: its checks come from :mod:`.effects`, its builder from
:mod:`.labs`, what a fix may change from :class:`~netlab_magic.changes.Allowed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..changes import Allowed
from ..checks import CheckResult
from ..model import HOST
from .effects import (address, brnf_on, carries, cut_off, delivered_to, docker_user_before_return, every, forwards,
                      not_from_outside, policy_drop, reaches, route, rules_kept, serves)
from .labs import BRIDGE, DEMO1, NS5, ROUTED, SECOND_LINK, after_return, docker, script, stale_nat


@dataclass(frozen=True)
class Scenario:
    """One broken lab: what the learner is told, how it is built, and what "fixed" means.

    ``checks`` probe the lab with real packets (what must pass, and what must stay blocked);
    ``allowed`` is what the fix may change (anything else changed is named and refused);
    ``fault`` is what :func:`show_me` tells when the learner asks: the fault, never the command.
    """

    name: str
    story: str
    build: Callable[[Any], None]
    checks: Callable[[Any], list[CheckResult]]
    allowed: Allowed
    fault: str



#: Said of changes every lab keeps: a cable or namespace of one's own goes around the lab's point.
_AROUND = {"cable *": "a cable of your own goes around the path this lab is about",
           "netns *": "the lab's namespaces are the ones in the story",
           "nftables *": "a table of your own next to iptables hides what it does"}


#: Docker's chains are dockerd's: a learner's rules between its networks belong in DOCKER-USER.
_DOCKER_USER_ONLY = Allowed(["iptables host filter DOCKER-USER"], {
    "iptables host filter DOCKER-ISOLATION*": "Docker's isolation between its networks must stay as Docker made it "
                                              "(DOCKER-USER is yours)",
    "iptables host filter DOCKER*": "Docker's own chain: dockerd rewrites it (DOCKER-USER is yours)",
    "iptables host filter FORWARD": "Docker's FORWARD: dockerd rewrites it (DOCKER-USER is yours)",
    "iptables host filter *": "a chain of your own hides what it accepts: the rules belong in DOCKER-USER",
    "iptables host raw *": "Docker's own protection of its containers",
    "iptables host *": "Docker's NAT and tables: the rules belong in DOCKER-USER",
    "sysctl *": "Docker's settings", **_AROUND}, task="DOCKER-USER")

SCENARIOS: dict[str, Scenario] = {s.name: s for s in [
    Scenario("link-down",
             "ns1 (10.0.0.1) is joined to the host (10.0.0.2) by a veth pair, as in Demo 1. "
             "ns1 cannot ping the host.",
             script(DEMO1 + "ip addr add 10.0.0.2/24 dev veth2\n"),
             every(carries("ns1", "veth1"), reaches("ns1", "10.0.0.2"), reaches(HOST, "10.0.0.1")),
             Allowed(["link host veth2"], {"link ns1 *": "ns1's side was right",
                                           "link host *": "the lab is about the host's end of ns1's cable", **_AROUND},
                     task="the host's end of the cable"),
             "veth1 is up, but its other end, veth2 in the host, was never set up: a veth carries packets "
             "only when both ends are up (LOWERLAYERDOWN, notebook 01)."),
    Scenario("no-address",
             "ns1 (10.0.0.1) is joined to the host (10.0.0.2) by a veth pair, as in Demo 1. "
             "Both ends are up, and still ns1 cannot ping the host.",
             script(DEMO1 + "ip link set dev veth2 up\n"),
             every(address(HOST, "veth2", "10.0.0.2/24"), reaches("ns1", "10.0.0.2"), reaches(HOST, "10.0.0.1")),
             Allowed(["link host veth2"], {"link ns1 *": "ns1's side was right",
                                           "link host *": "the lab is about the host's end of ns1's cable",
                                           "route *": "a route to a subnet comes with an address in it", **_AROUND},
                     task="the host's end of the cable"),
             "Nobody in the host has 10.0.0.2: veth2 has no IPv4 address at all, so nobody answers ns1's "
             "ARP question (notebook 01, the addresses of Demo 1)."),
    Scenario("wrong-subnet",
             "ns1 (10.0.0.1) and ns3 (10.0.0.3) sit on bridge0 (10.0.0.10), as in Demo 2. "
             "ns1 reaches the bridge; ns3 cannot ping ns1, nor the bridge.",
             script(BRIDGE + "ip netns exec ns3 ip addr add 10.0.1.3/24 dev veth3\n"),
             every(address("ns3", "veth3", "10.0.0.3/24"), reaches("ns3", "10.0.0.1"), reaches("ns1", "10.0.0.3"),
                  reaches("ns3", "10.0.0.10")),
             Allowed(["link ns3 veth3"], {"link ns1 *": "ns1 was right: the fault is ns3's",
                                          "link host *": "the bridge was right: the fault is ns3's",
                                          "route *": "a route to a subnet comes with an address in it", **_AROUND},
                     task="ns3's interface"),
             "ns3's only address, 10.0.1.3/24, is in another subnet than the bridge and ns1 (10.0.0.0/24): "
             "ns3 has a route to 10.0.1.0/24 and none to 10.0.0.0/24 (notebook 02)."),
    Scenario("forward-drop",
             "ns1 (10.0.0.1) and ns3 (10.0.0.3) sit on bridge0 (10.0.0.10) of a host that runs Docker "
             "(FORWARD policy DROP, br_netfilter on, ip_forward on). Both reach the bridge's address; ns3 "
             "cannot ping ns1. The host also routes to ns5 (10.9.0.1), on a network of its own that ns1 "
             "and ns3 must not reach: let them talk to each other, and to nothing more.",
             script("iptables -P FORWARD DROP\nsysctl -qw net.bridge.bridge-nf-call-iptables=1\n"
                     "sysctl -qw net.ipv4.ip_forward=1\n" + BRIDGE + NS5
                     + "ip netns exec ns3 ip addr add 10.0.0.3/24 dev veth3\n"
                       "ip netns exec ns1 ip route add default via 10.0.0.10\n"
                       "ip netns exec ns3 ip route add default via 10.0.0.10\n"),
             every(reaches("ns3", "10.0.0.1"), reaches("ns1", "10.0.0.3"), cut_off("ns3", "10.9.0.1", "ns5"),
                  cut_off("ns1", "10.9.0.1", "ns5"), policy_drop, brnf_on),
             Allowed(["iptables host filter FORWARD"], {
                 "iptables host filter *": "a chain of your own hides what it accepts: the drop is in FORWARD",
                 "iptables host *": "the drop is in filter FORWARD: the fix belongs there",
                 "sysctl host net.bridge.*": "Docker's rules see bridged traffic only through br_netfilter",
                 "sysctl host *": "the host's settings are Docker's: the drop is in filter FORWARD",
                 "link *": "the links were right: the drop is in filter FORWARD",
                 "route *": "the routes were right", **_AROUND},
                 task="filter FORWARD in the host"),
             "br_netfilter hands every frame that bridge0 passes between two of its ports to iptables' "
             "FORWARD, whose policy is DROP, and no rule accepts it (notebook 03, Demo 2)."),
    Scenario("after-return",
             "Docker's Demo 3: containers dummy1 (172.18.0.2) and dummy2 (172.19.0.2) on two networks. "
             "A colleague added two rules to DOCKER-USER so that dummy1 can reach dummy2 (and get the "
             "replies; dummy2 must still not reach dummy1), but the ping still fails.",
             after_return,
             every(reaches("dummy1", "172.19.0.2"), cut_off("dummy2", "172.18.0.2", "dummy1"),
                  not_from_outside("dummy1", "172.20.0.5", "172.19.0.2", "dummy2", "172.18.0.0/16"),
                  docker_user_before_return),
             _DOCKER_USER_ONLY,
             "Both rules of your colleague come after DOCKER-USER's `-j RETURN`: a chain is read from the "
             "top, so every packet returns to FORWARD before it meets them (notebook 04)."),
    Scenario("no-forwarding",
             "ns1 (10.1.0.1/24) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of "
             "both (10.1.0.254 and 10.2.0.254). Each pings its gateway; ns1 cannot ping ns2.",
             script(ROUTED + "ip netns exec ns2 ip route add default via 10.2.0.254\n"
                     "sysctl -qw net.ipv4.ip_forward=0\n"),
             every(forwards(HOST, "veth2", "veth4"), reaches("ns1", "10.2.0.1"), reaches("ns2", "10.1.0.1")),
             Allowed(["sysctl host net.ipv4.ip_forward", "sysctl host net.ipv4.conf.*.forwarding"],
                     {"iptables *": "nothing in the firewall drops it", "route *": "the routes were right",
                      "link *": "the links and addresses were right", "sysctl *": "that setting was right",
                      **_AROUND},
                     task="the host's forwarding"),
             "The host is not a router: net.ipv4.ip_forward is 0 in its namespace, so what comes in for "
             "another network is not passed on (notebook 02, Demo 1.5)."),
    Scenario("no-route-back",
             "ns1 (10.1.0.1/24) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of "
             "both (10.1.0.254 and 10.2.0.254) and forwards between them. ns1 cannot ping ns2.",
             script(ROUTED + "sysctl -qw net.ipv4.ip_forward=1\n"),
             every(route("ns2", "10.1.0.1"), reaches("ns1", "10.2.0.1"), reaches("ns2", "10.1.0.1")),
             Allowed(["route ns2"], {"iptables host nat *": "NAT hides ns1's address from ns2: this lab is "
                                                            "about ns2's way back",
                                     "route *": "that namespace's routes were right",
                                     "link *": "the links and addresses were right", **_AROUND},
                     task="ns2's routes"),
             "ns2 has a route only to its own network (10.2.0.0/24): its answer to 10.1.0.1 has no way "
             "out (notebook 02, Demo 1.5)."),
    # -- Docker's own failures ------------------------------------------------------------------------
    Scenario("dnat-only",
             "A host runs Docker 20.10; its uplink eth0 (203.0.113.2) leads to a machine outside (203.0.113.1) "
             "that routes 172.17.0.0/16 through the host. Containers web (172.17.0.2, a web server on port "
             "80) and db (172.17.0.3) were started without -p. A colleague published web's port 80 as the "
             "host's 8080 by hand: the outside should get web's page at http://203.0.113.2:8080/ and reach "
             "nothing else of the containers. The outside's curl hangs.",
             docker("run -d --name web nginx", "run -d --name db redis", outside=True,
                     then="ip netns exec outside ip route add 172.17.0.0/16 via 203.0.113.2\n"
                          "iptables -t nat -A DOCKER ! -i docker0 -p tcp --dport 8080 "
                          "-j DNAT --to-destination 172.17.0.2:80\n"),
             every(serves("outside", "http://203.0.113.2:8080/"), cut_off("outside", "172.17.0.3", "db"),
                  cut_off("outside", "172.17.0.2", "web", port=22), docker_user_before_return),
             Allowed(["iptables host filter DOCKER", "iptables host filter DOCKER-USER"], {
                 "iptables host nat *": "the DNAT was right: the trace shows it rewrite the destination",
                 "iptables host filter DOCKER-ISOLATION*": "Docker's isolation between its networks must stay",
                 "iptables host filter FORWARD": "Docker's FORWARD: dockerd rewrites it (what a published port "
                                                 "needs goes in DOCKER, or yours in DOCKER-USER)",
                 "iptables host filter *": "a chain of your own hides what it accepts",
                 "iptables host raw *": "Docker's own protection of its containers",
                 "iptables host *": "Docker's tables: the missing rule is a filter rule",
                 "route *": "the routes were right", "sysctl *": "Docker's settings", **_AROUND},
                 task="filter DOCKER or DOCKER-USER"),
             "The DNAT rewrote the request's destination to 172.17.0.2:80, so the host forwards it, and "
             "filter FORWARD (policy DROP) has no rule that accepts it: `docker run -p` writes two rules, a "
             "DNAT in nat DOCKER and an ACCEPT for the container's port in filter DOCKER, and the colleague "
             "wrote only the first (notebook 05)."),
    Scenario("localnet-off",
             "A host runs Docker 20.10 with the userland proxy off (no docker-proxy: the kernel's NAT serves "
             "published ports). Container web (172.17.0.2) publishes its port 80 as 8080. On the host, "
             "curl 172.17.0.2 gets the page and curl 127.0.0.1:8080 hangs. Make the host's 127.0.0.1:8080 "
             "answer, with the proxy still off.",
             docker("run -d -p 8080:80 --name web nginx",
                     then="sysctl -qw net.ipv4.conf.docker0.route_localnet=0\n"),
             every(serves(HOST, "http://127.0.0.1:8080/"), serves(HOST, "http://172.17.0.2/")),
             Allowed(["sysctl host net.ipv4.conf.docker0.route_localnet"], {
                 "sysctl host net.ipv4.conf.all.*": "conf/all counts for every interface of the host: only "
                                                    "docker0 needed changing",
                 "sysctl host net.ipv4.conf.default.*": "that is the value of interfaces made from now on: "
                                                        "only docker0 needed changing",
                 "sysctl *": "that setting was right",
                 "iptables *": "Docker's rules were right: the trace shows the DNAT happen",
                 "route *": "the routes were right", "link *": "the links were right", **_AROUND},
                 task="docker0's settings"),
             "OUTPUT's DNAT turns 127.0.0.1:8080 into 172.17.0.2:80, but the source stays 127.0.0.1 until "
             "POSTROUTING, and the kernel routes a packet with a loopback source out of an interface only "
             "where that interface's route_localnet is 1 (Documentation/networking/ip-sysctl.rst). dockerd "
             "sets it on each bridge when the proxy is off (bridge.go, setupLoopbackAddressesRouting); "
             "docker0's is 0."),
    Scenario("stateless-reply",
             "Containers dummy1 (172.18.0.2) on network dummy1, web2 (172.19.0.2, a web server on port 80) "
             "and dummy2 (172.19.0.3) on network dummy2. dummy1 must get web2's page; nothing on dummy2 may "
             "open a connection to dummy1. A colleague wrote one rule in DOCKER-USER for each way; dummy1's "
             "curl hangs.",
             docker("network create dummy1", "network create dummy2",
                     "run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
                     "run --network=dummy2 --name=web2 -d nginx",
                     "run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools",
                     then="iptables -I DOCKER-USER -s 172.18.0.0/16 -d 172.19.0.0/16 -p tcp --dport 80 -j ACCEPT\n"
                          "iptables -I DOCKER-USER -s 172.19.0.0/16 -d 172.18.0.0/16 -p tcp --dport 80 -j ACCEPT\n"),
             every(serves("dummy1", "http://172.19.0.2/"), cut_off("dummy2", "172.18.0.2", "dummy1", port=80),
                  cut_off("dummy2", "172.18.0.2", "dummy1", port=9, sport=80), docker_user_before_return),
             _DOCKER_USER_ONLY,
             "The rule meant for web2's answers matches packets *to* port 80 from dummy2's network. An "
             "answer comes *from* port 80, to dummy1's port of the moment: the rule matches none of it, "
             "and it lets anything on dummy2 open a connection to dummy1's port 80. Which packet answers a "
             "connection is what conntrack knows, not a port number (notebook 04)."),
    Scenario("rp-strict",
             "ns1 (10.1.0.1) and ns2 (10.2.0.1/24) are on two networks; the host is the gateway of both and "
             "forwards between them. ns1 has a second link to the host, veth7 (10.3.0.1/24; the host's end "
             "is veth8, 10.3.0.254), and its owner routes what goes to ns2 through it, from 10.1.0.1. ns1 "
             "cannot ping ns2, nor ns2 ns1. Keep ns1's routes, and keep the host refusing sources it has "
             "no route to.",
             script(ROUTED + "ip netns exec ns2 ip route add default via 10.2.0.254\n" + SECOND_LINK
                     + "sysctl -qw net.ipv4.ip_forward=1\n"
                       "sysctl -qw net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.veth8.rp_filter=1\n"),
             every(reaches("ns1", "10.2.0.1"), reaches("ns2", "10.1.0.1"),
                  not_from_outside("ns1", "198.51.100.7", "10.2.0.1", "ns2", "the networks the host has routes to",
                                    let_through="the host now takes sources from outside")),
             Allowed(["sysctl host net.ipv4.conf.veth8.rp_filter"], {
                 "sysctl host net.ipv4.conf.all.*": "conf/all counts for every interface of the host: only veth8's "
                                                    "needed changing",
                 "sysctl *": "that setting was right",
                 "route ns1": "ns1's routes are its owner's choice: the story keeps them",
                 "route *": "the routes were right: the host drops what comes in on veth8",
                 "iptables *": "nothing in the firewall drops it",
                 "link *": "the links and addresses were right", **_AROUND},
                 task="veth8's settings"),
             "The host filters reverse paths strictly (rp_filter 1): it takes a packet from 10.1.0.1 only "
             "on the interface it would answer 10.1.0.1 through, veth2. ns1 sends through veth7, so its "
             "packets come in on veth8 and die after PREROUTING (nstat's IPReversePathFilter counts them; "
             "notebook 02). The kernel uses the higher of conf/all and the interface's value."),
    Scenario("raw-drop",
             "A host was upgraded from Docker 20.10 to 28.5. Its uplink eth0 (203.0.113.2) leads to the LAN "
             "203.0.113.0/24, where a machine (outside, 203.0.113.1) routes 172.17.0.0/16 through the host; "
             "it also speaks for another network, from 198.51.100.1. Container web (172.17.0.2) "
             "publishes port 80 as 8080, and db (172.17.0.3) publishes nothing. The LAN used to fetch web's "
             "page from the container's own address, http://172.17.0.2/; since the upgrade that hangs, and "
             "the host's 8080 still answers. Let the LAN reach web's port 80 directly again, and no one "
             "else anything more.",
             docker("dockerd --version=28.5", "run -d -p 8080:80 --name web nginx", "run -d --name db redis",
                     outside=True,
                     then="ip netns exec outside sh -c 'ip route add 172.17.0.0/16 via 203.0.113.2 && "
                          "ip addr add 198.51.100.1/32 dev lo'\n"),
             every(serves("outside", "http://172.17.0.2/"), serves("outside", "http://203.0.113.2:8080/"),
                  cut_off("outside", "172.17.0.2", "web", port=80, source="198.51.100.1"),
                  cut_off("outside", "172.17.0.3", "db", port=80),
                  rules_kept("raw", "PREROUTING", "-d 172.17.0.2/32 ! -i docker0 -j DROP",
                              "-d 172.17.0.3/32 ! -i docker0 -j DROP", whose="Docker's drops")),
             Allowed(["iptables host raw PREROUTING"], {
                 "iptables host filter *": "filter already accepts web's port 80 (Docker's DOCKER chain): the "
                                           "trace shows where the request dies",
                 "iptables host nat *": "no NAT is involved in reaching a container by its own address",
                 "iptables host raw *": "a chain of your own hides what it accepts",
                 "iptables host *": "Docker's tables",
                 "sysctl *": "Docker's settings", "route *": "the routes were right",
                 "link *": "the links and addresses were right", **_AROUND},
                 task="raw PREROUTING"),
             "Docker 28 protects each container in the raw table, before connection tracking and NAT: raw "
             "PREROUTING drops every packet for 172.17.0.2 that does not come in through docker0 "
             "(libnetwork's filterDirectAccess). The LAN's request comes in through eth0: it dies there, "
             "although filter's DOCKER chain accepts web's published port 80 (notebook 04)."),
    Scenario("stale-nat",
             "A host runs Docker 20.10; the machine outside (203.0.113.1, on the host's eth0) sends its logs "
             "over UDP, every half second from its port 40514, to the host's port 5140, which an admin "
             "forwarded by hand (a DNAT, and an ACCEPT in DOCKER-USER) to the collector logs1 (172.17.0.2). "
             "The collector moved to logs2 (172.17.0.3) and the admin changed both rules to 172.17.0.3; "
             "logs2 receives nothing. The sender keeps running: make its logs reach logs2.",
             stale_nat,
             every(delivered_to("outside", "-p udp --sport 40514 --dport 5140", "logs2", "logs1", "sender")),
             Allowed([], {"iptables *": "the admin's rules are right now: they are not what the flow follows",
                          "sysctl *": "the host's settings were right", "route *": "the routes were right",
                          "link *": "the links and addresses were right", **_AROUND},
                     task="the host's conntrack table"),
             "NAT is decided once per connection, on its first packet, and remembered in conntrack: the "
             "sender's flow (203.0.113.1:40514 to 203.0.113.2:5140) was NATed to 172.17.0.2 before the rule "
             "changed, and every packet of it since follows that entry, never the nat table. As long as "
             "packets keep coming, the entry never times out (notebook 06)."),
]}
