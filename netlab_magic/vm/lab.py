""":class:`VMLab`: the lab inside a small VM, for the magics (see :mod:`netlab_magic.lab.backend`).

The guest is the lab's host: its first network namespace plays the talk's host, and ``ip netns``
makes the others, exactly as on a bare machine (the VM is the sandbox: it has no network
device at all). Commands run through the guest's agent; for ``%%netns NAME`` the agent starts
``bash -c SCRIPT`` inside NAME itself, as ``ip netns exec NAME`` would (one exec fewer: each
costs ~50 ms in the guest).

The VM boots in the background from the moment the lab is made (the kernel's start), and the
first command waits for it with a progress line. A VM that died (crashed, killed) is reported
in one line by the command that finds it dead, and a fresh one starts booting at once for the
next command. A reset is a fresh VM.
"""

from __future__ import annotations

import atexit
import io
import subprocess
import sys
from typing import ClassVar, Sequence

from ..errors import CommandFailed, NamespaceNotFound, NetlabError
from ..linux import process
from ..model import HOST
from ..names import check_netns_name
from .client import AgentClient, AgentLost
from .image import ImageError, find
from .machine import Machine


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

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ended the lab (and its VM)."""
        return self._closed

    def _boot(self) -> Machine:
        machine = Machine(self.image)
        machine.start()  # from this thread: QEMU dies with it (--pdeathsig)
        return machine

    def agent(self) -> AgentClient:
        """The guest's agent, waiting for the boot (with a progress line) if it is not ready yet."""
        if self._closed:
            raise NetlabError("this lab was closed; load netlab again for a new one")
        machine = self.machine
        if machine.client is not None and machine.alive():
            return machine.client
        if machine.client is not None:  # it was ready once: it died since
            raise self._lost()
        print("netlab: the lab's VM is starting ...", file=sys.stderr, flush=True)
        return machine.wait_ready()

    def _lost(self) -> AgentLost:
        """The VM died: one line saying how; a fresh one boots in the background for the next command."""
        message = self.machine.describe_end()
        self.machine.stop()
        self.machine = self._boot()
        return AgentLost(f"{message}; the next command starts a fresh VM")

    # -- the backend's promises (netlab_magic.lab.backend.LabBackend) ---------------------------------

    def require(self, name: str) -> None:
        """Raise :class:`NamespaceNotFound` unless the guest has namespace ``name`` (``host`` always)."""
        if name == HOST:
            return
        check_netns_name(name)
        have = self.list_netns()
        if name not in have:
            raise NamespaceNotFound(f"namespace {name!r} does not exist (the lab has: {', '.join([HOST, *have])})")

    def list_netns(self) -> list[str]:
        """Equivalent to: ``ip netns list`` in the guest (names only, sorted)."""
        result = self.run(HOST, ["ip", "netns", "list"])
        return sorted(line.split()[0] for line in result.stdout.splitlines() if line.strip())

    def run(self, netns: str, command: str | Sequence[str], *, check: bool = False,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run a command inside ``netns`` in the guest and capture its output (text)."""
        argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
        out, err = io.StringIO(), io.StringIO()
        code = self._run(netns, argv, out, err, timeout)
        result = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
        if check and code:
            raise CommandFailed(f"command in {netns!r} failed ({process.describe_exit(code)}): "
                                f"{result.stderr.strip()[:200]}", code)
        return result

    def run_cell(self, netns: str, script: str, timeout: float | None = None) -> int:
        """Run a bash script inside ``netns`` in the guest, its output streamed to the cell."""
        return self._run(netns, ["bash", "-c", script], sys.stdout, sys.stderr, timeout)

    def _run(self, netns: str, argv: list[str], out, err, timeout: float | None) -> int:  # noqa: ANN001
        if netns != HOST:
            check_netns_name(netns)
        client = self.agent()
        try:
            return client.run(argv, out, err, timeout=timeout, netns=None if netns == HOST else netns)
        except AgentLost as lost:
            raise self._lost() from lost

    def reset(self) -> None:
        """A fresh VM: every namespace, interface, rule and process of the old one is gone with it."""
        self.machine.stop()
        self.machine = self._boot()
        self.generation += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # existing() forgets it; current() makes a new lab
        self.machine.stop()

    def __repr__(self) -> str:
        return f"<VMLab {self.image.kernel_release} ready_after={self.machine.ready_after}>"

