"""widgets/_poll.py: one poller thread for every widget, views that come and go, cells that re-run."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")

from netlab_magic.model import LabSnapshot  # noqa: E402
from netlab_magic.widgets import CountersWidget, TopologyWidget, _poll  # noqa: E402
from support.waiting import wait_for  # noqa: E402
from support.widgets import CAPTURED, star, view  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_poller")


class ChangingSource:
    def __init__(self, n=3):
        self.n = n
        self.calls = 0
        self.down = False
        self.fail = False
        self.delay = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> LabSnapshot:
        with self.lock:
            self.calls += 1
            if self.fail:
                raise OSError("netlink went away")
        if self.delay:
            time.sleep(self.delay)
        return star(self.n, {1: ("DOWN", "LOWERLAYERDOWN")} if self.down else None)


def pollers():
    return [t for t in threading.enumerate() if t.name == "netlab-poller"]


def test_topology_refresh_loop_reacts_and_stops_on_close():
    src = ChangingSource()
    w = TopologyWidget(src, interval=0.05)
    try:
        assert w.pushes == 1 and src.calls == 1  # read once, for the first picture
        time.sleep(0.3)
        assert not w.polling and src.calls == 1  # nobody looks: nothing is read
        view(w)
        assert w.polling and w.views == 1
        assert wait_for(lambda: src.calls >= 4)
        assert w.pushes == 1  # nothing changed: nothing sent
        _poll.POLLER.executing = True  # a cell runs: read every interval
        src.down = True
        assert wait_for(lambda: w.pushes == 2)
        states = {(p["netns"], p["ifname"]): p["state"] for p in w.diagram["ports"]}
        assert states[("c1", "eth0")] == "LOWERLAYERDOWN"
        assert w.snapshot == star(3, {1: ("DOWN", "LOWERLAYERDOWN")}).to_dict()
        src.fail = True
        assert wait_for(lambda: "netlink went away" in w.error)
        assert w.polling  # a failing source does not kill the loop
        src.fail = False
        assert wait_for(lambda: w.error == "")
    finally:
        w.close()
    assert not w.polling
    calls = src.calls
    time.sleep(0.3)
    assert src.calls == calls


def test_layout_trait_is_ipywidgets_own():
    """The picture travels as ``diagram``: ``.layout`` is ipywidgets' Layout, as for any widget."""
    import ipywidgets

    w = TopologyWidget(ChangingSource(), interval=None)
    assert isinstance(w.layout, ipywidgets.Layout)
    w.layout.height = "300px"
    assert w.layout.height == "300px"
    assert "diagram" in w.keys and w.diagram["nodes"]
    assert "snapshot" not in w.keys  # the raw snapshot stays in the kernel: half the payload


def test_one_poller_thread_and_one_read_per_source():
    src, other = ChangingSource(), ChangingSource(5)
    ws = [TopologyWidget(src, interval=0.05) for _ in range(10)]
    ws.append(TopologyWidget(other, interval=0.05))
    for k, w in enumerate(ws):
        view(w, f"v{k}")
    _poll.POLLER.executing = True
    calls0 = src.calls
    time.sleep(0.6)
    assert len(pollers()) == 1
    # ten widgets of one source: one read per interval for all of them (~12 in 0.6 s, not ~120)
    assert 3 <= src.calls - calls0 <= 20, src.calls - calls0
    assert other.calls >= 3
    src.down = True
    assert wait_for(lambda: all(w.pushes == 2 for w in ws[:10]))
    assert ws[0].diagram is ws[9].diagram  # computed once, shared
    for w in ws:
        w.close()
    assert not _poll.POLLER.feeds
    assert len(pollers()) == 1  # the thread waits for the next widget, idle


def test_idle_polling_slows_down_and_a_cell_wakes_it(monkeypatch):
    monkeypatch.setattr(_poll, "IDLE_MAX", 0.4)
    monkeypatch.setattr(_poll, "AFTER_CELL", 0.0)
    src = ChangingSource()
    w = TopologyWidget(src, interval=0.02)
    view(w)
    time.sleep(1.5)
    c0 = src.calls
    time.sleep(1.2)
    assert src.calls - c0 <= 5, src.calls - c0  # idle and unchanged: every 0.4 s, not every 0.02 s
    c1 = src.calls
    _poll.POLLER.cell_ended()  # a cell just ran: read at once
    assert wait_for(lambda: src.calls > c1, timeout=0.3)
    w.close()


