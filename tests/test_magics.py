"""The magics in a real kernel: the talk's Demo 1, typed as a learner types it."""

from __future__ import annotations

import re
import time

import pytest

from support.kernel_client import DEMO1, DEMO1_NS1, EXPECT_ROOTLESS, IS_ROOT


def build_demo1(k):
    k.ok(DEMO1)
    k.ok(DEMO1_NS1)


def test_lab_mode(kernel):
    mode = kernel.value("__import__('netlab_magic').Lab.current().mode")
    assert mode == ("root" if IS_ROOT else "rootless")
    if EXPECT_ROOTLESS:
        assert mode == "rootless"


def test_cells_run_on_an_empty_lab_host(lab):
    out = lab.ok("!ip -o link show; ip netns list").stdout
    assert re.findall(r"^\d+: (\S+?):", out, re.M) == ["lo"], out  # no eth0: no uplink
    routes = lab.ok("!ip route show").stdout
    assert routes.strip() == ""


def test_demo1_ping_both_ways(lab):
    r = lab.run("%netns host ping -c 1 -W 1 10.0.0.1")
    assert "(exit status" in r.stderr  # nothing there yet
    build_demo1(lab)
    r = lab.ok("%%netns ns1\nping -c 1 -W 1 10.0.0.2")
    assert "1 received" in r.stdout
    r = lab.ok("!ping -c 1 -W 1 10.0.0.1")
    assert "1 received" in r.stdout


def test_nc_chat_with_background_jobs(lab):
    build_demo1(lab)
    r = lab.ok("%%netns host --bg --name listener\nnc -l 8080")
    assert r.stdout.strip() == "[listener] started in host: nc -l 8080"
    lab.ok("%%netns ns1 --bg --name client\nsleep 0.3; nc 10.0.0.2 8080")
    time.sleep(0.8)
    lab.ok("%netlab send client hello from ns1")
    lab.ok("%netlab send listener hello from the host")
    deadline = time.time() + 5
    while time.time() < deadline:
        got_host = lab.ok("%netlab output listener").stdout
        got_ns1 = lab.ok("%netlab output client").stdout
        if "hello from ns1" in got_host and "hello from the host" in got_ns1:
            break
        time.sleep(0.2)
    assert got_host == "hello from ns1\n"
    assert got_ns1 == "hello from the host\n"
    jobs = lab.ok("%netlab jobs").results[0]
    assert re.search(r"listener\s+host\s+running\s+nc -l 8080", jobs), jobs
    assert lab.ok("%netlab stop client").stdout.startswith("[client] stopped")
    lab.ok("%netlab wait listener --timeout 5")
    assert "exit status 0" in lab.ok("%netlab jobs").results[0].split("listener")[1].splitlines()[0]


def test_one_line_connects_to_a_listener(lab):
    build_demo1(lab)
    lab.ok("%%netns host --bg --name l\nnc -l 8080")
    time.sleep(0.3)
    lab.ok("%netns ns1 echo 'hi  there' | nc -N 10.0.0.2 8080")
    lab.ok("%netlab wait l")
    assert lab.ok("%netlab output l").stdout == "hi  there\n"  # spacing and quotes kept


def test_output_until_waits_for_the_text_and_says_in_one_line_when_it_does_not_come(lab):
    lab.ok("%%netns host --bg --name slow\nsleep 1; echo hello; sleep 30")
    r = lab.ok("%netlab output slow --until hello")  # printed a second after the job started
    assert r.stdout == "hello\n", r
    r = lab.run("%netlab output slow --until goodbye -t 0.5")
    assert r.stdout == "hello\n" and r.usage_error == "job 'slow' has not printed 'goodbye' (in 0.5 s); what it printed is above", r
    lab.ok("%netlab stop slow")
    r = lab.run("%netlab output slow --until goodbye")  # it ended: no wait for a text that cannot come
    assert r.usage_error == "job 'slow' has not printed 'goodbye' (it ended); what it printed is above", r


def test_output_streams_live(lab):
    msg = lab.send("%%netns host\necho first; sleep 1.5; echo second")
    reply = lab.collect(msg)
    times = {text.strip(): t for t, text in reply.stream_times}
    assert times["second"] - times["first"] > 1.0, reply.stream_times


def test_output_is_whole_lines_in_the_order_a_terminal_shows_them(lab):
    """As ``!cmd`` shows them on a bare machine: stdout and stderr as one stream, in the order they
    were written; and a line written in pieces (ping's error message: ``ping: ``, ``connect``,
    ``: Network is unreachable``) is one output, not three."""
    r = lab.run("%netns host ping -c 1 -W 1 10.0.0.1")  # the lab's host has no route yet
    assert r.streams == [("stdout", "ping: connect: Network is unreachable\n"), ("stderr", "(exit status 2)\n")]
    r = lab.ok("%%netns host\necho one; echo two >&2; echo three")
    assert r.streams == [("stdout", "one\ntwo\nthree\n")]


