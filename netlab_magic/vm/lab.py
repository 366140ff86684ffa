""":class:`VMLab`: the lab inside a small VM, for the magics (see :mod:`netlab_magic.backend`).

The guest runs this package's own in-kernel lab (:class:`netlab_magic.lab.lab.Lab`, made by the
guest's root, no user namespace needed) behind a small server (:mod:`.server`); a
:class:`VMLab` forwards the lab's API to it (:mod:`.remote`): every method of
:class:`~netlab_magic.lab.lab.Lab` works here, its results pickled back, its jobs, namespaces
and handles staying in the guest as :class:`~.remote.Remote` objects. Lab-side functions that
take the lab (a trace, a probe) run there through :meth:`VMLab.call`. The VM is the sandbox
around that lab: it has no network device at all.

The VM boots in the background from the kernel's start (its launcher starts QEMU before
``ipykernel`` loads, and the lab takes that VM over), and the first call (or a reset: each
notebook's first cell) waits for it with a progress line. A VM that died (crashed, killed) is
reported in one line by the call that finds it dead, and a fresh one starts booting at once for
the next call. A reset is the guest lab's reset (a fresh VM only if the old one died).

The kernel's own cells, beside the VM, are walled in an empty network namespace where the
machine allows it (:mod:`.kernel_network`), and their pyroute2 objects live in the guest
(:mod:`.pyroute2_proxy`).
"""

from __future__ import annotations

import atexit
import subprocess
from typing import Any, Callable, ClassVar, Sequence, TypeVar

from ..errors import NetlabError
from . import remote, snapshot
from .client import AgentClient, AgentLost
from .image import ImageError, find
from .kernel_network import KernelNetwork
from .machine import Machine, VMError

T = TypeVar("T")

#: What a cell that waits for the boot shows (notebooks/sanitize.cfg removes exactly this line).
BOOT_LINE = "netlab: the lab's VM is starting ..."


class VMLab:
    """The lab in a QEMU guest; one per process, made by :meth:`current`."""

    backend = "vm"
    mode = "vm"
    _current: ClassVar["VMLab | None"] = None

    def __init__(self) -> None:
        image = find()
        if image is None:
            raise ImageError("the VM's kernel and initramfs are not prepared: run `netlab-magic vm prepare` "
                             "(it downloads Debian's kernel and busybox packages with apt-get download)")
        self.image = image
        #: Where the kernel's own cells are: an empty namespace where the machine allows it (before QEMU starts).
        self.kernel_network = KernelNetwork()
        self.machine = self._boot()
        self._closed = False
        #: Counts resets (each one a fresh VM).
        self.generation = 0
        atexit.register(self.close)

    @classmethod
    def current(cls) -> "VMLab":
        """The VM lab of this process, made (its VM starting in the background) on first call."""
        lab = cls.existing()
        if lab is None:
            lab = cls._current = cls()
        return lab

    @classmethod
    def existing(cls) -> "VMLab | None":
        lab = cls._current
        return lab if lab is not None and not lab.closed else None

    @classmethod
    def adopt_calling_thread(cls) -> None:
        """Move the calling thread (an ipykernel subshell's) where the kernel's cells are; see :mod:`.kernel_network`."""
        lab = cls.existing()
        if lab is not None:
            lab.kernel_network.adopt_calling_thread()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ended the lab (and its VM)."""
        return self._closed

    def _boot(self) -> Machine:
        machine = Machine(self.image)
        if not machine.take_over():  # the kernel's launcher started it already
            machine.start(snapshot.find(self.image))  # from this thread: QEMU dies with it (--pdeathsig)
        return machine

    def agent(self) -> AgentClient:
        """The guest's agent, waiting for the boot (with a progress line on stdout) if it is not ready yet."""
        if self._closed:
            raise NetlabError("this lab was closed; load netlab again for a new one")
        machine = self.machine
        if machine.client is not None and machine.alive():
            return machine.client
        if machine.client is not None:  # it was ready once: it died since
            raise self._lost()
        print(BOOT_LINE, flush=True)  # stdout: a notice, not an error (a front end paints stderr red)
        try:
            return machine.wait_ready()
        except VMError as err:
            if machine.alive():
                raise
            # it died while it booted: as for one that died once ready, a fresh one for the next command
            machine.stop()
            self.machine = self._boot()
            raise VMError(f"{err}; the next command starts a fresh VM") from None

    def _lost(self) -> AgentLost:
        """The VM died: one line saying how; a fresh one boots in the background for the next command."""
        message = self.machine.describe_end()
        self.machine.stop()
        self.machine = self._boot()
        return AgentLost(f"{message}; the next command starts a fresh VM")

    # -- the lab's API, forwarded (netlab_magic.backend.LabBackend, and the rest of Lab's) ------------

    def _call(self, target: int, name: str, args: tuple = (), kwargs: dict | None = None) -> Any:
        client = self.agent()
        try:
            return client.call(target, name, args, kwargs)
        except AgentLost as lost:
            if client is self.machine.client:
                raise self._lost() from lost
            raise

    def __getattr__(self, name: str) -> Any:
        """Any other attribute of :class:`~netlab_magic.lab.lab.Lab` (``snapshot``, ``jobs``, ``start_job``,
        ``add_netns``, ``trace``, ...): the guest lab's, through :mod:`.remote`."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(remote.Remote(self._call, remote.LAB, "Lab"), name)

    def require(self, name: str) -> None:
        """Raise :class:`~netlab_magic.errors.NamespaceNotFound` unless the guest lab has namespace ``name``."""
        self._call(remote.LAB, "require", (name,))

    def run(self, netns: str, command: str | Sequence[str], *, check: bool = False,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """:meth:`Lab.run <netlab_magic.lab.lab.Lab.run>` in the guest: a command inside ``netns``, its output captured."""
        return self._call(remote.LAB, "run", (netns, command), {"check": check, "timeout": timeout})

    def run_cell(self, netns: str, script: str, timeout: float | None = None, *, terminal: bool = False) -> int:
        """:meth:`Lab.run_cell <netlab_magic.lab.lab.Lab.run_cell>` in the guest, its output streamed to the cell."""
        return self._call(remote.LAB, "run_cell", (netns, script), {"timeout": timeout, "terminal": terminal})

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(lab, *args, **kwargs)`` where the lab lives: in the guest (``func`` is pickled by name)."""
        return self._call(remote.LAB, "call", (func, *args), kwargs)

    def reset(self) -> None:
        """The guest lab's reset: every namespace, interface, rule and job goes (a fresh VM if it died).

        A VM still booting brings up a fresh lab already: no second boot, but the reset waits for
        it, so that the lab is ready when the reset returns, as in-kernel. A notebook's first cell
        is ``%netlab reset``: it waits for the boot (its progress line, notebooks/sanitize.cfg
        drops it), and no later cell does.
        """
        machine = self.machine
        if machine.client is not None and machine.alive():
            self._call(remote.LAB, "reset")
        else:
            if not machine.alive():  # it died: a fresh one
                machine.stop()
                self.machine = self._boot()
            self.agent()
        self.generation += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # existing() forgets it; current() makes a new lab
        self.machine.stop()
        self.kernel_network.close()

    def __repr__(self) -> str:
        return f"<VMLab {self.image.kernel_release} ready_after={self.machine.ready_after}>"

