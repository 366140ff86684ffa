"""netlab_magic: Docker networking without Docker, in a sandboxed lab inside your kernel.

``%load_ext netlab_magic`` moves the kernel's cells into a private lab; ``%%netns NAME`` runs
a cell inside a namespace of it. From Python: ``Lab.current()``.

Each folder is a layer (``linux/`` at the bottom, then ``sandbox/``, ``packets/``, ``lab/``,
``vm/``, ``backend.py``, ``widgets/``, the exercises, ``docker/``, ``troubleshoot/``, ``jupyter/``):
a layer imports only those below it. The order is stated, and checked, in tests/test_shape.py; the map is in
docs/how-it-works.md.
"""

from __future__ import annotations

from .errors import (AlreadyExists, CommandFailed, InvalidAddress, InvalidName, NamespaceNotFound,
                     NetlabError, NotFound, PrivilegeError)
from .lab.lab import Lab, NetNS
from .model import HOST, Interface, LabSnapshot, Namespace, Peer, Route
from .version import __version__

__all__ = [
    "Lab", "NetNS", "LabSnapshot", "Namespace", "Interface", "Peer", "Route", "HOST",
    "NetlabError", "InvalidName", "InvalidAddress", "NotFound", "NamespaceNotFound",
    "AlreadyExists", "PrivilegeError", "CommandFailed",
    "load_ipython_extension", "unload_ipython_extension",
]


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 - IPython's signature
    """``%load_ext netlab_magic``: build the lab and register the magics."""
    from .jupyter.extension import load

    load(ipython)


def unload_ipython_extension(ipython) -> None:  # noqa: ANN001
    """``%unload_ext netlab_magic``: destroy the lab; cells run on the real host again."""
    from .jupyter.extension import unload

    unload(ipython)
