"""Checking what users type: namespace names, interface names, addresses and CIDRs.

Pure functions, no privileges. Each raises a typed :class:`~netlab_magic.errors.NetlabError`
whose message is one line. Nothing here ever reaches a shell: names are only ever used
as ``argv`` items, netlink attributes or file names under ``/run/netns``.
"""

from __future__ import annotations

import ipaddress
import re

from .errors import InvalidAddress, InvalidName

#: Linux IFNAMSIZ is 16 bytes including the terminating NUL.
IFNAME_MAX = 15
#: A namespace name is a file name under /run/netns.
NETNS_MAX = 64

_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]*$")


def check_netns_name(name: str) -> str:
    """Return ``name`` if ``ip netns add NAME`` would accept it, else raise :class:`InvalidName`."""
    if not isinstance(name, str) or not name:
        raise InvalidName("a namespace name cannot be empty")
    if name in (".", ".."):
        raise InvalidName(f"{name!r} is not a valid namespace name")
    if len(name) > NETNS_MAX:
        raise InvalidName(f"namespace name {name!r} is too long (at most {NETNS_MAX} characters)")
    if not _SAFE.match(name):
        raise InvalidName(
            f"{name!r} is not a valid namespace name: use letters, digits and _ . @ + - "
            "(no '/', spaces or shell characters)"
        )
    return name


def check_ifname(name: str) -> str:
    """Return ``name`` if the kernel would accept it as an interface name, else raise."""
    if not isinstance(name, str) or not name:
        raise InvalidName("an interface name cannot be empty")
    if name in (".", ".."):
        raise InvalidName(f"{name!r} is not a valid interface name")
    if len(name.encode()) > IFNAME_MAX:
        raise InvalidName(
            f"interface name {name!r} is too long: {len(name.encode())} bytes, "
            f"the kernel allows at most {IFNAME_MAX}"
        )
    if not _SAFE.match(name) or ":" in name:
        raise InvalidName(
            f"{name!r} is not a valid interface name: use letters, digits and _ . @ + - "
            "(no '/', ':', spaces or shell characters)"
        )
    return name


def parse_interface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """Parse ``"10.0.0.1/24"`` (an address *with* its prefix length), as ``ip addr add`` wants."""
    if not isinstance(cidr, str) or "/" not in cidr:
        raise InvalidAddress(f"{cidr!r} is not an address with a prefix length, like 10.0.0.1/24")
    try:
        return ipaddress.ip_interface(cidr.strip())
    except ValueError as err:
        raise InvalidAddress(f"{cidr!r} is not a valid address/prefix: {err}") from err


def parse_network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse a route destination such as ``"10.0.0.0/24"`` or ``"default"``."""
    if cidr == "default":
        return ipaddress.ip_network("0.0.0.0/0")
    try:
        return ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError as err:
        raise InvalidAddress(f"{cidr!r} is not a valid network: {err}") from err


def parse_address(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse a plain address such as a gateway ``"10.0.0.1"``."""
    try:
        return ipaddress.ip_address(str(addr).strip())
    except ValueError as err:
        raise InvalidAddress(f"{addr!r} is not a valid IP address") from err
