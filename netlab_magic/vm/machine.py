"""The VM's life: QEMU started in the background, the agent's hello, a crash seen, a clean stop.

QEMU runs as the calling user (no root, no KVM needed: TCG), with ``-nic none`` (no network to
the outside, ever), the image's own ``/`` shared read-only, and one virtio-serial port wired to
one end of a socket pair (QEMU inherits it: ``-chardev socket,fd=``). Its console and its stderr
are memory files this process reads back: the VM has no file on disk, so nothing is left behind
whenever this process dies, even during the boot. ``setpriv --pdeathsig KILL``
ties QEMU to the thread that started it: when this process dies, ``kill -9`` included, the
kernel kills QEMU; a clean :meth:`Machine.stop` closes the port, the guest's agent ends, its
init powers the VM off and QEMU exits (``-no-reboot``).

A ``-machine microvm`` guest boots in about two seconds under TCG; without ``tsc_early_khz=`` it
hung about one boot in eleven calibrating its clock against a PIT it does not have, so the
host's TSC frequency is passed (FINDINGS: the feasibility run).

The kernel's launcher starts the VM before ``ipykernel`` loads (:meth:`Machine.hand_over`), and the
kernel it ``exec``\\ s takes that QEMU over (:meth:`Machine.take_over`): the same process, so the
same parent thread for ``--pdeathsig``, the socket and the logs inherited as descriptors.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import NetlabError
from . import protocol
from .client import AgentClient
from .image import Image, init_archive

QEMU = "qemu-system-x86_64"
#: Guest memory (MiB) and QEMU's translation cache (MiB): together ~320 MiB resident.
MEMORY_MIB = 512
TB_SIZE_MIB = 64
#: How long the guest gets to boot and answer, under TCG on a busy machine.
READY_TIMEOUT = 60.0
#: What the kernel's launcher hands the kernel it execs: a started VM (:meth:`Machine.hand_over`).
HANDOVER_ENV = "NETLAB_VM_STARTED"
#: What the guest kernel skips at boot, all of it hardening or self-tests that guard the guest kernel
#: against itself, none of it what a lab shows (its network stack, netfilter and namespaces are
#: untouched). Under TCG each was a measured cost:
#:
#: * its crypto self-tests (``cryptomgr.notests``, ``crypto_kdf108_init``): initcall_debug gave
#:   crypto_algapi_init 0.57 s and crypto_kdf108_init 0.11 s of a ~3 s boot; the lab uses no kernel crypto;
#: * ``rodata=off``: no read-only remapping of its own text and data and no W+X check of every
#:   page table at the end of the boot (0.15 s to ``/init``);
#: * ``init_on_alloc=0``: Debian zeroes every page and slab object the kernel allocates (its
#:   hardening default); user pages are zeroed anyway. With ``rodata=off``: ready 5.08 -> 4.70 s
#:   (7 interleaved rounds of boots; benchmarks/README.md, session 8), most of it in the server's start.
BOOT_SHORTCUTS = ("cryptomgr.notests", "initcall_blacklist=crypto_kdf108_init", "rodata=off", "init_on_alloc=0")
_KERNEL_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s*")  # "[    1.364750] " before a kernel message


class VMError(NetlabError):
    """The VM could not start, or stopped: one line, with the last words of its console."""


def tsc_khz(cpuinfo: str | None = None) -> int | None:
    """The host CPU's clock in kHz from /proc/cpuinfo (the guest's TSC runs at it under TCG)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            try:
                return int(float(value) * 1000)
            except ValueError:
                return None
    return None


def qemu_argv(image: Image, port_fd: int, console_fd: int, initrd: str | None = None) -> list[str]:
    """QEMU's command line: microvm, TCG, no network, the root shared read-only, the server's port.

    ``port_fd`` is QEMU's end of the agent's socket pair, ``console_fd`` the file the guest's
    console is written to (both inherited). What differs between kernels (their Python, this
    package's directory) is not here but in :func:`boot_word`, so that one snapshot of the boot
    (:mod:`.snapshot`) serves them all."""
    append = ["console=ttyS0", "quiet", "panic=-1", *BOOT_SHORTCUTS, f"netlab.modules={image.modules}"]
    khz = tsc_khz()
    if khz:
        append.append(f"tsc_early_khz={khz}")
    return [
        QEMU, "-machine", "microvm", "-accel", f"tcg,tb-size={TB_SIZE_MIB}", "-cpu", "max", "-smp", "1",
        "-m", str(MEMORY_MIB), "-nodefaults", "-no-user-config", "-nic", "none", "-display", "none",
        "-no-reboot", "-monitor", "none", "-serial", f"file:/proc/self/fd/{console_fd}",
        "-kernel", str(image.vmlinux), "-initrd", initrd or str(image.initrd), "-append", " ".join(append),
        "-chardev", f"socket,id=agent,fd={port_fd},server=off",
        # one port (the agent) and the console's reserved one: the default 31 ports' 64 queues made
        # the guest's virtio_console probe 80 ms, 24 ms now
        "-device", "virtio-serial-device,max_ports=2", "-device", "virtserialport,chardev=agent,name=agent",
        "-fsdev", "local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-device,fsdev=fs0,mount_tag=root",
    ]


