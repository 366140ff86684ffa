"""A real JupyterHub on this machine, the way The Littlest JupyterHub runs a class.

Used by ``tests/test_hub.py`` (a few learners, isolation and cleanup) and by
``benchmarks/deploy.py`` (more learners, timings). Everything here is what an instructor's
machine does: local system users (``useradd``), JupyterHub with its ``configurable-http-proxy``
and the ``LocalProcessSpawner`` (each learner's server runs as that learner), learners logged
in and their servers started through the Hub's REST API, and each learner's notebook run
through *their own* server's kernels API and websocket, exactly as JupyterLab talks to it.

Nothing here sends a packet off the machine: the Hub, the proxy and the learners' servers
listen on 127.0.0.1; the labs have no uplink.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .kernel_client import Reply

REPO = Path(__file__).resolve().parents[2]
#: The GECOS comment of the users made here: only such users are reused or removed.
LEARNER_COMMENT = "netlab hub test learner"


# -- what the Hub needs -----------------------------------------------------------------------

def chp_command() -> str | None:
    """The ``configurable-http-proxy`` scripts/setup.sh put next to this Python, or one on PATH."""
    beside = Path(sys.executable).parent / "configurable-http-proxy"
    if os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("configurable-http-proxy")


def missing() -> str | None:
    """Why the Hub cannot run here (a reason to skip), or None."""
    if os.geteuid() != 0:
        return "a JupyterHub with local system users runs as root"
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed (scripts/setup.sh --extras test installs it)"
    if not chp_command():
        return "configurable-http-proxy is not installed (scripts/setup.sh --extras test installs it with npm)"
    if not shutil.which("useradd") or not shutil.which("setpriv"):
        return "useradd and setpriv are needed to make the learners"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- learners: local system users --------------------------------------------------------------

@dataclass(frozen=True)
class Learner:
    name: str
    uid: int
    gid: int
    home: str


def ensure_learners(names: list[str], home_root: str) -> list[Learner]:
    """Make (or reuse) system users ``names`` with homes under ``home_root``; refuse users not ours."""
    os.makedirs(home_root, mode=0o755, exist_ok=True)
    learners = []
    for name in names:
        home = os.path.join(home_root, name)
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            # A real login shell: IPython runs `!cmd` with the user's $SHELL (nologin would refuse)
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", home,
                            "--shell", "/bin/bash", "--comment", LEARNER_COMMENT, name],
                           check=True, capture_output=True)
            entry = pwd.getpwnam(name)
        else:
            if entry.pw_gecos != LEARNER_COMMENT:
                raise RuntimeError(f"user {name} exists and was not made by this test: not touching it")
            if (entry.pw_dir, entry.pw_shell) != (home, "/bin/bash"):
                subprocess.run(["usermod", "--home", home, "--shell", "/bin/bash", name], check=True, capture_output=True)
        os.makedirs(home, mode=0o700, exist_ok=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        learners.append(Learner(name, entry.pw_uid, entry.pw_gid, home))
    return learners


def existing_learners(names: list[str]) -> list[Learner]:
    """The users among ``names`` that :func:`ensure_learners` made and that still exist."""
    found = []
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_gecos == LEARNER_COMMENT:
            found.append(Learner(name, entry.pw_uid, entry.pw_gid, entry.pw_dir))
    return found


def remove_learners(names: list[str]) -> None:
    """Remove the users made by :func:`ensure_learners` (only those carrying its comment)."""
    for learner in existing_learners(names):
        subprocess.run(["userdel", learner.name], capture_output=True)


def learner_processes(uids: set[int]) -> list[int]:
    """PIDs of live processes whose real, effective or saved uid is one of ``uids``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("State:") and line.split()[1] == "Z":
                        break
                    if line.startswith("Uid:"):
                        if set(map(int, line.split()[1:4])) & uids:
                            found.append(int(entry))
                        break
        except OSError:
            pass
    return found


# -- the learners' Python ------------------------------------------------------------------------

