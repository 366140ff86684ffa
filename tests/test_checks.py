"""netlab_magic.checks: the ✔/✘ lines and verdicts of the notebooks' self-checking exercises.

Most tests use a fake lab (a snapshot and canned command results), so they need no privileges.
The last one runs the checks against a real lab and is skipped without root.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netlab_magic import checks
from netlab_magic.checks import (CheckResult, ExerciseResult, check_addr, check_attached, check_link,
                                 check_netns, check_no_addr, check_ping, check_route, check_veth, exercise)
from netlab_magic.errors import NamespaceNotFound
from netlab_magic.model import Interface, LabSnapshot, Namespace, Peer, Route


def _if(name, index, kind="veth", state="UP", admin_up=True, addresses=(), master=None, peer=None):
    return Interface(name=name, index=index, kind=kind, state=state, admin_up=admin_up, mtu=1500,
                     mac=None, addresses=tuple(addresses), master=master, peer=peer)


class FakeLab:
    """Demo 2's lab, after the bridge: host (bridge0 with veth2, veth4), ns1, ns3 (veth3 down)."""

    def __init__(self, replies=("10.0.0.10",)):
        self.replies = set(replies)
        self.pinged: list[tuple[str, list[str]]] = []
        lo = _if("lo", 1, kind="loopback", state="UNKNOWN", addresses=("127.0.0.1/8",))
        self.snap = LabSnapshot((
            Namespace("host", (
                lo,
                _if("veth2", 2, master="bridge0", peer=Peer("ns1", "veth1")),
                _if("veth4", 4, master="bridge0", state="LOWERLAYERDOWN", peer=Peer("ns3", "veth3")),
                _if("bridge0", 6, kind="bridge", addresses=("10.0.0.10/24",)),
                _if("veth9", 7, state="DOWN", admin_up=False, peer=Peer(None, None)),
            ), (Route("10.0.0.0/24", dev="bridge0", src="10.0.0.10", proto="kernel", scope="link"),)),
            Namespace("ns1", (
                _if("lo", 1, kind="loopback", state="DOWN", admin_up=False),
                _if("veth1", 3, addresses=("10.0.0.1/24", "fe80::1/64"), peer=Peer("host", "veth2")),
            )),
            Namespace("ns3", (
                lo,
                _if("veth3", 5, state="DOWN", admin_up=False, addresses=("10.0.0.3/24",),
                    peer=Peer("host", "veth4")),
            )),
        ))

    def snapshot(self):
        return self.snap

    def list_netns(self):
        return ["ns1", "ns3"]

    def run(self, netns, argv, timeout=None):
        if netns not in self.snap:
            raise NamespaceNotFound(f"namespace {netns!r} does not exist (the lab has: host, ns1, ns3)")
        self.pinged.append((netns, list(argv)))
        dst = argv[-1]
        if dst in self.replies:
            return subprocess.CompletedProcess(argv, 0, "1 packets transmitted, 1 received, 0% packet loss\n", "")
        if dst.startswith("192.168."):
            return subprocess.CompletedProcess(argv, 2, "", "ping: connect: Network is unreachable\n")
        out = ("PING x\nFrom 10.0.0.10 icmp_seq=1 Destination Host Unreachable\n\n"
               "1 packets transmitted, 0 received, +1 errors, 100% packet loss, time 0ms\n")
        return subprocess.CompletedProcess(argv, 1, out, "")


@pytest.fixture
def lab(monkeypatch):
    monkeypatch.setattr(checks, "SETTLE", 0.2)  # a fake lab's states never settle: do not wait long
    return FakeLab()


def test_result_is_bool_like_and_prints_one_line():
    good, bad = CheckResult(True, "all fine"), CheckResult(False, "x is up", "it is DOWN")
    assert good and not bad
    assert str(good) == repr(good) == "\u2714 all fine"
    assert str(bad) == "\u2718 x is up \u2014 it is DOWN"


def test_netns(lab):
    assert check_netns("ns1", lab=lab)
    assert check_netns("host", lab=lab)
    missing = check_netns("ns4", lab=lab)
    assert not missing and "ns1, ns3" in missing.detail and missing.look == "ip netns list"


def test_link_states(lab):
    assert check_link("host", "veth2", lab=lab)
    assert check_link("host", "lo", lab=lab)  # a loopback that is up reports UNKNOWN
    lo_down = check_link("ns1", "lo", lab=lab)
    assert not lo_down and "no UP among its flags" in lo_down.detail and "look: ip -n ns1 link show lo" in str(lo_down)
    lower = check_link("host", "veth4", lab=lab)
    assert not lower and "LOWERLAYERDOWN" in lower.detail and "no carrier" in lower.detail
    assert check_link("host", "veth4", state="LOWERLAYERDOWN", lab=lab)
    down = check_link("ns3", "veth3", lab=lab)
    assert not down and "it is DOWN" in down.detail and "notebook 01" in down.hint()
    gone = check_link("ns1", "veth7", lab=lab)
    assert not gone and "no interface veth7" in gone.detail and "lo, veth1" in gone.detail
    assert "namespace 'ns9' does not exist" in check_link("ns9", "lo", lab=lab).detail


