"""Stopping and waiting for processes (netlab_magic.linux.process), with real processes, no lab."""

from __future__ import annotations

import os
import signal
import subprocess

from netlab_magic.linux.process import stop_groups, wait_exit
from support.waiting import wait_for


def _group(script: str) -> subprocess.Popen:
    """``bash -c SCRIPT`` leading a process group of its own, as the lab's jobs do."""
    return subprocess.Popen(["bash", "-c", script], start_new_session=True)


def test_wait_exit_reaps_a_process_that_ends():
    proc = _group("sleep 0.2; exit 3")
    assert wait_exit(proc, 10) is True
    assert proc.returncode == 3


def test_wait_exit_gives_up_on_a_process_that_runs_on():
    proc = _group("sleep 30")
    try:
        assert wait_exit(proc, 0.2) is False
        assert proc.returncode is None and os.waitpid(proc.pid, os.WNOHANG) == (0, 0)  # not reaped
    finally:
        proc.kill()
    assert wait_exit(proc, 10) is True
    assert proc.returncode == -signal.SIGKILL


def test_wait_exit_of_a_process_reaped_already():
    proc = _group("exit 4")
    proc.wait()
    assert wait_exit(proc, 10) is True
    assert proc.returncode == 4


def test_stop_groups_interrupts_then_kills_what_ignores_it_and_its_stragglers():
    obeys = _group("sleep 30")
    deaf = _group("trap '' INT; sleep 30 & wait")
    assert wait_for(lambda: _sleeps_in_group(deaf.pid)), "the group's background sleep did not start"
    stop_groups([obeys, deaf], grace=0.3)
    assert obeys.returncode == -signal.SIGINT
    assert deaf.returncode == -signal.SIGKILL
    # its orphan was killed with the group: gone once init reaps it
    assert wait_for(lambda: not _sleeps_in_group(deaf.pid))


def _sleeps_in_group(pgid: int) -> list[int]:
    """Live ``sleep`` processes of process group ``pgid`` (zombies are dead already)."""
    out = subprocess.run(["pgrep", "-g", str(pgid), "-r", "R,S,D,T", "sleep"], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]
