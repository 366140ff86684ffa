"""netlab_magic.docker: the bridge driver's iptables rules against real dockerd 20.10.24 output.

The fixtures under tests/fixtures/docker/ were captured from a real dockerd in throwaway
namespaces (see their README). Ids are taken from the captured ``docker network inspect``;
the only normalisation is dropping iptables-save's timestamped comment lines.
Pure tests, except the last ones, which hand the text to the real ``iptables-restore`` inside a
throwaway user + network namespace (``unshare -Urn``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netlab_magic.docker import (Daemon, PortBinding, bridge_name, default_address_pools,
                                 iptables_commands, iptables_save, mac_from_ip, sysctls,
                                 veth_name)
from netlab_magic.docker.ports import parse_publish
from netlab_magic.errors import AlreadyExists, NetlabError, NotFound

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
DUMMY1_ID = "9b8c1a221e2561b8f6e831131ea8ba0907b7e8dd9f19c9f8f68772f446464630"  # as captured


def captured(mode: str, name: str) -> str:
    """A captured iptables-save, without its comment lines (they carry timestamps)."""
    text = (FIXTURES / mode / f"{name}.iptables-save").read_text()
    return "".join(line + "\n" for line in text.splitlines() if not line.startswith("#"))


def network_ids(mode: str) -> dict[str, str]:
    inspect = json.loads((FIXTURES / mode / "network-inspect.json").read_text())
    return {n["Name"]: n["Id"] for n in inspect}


def demo_daemon(mode: str) -> Daemon:
    """dockerd as captured, after ``docker network create dummy1`` and ``dummy2``."""
    ids = network_ids(mode)
    d = Daemon(userland_proxy=(mode == "proxy-on"), default_bridge_id=ids["bridge"])
    d.network_create("dummy1", id=ids["dummy1"])
    d.network_create("dummy2", id=ids["dummy2"])
    return d


MODES = ["proxy-off", "proxy-on"]


# -- the talk's demos, rule for rule -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_daemon_start_matches_capture(mode: str) -> None:
    d = Daemon(userland_proxy=(mode == "proxy-on"), default_bridge_id=network_ids(mode)["bridge"])
    assert iptables_save(d) == captured(mode, "00-daemon-started")


@pytest.mark.parametrize("mode", MODES)
def test_networks_created_match_capture(mode: str) -> None:
    assert iptables_save(demo_daemon(mode)) == captured(mode, "01-networks-created")


@pytest.mark.parametrize("mode", MODES)
def test_demo3_one_container_per_network_matches_capture(mode: str) -> None:
    d = demo_daemon(mode)
    d.run("c1", network="dummy1")
    d.run("c2", network="dummy2")
    assert iptables_save(d) == captured(mode, "02-demo3")


@pytest.mark.parametrize("mode", MODES)
def test_demo4_published_port_matches_capture(mode: str) -> None:
    d = demo_daemon(mode)
    d.run("c1", network="dummy1")
    d.run("c2", network="dummy2")
    d.run("nginx", publish=parse_publish(["8888:80"]))  # docker run -p 8888:80 --name=nginx -d nginx
    assert iptables_save(d) == captured(mode, "03-demo4")


@pytest.mark.parametrize("mode", MODES)
def test_removing_everything_goes_back_to_the_start(mode: str) -> None:
    d = demo_daemon(mode)
    for name, net in (("c1", "dummy1"), ("c2", "dummy2"), ("nginx", "bridge")):
        d.run(name, network=net, publish=parse_publish(["8888:80"]) if name == "nginx" else ())
    for name in ("c1", "c2", "nginx"):
        d.rm(name)
    d.network_rm("dummy1")
    d.network_rm("dummy2")
    assert iptables_save(d) == captured(mode, "04-after-rm")
    assert captured(mode, "05-after-stop") == captured(mode, "04-after-rm")  # stop removes nothing


def test_internal_noicc_and_host_ip_udp_match_capture() -> None:
    ids = network_ids("extra")
    d = Daemon(default_bridge_id=ids["bridge"])
    d.network_create("inner", id=ids["inner"], internal=True)
    d.network_create("noicc", id=ids["noicc"], icc=False)
    d.run("i1", network="inner")
    d.run("n1", network="noicc", publish=parse_publish(["127.0.0.1:9999:53/udp"]))
    assert iptables_save(d) == captured("extra", "10-extra")


def test_proxy_differences_are_the_documented_ones() -> None:
    """The userland proxy changes exactly the nat rules the rules module's docstring lists."""
    on, off = Daemon(userland_proxy=True), Daemon(userland_proxy=False)
    for d in (on, off):
        d.network_create("dummy1", id=DUMMY1_ID)
        d.run("nginx", publish=parse_publish(["8888:80"]))
    text_on, text_off = iptables_save(on), iptables_save(off)
    assert "-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER" in text_on
    assert "-A OUTPUT -m addrtype --dst-type LOCAL -j DOCKER" in text_off
    assert "-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8888 -j DNAT" in text_on
    assert "-A DOCKER -p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.17.0.2:80" in text_off
    assert "-A DOCKER -i docker0 -j RETURN" in text_on
    assert "-j RETURN\n" not in text_off.split("*nat")[1]
    assert "-o docker0 -m addrtype --src-type LOCAL -j MASQUERADE" in text_off
    assert "--src-type LOCAL" not in text_on
    hairpin = ("-A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 "
               "-j MASQUERADE")
    assert hairpin in text_on and hairpin in text_off
    assert text_on.split("*nat")[0] == text_off.split("*nat")[0]  # the filter table is the same


