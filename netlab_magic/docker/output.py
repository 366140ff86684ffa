"""How the Docker CLI prints: its tables, its durations, the columns of ``docker ps``."""

from __future__ import annotations

import shlex
import sys
import time

from .daemon import Container


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Docker's tables: columns padded, three spaces apart."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def human_duration(seconds: float) -> str:
    """Docker's ``HumanDuration`` (go-units): ``Less than a second``, ``5 seconds``, ``About a minute``..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    return f"{h // 24} days"


def ago(t: float) -> str:
    return human_duration(time.time() - t) + " ago"


def ps_table(containers: list[Container]) -> str:
    """``docker ps``: one row per container."""
    rows = []
    for c in containers:
        status = (f"Up {human_duration(time.time() - c.started)}" if c.running
                  else f"Exited ({c.exit_code}) {ago(c.finished or time.time())}")
        rows.append([c.id[:12], c.image, _command_column(c), ago(c.created), status, _ports(c), c.name])
    return table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows)


def _ports(c: Container) -> str:
    if not c.running:
        return ""
    return ", ".join(f"{p.host_ip}:{p.host_port}->{p.container_port}/{p.proto}" for p in c.ports)


def _command_column(c: Container) -> str:
    text = c.command if not c.cmd else shlex.join(c.cmd)
    text = text.replace(sys.executable, "python3")
    if len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


__all__ = ["table", "human_duration", "ago", "ps_table"]
