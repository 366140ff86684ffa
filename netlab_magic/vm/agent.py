"""The guest's agent: runs the host's commands inside the VM and streams back what they print.

Started by the guest's init (``guest_init.sh``, PID 1, which is not the agent: when the agent
ends, init powers the VM off, and QEMU exits) as ``python3 -I -S agent.py PORT``, where PORT
is the virtio-serial device the host listens on. It speaks :mod:`protocol`: a command per
channel, in its own session (so a signal reaches its whole process group), its exit seen
through a pidfd, not through the end of its output (a listener it left in the background
may hold that open). End of file on the port (the host went away) ends the agent.

Stdlib only; it runs on the image's own Python, shared from the host read-only.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import protocol  # noqa: E402  (this directory, also when run as a script)


class Command:
    """One running command: its process, its open output pipes and its pidfd."""

    def __init__(self, channel: int, proc: subprocess.Popen) -> None:
        self.channel = channel
        self.proc = proc
        self.pidfd = os.pidfd_open(proc.pid)


class Agent:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.commands: dict[int, Command] = {}
        self.reader = protocol.Reader()

    def send(self, kind: int, channel: int, data: bytes = b"") -> None:
        for chunk in protocol.frames(kind, channel, data):
            protocol.write_all(self.port, chunk)

    def serve(self) -> None:
        self.sel.register(self.port, selectors.EVENT_READ, ("port", None))
        self.send(protocol.READY, protocol.AGENT, json.dumps({"kernel": os.uname().release}).encode())
        while True:
            for key, _ in self.sel.select():
                what, command = key.data
                if what == "port":
                    data = os.read(self.port, 65536)
                    if not data:
                        return  # the host went away
                    for kind, channel, payload in self.reader.feed(data):
                        self.handle(kind, channel, payload)
                elif what == "exit":
                    self.finish(command)
                else:
                    self.forward(key.fileobj, what, command)

    def handle(self, kind: int, channel: int, payload: bytes) -> None:
        if kind == protocol.RUN:
            self.start(channel, json.loads(payload))
            return
        command = self.commands.get(channel)
        if command is None:
            return  # it ended meanwhile
        if kind == protocol.SIGNAL:
            try:
                os.killpg(command.proc.pid, int(payload))
            except (ProcessLookupError, PermissionError):
                pass

    def start(self, channel: int, request: dict) -> None:
        netns = request.get("netns")
        enter = None
        if netns:
            if "/" in netns or netns in (".", "..") or not os.path.exists(os.path.join(NETNS_DIR, netns)):
                have = sorted(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else []
                self.send(protocol.NO_NETNS, channel, json.dumps(have).encode())
                return
            enter = _entering(os.path.join(NETNS_DIR, netns))
        try:
            proc = subprocess.Popen(
                request["argv"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT if request.get("merge_stderr") else subprocess.PIPE,
                start_new_session=True, close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                preexec_fn=enter,  # the agent has one thread: safe here
            )
        except subprocess.SubprocessError as err:  # entering the namespace failed in the child
            self.send(protocol.FAIL, channel, f"cannot enter namespace {netns!r}: {err}".encode())
            return
        except OSError as err:
            self.send(protocol.FAIL, channel, f"{request['argv'][0]}: {err.strerror}".encode())
            return
        command = Command(channel, proc)
        self.commands[channel] = command
        self.sel.register(proc.stdout, selectors.EVENT_READ, (protocol.OUT, command))
        if proc.stderr is not None:
            self.sel.register(proc.stderr, selectors.EVENT_READ, (protocol.ERR, command))
        self.sel.register(command.pidfd, selectors.EVENT_READ, ("exit", command))

    def forward(self, pipe, kind: int, command: Command) -> bool:  # noqa: ANN001
        data = os.read(pipe.fileno(), 65536)
        if not data:
            self.sel.unregister(pipe)
            pipe.close()
            return False
        self.send(kind, command.channel, data)
        return True

    def finish(self, command: Command) -> None:
        """The command exited: send what its pipes hold now, then its status.

        What it left in the background loses its output (its pipes are closed).
        """
        self.sel.unregister(command.pidfd)
        os.close(command.pidfd)
        for pipe, kind in ((command.proc.stdout, protocol.OUT), (command.proc.stderr, protocol.ERR)):
            if pipe is None:
                continue
            while not pipe.closed and selectors.select.select([pipe], [], [], 0)[0]:
                if not self.forward(pipe, kind, command):
                    break
            if not pipe.closed:
                self.sel.unregister(pipe)
                pipe.close()
        self.send(protocol.EXIT, command.channel, str(command.proc.wait()).encode())
        del self.commands[command.channel]


NETNS_DIR = "/run/netns"
_CLONE_NEWNS, _CLONE_NEWNET = 0x00020000, 0x40000000
_MS_REC, _MS_SLAVE, _MNT_DETACH = 0x4000, 0x80000, 2
_libc = None


def _entering(path: str):  # noqa: ANN202
    """What ``ip netns exec`` does before it runs a command, for the child to call: join the
    namespace at ``path``, then a mount namespace of its own with that namespace's /sys."""
    global _libc
    import ctypes  # here, not at the top: the agent answers sooner without it

    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)

    def enter() -> None:
        fd = os.open(path, os.O_RDONLY)
        if _libc.setns(fd, _CLONE_NEWNET) or _libc.unshare(_CLONE_NEWNS):
            raise OSError(ctypes.get_errno(), "cannot enter the namespace")
        os.close(fd)
        _libc.mount(b"none", b"/", None, _MS_REC | _MS_SLAVE, None)
        _libc.umount2(b"/sys", _MNT_DETACH)
        if _libc.mount(b"sysfs", b"/sys", b"sysfs", 0, None):
            raise OSError(ctypes.get_errno(), "cannot mount the namespace's /sys")

    return enter


def main() -> None:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    port = os.open(sys.argv[1], os.O_RDWR)
    Agent(port).serve()


if __name__ == "__main__":
    main()
