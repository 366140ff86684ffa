"""What dockerd keeps for the bridge driver: networks, containers and published ports, as data.

:class:`Daemon` plays ``docker network create``, ``docker run --network NET -p HOST:CONTAINER``,
a container's exit, ``docker rm`` and ``docker network rm`` on plain data and derives the values
Docker derives, the way the Docker Engine release it models does (:mod:`.versions`; Docker Engine
20.10.24, Debian bookworm's ``docker.io``, unless told otherwise):

- address pools: ``172.17.0.0/16`` for the default ``bridge`` network (device ``docker0``), then
  ``172.18.0.0/16``, ``172.19.0.0/16`` ... ``172.31.0.0/16``, then ``192.168.0.0/20``,
  ``192.168.16.0/20`` ... (``libnetwork/ipamutils/utils.go``). Docker 28 takes the lowest pool
  that no network uses (``libnetwork/ipams/defaultipam/address_space.go``,
  ``allocatePredefinedPool``); Docker 20.10 searches from the pool after the one it handed out
  last, so a removed network's pool comes back only after the list wraps (libnetwork's
  ``ipam/allocator.go``: ``getPredefineds`` and ``updateStartIndex``).
- container addresses: gateway ``.1``; each container gets the **lowest free** address of its
  network, and an address freed by ``docker rm`` (or by a container's exit) is the next one handed
  out. libnetwork's ``ipam/allocator.go`` (``requestAddress``) scans its bitmap serially only if
  the request carries ``com.docker.network.ipam.serial=true``
  (``bitmask.SetAny(serial)``: serial starts after the last bit set, otherwise at the first free
  one); the daemon creates a container's endpoint with no IPAM options
  (``daemon/network.go``, ``buildCreateEndpointOptions``: ``CreateOptionIpam(ip, ip6, ipList,
  nil)``), which ``libnetwork/endpoint.go`` passes on to ``RequestAddress``. Serial allocation is
  SwarmKit's, for swarm networks (``manager/allocator/cnmallocator/networkallocator.go``:
  ``setIPAMSerialAlloc``). Observed on dockerd 20.10.24: ``def1`` got 172.17.0.2, was removed,
  and the next container on the bridge got 172.17.0.2 again
  (``tests/fixtures/docker/ipam-reuse.json``).
- network and container ids: 64 random hex digits (``pkg/stringid``, ``GenerateRandomID``); a
  network's bridge is ``br-`` + the first 12 (``drivers/bridge/bridge.go``).
- the host end of a container's veth: ``veth`` + 7 random hex digits; the container end is
  renamed ``eth0`` (``netutils.GenerateIfaceName(nlh, "veth", 7)``, ``osl`` renames it).
- the container's MAC: ``02:42`` + the four bytes of its IPv4 address in 20.10
  (``netutils.GenerateMACFromIP``); later engines draw the four bytes at random
  (``netutils.GenerateRandomMAC``).
- a container without ``--name``: ``adjective_surname`` (``pkg/namesgenerator``, a few of its words).

A :class:`Container` is one record from ``docker run`` to ``docker rm``: what it was told, its
endpoint (kept after it exited, for ``inspect``), its state, and the handles of the engine that
runs it. Only running containers hold an endpoint that rules are made for (:attr:`Daemon.history`).

Nothing here needs privileges or touches the system; :mod:`netlab_magic.docker.rules` turns a
:class:`Daemon` into the iptables rules dockerd would install. Errors use Docker's own words.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Callable

from ..errors import AlreadyExists, InvalidName, NetlabError, NotFound
from . import versions
from .options import NotModelled, bridge_options, ipam
from .ports import PortAllocated, PortBinding
from .versions import ENABLE_ICC, ENABLE_IP_MASQUERADE

#: The network every ``docker run`` without ``--network`` joins, and its bridge device.
DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "docker0"

#: ``libnetwork/ipamutils/utils.go``: (base, size of each pool cut from it).
_POOL_BASES = (
    ("172.17.0.0/16", 16), ("172.18.0.0/16", 16), ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16), ("172.24.0.0/14", 16), ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
)

#: A few words of ``pkg/namesgenerator``, for containers run without ``--name``.
_ADJECTIVES = ("admiring", "brave", "clever", "eager", "festive", "gallant", "happy", "jolly",
               "keen", "loving", "modest", "nifty", "quirky", "relaxed", "sharp", "zealous")
_SURNAMES = ("babbage", "curie", "dijkstra", "einstein", "hopper", "kare", "lovelace", "mccarthy",
             "noether", "pike", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


def connectivity_error(name: str, endpoint: str, detail: str) -> str:
    """libnetwork's error when an endpoint's ports cannot be set up; the CLI ends it with a period."""
    return (f"driver failed programming external connectivity on endpoint {name} "
            f"({endpoint}): {detail.rstrip('.')}.")


def daemon_call(fn: Callable[[], Any], prefix: str = "") -> Any:
    """Call the model as the CLI calls dockerd: its errors get ``Error response from daemon:`` in
    front (and, from ``docker run``, the CLI's ``docker: ...`` around them, ending with a period).
    The lab's own refusal of what it does not model (:class:`~.options.NotModelled`) is not
    dockerd's: it stays as it is."""
    try:
        return fn()
    except NotModelled:
        raise
    except NetlabError as err:
        text = f"{prefix}Error response from daemon: {err}"
        raise type(err)(text if not prefix or text.endswith(".") else text + ".") from err


#: daemon/names: ``validContainerNamePattern``.
_CONTAINER_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


def default_address_pools() -> tuple[IPv4Network, ...]:
    """The local-scope pools in the order Docker tries them (172.17.0.0/16 first)."""
    pools: list[IPv4Network] = []
    for base, size in _POOL_BASES:
        pools.extend(IPv4Network(base).subnets(new_prefix=size))
    return tuple(pools)


def random_id() -> str:
    """A network or container id as Docker makes one: 64 random hex digits."""
    return secrets.token_hex(32)


def bridge_name(network_id: str) -> str:
    """The bridge device of a user-defined network: ``br-`` + the first 12 hex of its id."""
    if not re.fullmatch(r"[0-9a-f]{12,64}", network_id):
        raise InvalidName(f"invalid network id {network_id!r}: expected 12 to 64 hex digits")
    return "br-" + network_id[:12]


def veth_name() -> str:
    """A host-side veth name as Docker picks one: ``veth`` + 7 random hex digits."""
    return "veth" + secrets.token_hex(4)[:7]


def mac_from_ip(ip: IPv4Address | str) -> str:
    """The MAC Docker 20.10 gives a container: ``02:42`` then the four bytes of its IPv4 address."""
    packed = IPv4Address(ip).packed
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *packed))


