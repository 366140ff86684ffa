"""``docker inspect`` and ``docker network inspect``: the daemon's records as Docker's JSON.

Pure functions of the model (:mod:`.daemon`): the fields a learner reads about networking
(addresses, gateway, MAC, ports, endpoint and network ids, state), with the names, nesting and
values Docker Engine prints, checked against the captured output of a real dockerd
(``tests/fixtures/docker/*inspect.json``). Fields about storage, cgroups or security are left
out: the lab has none of them.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from typing import Any, Iterable

from .daemon import DEFAULT_BRIDGE, Container, Network
from .images import image_port
from .versions import Release

#: Docker's zero time, for a container that has not finished.
ZERO_TIME = "0001-01-01T00:00:00Z"


def iso(t: float) -> str:
    """A time as Docker prints it: RFC 3339 with nanoseconds, UTC."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def network_json(net: Network, containers: Iterable[Container], release: Release | None = None) -> dict[str, Any]:
    """``docker network inspect NAME``: one object. ``containers``: the daemon's containers."""
    config: dict[str, str] = {"Subnet": str(net.subnet)}
    if not net.default:
        config["Gateway"] = str(net.gateway)
    attached = {c.id: {"Name": c.name, "EndpointID": c.endpoint_id, "MacAddress": c.mac,
                       "IPv4Address": f"{c.ip}/{net.subnet.prefixlen}", "IPv6Address": ""}
                for c in containers if c.network == net.name and c.running}
    options = ({"com.docker.network.bridge.default_bridge": "true",
                "com.docker.network.bridge.enable_icc": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "true",
                "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                "com.docker.network.bridge.name": DEFAULT_BRIDGE,
                "com.docker.network.driver.mtu": "1500"} if net.default else dict(net.options))
    return {
        "Name": net.name, "Id": net.id, "Created": iso(net.created), "Scope": "local", "Driver": "bridge",
        **({"EnableIPv4": True} if _since_28(release) else {}), "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None if net.default else {}, "Config": [config]},
        "Internal": net.internal, "Attachable": False, "Ingress": False,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": attached,
        "Options": options, "Labels": {},
    }


def endpoint_json(c: Container, net: Network | None, release: Release | None = None) -> dict[str, Any]:
    """One entry of ``.NetworkSettings.Networks``; an exited container keeps the network's name only."""
    if c.running and net is not None:
        out = {"IPAMConfig": None, "Links": None, "Aliases": None if net.default else [c.id[:12]],
               "NetworkID": net.id, "EndpointID": c.endpoint_id, "Gateway": str(net.gateway),
               "IPAddress": str(c.ip), "IPPrefixLen": net.subnet.prefixlen, "IPv6Gateway": "",
               "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": c.mac, "DriverOpts": None}
    else:
        out = {"IPAMConfig": None, "Links": None, "Aliases": None, "NetworkID": net.id if net else "",
               "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
               "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
    if _since_28(release):  # API 1.47+: the gateway's priority, the names the embedded DNS answers
        out["GwPriority"] = 0
        out["DNSNames"] = None if net is None or net.default or not c.running else [c.name, c.id[:12]]
    return out


def container_json(c: Container, net: Network | None, release: Release | None = None) -> dict[str, Any]:
    """``docker inspect NAME`` for a container on network ``net`` (None: the network is gone)."""
    ports: dict[str, list[dict[str, str]]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for p in c.ports:
        key = f"{p.container_port}/{p.proto}"
        ports.setdefault(key, []).append({"HostIp": str(p.host_ip), "HostPort": str(p.host_port)})
        bindings.setdefault(key, []).append(
            {"HostIp": "" if p.host_ip.is_unspecified else str(p.host_ip), "HostPort": str(p.host_port)})
    endpoint = endpoint_json(c, net, release)
    on_default = net is not None and net.default
    argv = shlex.split(c.command)
    exposed = {f"{p.container_port}/{p.proto}": {} for p in c.ports}  # -p exposes; omitted when empty
    if image_port(c.image):
        exposed = {f"{image_port(c.image)}/tcp": {}, **exposed}
    settings = {
        "Bridge": "", "SandboxID": c.sandbox_id if c.running else "", "HairpinMode": False,
        "Ports": ports, "SandboxKey": f"/run/netns/{c.netns}" if c.running else "",
    }
    for key, empty in (("EndpointID", ""), ("Gateway", ""), ("IPAddress", ""), ("IPPrefixLen", 0),
                       ("MacAddress", "")):
        settings[key] = endpoint[key] if on_default else empty
    settings["Networks"] = {c.network: endpoint}
    return {
        "Id": c.id, "Created": iso(c.created), "Path": argv[0] if argv else "", "Args": argv[1:],
        "State": {"Status": "running" if c.running else "exited", "Running": c.running,
                  "Paused": False, "Restarting": False, "OOMKilled": False, "Dead": False,
                  "Pid": c.pid if c.running else 0, "ExitCode": c.exit_code or 0, "Error": "",
                  "StartedAt": iso(c.started), "FinishedAt": iso(c.finished) if c.finished else ZERO_TIME},
        "Image": c.image, "Name": "/" + c.name,
        "HostConfig": {"NetworkMode": "default" if on_default else c.network, "PortBindings": bindings},
        "Config": {"Hostname": c.hostname, "Image": c.image, "Cmd": list(c.cmd) or argv,
                   **({"ExposedPorts": exposed} if exposed else {})},
        "NetworkSettings": settings,
    }


def _since_28(release: Release | None) -> bool:
    return release is not None and release.key != "20.10"


__all__ = ["iso", "network_json", "endpoint_json", "container_json", "ZERO_TIME"]
