"""The widgets on the real lab, in a real kernel: they follow what cells do, poll only while a view
is shown, close when their cell is re-run, count what moved since the last cell, and show
themselves as a picture and text where no widget can be drawn."""

from __future__ import annotations

import ast
import json
import time

VIEW = "{name}._handle_custom_msg({{'netlab': 'view', 'id': {vid!r}, 'alive': {alive}}}, [])"


def view(k, name: str, vid: str = "test-view", alive: bool = True) -> None:
    """What the widget's view in a browser says when it appears (or goes)."""
    k.ok(VIEW.format(name=name, vid=vid, alive=alive))


def peek(k, expr: str, timeout: float = 30):
    """Evaluate ``expr`` in the kernel without running a cell (a silent request, as a front end's
    inspector does): no ``pre_run_cell``/``post_run_cell``, so nothing the widgets count as a cell."""
    msg_id = k.kc.execute("", silent=True, store_history=False,
                          user_expressions={"v": f"__import__('json').dumps({expr})"})
    while True:
        reply = k.kc.get_shell_msg(timeout=timeout)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    got = reply["content"]["user_expressions"]["v"]
    assert got["status"] == "ok", got
    return json.loads(ast.literal_eval(got["data"]["text/plain"]))


def run_in_cell(k, code: str, cell_id: str):
    """Run ``code`` as JupyterLab runs a notebook cell: with the cell's id in the request."""
    msg = k.kc.session.msg("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})
    msg["metadata"]["cellId"] = cell_id
    k.kc.shell_channel.send(msg)
    reply = k.collect(msg["header"]["msg_id"])
    assert reply.error is None, reply
    return reply


def wait_peek(k, expr: str, pred, timeout: float = 10.0):
    deadline = time.time() + timeout
    while True:
        got = peek(k, expr)
        if pred(got) or time.time() > deadline:
            return got
        time.sleep(0.2)


def test_topology_follows_cells(lab):
    lab.ok("from netlab_magic.widgets import topology\nw = topology(interval=0.2)")
    view(lab, "w")
    lab.ok("!ip netns add ns1\n!ip link add veth1 type veth peer name veth2 netns ns1")
    names = "[n['name'] for n in w.snapshot['namespaces']]"
    assert wait_peek(lab, names, lambda v: v == ["host", "ns1"]) == ["host", "ns1"]
    state = "[i['state'] for i in w.snapshot['namespaces'][0]['interfaces'] if i['name'] == 'veth1']"
    lab.ok("!ip link set veth1 up")
    assert wait_peek(lab, state, lambda v: v == ["LOWERLAYERDOWN"]) in (["LOWERLAYERDOWN"], ["DOWN"])
    lab.ok("%netns ns1 ip link set veth2 up")
    assert wait_peek(lab, state, lambda v: v == ["UP"]) == ["UP"]
    lab.ok("w.close()")
    n = peek(lab, "w.refreshes")
    time.sleep(0.6)
    assert peek(lab, "w.refreshes") == n  # no more reads once the widget is closed


def test_nothing_is_read_without_a_view(lab):
    lab.ok("from netlab_magic.widgets import topology, counters\nt = topology(interval=0.1)\n"
           "c = counters(interval=0.1)")
    reads = "[t.refreshes, c.refreshes]"
    before = peek(lab, reads)
    lab.ok("!ip netns add ns9")
    time.sleep(1.0)
    after = peek(lab, reads)
    assert after[0] == before[0], (before, after)  # nobody looks at the topology: not read
    assert after[1] - before[1] <= 1  # the counters: once, when the cell started (the baseline)
    assert peek(lab, "[t.polling, c.polling]") == [False, False]
    view(lab, "t")
    assert wait_peek(lab, "t.refreshes", lambda v: v > after[0]) > after[0]
    assert peek(lab, "[n['name'] for n in t.snapshot['namespaces']]") == ["host", "ns9"]
    lab.ok("t.close(); c.close()")


def test_rerunning_a_cell_ten_times_leaves_one_poller_and_one_widget(lab):
    code = "from netlab_magic.widgets import topology, counters\nt = topology()\nc = counters()\nt"
    for k in range(10):
        run_in_cell(lab, code, "cell-1")
        view(lab, "t", vid=f"view-{k}")  # the new output's view; the old one went with the output
    lab.ok("import threading, ipywidgets.widgets.widget as _w\n"
           "from netlab_magic.widgets import TopologyWidget, CountersWidget")
    assert peek(lab, "sum(1 for x in threading.enumerate() if x.name == 'netlab-poller')") == 1
    alive = "[type(x).__name__ for x in list(_w._instances.values()) if isinstance(x, (TopologyWidget, CountersWidget))]"
    assert sorted(peek(lab, alive)) == ["CountersWidget", "TopologyWidget"]
    assert peek(lab, "t.polling") is True
    run_in_cell(lab, "t2 = topology()", "cell-2")  # another cell's widget: both stay
    assert sorted(peek(lab, alive)) == ["CountersWidget", "TopologyWidget", "TopologyWidget"]
    lab.ok("t.close(); c.close(); t2.close()")


def test_counters_count_what_moved_since_the_last_cell(lab):
    lab.ok("!ip link add veth1 type veth peer name veth2 && ip addr add 10.9.0.1/24 dev veth1 && "
           "ip link set veth1 up && ip link set veth2 up && iptables -A OUTPUT -d 10.9.0.2 -j ACCEPT")
    lab.ok("from netlab_magic.widgets import counters\nc = counters('host', interval=0.2)")
    view(lab, "c")
    rule = "[[r['packets'], r['dpackets']] for ch in c.chains if ch['name'] == 'OUTPUT' for r in ch['rules']]"
    assert peek(lab, rule) == [[0, 0]]
    lab.run("!ping -c 2 -i 0.2 -W 1 10.9.0.2")  # nobody answers; the packets still leave
    got = wait_peek(lab, rule, lambda v: v and v[0][1] >= 2)
    assert got[0][0] >= 2 and got[0][1] == got[0][0], got  # moved by this cell: highlighted
    time.sleep(1.0)
    assert peek(lab, rule) == got  # still highlighted while no other cell runs
    assert "1 moved since the last cell ran" in peek(lab, "c.summary()")
    lab.ok("x = 1")  # the next cell: nothing moved since it started
    assert wait_peek(lab, rule, lambda v: v[0][1] == 0) == [[got[0][0], 0]]
    lab.ok("c.close()")


def test_outputs_show_themselves_without_widgets_or_matplotlib_inline(lab):
    lab.ok("!ip netns add ns1\n!ip link add veth1 type veth peer name veth2 netns ns1\n"
           "from netlab_magic import Lab\nfrom netlab_magic.widgets import draw, topology, counters")
    fmt = "sorted(get_ipython().display_formatter.format({})[0])"
    # a fresh kernel: nothing registered a PNG printer for matplotlib figures
    assert peek(lab, "'matplotlib_inline.backend_inline' in __import__('sys').modules "
                     "and bool(get_ipython().display_formatter.formatters['image/png'].type_printers)") is False
    assert peek(lab, fmt.format("draw(Lab.current().snapshot())")) == ["image/png", "text/plain"]
    lab.ok("t = topology(); c = counters()")
    want = ["application/vnd.jupyter.widget-view+json", "image/png", "text/plain"]
    assert peek(lab, fmt.format("t")) == want and peek(lab, fmt.format("c")) == want
    text = peek(lab, "get_ipython().display_formatter.format(t)[0]['text/plain']")
    assert text.splitlines()[0] == "netlab topology: 2 namespaces, 1 veth pair, 0 bridges"
    assert "veth1 DOWN (admin down) <-> ns1/veth2" in text
    lab.ok("t.close(); c.close()")


def test_idle_cpu_with_both_widgets_shown(lab):
    """Both widgets shown on a 30-namespace lab, kernel idle: the poller costs (almost) nothing.
    (benchmarks/widgets_idle.py measures it on 100 namespaces.)"""
    lab.ok("from netlab_magic import Lab\nfrom netlab_magic.build import build_star\n"
           "build_star(Lab.current(), 30)\nfrom netlab_magic.widgets import topology, counters\n"
           "t = topology(); c = counters()", timeout=120)
    view(lab, "t"), view(lab, "c")
    cpu = "(lambda r, c: r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime)(" \
          "__import__('resource').getrusage(0), __import__('resource').getrusage(-1))"
    time.sleep(8)  # past the busy seconds after the last cell
    c0, t0 = peek(lab, cpu), time.time()
    time.sleep(10)
    c1, t1 = peek(lab, cpu), time.time()
    share = (c1 - c0) / (t1 - t0)
    assert share < 0.05, f"idle kernel with both widgets used {share:.1%} of a core"
    assert peek(lab, "[t.polling, c.polling]") == [True, True]
    lab.ok("t.close(); c.close()")
