"""The Python API: a :class:`Lab` of network namespaces, and :class:`NetNS` handles into it.

Every operation is named after its iproute2 command, which its docstring quotes, so reading
the API teaches ``ip``. Each call speaks netlink itself (:mod:`netlab_magic.linux.rtnl`), on the
calling thread, through a socket opened inside the namespace it concerns and closed before it
returns: commands typed in cells (``!ip ...``, ``%%netns``) and API calls see and change the
same namespaces, and the API holds none of them alive.

    >>> lab = Lab.current()
    >>> ns1 = lab.add_netns("ns1")
    >>> lab.host.add_veth("veth2", peer="veth1", peer_netns="ns1")
    >>> ns1.addr_add("veth1", "10.0.0.1/24"); ns1.link_up("veth1"); ns1.link_up("lo")

Longer than most modules on purpose: it is the whole public API, one method per ``ip``
command, so that a reader finds every operation of the lab in one place.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import subprocess
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator, Sequence, TypeVar

from .. import names
from ..errors import (AlreadyExists, CommandFailed, InvalidAddress, InvalidArgument, InvalidName, NetlabError,
                     NotFound, PrivilegeError)
from ..linux import namespaces, process, syscalls
from ..linux.jobs import Job, JobTable
from ..linux.rtnl import NetlinkError, Rtnl
from ..model import HOST, LabSnapshot, Namespace
from ..sandbox.sandbox import NETNS_DIR, Sandbox, refusal
from .snapshot import read_lab

if TYPE_CHECKING:
    from ..packets.trace_model import Trace

T = TypeVar("T")


class Lab:
    """A sandboxed network lab: the lab's host namespace plus every namespace made in it.

    There is one lab per process; :meth:`current` makes it on first use (this moves the
    calling thread, which must be the main thread, into the lab's host).
    """

    _current: ClassVar["Lab | None"] = None
    #: Set by :mod:`netlab_magic.backend` where the VM runs this process's lab: what :meth:`current` returns.
    elsewhere: ClassVar["Callable[[], Any] | None"] = None
    #: Which implementation of :class:`netlab_magic.backend.LabBackend` this is.
    backend = "kernel"

    def __init__(self, *, keeper: bool = True) -> None:
        """Make this process's lab (:meth:`current` is how the magics get it).

        ``keeper=False`` starts no keeper process: only where something else tears the lab down
        when this process ends (the VM's guest, whose init powers the VM off)."""
        if Lab._current is not None:
            raise NetlabError("this process already has a lab: use Lab.current()")
        self.sandbox = Sandbox(keeper=keeper)
        self.sandbox.enter()
        self.jobs = JobTable()
        self._closed = False
        #: Counts resets: layers that keep state about the lab (``%docker``) start afresh when it moves.
        self.generation = 0
        Lab._current = self
        atexit.register(self.close)

    @classmethod
    def current(cls) -> "Lab":
        """The lab of this process, made on first call: the one the magics, checks and widgets use.

        Where :mod:`netlab_magic.backend` chose the VM (the extension asks it first), that is the
        :class:`~netlab_magic.vm.lab.VMLab`, which forwards this same API to the lab in its guest.
        Raises :class:`PrivilegeError` (one line, saying what to do) where no lab can be made.
        """
        if cls._current is None or cls._current._closed:
            cls._current = None
            if cls.elsewhere is not None:
                return cls.elsewhere()
            reason = refusal()
            if reason:
                raise PrivilegeError(reason)
            cls()
        return cls._current  # type: ignore[return-value]

    @classmethod
    def existing(cls) -> "Lab | None":
        """The lab of this process if it has one (open), without making one."""
        lab = cls._current
        return lab if lab is not None and not lab._closed else None

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
        self.require(name)
        return NetNS(self, name)

    def require(self, name: str) -> None:
        """Raise :class:`NamespaceNotFound` (naming what the lab has) unless namespace ``name`` exists."""
        self.sandbox.netns_path(name)

    def entered(self, netns: str):  # noqa: ANN201 - a context manager
        """Context manager: the calling thread inside ``netns`` for the body, then back where it was.

        Processes and sockets made in the body are made inside ``netns``.
        """
        return self.sandbox.entered(netns)

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
        self._check_open()
        with namespaces.new_named(path):
            pass
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
        self._check_open()
        return read_lab([(HOST, self.sandbox.netns_path(HOST))]
                        + [(name, os.path.join(NETNS_DIR, name)) for name in self.list_netns()])

    def reset(self) -> None:
        """Destroy everything in the lab (processes, jobs, namespaces) and start a fresh host."""
        self._require_main_thread()
        self.jobs.stop_all()
        self.sandbox.renew()
        self.generation += 1

    def close(self) -> None:
        """Destroy the lab and give the main thread back its own network namespace."""
        if self._closed:
            return
        self._closed = True
        self.jobs.stop_all()
        if threading.current_thread() is threading.main_thread():
            self.sandbox.leave()
        if Lab._current is self:
            Lab._current = None

    # -- processes --------------------------------------------------------------------------

    def popen(self, netns: str, argv: Sequence[str], *, merge_stderr: bool = False,
              stdin: int | None = subprocess.DEVNULL, terminal: bool = False) -> subprocess.Popen:
        """Start ``argv`` inside ``netns`` in its own process group (no ``ip netns exec``).

        Safe from any thread: the calling thread enters the namespace for the ``fork`` only.
        ``terminal``: its output goes to a terminal, not a pipe (:func:`process.popen`).
        """
        with self.sandbox.spawning(netns):
            return process.popen(argv, merge_stderr=merge_stderr, stdin=stdin, terminal=terminal)

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
            raise CommandFailed(f"command in {netns!r} failed ({process.describe_exit(result.returncode)}): "
                                f"{err.decode().strip()[:200]}",
                                result.returncode)
        return result

    def run_cell(self, netns: str, script: str, timeout: float | None = None, *, terminal: bool = False) -> int:
        """Run a bash script inside ``netns``, its output (stdout and stderr in one, as a terminal shows
        them) streamed to the cell; return its exit status. With ``terminal`` the script writes to a
        terminal, as IPython's ``!cmd`` does (the VM backend's ``!cmd``), else to a pipe.

        What the script left running that still holds its output (``nc -l 8080 &``) becomes a
        background job, announced in one line. Raises :class:`process.Timeout` and
        :class:`process.Interrupted`.
        """
        proc = self.popen(netns, process.shell_argv(script), merge_stderr=True, terminal=terminal)
        code = process.stream(proc, timeout=timeout, keep_open=True)
        sys.stdout.flush()
        if process.holds_output(proc):
            job = self.keep_background(netns, script, proc)
            print(f"[{job.name}] what this cell started in the background runs on in {job.netns}: "
                  f"%netlab output {job.name} shows what it prints, %netlab stop {job.name} ends it",
                  file=sys.stderr)
        return code

    def trace(self, netns: str, command: str, match: str | None = None, *,
              timeout: float | None = None) -> "Trace":
        """Run ``command`` (bash) in ``netns`` and follow its packets through every namespace of the lab.

        Returns a :class:`~netlab_magic.packets.trace_model.Trace`: each packet's hops (namespace, hook,
        table:chain, rule, verdict) as the kernel's netfilter trace reported them. ``match``
        (iptables syntax, e.g. ``"-p tcp --dport 8888"``) picks packets and their connections.
        """
        from ..packets.trace import run_trace

        return run_trace(self, netns, command, match, timeout=timeout)

    def call(self, func: "Callable[..., T]", *args: Any, **kwargs: Any) -> "T":
        """``func(self, *args, **kwargs)``: a lab-side function (a trace, a probe) run where the lab lives.

        Here, that is this process; in the VM backend (:class:`netlab_magic.vm.lab.VMLab`) the guest."""
        return func(self, *args, **kwargs)

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

    def _check_open(self) -> None:
        if self._closed:
            raise NetlabError("this lab was closed; load netlab again (or Lab.current()) for a new one")

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
        other = NetNS(self.lab, _ns_name(peer_netns) or self.name)
        self.lab.sandbox.netns_path(other.name)
        if other.name == self.name and name == peer:
            raise InvalidName(f"a veth and its peer need two different names (both are {name!r})")
        what = f"ip link add {name} type veth peer name {peer}" + (
            f" netns {other.name}" if other.name != self.name else "")
        with self._rtnl() as sock:
            self._absent(sock, name)
            if other.name == self.name:
                self._absent(sock, peer)
                sock.link_add_veth(name, peer)
            else:
                with other._rtnl() as peer_sock:
                    other._absent(peer_sock, peer)
                fd = namespaces.open_path(self.lab.sandbox.netns_path(other.name))
                try:
                    sock.link_add_veth(name, peer, peer_netns_fd=fd)
                    commit(sock, self.name, what)
                finally:
                    os.close(fd)
                return
            commit(sock, self.name, what)

    def add_bridge(self, name: str) -> None:
        """Equivalent to: ``ip link add NAME type bridge``."""
        names.check_ifname(name)
        with self._rtnl() as sock:
            self._absent(sock, name)
            sock.link_add_bridge(name)
            commit(sock, self.name, f"ip link add {name} type bridge")

    def link_del(self, ifname: str) -> None:
        """Equivalent to: ``ip link del IFNAME``."""
        self._link_request(ifname, f"ip link del {ifname}", lambda sock, index: sock.link_del(index))

    def link_up(self, ifname: str) -> None:
        """Equivalent to: ``ip link set dev IFNAME up``."""
        self._link_request(ifname, f"ip link set dev {ifname} up", lambda sock, index: sock.link_set(index, up=True))

    def link_down(self, ifname: str) -> None:
        """Equivalent to: ``ip link set dev IFNAME down``."""
        self._link_request(ifname, f"ip link set dev {ifname} down",
                           lambda sock, index: sock.link_set(index, up=False))

    def link_set_master(self, ifname: str, bridge: str | None) -> None:
        """Equivalent to: ``ip link set IFNAME master BRIDGE`` (``nomaster`` when ``bridge`` is None)."""
        what = f"ip link set {ifname} master {bridge}" if bridge else f"ip link set {ifname} nomaster"
        with self._rtnl() as sock:
            index = self._index(sock, ifname)
            master = self._index(sock, bridge) if bridge else 0
            sock.link_set(index, master=master)
            commit(sock, self.name, what)

    def link_set_address(self, ifname: str, mac: str) -> None:
        """Equivalent to: ``ip link set dev IFNAME address MAC``."""
        if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", mac or ""):
            raise InvalidAddress(f"{mac!r} is not a MAC address like 02:42:ac:11:00:02")
        self._link_request(ifname, f"ip link set dev {ifname} address {mac}",
                           lambda sock, index: sock.link_set(index, mac=mac.lower()))

    def link_set_netns(self, ifname: str, netns: "str | NetNS") -> None:
        """Equivalent to: ``ip link set IFNAME netns NETNS``."""
        target = NetNS(self.lab, _ns_name(netns))
        path = self.lab.sandbox.netns_path(target.name)
        with target._rtnl() as other:
            target._absent(other, ifname)
        fd = namespaces.open_path(path)
        try:
            self._link_request(ifname, f"ip link set {ifname} netns {target.name}",
                               lambda sock, index: sock.link_set(index, netns_fd=fd))
        finally:
            os.close(fd)

    def bridge_port_hairpin(self, ifname: str, on: bool = True) -> None:
        """Equivalent to: ``bridge link set dev IFNAME hairpin on|off`` (IFNAME must be a bridge port)."""
        self._link_request(ifname, f"bridge link set dev {ifname} hairpin {'on' if on else 'off'}",
                           lambda sock, index: sock.bridge_port_hairpin(index, on))

    def link_exists(self, ifname: str) -> bool:
        """True if interface ``ifname`` exists here. Equivalent to: ``ip link show dev IFNAME`` succeeding."""
        names.check_ifname(ifname)
        with self._rtnl() as sock:
            return sock.index(ifname) is not None

    # -- addresses and routes -----------------------------------------------------------------

    def addr_add(self, ifname: str, cidr: str) -> None:
        """Equivalent to: ``ip addr add CIDR dev IFNAME`` (e.g. ``"10.0.0.1/24"``)."""
        iface = names.parse_interface(cidr)
        self._link_request(ifname, f"ip addr add {cidr} dev {ifname}",
                           lambda sock, index: sock.addr_add(index, iface))

    def addr_del(self, ifname: str, cidr: str) -> None:
        """Equivalent to: ``ip addr del CIDR dev IFNAME``."""
        iface = names.parse_interface(cidr)
        self._link_request(ifname, f"ip addr del {cidr} dev {ifname}",
                           lambda sock, index: sock.addr_add(index, iface, delete=True))

    def addr_flush(self, ifname: str) -> None:
        """Equivalent to: ``ip addr flush dev IFNAME``."""
        import ipaddress

        with self._rtnl() as sock:
            index = self._index(sock, ifname)
            for a in sock.addrs():
                if a["index"] == index:
                    sock.addr_add(index, ipaddress.ip_interface(f"{a['address']}/{a['prefixlen']}"), delete=True)
            commit(sock, self.name, f"ip addr flush dev {ifname}")

    def route_add(self, dst: str, *, dev: str | None = None, via: str | None = None) -> None:
        """Equivalent to: ``ip route add DST [via GATEWAY] [dev DEV]`` (DST may be ``"default"``)."""
        self._route("add", dst, dev, via)

    def route_del(self, dst: str, *, dev: str | None = None, via: str | None = None) -> None:
        """Equivalent to: ``ip route del DST [via GATEWAY] [dev DEV]``."""
        self._route("del", dst, dev, via)

    def _route(self, command: str, dst: str, dev: str | None, via: str | None) -> None:
        net = names.parse_network(dst)
        gateway = names.parse_address(via) if via else None
        if not via and not dev:
            raise NetlabError(f"a route to {dst} needs a gateway (via) or a device (dev)")
        what = f"ip route {command} {dst}" + (f" via {via}" if via else "") + (f" dev {dev}" if dev else "")
        with self._rtnl() as sock:
            oif = self._index(sock, dev) if dev else None
            sock.route(command, dst=net, gateway=gateway, oif=oif)
            commit(sock, self.name, what)

    # -- sysctls and reading ------------------------------------------------------------------

    def sysctl(self, key: str, value: str | int | None = None) -> str:
        """Equivalent to: ``sysctl [-w] KEY[=VALUE]`` inside this namespace; returns the value.

        Only ``net.*`` keys: the rest of ``/proc/sys`` is not per network namespace.
        """
        if not key.startswith("net.") or not all(p and p.replace("_", "").replace("-", "").isalnum()
                                                 for p in key.split(".")):
            raise InvalidName(f"{key!r} is not a per-namespace sysctl (expected net.something)")
        with self.lab.sandbox.entered(self.name):
            return _sysctl(self.name, key, None if value is None else str(value))

    def read(self) -> Namespace:
        """This namespace in the lab's snapshot model."""
        self.lab._check_open()
        return read_lab([(self.name, self.lab.sandbox.netns_path(self.name))]).namespaces[0]

    def links(self) -> list[str]:
        """Interface names. Equivalent to: ``ip -br link``."""
        return [i.name for i in self.read().interfaces]

    def run(self, command: str | Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        """Run a command inside this namespace (see :meth:`Lab.run`)."""
        return self.lab.run(self.name, command, **kwargs)

    # -- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _rtnl(self) -> Iterator[Rtnl]:
        """A netlink socket opened inside this namespace, closed when the block ends."""
        self.lab._check_open()
        with self.lab.sandbox.entered(self.name):
            sock = Rtnl()
        try:
            yield sock
        finally:
            sock.close()

    def _link_request(self, ifname: str, what: str, request) -> None:  # noqa: ANN001
        with self._rtnl() as sock:
            request(sock, self._index(sock, ifname))
            commit(sock, self.name, what)

    def _index(self, sock: Rtnl, ifname: str) -> int:
        names.check_ifname(ifname)
        index = sock.index(ifname)
        if index is None:
            raise NotFound(f"interface {ifname!r} does not exist in namespace {self.name!r}")
        return index

    def _absent(self, sock: Rtnl, ifname: str) -> None:
        if sock.index(ifname) is not None:
            raise AlreadyExists(f"interface {ifname!r} already exists in namespace {self.name!r}")


# -- helpers ----------------------------------------------------------------------------------

def _sysctl(netns: str, key: str, value: str | None) -> str:
    """Read (and write) a sysctl of the namespace the calling thread is in."""
    path = "/proc/sys/" + key.replace(".", "/")
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


def netlink_error(err: NetlinkError, what: str | None = None) -> NetlabError:
    """The typed :class:`NetlabError` for a refusal of the kernel; ``what`` says what was asked."""
    reason = os.strerror(err.code) if err.code else str(err)
    message = f"{what}: {reason}" if what else f"netlink: {reason}"
    if err.code == errno.EEXIST:
        return AlreadyExists(message)
    if err.code in (errno.ENODEV, errno.ENOENT, errno.ESRCH):
        return NotFound(message)
    if err.code in (errno.EPERM, errno.EACCES):
        return PrivilegeError(message)
    return NetlabError(message)


def commit(sock: Rtnl, netns: str, what: str | None = None) -> None:
    """Send ``sock``'s queued requests (it is open in ``netns``); the kernel's refusal as a typed
    error that says where and what: ``in namespace 'ns1', ip link set eth0 up: File exists``.
    ``what`` names the request; without it, the name each request was queued with is used."""
    try:
        sock.commit()
    except NetlinkError as err:
        if what is not None:
            raise netlink_error(err, f"in namespace {netns!r}, {what}") from err
        mapped = netlink_error(err)
        said = err.args[1] if len(err.args) > 1 else str(mapped)
        raise type(mapped)(f"in namespace {netns!r}, {said}") from err
