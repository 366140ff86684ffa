"""The iptables rules a dockerd installs, for the release it models: one door to each release's program.

:func:`build` replays, on an in-memory :class:`~.tables.Tables`, what the bridge driver of the
daemon's release runs (:mod:`.bridge20`: Docker Engine 20.10.24; :mod:`.bridge28`: 28.5.2), in its order;
:func:`iptables_save` prints the result as ``iptables-save`` does, :func:`iptables_commands`
lists the ``iptables`` commands, :func:`sysctls` the sysctls dockerd sets. Pure: no privileges,
no process.
"""

from __future__ import annotations

from types import ModuleType

from ..linux.iptables import Tables
from . import bridge20, bridge28
from .bridge20 import DOCKER, DOCKER_USER, ISOLATION_1, ISOLATION_2  # chain names both releases use
from .daemon import Daemon, Network

#: Each release's bridge driver program, its steps on a :class:`Tables`: ``start(t, daemon, hairpin)``,
#: ``network(t, net, hairpin)``, ``container(t, c, net, hairpin)``; and ``sysctls(daemon)``.
PROGRAMS: dict[str, ModuleType] = {"20.10": bridge20, "28.5": bridge28}


def build(daemon: Daemon) -> Tables:
    """Replay dockerd's start, then every network and running container in the order they came."""
    program = PROGRAMS[daemon.release.key]
    t = Tables()
    hairpin = not daemon.userland_proxy
    program.start(t, daemon, hairpin)
    for item in daemon.history:
        if isinstance(item, Network):
            program.network(t, item, hairpin)
        else:
            program.container(t, item, daemon.networks[item.network], hairpin)
    return t


def iptables_save(daemon: Daemon) -> str:
    """What ``iptables-save`` prints (filter, then nat) on a host running this dockerd."""
    return build(daemon).save()


def iptables_commands(daemon: Daemon) -> list[str]:
    """The ``iptables`` commands that changed something, in the order dockerd ran them."""
    return [str(cmd) for cmd in build(daemon).log]


def sysctls(daemon: Daemon) -> dict[str, str]:
    """The sysctls dockerd sets for this daemon's networks."""
    return PROGRAMS[daemon.release.key].sysctls(daemon)


__all__ = ["Tables", "build", "iptables_save", "iptables_commands", "sysctls", "PROGRAMS",
           "DOCKER", "DOCKER_USER", "ISOLATION_1", "ISOLATION_2"]
