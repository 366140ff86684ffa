"""Installing the "Python 3 (netlab)" kernelspec (``python -m netlab_magic install-kernel``)."""

from __future__ import annotations

import json
import os
import sys
import tempfile

KERNEL_NAME = "netlab"
DISPLAY_NAME = "Python 3 (netlab)"


def kernel_json(python: str = sys.executable) -> dict:
    """The kernelspec: this Python, started through the netlab launcher."""
    return {
        "argv": [python, "-m", "netlab_magic.jupyter.kernel", "-f", "{connection_file}"],
        "display_name": DISPLAY_NAME,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {"debugger": False},
    }


def install(user: bool = False, prefix: str | None = None, name: str = KERNEL_NAME) -> str:
    """Install the kernelspec; return the directory it went to.

    Default: into this Python's prefix (``sys.prefix``, e.g. the virtualenv); ``user=True``
    for ``~/.local/share/jupyter``; or an explicit ``prefix``.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if not user and prefix is None:
        prefix = sys.prefix
    with tempfile.TemporaryDirectory() as tmp:
        # The spec is copied with its directory's mode: a temporary directory's 0700 would hide
        # the kernel from every other user (a JupyterHub's learners) of a root-installed prefix.
        os.chmod(tmp, 0o755)
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(kernel_json(), f, indent=1)
        return KernelSpecManager().install_kernel_spec(tmp, kernel_name=name, user=user, prefix=prefix)
