"""Shared fixtures: real Jupyter kernels, and a guard that the machine's own network is untouched.

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
from dataclasses import dataclass, field

import pytest

IS_ROOT = os.geteuid() == 0
EXPECT_ROOTLESS = os.environ.get("NETLAB_EXPECT_ROOTLESS") == "1"


# -- the machine stays as it was ----------------------------------------------------------------

def machine_network() -> dict[str, list[str]]:
    """What the machine's own network looks like: named namespaces, links, firewall rules."""
    def lines(argv: list[str]) -> list[str]:
        if not shutil.which(argv[0]):
            return []
        r = subprocess.run(argv, capture_output=True, text=True)
        return sorted(r.stdout.splitlines()) if r.returncode == 0 else []

    state = {
        "netns": lines(["ip", "netns", "list"]),
        "links": [ln.split(":")[1].strip().split("@")[0] for ln in lines(["ip", "-o", "link", "show"])],
        "routes": lines(["ip", "route", "show", "table", "all"]),
    }
    if IS_ROOT:
        state["iptables"] = [ln for ln in lines(["iptables-save"]) if ln.startswith(("-A", ":", "*"))]
    return state


@pytest.fixture(scope="session", autouse=True)
def machine_untouched():
    """After the whole suite the machine's namespaces, links, routes and firewall are unchanged."""
    before = machine_network()
    yield
    after = machine_network()
    assert after == before, f"the suite changed the machine's own network: before={before} after={after}"


# -- kernels --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def jupyter_path():
    tmp = tempfile.mkdtemp(prefix="netlab-kernels-")
    no_userns = os.path.join(os.path.dirname(__file__), "helpers", "no_userns.py")
    for name, argv in (("netlab-test", [sys.executable, "-m", "netlab_magic.kernel"]),
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


@dataclass
class Reply:
    """What one cell produced."""

    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    error: tuple[str, str] | None = None
    stream_times: list[tuple[float, str]] = field(default_factory=list)

    @property
    def usage_error(self) -> str | None:
        """The one-line UsageError IPython printed, if any."""
        for line in self.stderr.splitlines():
            if line.startswith("UsageError: "):
                return line[len("UsageError: "):]
        return None


class Kernel:
    """A real IPython kernel driven through jupyter_client."""

    def __init__(self, kernel_name: str) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    @property
    def pid(self) -> int:
        return self.km.provisioner.process.pid

    def send(self, code: str) -> str:
        return self.kc.execute(code)

    def collect(self, msg_id: str, timeout: float = 60) -> Reply:
        import time

        reply = Reply()
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    reply.stdout += content["text"]
                else:
                    reply.stderr += content["text"]
                reply.stream_times.append((time.monotonic(), content["text"]))
            elif kind in ("execute_result", "display_data"):
                reply.results.append(content["data"].get("text/plain", ""))
                if "text/html" in content["data"]:
                    reply.html.append(content["data"]["text/html"])
            elif kind == "error":
                reply.error = (content["ename"], content["evalue"])
            elif kind == "status" and content["execution_state"] == "idle":
                return reply

    def run(self, code: str, timeout: float = 60) -> Reply:
        return self.collect(self.send(code), timeout)

    def ok(self, code: str, timeout: float = 60) -> Reply:
        """Run a cell that must not fail."""
        reply = self.run(code, timeout)
        assert reply.error is None and reply.usage_error is None, (code, reply)
        return reply

    def value(self, expr: str):
        """Evaluate a Python expression in the kernel and return it (through JSON)."""
        reply = self.ok(f"import json as _j; print(_j.dumps({expr}))")
        return json.loads(reply.stdout.strip().splitlines()[-1])

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=False)


@pytest.fixture(scope="module")
def kernel(jupyter_path):
    """A netlab kernel (rootless through its user namespace, or root), shared by a module."""
    k = Kernel("netlab-test")
    yield k
    k.shutdown()


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


DEMO1 = """\
!ip netns add ns1
!ip link add veth1 type veth peer name veth2
!ip link set veth1 netns ns1
!ip addr add 10.0.0.2/24 dev veth2
!ip link set dev veth2 up
"""

DEMO1_NS1 = """\
%%netns ns1
ip addr add 10.0.0.1/24 dev veth1
ip link set dev veth1 up
ip link set dev lo up
"""
