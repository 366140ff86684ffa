"""Driving real IPython kernels through jupyter_client, as JupyterLab does, for the tests."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IS_ROOT = os.geteuid() == 0
EXPECT_ROOTLESS = os.environ.get("NETLAB_EXPECT_ROOTLESS") == "1"


def helper_kernelspec(root: Path, name: str, launcher: str, monkeypatch: Any) -> None:
    """A kernelspec ``name`` whose kernel starts through ``launcher`` (a script of tests/helpers),
    written under ``root`` and found first on JUPYTER_PATH for the test (``monkeypatch``)."""
    spec = root / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, launcher, "-f", "{connection_file}"], "display_name": name,
        "language": "python", "interrupt_mode": "signal"}))
    old = os.environ.get("JUPYTER_PATH")
    monkeypatch.setenv("JUPYTER_PATH", str(root) + (os.pathsep + old if old else ""))


@dataclass
class Reply:
    """What one cell produced, from its messages on the iopub channel (:meth:`take`)."""

    code: str = ""
    stdout: str = ""
    stderr: str = ""
    results: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    error: tuple[str, str] | None = None
    traceback: list[str] = field(default_factory=list)
    stream_times: list[tuple[float, str]] = field(default_factory=list)
    #: Each stream message as it came: (stdout or stderr, its text); one each is one output stored.
    streams: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def take(self, msg: dict) -> bool:
        """Add one of the cell's iopub messages; True once the kernel says it is idle again."""
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            if content["name"] == "stdout":
                self.stdout += content["text"]
            else:
                self.stderr += content["text"]
            self.stream_times.append((time.monotonic(), content["text"]))
            self.streams.append((content["name"], content["text"]))
        elif kind in ("execute_result", "display_data"):
            self.results.append(content["data"].get("text/plain", ""))
            if "text/html" in content["data"]:
                self.html.append(content["data"]["text/html"])
        elif kind == "error":
            self.error = (content["ename"], content["evalue"])
            self.traceback = content.get("traceback", [])
        return kind == "status" and content["execution_state"] == "idle"

    @property
    def text(self) -> str:
        """stdout, then each result's text/plain on a line of its own."""
        return self.stdout + "".join(r + "\n" for r in self.results)

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

    def send(self, code: str, subshell: str | None = None) -> str:
        if subshell is None:
            return self.kc.execute(code)
        msg = self.kc.session.msg("execute_request", {
            "code": code, "silent": False, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        msg["header"]["subshell_id"] = subshell
        self.kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def create_subshell(self) -> str:
        """Ask the kernel for a subshell (ipykernel 7) on the control channel, as a client may."""
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        while True:
            reply = self.kc.control_channel.get_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]["subshell_id"]

    def collect(self, msg_id: str, timeout: float = 60) -> Reply:
        reply = Reply()
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") == msg_id and reply.take(msg):
                return reply

    def run(self, code: str, timeout: float = 60, subshell: str | None = None) -> Reply:
        return self.collect(self.send(code, subshell), timeout)

    def ok(self, code: str, timeout: float = 60, subshell: str | None = None) -> Reply:
        """Run a cell that must not fail."""
        reply = self.run(code, timeout, subshell)
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
