"""netlab_magic.docker.inspect: ``docker inspect`` / ``docker network inspect`` against a real dockerd.

Pure tests: the model is fed what the captured dockerd 20.10.24 was told (ids, commands, ports),
and the JSON it gives must be the JSON dockerd printed (``tests/fixtures/docker/*/*inspect.json``,
see their README), field for field. The lab leaves out what it has not (storage, cgroups,
security options), so every field ours has must be there, with the same value, except the few
that cannot be the same and are named in :data:`VOLATILE`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netlab_magic.docker.daemon import Daemon
from netlab_magic.docker.ports import parse_publish
from netlab_magic.docker.inspect import container_json, network_json

FIXTURES = Path(__file__).parent / "fixtures" / "docker"
MODES = ["proxy-off", "proxy-on"]

#: What cannot be the same in a lab: when things happened, process ids, the sandbox's path and
#: id, image digests (no image is pulled), and each port binding's IPv6 twin (the lab is IPv4).
VOLATILE = {"Created", "StartedAt", "Pid", "SandboxID", "SandboxKey", "Image"}


def fixture(mode: str, name: str) -> list[dict]:
    return json.loads((FIXTURES / mode / name).read_text())


def same(ours, theirs, path: str = "") -> list[str]:
    """Where ``ours`` differs from ``theirs`` (every key of ours must be in theirs, equal)."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{path}: {ours!r} != {theirs!r}"]
        problems = []
        for key, value in ours.items():
            if key in VOLATILE:
                continue
            if key not in theirs:
                problems.append(f"{path}.{key}: not in Docker's output")
            else:
                problems += same(value, theirs[key], f"{path}.{key}")
        return problems
    if isinstance(ours, list) and isinstance(theirs, list) and path.endswith("/tcp"):
        theirs = [b for b in theirs if b.get("HostIp") != "::"]  # the IPv6 twin
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [p for o, t in zip(ours, theirs) for p in same(o, t, path + "[]")]
    return [] if ours == theirs else [f"{path}: {ours!r} != {theirs!r}"]


def captured_daemon(mode: str) -> Daemon:
    """The model told what the capture's dockerd was told, with the ids it chose."""
    nets = {n["Name"]: n for n in fixture(mode, "network-inspect.json")}
    d = Daemon(userland_proxy=(mode == "proxy-on"), default_bridge_id=nets["bridge"]["Id"])
    d.network_create("dummy1", id=nets["dummy1"]["Id"])
    d.network_create("dummy2", id=nets["dummy2"]["Id"])
    for c in fixture(mode, "container-inspect.json"):
        (net, endpoint), = c["NetworkSettings"]["Networks"].items()
        argv = c["Config"]["Cmd"]
        publish = [f"{b[0]['HostPort']}:{port.split('/')[0]}" for port, b in c["HostConfig"]["PortBindings"].items()]
        d.run(c["Name"][1:], network=net, id=c["Id"], publish=parse_publish(publish), image=c["Config"]["Image"],
              cmd=tuple(argv), command=" ".join(argv), endpoint_id=endpoint["EndpointID"],
              sandbox_id=c["NetworkSettings"]["SandboxID"])
    return d


@pytest.mark.parametrize("mode", MODES)
def test_network_inspect_is_dockers(mode):
    d = captured_daemon(mode)
    for theirs in fixture(mode, "network-inspect.json"):
        ours = network_json(d.network(theirs["Name"]), d.containers.values())
        assert same(ours, theirs) == []
        assert set(ours["Containers"]) == set(theirs["Containers"])


@pytest.mark.parametrize("mode", MODES)
def test_container_inspect_is_dockers(mode):
    d = captured_daemon(mode)
    for theirs in fixture(mode, "container-inspect.json"):
        c = d.containers[theirs["Name"][1:]]
        ours = container_json(c, d.network(c.network))
        assert same(ours, theirs) == [], theirs["Name"]
        assert set(ours["NetworkSettings"]["Networks"]) == set(theirs["NetworkSettings"]["Networks"])


def test_internal_and_noicc_networks_are_dockers():
    nets = {n["Name"]: n for n in fixture("extra", "network-inspect.json")}
    d = Daemon(default_bridge_id=nets["bridge"]["Id"])
    d.network_create("inner", id=nets["inner"]["Id"], internal=True)
    ours = network_json(d.network("inner"), d.containers.values())
    assert same(ours, nets["inner"]) == []
    assert ours["Internal"] is True


def test_an_exited_container_keeps_its_network_name_only():
    d = captured_daemon("proxy-on")
    d.exited("c1", 137)
    ours = container_json(d.containers["c1"], d.network("dummy1"))
    assert ours["State"]["Status"] == "exited" and ours["State"]["ExitCode"] == 137
    endpoint = ours["NetworkSettings"]["Networks"]["dummy1"]
    assert endpoint["IPAddress"] == "" and endpoint["NetworkID"] == d.network("dummy1").id
    assert "c1" not in json.dumps(network_json(d.network("dummy1"), d.containers.values())["Containers"])
