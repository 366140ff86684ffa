"""A Docker lab in a test kernel, read from outside: the engine, the rules it installed and the
model's, and everything a ``%docker`` command could leave behind."""

from __future__ import annotations

import re

#: The kernel's Docker engine, as an expression a test kernel evaluates.
ENGINE = "__import__('netlab_magic.docker.engine', fromlist=['engine']).engine()"


def normalised(save: str) -> list[str]:
    """iptables-save without its timestamped comments, counters zeroed."""
    return [re.sub(r"\[\d+:\d+\]$", "[0:0]", ln) for ln in save.splitlines() if not ln.startswith("#")]


def lab_save(k) -> list[str]:
    """The lab host's rules, as iptables-save prints them (normalised)."""
    return normalised(k.ok("!iptables-save").stdout)


def model_save(k) -> list[str]:
    """The rules the engine's model says dockerd installs (normalised)."""
    return normalised(k.value(f"__import__('netlab_magic.docker.rules', fromlist=['x'])"
                              f".iptables_save({ENGINE}.daemon)"))


def lab_state(k) -> dict:
    """Everything a docker command could leave behind: namespaces, links, rules, jobs."""
    return {
        "netns": k.ok("!ip netns list").stdout,
        "links": sorted(k.ok("!ip -o link show | cut -d: -f2").stdout.split()),
        "addrs": k.ok("!ip -o -4 addr show | awk '{print $2, $4}'").stdout,
        "rules": lab_save(k),
        "jobs": k.value("[j.name for j in __import__('netlab_magic').Lab.current().jobs.all() if j.running]"),
    }