# -- Docker's derived values, against the captured inspect output ------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_derived_values_match_docker_inspect(mode: str) -> None:
    d = demo_daemon(mode)
    ours = {c.name: c for c in (d.run("c1", network="dummy1"), d.run("c2", network="dummy2"),
                                 d.run("nginx", publish=parse_publish(["8888:80"])))}
    for net in json.loads((FIXTURES / mode / "network-inspect.json").read_text()):
        mine = d.network(net["Name"])
        assert str(mine.subnet) == net["IPAM"]["Config"][0]["Subnet"]
        for container in net["Containers"].values():
            c = ours[container["Name"]]
            assert f"{c.ip}/{mine.subnet.prefixlen}" == container["IPv4Address"]
            assert c.mac == container["MacAddress"]
    for c in json.loads((FIXTURES / mode / "container-inspect.json").read_text()):
        (net_name, endpoint), = c["NetworkSettings"]["Networks"].items()
        assert str(d.network(net_name).gateway) == endpoint["Gateway"]
    links = (FIXTURES / mode / "ip-link.txt").read_text()
    for net in d.networks.values():
        assert re.search(rf"^\d+: {net.bridge}: ", links, re.M)
    veths = re.findall(r"^\d+: (veth[0-9a-f]+)@", links, re.M)
    assert len(veths) == 3 and all(re.fullmatch(r"veth[0-9a-f]{7}", v) for v in veths)


def test_default_pools_bridge_names_veths_macs() -> None:
    pools = default_address_pools()
    assert pools[:3] == tuple(IPv4Network(f"172.{i}.0.0/16") for i in (17, 18, 19))
    assert pools[14] == IPv4Network("172.31.0.0/16") and pools[15] == IPv4Network("192.168.0.0/20")
    assert len(pools) == 15 + 16
    assert bridge_name(DUMMY1_ID) == "br-9b8c1a221e25"
    assert re.fullmatch(r"veth[0-9a-f]{7}", veth_name())
    assert mac_from_ip("172.17.0.2") == "02:42:ac:11:00:02"
    d = Daemon()
    assert d.network("bridge").bridge == "docker0"
    net = d.network_create("dummy1")
    assert net.bridge == "br-" + net.id[:12] and len(net.id) == 64
    assert (net.subnet, net.gateway) == (IPv4Network("172.18.0.0/16"), IPv4Address("172.18.0.1"))
    assert [str(d.run(n).ip) for n in ("c1", "c2")] == ["172.17.0.2", "172.17.0.3"]


def test_a_freed_address_comes_back_as_on_docker_20_10_24() -> None:
    """The sequence of a real dockerd 20.10.24 (tests/fixtures/docker/ipam-reuse.json)."""
    capture = json.loads((FIXTURES / "ipam-reuse.json").read_text())
    d = Daemon()
    for step in capture["steps"]:
        if "rm" in step:
            d.rm(step["rm"])
        elif "network_create" in step:
            d.network_create(step["network_create"])
        else:
            c = d.run(step["name"], network=step["network"], publish=parse_publish(step.get("publish", ())))
            if "IPAddress" in step:
                assert str(c.ip) == step["IPAddress"]
            if "IPv4Address" in step:
                net = d.network(step["network"])
                assert f"{c.ip}/{net.subnet.prefixlen}" == step["IPv4Address"]
                assert c.mac == step["MacAddress"]


@pytest.mark.parametrize("version", ["20.10", "28.5"])
def test_each_container_gets_the_lowest_free_address(version: str) -> None:
    d = Daemon(version=version)
    d.run("c1"), d.run("c2"), d.run("c3")
    d.rm("c2")
    d.exited("c1", 0)  # a container's exit frees its address too
    assert [str(d.run(n).ip) for n in ("c4", "c5", "c6")] == ["172.17.0.2", "172.17.0.3", "172.17.0.5"]
    d.network_create("gw254", subnet="192.0.2.0/24", gateway="192.0.2.254")
    assert str(d.run("c7", network="gw254").ip) == "192.0.2.1"  # the bitmap reserves only .0 and .255


