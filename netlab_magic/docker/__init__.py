"""Docker without Docker: what Docker Engine's bridge driver builds, as plain data, and built in the lab.

The model (pure: no privileges, no process): :mod:`.daemon` plays ``docker network create`` /
``docker run -p`` and derives Docker's values (address pools, ``br-<id>`` bridges, ``veth<hex>``
names, MACs) for the release :mod:`.versions` describes (Docker Engine 20.10 or 28.5), with the
settings :mod:`.options` and :mod:`.ports` check; :mod:`.rules` gives the exact ``iptables-save``
text that release's dockerd installs (:mod:`.bridge20`, :mod:`.bridge28`), on the in-memory
tables of :mod:`.tables`; :mod:`.inspect` gives Docker's JSON.

In the lab: :mod:`.engine` (dockerd's lifecycle) with :mod:`.plumbing` (links), :mod:`.firewall`
(one ``iptables-restore`` per change), :mod:`.processes` (commands, :mod:`.proxy`),
:mod:`.watch` (exits); :mod:`.outside` gives the lab an outside world; :mod:`.magic` is
``%docker`` (:mod:`.magic` on :mod:`netlab_magic.jupyter.commands`, :mod:`.output`, :mod:`.gotemplate`); :mod:`.compare` prints two
releases' rules side by side; :mod:`.checks` the notebooks' exercises.
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
