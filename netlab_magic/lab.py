"""The Python API: a :class:`Lab` of network namespaces, and :class:`NetNS` handles into it.

Every operation is named after its iproute2 command, which its docstring quotes, so reading
the API teaches ``ip``. Netlink work runs on the lab's netlink thread (pyroute2), inside the
namespace it concerns; commands typed in cells (``!ip ...``, ``%%netns``) and API calls see
and change the same namespaces.

    >>> lab = Lab.current()
    >>> ns1 = lab.add_netns("ns1")
    >>> lab.host.add_veth("veth2", peer="veth1", peer_netns="ns1")
    >>> ns1.addr_add("veth1", "10.0.0.1/24"); ns1.link_up("veth1"); ns1.link_up("lo")
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import subprocess
import threading
from typing import Callable, ClassVar, Sequence, TypeVar

from pyroute2.netlink.exceptions import NetlinkError

from . import names, process, syscalls
from .errors import (AlreadyExists, CommandFailed, InvalidAddress, InvalidArgument, InvalidName, NetlabError,
                     NotFound, PrivilegeError)
from .jobs import Job, JobTable
from .model import HOST, LabSnapshot, Namespace
from .netlink import NetlinkWorker
from .sandbox import NETNS_DIR, Sandbox
from .snapshot import read_lab

T = TypeVar("T")


class Lab:
    """A sandboxed network lab: the lab's host namespace plus every namespace made in it.

    There is one lab per process; :meth:`current` makes it on first use (this moves the
    calling thread, which must be the main thread, into the lab's host).
    """

    _current: ClassVar["Lab | None"] = None

    def __init__(self) -> None:
        if Lab._current is not None:
            raise NetlabError("this process already has a lab: use Lab.current()")
        self.sandbox = Sandbox()
        self.sandbox.enter()
        self.jobs = JobTable()
        self._worker = NetlinkWorker(self.sandbox.netns_path)
        self._closed = False
        self._reset_hooks: list[Callable[[], None]] = []
        self.generation = 0
        Lab._current = self
        atexit.register(self.close)

    @classmethod
    def current(cls) -> "Lab":
        """The lab of this process, made on first call."""
        if cls._current is None or cls._current._closed:
            cls._current = None
            cls()
        return cls._current  # type: ignore[return-value]

    @classmethod
    def adopt_calling_thread(cls) -> None:
        """Move the calling thread into the current lab (its host), if there is one; see :mod:`.threads`."""
        lab = cls._current
        if lab is not None and not lab._closed:
            lab.sandbox.adopt_thread()

    @property
    def mode(self) -> str:
        """``"root"`` or ``"rootless"`` (root inside a user namespace)."""
        return self.sandbox.mode

    # -- namespaces -------------------------------------------------------------------------

    @property
    def host(self) -> "NetNS":
        """The lab's host: where ordinary cells run. No uplink to the real network."""
        return NetNS(self, HOST)

    def netns(self, name: str) -> "NetNS":
        """A handle on an existing namespace (``host`` for the lab's host)."""
        self.sandbox.netns_path(name)
        return NetNS(self, name)

    __getitem__ = netns

    def list_netns(self) -> list[str]:
        """Equivalent to: ``ip netns list`` (the host is not listed, as on a real host)."""
        return self.sandbox.list_netns()

    def add_netns(self, name: str) -> "NetNS":
        """Equivalent to: ``ip netns add NAME``."""
        names.check_netns_name(name)
        if name == HOST:
            raise InvalidName(f"{HOST!r} is the lab's host; choose another name")
        path = os.path.join(NETNS_DIR, name)
        if os.path.exists(path):
            raise AlreadyExists(f"namespace {name!r} already exists")
        self._call(_create_netns, path)
        return NetNS(self, name)

    def del_netns(self, name: str) -> None:
        """Equivalent to: ``ip netns del NAME`` (processes still inside keep it alive, as with ip)."""
        if name == HOST:
            raise InvalidName("the lab's host cannot be deleted; use reset() to start afresh")
        path = self.sandbox.netns_path(name)
        syscalls.umount(path)
        os.unlink(path)

    # -- the whole lab ----------------------------------------------------------------------

    def snapshot(self) -> LabSnapshot:
        """The whole lab now: every namespace, its interfaces (state, addresses, peer, master), routes."""
        return self._call(read_lab, [HOST, *self.list_netns()])

    def reset(self) -> None:
        """Destroy everything in the lab (processes, jobs, namespaces) and start a fresh host."""
        self._require_main_thread()
        self.jobs.stop_all()
        self._worker.close()
        self.sandbox.renew()
        self._worker = NetlinkWorker(self.sandbox.netns_path)
        self.generation += 1
        for hook in list(self._reset_hooks):
            hook()

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` after every :meth:`reset` (layers that keep state about the lab forget it)."""
        self._reset_hooks.append(hook)

    def close(self) -> None:
        """Destroy the lab and give the main thread back its own network namespace."""
        if self._closed:
            return
        self._closed = True
        self.jobs.stop_all()
        self._worker.close()
        if threading.current_thread() is threading.main_thread():
            self.sandbox.leave()
        if Lab._current is self:
            Lab._current = None

    # -- processes --------------------------------------------------------------------------

    def popen(self, netns: str, argv: Sequence[str], *, merge_stderr: bool = False,
              stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen:
        """Start ``argv`` inside ``netns`` in its own process group (no ``ip netns exec``).

        Safe from any thread: the calling thread enters the namespace for the ``fork`` only.
        """
        with self.sandbox.spawning(netns):
            return process.popen(argv, merge_stderr=merge_stderr, stdin=stdin)

    def run(self, netns: str, command: str | Sequence[str], *, check: bool = False,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run a command inside ``netns`` and capture its output (text).

        ``command`` is a bash script (a string) or an argv list. Equivalent to:
        ``ip netns exec NETNS bash -c COMMAND``.
        """
        argv = process.shell_argv(command) if isinstance(command, str) else list(command)
        proc = self.popen(netns, argv)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            process.stop_group(proc)
            raise
        result = subprocess.CompletedProcess(argv, proc.returncode, out.decode(errors="replace"),
                                             err.decode(errors="replace"))
        if check and result.returncode:
            raise CommandFailed(f"command in {netns!r} exited {result.returncode}: {err.decode().strip()[:200]}",
                                result.returncode)
        return result

    def start_job(self, netns: str, command: str, name: str | None = None) -> Job:
        """Start ``command`` (bash) inside ``netns`` in the background, as job ``name``."""
        self._require_main_thread()
        self.sandbox.netns_path(netns)
        name = name or self.jobs.new_name()
        self.jobs.check_free(name)
        proc = self.popen(netns, process.shell_argv(command), merge_stderr=True, stdin=subprocess.PIPE)
        return self.jobs.add(Job(name=name, netns=netns, command=command, proc=proc))

    def keep_background(self, netns: str, command: str, proc: subprocess.Popen) -> Job:
        """Make a background job of what a finished command ``proc`` left running (it holds its output)."""
        return self.jobs.add(Job(name=self.jobs.new_name(), netns=netns, command=command, proc=proc,
                                 background=True))

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise NetlabError("this lab was closed; load netlab again (or Lab.current()) for a new one")
        try:
            return self._worker.call(fn, *args)
        except NetlinkError as err:
            raise _netlink_error(err) from err

    def _require_main_thread(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise NetlabError("this lab operation must run on the kernel's main thread")

    def __repr__(self) -> str:
        return f"<Lab mode={self.mode} namespaces={[HOST, *self.list_netns()]}>"


class NetNS:
    """A handle on one namespace of a lab. Operations happen inside it; the caller stays put."""

    def __init__(self, lab: Lab, name: str) -> None:
        self.lab = lab
        self.name = name

    def __repr__(self) -> str:
        return f"<NetNS {self.name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NetNS) and other.lab is self.lab and other.name == self.name

    def __hash__(self) -> int:
        return hash((id(self.lab), self.name))

    # -- links ------------------------------------------------------------------------------

    def add_veth(self, name: str, peer: str, peer_netns: "str | NetNS | None" = None) -> None:
        """Equivalent to: ``ip link add NAME type veth peer name PEER [netns PEER_NETNS]``.

        With ``peer_netns`` the peer is created directly inside that namespace (no move).
        """
        names.check_ifname(name)
        names.check_ifname(peer)
        other = _ns_name(peer_netns) or self.name
        self.lab.sandbox.netns_path(other)
        if other == self.name and name == peer:
            raise InvalidName(f"a veth and its peer need two different names (both are {name!r})")
        self._absent(name)
        NetNS(self.lab, other)._absent(peer)
        self.lab._call(_add_veth, self.name, name, peer, other)

    def add_bridge(self, name: str) -> None:
        """Equivalent to: ``ip link add NAME type bridge``."""
        names.check_ifname(name)
        self._absent(name)
        self.lab._call(lambda w: w.ipr(self.name).link("add", ifname=name, kind="bridge"))

    def link_del(self, ifname: str) -> None:
        """Equivalent to: ``ip link del IFNAME``."""
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).link("del", index=index))

    def link_up(self, ifname: str) -> None:
        """Equivalent to: ``ip link set dev IFNAME up``."""
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).link("set", index=index, state="up"))

    def link_down(self, ifname: str) -> None:
        """Equivalent to: ``ip link set dev IFNAME down``."""
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).link("set", index=index, state="down"))

    def link_set_master(self, ifname: str, bridge: str | None) -> None:
        """Equivalent to: ``ip link set IFNAME master BRIDGE`` (``nomaster`` when ``bridge`` is None)."""
        index = self._index(ifname)
        master = self._index(bridge) if bridge else 0
        self.lab._call(lambda w: w.ipr(self.name).link("set", index=index, master=master))

    def link_set_address(self, ifname: str, mac: str) -> None:
        """Equivalent to: ``ip link set dev IFNAME address MAC``."""
        if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", mac or ""):
            raise InvalidAddress(f"{mac!r} is not a MAC address like 02:42:ac:11:00:02")
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).link("set", index=index, address=mac.lower()))

    def link_set_netns(self, ifname: str, netns: "str | NetNS") -> None:
        """Equivalent to: ``ip link set IFNAME netns NETNS``."""
        target = _ns_name(netns)
        self.lab.sandbox.netns_path(target)
        index = self._index(ifname)
        NetNS(self.lab, target)._absent(ifname)
        self.lab._call(lambda w: w.ipr(self.name).link("set", index=index, net_ns_fd=w.netns_fd(target)))

    # -- addresses and routes -----------------------------------------------------------------

    def addr_add(self, ifname: str, cidr: str) -> None:
        """Equivalent to: ``ip addr add CIDR dev IFNAME`` (e.g. ``"10.0.0.1/24"``)."""
        iface = names.parse_interface(cidr)
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).addr(
            "add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen))

    def addr_del(self, ifname: str, cidr: str) -> None:
        """Equivalent to: ``ip addr del CIDR dev IFNAME``."""
        iface = names.parse_interface(cidr)
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).addr(
            "del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen))

    def addr_flush(self, ifname: str) -> None:
        """Equivalent to: ``ip addr flush dev IFNAME``."""
        index = self._index(ifname)
        self.lab._call(lambda w: w.ipr(self.name).flush_addr(index=index))

    def route_add(self, dst: str, *, dev: str | None = None, via: str | None = None) -> None:
        """Equivalent to: ``ip route add DST [via GATEWAY] [dev DEV]`` (DST may be ``"default"``)."""
        kwargs = self._route_args(dst, dev, via)
        self.lab._call(lambda w: w.ipr(self.name).route("add", **kwargs))

    def route_del(self, dst: str, *, dev: str | None = None, via: str | None = None) -> None:
        """Equivalent to: ``ip route del DST [via GATEWAY] [dev DEV]``."""
        kwargs = self._route_args(dst, dev, via)
        self.lab._call(lambda w: w.ipr(self.name).route("del", **kwargs))

    def _route_args(self, dst: str, dev: str | None, via: str | None) -> dict:
        net = names.parse_network(dst)
        # iproute2's defaults: proto boot; scope link for a route without a gateway
        kwargs: dict = {"dst": str(net.network_address), "dst_len": net.prefixlen, "proto": 3,
                        "scope": 0 if via else 253}
        if via:
            kwargs["gateway"] = str(names.parse_address(via))
        if dev:
            kwargs["oif"] = self._index(dev)
        if not via and not dev:
            raise NetlabError(f"a route to {dst} needs a gateway (via) or a device (dev)")
        return kwargs

    # -- sysctls and reading ------------------------------------------------------------------

    def sysctl(self, key: str, value: str | int | None = None) -> str:
        """Equivalent to: ``sysctl [-w] KEY[=VALUE]`` inside this namespace; returns the value.

        Only ``net.*`` keys: the rest of ``/proc/sys`` is not per network namespace.
        """
        if not key.startswith("net.") or not all(p and p.replace("_", "").replace("-", "").isalnum()
                                                 for p in key.split(".")):
            raise InvalidName(f"{key!r} is not a per-namespace sysctl (expected net.something)")
        return self.lab._call(_sysctl, self.name, key, None if value is None else str(value))

    def read(self) -> Namespace:
        """This namespace in the lab's snapshot model."""
        return self.lab._call(read_lab, [self.name]).namespaces[0]

    def links(self) -> list[str]:
        """Interface names. Equivalent to: ``ip -br link``."""
        return [i.name for i in self.read().interfaces]

    def run(self, command: str | Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command inside this namespace (see :meth:`Lab.run`)."""
        return self.lab.run(self.name, command, **kwargs)

    # -- helpers ----------------------------------------------------------------------------

    def _index(self, ifname: str) -> int:
        names.check_ifname(ifname)
        found = self.lab._call(lambda w: w.ipr(self.name).link_lookup(ifname=ifname))
        if not found:
            raise NotFound(f"interface {ifname!r} does not exist in namespace {self.name!r}")
        return found[0]

    def _absent(self, ifname: str) -> None:
        if self.lab._call(lambda w: w.ipr(self.name).link_lookup(ifname=ifname)):
            raise AlreadyExists(f"interface {ifname!r} already exists in namespace {self.name!r}")


# -- worker-thread functions ------------------------------------------------------------------

def _create_netns(worker: NetlinkWorker, path: str) -> None:
    """``ip netns add``: a new namespace on this thread, bind-mounted at ``path``, then home."""
    with open(path, "x"):
        pass
    try:
        home = os.open(syscalls.THREAD_NETNS, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            try:
                syscalls.mount(syscalls.THREAD_NETNS, path, None, syscalls.MS_BIND)
            finally:
                syscalls.setns(home, syscalls.CLONE_NEWNET)
        finally:
            os.close(home)
    except BaseException:
        os.unlink(path)
        raise


def _add_veth(worker: NetlinkWorker, netns: str, name: str, peer: str, peer_netns: str) -> None:
    spec: dict = {"ifname": peer}
    if peer_netns != netns:
        spec["net_ns_fd"] = worker.netns_fd(peer_netns)
    worker.ipr(netns).link("add", ifname=name, kind="veth", peer=spec)


def _sysctl(worker: NetlinkWorker, netns: str, key: str, value: str | None) -> str:
    path = "/proc/sys/" + key.replace(".", "/")
    with worker.inside_fd(worker.netns_fd(netns)):
        try:
            if value is not None:
                with open(path, "w") as f:
                    f.write(value)
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            raise NotFound(f"sysctl {key!r} does not exist in namespace {netns!r}") from None
        except PermissionError as err:
            raise PrivilegeError(f"cannot write sysctl {key!r} in namespace {netns!r}: {err.strerror}") from err
        except OSError as err:  # EINVAL and friends: the kernel refused the value
            raise InvalidArgument(f"cannot set sysctl {key!r} to {value!r} in namespace {netns!r}: "
                                  f"{err.strerror}") from err


def _ns_name(netns: "str | NetNS | None") -> str | None:
    return netns.name if isinstance(netns, NetNS) else netns


def _netlink_error(err: NetlinkError) -> NetlabError:
    message = f"netlink: {os.strerror(err.code)}" if err.code else f"netlink: {err}"
    if err.code == errno.EEXIST:
        return AlreadyExists(message)
    if err.code in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
        return NotFound(message)
    if err.code in (errno.EPERM, errno.EACCES):
        return PrivilegeError(message)
    return NetlabError(message)
