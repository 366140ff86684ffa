"""Shared fixtures: real Jupyter kernels, and a guard that the machine's network and name are untouched.

Tests talk to real kernels over jupyter_client, exactly as JupyterLab does. The kernelspec
"netlab-test" is written to a temporary JUPYTER_PATH, so the suite does not depend on what
is installed where.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from support.kernel_client import IS_ROOT, Kernel

# The suite tests the in-kernel lab, also where it makes a kernel refuse namespaces on purpose
# (a seccomp filter, a masked /sys): the VM backend would otherwise take over there when its
# pieces are installed. tests/test_vm.py opts into the VM.
os.environ.setdefault("NETLAB_BACKEND", "kernel")


# -- the machine stays as it was ----------------------------------------------------------------

def machine_network() -> dict[str, list[str]]:
    """What the machine's own network looks like: named namespaces, links, firewall rules, and its
    host and domain names (a cell's ``hostname X`` must rename only its lab)."""
    def lines(argv: list[str]) -> list[str]:
        if not shutil.which(argv[0]):
            return []
        r = subprocess.run(argv, capture_output=True, text=True)
        return sorted(r.stdout.splitlines()) if r.returncode == 0 else []

    state = {
        "netns": lines(["ip", "netns", "list"]),
        "links": [ln.split(":")[1].strip().split("@")[0] for ln in lines(["ip", "-o", "link", "show"])],
        "routes": lines(["ip", "route", "show", "table", "all"]),
        "names": [os.uname().nodename, lines(["cat", "/proc/sys/kernel/domainname"])],
    }
    if IS_ROOT:
        state["iptables"] = [ln for ln in lines(["iptables-save"]) if ln.startswith(("-A", ":", "*"))]
    return state


@pytest.fixture(scope="session", autouse=True)
def machine_untouched():
    """After the whole suite the machine's namespaces, links, routes, firewall and names are unchanged."""
    before = machine_network()
    yield
    after = machine_network()
    assert after == before, f"the suite changed the machine's own network or name: before={before} after={after}"


# -- kernels --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def jupyter_path():
    tmp = tempfile.mkdtemp(prefix="netlab-kernels-")
    no_userns = os.path.join(os.path.dirname(__file__), "helpers", "no_userns.py")
    for name, argv in (("netlab-test", [sys.executable, "-m", "netlab_magic.jupyter.kernel"]),
                       ("netlab-no-userns", [sys.executable, no_userns])):
        spec_dir = os.path.join(tmp, "kernels", name)
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": [*argv, "-f", "{connection_file}"], "display_name": name,
                       "language": "python", "interrupt_mode": "signal"}, f)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + old if old else "")
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def _module_kernel():
    k = Kernel("netlab-test")
    yield k
    k.shutdown()


@pytest.fixture(scope="module")
def kernel(jupyter_path):
    """A netlab kernel (rootless through its user namespace, or root), shared by a module."""
    yield from _module_kernel()


@pytest.fixture(scope="module")
def kernel_b(jupyter_path):
    """A second netlab kernel beside ``kernel``: a second notebook of the same user."""
    yield from _module_kernel()


@pytest.fixture
def lab(kernel):
    """The module's kernel with a fresh, empty lab."""
    kernel.ok("%netlab reset")
    return kernel


@pytest.fixture
def fresh_kernel(jupyter_path):
    """A netlab kernel of the test's own (for tests that kill or restart it)."""
    k = Kernel("netlab-test")
    yield k
    try:
        k.shutdown()
    except Exception:
        pass




# -- widgets ----------------------------------------------------------------------------------------

@pytest.fixture
def fresh_poller(monkeypatch):
    """An idle widget poller and no cell running; widgets left open are closed after the test
    (the widget tests' modules use it for every test)."""
    from netlab_magic.widgets import _poll

    monkeypatch.setattr(_poll.POLLER, "executing", False)
    yield
    import ipywidgets

    ipywidgets.Widget.close_all()


@pytest.fixture
def sandbox_lab():
    """A tiny real lab of its own user and network namespaces (no netlab kernel): host, c1, c2, solo."""
    from support.sandboxlab import SandboxLab, can_sandbox

    missing = can_sandbox()
    if missing:
        pytest.skip(f"no sandbox lab here: {missing}")
    with SandboxLab() as lab:
        yield lab
