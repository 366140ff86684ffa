"""What ``%load_ext netlab_magic`` does: make the lab (or say in one line why not), add the magics."""

from __future__ import annotations


from IPython.core.error import UsageError

from .docker.magic import DockerMagics
from .errors import NetlabError
from .lab import Lab
from .magics import NetlabMagics
from .pyroute2_cells import install as let_pyroute2_run_in_cells
from .threads import keep_subshells_in_lab


def load(ipython) -> None:  # noqa: ANN001
    """Make the lab and register the magics; a lab that cannot be made is a one-line error.

    The magics are registered either way, so every later ``%%netns`` repeats the reason.
    """
    ipython.register_magics(NetlabMagics)
    ipython.register_magics(DockerMagics)
    try:
        Lab.current()
    except NetlabError as err:
        raise UsageError(str(err)) from None
    let_pyroute2_run_in_cells()
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        keep_subshells_in_lab(kernel, Lab.adopt_calling_thread)


def unload(ipython) -> None:  # noqa: ANN001
    lab = Lab.existing()
    if lab is not None:
        lab.close()
