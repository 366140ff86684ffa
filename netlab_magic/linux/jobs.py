"""Background jobs: a command left running (``nc -l 8080``) while the next cells go on; started as in :mod:`.process`.

A job is a process started inside a lab namespace with its stdin kept open (so ``nc -l``
does not see end-of-file, and :meth:`Job.send` can type into it) and its output collected
by a reader thread into a bounded buffer. A cell whose shell ended while something it put
in the background (``nc -l 8080 &``) still holds its output becomes a job too, a
*background* one: its output keeps being read, and ``%netlab stop`` ends it. Jobs die with
the lab: ``%netlab reset``, kernel restart and ``kill -9`` of the kernel (the keeper sweeps
the lab).
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field

from ..errors import AlreadyExists, InvalidName, NotFound
from .process import describe_exit, stop_group, stop_groups

#: Output kept per job; older output is dropped first.
OUTPUT_LIMIT = 1 << 20

#: How long a job gets between SIGINT and SIGKILL when it is stopped.
GRACE_OF_STOP = 0.5


@dataclass
class Job:
    """One background process in the lab."""

    name: str
    netns: str
    command: str
    proc: subprocess.Popen
    #: A cell's leftovers: ``proc`` (its shell) has exited, what it left in the background runs on.
    background: bool = False
    started: float = field(default_factory=time.time)
    _output: bytearray = field(default_factory=bytearray, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _readers: list[threading.Thread] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                reader = threading.Thread(target=self._read, args=(pipe,), name=f"netlab-job-{self.name}",
                                          daemon=True)
                reader.start()
                self._readers.append(reader)

    def _read(self, pipe) -> None:  # noqa: ANN001
        while True:
            try:
                chunk = pipe.read1(65536)
            except (OSError, ValueError):  # closed by stop()
                break
            if not chunk:
                break
            with self._lock:
                self._output += chunk
                if len(self._output) > OUTPUT_LIMIT:
                    del self._output[: len(self._output) - OUTPUT_LIMIT]

    @property
    def running(self) -> bool:
        """The process runs (for a background job: something still holds the cell's output)."""
        if self.background:
            return any(r.is_alive() for r in self._readers)
        return self.proc.poll() is None

    @property
    def status(self) -> str:
        if self.background:
            return "running in the background" if self.running else "ended"
        code = self.proc.poll()
        if code is None:
            return "running"
        return describe_exit(code)

    def output(self, wait: float = 0.05) -> str:
        """Everything the job printed so far (stdout and stderr, in order)."""
        if not self.running:
            for reader in self._readers:
                reader.join(wait)
        else:
            time.sleep(wait)  # let the reader catch up with what just arrived
        with self._lock:
            return self._output.decode(errors="replace")

    def output_until(self, text: str, timeout: float) -> tuple[str, bool]:
        """Wait up to ``timeout`` seconds until the job has printed ``text`` (or has ended); return
        everything it printed so far, and whether ``text`` is in it."""
        deadline = time.monotonic() + timeout
        while True:
            ended = not self.running  # before reading: what an ended job printed is all there
            printed = self.output(0.05 if ended else 0.02)  # while it runs, output() pauses: the poll's pace
            if text in printed or ended or time.monotonic() >= deadline:
                return printed, text in printed

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; True if it has."""
        if self.background:
            deadline = time.monotonic() + timeout
            for reader in self._readers:
                reader.join(max(0.0, deadline - time.monotonic()))
        else:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return not self.running

    def send(self, text: str) -> None:
        """Write ``text`` to the job's stdin (a newline is added if missing)."""
        if not self.running or self.proc.stdin is None:
            raise NotFound(f"job {self.name!r} is not running ({self.status})")
        if not text.endswith("\n"):
            text += "\n"
        try:
            self.proc.stdin.write(text.encode())
            self.proc.stdin.flush()
        except BrokenPipeError as err:
            raise NotFound(f"job {self.name!r} stopped reading its input") from err

    def stop(self, grace: float = GRACE_OF_STOP) -> None:
        """Stop the job (SIGINT, then SIGKILL after ``grace`` seconds; 0: SIGKILL at once) and wait for it."""
        self._close_stdin()
        stop_group(self.proc, grace=grace if self.running else 0)
        self._join()

    def _close_stdin(self) -> None:
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def _join(self, deadline: float | None = None) -> None:
        """Let the readers take in what the job printed last (until ``deadline``, default 1 s from now).

        A reader whose pipe is still held by something outside the job's process group (a
        ``setsid`` child) stays behind; it ends when the lab's sweep kills what holds the pipe.
        """
        deadline = time.monotonic() + 1.0 if deadline is None else deadline
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))


class JobTable:
    """The lab's jobs by name."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._counter = 0

    def new_name(self) -> str:
        self._counter += 1
        while f"job{self._counter}" in self._jobs:
            self._counter += 1
        return f"job{self._counter}"

    def check_free(self, name: str) -> None:
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            raise InvalidName(f"{name!r} is not a valid job name: use letters, digits, - and _")
        job = self._jobs.get(name)
        if job is not None and job.running:
            raise AlreadyExists(f"job {name!r} is already running; stop it first with %netlab stop {name}")

    def add(self, job: Job) -> Job:
        old = self._jobs.pop(job.name, None)
        if old is not None:
            old.stop()
        self._jobs[job.name] = job
        return job

    def get(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            have = ", ".join(self._jobs) or "none"
            raise NotFound(f"no job called {name!r} (jobs: {have})") from None

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def stop(self, name: str) -> Job:
        job = self.get(name)
        job.stop()
        return job

    def remove(self, name: str) -> None:
        """Stop job ``name`` if it runs, and forget it."""
        job = self._jobs.pop(name, None)
        if job is not None:
            job.stop()

    def stop_all(self) -> None:
        """Stop every job at once (one shared grace period) and forget them."""
        jobs = list(self._jobs.values())
        self._jobs.clear()
        for job in jobs:
            job._close_stdin()
        stop_groups([job.proc for job in jobs], GRACE_OF_STOP)
        deadline = time.monotonic() + 1.0
        for job in jobs:
            job._join(deadline)
