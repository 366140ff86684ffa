"""How the Docker CLI prints: its tables, its durations, the columns of ``docker ps``."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time

from ..version import __version__
from .daemon import Container, Daemon


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


def _arch() -> str:
    machine = platform.machine()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _fields(pairs: list[tuple[str, str]], indent: str, width: int) -> list[str]:
    return [f"{indent}{key + ':':<{width}}{value}" for key, value in pairs if value]


def version_text(daemon: Daemon) -> str:
    """``docker version``: the client (this magic) and the server (the release this lab models)."""
    r = daemon.release
    return "\n".join([
        "Client:", *_fields([("Version", f"%docker of netlab_magic {__version__}"), ("API version", r.api),
                             ("OS/Arch", _arch()), ("Context", "default")], " ", 19),
        "",
        f"Server: Docker Engine {r.version}, as this lab models it (no dockerd runs: the lab builds what it would)",
        " Engine:",
        *_fields([("Version", r.version), ("API version", f"{r.api} (minimum version {r.min_api})"),
                  ("Go version", r.go), ("Git commit", r.git_commit), ("OS/Arch", _arch()),
                  ("Model", f"netlab_magic.docker.bridge{r.key.split('.')[0]} ({r.source})")], "  ", 18),
    ])


def info_text(daemon: Daemon) -> str:
    """``docker info``: what this dockerd holds, and which release runs."""
    containers = list(daemon.containers.values())
    running = sum(c.running for c in containers)
    return "\n".join([
        "Client:", " Context:    default", " Debug Mode: false", "", "Server:",
        f" Containers: {len(containers)}", f"  Running: {running}", "  Paused: 0", f"  Stopped: {len(containers) - running}",
        " Images: 0 (images are not pulled in this lab)",
        f" Server Version: {daemon.release.version} (this lab's model of Docker Engine {daemon.release.key})",
        " Plugins:", "  Network: bridge",
        f" Networks: {len(daemon.networks)} ({', '.join(daemon.networks)})",
        f" Userland Proxy: {str(daemon.userland_proxy).lower()}",
        " Firewall Backend: iptables (each change one iptables-restore --noflush)",
        f" Kernel Version: {os.uname().release}",
        " Operating System: the lab's host (a network namespace of netlab_magic)",
        " OSType: linux", f" Architecture: {platform.machine()}",
        " Docker Root Dir: /run/netlab-docker",
    ])


__all__ = ["table", "human_duration", "ago", "ps_table", "version_text", "info_text"]
