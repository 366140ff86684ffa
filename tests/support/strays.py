"""Stray processes that outlive the cell that made them, each in a way people (and daemons) do it.

Every stray is a ``sleep`` with a unique argument, so the test can find its pid anywhere on
the machine by its command line and prove that it survives on its own before proving that the
lab kills it. (A plain ``(sleep 600 &)`` in a ``!`` cell dies of SIGHUP within a second by
itself, when IPython closes the cell's terminal: a test built on it would prove nothing. So
the strays start from ``%netns`` cells, which end when bash ends and hang nothing up.)
"""

from __future__ import annotations

import os
import random
import time

from .kernel_client import Kernel


def stray_cells(tag: int) -> list[tuple[str, str]]:
    """(label, cell) pairs; each cell leaves one ``sleep TAGn`` running after it returns."""
    return [
        ("setsid -f", f"%netns host setsid -f sleep {tag}1 >/dev/null 2>&1"),
        ("nohup &", f"%%netns host\nnohup sleep {tag}2 >/dev/null 2>&1 &"),
        ("double fork", f"%%netns host\nsh -c '(sleep {tag}3 >/dev/null 2>&1 &) &'"),
        ("in a namespace deleted afterwards",
         f"!ip netns add stray2\n%netns stray2 (setsid sleep {tag}4 >/dev/null 2>&1 &)\n!ip netns del stray2"),
        ("in an unnamed namespace of its own", f"%netns host (setsid unshare -n sleep {tag}5 >/dev/null 2>&1 &)"),
        # (a process daemonized by a container no longer outlives it: a container has a PID namespace of its
        # own, which Linux empties when its PID 1 ends, as with Docker; see test_isolation.py)
    ]


def find(tag: int) -> dict[str, int]:
    """``sleep TAGn`` argument -> pid, for every stray of ``tag`` alive on the machine."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if len(argv) >= 2 and argv[0].endswith(b"sleep") and argv[1].startswith(str(tag).encode()) and state != "Z":
            found[argv[1].decode()] = int(entry)
    return found


def start_strays(k: Kernel) -> tuple[int, dict[str, int]]:
    """Leave every kind of stray in ``k``'s lab; check they survive a while on their own."""
    tag = random.randrange(100000, 999999)
    cells = stray_cells(tag)
    for _, cell in cells:
        k.ok(cell)
    deadline = time.time() + 10
    while len(find(tag)) < len(cells) and time.time() < deadline:
        time.sleep(0.1)
    strays = find(tag)
    assert len(strays) == len(cells), (f"not every stray started: {sorted(strays)} of "
                                       f"{[label for label, _ in cells]}")
    time.sleep(1.5)  # a stray that dies by itself proves nothing
    assert find(tag) == strays, "a stray died on its own: the test would prove nothing"
    return tag, strays


def gone(tag: int, timeout: float = 10.0) -> bool:
    deadline = time.time() + timeout
    while find(tag) and time.time() < deadline:
        time.sleep(0.1)
    return not find(tag)
