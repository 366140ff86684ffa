"""Docker's bridge networking made real inside the lab: dockerd's lifecycle of networks and containers.

:class:`Engine` keeps a :class:`~.daemon.Daemon` (the pure model) and makes it real in the lab's
**host** namespace, the way the modelled Docker Engine's bridge driver does:

- "starting dockerd" (on first use): forwarding on, its chains and rules, the default network
  ``bridge`` on ``docker0`` (172.17.0.1/16, up);
- ``network create NAME``: a bridge ``br-<12 hex of the id>`` with the gateway address, up, its rules;
- ``run``: a namespace named after the container, wired to the bridge (:mod:`.plumbing`); published
  ports' rules; with the userland proxy, a lab ``docker-proxy`` per TCP port (:mod:`.proxy`); the
  container's command (:mod:`.images`) as a lab job in its namespace. Images are never pulled.

Every firewall change is one ``iptables-restore --noflush`` (:mod:`.firewall`). When a
container's command exits, its network goes at once, as with dockerd (:mod:`.watch`): namespace,
veth, published ports' rules and proxies (``docker ps -a`` keeps it as exited); with ``--rm``
its record goes too. JSON for ``inspect`` comes from :mod:`.inspect`, words on screen from
:mod:`.magic`. Errors use Docker's words, on one line, and a step that fails undoes what it built.
"""

from __future__ import annotations

import functools
import sys
import threading
import weakref
from typing import Any, Callable, Sequence

from ..errors import AlreadyExists, InvalidName, NetlabError, NotFound
from ..lab.lab import Lab
from ..linux import process
from . import container_jobs, images, inspect, rules, versions, watch
from .daemon import (DEFAULT_BRIDGE, DEFAULT_NETWORK, Container, Daemon, Network, PortAllocated, PortBinding,
                     connectivity_error,
                     daemon_call, random_id, veth_name)
