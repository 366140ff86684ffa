"""Docker's bridge networking made real inside the lab: what ``dockerd`` would build, built.

:class:`Engine` keeps a :class:`~netlab_magic.docker.daemon.Daemon` (the pure model) and makes
it real in the lab's **host** namespace, the way Docker Engine 20.10's bridge driver does:

- "starting dockerd" (on first use): ``net.ipv4.ip_forward=1``; FORWARD policy DROP (when
  forwarding was off); the DOCKER chains; the default network ``bridge`` on ``docker0``
  (172.17.0.1/16, up);
- ``network create NAME``: a bridge ``br-<12 hex of the id>`` with the gateway address, up,
  and its iptables rules;
- ``run``: one network namespace per container, named after the container; a veth pair, the
  host end ``veth<7 hex>`` a port of the network's bridge, the other end ``eth0`` in the
  container with Docker's address and MAC (``02:42`` + the address), ``lo`` up, a default route
  via the gateway; published ports' rules; the container's command started as a lab job in its
  namespace (see :data:`IMAGES`). Images are never pulled: a container shares the kernel's
  files and programs, only its network is its own.

The firewall is changed with the same ``iptables`` commands dockerd runs, in its order
(:func:`netlab_magic.docker.rules.iptables_commands`), so the rules and their counters behave
as on a Docker host: a rule is never re-created unless dockerd itself re-creates it. Removals
(``rm``, ``stop``, ``network rm``) delete exactly the rules that went away (``iptables -D``).

With the userland proxy on (``Engine(lab, userland_proxy=True)``, Docker's default), every
published TCP port also gets a ``docker-proxy`` of ours: a small Python forwarder running as a
lab job in the host. With it off (the default here: ``--userland-proxy=false``), the nat OUTPUT
rule, the hairpin MASQUERADE and ``route_localnet`` let ``curl localhost:8888`` reach the
container through the kernel alone.

When a container's command exits, its network goes at once, as with dockerd: namespace, veth,
published ports' rules and proxies (``docker ps -a`` keeps it as exited); with ``--rm`` its name
and record go too. The kernel's main thread does that between cells (the only thread that may
change the lab's namespaces and firewall): its event loop watches each command's pidfd.

Errors use Docker's words, on one line, and a step that fails undoes what it had built.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import os
import random
import shlex
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from .. import process
from ..errors import AlreadyExists, InvalidName, NetlabError, NotFound
from ..lab import Lab
from ..model import HOST
from . import rules
from .daemon import (DEFAULT_BRIDGE, DEFAULT_NETWORK, Container, Daemon, Network, PortAllocated, random_id,
                     veth_name)

#: Where the engine keeps its files: in the lab's private ``/run`` (never the machine's).
RUN_DIR = "/run/netlab-docker"

#: Images this lab knows: image name (without tag) -> (default command, TCP port it listens on).
#: Any other image runs ``sleep infinity`` unless a command is given. Nothing is pulled.
IMAGES: dict[str, tuple[str, int | None]] = {
    "nginx": ("{python} -m http.server 80 --bind 0.0.0.0 --directory {run}/nginx", 80),
    "httpd": ("{python} -m http.server 80 --bind 0.0.0.0 --directory {run}/nginx", 80),
}
DEFAULT_COMMAND = "sleep infinity"

NGINX_PAGE = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. (In this lab, "nginx" is Python's http.server inside the container's
network namespace.)</p>
</body>
</html>
"""

