"""What dockerd keeps for the bridge driver: networks, containers and published ports, as data.

:class:`Daemon` plays ``docker network create``, ``docker run --network NET -p HOST:CONTAINER``,
``docker rm -f`` and ``docker network rm`` on plain data and derives the values Docker derives,
the way Docker Engine 20.10.24 (Debian bookworm's ``docker.io``) does:

- address pools: ``172.17.0.0/16`` for the default ``bridge`` network (device ``docker0``), then
  ``172.18.0.0/16``, ``172.19.0.0/16`` ... ``172.31.0.0/16``, then ``192.168.0.0/20``,
  ``192.168.16.0/20`` ... (``libnetwork/ipamutils/utils.go``); the first pool that no other
  network uses is taken. Gateway ``.1``; containers ``.2``, ``.3``, ... in the order they start,
  and an address freed by ``docker rm`` is handed out again only after the range wraps
  (libnetwork's serial allocation: ``setIPAMSerialAlloc``, ``libnetwork/ipam/allocator.go``).
- network ids: 64 random hex digits; bridge ``br-`` + the first 12 (``drivers/bridge/bridge.go``).
- the host end of a container's veth: ``veth`` + 7 random hex digits; the container end is
  renamed ``eth0`` (``netutils.GenerateIfaceName(nlh, "veth", 7)``, ``osl`` renames it).
- the container's MAC: ``02:42`` + the four bytes of its IPv4 address
  (``libnetwork/netutils/utils.go``, ``GenerateMACFromIP``). Later engines stopped deriving the
  MAC from the address; that is not reproduced here.

Nothing here needs privileges or touches the system; :mod:`netlab_magic.docker.rules` turns a
:class:`Daemon` into the iptables rules dockerd would install. Errors use Docker's own words.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from ..errors import AlreadyExists, InvalidAddress, InvalidName, NetlabError, NotFound

#: The network every ``docker run`` without ``--network`` joins, and its bridge device.
DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE = "docker0"

#: ``libnetwork/ipamutils/utils.go``: (base, size of each pool cut from it).
_POOL_BASES = (
    ("172.17.0.0/16", 16), ("172.18.0.0/16", 16), ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16), ("172.24.0.0/14", 16), ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
)

class PortAllocated(AlreadyExists):
    """``Bind for IP:PORT failed: port is already allocated`` (libnetwork's port allocator)."""


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


@dataclass(frozen=True)
class PortBinding:
    """One ``-p [IP:]HOST:CONTAINER[/PROTO]``: host side (address, port) to the container's port."""

    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: IPv4Address = IPv4Address("0.0.0.0")

    @classmethod
    def parse(cls, spec: str) -> PortBinding:
        """Parse what follows ``-p``: ``8888:80``, ``8888:80/udp``, ``127.0.0.1:8888:80``."""
        rest, _, proto = spec.partition("/")
        proto = proto or "tcp"
        if proto not in ("tcp", "udp"):
            raise NetlabError(f"invalid proto: {proto}")
        parts = rest.rsplit(":", 2)
        if len(parts) < 2:
            raise NetlabError(f"invalid publish spec {spec!r}: this lab needs HOST:CONTAINER "
                              "(Docker would pick a random host port)")
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        try:
            ip = IPv4Address(host_ip)
        except ValueError as err:
            raise InvalidAddress(f"invalid IP address: {host_ip}") from err
        return cls(_port(parts[-2], "hostPort"), _port(parts[-1], "containerPort"), proto, ip)

    def __str__(self) -> str:
        return f"{self.host_ip}:{self.host_port}->{self.container_port}/{self.proto}"


def _port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise NetlabError(f"invalid {what}: {text}")
    return int(text)


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


@dataclass(frozen=True)
class Container:
    """A running container with one interface, ``eth0``, on one bridge network."""

    name: str
    id: str
    network: str
    ip: IPv4Address
    mac: str
    veth: str  # the host end, a port of the network's bridge
    ports: tuple[PortBinding, ...] = ()


@dataclass
class Daemon:
    """A dockerd and what it was told, in order. ``userland_proxy`` is ``--userland-proxy``.

    ``ip_forward`` is whether the host already forwarded before dockerd started: Docker sets the
    FORWARD policy to DROP only when it is the one turning forwarding on.
    """

    userland_proxy: bool = True
    ip_forward: bool = False
    default_bridge_id: str | None = None
    networks: dict[str, Network] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    history: list[Network | Container] = field(default_factory=list)  # creation order
    _last_host: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if DEFAULT_NETWORK not in self.networks:
            self._add_network(Network(DEFAULT_NETWORK, self.default_bridge_id or random_id(),
                                      IPv4Network("172.17.0.0/16"), IPv4Address("172.17.0.1"),
                                      DEFAULT_BRIDGE))

    # -- docker network create / rm ------------------------------------------------------

    def network_create(self, name: str, *, id: str | None = None, subnet: str | None = None,
                       internal: bool = False, icc: bool = True,
                       masquerade: bool = True) -> Network:
        """``docker network create [--internal] [--subnet CIDR] NAME``."""
        if not name:
            raise InvalidName("network name cannot be empty")
        if name in self.networks:
            raise AlreadyExists(f"network with name {name} already exists")
        net_id = id or random_id()
        pool = self._pick_pool(subnet)
        gateway = next(pool.hosts())
        return self._add_network(Network(name, net_id, pool, gateway, bridge_name(net_id),
                                         internal=internal, icc=icc, masquerade=masquerade))

    def network_rm(self, name: str) -> None:
        """``docker network rm NAME``."""
        net = self.network(name)
        if name == DEFAULT_NETWORK:
            raise NetlabError(f"{name} is a pre-defined network and cannot be removed")
        if any(c.network == name for c in self.containers.values()):
            raise NetlabError(f"error while removing network: network {name} id {net.id} "
                              "has active endpoints")
        del self.networks[name]
        self.history.remove(net)
        self._last_host.pop(name, None)

    def network(self, name: str) -> Network:
        """The network called ``name``, or Docker's "not found"."""
        try:
            return self.networks[name]
        except KeyError:
            raise NotFound(f"network {name} not found") from None

    # -- docker run / rm -----------------------------------------------------------------

    def run(self, name: str, *, network: str = DEFAULT_NETWORK, publish: tuple[str, ...] = (),
            id: str | None = None, veth: str | None = None) -> Container:
        """``docker run -d --name NAME [--network NET] [-p HOST:CONTAINER ...] IMAGE``."""
        if not _CONTAINER_NAME.match(name):
            raise InvalidName(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] "
                              "are allowed")
        if name in self.containers:
            other = self.containers[name]
            raise AlreadyExists(f'Conflict. The container name "/{name}" is already in use by '
                                f'container "{other.id}". You have to remove (or rename) that '
                                "container to be able to reuse that name.")
        net = self.network(network)
        ports = tuple(PortBinding.parse(p) for p in publish)
        for i, port in enumerate(ports):  # the bridge driver allocates them one by one
            self._check_port_free(port, ports[:i])
        ip = self._next_address(net)
        container = Container(name, id or random_id(), network, ip, mac_from_ip(ip),
                              veth or veth_name(), ports)
        self.containers[name] = container
        self.history.append(container)
        return container

    def rm(self, name: str) -> None:
        """``docker rm -f NAME``."""
        try:
            container = self.containers.pop(name)
        except KeyError:
            raise NotFound(f"No such container: {name}") from None
        self.history.remove(container)

    # -- internals -----------------------------------------------------------------------

    def _add_network(self, net: Network) -> Network:
        self.networks[net.name] = net
        self.history.append(net)
        return net

    def _pick_pool(self, subnet: str | None) -> IPv4Network:
        used = [n.subnet for n in self.networks.values()]
        if subnet is not None:
            try:
                wanted = IPv4Network(subnet)
            except ValueError as err:
                raise InvalidAddress(f"invalid subnet {subnet}: {err}") from err
            if any(wanted.overlaps(u) for u in used):
                raise AlreadyExists("Pool overlaps with other one on this address space")
            return wanted
        for pool in default_address_pools():
            if not any(pool.overlaps(u) for u in used):
                return pool
        raise NetlabError("could not find an available, non-overlapping IPv4 address pool "
                          "among the defaults to assign to the network")

    def _next_address(self, net: Network) -> IPv4Address:
        taken = {c.ip for c in self.containers.values() if c.network == net.name}
        taken.add(net.gateway)
        first = int(net.subnet.network_address) + 1
        last = int(net.subnet.broadcast_address) - 1
        start = self._last_host.get(net.name, first)
        size = last - first + 1
        for step in range(1, size + 1):
            candidate = first + (start - first + step) % size
            if IPv4Address(candidate) not in taken:
                self._last_host[net.name] = candidate
                return IPv4Address(candidate)
        raise NetlabError(f"no available IPv4 addresses on this network's address pools: "
                          f"{net.name} ({net.id})")

    def _check_port_free(self, want: PortBinding, also: tuple[PortBinding, ...] = ()) -> None:
        """Refuse a host port that another container, or an earlier ``-p`` of the same ``run``
        (``also``), already holds: Docker's port allocator does the same."""
        taken = [have for c in self.containers.values() for have in c.ports] + list(also)
        for have in taken:
            same_ip = have.host_ip == want.host_ip or IPv4Address("0.0.0.0") in (have.host_ip, want.host_ip)
            if same_ip and (have.host_port, have.proto) == (want.host_port, want.proto):
                raise PortAllocated(f"Bind for {want.host_ip}:{want.host_port} failed: "
                                    "port is already allocated")


__all__ = [
    "DEFAULT_NETWORK", "DEFAULT_BRIDGE", "Daemon", "Network", "Container", "PortBinding", "PortAllocated",
    "default_address_pools", "random_id", "bridge_name", "veth_name", "mac_from_ip",
]