def random_mac() -> str:
    """The MAC later engines give a container: ``02:42`` then four random bytes."""
    return ":".join(f"{b:02x}" for b in (0x02, 0x42, *secrets.token_bytes(4)))


@dataclass(frozen=True)
class Network:
    """A bridge network: ``docker network create NAME`` (or the default ``bridge``)."""

    name: str
    id: str
    subnet: IPv4Network
    gateway: IPv4Address
    bridge: str  # docker0, or br-<first 12 hex of id>
    internal: bool = False  # --internal: no way out, no published ports
    icc: bool = True  # com.docker.network.bridge.enable_icc
    masquerade: bool = True  # com.docker.network.bridge.enable_ip_masquerade
    gateway_mode: str = "nat"  # com.docker.network.bridge.gateway_mode_ipv4 (28.5)
    options: tuple[tuple[str, str], ...] = ()  # the -o options as given
    created: float = field(default_factory=time.time, compare=False)

    @property
    def default(self) -> bool:
        return self.name == DEFAULT_NETWORK


@dataclass(eq=False)
class Container:
    """One container, from ``docker run`` to ``docker rm``: running, or exited and kept.

    The endpoint (``ip``, ``mac``, ``veth``, ``ports``) is dockerd's allocation; it stays on the
    record after the container exited, but only a running container holds it (addresses, host
    ports and rules): dockerd releases a stopped container's network, and ``docker inspect``
    then shows its address empty (:mod:`.inspect`). ``job``, ``pid``, ``proxies`` and ``proc`` are
    the handles of the engine that runs the container's command in the lab.
    """

    name: str
    id: str
    network: str
    ip: IPv4Address
    mac: str
    veth: str  # the host end, a port of the network's bridge
    ports: tuple[PortBinding, ...] = ()
    image: str = ""
    cmd: tuple[str, ...] = ()  # what the user gave after IMAGE (empty: the image's default)
    command: str = ""  # the bash command really run inside the namespace
    hostname: str = ""  # --hostname; by default the short id, as Docker names it
    auto_remove: bool = False  # --rm: removed as soon as it exits
    endpoint_id: str = field(default_factory=random_id)
    sandbox_id: str = field(default_factory=random_id)
    created: float = field(default_factory=time.time)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    exit_code: int | None = None  # None while it runs
    # the engine's handles on what runs
    job: str | None = None  # the lab job running the command (detached containers)
    pid: int = 0  # the container's PID 1, as the lab's host numbers it (Docker's State.Pid)
    shim_pid: int = 0  # what holds its namespaces and waits outside (`unshare --fork`, see .processes)
    proxies: list[str] = field(default_factory=list)  # lab jobs of our docker-proxy
    proc: Any = field(default=None, repr=False)  # a foreground command, while it streams

    def __post_init__(self) -> None:
        self.hostname = self.hostname or self.id[:12]

    @property
    def running(self) -> bool:
        return self.exit_code is None

    @property
    def netns(self) -> str:
        """The lab namespace that is this container's network (named after it)."""
        return self.name


