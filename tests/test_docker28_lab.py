"""Both Docker models in a real lab: moby's documented rules, and real traffic proving each model.

- Docker Engine 28.5: the lab host's ``iptables-save`` equals moby's own documents of that release
  (``tests/fixtures/docker28/``) for its three scenarios, chains and each chain's rules in order,
  with the userland proxy on and off.
- Both releases, real packets: isolation holds between networks (ping and TCP); a published port
  answers from the host (OUTPUT) and from another machine (the lab's "outside", PREROUTING); a
  port published on 127.0.0.1 does not answer from outside; a container's outbound traffic is
  MASQUERADEd for real (the outside has no route back to it otherwise); an ``--internal`` network
  reaches nothing outside; ``enable_icc=false`` stops container-to-container traffic.
- Bad input, for both releases: one line in Docker's words, and nothing changed.

Every packet stays inside the lab's namespaces (the outside is one of them, 203.0.113.0/24).
"""

from __future__ import annotations

import re
import time

import pytest

from netlab_magic.linux.iptables import Tables
from support.docker28_documents import as_documented, documented

VERSIONS = ["20.10", "28.5"]
OUTSIDE = "from netlab_magic.docker.outside import add_outside; add_outside()"


def start(k, version: str, proxy: bool = False, forwarding: bool = False) -> None:
    """A fresh lab whose dockerd models ``version`` (forwarding already on: as in moby's tests)."""
    k.ok("%netlab reset")
    if forwarding:
        k.ok("!sysctl -qw net.ipv4.ip_forward=1")
    r = k.ok(f"%docker dockerd --version={version} --userland-proxy={str(proxy).lower()}")
    assert f"--userland-proxy={str(proxy).lower()}" in r.stdout and version.split(".")[0] in r.stdout


def lab_tables(k) -> Tables:
    return Tables.parse(k.ok("!iptables-save").stdout)


def fetch(k, where: str, url: str, timeout: float = 1.5, tries: int = 1) -> str:
    """``curl`` from a namespace; the page's title, or what went wrong."""
    for _ in range(tries):
        r = k.run(f"%netns {where} curl -sS -m {timeout} {url}")
        if "Welcome to nginx!" in r.stdout:
            return "nginx"
        time.sleep(0.2)
    return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "nothing"


def pings(k, where: str, ip: str) -> bool:
    return "1 received" in k.run(f"%netns {where} ping -c 1 -W 1 {ip}").stdout


def ip_of(k, name: str) -> str:
    return k.ok(f"%docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}' "
                f"{name}").stdout.strip()


# -- Docker 28.5's rules in a real lab, as moby documents them -----------------------------------------


@pytest.mark.parametrize("name", ["new-daemon", "usernet-portmap", "usernet-portmap-noproxy"])
def test_the_lab_holds_what_moby_documents(kernel, name):
    start(kernel, "28.5", proxy=not name.endswith("noproxy"), forwarding=True)
    if name != "new-daemon":
        kernel.ok("%docker network create -o com.docker.network.bridge.name=bridge1 "
                  "--subnet 192.0.2.0/24 --gateway 192.0.2.1 bridge1")
        kernel.ok("%docker run --network bridge1 -p 8080:80 --name c1 -d busybox")
    want = documented(name)
    assert as_documented(lab_tables(kernel), want) == want
    model = kernel.value("__import__('netlab_magic.docker.rules', fromlist=['x']).build("
                         "__import__('netlab_magic.docker.engine', fromlist=['x']).engine().daemon).save()")
    assert lab_tables(kernel).rules() == Tables.parse(model).rules()


# -- real traffic, both models --------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_isolation_between_networks_ping_and_tcp(kernel, version):
    start(kernel, version)
    for cell in ("%docker network create dummy1", "%docker network create dummy2",
                 "%docker run --network=dummy1 --name=a1 -d alpine", "%docker run --network=dummy1 --name=web1 -d nginx",
                 "%docker run --network=dummy2 --name=b1 -d alpine", "%docker run --network=dummy2 --name=web2 -d nginx"):
        kernel.ok(cell)
    assert pings(kernel, "a1", ip_of(kernel, "web1")) and fetch(kernel, "a1", ip_of(kernel, "web1"), tries=10) == "nginx"
    assert not pings(kernel, "a1", ip_of(kernel, "b1"))
    assert fetch(kernel, "a1", ip_of(kernel, "web2")) != "nginx"
    assert fetch(kernel, "b1", ip_of(kernel, "web1")) != "nginx"
    assert fetch(kernel, "b1", ip_of(kernel, "web2")) == "nginx"


