"""What runs for a container: its command as a lab job, and our ``docker-proxy`` per published port.

The container's command runs as a lab job inside its namespace (``docker-NAME``), our
``docker-proxy`` (:mod:`.proxy`, started with ``python -m``) as a lab job in the lab's host
(``docker-proxy-PORT-tcp``), with the arguments of Docker's own. Each start pushes its undo, so a
``docker run`` that fails later stops what it started.

As Docker's runtime does, the command gets a PID, mount and UTS namespace of its own
(:func:`contained`): it is PID 1 of its namespace, ``ps`` in the container lists only the
container's processes, its host name is the short container id or ``--hostname``. The process
that holds them (``unshare --fork``, our shim: containerd's shim plays that part for Docker)
waits outside; ``exec`` enters them with ``nsenter`` (:func:`exec_argv`), ``top`` lists them
(:func:`container_pids`).
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from typing import Callable, Sequence

from ..errors import AlreadyExists, NetlabError, NotFound
from ..lab.lab import Lab
from ..linux import process
from ..linux.jobs import GRACE_OF_STOP, Job
from ..model import HOST
from .daemon import Container, connectivity_error
from .listeners import listening
from .plumbing import Undo, quietly
from .proxy import READY


#: How long ``docker run`` waits at most for a container's start (its PID 1 running the command, a
#: web image's server listening). Each wait ends as soon as /proc or the socket table shows it: the
#: bound is for a machine that is slow, as the VM's guest is under TCG and load (seconds to start
#: Python), where 2 s and 5 s were not enough and ``docker exec`` then found no container.
STARTUP = 60.0


def job_name(prefix: str, name: str) -> str:
    """A lab job's name for a container's process: ``docker-nginx``, ``docker-proxy-8888-tcp``."""
    return prefix + "-" + "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def start_command(lab: Lab, c: Container, undo: Undo, exited: Callable[[object], None]) -> None:
    """The container's command as a lab job in its namespace; ``exited(proc)`` watches its end."""
    name = job_name("docker", c.name)
    if any(j.name == name and j.running for j in lab.jobs.all()):
        raise AlreadyExists(f"docker: Error response from daemon: a lab job called {name!r} is "
                            "running: stop it first")
    job = lab.start_job(c.netns, contained(c), name=name)
    job.command = c.command  # what `%netlab jobs` shows: the container's command, as `docker ps` does
    undo.append(lambda: (job.stop(), forget_job(lab, job.name)))
    c.job, c.shim_pid, c.started = job.name, job.proc.pid, time.time()
    c.pid = container_init(c) or 0
    exited(job.proc)


def start_foreground(lab: Lab, c: Container) -> None:
    """The container's command in its namespace, its output for the caller to stream (``c.proc``)."""
    proc = lab.popen(c.netns, process.shell_argv(contained(c)), merge_stderr=True)
    c.shim_pid, c.started, c.proc = proc.pid, time.time(), proc
    c.pid = container_init(c) or 0


def contained(c: Container) -> str:
    """The container's command (bash) as PID 1 of a PID, mount and UTS namespace of its own, with
    its own /proc and host name. In two steps, so that everything is in place before PID 1 exists:
    ``unshare --uts --mount``, where ``hostname`` names it and the lab's ``/run/netns`` goes
    (Docker's containers have none: a copy would hold the namespaces named then alive, and list
    those named later as dead files); then ``unshare --pid --fork --mount-proc``, whose child
    mounts the new /proc and becomes the command."""
    inner = "exec unshare --pid --fork --kill-child --mount-proc -- bash -c \"$1\""
    return (f"exec unshare --uts --mount -- sh -c 'umount -l /run/netns; hostname \"$0\" && {inner}' "
            + shlex.quote(c.hostname) + " " + shlex.quote(c.command))


def container_init(c: Container, timeout: float = STARTUP) -> int | None:
    """The pid (the lab's numbering) of the container's PID 1 once it runs the command (the shim's
    second ``unshare`` forked it, and it mounted /proc and left ``unshare``); None if it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{c.shim_pid}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
            comm, state = head.split("(", 1)[1], tail.split()[0]
            with open(f"/proc/{c.shim_pid}/task/{c.shim_pid}/children") as f:
                children = f.read().split()
            if state in "ZX":
                return None
            if comm == "unshare" and children and _comm(children[0]) not in ("unshare", None):
                return int(children[0])
        except OSError:
            return None
        time.sleep(0.005)
    return None


def _comm(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def _running_init(c: Container) -> int:
    if not c.pid or not os.path.exists(f"/proc/{c.pid}"):
        raise NetlabError(f"Error response from daemon: Container {c.id} is not running")
    return c.pid


def exec_argv(c: Container, argv: Sequence[str]) -> list[str]:
    """``argv`` entering the container's PID, mount and UTS namespaces (``docker exec``)."""
    return ["nsenter", "--target", str(_running_init(c)), "--pid", "--mount", "--uts", "--", *argv]