@dataclass
class Daemon:
    """A dockerd and what it was told, in order. ``userland_proxy`` is ``--userland-proxy``.

    ``ip_forward`` is whether the host already forwarded before dockerd started: Docker sets the
    FORWARD policy to DROP only when it is the one turning forwarding on. ``version`` is the
    Docker Engine release modelled (:data:`netlab_magic.docker.versions.RELEASES`).
    """

    userland_proxy: bool = True
    ip_forward: bool = False
    default_bridge_id: str | None = None
    version: str = versions.DEFAULT
    networks: dict[str, Network] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    history: list[Network | Container] = field(default_factory=list)  # what holds rules, in creation order
    _pool_start: int = field(default=0, repr=False)  # 20.10: where the next pool search starts

    def __post_init__(self) -> None:
        self.release = versions.release(self.version)
        if DEFAULT_NETWORK not in self.networks:
            self._add_network(Network(DEFAULT_NETWORK, self.default_bridge_id or random_id(),
                                      IPv4Network("172.17.0.0/16"), IPv4Address("172.17.0.1"),
                                      DEFAULT_BRIDGE))

    # -- docker network create / rm ------------------------------------------------------

    def network_create(self, name: str, *, id: str | None = None, subnet: str | None = None,
                       gateway: str | None = None, internal: bool = False, icc: bool = True,
                       masquerade: bool = True, options: dict[str, str] | None = None) -> Network:
        """``docker network create [--internal] [--subnet CIDR [--gateway IP]] [-o KEY=VALUE]... NAME``.

        ``options`` are the bridge driver's ``-o`` options (:mod:`.options`); ``icc`` and
        ``masquerade`` say the same as two of them.
        """
        pool, gw = ipam(self.release, subnet, gateway)
        opts = bridge_options(self.release, {ENABLE_ICC: str(icc).lower(), ENABLE_IP_MASQUERADE:
                                             str(masquerade).lower(), **(options or {})})
        if not name:
            raise InvalidName("network name cannot be empty")
        if name in self.networks:
            raise AlreadyExists(f"network with name {name} already exists")
        net_id = id or random_id()
        bridge = opts.bridge or bridge_name(net_id)
        for other in self.networks.values():
            if other.bridge == bridge:  # libnetwork's networkConfiguration.Conflicts
                raise AlreadyExists(f"cannot create network {net_id} ({bridge}): conflicts with network "
                                    f"{other.id} ({other.bridge}): networks have same bridge name")
        pool = self._pick_pool(pool)
        return self._add_network(Network(name, net_id, pool, gw or next(pool.hosts()), bridge,
                                         internal=internal, icc=opts.icc, masquerade=opts.masquerade,
                                         gateway_mode=opts.gateway_mode, options=tuple(sorted((options or {}).items()))))

    def network_rm(self, name: str) -> None:
        """``docker network rm NAME``."""
        net = self.network(name)
        if name == DEFAULT_NETWORK:
            raise NetlabError(f"{name} is a pre-defined network and cannot be removed")
        if any(c.network == name and c.running for c in self.containers.values()):
            raise NetlabError(f"error while removing network: network {name} id {net.id} "
                              "has active endpoints")
        del self.networks[name]
        self.history.remove(net)

    def network(self, name: str) -> Network:
        """The network called ``name``, or Docker's "not found"."""
        try:
            return self.networks[name]
        except KeyError:
            raise NotFound(f"network {name} not found") from None

    # -- docker run / a container's exit / rm --------------------------------------------

    def run(self, name: str, *, network: str = DEFAULT_NETWORK, publish: tuple[PortBinding, ...] = (),
            id: str | None = None, veth: str | None = None, **record: Any) -> Container:
        """``docker run -d --name NAME [--network NET] [-p HOST:CONTAINER ...] IMAGE``.

        ``publish``: the ``-p`` bindings as the CLI parsed them (:func:`~.ports.parse_publish`).

        ``record`` fills the rest of the :class:`Container` (``image``, ``cmd``, ``command``,
        ``auto_remove``).
        """
        name = name.removeprefix("/")
        if name in self.containers:
            other = self.containers[name]
            raise AlreadyExists(f'Conflict. The container name "/{name}" is already in use by '
                                f'container "{other.id}". You have to remove (or rename) that '
                                "container to be able to reuse that name.")
        net = self.network(network)
        if not _CONTAINER_NAME.match(name):
            raise InvalidName(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                              "are allowed")
        ports = tuple(publish)
        for i, port in enumerate(ports):  # the bridge driver allocates them one by one
            self._check_port_free(port, ports[:i])
        ip = self._next_address(net)
        mac = mac_from_ip(ip) if self.release.mac_from_ip else random_mac()
        container = Container(name, id or random_id(), network, ip, mac, veth or veth_name(), ports,
                              **record)
        self.containers[name] = container
        self.history.append(container)
        return container

    def exited(self, name: str, code: int) -> Container:
        """The container's command ended: its endpoint goes (``--rm``: and its record)."""
        container = self.container(name)
        if container.running:
            self.history.remove(container)
            container.exit_code, container.finished = code, time.time()
        if container.auto_remove:
            del self.containers[name]
        return container

    def rm(self, name: str) -> None:
        """``docker rm -f NAME``."""
        container = self.container(name)
        if container.running:
            self.history.remove(container)
        del self.containers[name]

    def container(self, name: str) -> Container:
        """The container called ``name``, or Docker's "No such container"."""
        try:
            return self.containers[name]
        except KeyError:
            raise NotFound(f"No such container: {name}") from None

    def new_name(self, taken: Callable[[str], bool] = lambda name: False) -> str:
        """A free ``adjective_surname`` for a container run without ``--name``."""
        while True:
            name = f"{random.choice(_ADJECTIVES)}_{random.choice(_SURNAMES)}"
            if name not in self.containers and not taken(name):
                return name

    # -- a step that fails gives the model back ------------------------------------------

    def checkpoint(self) -> Callable[[], None]:
        """Remember the model now; calling the result puts it back (records are not copied)."""
        networks, containers = dict(self.networks), dict(self.containers)
        history, pool_start = list(self.history), self._pool_start

        def restore() -> None:
            self.networks, self.containers = networks, containers
            self.history, self._pool_start = history, pool_start
        return restore

    # -- internals -----------------------------------------------------------------------

    def _add_network(self, net: Network) -> Network:
        self.networks[net.name] = net
        self.history.append(net)
        return net

    def _pick_pool(self, wanted: IPv4Network | None) -> IPv4Network:
        used = [n.subnet for n in self.networks.values()]
        if wanted is not None:
            if any(wanted.overlaps(u) for u in used):
                raise AlreadyExists("Pool overlaps with other one on this address space")
            return wanted
        pools = default_address_pools()
        start = self._pool_start if self.release.rotating_pools else 0
        for i, pool in enumerate(pools[start:] + pools[:start]):
            if not any(pool.overlaps(u) for u in used):
                self._pool_start = (start + i + 1) % len(pools)
                return pool
        raise NetlabError("could not find an available, non-overlapping IPv4 address pool "
                          "among the defaults to assign to the network")

    def _next_address(self, net: Network) -> IPv4Address:
        """The lowest address of ``net`` that no running container and not the gateway holds."""
        taken = {c.ip for c in self.containers.values() if c.network == net.name and c.running}
        taken.add(net.gateway)
        for candidate in net.subnet.hosts():
            if candidate not in taken:
                return candidate
        raise NetlabError(f"no available IPv4 addresses on this network's address pools: "
                          f"{net.name} ({net.id})")

    def _check_port_free(self, want: PortBinding, also: tuple[PortBinding, ...] = ()) -> None:
        """Refuse a host port that another running container, or an earlier ``-p`` of the same
        ``run`` (``also``), already holds: Docker's port allocator does the same."""
        taken = [have for c in self.containers.values() if c.running for have in c.ports] + list(also)
        for have in taken:
            same_ip = have.host_ip == want.host_ip or IPv4Address("0.0.0.0") in (have.host_ip, want.host_ip)
            if same_ip and (have.host_port, have.proto) == (want.host_port, want.proto):
                raise PortAllocated(f"Bind for {want.host_ip}:{want.host_port} failed: "
                                    "port is already allocated")


__all__ = [
    "DEFAULT_NETWORK", "DEFAULT_BRIDGE", "Daemon", "Network", "Container", "PortBinding", "PortAllocated",
    "connectivity_error", "daemon_call", "default_address_pools", "random_id", "bridge_name", "veth_name", "mac_from_ip", "random_mac",
]