def test_addresses(lab):
    assert check_addr("ns1", "veth1", "10.0.0.1/24", lab=lab)
    wrong = check_addr("ns3", "veth3", "10.0.1.3/24", lab=lab)
    assert not wrong and wrong.detail == "it has 10.0.0.3/24" and wrong.look == "ip -n ns3 addr show dev veth3"
    none = check_addr("host", "veth2", "10.0.0.2/24", lab=lab)
    assert not none and "no IPv4 address" in none.detail
    assert check_no_addr("host", "veth2", "10.0.0.2/24", lab=lab)
    assert check_no_addr("ns4", "veth5", "10.0.0.5/24", lab=lab)  # nothing there: nothing to remove
    still = check_no_addr("ns3", "veth3", "10.0.0.3/24", lab=lab)
    assert not still and still.detail == "it still has it"
    with pytest.raises(ValueError):
        check_addr("ns1", "veth1", "not-an-address", lab=lab)


def test_veth_and_bridge(lab):
    assert check_veth("ns1", "veth1", "host", "veth2", lab=lab)
    assert check_veth("host", "veth2", "ns1", "veth1", lab=lab)
    other = check_veth("ns1", "veth1", "ns3", "veth2", lab=lab)
    assert not other and "veth2 in the lab's host" in other.detail
    assert "not a veth" in check_veth("host", "bridge0", "ns1", "veth1", lab=lab).detail
    assert "outside the lab" in check_veth("host", "veth9", "ns1", "x", lab=lab).detail
    assert check_attached("bridge0", "veth2", lab=lab)
    assert check_attached("bridge0", "veth4", lab=lab)
    loose = check_attached("bridge0", "veth9", lab=lab)
    assert not loose and loose.detail == "it is not a port of any bridge" and loose.look == "ip link show master bridge0"
    assert "not a bridge" in check_attached("veth2", "veth4", lab=lab).detail
    assert not check_attached("bridge1", "veth2", lab=lab)


def test_routes(lab):
    assert check_route("host", "10.0.0.0/24", lab=lab)
    assert check_route("host", "10.0.0.7/24", dev="bridge0", lab=lab)  # normalised to the network
    elsewhere = check_route("host", "10.0.0.0/24", dev="veth2", lab=lab)
    assert not elsewhere and "elsewhere" in elsewhere.detail and "dev bridge0" in elsewhere.detail
    none = check_route("ns1", "10.0.1.0/24", lab=lab)
    assert not none and "routes: none" in none.detail
    assert not check_route("ns1", "default", via="10.0.0.10", lab=lab)


def test_ping(lab):
    ok = check_ping("ns1", "10.0.0.10", lab=lab)
    assert ok and str(ok) == "\u2714 ns1 can ping 10.0.0.10"
    assert lab.pinged[-1] == ("ns1", ["ping", "-c", "1", "-W", "1", "10.0.0.10"])
    lost = check_ping("ns3", "10.0.0.1", lab=lab)
    assert not lost and "ARP" in lost.detail
    unreachable = check_ping("ns1", "192.168.7.1", lab=lab)
    assert not unreachable and "Network is unreachable" in unreachable.detail
    expected = check_ping("ns3", "10.0.0.1", expect=False, lab=lab)
    assert expected and str(expected) == "\u2714 ns3 cannot reach 10.0.0.1"
    surprise = check_ping("ns1", "10.0.0.10", expect=False, lab=lab)
    assert not surprise and "got a reply" in surprise.detail
    nowhere = check_ping("ns4", "10.0.0.1", lab=lab)
    assert not nowhere and "'ns4' does not exist" in nowhere.detail
    with pytest.raises(ValueError):
        check_ping("ns1", "10.0.0.1; reboot", lab=lab)


def test_exercise_prints_lines_and_returns_verdict(lab, capsys):
    result = exercise(check_netns("ns1", lab=lab), [check_attached("bridge0", "veth2", lab=lab)],
                      check_ping("ns3", "10.0.0.1", lab=lab))
    out = capsys.readouterr().out.splitlines()
    assert [line[0] for line in out] == ["\u2714", "\u2714", "\u2718"]
    assert isinstance(result, ExerciseResult) and not result
    assert (result.passed, result.total) == (2, 3)
    assert repr(result) == "Not yet: 2 of 3 checks pass. Stuck? _.hint() in the next cell says more."
    assert str(result).splitlines()[-1] == repr(result)
    result.hint()
    assert capsys.readouterr().out.startswith("\u2718 ns3 can ping 10.0.0.1: notebook 02")
    done = exercise(check_netns("ns1", lab=lab))
    assert done and repr(done) == "Well done: the check passes."
    assert not exercise()  # no checks: nothing is proven


