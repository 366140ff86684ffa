"""What every Docker check reads first: the namespace it was asked about, and the lab's dockerd."""

from __future__ import annotations

from typing import Any

from ...checks import Missing
from ...model import HOST


def require_netns(lab: Any, netns: str) -> None:
    if netns != HOST and netns not in lab.list_netns():
        have = ", ".join(lab.list_netns()) or "none"
        raise Missing(f"namespace {netns!r} does not exist (the lab has: host, {have})")


def docker_daemon(the_lab: Any) -> Any:
    """The lab's dockerd model, or the hint that none runs yet."""
    from ..engine import engine

    daemon = engine(the_lab).daemon
    if daemon is None:
        raise Missing("dockerd has not started in this lab (run a %docker command first)")
    return daemon
