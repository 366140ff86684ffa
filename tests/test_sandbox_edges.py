"""The sandbox at its edges: no way out, nothing held alive, nothing left behind, cells that return.

Each test drives a real kernel, as root and (in the unprivileged run) rootless.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from support import strays
from support.kernel_client import DEMO1, DEMO1_NS1


# -- ways out ------------------------------------------------------------------------------------

def test_a_subshell_runs_its_cells_in_the_lab(lab):
    """ipykernel 7 subshells run cells on threads of their own: those must be in the lab too."""
    machine = socket.socket()
    machine.bind(("127.0.0.1", 0))  # a server on the machine's own loopback
    machine.listen()
    port = machine.getsockname()[1]
    try:
        lab.ok(DEMO1)
        sid = lab.create_subshell()
        here = "import os; print(os.stat('/proc/thread-self/ns/net').st_ino)"
        assert lab.ok(here, subshell=sid).stdout == lab.ok(here).stdout
        routes = lab.ok("!ip route", subshell=sid).stdout
        assert routes == lab.ok("!ip route").stdout and "default" not in routes, routes
        assert lab.ok("!ip netns list", subshell=sid).stdout.split()[0] == "ns1"
        r = lab.ok(f"import socket; s = socket.socket(); s.settimeout(2); print(s.connect_ex(('127.0.0.1', {port})))",
                   subshell=sid)
        assert r.stdout.strip() != "0", "a subshell reached the machine's 127.0.0.1"
        lab.ok("%netlab reset")
        assert lab.ok(here, subshell=sid).stdout == lab.ok(here).stdout, "the subshell did not follow the reset"
        assert lab.ok("!ip netns list", subshell=sid).stdout.strip() == ""
    finally:
        machine.close()


def test_sys_shows_the_namespace_it_is_read_from(lab):
    machine = set(os.listdir("/sys/class/net")) - {"lo"}
    assert machine, "the machine should have interfaces of its own"
    cwd = lab.value("__import__('os').getcwd()")
    lab.ok(DEMO1)
    lab.ok(DEMO1_NS1)
    assert set(lab.ok("!ls /sys/class/net").stdout.split()) == {"lo", "veth2"}
    assert set(lab.ok("%netns ns1 ls /sys/class/net").stdout.split()) == {"lo", "veth1"}
    assert set(lab.ok("!ip netns exec ns1 ls /sys/class/net").stdout.split()) == {"lo", "veth1"}
    mac = lab.ok("%netns ns1 cat /sys/class/net/veth1/address").stdout.strip()
    assert mac in lab.ok("%netns ns1 ip link show veth1").stdout
    for iface in machine:  # nothing of the machine, not even to write to as root
        r = lab.run(f"!test -e /sys/class/net/{iface} && echo VISIBLE || echo hidden")
        assert r.stdout.strip() == "hidden", iface
    assert lab.value("__import__('os').getcwd()") == cwd, "entering ns1 moved the kernel's working directory"
    lab.ok("%netlab reset")
    assert lab.ok("!ls /sys/class/net").stdout.split() == ["lo"]


# -- nothing held alive ----------------------------------------------------------------------------

def test_ip_netns_del_frees_the_namespace_whatever_the_lab_read_before(lab):
    """`ip netns del ns1` frees ns1 and its veth peer, as without the lab, after status, API and widget."""
    lab.ok(DEMO1)
    lab.ok(DEMO1_NS1)
    lab.ok("%netlab status")
    lab.ok("from netlab_magic import Lab\n"
           "_lab = Lab.current(); _lab.netns('ns1').links(); _lab.netns('ns1').sysctl('net.ipv4.ip_forward');"
           "_lab.host.links(); _lab.snapshot()")
    # a live topology view, as the browser announces it (a widget without a view does not poll)
    lab.ok("from netlab_magic.widgets import topology\n_t = topology(interval=0.05)\n"
           "_t._handle_custom_msg({'netlab': 'view', 'id': 'test', 'alive': True}, [])\n"
           "import time; time.sleep(0.3)")
    assert lab.value("_t.refreshes") >= 2, "the view was not polled"
    try:
        lab.ok("!ip netns del ns1")
        deadline = time.time() + 10
        while "veth2" in lab.ok("!ip -o link").stdout and time.time() < deadline:
            time.sleep(0.1)
        assert "veth2" not in lab.ok("!ip -o link").stdout, "the lab kept the deleted ns1 (and veth2) alive"
        lab.ok(DEMO1)  # the talk's pair again: no "File exists"
        assert lab.ok("!ip -o link show veth2").stdout
    finally:
        lab.ok("_t.close()")


# -- nothing left behind ---------------------------------------------------------------------------

def test_reset_kills_every_stray(lab):
    tag, _ = strays.start_strays(lab)
    lab.ok("%netlab reset")
    assert strays.gone(tag, timeout=3), f"strays survived the reset: {strays.find(tag)}"


def test_reset_stops_forty_stubborn_jobs_at_once(lab):
    """Jobs that ignore SIGINT are stopped together, not one grace period after another (20 s)."""
    for i in range(40):
        lab.ok(f"%%netns host --bg --name stubborn{i}\ntrap '' INT; exec sleep 1000")
    for i in range(10):  # cells whose setsid'd child holds their output: background jobs out of any group
        lab.ok("%%netns host\n(setsid sleep 1000 &)\necho started")
    assert lab.ok("%netlab jobs").results[0].count("running in the background") == 10
    time.sleep(0.5)
    t0 = time.monotonic()
    lab.ok("%netlab reset")
    assert time.monotonic() - t0 < 10
    assert "stubborn" not in lab.ok("%netlab jobs").results[0]


# -- cells that return -----------------------------------------------------------------------------

@pytest.mark.parametrize("background", ["sleep 1000 &", "(setsid sleep 1000 >/dev/null &)",
                                        "nc -l 8080 &"])
def test_a_cell_that_leaves_a_background_process_returns(lab, background):
    r = lab.run(f"%%netns host\n{background}\necho started", timeout=15)
    assert r.error is None and r.usage_error is None, r
    assert r.stdout.strip() == "started"
    if background.startswith("nc"):
        job = r.stderr.split("]")[0].lstrip("[")
        assert job in lab.ok("%netlab jobs").results[0]
        lab.ok("%netns host echo hello listener | nc -N 127.0.0.1 8080")
        deadline = time.time() + 5
        while "hello listener" not in lab.ok(f"%netlab output {job}").stdout and time.time() < deadline:
            time.sleep(0.1)
        assert "hello listener" in lab.ok(f"%netlab output {job}").stdout
        lab.ok(f"%netlab stop {job}")


def test_an_interrupt_is_one_line(lab):
    msg = lab.send("%%netns host\necho go; exec sleep 30")
    deadline = time.time() + 10
    while time.time() < deadline:
        m = lab.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") == msg and m["msg_type"] == "stream":
            break
    lab.km.interrupt_kernel()
    reply = lab.collect(msg)
    assert reply.error and reply.error[0] == "KeyboardInterrupt"
    assert len(reply.traceback) == 1, reply.traceback
    assert "process.py" not in reply.traceback[0] and "selectors" not in reply.traceback[0]


# -- arguments that mean what they say -------------------------------------------------------------

@pytest.mark.parametrize("cell, message", [
    ("%%netns 'ns1\necho hi", "%netns: No closing quotation"),
    ("%netlab output 'x", "%netlab output: No closing quotation"),
    ("%netns host --name x echo hi", "--name names a background job: add --bg"),
    ("%netns host --frobnicate echo hi", "%netns: unknown option '--frobnicate'"),
    ("%netlab status extra", "%netlab status takes no argument"),
    ("%netlab output a b", "%netlab output takes one job name"),
    ("%netlab wait j -t soon", "%netlab: --timeout takes SECONDS, not 'soon'"),
])
def test_bad_arguments_are_one_line(lab, cell, message):
    r = lab.run(cell)
    assert r.usage_error is not None and r.usage_error.startswith(message), r
    assert "Traceback" not in r.stderr and not r.stdout


def test_the_line_reaches_bash_as_typed(lab):
    lab.ok("i = 99")
    assert lab.ok("%netns host for i in 1 2; do echo $i; done").stdout.split() == ["1", "2"]
    assert lab.ok("%netns host echo {i} $HOME_NOT_SET-x").stdout.strip() == "{i} -x"
    assert lab.ok("%netns host --timeout 5 -- echo -n dash").stdout == "dash"


def test_a_sysctl_value_the_kernel_refuses_is_a_netlab_error(lab):
    r = lab.run("from netlab_magic import Lab\nLab.current().host.sysctl('net.ipv4.ip_forward', 'abc')")
    assert r.error is not None and r.error[0] == "InvalidArgument", r
    assert "net.ipv4.ip_forward" in r.error[1] and "'abc'" in r.error[1]
