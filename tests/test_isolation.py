"""A lab is a container: its cells see and signal only their own processes, and name only their own host.

Two real netlab kernels of one user, as in a workshop: kernel A runs the talk's listener, kernel
B stops "its" listener the way a learner would on their own terminal (``pkill``, ``killall``,
``kill`` of a pid read from ``ps -e``). The machine has processes of the same names (started by
this test, outside every lab): none of them may be touched either.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile

import pytest

from support.kernel_client import Kernel

LISTENER = "%%netns host --bg --name listener\nnc -l 8080"


@pytest.fixture
def machine_processes():
    """An ``nc`` and a ``sleep`` of the machine's (an nc on a unix socket: no traffic anywhere)."""
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen(["nc", "-lU", os.path.join(tmp, "sock")]),
                 subprocess.Popen(["sleep", "6019"])]
        try:
            yield procs
        finally:
            for p in procs:
                p.kill()
                p.wait()


def listed(k: Kernel, cell: str) -> list[str]:
    """The command lines ``ps -e`` lists in ``cell`` (``!`` or ``%%netns``)."""
    return k.ok(cell).stdout.strip().splitlines()


def test_kernel_b_cannot_stop_kernel_a_jobs_nor_the_machine_processes(lab, kernel_b, machine_processes):
    lab.ok(LISTENER)
    kernel_b.ok("%netlab reset")
    kernel_b.ok(LISTENER)  # B's own listener, which B's commands must stop
    seen = listed(kernel_b, "!ps -e -o pid=,comm=")
    r = kernel_b.ok("!pkill -x nc; killall sleep; killall nc; "
                    "for p in $(ps -e -o pid=,comm= | awk '$2 == \"nc\" || $2 == \"sleep\" {print $1}'); "
                    "do kill $p; done; true")
    job = "__import__('netlab_magic').Lab.current().jobs.get('listener')"
    assert kernel_b.value(f"{job}.wait(5)"), seen  # B's own commands reach B's own listener
    assert not lab.value(f"{job}.wait(0.5)"), (lab.value(f"{job}.status"), seen, r.stdout, r.stderr)
    assert [p.poll() for p in machine_processes] == [None, None], seen
    lab.ok("%netlab stop listener")


def test_ps_lists_only_the_lab_processes(lab, kernel_b, machine_processes):
    lab.ok("%%netns host --bg --name listener\nnc -l 8081")
    lab.ok("!ip netns add ns1")
    for cell in ("!ps -e -o pid=,args=", "%%netns host\nps -e -o pid=,args=", "%%netns ns1\nps -e -o pid=,args="):
        mine, theirs = " ".join(listed(lab, cell)), " ".join(listed(kernel_b, cell.replace("ns1", "host")))
        assert "nc -l 8081" in mine, mine  # the lab's own listener is there
        for text in (mine, theirs):
            assert "sleep 6019" not in text and "nc -lU" not in text, text  # no process of the machine
            assert "pytest" not in text, text
        assert "nc -l 8081" not in theirs, theirs  # nor another kernel's
    # and Python in cells still reads the kernel's own /proc/self
    assert lab.value("len(__import__('os').listdir('/proc/self/fd')) > 3")
    assert lab.value("__import__('os').readlink('/proc/self/exe')").startswith("/")


def test_hostname_in_a_cell_renames_only_the_lab(lab):
    machine = socket.gethostname()
    out = lab.ok("!hostname labhost-x && hostname\n%netns host hostname\nimport socket; print(socket.gethostname())")
    assert out.stdout.split() == ["labhost-x"] * 3, out.stdout + out.stderr
    assert socket.gethostname() == machine
    assert subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip() == machine
    lab.ok("%netlab reset")
    assert lab.ok("!hostname").stdout.strip() == machine  # a fresh host has the machine's name again


def test_a_container_has_its_own_processes_and_host_name(lab):
    """As Docker gives them: PID 1 is the command, ``ps`` lists the container's processes only,
    the host name is the short id or ``--hostname``, ``docker top`` lists them from the host."""
    cid = lab.ok("%docker run -d --name box busybox sleep 1000").stdout.strip()
    lab.ok("%docker run -d --name named --hostname web-1 busybox sh -c "
           "'(setsid sleep 6029 >/dev/null 2>&1 &); exec sleep 1000'")
    assert lab.ok("%docker exec box hostname").stdout.strip() == cid[:12]
    assert lab.ok("%docker exec named hostname").stdout.strip() == "web-1"
    assert lab.ok("%docker inspect -f '{{.Config.Hostname}}' named").stdout.strip() == "web-1"
    ps = lab.ok("%docker exec box ps -e -o pid=,args=").stdout.split("\n")
    assert [line.split(None, 1) for line in ps if line.strip()][:1] == [["1", "sleep 1000"]], ps
    assert not any("6029" in line or "nc" in line for line in ps), ps  # not the other container's, not the lab's
    top = lab.ok("%docker top named").stdout.splitlines()
    assert top[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"], top
    assert sorted(line.split(None, 7)[-1] for line in top[1:]) == ["sleep 1000", "sleep 6029"], top
    pid = lab.ok("%docker inspect -f '{{.State.Pid}}' named").stdout.strip()
    assert lab.ok(f"!ps -o args= -p {pid}").stdout.strip() == "sleep 1000"  # State.Pid, as the lab's host numbers it
    lab.ok("%docker rm -f named")
    assert "6029" not in lab.ok("!ps -e -o args=").stdout  # its daemonized process went with it
