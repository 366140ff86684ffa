"""The lab in a real VM: a kernel whose namespaces are refused (Docker's default seccomp filter,
tests/helpers/seccomp_no_userns.py) boots the VM by itself, runs the talk's Demo 1 in it through
``!cmd`` and ``%%netns``, says so in ``%netlab doctor``; a VM killed under it is one line and the
next cell gets a fresh one; ``kill -9`` of the kernel leaves no QEMU behind. Bad input is one line.

Runs as an unprivileged user (the rootless pass), where the VM's pieces are installed
(``scripts/setup.sh --vm``); each boot takes 2-10 s under TCG. The whole workbook runs in the VM
there too (scripts/test-rootless.sh: nbval with ``NETLAB_BACKEND=vm``), which checks what its
cells do (status, traces, ``%docker``, conntrack, the checks); this file keeps what no notebook
does: a kernel that chooses the VM itself, bad input, an interrupt, a killed VM, ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from support.kernel_client import IS_ROOT, Kernel, helper_kernelspec
from support.pids import parents, processes
from support.waiting import wait_for
from netlab_magic.backend import vm_ready
from netlab_magic.vm import image, machine, remote, snapshot

pytestmark = [
    pytest.mark.skipif(IS_ROOT, reason="the VM runs as an unprivileged user: see the rootless pass"),
    pytest.mark.skipif(vm_ready() is not None, reason=f"the VM's pieces are not installed: {vm_ready()}"),
]

SECCOMP = os.path.join(os.path.dirname(__file__), "helpers", "seccomp_no_userns.py")
BOOT = 120  # seconds a cell may wait for a boot on a loaded 2-core machine


@pytest.fixture(scope="module")
def vm_kernel(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    helper_kernelspec(tmp_path_factory.mktemp("spec"), "netlab-seccomp-vm", SECCOMP, mp)
    mp.delenv("NETLAB_BACKEND")  # chosen by the kernel itself
    k = Kernel("netlab-seccomp-vm")
    try:
        yield k
    finally:
        k.shutdown()
        mp.undo()


def _running_qemu(entry: str) -> bool:
    with open(f"/proc/{entry}/stat") as f:
        stat = f.read()
    # a zombie is gone: only its exit status waits for a reaper
    return "(qemu-system-x86" in stat and stat.rsplit(")", 1)[1].split()[0] != "Z" \
        and os.stat(f"/proc/{entry}").st_uid == os.getuid()


def qemu_pids() -> list[int]:
    """Running QEMU processes of this user."""
    return processes(_running_qemu)


def _descends(pid: int, ancestor: int) -> bool:
    family = parents()
    while pid > 1:
        if pid == ancestor:
            return True
        pid = family.get(pid, 0)
    return False


def test_demo1_in_the_vm_that_the_kernel_chose_itself(vm_kernel):
    k = vm_kernel
    k.ok("!ip netns add ns1\n!ip link add veth1 type veth peer name veth2\n!ip link set veth1 netns ns1\n"
         "!ip addr add 10.0.0.2/24 dev veth2 && ip link set dev veth2 up", timeout=BOOT)
    r = k.ok("%%netns ns1\nip addr add 10.0.0.1/24 dev veth1\nip link set dev veth1 up\nip link set dev lo up\n"
             "ping -c 1 -W 5 10.0.0.2")
    assert "1 packets transmitted, 1 received" in r.stdout, r
    assert "10.0.0.1/24" in k.ok("%netns ns1 ip -br addr show veth1").stdout
    assert k.ok("%netns ns1 ls /sys/class/net").stdout.split() == ["lo", "veth1"]  # ns1's own /sys
    assert "veth2" in k.ok("!ls /sys/class/net").stdout.split()
    lines = k.ok("dev = 'veth2'\nx = !ip -br link show $dev\nprint(x)").stdout  # $dev: a Python variable
    assert "veth2@" in lines and "UP" in lines
    assert k.ok("!uname -r").stdout.strip() == image.find().kernel_release  # Debian's kernel, not the machine's
    doctor = k.ok("%netlab doctor").results[0]
    assert "vm: the kernel refuses namespaces here, so the lab runs in a small VM" in doctor, doctor
    assert "vm: the lab is a small virtual machine" in doctor, doctor
    # the launcher's VM, taken over by the kernel: restored from the boot's snapshot vm prepare saved
    assert "restored from the snapshot of its boot" in doctor, doctor
    assert "Demo 2's FORWARD drop" not in doctor  # br_netfilter is loaded in the guest
    assert "its other sockets reach what this kernel's process reaches (the kernel refuses namespaces here): the " \
           "machine's or container's network, not the lab" in doctor, doctor  # no empty namespace where they are refused


def test_shell_commands_write_to_a_terminal_as_ipythons_do(vm_kernel):
    """``!cmd`` writes to a terminal of IPython's size (pexpect's 24 rows, 80 columns), as in-kernel (``ss``
    lays out its columns for it, lines end in \\r\\n); ``%netns`` and ``x = !cmd`` write to a pipe, as in-kernel."""
    k = vm_kernel
    assert k.ok("!stty size < /dev/stdout; test -t 1 && echo terminal", timeout=BOOT).stdout == "24 80\r\nterminal\r\n"
    assert k.ok("%netns host test -t 1 || echo pipe").stdout == "pipe\n"
    assert k.ok("x = !test -t 1 || echo pipe\nprint(x)").stdout == "['pipe']\n"


STARTS = """
import os
from netlab_magic.vm.lab import VMLab
def _started(path):  # clock ticks since the machine booted: /proc/PID/stat's 22nd field
    return int(open(path).read().rsplit(")", 1)[1].split()[19])
