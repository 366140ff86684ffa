"""``docker network create``'s settings: ``--subnet``, ``--gateway`` and ``-o`` options, per release.

What a learner types is checked where Docker checks it, in Docker's words:

- by the CLI (``cli/command/network/create.go``, ``consolidateIpam``), before dockerd hears of
  it: a gateway needs a subnet, and must be in it (:func:`check_ipam_flags`, :class:`CliError`:
  no "Error response from daemon" in front);
- by dockerd: the subnet's syntax (and, from 28.x, host bits), and the bridge driver's options
  (``networkConfiguration.fromLabels``): ``failed to parse LABEL value: VALUE (...)``.

The ``-o`` options this lab models: ``com.docker.network.bridge.name``, ``...enable_icc``,
``...enable_ip_masquerade``, and in 28.5 ``...gateway_mode_ipv4=nat|nat-unprotected|routed``.
Docker would ignore an option it does not know; the lab says so in one line instead, so that
nothing a learner typed is silently dropped (:class:`NotModelled`: the lab's words, not dockerd's).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ..errors import InvalidAddress, InvalidName, NetlabError
from ..names import check_ifname
from .versions import (BRIDGE_NAME, ENABLE_ICC, ENABLE_IP_MASQUERADE, GATEWAY_MODE_IPV4, RELEASES, SINCE,
                       Release)

#: Go's ``strconv.ParseBool``.
_BOOLS = {**dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
          **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False)}


class CliError(NetlabError):
    """Refused by the Docker CLI itself: printed without "Error response from daemon"."""


class NotModelled(NetlabError):
    """Something Docker would take (or ignore) that this lab does not model: its own one line."""


@dataclass(frozen=True)
class BridgeOptions:
    """The bridge driver's settings for one network, from its ``-o`` options."""

    bridge: str | None = None  # com.docker.network.bridge.name (None: br-<id>)
    icc: bool = True
    masquerade: bool = True
    gateway_mode: str = "nat"
    given: tuple[tuple[str, str], ...] = ()  # as typed, for docker network inspect's "Options"


def check_ipam_flags(subnet: str | None, gateway: str | None) -> None:
    """``--subnet`` and ``--gateway`` as the CLI checks them before dockerd hears of them."""
    if gateway is None:
        return
    if subnet is None:
        raise CliError("every ip-range or gateway must have a corresponding subnet")
    net = _cidr(subnet)
    if net is None:  # the CLI prints what Go's ParseCIDR left (nil)
        raise CliError(f"Invalid subnet <nil> : invalid CIDR address: {subnet}")
    try:
        gw = IPv4Address(gateway)
    except ValueError:
        raise CliError(f"no matching subnet for gateway {gateway}") from None
    if gw not in net:
        raise CliError(f"no matching subnet for gateway {gateway}")


def ipam(release: Release, subnet: str | None, gateway: str | None) -> tuple[IPv4Network | None, IPv4Address | None]:
    """``--subnet`` and ``--gateway`` as dockerd checks them (the CLI's checks,
    :func:`check_ipam_flags`, came first: a gateway comes with a subnet it is in)."""
    if subnet is None:
        return None, None
    net = _cidr(subnet)
    if net is None:
        raise InvalidAddress(f"invalid CIDR address: {subnet}")
    if release.strict_subnets and str(net) != subnet:
        raise InvalidAddress(f"invalid subnet {subnet}: it should be {net}")
    return net, IPv4Address(gateway) if gateway is not None else None


def _cidr(text: str) -> IPv4Network | None:
    """Go's ``net.ParseCIDR`` of an IPv4 network (host bits allowed), or None."""
    try:
        return IPv4Network(text, strict=False) if "/" in text else None
    except ValueError:
        return None


def bridge_options(release: Release, given: dict[str, str]) -> BridgeOptions:
    """The ``-o KEY=VALUE`` options of ``docker network create``, for ``release``'s bridge driver."""
    known = release.options
    settings: dict = {"given": tuple(sorted(given.items()))}
    for key, value in given.items():
        if key not in known:
            everywhere = {o for r in RELEASES.values() for o in r.options}
            if key in everywhere:
                raise NotModelled(f"-o {key}: Docker Engine {release.key}'s bridge driver has no such option "
                               f"(it came with {SINCE.get(key, 'a later release')}; dockerd {release.key} "
                               "would ignore it)")
            raise NotModelled(f"-o {key}: this lab does not model that option (it knows: {', '.join(known)})")
        if key == BRIDGE_NAME:
            check_bridge_name(value)
            settings["bridge"] = value
        elif key in (ENABLE_ICC, ENABLE_IP_MASQUERADE):
            if value not in _BOOLS:
                raise _parse_error(key, value, f'strconv.ParseBool: parsing "{value}": invalid syntax')
            settings["icc" if key == ENABLE_ICC else "masquerade"] = _BOOLS[value]
        elif key == GATEWAY_MODE_IPV4:
            if value == "isolated":
                raise NotModelled(f"-o {key}=isolated: this lab models {', '.join(release.gateway_modes)}")
            if value not in release.gateway_modes:
                raise _parse_error(key, value, f"unknown gateway mode {value}")
            settings["gateway_mode"] = value
    return BridgeOptions(**settings)


def split_options(opts: list[str]) -> dict[str, str]:
    """``-o KEY=VALUE`` as the CLI's MapOpts reads them (``-o KEY`` is ``KEY`` with an empty value)."""
    out = {}
    for opt in opts:
        key, _, value = opt.partition("=")
        out[key] = value
    return out


def check_bridge_name(name: str) -> None:
    """A bridge name given with ``-o com.docker.network.bridge.name``."""
    try:
        check_ifname(name)
    except InvalidName as err:
        raise _parse_error(BRIDGE_NAME, name, str(err)) from err


def _parse_error(label: str, value: str, detail: str) -> NetlabError:
    """libnetwork's ``parseErr``."""
    return NetlabError(f"failed to parse {label} value: {value} ({detail})")


__all__ = ["CliError", "NotModelled", "BridgeOptions", "check_ipam_flags", "ipam", "bridge_options", "split_options", "check_bridge_name"]