@pytest.mark.parametrize("proxy", [False, True], ids=["proxy-off", "proxy-on"])
@pytest.mark.parametrize("version", VERSIONS)
def test_published_ports_from_the_host_and_from_outside(kernel, version, proxy):
    start(kernel, version, proxy)
    kernel.ok(OUTSIDE)
    kernel.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    kernel.ok("%docker run -p 127.0.0.1:8081:80 --name=local -d nginx")
    assert fetch(kernel, "host", "localhost:8888", tries=10) == "nginx"  # OUTPUT
    assert fetch(kernel, "host", "203.0.113.2:8888") == "nginx"
    assert fetch(kernel, "outside", "203.0.113.2:8888") == "nginx"  # PREROUTING, from another machine
    assert fetch(kernel, "host", "127.0.0.1:8081") == "nginx"
    assert fetch(kernel, "outside", "203.0.113.2:8081") != "nginx"  # published on loopback only
    # the outside routes to the container's address itself: 20.10 lets it in (its FORWARD
    # policy is DROP, but the port's ACCEPT matches), 28.5 drops it in raw PREROUTING
    kernel.ok("%netns outside ip route add 172.17.0.0/16 via 203.0.113.2")
    direct = fetch(kernel, "outside", "172.17.0.2:80")
    assert (direct == "nginx") == (version == "20.10"), direct


@pytest.mark.parametrize("version", VERSIONS)
def test_outbound_traffic_is_masqueraded_for_real(kernel, version):
    start(kernel, version)
    kernel.ok(OUTSIDE)
    kernel.ok("%%netns outside --bg --name seen\nexec python3 -m http.server 80 --bind 203.0.113.1")
    kernel.ok("%docker network create plain")
    kernel.ok("%docker network create -o com.docker.network.bridge.enable_ip_masquerade=false bare")
    kernel.ok("%docker run --network plain --name=c1 -d alpine")
    kernel.ok("%docker run --network bare --name=c2 -d alpine")
    for _ in range(20):
        if "Directory listing" in kernel.run("%netns c1 curl -sS -m 1 203.0.113.1").stdout:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("c1 never got the outside's page")
    assert "203.0.113.2 - -" in kernel.ok("%netlab output seen").stdout  # the host's address, not 172.x
    assert "Directory listing" not in kernel.run("%netns c2 curl -sS -m 1.5 203.0.113.1").stdout  # no way back
    kernel.ok("%netlab stop seen")


@pytest.mark.parametrize("version", VERSIONS)
def test_internal_networks_reach_nothing_outside(kernel, version):
    start(kernel, version)
    kernel.ok(OUTSIDE)
    kernel.ok("%docker network create --internal inner")
    kernel.ok("%docker network create open")
    kernel.ok("%docker run --network inner --name=i1 -d alpine")
    kernel.ok("%docker run --network inner --name=i2 -d alpine")
    kernel.ok("%docker run --network open --name=o1 -d alpine")
    assert pings(kernel, "i1", ip_of(kernel, "i2"))  # inside the network: yes
    assert not pings(kernel, "i1", "203.0.113.1")
    assert not pings(kernel, "i1", ip_of(kernel, "o1"))
    kernel.ok("%netns i1 ip route add default via 172.18.0.1")  # even with a way out, none
    assert not pings(kernel, "i1", "203.0.113.1")
    assert not pings(kernel, "o1", ip_of(kernel, "i1"))
    assert pings(kernel, "o1", "203.0.113.1")


@pytest.mark.parametrize("version", VERSIONS)
def test_icc_false_stops_container_to_container_traffic(kernel, version):
    start(kernel, version)
    kernel.ok("%docker network create -o com.docker.network.bridge.enable_icc=false quiet")
    kernel.ok("%docker network create chatty")
    for name, net in (("q1", "quiet"), ("q2", "quiet"), ("c1", "chatty"), ("c2", "chatty")):
        kernel.ok(f"%docker run --network {net} --name={name} -d alpine")
    assert kernel.ok("!sysctl -n net.bridge.bridge-nf-call-iptables").stdout.strip() == "1"
    assert not pings(kernel, "q1", ip_of(kernel, "q2"))
    assert pings(kernel, "c1", ip_of(kernel, "c2"))
    assert pings(kernel, "q1", "172.18.0.1")  # the gateway, the host itself: still there


# -- options, versions and bad input ------------------------------------------------------------------