REAL_LAB_SCRIPT = r"""
from netlab_magic import Lab
from netlab_magic.checks import *

lab = Lab.current()
lab.run("host", "ip netns add ns1 && ip link add veth1 type veth peer name veth2 && "
                "ip link set veth1 netns ns1 && ip addr add 10.0.0.2/24 dev veth2 && "
                "ip link set dev veth2 up", check=True)
assert not check_ping("ns1", "10.0.0.2")
lab.run("ns1", "ip link set dev lo up && ip addr add 10.0.0.1/24 dev veth1 && ip link set dev veth1 up",
        check=True)
result = exercise(check_netns("ns1"), check_link("ns1", "lo"), check_veth("ns1", "veth1", "host", "veth2"),
                  check_addr("ns1", "veth1", "10.0.0.1/24"), check_route("ns1", "10.0.0.0/24", dev="veth1"),
                  check_ping("ns1", "10.0.0.2"), check_ping("host", "10.0.0.1"))
assert result, str(result)
lab.run("host", "ip addr flush dev veth2 && ip link add bridge0 type bridge && "
                "ip addr add 10.0.0.10/24 dev bridge0 && ip link set bridge0 up && "
                "ip link set veth2 master bridge0", check=True)
assert check_attached("bridge0", "veth2")
assert check_no_addr("host", "veth2", "10.0.0.2/24")
assert check_ping("ns1", "10.0.0.10"), check_ping("ns1", "10.0.0.10")
print("real lab: ok")
"""


def test_real_lab():
    """The checks against a real lab (a veth pair, then a bridge), in a process of its own. Needs root."""
    from netlab_magic.sandbox.sandbox import privilege_mode

    if privilege_mode() != "root":
        pytest.skip("needs real root (a lab in this process)")
    done = subprocess.run([sys.executable, "-c", REAL_LAB_SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "real lab: ok" in done.stdout


#: What fixes the lab rather than showing it: a verb of ip/iptables/sysctl that changes something.
FIXING = re.compile(r"\btry:|\bip (-n \S+ )?(netns|link|addr|address|route) (add|del|delete|set|flush|replace)\b"
                    r"|\bset \S+ (master|netns)\b|\bsysctl -w\b|\biptables\b.* -[AIDRNFP] ")


def test_no_check_says_the_fixing_command(lab, capsys):
    """Every way the checks of notebooks 00-03 can fail, and their verdict: symptoms and where to
    look, never the command that makes them pass (issue 18, part 3)."""
    results = [
        check_netns("blue", lab=lab), check_link("ns1", "lo", lab=lab), check_link("ns3", "veth3", lab=lab),
        check_link("host", "veth4", lab=lab), check_link("ns9", "lo", lab=lab), check_link("ns1", "veth7", lab=lab),
        check_veth("ns1", "veth1", "ns3", "veth2", lab=lab), check_veth("host", "bridge0", "ns1", "veth1", lab=lab),
        check_veth("host", "veth9", "ns1", "x", lab=lab), check_veth("host", "veth2", "ns3", "veth1", lab=lab),
        check_addr("ns3", "veth3", "10.0.1.3/24", lab=lab), check_addr("host", "veth2", "10.0.0.2/24", lab=lab),
        check_no_addr("ns3", "veth3", "10.0.0.3/24", lab=lab), check_attached("bridge0", "veth9", lab=lab),
        check_attached("veth2", "veth4", lab=lab), check_route("ns1", "10.0.1.0/24", lab=lab),
        check_route("host", "10.0.0.0/24", dev="veth2", lab=lab), check_ping("ns3", "10.0.0.1", lab=lab),
        check_ping("ns1", "192.168.7.1", lab=lab), check_ping("ns1", "10.0.0.10", expect=False, lab=lab),
    ]
    assert not any(results)
    shown = str(exercise(*results)) + capsys.readouterr().out
    assert all(r.look for r in results) and all(r.hint() for r in results)
    assert not FIXING.search(shown), FIXING.search(shown)
    exercise(*results).hint()
    assert not FIXING.search(capsys.readouterr().out)


@pytest.mark.parametrize("notebook", ["00-start-here", "01-bare-veth", "02-second-namespace", "03-bridge"])
def test_stored_check_outputs_guide(notebook):
    """The stored outputs of notebooks 00-03 show the guiding form: no fixing command."""
    nb = json.loads((Path(__file__).parent.parent / "notebooks" / f"{notebook}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "exercise(" in "".join(cell["source"]):
            out = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                          for o in cell.get("outputs", []))
            assert "checks pass" in out and not FIXING.search(out), out


def test_module_exports():
    assert set(checks.__all__) <= set(dir(checks))
