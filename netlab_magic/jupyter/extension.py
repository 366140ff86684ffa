"""What ``%load_ext netlab_magic`` does: make the lab (or say in one line why not), add the magics."""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.utils.text import LSString, SList

from .. import backend
from ..errors import NetlabError
from ..model import HOST
from ..sandbox.threads import keep_subshells_in_lab
from .docker_magic import DockerMagics
from .magics import NetlabMagics, current_lab, one_line_errors
from .pyroute2_cells import forward_to_vm as let_pyroute2_act_on_the_vms_lab
from .pyroute2_cells import install as let_pyroute2_run_in_cells


def load(ipython) -> None:  # noqa: ANN001
    """Make the lab and register the magics; a lab that cannot be made is a one-line error.

    The magics are registered either way, so every later ``%%netns`` repeats the reason.
    In the VM backend the VM starts booting now, in the background, ``!cmd`` runs in it, a cell's
    pyroute2 objects live in it, and the kernel's own cells are in an empty namespace where the
    machine allows one (:mod:`netlab_magic.vm.kernel_network`).
    """
    ipython.register_magics(NetlabMagics)
    ipython.register_magics(DockerMagics)
    try:
        lab = backend.current()
    except NetlabError as err:
        raise UsageError(str(err)) from None
    if lab.backend == backend.VM:
        route_shell_commands_to_vm(ipython)
        let_pyroute2_act_on_the_vms_lab()
    else:
        let_pyroute2_run_in_cells()
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:  # in the VM backend: into the kernel's empty namespace, if it has one
        keep_subshells_in_lab(kernel, lab.adopt_calling_thread)


def route_shell_commands_to_vm(ipython) -> None:  # noqa: ANN001
    """``!cmd`` and ``x = !cmd`` run on the lab's host inside the VM, as they run on the lab's host in-kernel:
    ``!cmd`` in a terminal of IPython's size, ``x = !cmd`` in a pipe."""

    @one_line_errors
    def system(cmd: str) -> None:
        ipython.user_ns["_exit_code"] = current_lab().run_cell(HOST, ipython.var_expand(cmd, depth=2), terminal=True)

    @one_line_errors
    def getoutput(cmd: str, split: bool = True, depth: int = 0) -> SList | LSString:
        result = current_lab().run(HOST, ipython.var_expand(cmd, depth=depth + 2))
        text = result.stdout + result.stderr
        return SList(text.splitlines()) if split else LSString(text)

    ipython.system = system
    ipython.getoutput = getoutput


def unload(ipython) -> None:  # noqa: ANN001
    for name in ("system", "getoutput"):  # the shell's own methods again
        ipython.__dict__.pop(name, None)
    lab = backend.existing()
    if lab is not None:
        lab.close()
