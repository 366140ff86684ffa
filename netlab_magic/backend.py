"""The seam between the magics and the two labs: in this kernel's namespaces, or in a small VM.

The magics never ask which lab runs: they call :func:`current` and use what
:class:`LabBackend` promises. The in-kernel :class:`~netlab_magic.lab.lab.Lab` is the fast default;
:class:`~netlab_magic.vm.lab.VMLab` runs that same lab inside a QEMU guest, and forwards the
lab's API to it, where the kernel refuses this process its namespaces
(:func:`netlab_magic.sandbox.sandbox.refusal`). :class:`LabBackend` is the part the magics rely on
whatever runs; the rest of :class:`~netlab_magic.lab.lab.Lab`'s API (``snapshot``, ``jobs``,
``start_job`` ...) is forwarded too, and lab-side functions go through :meth:`LabBackend.call`.
The choice is made once per process, by :func:`choose`, and ``NETLAB_BACKEND=kernel|vm`` forces
either (for tests, and for teachers who want every learner on the same one). One lab per
process: where the VM runs it, ``Lab.current()`` (what the checks, the widgets and the notebooks
call) is the :class:`~netlab_magic.vm.lab.VMLab` too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, TypeVar

from .errors import InvalidArgument, NetlabError, PrivilegeError
from .sandbox.sandbox import refusal

BACKEND_ENV = "NETLAB_BACKEND"
KERNEL, VM = "kernel", "vm"
T = TypeVar("T")


class LabBackend(Protocol):
    """What every lab gives the magics: commands in its namespaces, a reset, an end."""

    #: ``"kernel"`` or ``"vm"``
    backend: str
    #: how it runs: ``"root"``, ``"rootless"`` (the kernel's lab) or ``"vm"``
    mode: str

    def require(self, name: str) -> None:
        """Raise :class:`~netlab_magic.errors.NamespaceNotFound` (one line) unless namespace ``name`` exists."""

    def run(self, netns: str, command: str | Sequence[str], *, check: bool = False,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run a bash script (a string) or an argv inside ``netns``; its output captured as text."""

    def run_cell(self, netns: str, script: str, timeout: float | None = None, *, terminal: bool = False) -> int:
        """Run a bash script inside ``netns``, its output streamed to this cell; return its exit status.

        ``terminal``: the script writes to a terminal (as IPython's ``!cmd`` gives), not a pipe.

        Raises :class:`~netlab_magic.linux.process.Timeout` and :class:`~netlab_magic.linux.process.Interrupted`.
        """

    def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``func(lab, *args, **kwargs)`` where the lab lives (this process, or the VM's guest)."""

    def adopt_calling_thread(self) -> None:
        """Move the calling thread (an ipykernel subshell's) where this kernel's cells run (:mod:`netlab_magic.sandbox.threads`)."""

    def reset(self) -> None:
        """Destroy everything in the lab and start afresh."""

    def close(self) -> None:
        """Destroy the lab."""


@dataclass(frozen=True)
class Choice:
    """Which lab runs in this process, and why (what ``%netlab doctor`` shows)."""

    name: str
    reason: str


_chosen: Choice | None = None


def vm_ready() -> str | None:
    """None if a VM can start here; else what is missing, with the line that adds it."""
    from .vm.image import find
    from .vm.machine import QEMU

    missing = []
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} (apt-get install -y qemu-system-x86)")
    if find() is None:
        missing.append("the VM's kernel and initramfs (netlab-magic vm prepare)")
    return "; ".join(missing) or None


def choose(environ: Mapping[str, str] | None = None) -> Choice:
    """Decide which lab runs: ``NETLAB_BACKEND`` if set, else the VM only where the kernel refuses namespaces."""
    environ = os.environ if environ is None else environ
    forced = environ.get(BACKEND_ENV, "").strip()
    if forced:
        if forced not in (KERNEL, VM):
            raise InvalidArgument(f"{BACKEND_ENV}={forced!r}: choose {KERNEL!r} (this kernel's namespaces) or {VM!r}")
        return Choice(forced, f"forced by {BACKEND_ENV}={forced}")
    problem = refusal()
    if problem is None:
        return Choice(KERNEL, "this kernel's namespaces (the fast default)")
    missing = vm_ready()
    if missing:
        return Choice(KERNEL, f"the kernel refuses namespaces here, and the VM that would run the lab instead "
                              f"lacks {missing}")
    return Choice(VM, "the kernel refuses namespaces here, so the lab runs in a small VM")


def start_early() -> None:
    """Where the VM will run the lab, start it now, for the program this process ``exec``\\ s next.

    The kernel's launcher calls it before ``ipykernel`` loads, so the VM boots while the kernel
    starts; the kernel's :class:`~netlab_magic.vm.lab.VMLab` takes it over
    (:meth:`~netlab_magic.vm.machine.Machine.take_over`). What goes wrong here is left for that lab
    to meet again and say in one line.
    """
    try:
        if choose().name != VM:
            return
        from .vm import snapshot
        from .vm.image import find
        from .vm.machine import Machine

        image = find()
        if image is None:
            return
        machine = Machine(image)
        machine.start(snapshot.find(image))
        machine.hand_over()
    except NetlabError:
        return


def chosen() -> Choice:
    """The choice of this process (made on first call)."""
    if _chosen is None:
        _record(choose())
    return _chosen  # type: ignore[return-value]


def _record(choice: Choice) -> None:
    """Remember ``choice``; where it is the VM, ``Lab.current()`` is the VM's lab (one lab per process)."""
    global _chosen
    _chosen = choice
    if choice.name == VM:
        from .lab.lab import Lab
        from .vm.lab import VMLab

        Lab.elsewhere = VMLab.current


def current() -> LabBackend:
    """The lab of this process, made on first call: :class:`Lab` or :class:`VMLab`, as :func:`chosen` says.

    Raises :class:`~netlab_magic.errors.NetlabError` (one line) where neither can be made.
    """
    choice = chosen()
    if choice.name == VM:
        from .vm.lab import VMLab

        return VMLab.current()
    from .lab.lab import Lab

    try:
        return Lab.current()
    except PrivilegeError:
        # the lab learned only now that it cannot be made here (a container's masked /sys)
        if BACKEND_ENV in os.environ or refusal() is None or vm_ready() is not None:
            raise
        _record(Choice(VM, "the kernel refuses the lab its own /sys here, so the lab runs in a small VM"))
        from .vm.lab import VMLab

        return VMLab.current()


def existing() -> LabBackend | None:
    """The lab of this process if one is open, without making one."""
    from .lab.lab import Lab
    from .vm.lab import VMLab

    return Lab.existing() or VMLab.existing()


__all__ = ["BACKEND_ENV", "Choice", "LabBackend", "choose", "chosen", "current", "existing", "start_early", "vm_ready"]