def container_pids(c: Container) -> list[int]:
    """Every process of the container (the lab's numbering): those in its PID namespace."""
    target = os.stat(f"/proc/{_running_init(c)}/ns/pid").st_ino
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino == target:
                    pids.append(int(entry))
            except OSError:
                continue
    return sorted(pids)


def start_proxies(lab: Lab, c: Container, undo: Undo) -> None:
    """Our ``docker-proxy`` for each published TCP port (the DNAT rules serve UDP), once it listens."""
    for p in (p for p in c.ports if p.proto == "tcp"):
        name = job_name("docker-proxy", f"{p.host_port}-{p.proto}")
        command = (f"exec {shlex.quote(sys.executable)} -m netlab_magic.docker.proxy -proto {p.proto} "
                   f"-host-ip {p.host_ip} -host-port {p.host_port} -container-ip {c.ip} "
                   f"-container-port {p.container_port}")
        lab.jobs.check_free(name)
        job = lab.start_job(HOST, command, name=name)
        undo.append(lambda job=job: (job.stop(), forget_job(lab, job.name)))
        c.proxies.append(job.name)
        deadline = time.monotonic() + 10
        while READY not in (out := job.output(0.02)) and job.running and time.monotonic() < deadline:
            pass
        if READY not in out:
            message = last_line(out) or "docker-proxy did not start"
            raise NetlabError("docker: Error response from daemon: "
                              + connectivity_error(c.name, c.endpoint_id, message))


def wait_listening(lab: Lab, c: Container, port: int, timeout: float = STARTUP) -> None:
    """Return once a web image's server listens on ``port``, as a client retrying would notice (the
    kernel is asked: no packet sent). One line if its command ends first (at once: its exit status
    and last line) or it does not listen within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        job = next((j for j in lab.jobs.all() if j.name == c.job), None)  # None: forgotten (--rm)
        try:
            if job is not None and job.running and listening(lab, c.netns, port):
                return
        except (OSError, NetlabError):  # its namespace is gone: the container has exited (below)
            pass
        if job is None or not job.running:
            raise NetlabError(f"docker: the container's command ended before it listened on port {port}"
                              + _how_it_ended(c, job))
        if time.monotonic() >= deadline:
            raise NetlabError(f"docker: the container's server did not listen on port {port} within "
                              f"{timeout:g} s (it still runs: %docker logs {c.name})")
        time.sleep(0.05)


def _how_it_ended(c: Container, job: Job | None) -> str:
    """`` (exit status 3): its last line`` for a command that ended (what is known of it)."""
    code = job.proc.poll() if job is not None else c.exit_code
    said = last_line(job.output(0.5)) if job is not None else ""
    return (f" ({process.describe_exit(code)})" if code is not None else "") + (f": {said}" if said else "")


def last_line(output: str) -> str:
    """The last line a process printed (its error, as a rule), stripped; empty if it printed nothing."""
    lines = output.strip().splitlines()
    return lines[-1].strip() if lines else ""


def stop_processes(lab: Lab, c: Container, *, stop_job: bool, kill: bool = False) -> int | None:
    """Stop the proxies (and the command, if ``stop_job``); the command's exit status, if stopped.

    With ``kill``, SIGKILL at once (``docker rm -f``), else SIGINT first (the lab's jobs' stop)."""
    code = None
    grace = 0 if kill else GRACE_OF_STOP
    if stop_job and c.job:
        try:
            job = lab.jobs.get(c.job)
            job.stop(grace)
            code = job.proc.returncode
        except NotFound:
            pass
    for proxy in c.proxies:
        try:
            lab.jobs.get(proxy).stop(grace)
        except NotFound:
            pass
        forget_job(lab, proxy)
    c.proxies.clear()
    return code


def forget_job(lab: Lab, name: str | None) -> None:
    """Drop a lab job from the table (it has ended)."""
    if name:
        quietly(lab.jobs.remove, name)


def docker_exit_code(code: int | None) -> int:
    """A killed command exits ``128 + signal`` as Docker reports it (SIGKILL: 137, SIGINT: 130)."""
    if code is None:
        return 0
    return 128 - code if code < 0 else code


__all__ = ["job_name", "start_command", "contained", "container_init", "exec_argv", "container_pids", "start_foreground", "start_proxies", "wait_listening", "last_line", "stop_processes", "forget_job",
           "docker_exit_code"]
