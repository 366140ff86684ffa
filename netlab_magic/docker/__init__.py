"""Docker without Docker: what Docker Engine's bridge driver builds, as plain data.

:mod:`.daemon` plays ``docker network create`` / ``docker run -p`` and derives Docker's values
(address pools, ``br-<id>`` bridges, ``veth<hex>`` names, MACs); :mod:`.rules` gives the exact
``iptables-save`` text dockerd 20.10 installs for that. Pure: no privileges, no subprocess.
"""

from __future__ import annotations

from .daemon import (DEFAULT_BRIDGE, DEFAULT_NETWORK, Container, Daemon, Network, PortBinding,
                     bridge_name, default_address_pools, mac_from_ip, random_id, veth_name)
from .rules import iptables_commands, iptables_save, sysctls

__all__ = [
    "Daemon", "Network", "Container", "PortBinding", "DEFAULT_NETWORK", "DEFAULT_BRIDGE",
    "default_address_pools", "bridge_name", "veth_name", "mac_from_ip", "random_id",
    "iptables_save", "iptables_commands", "sysctls",
]