def _starts():
    threads = [_started(f"/proc/self/task/{t}/stat") for t in os.listdir("/proc/self/task") if int(t) != os.getpid()]
    return _started(f"/proc/{VMLab.existing().machine.proc.pid}/stat"), min(threads), "NETLAB_VM_STARTED" in os.environ
"""


def test_the_kernels_launcher_starts_the_vm_before_ipykernel_loads(vm_kernel):
    """QEMU starts before the kernel has its first thread (ipykernel's heartbeat and IOPub threads
    start before it loads the extension), and the kernel's lab took that VM over: the one the
    first cell ran in, its handover gone from the environment its commands inherit."""
    k = vm_kernel
    k.ok("!true", timeout=BOOT)
    k.ok(STARTS)
    qemu_started, first_thread_started, handover_left = k.value("_starts()")
    assert qemu_started < first_thread_started
    assert not handover_left
    assert len([pid for pid in qemu_pids() if _descends(pid, k.pid)]) == 1


def test_bad_input_is_one_line_in_the_vm(vm_kernel):
    k = vm_kernel
    r = k.run("%%netns ns9\ntrue")
    assert r.usage_error == "namespace 'ns9' does not exist (the lab has: host, ns1)", r
    r = k.run("%netns bad/name true")
    assert r.usage_error is not None and "Traceback" not in r.stderr, r
    r = k.run("%netlab capture veth9 -c 1")
    assert r.usage_error == "no namespace of the lab has an interface 'veth9'", r
    r = k.run("%docker rm nope")
    assert r.usage_error == "Error: No such container: nope", r  # Docker's words, from the guest's lab
    r = k.run("%%netns host --timeout 1\nsleep 30")
    assert r.usage_error == "%%netns host: stopped after the 1 s timeout", r
    assert k.ok("%netns host echo $((6 * 7))").stdout.strip() == "42"  # the guest still answers


def test_interrupt_stops_the_command_in_the_guest(vm_kernel):
    k = vm_kernel
    msg = k.send("%%netns host\necho $$; exec sleep 30")
    pid = None
    while pid is None:
        m = k.kc.get_iopub_msg(timeout=BOOT)
        if m["parent_header"].get("msg_id") == msg and m["msg_type"] == "stream":
            pid = int(m["content"]["text"].split()[0])
    k.km.interrupt_kernel()
    reply = k.collect(msg)
    assert reply.error == ("KeyboardInterrupt", "stopped the command in host"), reply
    r = k.run(f"%netns host kill -0 {pid}")
    assert "No such process" in r.stdout, r  # the guest's sleep is gone (stderr comes with stdout, as from !cmd)


def test_a_listener_in_the_background_hears_the_next_cell_and_a_reset_ends_it(vm_kernel):
    k = vm_kernel
    k.ok("%netlab reset", timeout=BOOT)
    k.ok("%%netns host\nip netns add ns1 && ip link add veth2 type veth peer name veth1 netns ns1\n"
         "ip addr add 10.0.0.2/24 dev veth2 && ip link set veth2 up\n"
         "ip -n ns1 addr add 10.0.0.1/24 dev veth1 && ip -n ns1 link set veth1 up")
    r = k.ok("%%netns ns1\nnc -l 8080 &")  # a cell's leftover: a background job of the guest's lab
    assert r.stderr.startswith("[job1] what this cell started in the background runs on in ns1"), r
    k.ok("%%netns ns1 --bg --name listener\nnc -l 8081")
    # the listeners start in the guest while this cell is on its way: try until they answer
    k.ok("%%netns host\nfor port in 8080 8081; do\n"
         "  for i in $(seq 50); do echo hello $port | nc -N 10.0.0.1 $port && break; sleep 0.1; done\ndone")
    assert k.ok("%netlab wait job1").stdout.strip() == "[job1] ended"
    assert k.ok("%netlab output job1").stdout == "hello 8080\n"
    assert k.ok("%netlab output listener").stdout == "hello 8081\n"
    k.ok("%%netns ns1 --bg --name again\nnc -l 8082")
    jobs = k.ok("%netlab jobs").results[0]
    assert "again" in jobs and "running" in jobs, jobs
    k.ok("%netlab reset", timeout=BOOT)
    assert "(no jobs)" in k.ok("%netlab jobs").results[0]
    assert k.run("!pgrep -x nc").stdout == "", "the reset ended the listener"


def test_python_in_a_namespace_runs_in_the_guests_interpreter(vm_kernel):
    """What differs in the VM (README): ``%%netns --python`` has the guest's variables, and its error is one line.
    (``%netlab status``, a trace, ``%docker`` and conntrack: the workbook's run in the VM checks them, cell by cell.)"""
    k = vm_kernel
    k.ok("%netlab reset", timeout=BOOT)
    k.ok("!ip netns add ns1 && ip link add veth1 type veth peer name br-veth1 netns ns1")
    r = k.ok("%%netns ns1 --python\nimport socket\nx = 6 * 7\n[name for _, name in socket.if_nameindex()]")
    assert r.results == ["['lo', 'br-veth1']"] and r.stdout == "", r  # the cell's Out, as in-kernel
    assert k.ok("%%netns host --python\nprint(x)").stdout == "42\n"
    # the guest's server starts without site (python -S); a Python cell gets it whole: site-packages, .pth files
    r = k.ok("%%netns host --python\nimport sys, traitlets\nprint(sys.flags.no_site, 'site' in sys.modules, traitlets.__name__)")
    assert r.stdout == "1 True traitlets\n", r
    r = k.run("%%netns host --python\n1 / 0")
    assert r.usage_error == "the Python cell raised ZeroDivisionError in the VM's guest: division by zero", r
    assert "Traceback" in r.stderr  # the guest's, printed before the one line


def test_the_checks_a_prediction_a_record_a_widget_and_a_capture_read_the_vms_lab(vm_kernel, tmp_path):
    """``Lab.current()`` is the VM's lab: what the notebooks, the checks and the widgets call reads it."""
    k = vm_kernel
    k.ok("%netlab reset", timeout=BOOT)
    k.ok("%%netns host\nip netns add ns1 && ip link add veth2 type veth peer name veth1 netns ns1\n"
         "ip addr add 10.0.0.2/24 dev veth2 && ip link set veth2 up\n"
         "ip -n ns1 addr add 10.0.0.1/24 dev veth1 && ip -n ns1 link set veth1 up && ip -n ns1 link set lo up")
    assert k.value("type(__import__('netlab_magic').Lab.current()).__name__") == "VMLab"
    r = k.ok("from netlab_magic.checks import check_link, check_ping, exercise\n"
             "exercise(check_link('ns1', 'veth1'), check_ping('ns1', '10.0.0.2'))")
    assert r.results == ["Well done: all 2 checks pass."], r
    r = k.ok("exercise(check_link('ns1', 'veth9'), check_ping('ns9', '10.0.0.2'))")
    assert r.stdout.splitlines() == [  # the lines the same checks print in-kernel
        "\u2718 veth9 in ns1 is UP \u2014 there is no interface veth9 in ns1 (it has: lo, veth1) (look: ip -n ns1 link)",
        "\u2718 ns9 can ping 10.0.0.2 \u2014 namespace 'ns9' does not exist (the lab has: host, ns1) "
        "(look: ip netns list)"], r
    r = k.ok("from netlab_magic.predictions import predict, ping, PING_CHOICES\n"
             "p = predict('ns1 pings 10.0.0.2: what happens?', PING_CHOICES, answer='reply')\n"
             "p.beside(ping('ns1', '10.0.0.2'))")
    assert "1 packets transmitted, 1 received" in r.stdout and "your prediction: reply" in r.stdout, r
    r = k.ok("from netlab_magic.changes import record\nbefore = record()\nsorted(before.sysctls)")
    assert r.results == ["['host', 'ns1']"], r
    r = k.ok("from netlab_magic.widgets import topology\nw = topology()\n"
             "[n['name'] for n in w.snapshot['namespaces']]")
    assert r.results == ["['host', 'ns1']"], r
    k.ok("%netlab capture veth2 --bg")
    k.ok("%netns ns1 ping -c 1 -W 2 10.0.0.2")
    pcap = tmp_path / "veth2.pcap"
    r = k.ok(f"%netlab capture veth2 --stop --pcap {pcap} --match '-p icmp'")
    assert "saved" in r.stdout and "echo request" in r.results[0] and "(stopped)" in r.results[0], r
    assert pcap.read_bytes()[:4] == bytes.fromhex("d4c3b2a1")  # the packets, written on the kernel's side


def test_reset_empties_the_guest_lab(vm_kernel):
    k = vm_kernel
    k.ok("!ip netns add gone")
    r = k.ok("%netlab reset", timeout=BOOT)
    assert r.stdout.strip() == "lab reset: every namespace, interface, rule and job is gone; the host is fresh"
    assert k.ok("!ip netns list; ip -br link", timeout=BOOT).stdout.split()[:1] == ["lo"]


VM_PID = "__import__('netlab_magic.vm.lab', fromlist=['VMLab']).VMLab.existing().machine.proc.pid"


def test_a_killed_vm_is_one_line_and_the_next_cell_boots_a_fresh_one(vm_kernel):
    k = vm_kernel
    pid = k.value(VM_PID)
    os.kill(pid, signal.SIGKILL)
    r = k.run("!ip netns list")
    assert r.usage_error == "the VM stopped (QEMU killed by signal 9); the next command starts a fresh VM", r
    fresh = k.value(VM_PID)
    r = k.ok("%netlab reset", timeout=BOOT)  # while it boots (a notebook's first cell): that VM is fresh already
    assert r.stdout.splitlines()[0] == "netlab: the lab's VM is starting ...", r  # it waits for the boot, and says so
    assert k.value(VM_PID) == fresh
    r = k.ok("!ip netns list; echo listed")
    assert r.stdout.strip() == "listed", r  # a fresh VM: ns1 went with the old one


def test_the_vm_is_its_labs_keeper(vm_kernel):
    """The guest's lab starts no keeper: when its server ends (here killed from a cell), the VM
    powers off and QEMU ends, and every process and namespace of that lab is gone with it."""
    k = vm_kernel
    k.ok("!ip netns add kept && ip netns exec kept sleep 300 &", timeout=BOOT)
    assert k.ok("!pgrep -fc 'sandbox/[k]eeper[.]py' || true").stdout.strip() == "0"
    pid = k.value(VM_PID)
    r = k.run("!kill -9 $(pgrep -f 'netlab_magic[.]vm[.]server')")
    assert r.usage_error is not None and r.usage_error.startswith("the VM stopped"), r
    assert wait_for(lambda: pid not in qemu_pids())
    r = k.ok("!ip netns list; pgrep -c sleep || true", timeout=BOOT)  # a fresh VM, its boot line first
    assert r.stdout.splitlines()[1:] == ["0"], r


def test_kill_9_of_the_kernel_leaves_no_qemu(vm_kernel):
    k = vm_kernel
    k.ok("!true", timeout=BOOT)
    mine = [pid for pid in qemu_pids() if _descends(pid, k.pid)]
    assert len(mine) == 1, qemu_pids()
    os.kill(k.pid, signal.SIGKILL)
    assert wait_for(lambda: mine[0] not in qemu_pids())


OWNER = """
import subprocess, sys, time
from netlab_magic.vm import image, machine
vm = machine.Machine(image.find())
vm.start()
agent = vm.wait_ready(120)
# a child that holds the agent's socket open: the guest never sees the owner go
holder = subprocess.Popen(["sleep", "300"], pass_fds=[agent._conn.fileno()])
print(vm.proc.pid, holder.pid, flush=True)
time.sleep(300)
"""


BOOTING = """
import time
from netlab_magic.vm import image, machine
vm = machine.Machine(image.find())
vm.start()
print(vm.proc.pid, flush=True)
time.sleep(300)
"""


def test_kill_9_during_the_boot_leaves_no_qemu_and_no_file(tmp_path):
    """The owner killed while its VM boots (before the agent's hello): QEMU ends with it, and nothing the
    VM used is left in the owner's temporary directory (its port, its console and its stderr are memory)."""
    owner = subprocess.Popen([sys.executable, "-c", BOOTING], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        qemu = int(owner.stdout.readline())
        assert wait_for(lambda: qemu in qemu_pids())  # setpriv execs it
        os.kill(owner.pid, signal.SIGKILL)  # a boot takes seconds under TCG: the guest has not answered yet
        owner.wait()
        assert wait_for(lambda: qemu not in qemu_pids())
        assert list(tmp_path.iterdir()) == []
    finally:
        owner.kill()


def test_qemu_dies_with_its_owner_even_when_the_guest_cannot_tell(tmp_path):
    """``--pdeathsig``, not the guest's powering off, ends QEMU: here the port stays open after the owner's death."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        qemu, holder = map(int, owner.stdout.readline().split())
        assert qemu in qemu_pids()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert wait_for(lambda: qemu not in qemu_pids())
    finally:
        owner.kill()
        if "holder" in locals():
            os.kill(holder, signal.SIGKILL)


def test_a_vm_that_cannot_boot_is_one_line(tmp_path):
    """An initramfs with no init: the guest's kernel panics, QEMU ends, the reason is its last word."""
    good = image.find()
    bad = tmp_path / "image"
    (bad / "lib" / "modules").mkdir(parents=True)
    (bad / "lib" / "modules" / good.kernel_release).symlink_to(good.modules)
    (bad / "vmlinux").symlink_to(good.vmlinux)
    (bad / "initrd.cpio").write_bytes(image._Cpio().close())
    vm = machine.Machine(image.Image(bad, good.kernel_release, good.package))
    vm.start()
    try:
        with pytest.raises(machine.VMError) as err:
            vm.wait_ready(BOOT)
    finally:
        vm.stop()
    message = str(err.value)
    assert message.startswith("the VM stopped (QEMU exit status 0): Kernel panic - not syncing:"), message
    assert "\n" not in message


def _guest(vm: machine.Machine, command: str) -> str:
    """``command``'s output on the guest lab's host, through the agent alone (no kernel, no VMLab)."""
    return vm.client.call(remote.LAB, "run", ("host", command), {"check": True}).stdout


def test_vms_restored_from_the_boots_snapshot_are_each_their_own():
    """``vm prepare`` saved the boot up to where the guest's init waits for the host's word. Each VM
    restored from it goes on from there with this machine's clock (the snapshot's is minutes old
    by now) and random numbers of its own (the snapshot holds the generator's state)."""
    img = image.find()
    saved = snapshot.find(img)
    assert saved is not None, f"vm prepare made no snapshot of the boot in {img.directory}"
    vms = [machine.Machine(img) for _ in range(2)]
    try:
        for vm in vms:
            vm.start(saved)
        for vm in vms:
            vm.wait_ready(BOOT)
        outs = [_guest(vm, "date +%s; head -c 16 /dev/urandom | od -An -tx1; cat /proc/sys/kernel/random/boot_id")
                for vm in vms]
    finally:
        for vm in vms:
            vm.stop()
    assert [(vm.restored_from, vm.restore_refused) for vm in vms] == [(saved, None)] * 2
    for out in outs:
        assert abs(int(out.split()[0]) - time.time()) < 10, out
    assert outs[0].split("\n", 1)[1] != outs[1].split("\n", 1)[1], outs


def test_a_snapshot_qemu_refuses_means_a_boot_from_the_start(tmp_path):
    """A snapshot QEMU cannot load (here: not one at all) costs a moment, not the VM: it boots."""
    bad = tmp_path / "snapshot.qemu"
    bad.write_bytes(b"QEVM\0\0\0\3" + os.urandom(4096))
    vm = machine.Machine(image.find())
    vm.start(bad)
    try:
        vm.wait_ready(BOOT)
        assert _guest(vm, "echo up") == "up\n"
    finally:
        vm.stop()
    assert vm.restored_from is None and vm.restore_refused, vm.restore_refused
