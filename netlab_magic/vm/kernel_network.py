"""The kernel's own network in the VM backend: an empty namespace where the machine allows one.

In the VM backend the lab is in the guest, and a plain Python cell runs in the kernel. Its
pyroute2 objects are forwarded to the guest (:mod:`.pyroute2_proxy`); any other socket is
the kernel's. Where namespaces work (``NETLAB_BACKEND=vm`` on a machine that could run the lab
in-kernel: the tests, a teacher who wants every learner on the VM, root or the rootless
"Python 3 (netlab)" kernel), the kernel's threads that run cells go into a
:class:`~netlab_magic.sandbox.sandbox.Sandbox` of their own, made as the in-kernel lab makes its
host: a private mount namespace, and a network namespace with ``lo`` only and no uplink, its
keeper tearing it down when the kernel ends (``kill -9`` included); ipykernel's subshells join it
(:mod:`netlab_magic.sandbox.threads`). QEMU is not a cell's: the kernel's launcher starts it
before this wall is made (it has no network device, ``-nic none``, and ``--pdeathsig`` ends it
with the kernel); one started later (a fresh VM after a crash) starts from inside the wall. Where namespaces are refused (the VM's reason to be:
mybinder.org, a container under Docker's default seccomp profile), there is no such wall, and
:attr:`KernelNetwork.reaches` says so: the doctor and the README repeat that one line.
"""

from __future__ import annotations

import threading

from ..errors import PrivilegeError
from ..sandbox.sandbox import Sandbox, privilege_mode, refusal

#: What a plain cell's socket reaches, in each case (``%netlab doctor``'s "plain Python" row).
WALLED = ("a plain cell's pyroute2 (IPRoute, NetNS, AsyncIPRoute, pyroute2.netns) acts on the VM's lab; "
          "its other sockets are in an empty network namespace of the kernel (lo only, no uplink)")
OPEN = ("a plain cell's pyroute2 (IPRoute, NetNS, AsyncIPRoute, pyroute2.netns) acts on the VM's lab; "
        "its other sockets reach what this kernel's process reaches ({why}): the machine's or container's "
        "network, not the lab")


class KernelNetwork:
    """Where the kernel's cells are, beside the VM: :attr:`sandbox` if walled in, and what a socket :attr:`reaches`."""

    def __init__(self) -> None:
        self.sandbox: Sandbox | None = None
        why = self._unwalled_reason()
        if not why:
            sandbox = Sandbox()
            try:
                sandbox.enter()
            except (PrivilegeError, OSError) as err:
                why = f"its empty namespace could not be made: {err}"
            else:
                self.sandbox = sandbox
        self.reaches = OPEN.format(why=why) if why else WALLED

    @staticmethod
    def _unwalled_reason() -> str:
        if threading.current_thread() is not threading.main_thread():
            return "the VM's lab was made off the kernel's main thread"
        if refusal():
            return "the kernel refuses namespaces here"
        if privilege_mode() == "none":
            return "an ordinary kernel, not root: the 'Python 3 (netlab)' kernel has an empty one"
        return ""

    def adopt_calling_thread(self) -> None:
        """Move the calling thread (an ipykernel subshell's) into the kernel's empty namespace, if there is one."""
        if self.sandbox is not None:
            self.sandbox.adopt_thread()

    def close(self) -> None:
        """Tear the empty namespace down and give the main thread its own network back (as the in-kernel lab's close)."""
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None and threading.current_thread() is threading.main_thread():
            sandbox.leave()