def test_a_slow_source_is_read_less_often():
    src = ChangingSource()
    src.delay = 0.05
    w = TopologyWidget(src, interval=0.01)
    view(w)
    _poll.POLLER.executing = True  # busy: reads may take 10 % of the time, no more
    time.sleep(0.3)
    c0 = src.calls
    time.sleep(1.5)
    assert src.calls - c0 <= 5, src.calls - c0  # every 0.5 s, not every 0.06 s
    w.close()


def test_views_come_and_go(monkeypatch):
    monkeypatch.setattr(_poll, "GRACE", 0.3)
    src = ChangingSource()
    w = TopologyWidget(src, interval=0.05)
    view(w, "a")
    view(w, "b")  # a second view of the same widget
    assert w.views == 2 and w.polling
    view(w, "a", alive=False)
    assert w.polling  # one view left
    view(w, "b", alive=False)
    assert not w.polling
    calls = src.calls
    time.sleep(0.1)
    view(w, "c")  # shown again within the grace: it lives on, and reads at once
    assert wait_for(lambda: src.calls > calls, timeout=0.5)
    time.sleep(0.5)
    assert w.comm is not None
    view(w, "c", alive=False)  # its output cleared: closed after the grace
    assert wait_for(lambda: w.comm is None, timeout=3)
    assert not w.polling


def test_closing_waits_for_the_running_cell(monkeypatch):
    """A view re-displayed by a long cell reports after it: no widget closes while a cell runs."""
    monkeypatch.setattr(_poll, "GRACE", 0.2)
    w = TopologyWidget(ChangingSource(), interval=0.05)
    view(w)
    view(w, alive=False)
    _poll.POLLER.cell_started()
    time.sleep(0.6)
    assert w.comm is not None
    view(w, "again")  # the view's message, handled once the cell ended
    _poll.POLLER.cell_ended()
    time.sleep(0.6)
    assert w.comm is not None and w.polling
    w.close()


def test_a_silent_view_expires(monkeypatch):
    """A page closed without a word (browser gone): its views stop counting after VIEW_TTL idle."""
    monkeypatch.setattr(_poll, "VIEW_TTL", 0.3)
    w = TopologyWidget(ChangingSource(), interval=0.05)
    view(w)
    _poll.POLLER.last_cell_end = time.monotonic()
    assert w.polling
    time.sleep(0.5)
    assert not w.polling and w.comm is not None  # not read any more, but not closed: it may be back
    view(w)
    assert w.polling
    w.close()


def test_a_hidden_page_is_not_read():
    """A background tab: its views are not read for, but not gone either."""
    src = ChangingSource()
    w = TopologyWidget(src, interval=0.05)
    view(w)
    _poll.POLLER.executing = True
    assert w.polling
    view(w, hidden=True)  # the page went to the background
    assert not w.polling and w.views == 1
    calls = src.calls
    time.sleep(0.3)
    assert src.calls <= calls + 1
    view(w)  # shown again: read at once
    assert w.polling and wait_for(lambda: src.calls > calls + 1, timeout=1)
    w.close()


class Info:
    def __init__(self, cell_id):
        self.cell_id = cell_id


def test_re_running_a_cell_closes_what_it_made():
    src = ChangingSource()
    made = []
    for _ in range(10):
        _poll._pre_run_cell(Info("cell-a"))
        w = TopologyWidget(src, interval=0.05)
        view(w)
        made.append(w)
        _poll._post_run_cell()
    _poll._pre_run_cell(Info("cell-b"))
    other = TopologyWidget(src, interval=0.05)  # another cell's widget stays
    _poll._post_run_cell()
    assert [w.comm is None for w in made] == [True] * 9 + [False]
    assert other.comm is not None and made[-1].polling
    assert len(pollers()) == 1
    assert len(_poll.POLLER.feeds) == 1 and len(_poll.POLLER.feeds[("topology", src)].subscribers) == 2


def test_close_all_stops_polling():
    import ipywidgets

    src = ChangingSource()
    w = TopologyWidget(src, interval=0.02)
    c = CountersWidget(lambda: CAPTURED, interval=0.02)
    view(w), view(c)
    assert w.polling and c.polling
    ipywidgets.Widget.close_all()
    assert not w.polling and not c.polling
