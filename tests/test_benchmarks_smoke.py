"""Smoke test of the benchmark suite: ``benchmarks/run.py --quick`` completes and prints its table.

No timing assertions: the numbers depend on the machine. The suite needs root (real, or in a
user namespace) because it builds labs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the benchmarks build labs: needs root "
                                "(or root in a user namespace)")


def test_quick_run_prints_every_table():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--n", "2"],
                          capture_output=True, text=True, timeout=110, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for title in ("1. Build an N-namespace star", "2. Teardown", "3. Entering a namespace",
                  "4. Counters of 1,000 iptables rules", "5. Workbook", "6. lab.snapshot() vs the same dumps raw",
                  "7. Kernel start"):
        assert title in out, out
    for label in ("(a) bash loop of ip", "(b) ip -batch", "(c) pyroute2", "netlab per-call API",
                  "netlab build_star()", "(d) netlink floor", "lab.reset()", "%netns ns1 true",
                  "iptables-save -c"):
        assert label in out, out
    assert "| 2 | (a) bash loop of ip (talk's way)" in out