BAD = [
    ("%docker dockerd --version=27.0", "unknown Docker version '27.0': this lab knows Docker Engine 20.10 and 28.5"),
    ("%docker network create -o com.docker.network.bridge.foo=1 x1", "-o com.docker.network.bridge.foo: this lab"),
    ("%docker network create --attachable x1", "%docker network create: unsupported flag --attachable"),
    ("%docker network create --subnet 10.9.0.0/33 x1", "invalid CIDR address: 10.9.0.0/33"),
    ("%docker network create --subnet 10.9.0.0/24 --gateway 10.8.0.1 x1", "no matching subnet for gateway 10.8.0.1"),
    ("%docker network create --gateway 10.8.0.1 x1", "every ip-range or gateway must have a corresponding subnet"),
    ("%docker network create -o com.docker.network.bridge.enable_icc=maybe x1",
     'failed to parse com.docker.network.bridge.enable_icc value: maybe (strconv.ParseBool: parsing "maybe": '
     'invalid syntax)'),
    ("%docker network create -o com.docker.network.bridge.name=docker0 x1",
     "networks have same bridge name"),
    ("%docker run -p 70000:80 -d --name x2 nginx", "invalid hostPort: 70000"),
    ("%docker run -p 8080:80/sctp -d --name x2 nginx", "invalid proto: sctp"),
    ("%docker run -p 8080:0 -d --name x2 nginx", "invalid containerPort: 0"),
]
BAD_28 = [("%docker network create -o com.docker.network.bridge.gateway_mode_ipv4=bogus x1",
           "failed to parse com.docker.network.bridge.gateway_mode_ipv4 value: bogus (unknown gateway mode bogus)")]
BAD_20 = [("%docker network create -o com.docker.network.bridge.gateway_mode_ipv4=routed x1",
           "Docker Engine 20.10's bridge driver has no such option (it came with 27.0")]


def state(k) -> dict:
    return {"netns": k.ok("!ip netns list").stdout, "links": k.ok("!ip -br link").stdout.split()[::3],
            "rules": k.ok("!iptables-save | grep -v '^#'").stdout, "networks": k.ok("%docker network ls -q").stdout}


@pytest.mark.parametrize("version", VERSIONS)
def test_bad_input_is_one_line_and_changes_nothing(kernel, version):
    start(kernel, version)
    kernel.ok("%docker run -p 8888:80 --name=nginx -d nginx")
    before = state(kernel)
    for cell, message in BAD + (BAD_28 if version == "28.5" else BAD_20):
        r = kernel.run(cell)
        assert r.usage_error and message in r.usage_error, (cell, r.usage_error)
        assert "Traceback" not in r.stdout + r.stderr and r.stdout == "", cell
        assert state(kernel) == before, cell
    assert "dockerd " in kernel.ok(f"%docker dockerd --version={version}").stdout  # the same again: fine
    other = "28.5" if version == "20.10" else "20.10"
    r = kernel.run(f"%docker dockerd --version={other}")
    assert r.usage_error and "is already running" in r.usage_error and "%netlab reset first" in r.usage_error


@pytest.mark.parametrize("version", VERSIONS)
def test_network_options_and_what_docker_says_about_itself(kernel, version):
    start(kernel, version)
    kernel.ok("%docker network create -o com.docker.network.bridge.name=bridge1 --subnet 192.0.2.0/24 "
              "--gateway 192.0.2.254 bridge1")
    assert "192.0.2.254/24" in kernel.ok("!ip -br addr show dev bridge1").stdout
    kernel.ok("%docker run --network bridge1 --name=c1 -d alpine")
    assert "default via 192.0.2.254" in kernel.ok("%docker exec c1 ip route").stdout
    assert kernel.ok("%docker network inspect -f '{{index .Options \"com.docker.network.bridge.name\"}}' "
                     "bridge1").stdout == "bridge1\n"
    version_out = kernel.ok("%docker version").stdout
    assert re.search(rf"Server: Docker Engine {re.escape(version)}\.\d+", version_out), version_out
    assert f"netlab_magic.docker.bridge{version.split('.')[0]}" in version_out
    info = kernel.ok("%docker info").stdout
    assert "Containers: 1" in info and f"this lab's model of Docker Engine {version}" in info
    mac = kernel.ok("%docker inspect -f '{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}' c1").stdout
    # the gateway is .254, so the lowest free address is .1 (libnetwork's bitmap reserves only .0 and
    # the broadcast address); 20.10 makes the MAC of it
    assert (mac.strip() == "02:42:c0:00:02:01") == (version == "20.10")