def learner_python(workdir: str, probe: Learner) -> tuple[str, str]:
    """(python, PYTHONPATH) the learners' servers run: this venv, or a copy they can read.

    The learners' servers run this virtualenv's Python with the package under test first on
    their path. A repository under a directory other users cannot enter (``/root``) is copied
    under ``workdir`` first, as scripts/test-rootless.sh does; the copy's kernelspec is rewritten
    to start the copy's Python.
    """
    import netlab_magic

    package_root = str(Path(netlab_magic.__file__).resolve().parent.parent)
    python = os.path.join(sys.prefix, "bin", "python")
    probe_cmd = ["setpriv", f"--reuid={probe.uid}", f"--regid={probe.gid}", "--clear-groups", "--",
                 "env", "-i", f"PYTHONPATH={package_root}", python, "-c",
                 "import jupyterhub.singleuser, netlab_magic.jupyter.kernel, ipykernel"]
    if subprocess.run(probe_cmd, capture_output=True, cwd="/").returncode == 0:
        return python, package_root
    copy = os.path.join(workdir, "venv")
    os.makedirs(workdir, exist_ok=True)
    subprocess.run(["cp", "-a", sys.prefix, copy], check=True)
    shutil.copytree(os.path.join(package_root, "netlab_magic"), os.path.join(workdir, "src", "netlab_magic"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    spec = Path(copy, "share", "jupyter", "kernels", "netlab", "kernel.json")
    if spec.exists():
        data = json.loads(spec.read_text())
        data["argv"][0] = os.path.join(copy, "bin", "python")
        spec.write_text(json.dumps(data, indent=1))
    subprocess.run(["chmod", "-R", "a+rX", workdir], check=True)
    return os.path.join(copy, "bin", "python"), os.path.join(workdir, "src")


# -- the Hub -----------------------------------------------------------------------------------

CONFIG = """\
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.pid_file = {workdir!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + {workdir!r} + "/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {workdir!r} + "/cookie_secret"
c.JupyterHub.pid_file = {workdir!r} + "/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
# Local system users, each learner's server a process of their own (The Littlest JupyterHub's
# model, with its systemd units replaced by plain processes).
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set({learners!r})
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{python!r}, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {{
    "PYTHONPATH": {pythonpath!r},
    "PATH": {bindir!r} + ":/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
}}
# The instructor's script: a service whose token may create users, their tokens and servers.
c.JupyterHub.services = [{{"name": "workshop", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "workshop",
    "scopes": ["admin:users", "admin:servers", "tokens", "read:users"],
    "services": ["workshop"],
}}]
c.JupyterHub.concurrent_spawn_limit = 200
c.JupyterHub.active_server_limit = 0
"""


class HubError(RuntimeError):
    pass


class Hub:
    """A JupyterHub process (as root), its proxy, and the learners' servers it spawns."""

    def __init__(self, workdir: str, learners: list[Learner], python: str, pythonpath: str) -> None:
        self.workdir = workdir
        self.learners = learners
        self.port = free_port()
        self.token = secrets.token_hex(32)
        self.url = f"http://127.0.0.1:{self.port}"
        os.makedirs(workdir, exist_ok=True)
        self.config = os.path.join(workdir, "jupyterhub_config.py")
        with open(self.config, "w") as f:
            f.write(CONFIG.format(
                port=self.port, hub_port=free_port(), proxy_api_port=free_port(), chp=chp_command(),
                workdir=workdir, learners=sorted(l.name for l in learners), python=python,
                pythonpath=pythonpath, bindir=os.path.dirname(python), token=self.token))
        self.log_path = os.path.join(workdir, "jupyterhub.log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JPY_"))}
        env["PATH"] = f"{os.path.dirname(sys.executable)}:{env.get('PATH', '/usr/bin:/bin')}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", self.config], cwd=self.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"JupyterHub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
                status, _ = asyncio.run(self.api("GET", "/"))
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise HubError(f"JupyterHub did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM to the Hub, as `systemctl stop jupyterhub` does; it stops every server and the proxy."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise HubError(f"JupyterHub did not stop within {timeout:.0f} s:\n{self.log_tail()}")

    # -- REST -----------------------------------------------------------------------------------

    async def request(self, method: str, path: str, body=None, token: str | None = None,
                      timeout: float = 60) -> tuple[int, object]:
        """One HTTP request through the proxy (``path`` from the root: /hub/api/..., /user/NAME/...)."""
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

        AsyncHTTPClient.configure(None, max_clients=1000)  # a whole class at once (tornado's default: 10)
        req = HTTPRequest(self.url + path, method=method,
                          headers={"Authorization": f"token {token or self.token}"},
                          body=None if body is None and method in ("GET", "DELETE") else json.dumps(body or {}),
                          request_timeout=timeout, allow_nonstandard_methods=True)
        try:
            resp = await AsyncHTTPClient().fetch(req)
        except HTTPClientError as err:
            resp = err.response
            if resp is None:
                raise
        text = resp.body.decode() if resp.body else ""
        try:
            return resp.code, json.loads(text) if text else None
        except ValueError:
            return resp.code, text

    async def api(self, method: str, path: str, body=None, token: str | None = None) -> tuple[int, object]:
        return await self.request(method, "/hub/api" + path, body, token)

    async def log_in(self, name: str) -> str:
        """Create the learner in the Hub (if new) and a token of theirs, as a login would; return it."""
        status, _ = await self.api("GET", f"/users/{name}")
        if status == 404:
            status, body = await self.api("POST", f"/users/{name}")
            if status != 201:
                raise HubError(f"creating {name}: {status} {body}")
        status, body = await self.api("POST", f"/users/{name}/tokens",
                                      {"note": "workshop", "expires_in": 3600, "scopes": [f"access:servers!user={name}",
                                                                                      f"servers!user={name}"]})
        if status != 201:
            raise HubError(f"a token for {name}: {status} {body}")
        return body["token"]

    async def start_server(self, name: str, token: str, timeout: float = 120) -> None:
        """``POST /users/NAME/server`` with the learner's own token, then wait until it is ready."""
        status, body = await self.api("POST", f"/users/{name}/server", token=token)
        if status not in (201, 202, 400):  # 400: already running
            raise HubError(f"starting {name}'s server: {status} {body}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = await self.api("GET", f"/users/{name}")
            server = (body or {}).get("servers", {}).get("", {}) if status == 200 else {}
            if server.get("ready"):
                return
            if status == 200 and not server.get("pending") and not server:
                raise HubError(f"{name}'s server did not start:\n{self.log_tail()}")
            await asyncio.sleep(0.3)
        raise HubError(f"{name}'s server was not ready within {timeout:.0f} s:\n{self.log_tail()}")


# -- a kernel in a learner's server, over its websocket -------------------------------------

class RemoteKernel:
    """A kernel started through a learner's server (``/user/NAME/api/kernels``) and driven over its websocket."""

    def __init__(self, hub: Hub, name: str, token: str) -> None:
        self.hub, self.name, self.token = hub, name, token
        self.base = f"/user/{name}/api"
        self.session = uuid.uuid4().hex
        self.kernel_id: str | None = None
        self.ws = None
        self.ready_seconds: float | None = None

    async def start(self, kernel_name: str = "netlab", timeout: float = 120) -> RemoteKernel:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        t0 = time.monotonic()
        status, body = await self.hub.request("POST", f"{self.base}/kernels", {"name": kernel_name}, token=self.token)
        if status != 201:
            raise HubError(f"{self.name}: starting a {kernel_name} kernel: {status} {body}\n{self.hub.log_tail()}")
        self.kernel_id = body["id"]
        url = self.hub.url.replace("http", "ws", 1) + f"{self.base}/kernels/{self.kernel_id}/channels?session_id={self.session}"
        self.ws = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.token}"},
                                                      request_timeout=timeout), max_message_size=64 << 20)
        deadline = time.monotonic() + timeout
        while True:  # a kernel_info_reply means the kernel answers on its shell channel
            msg_id = self._send("kernel_info_request", {})
            try:
                while True:
                    msg = await self._recv(max(0.1, min(2.0, deadline - time.monotonic())))
                    if msg and msg["msg_type"] == "kernel_info_reply" and msg["parent_header"].get("msg_id") == msg_id:
                        self.ready_seconds = time.monotonic() - t0
                        return self
            except asyncio.TimeoutError:
                if time.monotonic() > deadline:
                    raise HubError(f"{self.name}: the kernel did not answer within {timeout:.0f} s") from None

    def _send(self, msg_type: str, content: dict, channel: str = "shell") -> str:
        msg_id = uuid.uuid4().hex
        self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": self.name, "session": self.session, "msg_type": msg_type,
                       "version": "5.3", "date": datetime.datetime.now(datetime.timezone.utc).isoformat()},
            "parent_header": {}, "metadata": {}, "content": content, "channel": channel, "buffers": []}))
        return msg_id

    async def _recv(self, timeout: float) -> dict | None:
        raw = await asyncio.wait_for(self.ws.read_message(), timeout)
        if raw is None:
            raise HubError(f"{self.name}: the kernel's websocket closed")
        if isinstance(raw, bytes):  # a message with binary buffers (widgets): not ours to read
            return None
        msg = json.loads(raw)
        msg.setdefault("msg_type", msg.get("header", {}).get("msg_type"))
        return msg

    async def execute(self, code: str, timeout: float = 120) -> Reply:
        reply = Reply(code=code)
        t0 = time.monotonic()
        msg_id = self._send("execute_request", {"code": code, "silent": False, "store_history": True,
                                                "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
        deadline = t0 + timeout
        idle = replied = False
        while not (idle and replied):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise HubError(f"{self.name}: a cell did not finish within {timeout:.0f} s: {code[:80]!r}")
            msg = await self._recv(remaining)
            if not msg or msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_reply":
                replied = True
            elif reply.take(msg):
                idle = True
        reply.seconds = time.monotonic() - t0
        return reply

    async def ok(self, code: str, timeout: float = 120) -> Reply:
        reply = await self.execute(code, timeout)
        if reply.error or "UsageError" in reply.stderr:
            raise HubError(f"{self.name}: cell failed: {code[:200]!r}\n{reply.error} {reply.stderr[-2000:]}")
        return reply

    async def shutdown(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.kernel_id:
            await self.hub.request("DELETE", f"{self.base}/kernels/{self.kernel_id}", token=self.token)


# -- the workbook ------------------------------------------------------------------------------

EXERCISE_03 = [
    "!ip netns add ns4\n!ip link add veth5 type veth peer name veth6\n!ip link set veth5 netns ns4\n"
    "!ip link set veth6 master bridge0\n!ip link set dev veth6 up",
    "%%netns ns4\nip link set dev lo up\nip addr add 10.0.0.5/24 dev veth5\nip link set dev veth5 up",
]


def notebook_cells(path: str | Path, solutions: dict[str, list[str]] | None = None) -> list[str]:
    """The code cells of a notebook, each empty exercise cell replaced by its ``solutions``."""
    nb = json.loads(Path(path).read_text())
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if solutions and source.strip() in solutions:
            cells.extend(solutions[source.strip()])
        else:
            cells.append(source)
    return cells


def notebook_03() -> list[str]:
    """Demo 2 (notebook 03), with its exercise solved: the cells a learner runs."""
    return notebook_cells(REPO / "notebooks" / "03-bridge.ipynb", {"# your commands here": EXERCISE_03})


async def run_cells(kernel: RemoteKernel, cells: list[str], timeout: float = 120) -> list[Reply]:
    return [await kernel.execute(code, timeout) for code in cells]


# -- what is left on the machine -------------------------------------------------------------

def uptime() -> float:
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def started(pid: int) -> float:
    """When the process started, in seconds since boot."""
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")


def netns_users(inodes: set[int], born_before: float) -> list[int]:
    """PIDs anywhere on the machine, born before ``born_before``, still inside one of these network namespaces."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/net").st_ino in inodes and started(int(entry)) < born_before:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def wait_until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def process_tree(root: int) -> dict[int, tuple[int, int, int, str]]:
    """pid -> (real, effective, saved uid, command line) for ``root`` and all its descendants."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[int, int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        ppid = int(fields["PPid"])
        r, e, s = map(int, fields["Uid"].split()[:3])
        children.setdefault(ppid, []).append(pid)
        info[pid] = (r, e, s, cmd)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in info:
            tree[pid] = info[pid]
            todo.extend(children.get(pid, []))
    return tree
