"""widgets/counters_widget.py: counters that moved since the last cell, one read per table, errors."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")

from netlab_magic.widgets import CountersWidget, _poll, plot_counters  # noqa: E402
from support.waiting import wait_for  # noqa: E402
from support.widgets import CAPTURED, WIDGETS, big_ruleset, view  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_poller")


def test_counters_moved_since_the_last_cell():
    state = {"hits": {}, "reads": 0}

    def read() -> str:
        state["reads"] += 1
        return big_ruleset(5, state["hits"])

    w = CountersWidget(read, interval=None)
    try:
        assert state["reads"] == 1 and w.refreshes == 1
        fwd = next(c for c in w.chains if c["name"] == "FORWARD")
        assert fwd["policy"] == "DROP" and all(r["dpackets"] == 0 for r in fwd["rules"])
        state["hits"] = {2: 3}
        assert w.refresh()
        assert state["reads"] == 2  # one read per refresh
        fwd = next(c for c in w.chains if c["name"] == "FORWARD")
        moved = [(r["index"], r["dpackets"], r["dbytes"]) for r in fwd["rules"] if r["dpackets"]]
        assert moved == [(3, 3, 252)]
        key = fwd["rules"][2]["key"]
        w.selected = [key]
        assert w.series[key]["points"][-1][1] == 3
        state["hits"] = {2: 10}
        w.refresh()
        assert [p[1] for p in w.series[key]["points"]] == [0, 3, 10]
        w.refresh()  # nothing moved since, but the cell did not end: the highlight stays
        rule = lambda: next(c for c in w.chains if c["name"] == "FORWARD")["rules"][2]  # noqa: E731
        assert (rule()["dpackets"], rule()["dbytes"]) == (10, 840)  # since the last cell
        assert "1 moved since the last cell ran" in w.summary()
        assert "[+10 pkts, +840 B]" in w.summary()
        w.mark()  # a new cell starts: it has moved nothing yet
        assert rule()["dpackets"] == 0 and "0 moved" in w.summary()
        assert len(w.history) >= 4
        fig = w.plot()
        assert [ln.get_gid() for ln in fig.axes[0].lines] == [key]
        assert plot_counters(w.history).axes[0].lines[0].get_gid() == key
    finally:
        w.close()


def test_counters_policies_count_as_moved():
    text = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [{n}:{b}]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
    hits = {"n": 0}
    w = CountersWidget(lambda: text.format(n=hits["n"], b=84 * hits["n"]), interval=None)
    hits["n"] = 1
    w.refresh()
    fwd = next(c for c in w.chains if c["name"] == "FORWARD")
    assert (fwd["dpackets"], fwd["dbytes"]) == (1, 84)
    summary = w.summary()
    assert "1 moved since the last cell ran" in summary  # the policy counts
    assert "Chain FORWARD (policy DROP 1 packets, 84 bytes)  +1 pkt, +84 B" in summary
    js = (WIDGETS / "counters.js").read_text()
    assert "if (c.dpackets || c.dbytes) moved += 1;" in js  # the header counts it too


def test_counters_share_one_read_per_namespace_and_table():
    reads = []
    def read():
        reads.append(1)
        return CAPTURED
    a = CountersWidget(read, key=("counters", "lab", "host", "filter"), interval=0.05)
    b = CountersWidget(read, key=("counters", "lab", "host", "filter"), interval=0.05)
    view(a), view(b)
    _poll.POLLER.executing = True
    time.sleep(0.5)
    assert len(reads) <= 16  # ~10 reads for both, not ~20
    assert a.chains == b.chains
    a.close(), b.close()


def test_counters_loop_stops_on_close_and_reports_errors():
    reads = []

    def read() -> str:
        reads.append(time.monotonic())
        if len(reads) == 3:
            raise RuntimeError("iptables-save died")
        return CAPTURED

    w = CountersWidget(read, table="nat", interval=0.05)
    view(w)
    _poll.POLLER.executing = True
    assert wait_for(lambda: len(reads) >= 5)
    assert [c["name"] for c in w.chains][-1] == "POSTROUTING"
    w.close()
    n = len(reads)
    time.sleep(0.3)
    assert len(reads) == n and not w.polling
    # a table iptables-save does not print (never used) shows empty, without error
    w2 = CountersWidget(lambda: CAPTURED, table="mangle", interval=None)
    assert (w2.chains, w2.error) == ([], "")
    assert "empty (no rules yet)" in w2.summary()
    w2.close()
    w3 = CountersWidget(lambda: "garbage\n", interval=None)
    assert "line 1" in w3.error
    w3.close()


def test_real_lab_counters_move_with_traffic(sandbox_lab):
    w = CountersWidget(sandbox_lab.iptables_save, interval=None)
    try:
        inp = next(c for c in w.chains if c["name"] == "INPUT")
        icmp = next(r for r in inp["rules"] if "icmp" in r["spec"])
        assert icmp["packets"] == 0
        sandbox_lab.sh("ip netns exec c1 ping -c 3 -i 0.2 -W 1 10.77.0.1")
        w.refresh()
        inp = next(c for c in w.chains if c["name"] == "INPUT")
        icmp = next(r for r in inp["rules"] if "icmp" in r["spec"])
        assert icmp["packets"] >= 3 and icmp["dpackets"] >= 3
        tcp = next(r for r in inp["rules"] if "dport 80" in r["spec"])
        assert tcp["dpackets"] == 0
    finally:
        w.close()