def boot_word(python: str, package: str) -> bytes:
    """The line the guest's init waits for on the agent's port (guest_init.sh): the interpreter that
    runs the lab's server, the directory that holds this package, this machine's clock in seconds
    (a VM restored from a snapshot sets its clock by it) and 32 random bytes for the guest's pool."""
    return f"{python} {package} {round(time.time())} {secrets.token_hex(32)}\n".encode()


def _guest_paths(*paths: str) -> None:
    for path in paths:
        if any(c in path for c in " ,\n"):
            raise VMError(f"the guest cannot use a path with a space or comma: {path}")


class _Child:
    """A QEMU this process started before an ``exec`` (the launcher's): waited for by its pid, as a Popen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped already: it ended
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is None:
            try:
                ended = os.pidfd_open(self.pid)
            except ProcessLookupError:
                return self.poll() or 0
            try:
                if not select.select([ended], [], [], timeout)[0]:
                    raise subprocess.TimeoutExpired(QEMU, timeout or 0)
            finally:
                os.close(ended)
        code = self.poll()
        return 0 if code is None else code


class Machine:
    """One VM: :meth:`start` returns at once, :meth:`wait_ready` gives the agent's client."""

    def __init__(self, image: Image, python: str | None = None) -> None:
        self.image = image
        # this kernel's interpreter as it was started (a venv's python: its pyvenv.cfg, its site-packages)
        self.python = python or sys.executable
        self.package = str(Path(__file__).resolve().parents[2])  # the directory that holds netlab_magic
        self.proc: subprocess.Popen | _Child | None = None
        self.client: AgentClient | None = None
        self.started_at = 0.0
        self.ready_after: float | None = None  #: seconds from start to the agent's hello
        self._port: socket.socket | None = None  # our end of the agent's socket pair, until the hello
        self._logs: dict[str, int] = {}  # "console", "qemu.err" -> the memory file QEMU writes it to
        #: The snapshot of the boot this VM was restored from (:mod:`.snapshot`), or None: it booted.
        self.restored_from: Path | None = None
        #: Why QEMU refused the snapshot (its error line), when it did and the VM booted instead.
        self.restore_refused: str | None = None

    def start(self, restore_from: Path | None = None, *, word: bool = True,
              monitor: socket.socket | None = None) -> None:
        """Start QEMU in the background (returns at once); raise :class:`VMError` if it cannot start.

        ``restore_from``: a snapshot of the boot (:mod:`.snapshot`) that QEMU loads instead of
        booting; where QEMU refuses it, :meth:`wait_ready` boots afresh. ``word=False`` and a
        ``monitor`` (QEMU's human monitor on that socket) are how the snapshot is taken: the guest
        waits at its snapshot point for a word that does not come.
        """
        qemu = shutil.which(QEMU)
        if qemu is None:
            raise VMError(f"{QEMU} is not installed: apt-get install -y qemu-system-x86")
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise VMError("setpriv (util-linux) is not installed: it ties QEMU's life to this kernel's")
        _guest_paths(self.python, self.package, str(self.image.modules))
        self._forget_logs()
        self._port, qemu_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for name in ("console", "qemu.err"):  # QEMU writes them (-serial file:, stderr); we read them back
            self._logs[name] = os.memfd_create(f"netlab-vm-{name}", os.MFD_CLOEXEC)
        # the image's initramfs, and this package's /init after it: in memory too
        initrd = os.memfd_create("netlab-initrd", 0)
        protocol.write_all(initrd, self.image.initrd.read_bytes() + init_archive())
        argv = qemu_argv(self.image, qemu_end.fileno(), self._logs["console"], f"/proc/self/fd/{initrd}")
        inherited = [initrd, qemu_end.fileno(), self._logs["console"]]
        state = None
        if restore_from is not None:
            try:
                state = os.open(restore_from, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                restore_from = None
            else:
                argv += ["-incoming", f"fd:{state}"]
                inherited.append(state)
        if monitor is not None:
            argv += ["-chardev", f"socket,id=monitor,fd={monitor.fileno()},server=off",
                     "-mon", "chardev=monitor,mode=readline"]
            inherited.append(monitor.fileno())
        self.restored_from = restore_from
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [setpriv, "--pdeathsig", "KILL", "--", *argv],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._logs["qemu.err"],
                start_new_session=True,  # Jupyter's interrupt (SIGINT to the kernel's group) must not reach it
                close_fds=True, pass_fds=inherited,
            )
        finally:  # QEMU's copies only: when QEMU ends, our end of the pair reads the end of file
            os.close(initrd)
            qemu_end.close()
            if state is not None:
                os.close(state)
        if word:  # it waits in the socket until the guest's init reads it
            self._port.sendall(boot_word(self.python, self.package))

    def hand_over(self) -> None:
        """Let the program this process ``exec``\\ s next take this started VM over (:meth:`take_over`).

        Its socket and logs stay open across the ``exec``; :data:`HANDOVER_ENV` says which they are.
        """
        if self.proc is None or self._port is None:
            raise VMError("only a VM that started and was not waited for can be handed over")
        fds = {"port": self._port.detach(), **self._logs}  # this process lets go of them
        self._port, self._logs = None, {}
        for fd in fds.values():
            os.set_inheritable(fd, True)
        os.environ[HANDOVER_ENV] = json.dumps({"pid": self.proc.pid, "fds": fds, "started_at": self.started_at,
                                               "image": str(self.image.directory),
                                               "restored_from": self.restored_from and str(self.restored_from)})

    def take_over(self) -> bool:
        """Become the VM this process's launcher started and handed over (:meth:`hand_over`), if any.

        Instead of :meth:`start`, once per process; False if there is none, or if it boots
        another image than this machine's (then it is stopped).
        """
        text = os.environ.pop(HANDOVER_ENV, None)
        if not text or self.proc is not None:
            return False
        try:
            state = json.loads(text)
            fds = {name: int(fd) for name, fd in state["fds"].items()}
            pid, self.started_at = int(state["pid"]), float(state["started_at"])
            self.restored_from = Path(state["restored_from"]) if state.get("restored_from") else None
            self.proc = _Child(pid)
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        try:
            for fd in fds.values():  # not to the kernel's own children
                os.set_inheritable(fd, False)
            self._port = socket.socket(fileno=fds.pop("port"))
            self._logs = fds
        except OSError:
            self.stop()
            return False
        if state.get("image") != str(self.image.directory):
            self.stop()
            return False
        return True

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> AgentClient:
        """Wait for the agent's hello; raise :class:`VMError` (one line) if QEMU ends or time runs out."""
        if self.client is not None:
            return self.client
        if self.proc is None or self._port is None:
            raise VMError("the VM was not started")
        deadline = self.started_at + timeout
        client = AgentClient(self._port, on_lost=self.describe_end)
        self._port = None
        try:
            exit_fd = os.pidfd_open(self.proc.pid)
        except ProcessLookupError:  # it ended, and was waited for already
            client.close()
            raise VMError(self.describe_end()) from None
        try:
            answered = client.wait_hello(lambda: max(0.0, deadline - time.monotonic()), exit_fd)
        finally:
            os.close(exit_fd)
        if not answered:
            client.close()
            code = self.proc.poll()
            if code is not None:
                if self.restored_from is not None and code > 0:  # QEMU refused the snapshot: boot afresh, once
                    self.restore_refused = self._qemu_error() or self.describe_end()
                    self.start()
                    return self.wait_ready(timeout)
                raise VMError(self.describe_end())
            self.kill()
            raise VMError(f"the VM did not answer within {timeout:g} s: {self._console_tail()}")
        self.ready_after = time.monotonic() - self.started_at
        self.client = client
        return client

    def _log(self, name: str) -> str:
        fd = self._logs.get(name)
        if fd is None:
            return ""
        return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")

    def console(self) -> str:
        """What the guest has written to its console so far."""
        return self._log("console")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _qemu_error(self) -> str:
        text = self._log("qemu.err").strip()
        return text.splitlines()[-1] if text else ""

    def _console_tail(self) -> str:
        """The last meaningful line the guest wrote to its console (a panic, init's complaint)."""
        lines = [_KERNEL_TIME.sub("", ln).strip() for ln in self._log("console").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("---[ end")]
        for line in reversed(lines):
            if "netlab-init:" in line or "Kernel panic" in line:
                return line
        return lines[-1] if lines else "no console output"

    def describe_end(self) -> str:
        """One line: how the VM ended (QEMU's status and the guest's last words)."""
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(1.0)  # the port closes a moment before QEMU exits
            except subprocess.TimeoutExpired:
                pass
        if code is None:
            return f"the VM's agent stopped answering: {self._console_tail()}"
        if code < 0:  # killed from outside: the console's last line says nothing about why
            return f"the VM stopped (QEMU killed by signal {-code})"
        return f"the VM stopped (QEMU exit status {code}): {self._qemu_error() or self._console_tail()}"

    def kill(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, 9)  # type: ignore[union-attr]
            self.proc.wait()  # type: ignore[union-attr]

    def stop(self, grace: float = 3.0) -> None:
        """End the VM: close the agent's port (the guest powers off), SIGKILL if it lingers; forget its files."""
        if self.client is not None:
            self.client.close()
        if self._port is not None:
            self._port.close()
            self._port = None
        if self.proc is not None:
            try:
                self.proc.wait(grace if self.client is not None else 0)
            except subprocess.TimeoutExpired:
                pass
            self.kill()
        self._forget_logs()

    def _forget_logs(self) -> None:
        for fd in self._logs.values():
            os.close(fd)
        self._logs.clear()