@pytest.mark.parametrize(("version", "third"), [("20.10", "172.20.0.0/16"), ("28.5", "172.18.0.0/16")])
def test_a_removed_networks_pool(version: str, third: str) -> None:
    """28.x takes the lowest free pool; 20.10 searches on from the pool it handed out last."""
    d = Daemon(version=version)
    d.network_create("one")
    d.network_create("two")
    d.network_rm("one")
    assert d.network_create("three").subnet == IPv4Network(third)
    assert d.network_create("four").subnet == IPv4Network("172.21.0.0/16" if version == "20.10" else "172.20.0.0/16")


@pytest.mark.parametrize("mode", MODES)
def test_sysctls_match_capture(mode: str) -> None:
    d = demo_daemon(mode)
    lines = (FIXTURES / mode / "sysctl.txt").read_text().splitlines()
    real = {path.removeprefix("/proc/sys/").replace("/", "."): value
            for path, value in (line.split() for line in lines)}
    ours = sysctls(d)
    assert ours["net.ipv4.ip_forward"] == real["net.ipv4.ip_forward"] == "1"
    for net in d.networks.values():
        key = f"net.ipv4.conf.{net.bridge}.route_localnet"
        assert ours.get(key, "0") == real[key]


def test_commands_are_what_dockerd_ran_in_order() -> None:
    cmds = iptables_commands(Daemon())
    assert cmds[:2] == ["iptables -t filter -P FORWARD DROP", "iptables -t nat -N DOCKER"]
    assert cmds[-1] == "iptables -t filter -I FORWARD -j DOCKER-USER"
    assert "iptables -t filter -D FORWARD -j DOCKER-ISOLATION-STAGE-1" not in cmds  # first time
    assert "FORWARD DROP" not in iptables_save(Daemon(ip_forward=True))  # Docker did not enable it


# -- Docker's errors ----------------------------------------------------------------------------


def test_errors_use_dockers_words() -> None:
    d = Daemon()
    d.network_create("dummy1")
    with pytest.raises(AlreadyExists, match="network with name dummy1 already exists"):
        d.network_create("dummy1")
    d.run("nginx", publish=parse_publish(["8888:80"]))
    with pytest.raises(AlreadyExists, match=r'container name "/nginx" is already in use'):
        d.run("nginx")
    with pytest.raises(AlreadyExists, match="Bind for 0.0.0.0:8888 failed: port is already alloc"):
        d.run("web", publish=parse_publish(["8888:8080"]))
    with pytest.raises(NotFound, match="network nope not found"):
        d.run("web", network="nope")
    d.run("c1", network="dummy1")
    with pytest.raises(NetlabError, match="has active endpoints"):
        d.network_rm("dummy1")
    with pytest.raises(NetlabError, match="invalid containerPort: http"):
        PortBinding.parse("8080:http")
    with pytest.raises(NetlabError, match="invalid proto: sctpx"):
        PortBinding.parse("8080:80/sctpx")
    assert PortBinding.parse("127.0.0.1:9999:53/udp") == PortBinding(9999, 53, "udp",
                                                                      IPv4Address("127.0.0.1"))


# -- the real iptables parses it -----------------------------------------------------------------


def _in_throwaway_netns(script: str, stdin: str) -> subprocess.CompletedProcess[str]:
    if not (shutil.which("unshare") and shutil.which("iptables-restore")):
        pytest.skip("needs unshare and iptables-restore (Debian: apt-get install iptables)")
    probe = subprocess.run(["unshare", "-Urn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a user + network namespace here: {probe.stderr.strip()}")
    return subprocess.run(["unshare", "-Urn", "sh", "-c", script], input=stdin,
                          capture_output=True, text=True, timeout=30)


def _scenarios() -> dict[str, Daemon]:
    out = {}
    for mode in MODES:
        d = demo_daemon(mode)
        d.run("c1", network="dummy1"), d.run("c2", network="dummy2")
        d.run("nginx", publish=parse_publish(["8888:80", "127.0.0.1:5353:53/udp"]))
        out[mode] = d
    extra = Daemon(userland_proxy=False)
    extra.network_create("inner", internal=True)
    extra.network_create("noicc", icc=False)
    extra.run("n1", network="noicc", publish=parse_publish(["9999:53/udp"]))
    out["extra"] = extra
    return out


@pytest.mark.parametrize("name", ["proxy-off", "proxy-on", "extra"])
def test_iptables_restore_accepts_it(name: str) -> None:
    text = iptables_save(_scenarios()[name])
    result = _in_throwaway_netns("iptables-restore --test", text)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["proxy-off", "proxy-on", "extra"])
def test_iptables_saves_it_back_unchanged(name: str) -> None:
    """Loaded into a throwaway namespace and saved again, the text comes back byte for byte:
    our rules are already in iptables' own canonical form."""
    text = iptables_save(_scenarios()[name])
    script = "iptables-restore && iptables-save -t filter && iptables-save -t nat"
    result = _in_throwaway_netns(script, text)
    assert result.returncode == 0, result.stderr
    back = "".join(line + "\n" for line in result.stdout.splitlines() if not line.startswith("#"))
    assert back == text
