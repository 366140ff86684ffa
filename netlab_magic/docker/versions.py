"""The Docker Engine releases this lab reproduces, and the few facts that differ between them.

A :class:`Release` is data only: its version numbers (what ``docker version`` prints), how it
derives a container's MAC address, which ``com.docker.network.bridge.*`` options its bridge
driver takes. Its iptables program lives in a module of its own (:mod:`.bridge20`,
:mod:`.bridge28`), chosen by
:func:`netlab_magic.docker.rules.build` from :attr:`Release.key`; the daemon model
(:mod:`.daemon`) is shared.

``%docker dockerd --version=KEY`` picks one; ``20.10`` is the default (the talk's generation).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import NetlabError

#: ``-o`` options of the bridge driver that this lab models (both releases).
BRIDGE_NAME = "com.docker.network.bridge.name"
ENABLE_ICC = "com.docker.network.bridge.enable_icc"
ENABLE_IP_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
GATEWAY_MODE_IPV4 = "com.docker.network.bridge.gateway_mode_ipv4"


@dataclass(frozen=True)
class Release:
    """One Docker Engine release, as far as its bridge networking goes."""

    key: str  #: what ``--version=`` takes
    version: str  #: the engine's version, as ``docker version`` prints it
    api: str  #: its API version
    min_api: str  #: the oldest API version it still serves
    #: ``libnetwork/netutils``: MAC ``02:42`` + the IPv4 address (20.10), or random after it.
    mac_from_ip: bool
    #: values of ``-o com.docker.network.bridge.gateway_mode_ipv4``; empty: the option does not exist.
    gateway_modes: tuple[str, ...] = ()
    #: a subnet with host bits (``10.0.0.1/24``): taken as its network (20.10) or refused (28.x)
    strict_subnets: bool = False
    #: ``docker network create`` without ``--subnet``: the search for a free default pool starts
    #: after the pool handed out last (20.10: libnetwork's ``ipam/allocator.go``,
    #: ``predefinedStartIndices``), or at the lowest pool (28.x: the linear allocator,
    #: ``libnetwork/ipams/defaultipam/address_space.go``, ``allocatePredefinedPool``).
    rotating_pools: bool = False
    go: str = ""  #: the Go release it was built with ("": not known here)
    git_commit: str = ""  #: the engine's commit, as ``docker version`` prints it ("": not known here)
    #: where the numbers come from
    source: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        """The ``-o`` options of this release's bridge driver that the lab models."""
        base = (BRIDGE_NAME, ENABLE_ICC, ENABLE_IP_MASQUERADE)
        return base + ((GATEWAY_MODE_IPV4,) if self.gateway_modes else ())


RELEASES: dict[str, Release] = {
    "20.10": Release(
        key="20.10", version="20.10.24+dfsg1", api="1.41", min_api="1.12", go="go1.19.8",
        git_commit="5d6db84", mac_from_ip=True, rotating_pools=True,
        source="Debian 12's docker.io, captured: tests/fixtures/docker/proxy-on/docker-version.txt"),
    "28.5": Release(
        key="28.5", version="28.5.2", api="1.51", min_api="1.24", mac_from_ip=False,
        gateway_modes=("nat", "nat-unprotected", "routed"), strict_subnets=True,
        source="moby/moby v28.5.2: api/common.go (API 1.51), libnetwork/drivers/bridge"),
}

#: When an option came, for the one line that says a release lacks it.
SINCE = {GATEWAY_MODE_IPV4: "27.0"}

#: The release the talk's notebooks run.
DEFAULT = "20.10"


def release(key: str) -> Release:
    """The release called ``key`` (``20.10``), or one line naming the releases this lab knows."""
    try:
        return RELEASES[key]
    except KeyError:
        known = " and ".join(RELEASES)
        raise NetlabError(f"unknown Docker version {key!r}: this lab knows Docker Engine {known} "
                          f"(--version={'|'.join(RELEASES)})") from None


__all__ = ["Release", "RELEASES", "DEFAULT", "SINCE", "release",
           "BRIDGE_NAME", "ENABLE_ICC", "ENABLE_IP_MASQUERADE", "GATEWAY_MODE_IPV4"]