def test_python_cell_opens_sockets_inside_the_namespace(lab):
    build_demo1(lab)
    lab.ok("%%netns host --bg --name web\nprintf 'HTTP/1.0 200 OK\\r\\n\\r\\nhello' | nc -l 8080")
    time.sleep(0.3)
    r = lab.ok("%%netns ns1 --python\nimport socket\n"
               "s = socket.create_connection(('10.0.0.2', 8080), timeout=3)\n"
               "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); print(s.recv(100).decode().split()[-1]); s.close()")
    assert r.stdout.strip() == "hello"
    # the main thread is back on the host afterwards: ns1's address is not local here
    assert "10.0.0.1" not in lab.ok("!ip -br addr").stdout


def test_non_zero_exit_is_shown_and_check_raises(lab):
    r = lab.run("%netns host false")
    assert r.stderr.strip() == "(exit status 1)" and r.error is None
    r = lab.run("%%netns host --check\nexit 3")
    assert r.usage_error == "%%netns host: the command failed (exit status 3)"


def test_timeout_stops_the_command(lab):
    t0 = time.monotonic()
    r = lab.run("%%netns host --timeout 1\necho $$; exec sleep 30")
    assert r.usage_error == "%%netns host: stopped after the 1 s timeout"
    assert time.monotonic() - t0 < 10
    assert not _alive(int(r.stdout.split()[0]), lab)


def test_interrupt_stops_the_command_within_a_second(lab):
    msg = lab.send("%%netns host\necho $$; exec sleep 30")
    pid = None
    deadline = time.time() + 10
    while pid is None and time.time() < deadline:
        m = lab.kc.get_iopub_msg(timeout=10)
        if m["parent_header"].get("msg_id") == msg and m["msg_type"] == "stream":
            pid = int(m["content"]["text"].split()[0])
    t0 = time.monotonic()
    lab.km.interrupt_kernel()
    reply = lab.collect(msg)
    assert time.monotonic() - t0 < 2.0
    assert reply.error and reply.error[0] == "KeyboardInterrupt"
    assert not _alive(pid, lab)
    assert lab.ok("%netns host echo still here").stdout.strip() == "still here"


def _alive(lab_pid: int, lab) -> bool:
    # The pid is as the lab sees it; ask the kernel (same pid namespace as its children).
    return lab.value(f"__import__('os').path.exists('/proc/{lab_pid}')")


def test_status_shows_the_lab(lab):
    build_demo1(lab)
    r = lab.ok("%netlab status")
    text = r.results[0]
    assert re.search(r"ns1\s+veth1\s+veth\s+UP\s+10\.0\.0\.1/24\s+veth2 in host", text), text
    assert "10.0.0.0/24 dev veth2 proto kernel scope link src 10.0.0.2" in text
    assert "<table>" in r.html[0]


def test_doctor(lab):
    text = lab.ok("%netlab doctor").results[0]
    assert re.search(r"mode\s+yes\s+(root|rootless)", text)
    assert "its own processes (PID 1: netlab-init)" in text, text  # the netlab kernel's PID namespace
    for tool in ("ip", "iptables", "ping", "nc", "curl", "tcpdump", "conntrack"):  # every tool the notebooks call
        assert re.search(rf"^\s*{tool}\s+yes", text, re.M), text


@pytest.mark.parametrize("cell, words", [
    ("%netlab --help", ["Usage:  %netlab COMMAND", "reset", "doctor", "wait [-t SECONDS] JOB"]),
    ("%netlab wait --help", ["Usage:  %netlab wait [OPTIONS] JOB", "-t, --timeout SECONDS"]),
    ("%netns --help", ["%netns [--python]", "--bg", "--timeout", "--check", "positional arguments"]),
    ("%%netns --help\ntrue", ["%netns [--python]"]),
])
def test_help_for_every_magic(lab, cell, words):
    out = lab.ok(cell).stdout
    for word in words:
        assert word in out, out


def test_shell_and_api_see_the_same_lab(lab):
    lab.ok("!ip netns add red\n!ip link add br9 type bridge")
    snap = lab.value("[(n.name, [i.name for i in n.interfaces]) for n in __import__('netlab_magic').Lab.current().snapshot().namespaces]")
    assert snap == [["host", ["lo", "br9"]], ["red", ["lo"]]]
    lab.ok("from netlab_magic import Lab\nLab.current().add_netns('blue')\nLab.current().host.add_bridge('br0')")
    out = lab.ok("!ip netns list; ip -br link show type bridge").stdout
    assert "blue" in out and "br0" in out


def test_reset_leaves_a_fresh_host(lab):
    build_demo1(lab)
    lab.ok("%%netns host --bg --name l\nsleep 300")
    lab.ok("!iptables -A INPUT -j ACCEPT")
    pid = lab.value("__import__('netlab_magic').Lab.current().jobs.get('l').proc.pid")
    lab.ok("%netlab reset")
    assert lab.ok("!ip netns list; ip -o link show | wc -l").stdout.split() == ["1"]
    assert "-A INPUT" not in lab.ok("!iptables-save").stdout
    assert lab.ok("%netlab jobs").results[0].endswith("(no jobs)")
    assert not lab.value(f"__import__('os').path.exists('/proc/{pid}')")
    build_demo1(lab)  # the same names again, right away
    assert "1 received" in lab.ok("%netns ns1 ping -c 1 -W 1 10.0.0.2").stdout
