"""Notebook 06's prediction checks: a right prediction passes; a wrong one is told which step is wrong,
never what the kernel reported (the trace shows it); "d" or "dropped" alone is not a prediction of
how a packet ends. Pure: packets made by hand, as the trace reports them."""

from __future__ import annotations

from netlab_magic.packets.trace_model import Hop, Packet, Trace
from netlab_magic.trace_checks import check_drop, check_path

HOPS = (Hop("ns3", "OUTPUT", None, None, None, "ACCEPT", None, "veth3"),
        Hop("ns3", "POSTROUTING", None, None, None, "ACCEPT", None, "veth3"),
        Hop("host", "PREROUTING", None, None, None, "ACCEPT", "bridge0", None),
        Hop("host", "FORWARD", "filter", "FORWARD", None, "DROP", "bridge0", "bridge0"))
TRACE = Trace("ns3", "ping -c 1 10.0.0.1", None, 1, "", [Packet(0, HOPS, None, "dropped in host by filter FORWARD "
                                                                               "policy DROP")], list(HOPS))
RIGHT = ["ns3 OUTPUT", "ns3 POSTROUTING", "host PREROUTING", "host FORWARD"]


def test_a_right_prediction_passes():
    assert all(check_path(TRACE, RIGHT, end="dropped in host"))
    assert all(check_path(TRACE, RIGHT, end="Dropped in host by filter FORWARD"))
    assert check_drop(TRACE, "FORWARD")


def test_the_feedback_does_not_give_the_kernel_s_answer():
    wrong = ["ns3 OUTPUT", "ns3 POSTROUTING", "ns1 PREROUTING", "ns1 INPUT"]
    lines = [str(c) for c in check_path(TRACE, wrong, end="delivered in ns1")] + [
        str(check_drop(TRACE, "INPUT")), str(check_path(TRACE, RIGHT[:2])[0])]
    assert lines == [
        "\u2718 packet 1 goes the way you said \u2014 step 3 ('ns1 PREROUTING') is not where it went next: "
        "the trace's table lists its hooks in order",
        "\u2718 packet 1 was delivered in ns1 \u2014 it ended otherwise: the title of packet 1's table says how",
        "\u2718 packet 1 was dropped in INPUT \u2014 another chain dropped it: the last line of packet 1's table names it",
        "\u2718 packet 1 goes the way you said \u2014 it went on after step 2 ('ns3 POSTROUTING'): 2 more hook(s) "
        "in the trace's table"]
    assert not any("host PREROUTING" in line or "FORWARD" in line.split("\u2014")[1] for line in lines)


def test_an_end_must_say_where():
    for end in ("d", "dropped", "dropped in", "  "):
        result = check_path(TRACE, RIGHT, end=end)[1]
        assert not result and "say how it ends" in result.detail, end