#: docker-proxy, ours: ``docker-proxy -proto tcp -host-ip IP -host-port P -container-ip IP
#: -container-port P``. Prints ``docker-proxy listening on IP:PORT`` once it listens, or Docker's error and exits 1.
PROXY_SCRIPT = r'''"""docker-proxy for the netlab Docker engine: a TCP forwarder (one thread per connection)."""
import socket
import sys
import threading

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
host_ip, host_port = args["-host-ip"], int(args["-host-port"])
target = (args["-container-ip"], int(args["-container-port"]))
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    srv.bind((host_ip, host_port))
    srv.listen(128)
except OSError as err:
    print(f"Error starting userland proxy: listen tcp4 {host_ip}:{host_port}: bind: "
          f"{(err.strerror or str(err)).lower()}", flush=True)
    sys.exit(1)
print(f"docker-proxy listening on {host_ip}:{host_port}", flush=True)


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(client):
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError:
        client.close()
        return
    back = threading.Thread(target=pipe, args=(upstream, client), daemon=True)
    back.start()
    pipe(client, upstream)
    back.join()
    client.close()
    upstream.close()


while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''

_ADJECTIVES = ("admiring", "brave", "clever", "eager", "festive", "gallant", "happy", "jolly",
               "keen", "loving", "modest", "nifty", "quirky", "relaxed", "sharp", "zealous")
_SURNAMES = ("babbage", "curie", "dijkstra", "einstein", "hopper", "kare", "lovelace", "mccarthy",
             "noether", "pike", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


@dataclass
class Box:
    """A container as the engine keeps it (running, or exited and not yet removed)."""

    name: str
    id: str
    image: str
    cmd: list[str]  # what the user gave after IMAGE (empty: the image's default)
    command: str  # the bash command really run inside the namespace
    network: str
    publish: tuple[str, ...]
    created: float = field(default_factory=time.time)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    exit_code: int | None = None
    job: str | None = None  # the lab job running the command (detached containers)
    pid: int = 0
    proxies: list[str] = field(default_factory=list)  # lab jobs of our docker-proxy
    endpoint_id: str = field(default_factory=random_id)
    sandbox_id: str = field(default_factory=random_id)
    last: Container | None = None  # the network attachment, kept for inspect after stop
    auto_remove: bool = False  # --rm: removed as soon as it exits
    proc: Any = field(default=None, repr=False)  # a foreground command, while it streams

    @property
    def netns(self) -> str:
        return self.name

    @property
    def running(self) -> bool:
        return self.exit_code is None


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """One engine operation at a time (cells of ipykernel subshells run on other threads, and
    exited containers are reaped by the main thread's event loop between cells)."""
    @functools.wraps(method)
    def wrapper(self: "Engine", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class Engine:
    """A Docker engine for one lab: a :class:`Daemon` made real in the lab's host."""

    def __init__(self, lab: Lab, userland_proxy: bool = False) -> None:
        self.lab = lab
        self.userland_proxy = userland_proxy
        self.daemon: Daemon | None = None
        self.boxes: dict[str, Box] = {}
        self.created: dict[str, float] = {}  # network name -> creation time
        self._tables = rules.Tables()  # what this engine put in the host's firewall
        self._log: list[str] = []  # the dockerd commands that built it
        self._sysctls: dict[str, str] = {}
        self.generation = lab.generation  # %netlab reset makes a new lab incarnation
        self._lock = threading.RLock()  # see _serialized

    # -- dockerd ------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.daemon is not None

    @_serialized
    def start(self) -> Daemon:
        """Start "dockerd" if it is not running yet: forwarding, chains, ``docker0``."""
        if self.daemon is not None:
            self._reap()
            return self.daemon
        host = self.lab.host
        if DEFAULT_BRIDGE in host.links():
            raise AlreadyExists(f"failed to start daemon: the lab's host already has an interface "
                                f"{DEFAULT_BRIDGE!r} (remove it, or %netlab reset)")
        forwarding = host.sysctl("net.ipv4.ip_forward") == "1"
        daemon = Daemon(userland_proxy=self.userland_proxy, ip_forward=forwarding)
        net = daemon.networks[DEFAULT_NETWORK]
        undo: list[Callable[[], None]] = []
        try:
            self._make_bridge(net, undo)
            self.daemon = daemon
            self._sync(daemon)
        except BaseException:
            self.daemon = None
            _unwind(undo)
            raise
        self.created[DEFAULT_NETWORK] = time.time()
        return daemon

    # -- networks -----------------------------------------------------------------------------

    @_serialized
    def network_create(self, name: str, *, subnet: str | None = None, internal: bool = False) -> Network:
        """``docker network create [--subnet CIDR] [--internal] NAME``."""
        daemon = self.start()
        before = copy.deepcopy(daemon)
        undo: list[Callable[[], None]] = []
        try:
            net = _daemon_call(lambda: daemon.network_create(name, subnet=subnet, internal=internal))
            self._make_bridge(net, undo)
            self._sync(daemon)
        except BaseException:
            self._rollback(before, undo)
            raise
        self.created[name] = time.time()
        return net

    @_serialized
    def network_rm(self, name: str) -> None:
        """``docker network rm NAME``."""
        daemon = self.start()
        self._reap()
        if name not in daemon.networks:
            raise NotFound(f"Error: No such network: {name}")
        before = copy.deepcopy(daemon)
        net = daemon.networks[name]
        try:
            _daemon_call(lambda: daemon.network_rm(name))
            self._sync(daemon)
        except BaseException:
            self.daemon = before
            raise
        self.created.pop(name, None)
        if net.bridge in self.lab.host.links():
            self.lab.host.link_del(net.bridge)

    @_serialized
    def network_ls(self) -> list[Network]:
        """``docker network ls`` (the bridge networks; this lab has no ``host`` or ``none``)."""
        return list(self.start().networks.values())

    @_serialized
    def network_inspect(self, name: str) -> dict[str, Any]:
        """``docker network inspect NAME``, as Docker's JSON (one object)."""
        daemon = self.start()
        self._reap()
        try:
            net = daemon.networks[name]
        except KeyError:
            raise NotFound(f"Error: No such network: {name}") from None
        default = name == DEFAULT_NETWORK
        config: dict[str, str] = {"Subnet": str(net.subnet)}
        if not default:
            config["Gateway"] = str(net.gateway)
        containers = {}
        for box in self.boxes.values():
            c = daemon.containers.get(box.name)
            if c is not None and c.network == name:
                containers[c.id] = {"Name": c.name, "EndpointID": box.endpoint_id, "MacAddress": c.mac,
                                    "IPv4Address": f"{c.ip}/{net.subnet.prefixlen}", "IPv6Address": ""}
        options = ({"com.docker.network.bridge.default_bridge": "true",
                    "com.docker.network.bridge.enable_icc": "true",
                    "com.docker.network.bridge.enable_ip_masquerade": "true",
                    "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                    "com.docker.network.bridge.name": DEFAULT_BRIDGE,
                    "com.docker.network.driver.mtu": "1500"} if default else {})
        return {
            "Name": net.name, "Id": net.id, "Created": _iso(self.created.get(name, time.time())),
            "Scope": "local", "Driver": "bridge", "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None if default else {}, "Config": [config]},
            "Internal": net.internal, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Containers": containers,
            "Options": options, "Labels": {},
        }

    # -- containers ---------------------------------------------------------------------------

    def run(self, image: str, cmd: Sequence[str] = (), *, name: str | None = None,
            network: str = DEFAULT_NETWORK, publish: Sequence[str] = (), detach: bool = True,
            remove: bool = False) -> Box:
        """``docker run [-d] [--rm] [--name NAME] [--network NET] [-p HOST:CONTAINER]... IMAGE [CMD...]``.

        Detached, the command runs as a lab job and this returns at once. In the foreground
        its output streams here until it ends (Ctrl-C stops it), then the container has exited.
        """
        with self._lock:
            box = self._create(image, cmd, name=name, network=network, publish=publish, detach=detach,
                               remove=remove)
        if not detach:
            self._foreground(box)
        elif image_port(image) and not box.cmd:
            self._wait_listening(box, image_port(image))
        return box

    def _create(self, image: str, cmd: Sequence[str], *, name: str | None, network: str,
                publish: Sequence[str], detach: bool, remove: bool) -> Box:
        """``run`` up to the container's command: checks, namespace, veth, rules, proxies, job."""
        daemon = self.start()
        name = name if name is not None else self._new_name()
        if name.startswith("/"):
            name = name[1:]
        if name in self.boxes:
            raise AlreadyExists(f'docker: Error response from daemon: Conflict. The container name '
                                f'"/{name}" is already in use by container "{self.boxes[name].id}". You '
                                "have to remove (or rename) that container to be able to reuse that name.")
        if image == "" or image.startswith("-"):
            raise InvalidName(f"docker: invalid reference format: {image!r}")
        if network not in daemon.networks:
            raise NotFound(f"docker: Error response from daemon: network {network} not found.")
        box = Box(name=name, id=random_id(), image=image, cmd=list(cmd),
                  command=self._command(image, cmd), network=network, publish=tuple(publish),
                  auto_remove=remove)
        if name in self.lab.list_netns():
            raise AlreadyExists(f"docker: Error response from daemon: the lab already has a "
                                f"namespace called {name!r}: choose another --name")
        before = copy.deepcopy(daemon)
        undo: list[Callable[[], None]] = []

        def allocate() -> Container:
            try:
                return daemon.run(name, network=network, publish=tuple(publish), id=box.id,
                                  veth=self._free_veth())
            except PortAllocated as err:  # the bridge driver's words, with the endpoint
                raise PortAllocated(_connectivity(box, str(err))) from err

        try:
            container = _daemon_call(allocate, prefix="docker: ")
            self._plumb(container, daemon.networks[network], undo)
            self._sync(daemon)
            self._start_proxies(box, container, undo)
            box.last = container
            if detach:
                self._start_job(box, undo)
        except BaseException:
            self._rollback(before, undo)
            raise
        self.boxes[name] = box
        if not detach:
            try:
                proc = self.lab.popen(box.netns, process.shell_argv(box.command))
            except BaseException:
                self._teardown(box, stop_job=False, code=127)
                raise
            box.pid, box.started, box.proc = proc.pid, time.time(), proc
        return box

    @_serialized
    def ps(self, all: bool = False) -> list[Box]:
        """``docker ps [-a]``: running containers (all with ``-a``), newest first."""
        self.start()
        self._reap()
        boxes = sorted(self.boxes.values(), key=lambda b: b.created, reverse=True)
        return [b for b in boxes if all or b.running]

    @_serialized
    def get(self, name: str) -> Box:
        """The container called ``name`` (or whose id starts with ``name``)."""
        self.start()
        self._reap()
        box = self.boxes.get(name.lstrip("/"))
        if box is None:
            matches = [b for b in self.boxes.values() if len(name) >= 1 and b.id.startswith(name)]
            if len(matches) == 1:
                box = matches[0]
        if box is None:
            raise NotFound(f"Error: No such container: {name}")
        return box

    @_serialized
    def inspect(self, name: str) -> dict[str, Any]:
        """``docker inspect NAME``: the container as Docker's JSON (the fields that matter here)."""
        try:
            box = self.get(name)
        except NotFound:
            raise NotFound(f"Error: No such object: {name}") from None
        daemon = self.daemon
        assert daemon is not None
        c = daemon.containers.get(box.name)
        net = daemon.networks.get(box.network)
        ports: dict[str, list[dict[str, str]] | None] = {}
        bindings: dict[str, list[dict[str, str]]] = {}
        if box.last is not None:
            for p in box.last.ports:
                key = f"{p.container_port}/{p.proto}"
                ports.setdefault(key, []).append({"HostIp": str(p.host_ip), "HostPort": str(p.host_port)})
                bindings.setdefault(key, []).append(
                    {"HostIp": "" if p.host_ip.is_unspecified else str(p.host_ip), "HostPort": str(p.host_port)})
        if c is not None and net is not None:
            endpoint = {"IPAMConfig": None, "Links": None, "Aliases": None if box.network == DEFAULT_NETWORK
                        else [box.id[:12]], "NetworkID": net.id, "EndpointID": box.endpoint_id,
                        "Gateway": str(net.gateway), "IPAddress": str(c.ip),
                        "IPPrefixLen": net.subnet.prefixlen, "IPv6Gateway": "", "GlobalIPv6Address": "",
                        "GlobalIPv6PrefixLen": 0, "MacAddress": c.mac, "DriverOpts": None}
        else:  # exited: Docker keeps the network's name with empty values
            endpoint = {"IPAMConfig": None, "Links": None, "Aliases": None,
                        "NetworkID": net.id if net else "", "EndpointID": "", "Gateway": "",
                        "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
                        "GlobalIPv6PrefixLen": 0, "MacAddress": "", "DriverOpts": None}
        on_default = box.network == DEFAULT_NETWORK
        argv = shlex.split(box.command)
        return {
            "Id": box.id, "Created": _iso(box.created), "Path": argv[0] if argv else "",
            "Args": argv[1:],
            "State": {"Status": "running" if box.running else "exited", "Running": box.running,
                      "Paused": False, "Restarting": False, "OOMKilled": False, "Dead": False,
                      "Pid": box.pid if box.running else 0, "ExitCode": box.exit_code or 0, "Error": "",
                      "StartedAt": _iso(box.started),
                      "FinishedAt": _iso(box.finished) if box.finished else "0001-01-01T00:00:00Z"},
            "Image": box.image, "Name": "/" + box.name,
            "HostConfig": {"NetworkMode": "default" if on_default else box.network,
                           "PortBindings": bindings},
            "Config": {"Hostname": box.id[:12], "Image": box.image, "Cmd": box.cmd or argv,
                       "ExposedPorts": {f"{image_port(box.image)}/tcp": {}} if image_port(box.image) else None},
            "NetworkSettings": {
                "Bridge": "", "SandboxID": box.sandbox_id if box.running else "", "HairpinMode": False,
                "Ports": ports, "SandboxKey": f"/run/netns/{box.netns}" if box.running else "",
                "EndpointID": endpoint["EndpointID"] if on_default else "",
                "Gateway": endpoint["Gateway"] if on_default else "",
                "IPAddress": endpoint["IPAddress"] if on_default else "",
                "IPPrefixLen": endpoint["IPPrefixLen"] if on_default else 0,
                "MacAddress": endpoint["MacAddress"] if on_default else "",
                "Networks": {box.network: endpoint},
            },
        }

    @_serialized
    def logs(self, name: str) -> str:
        """``docker logs NAME``: what the container's command printed (detached containers)."""
        box = self.get(name)
        if box.job is None:
            return ""
        try:
            return self.lab.jobs.get(box.job).output()
        except NotFound:
            return ""

    def exec(self, name: str, command: str, timeout: float | None = None) -> int:
        """``docker exec NAME CMD...``: run ``command`` (bash) inside the container, output streaming."""
        with self._lock:
            box = self.get(name)
            if not box.running:
                raise NetlabError(f"Error response from daemon: Container {box.id} is not running")
            proc = self.lab.popen(box.netns, process.shell_argv(command))
        return process.stream(proc, timeout=timeout)

    @_serialized
    def stop(self, name: str) -> Box:
        """``docker stop NAME``: stop the command; the container's network goes away (exit 137 / 0)."""
        box = self.get(name)
        if box.running:
            self._teardown(box, stop_job=True)
        return box

    @_serialized
    def rm(self, name: str, force: bool = False) -> None:
        """``docker rm [-f] NAME``."""
        box = self.get(name)
        if box.running:
            if not force:
                raise NetlabError(f"Error response from daemon: You cannot remove a running container "
                                  f"{box.id}. Stop the container before attempting removal or force remove")
            self._teardown(box, stop_job=True)
        self._forget_job(box.job)
        self.boxes.pop(box.name, None)

    # -- building ------------------------------------------------------------------------------

    def _make_bridge(self, net: Network, undo: list[Callable[[], None]]) -> None:
        host = self.lab.host
        if net.bridge in host.links():
            raise AlreadyExists(f"Error response from daemon: the lab's host already has an "
                                f"interface {net.bridge!r}")
        host.add_bridge(net.bridge)
        undo.append(lambda: _quietly(host.link_del, net.bridge))
        host.addr_add(net.bridge, f"{net.gateway}/{net.subnet.prefixlen}")
        host.link_up(net.bridge)

    def _plumb(self, c: Container, net: Network, undo: list[Callable[[], None]]) -> None:
        """The container's namespace, its veth pair on the bridge, address, MAC and route."""
        lab, host = self.lab, self.lab.host
        ns = lab.add_netns(c.name)
        undo.append(lambda: _quietly(lab.del_netns, c.name))
        host.add_veth(c.veth, peer="eth0", peer_netns=c.name)
        undo.append(lambda: _quietly(host.link_del, c.veth))
        lab.netns(c.name).link_set_address("eth0", c.mac)
        ns.addr_add("eth0", f"{c.ip}/{net.subnet.prefixlen}")
        ns.link_up("lo")
        ns.link_up("eth0")
        if not net.internal:  # an --internal network has no way out, so no default route
            ns.route_add("default", via=str(net.gateway))
        host.link_set_master(c.veth, net.bridge)
        if not self.userland_proxy:
            # bridge.go CreateEndpoint: without the proxy, hairpin mode on the port, so that a
            # container reaches its own published port through the host (DNAT back out the same port).
            self.lab.run(HOST, ["bridge", "link", "set", "dev", c.veth, "hairpin", "on"], check=True)
        host.link_up(c.veth)

    def _command(self, image: str, cmd: Sequence[str]) -> str:
        if cmd:
            return shlex.join(cmd)
        known = IMAGES.get(_image_name(image))
        if known is None:
            return DEFAULT_COMMAND
        self._write_files()
        return known[0].format(python=shlex.quote(sys.executable), run=RUN_DIR)

    def _start_job(self, box: Box, undo: list[Callable[[], None]]) -> None:
        job_name = _job_name("docker", box.name)
        if any(j.name == job_name and j.running for j in self.lab.jobs.all()):
            raise AlreadyExists(f"docker: Error response from daemon: a lab job called {job_name!r} is "
                                "running: stop it first")
        job = self.lab.start_job(box.netns, box.command, name=job_name)
        undo.append(lambda: (job.stop(), self._forget_job(job.name)))
        box.job, box.pid, box.started = job.name, job.proc.pid, time.time()
        self._watch(job.proc)

    def _foreground(self, box: Box) -> None:
        """Stream the command started by :meth:`_create` (no lock held: other cells go on)."""
        code: int | None = None
        try:
            code = process.stream(box.proc)
        finally:
            box.job, box.proc = None, None
            with self._lock:
                self._teardown(box, stop_job=False, code=code if code is not None else 130)
            sys.stdout.flush()

    def _start_proxies(self, box: Box, c: Container, undo: list[Callable[[], None]]) -> None:
        if not self.userland_proxy:
            return
        script = self._write_files()
        for p in c.ports:
            if p.proto != "tcp":
                continue  # this lab's docker-proxy forwards TCP only; the DNAT rules serve UDP
            job_name = _job_name("docker-proxy", f"{p.host_port}-{p.proto}")
            command = (f"exec {shlex.quote(sys.executable)} {script} -proto {p.proto} -host-ip {p.host_ip} "
                       f"-host-port {p.host_port} -container-ip {c.ip} -container-port {p.container_port}")
            self.lab.jobs.check_free(job_name)
            job = self.lab.start_job(HOST, command, name=job_name)
            undo.append(lambda job=job: (job.stop(), self._forget_job(job.name)))
            box.proxies.append(job.name)
            deadline = time.monotonic() + 10
            ready = "docker-proxy listening on"
            while ready not in (out := job.output(0.02)) and job.running and time.monotonic() < deadline:
                pass
            if ready not in out:
                message = out.strip().splitlines()[-1] if out.strip() else "docker-proxy did not start"
                raise NetlabError(f"docker: Error response from daemon: {_connectivity(box, message)}")

    def _write_files(self) -> str:
        os.makedirs(f"{RUN_DIR}/nginx", exist_ok=True)
        with open(f"{RUN_DIR}/nginx/index.html", "w") as f:
            f.write(NGINX_PAGE)
        script = f"{RUN_DIR}/docker-proxy"
        with open(script, "w") as f:
            f.write(PROXY_SCRIPT)
        return script

    def _wait_listening(self, box: Box, port: int, timeout: float = 5.0) -> None:
        """Give a web image's server a moment to listen, like a client retrying (no packet sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with self.lab.entered(box.netns):
                    with open("/proc/thread-self/net/tcp") as f:
                        lines = f.read().splitlines()[1:]
            except OSError:
                return
            if any(ln.split()[1].endswith(f":{port:04X}") and ln.split()[3] == "0A" for ln in lines):
                return
            job = self.lab.jobs.get(box.job) if box.job else None
            if job is None or not job.running:
                return
            time.sleep(0.05)

    # -- tearing down ----------------------------------------------------------------------------

    def _teardown(self, box: Box, *, stop_job: bool, code: int | None = None) -> None:
        """The container's command has ended (or is stopped now): its network goes, like Docker's."""
        if stop_job and box.job:
            try:
                job = self.lab.jobs.get(box.job)
            except NotFound:
                job = None
            if job is not None:
                job.stop()
                code = job.proc.returncode
        for proxy in box.proxies:
            try:
                self.lab.jobs.get(proxy).stop()
            except NotFound:
                pass
            self._forget_job(proxy)
        box.proxies.clear()
        daemon = self.daemon
        if daemon is not None and box.name in daemon.containers:
            veth = daemon.containers[box.name].veth
            daemon.rm(box.name)
            self._sync(daemon)
            if veth in self.lab.host.links():
                _quietly(self.lab.host.link_del, veth)
        if box.name in self.lab.list_netns():
            _quietly(self.lab.del_netns, box.name)
        box.exit_code = _docker_exit_code(code)
        box.finished = time.time()
        if box.auto_remove:  # --rm: gone once it has exited
            self._forget_job(box.job)
            self.boxes.pop(box.name, None)

    def _reap(self) -> None:
        """Containers whose command ended on its own have exited: take their network down."""
        for box in list(self.boxes.values()):
            if box.running and box.job:
                try:
                    job = self.lab.jobs.get(box.job)
                except NotFound:
                    job = None
                if job is None or not job.running:
                    self._teardown(box, stop_job=False, code=job.proc.returncode if job else 0)

    def _watch(self, proc: Any) -> None:
        """Take the container down as soon as its command exits, as dockerd does (``--rm``: remove it).

        The teardown changes namespaces, links and the firewall, which only the kernel's main
        thread may do (it lives in the lab's host and the lab's mount namespace, and nothing else
        runs iptables then). So the exit is noticed by the main thread's event loop, which the
        kernel returns to between cells: it watches a pidfd of the command (or, without pidfds, a
        small thread waits on the command and wakes the loop), then runs :meth:`_exited`.
        Without an event loop (the engine used from plain Python), the next engine call reaps.
        """
        loop = _main_loop()
        if loop is None:
            return
        if proc.poll() is not None:  # already gone (and reaped: its pid may be someone else's now)
            loop.call_soon(self._exited)
            return
        try:
            fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            fd = None
        if fd is not None:
            def ready() -> None:
                loop.remove_reader(fd)
                os.close(fd)
                self._exited()

            try:
                loop.add_reader(fd, ready)
                return
            except (NotImplementedError, RuntimeError, ValueError):
                os.close(fd)

        def wait() -> None:
            try:
                proc.wait()
            finally:
                try:
                    loop.call_soon_threadsafe(self._exited)
                except RuntimeError:  # the loop is closed: the kernel is going away
                    pass

        threading.Thread(target=wait, name="netlab-docker-watch", daemon=True).start()

    def _exited(self) -> None:
        """A container's command ended: on the main thread, between cells, reap what exited."""
        if threading.current_thread() is not threading.main_thread():
            return
        lab = self.lab
        if Lab.existing() is not lab or self.generation != lab.generation or _ENGINES.get(lab) is not self:
            return  # a closed lab, or a reset: what this engine built is gone already
        if not self._lock.acquire(blocking=False):  # a subshell's %docker command is at work: later
            asyncio.get_running_loop().call_later(0.2, self._exited)
            return
        try:
            self._reap()
        except Exception:  # noqa: BLE001 - a cleanup between cells must never break the kernel
            logging.getLogger(__name__).warning("netlab: removing an exited container failed", exc_info=True)
        finally:
            self._lock.release()

    def _forget_job(self, name: str | None) -> None:
        if name:
            _quietly(self.lab.jobs.remove, name)

    # -- the firewall ----------------------------------------------------------------------------

    def _sync(self, daemon: Daemon) -> None:
        """Make the host's firewall and sysctls what dockerd would have made them for ``daemon``.

        Growth (dockerd start, network create, run -p) runs the new tail of dockerd's own
        commands; shrinking deletes the rules that went away. Counters of the other rules stay.
        """
        wanted = rules.build(daemon)
        for key, value in rules.sysctls(daemon).items():
            if self._sysctls.get(key) != value:
                self.lab.host.sysctl(key, value)
                self._sysctls[key] = value
        for key in [k for k in self._sysctls if k not in rules.sysctls(daemon)]:
            del self._sysctls[key]  # its bridge went away with it
        if wanted.log[:len(self._log)] == self._log:
            commands = wanted.log[len(self._log):]
        else:
            commands = _diff(self._tables, wanted)
        if commands:
            saved = self.lab.run(HOST, ["iptables-save", "--counters"], check=True).stdout
            script = "set -e\n" + "\n".join(commands) + "\n"
            result = self.lab.run(HOST, script)
            if result.returncode:
                self.lab.run(HOST, f"iptables-restore --counters <<'EOF'\n{saved}EOF\n")
                detail = (result.stderr.strip().splitlines() or ["iptables failed"])[-1]
                raise NetlabError(f"Error response from daemon: iptables failed: {detail}")
        self._tables, self._log = wanted, wanted.log

    def _rollback(self, before: Daemon, undo: list[Callable[[], None]]) -> None:
        """A step failed: undo what it built, give the model back, and the firewall with it."""
        _unwind(undo)
        self.daemon = before
        _quietly(self._sync, before)

    # -- names ---------------------------------------------------------------------------------

    def _free_veth(self) -> str:
        links = set(self.lab.host.links())
        while True:
            name = veth_name()
            if name not in links:
                return name

    def _new_name(self) -> str:
        while True:
            name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"
            if name not in self.boxes and name not in self.lab.list_netns():
                return name


def _diff(have: rules.Tables, want: rules.Tables) -> list[str]:
    """``iptables`` commands turning ``have`` into ``want``: new chains, deletions, insertions."""
    commands: list[str] = []
    for table, chains in want.chains.items():
        for chain in chains:
            if chain not in have.chains[table]:
                commands.append(f"iptables -t {table} -N {chain}")
    for (table, chain), target in want.policies.items():
        if have.policies.get((table, chain), "ACCEPT") != target:
            commands.append(f"iptables -t {table} -P {chain} {target}")
    for table, chains in have.chains.items():
        for chain, rules_ in chains.items():
            keep = want.chains[table].get(chain, [])
            commands += [f"iptables -t {table} -D {chain} {r}" for r in rules_ if r not in keep]
    for table, chains in want.chains.items():
        for chain, rules_ in chains.items():
            current = [r for r in have.chains[table].get(chain, []) if r in rules_]
            for i, rule in enumerate(rules_):
                if rule not in current:
                    commands.append(f"iptables -t {table} -I {chain} {i + 1} {rule}")
                    current.insert(i, rule)
    for table, chains in have.chains.items():
        for chain in chains:
            if chain not in want.chains[table]:
                commands.append(f"iptables -t {table} -X {chain}")
    return commands


# -- one engine per lab --------------------------------------------------------------------------

_ENGINES: "weakref.WeakKeyDictionary[Lab, Engine]" = weakref.WeakKeyDictionary()


def engine(lab: Lab | None = None) -> Engine:
    """The lab's engine (made on first use; a fresh one after ``%netlab reset``)."""
    lab = lab or Lab.current()
    current = _ENGINES.get(lab)
    if current is None or current.generation != lab.generation:
        current = Engine(lab)
        _ENGINES[lab] = current
    return current


def _main_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the kernel's main thread (where cells run), or None outside a kernel."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        from IPython import get_ipython

        kernel = getattr(get_ipython(), "kernel", None)
        loop = getattr(getattr(kernel, "io_loop", None), "asyncio_loop", None)
    except Exception:  # noqa: BLE001 - no IPython, or not a kernel
        return None
    if not isinstance(loop, asyncio.AbstractEventLoop) or loop.is_closed():
        return None
    return loop


def configure(lab: Lab, *, userland_proxy: bool) -> Engine:
    """``dockerd --userland-proxy=BOOL``: only before dockerd has done anything in this lab."""
    current = engine(lab)
    if current.userland_proxy == userland_proxy:
        return current
    if current.started:
        raise NetlabError(f"dockerd is already running with --userland-proxy="
                          f"{str(current.userland_proxy).lower()}: %netlab reset first to change it")
    current.userland_proxy = userland_proxy
    return current


# -- helpers ---------------------------------------------------------------------------------------

def image_port(image: str) -> int | None:
    """The TCP port a known image's server listens on (``nginx`` -> 80), else None."""
    known = IMAGES.get(_image_name(image))
    return known[1] if known else None


def _image_name(image: str) -> str:
    """``nginx:1.25`` / ``docker.io/library/nginx@sha256:..`` -> ``nginx``."""
    name = image.split("@")[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":")[0]
    for prefix in ("docker.io/library/", "library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def _job_name(prefix: str, name: str) -> str:
    return prefix + "-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _docker_exit_code(code: int | None) -> int:
    """A killed command exits ``128 + signal`` as Docker reports it (SIGKILL: 137, SIGINT: 130)."""
    if code is None:
        return 0
    return 128 - code if code < 0 else code


def _connectivity(box: Box, detail: str) -> str:
    """libnetwork's error when an endpoint's ports cannot be set up; the CLI ends it with a period."""
    return (f"driver failed programming external connectivity on endpoint {box.name} "
            f"({box.endpoint_id}): {detail.rstrip('.')}.")


def _daemon_call(fn: Callable[[], Any], prefix: str = "") -> Any:
    """Call the model; its errors get the CLI's ``Error response from daemon:`` in front."""
    try:
        return fn()
    except NetlabError as err:
        raise type(err)(f"{prefix}Error response from daemon: {err}") from err


def _unwind(undo: list[Callable[[], None]]) -> None:
    for step in reversed(undo):
        _quietly(step)


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - undoing: keep going, the first error is the one reported
        pass


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def human_duration(seconds: float) -> str:
    """Docker's ``HumanDuration`` (go-units): ``Less than a second``, ``5 seconds``, ``About a minute``..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    return f"{h // 24} days"


__all__ = ["Engine", "Box", "engine", "configure", "image_port", "human_duration", "IMAGES"]
