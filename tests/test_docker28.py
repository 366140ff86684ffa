"""netlab_magic.docker's Docker Engine 28.5 model against moby's own documents of its rules.

``tests/fixtures/docker28/*.rules`` are the rules moby's generated documents show for three
scenarios (see their README). The model (pure) must give the same chains, policies and rules,
each chain's rules in the same order; ``test_docker28_lab.py`` does the same in a real lab.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netlab_magic.docker.daemon import Daemon
from netlab_magic.docker.rules import build
from netlab_magic.linux.iptables import Tables

FIXTURES = Path(__file__).parent / "fixtures" / "docker28"
SCENARIOS = ["new-daemon", "usernet-portmap", "usernet-portmap-noproxy"]


def documented(name: str) -> dict[str, dict]:
    """A ``*.rules`` file: table -> {"policies": {chain: policy}, "chains": {chain: [rules]}}."""
    tables: dict[str, dict] = {}
    table = None
    for line in (FIXTURES / f"{name}.rules").read_text().splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {"policies": {}, "chains": {}})
        elif line.startswith("-P "):
            _, chain, policy = line.split()
            table["policies"][chain] = policy
            table["chains"].setdefault(chain, [])
        elif line.startswith("-N "):
            table["chains"].setdefault(line.split()[1], [])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            table["chains"].setdefault(chain, []).append(rule)
    return tables


def as_documented(t: Tables, tables) -> dict[str, dict]:
    """The model's (or a lab's) tables in the same shape, for the tables the document shows."""
    out = {}
    for table in tables:
        chains = t.chains.get(table, {})
        builtin = [c for c in chains if c.isupper() and not c.startswith("DOCKER")]
        out[table] = {"policies": {c: t.policies.get((table, c), "ACCEPT") for c in builtin},
                      "chains": {c: list(r) for c, r in chains.items()}}
    return out


def scenario(name: str, version: str = "28.5") -> Daemon:
    """What moby's document ran, told to the model (forwarding on already, as in moby's tests)."""
    d = Daemon(version=version, userland_proxy=not name.endswith("noproxy"), ip_forward=True)
    if name != "new-daemon":
        d.network_create("bridge1", subnet="192.0.2.0/24", gateway="192.0.2.1",
                         options={"com.docker.network.bridge.name": "bridge1"})
        d.run("c1", network="bridge1", publish=("8080:80",))
    return d


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_model_installs_what_moby_documents(name):
    want = documented(name)
    assert as_documented(build(scenario(name)), want) == want


def test_the_address_and_bridge_are_the_documents():
    d = scenario("usernet-portmap")
    c = d.containers["c1"]
    assert (str(c.ip), d.networks["bridge1"].bridge) == ("192.0.2.2", "bridge1")
    assert c.mac.startswith("02:42:") and c.mac != "02:42:c0:00:02:02"  # random since 20.10's days


def test_what_28_5_changed_from_20_10():
    """The same demo in both releases: where the rules went (what notebooks 04 and 05 show)."""
    old, new = (build(scenario("usernet-portmap", v)) for v in ("20.10", "28.5"))
    assert old.chains["filter"]["FORWARD"][0] == new.chains["filter"]["FORWARD"][0] == "-j DOCKER-USER"
    assert new.chains["filter"]["FORWARD"] == ["-j DOCKER-USER", "-j DOCKER-FORWARD"]
    assert "-j RETURN" in old.chains["filter"]["DOCKER-USER"] and new.chains["filter"]["DOCKER-USER"] == []
    assert "! -i bridge1 -o bridge1 -j DROP" in new.chains["filter"]["DOCKER"]
    assert not any("DROP" in r for r in old.chains["filter"]["DOCKER"])
    assert new.chains["raw"]["PREROUTING"] == ["-d 192.0.2.2/32 ! -i bridge1 -j DROP"]
    assert old.chains["raw"]["PREROUTING"] == []


def test_gateway_modes_icc_internal_and_loopback_ports():
    d = Daemon(version="28.5", userland_proxy=False)
    d.network_create("routed", options={"com.docker.network.bridge.gateway_mode_ipv4": "routed"})
    d.network_create("open", options={"com.docker.network.bridge.gateway_mode_ipv4": "nat-unprotected"})
    d.network_create("quiet", options={"com.docker.network.bridge.enable_icc": "false"})
    d.network_create("inner", internal=True)
    d.run("r1", network="routed", publish=("8081:80",))
    d.run("o1", network="open", publish=("8082:80",))
    d.run("q1", network="quiet", publish=("127.0.0.1:8083:80/udp",))
    t = build(d)
    br = {n: d.networks[n].bridge for n in ("routed", "open", "quiet", "inner")}
    nat = "\n".join(t.chains["nat"]["POSTROUTING"] + t.chains["nat"]["DOCKER"])
    assert f"! -o {br['routed']} -j MASQUERADE" not in nat and "--dport 8081" not in nat  # routed: no NAT
    assert f"-o {br['routed']} -p icmp -j ACCEPT" in t.chains["filter"]["DOCKER"]
    assert f"-d {d.containers['r1'].ip}/32 ! -i {br['routed']} -o {br['routed']} -p tcp -m tcp --dport 80 -j ACCEPT" \
        in t.chains["filter"]["DOCKER"]
    assert f"! -i {br['open']} -o {br['open']} -j ACCEPT" in t.chains["filter"]["DOCKER"]  # unprotected
    assert not any(str(d.containers["o1"].ip) in r for r in t.chains["filter"]["DOCKER"] + t.chains["raw"]["PREROUTING"])
    assert f"-i {br['quiet']} -o {br['quiet']} -j DROP" in t.chains["filter"]["DOCKER-FORWARD"]
    assert f"-i {br['quiet']} ! -o {br['quiet']} -j ACCEPT" in t.chains["filter"]["DOCKER-FORWARD"]
    assert "-d 127.0.0.1/32 ! -i lo -p udp -m udp --dport 8083 -j DROP" in t.chains["raw"]["PREROUTING"]
    assert t.chains["filter"]["DOCKER-ISOLATION-STAGE-1"][:2] == [
        f"! -s {d.networks['inner'].subnet} -o {br['inner']} -j DROP",
        f"! -d {d.networks['inner'].subnet} -i {br['inner']} -j DROP"]
    assert f"-i {br['inner']} -o {br['inner']} -j ACCEPT" in t.chains["filter"]["DOCKER-FORWARD"]


@pytest.mark.parametrize("version", ["20.10", "28.5"])
def test_removing_everything_goes_back_to_the_start(version):
    start = build(Daemon(version=version, ip_forward=True)).save()
    d = scenario("usernet-portmap", version)
    d.rm("c1")
    d.network_rm("bridge1")
    assert build(d).save() == start