from .firewall import Firewall
from .plumbing import make_bridge, plumb, quietly, unplumb, unwind


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    """One engine operation at a time (cells of ipykernel subshells run on other threads, and
    exited containers are reaped by the main thread's event loop between cells)."""
    @functools.wraps(method)
    def wrapper(self: "Engine", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class Engine:
    """A Docker engine for one lab: a :class:`Daemon` made real in the lab's host."""

    def __init__(self, lab: Lab, userland_proxy: bool = False, version: str = versions.DEFAULT) -> None:
        self.lab = lab
        self.userland_proxy = userland_proxy
        self.version = version
        self.daemon: Daemon | None = None
        self.firewall = Firewall(lab)
        self.generation = lab.generation  # %netlab reset makes a new lab incarnation
        self._lock = threading.RLock()  # see _serialized

    @property
    def started(self) -> bool:
        return self.daemon is not None

    @_serialized
    def start(self) -> Daemon:
        """Start "dockerd" if it is not running yet: forwarding, chains, ``docker0``."""
        if self.daemon is not None:
            self._reap()
            return self.daemon
        if self.lab.host.link_exists(DEFAULT_BRIDGE):
            raise AlreadyExists(f"failed to start daemon: the lab's host already has an interface "
                                f"{DEFAULT_BRIDGE!r} (remove it, or %netlab reset)")
        daemon = Daemon(userland_proxy=self.userland_proxy, version=self.version,
                        ip_forward=self.lab.host.sysctl("net.ipv4.ip_forward") == "1")
        undo: list[Callable[[], None]] = []
        try:
            make_bridge(self.lab, daemon.networks[DEFAULT_NETWORK], undo)
            self.daemon = daemon
            self._sync()
        except BaseException:
            self.daemon = None
            unwind(undo)
            raise
        return daemon

    # -- networks -----------------------------------------------------------------------------

    @_serialized
    def network_create(self, name: str, *, subnet: str | None = None, gateway: str | None = None,
                       internal: bool = False, options: dict[str, str] | None = None) -> Network:
        """``docker network create [--subnet CIDR [--gateway IP]] [--internal] [-o KEY=VALUE]... NAME``."""
        daemon = self.start()
        restore = daemon.checkpoint()
        undo: list[Callable[[], None]] = []
        try:
            net = daemon_call(lambda: daemon.network_create(name, subnet=subnet, gateway=gateway, internal=internal,
                                                            options=options))
            make_bridge(self.lab, net, undo)
            self._sync()
        except BaseException:
            self._rollback(restore, undo)
            raise
        return net

    @_serialized
    def network_rm(self, name: str) -> None:
        """``docker network rm NAME``."""
        daemon = self.start()
        net = self._network(name)
        restore = daemon.checkpoint()
        try:
            daemon_call(lambda: daemon.network_rm(name))
            self._sync()
        except BaseException:
            self._rollback(restore, [])
            raise
        if self.lab.host.link_exists(net.bridge):
            self.lab.host.link_del(net.bridge)

    @_serialized
    def network_ls(self) -> list[Network]:
        """``docker network ls`` (the bridge networks; this lab has no ``host`` or ``none``)."""
        return list(self.start().networks.values())

    @_serialized
    def network_inspect(self, name: str) -> dict[str, Any]:
        """``docker network inspect NAME``, as Docker's JSON (one object)."""
        daemon = self.start()
        return inspect.network_json(self._network(name), daemon.containers.values(), daemon.release)

    def _network(self, name: str) -> Network:
        assert self.daemon is not None
        try:
            return self.daemon.networks[name]
        except KeyError:
            raise NotFound(f"Error: No such network: {name}") from None

    # -- containers ---------------------------------------------------------------------------

    def run(self, image: str, cmd: Sequence[str] = (), *, name: str | None = None,
            network: str = DEFAULT_NETWORK, publish: Sequence[PortBinding] = (), detach: bool = True,
            remove: bool = False, hostname: str | None = None) -> Container:
        """``docker run [-d] [--rm] [--name NAME] [-h HOSTNAME] [--network NET] [-p HOST:CONTAINER]... IMAGE [CMD...]``.

        ``publish``: the ``-p`` bindings, parsed by the CLI (:func:`~.ports.parse_publish`).

        Detached, the command runs as a lab job and this returns at once (a web image once its
        server listens). In the foreground its output streams here until it ends (Ctrl-C stops
        it), then the container has exited.
        """
        with self._lock:
            c = self._create(image, tuple(cmd), name=name, network=network, publish=tuple(publish),
                             detach=detach, remove=remove, hostname=hostname)
        port = images.image_port(image)
        if not detach:
            self._foreground(c)
        elif port and not c.cmd:
            container_jobs.wait_listening(self.lab, c, port)
        return c

    def _create(self, image: str, cmd: tuple[str, ...], *, name: str | None, network: str,
                publish: tuple[PortBinding, ...], detach: bool, remove: bool, hostname: str | None) -> Container:
        """``run`` up to the container's command: checks, namespace, veth, rules, proxies, job."""
        daemon = self.start()
        refused = images.reference_error(image)
        if refused:
            raise InvalidName(refused)
        name = name if name is not None else daemon.new_name(taken=lambda n: n in self.lab.list_netns())
        endpoint = random_id()
        restore = daemon.checkpoint()
        undo: list[Callable[[], None]] = []

        def allocate() -> Container:
            try:
                return daemon.run(name, network=network, publish=publish, veth=self._free_veth(), image=image,
                                  cmd=cmd, command=images.command_for(image, cmd), auto_remove=remove,
                                  endpoint_id=endpoint, hostname=hostname or "")
            except PortAllocated as err:  # the bridge driver's words, with the endpoint
                raise PortAllocated(connectivity_error(name, endpoint, str(err))) from err

        try:
            c = daemon_call(allocate, prefix="docker: ")
            if c.netns in self.lab.list_netns():
                raise AlreadyExists(f"docker: Error response from daemon: the lab already has a "
                                    f"namespace called {c.netns!r}: choose another --name")
            plumb(self.lab, c, daemon.networks[network], not self.userland_proxy, undo)
            self._sync()
            if self.userland_proxy:
                container_jobs.start_proxies(self.lab, c, undo)
            if detach:
                container_jobs.start_command(self.lab, c, undo, lambda proc: watch.watch(proc, self._exited))
        except BaseException:
            self._rollback(restore, undo)
            raise
        if not detach:
            try:
                container_jobs.start_foreground(self.lab, c)
            except BaseException:
                self._teardown(c, stop_job=False, code=127)
                raise
        return c

    @_serialized
    def ps(self, all: bool = False) -> list[Container]:
        """``docker ps [-a]``: running containers (all with ``-a``), newest first."""
        containers = sorted(self.start().containers.values(), key=lambda c: c.created, reverse=True)
        return [c for c in containers if all or c.running]

    @_serialized
    def get(self, name: str) -> Container:
        """The container called ``name`` (or whose id starts with ``name``)."""
        daemon = self.start()
        c = daemon.containers.get(name.lstrip("/"))
        if c is None:
            matches = [c for c in daemon.containers.values() if name and c.id.startswith(name)]
            c = matches[0] if len(matches) == 1 else None
        if c is None:
            raise NotFound(f"Error: No such container: {name}")
        return c

    @_serialized
    def inspect(self, name: str) -> dict[str, Any]:
        """``docker inspect NAME``: the container as Docker's JSON (the fields that matter here)."""
        try:
            c = self.get(name)
        except NotFound:
            raise NotFound(f"Error: No such object: {name}") from None
        daemon = self.start()
        return inspect.container_json(c, daemon.networks.get(c.network), daemon.release)

    @_serialized
    def logs(self, name: str) -> str:
        """``docker logs NAME``: what the container's command printed (detached containers)."""
        c = self.get(name)
        return next((j.output() for j in self.lab.jobs.all() if j.name == c.job), "")

    def exec(self, name: str, command: str, timeout: float | None = None) -> int:
        """``docker exec NAME CMD...``: run ``command`` (bash) inside the container, output streaming."""
        with self._lock:
            c = self.get(name)
            if not c.running:
                raise NetlabError(f"Error response from daemon: Container {c.id} is not running")
            proc = self.lab.popen(c.netns, container_jobs.exec_argv(c, process.shell_argv(command)), merge_stderr=True)
        return process.stream(proc, timeout=timeout)

    @_serialized
    def top(self, name: str) -> str:
        """``docker top NAME``: the container's processes, as ``ps -f`` shows them in the lab's host."""
        c = self.get(name)
        if not c.running:
            raise NetlabError(f"Error response from daemon: Container {c.id} is not running")
        pids = ",".join(str(p) for p in container_jobs.container_pids(c))
        return self.lab.run("host", ["ps", "-f", "-p", pids], check=True).stdout

    @_serialized
    def stop(self, name: str) -> Container:
        """``docker stop NAME``: stop the command; the container's network goes away (exit 137 / 0)."""
        c = self.get(name)
        if c.running:
            self._teardown(c, stop_job=True)
        return c

    @_serialized
    def rm(self, name: str, force: bool = False) -> None:
        """``docker rm [-f] NAME``."""
        c = self.get(name)
        if c.running:
            if not force:
                raise NetlabError(f"Error response from daemon: You cannot remove a running container "
                                  f"{c.id}. Stop the container before attempting removal or force remove")
            # docker(1): "-f, --force: Force the removal of a running container (uses SIGKILL)"
            self._teardown(c, stop_job=True, kill=True)
        container_jobs.forget_job(self.lab, c.job)
        if self.daemon is not None and self.daemon.containers.get(c.name) is c:
            self.daemon.rm(c.name)

    def _foreground(self, c: Container) -> None:
        """Stream the command started by :meth:`_create` (no lock held: other cells go on)."""
        code: int | None = None
        try:
            code = process.stream(c.proc)
        finally:
            c.job, c.proc = None, None
            with self._lock:
                self._teardown(c, stop_job=False, code=code if code is not None else 130)
            sys.stdout.flush()

    # -- tearing down ----------------------------------------------------------------------------

    def _teardown(self, c: Container, *, stop_job: bool, kill: bool = False, code: int | None = None) -> None:
        """The container's command has ended (or is stopped now, killed with ``kill``): its network goes, like Docker's."""
        stopped = container_jobs.stop_processes(self.lab, c, stop_job=stop_job, kill=kill)
        code = stopped if stopped is not None else code
        daemon = self.daemon
        if daemon is not None and daemon.containers.get(c.name) is c and c.running:
            daemon.exited(c.name, container_jobs.docker_exit_code(code))
            self._sync()
        unplumb(self.lab, c)
        if c.auto_remove:  # --rm: gone once it has exited
            container_jobs.forget_job(self.lab, c.job)

    def _reap(self) -> None:
        """Containers whose command ended on its own have exited: take their network down."""
        for c in list(self.daemon.containers.values()) if self.daemon else ():
            if c.running and c.job:
                try:
                    job = self.lab.jobs.get(c.job)
                except NotFound:
                    job = None
                if job is None or not job.running:
                    self._teardown(c, stop_job=False, code=job.proc.returncode if job else 0)

    def _exited(self) -> None:
        """A container's command ended: on the main thread, between cells, reap what exited."""
        lab = self.lab
        if Lab.existing() is lab and self.generation == lab.generation and _ENGINES.get(lab) is self:
            watch.between_cells(self._lock, self._reap, again=self._exited)
        # else: a closed lab, or a reset: what this engine built is gone already

    # -- the firewall, and undoing -----------------------------------------------------------------

    def _sync(self) -> None:
        """Make the host's firewall and sysctls what dockerd would have made them now."""
        assert self.daemon is not None
        self.firewall.sync(rules.build(self.daemon), rules.sysctls(self.daemon))

    def _rollback(self, restore: Callable[[], None], undo: list[Callable[[], None]]) -> None:
        """A step failed: undo what it built, give the model back, and the firewall with it."""
        unwind(undo)
        restore()
        quietly(self._sync)

    def _free_veth(self) -> str:
        while self.lab.host.link_exists(name := veth_name()):
            pass
        return name


# -- one engine per lab --------------------------------------------------------------------------

_ENGINES: "weakref.WeakKeyDictionary[Lab, Engine]" = weakref.WeakKeyDictionary()


def engine(lab: Lab | None = None) -> Engine:
    """The lab's engine (made on first use; a fresh one after ``%netlab reset``)."""
    lab = lab or Lab.current()
    current = _ENGINES.get(lab)
    if current is None or current.generation != lab.generation:
        current = Engine(lab)
        _ENGINES[lab] = current
    return current


def configure(lab: Lab, *, userland_proxy: bool | None = None, version: str | None = None) -> Engine:
    """``dockerd [--version=RELEASE] [--userland-proxy=BOOL]``: only before dockerd did anything in this lab."""
    current = engine(lab)
    if version is not None:
        versions.release(version)  # one line naming the releases this lab knows
    wanted = {"version": current.version if version is None else version,
              "userland_proxy": current.userland_proxy if userland_proxy is None else userland_proxy}
    if current.started and wanted != {"version": current.version, "userland_proxy": current.userland_proxy}:
        raise NetlabError(f"dockerd {current.daemon.release.version} is already running with --userland-proxy="
                          f"{str(current.userland_proxy).lower()}: %netlab reset first to change it")
    current.version, current.userland_proxy = wanted["version"], wanted["userland_proxy"]
    return current


__all__ = ["Engine", "engine", "configure"]
