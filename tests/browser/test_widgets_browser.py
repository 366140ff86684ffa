"""The widgets in a real JupyterLab, driven by headless Chromium.

Starts ``jupyter lab`` on 127.0.0.1 with a notebook that builds a small sandbox lab
(``support/sandboxlab.py``'s ``SandboxLab``: its own user+network namespaces) and shows both widgets,
then asserts on the rendered SVG/DOM: nodes and links are there, a link's colour changes
after ``ip link set ... down``, a counter moves after a ping and stays highlighted until the
next cell, a 100-namespace lab is fitted to its box with legible text, re-running a widget's
cell ten times leaves one widget and one poller, ``w.layout.height`` is obeyed; and a saved
notebook opened untrusted, without widget state, shows every widget as a picture. Every test
fails on an error in the browser console. Screenshots go to ``artifacts/`` (``docs/widgets.png``
is made by ``test_demo2_browser.py``, from Demo 2).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from jlab import (ARTIFACTS, REPO, attr as _attr, browser_tools_missing, compose as _compose,  # noqa: E402
                  jupyter_lab, netlab_kernelspec, open_notebook, run_cell as _run_cell, shot as _shot,
                  shutdown_kernels, write_notebook)
from support.sandboxlab import can_sandbox  # noqa: E402


MISSING = browser_tools_missing() or can_sandbox()
pytestmark = [pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}"),
              pytest.mark.timeout(400)]

ICMP_KEY = "filter/INPUT/-i br0 -p icmp -j ACCEPT"

CELLS = [
    # 0: the lab and the widgets
    f"""import sys
sys.path[:0] = [{str(HERE.parent)!r}, {str(REPO)!r}]
from support.sandboxlab import SandboxLab
from netlab_magic.widgets import TopologyWidget, CountersWidget
lab = SandboxLab()
lab.snapshot().names""",
    "topo = TopologyWidget(lab.snapshot, interval=0.3)\ntopo",
    "counters = CountersWidget(lab.iptables_save, interval=0.5)\ncounters",
    # 3: take a link down
    "lab.sh('ip link set veth-c1 down')",
    # 4: traffic through the INPUT chain
    "print(lab.sh('ip netns exec c2 ping -c 3 -i 0.2 -W 1 10.77.0.1'))",
    # 5: big pictures: 100 namespaces, 1,000 rules (synthetic, no lab needed)
    f"""sys.path.insert(0, {str(HERE.parent)!r})
from support.widgets import star, big_ruleset
big = TopologyWidget(lambda: star(100), interval=None)
big""",
    """import itertools
tick = itertools.count()
def many_rules():  # 1,000 rules; rule 8 moves by 2 packets per read
    return big_ruleset(1000, {7: 2 * next(tick), 900: 5})
many = CountersWidget(many_rules, interval=0.5)
many""",
    # 7: a cell that moves nothing: what moved in the previous cells is no longer highlighted
    "quiet = True",
    # 8: re-run ten times (test_rerun_leaves_one_widget_and_one_poller)
    "rerun = TopologyWidget(lab.snapshot, interval=0.3)\nrerun",
    # 9: what the kernel holds
    """import json, threading, ipywidgets.widgets.widget as _w
print(json.dumps({
    "pollers": sum(1 for t in threading.enumerate() if t.name == "netlab-poller"),
    "topology_widgets": sum(1 for x in list(_w._instances.values()) if isinstance(x, TopologyWidget)),
    "rerun_views": rerun.views, "rerun_polling": rerun.polling,
    "threads": len(threading.enumerate()),
}))""",
    # 10: ipywidgets' own layout: the picture fits 300 px
    'topo.layout.height = "300px"',
    # 11
    "for w in (topo, counters, big, many, rerun): w.close()\nlab.close()",
]


# The same lab made with the project's own core, in the netlab kernel: Lab.current().
NETLAB_CELLS = [
    f"""import sys
sys.path.insert(0, {str(REPO)!r})
%load_ext netlab_magic
import subprocess
from netlab_magic import Lab
from netlab_magic.widgets import TopologyWidget, CountersWidget
lab = Lab.current()
h = lab.host
h.add_bridge("br0"); h.addr_add("br0", "10.77.0.1/24"); h.link_up("br0")
for k, c in enumerate(["c1", "c2"], 11):
    ns = lab.add_netns(c)
    h.add_veth(f"veth-{{c}}", peer="eth0", peer_netns=c)
    h.link_set_master(f"veth-{{c}}", "br0"); h.link_up(f"veth-{{c}}")
    ns.addr_add("eth0", f"10.77.0.{{k}}/24"); ns.link_up("eth0"); ns.link_up("lo")
lab.run("host", "iptables -A INPUT -i br0 -p icmp -j ACCEPT", check=True)
# the poller thread is started from this (main) thread, so it is in the lab's host too
def iptables_save():
    return subprocess.run(["iptables-save", "-c"], capture_output=True, text=True).stdout
lab.snapshot().names""",
    "topo = TopologyWidget(lab.snapshot, interval=0.3)\ntopo",
    "counters = CountersWidget(iptables_save, interval=0.5)\ncounters",
    'h.link_down("veth-c1")',
    'print(lab.run("c2", "ping -c 3 -i 0.2 -W 1 10.77.0.1", check=True).stdout)',
    "topo.close(); counters.close()",
]


# Saved with their outputs, run by nbclient (a real kernel), then stripped of the widget state:
# what GitHub, nbviewer, nbconvert or an untrusted notebook get.
STATIC_CELLS = [
    f"""import sys
sys.path[:0] = [{str(HERE.parent)!r}, {str(REPO)!r}]
from support.widgets import star, big_ruleset
from netlab_magic.widgets import TopologyWidget, CountersWidget""",
    "TopologyWidget(lambda: star(4, {2: ('DOWN', 'LOWERLAYERDOWN')}), interval=None)",
    "TopologyWidget(lambda: star(100), interval=None)",
    "CountersWidget(lambda: big_ruleset(12, {3: 7}), interval=None, where='host')",
]


def _saved_without_widget_state(path: Path) -> None:
    import nbclient
    import nbformat

    write_notebook(path, STATIC_CELLS)
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=180).execute()
    nb.metadata.pop("widgets", None)  # no widget state: the live view cannot be restored
    nbformat.write(nb, path)


# Both widgets on a 100-namespace lab, shown in the browser, the kernel idle: what does it cost?
IDLE_CELLS = [
    f"""import os, sys
sys.path.insert(0, {str(REPO)!r})
%load_ext netlab_magic
from netlab_magic import Lab
from netlab_magic.build import build_star
build_star(Lab.current(), 100)
print(os.getpid())""",
    "from netlab_magic.widgets import topology, counters\nt = topology()\nt",
    "c = counters('host')\nc",
    "print(t.polling, c.polling, t.refreshes, c.refreshes)",
]


def _extension_missing() -> str | None:
    try:
        import netlab_magic.jupyter.extension  # noqa: F401
        from netlab_magic import Lab  # noqa: F401
    except ImportError as err:
        return f"the netlab_magic extension is not importable: {err}"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("jlab")
    write_notebook(root / "widgets.ipynb", CELLS)
    # the netlab kernel: as root it only loads the extension, otherwise the lab runs rootless
    write_notebook(root / "widgets_netlab.ipynb", NETLAB_CELLS, kernel="netlab", display_name="Python 3 (netlab)")
    _saved_without_widget_state(root / "saved.ipynb")
    write_notebook(root / "idle.ipynb", IDLE_CELLS, kernel="netlab", display_name="Python 3 (netlab)")
    with jupyter_lab(root, netlab_kernelspec(tmp_path_factory.mktemp("kernels"))) as url:
        try:
            yield url, root
        finally:
            shutdown_kernels(url)


def _open(browser, server, notebook: str):
    return open_notebook(browser, server[0], notebook)


@pytest.fixture(scope="module")
def page(browser, server):
    pg = _open(browser, server, "widgets.ipynb")
    yield pg
    pg.close()


def _font_px(page, selector: str) -> float:
    """The smallest on-screen font size (px) of the texts matched by ``selector``."""
    return page.eval_on_selector_all(
        selector, "els => Math.min(...els.map(t => parseFloat(t.getAttribute('font-size')) * "
                  "t.ownerSVGElement.getScreenCTM().a))")


def _fit(page, nth: int) -> dict:
    """The ``nth`` topology view: its picture's size, its box, how it was fitted."""
    return page.evaluate(
        """(i) => { const v = document.querySelectorAll('.netlab-topology')[i];
                    const s = v.querySelector('svg.nl-svg'), b = v.querySelector('.nl-scroll');
                    return {w: s.getBoundingClientRect().width, h: s.getBoundingClientRect().height,
                            bw: b.clientWidth, bh: b.clientHeight, fit: s.dataset.fit,
                            scroll: [b.scrollWidth > b.clientWidth + 1, b.scrollHeight > b.clientHeight + 1]}; }""",
        nth)


def test_widgets_render_and_follow_the_lab(page):
    from netlab_magic.widgets.layout import STATE_COLORS

    for k in range(3):
        _run_cell(page, k)
    topo = page.locator(".netlab-topology").first
    topo.locator("svg.nl-svg").wait_for()
    # fitted to its box, text 12 px or more, the bridge's address drawn, lo UP
    f = _fit(page, 0)
    assert f["fit"] in ("box", "readable") and f["scroll"] == [False, False], f
    assert f["w"] >= 0.6 * f["bw"] or f["h"] >= 0.9 * 520, f  # enlarged to the box, not 320x540 in 930
    assert _font_px(page, ".netlab-topology svg.nl-svg text") >= 11.9
    assert "10.77.0.1/24" in topo.locator("g.nl-bridge text").text_content()
    assert _attr(page, "g.nl-port[data-netns='c1'][data-ifname='lo']", "data-state") == "UP"
    assert _attr(page, "g.nl-port[data-netns='c1'][data-ifname='lo']", "data-operstate") == "UNKNOWN"
    # nodes and links
    assert topo.locator("g.nl-node[data-kind='netns']").count() == 4
    assert topo.locator("g.nl-node[data-host='true']").count() == 1
    assert topo.locator("g.nl-node[data-kind='bridge'][data-ifname='br0']").count() == 1
    assert topo.locator("g.nl-link[data-kind='veth']").count() == 4
    half = "svg.nl-svg line.nl-half[data-netns='host'][data-ifname='veth-c1']"
    far = "svg.nl-svg line.nl-half[data-netns='c1'][data-ifname='eth0']"
    assert _attr(page, half, "data-state") == "UP"
    assert _attr(page, half, "stroke") == STATE_COLORS["UP"]
    # hover detail: the interface's <title>
    tip = page.eval_on_selector(
        "svg.nl-svg g.nl-port[data-netns='c1'][data-ifname='eth0'] > title", "el => el.textContent")
    assert "c1/eth0" in tip and "10.77.0.11/24" in tip and "peer host/veth-c1" in tip
    # the half-up veth of "solo" is drawn half-up
    assert _attr(page, "g.nl-port[data-netns='host'][data-ifname='v-solo']", "data-admin") == "down"
    assert _attr(page, "g.nl-port[data-netns='solo'][data-ifname='eth0']", "data-admin") == "up"
    assert page.eval_on_selector("g.nl-port[data-netns='host'][data-ifname='v-solo'] circle",
                                 "el => el.getAttribute('fill')") == "#fff"  # hollow: admin down
    x0 = "svg.nl-svg line.nl-half[data-netns='solo'][data-ifname='x0']"
    page.wait_for_function(
        f"() => document.querySelector(\"{x0}\")?.getAttribute('data-state') === 'LOWERLAYERDOWN'",
        timeout=15_000)
    assert _attr(page, x0, "stroke") == STATE_COLORS["LOWERLAYERDOWN"]
    _shot(topo, "browser-topology-up.png")

    # take the link down: the picture follows without re-running anything
    _run_cell(page, 3)
    page.wait_for_function(
        f"() => document.querySelector(\"{half}\")?.getAttribute('data-state') === 'DOWN'", timeout=15_000)
    assert _attr(page, half, "stroke") == STATE_COLORS["DOWN"]
    page.wait_for_function(
        f"() => ['LOWERLAYERDOWN', 'DOWN'].includes(document.querySelector(\"{far}\")?.getAttribute('data-state'))",
        timeout=15_000)
    assert _attr(page, far, "stroke") in (STATE_COLORS["LOWERLAYERDOWN"], STATE_COLORS["DOWN"])
    link = "g.nl-link[data-netns-a='host'][data-ifname-a='veth-c1'], g.nl-link[data-netns-b='host'][data-ifname-b='veth-c1']"
    assert page.eval_on_selector(link, "el => el.getAttribute('data-state')") != "UP"
    _shot(topo, "browser-topology-down.png")

    # counters: a ping moves the icmp rule of INPUT, highlighted with its delta
    counters = page.locator(".netlab-counters").first
    row = f".netlab-counters tr[data-key='{ICMP_KEY}']"
    counters.locator(f"tr[data-key='{ICMP_KEY}']").wait_for()
    assert _attr(page, row, "data-packets") == "0"
    assert counters.locator("section.nl-chain").count() == 3
    counters.locator(f"tr[data-key='{ICMP_KEY}']").click()  # select it for the plot
    _run_cell(page, 4)
    page.wait_for_function(
        f"() => Number(document.querySelector(\"{row}\")?.dataset.packets) >= 3", timeout=15_000)
    page.wait_for_function(f"() => document.querySelector(\"{row}\")?.dataset.moved === 'true'",
                           timeout=5_000)
    delta = page.eval_on_selector(f"{row} td.nl-delta", "el => el.textContent")
    assert delta.startswith("+") and "pkts" in delta
    assert "nl-moved" in _attr(page, row, "class")
    page.wait_for_selector(f".netlab-counters polyline[data-key='{ICMP_KEY}']", timeout=10_000)
    _shot(counters, "browser-counters.png")
    _compose(ARTIFACTS / "browser-topology-down.png", ARTIFACTS / "browser-counters.png",
             ARTIFACTS / "widgets.png")
    info = counters.locator(".nl-info").inner_text()
    assert "moved since the last cell ran" in info and " 0 moved" not in info, info
    # the highlight stays while no other cell runs...
    time.sleep(1.5)
    assert page.eval_on_selector(row, "el => el.dataset.moved") == "true"
    # ... and goes when the next cell runs (and moves nothing)
    _run_cell(page, 7)
    page.wait_for_function(f"() => document.querySelector(\"{row}\")?.dataset.moved === 'false'",
                           timeout=15_000)
    page.console.check()


def test_big_pictures_render(page):
    _run_cell(page, 5)
    big = page.locator(".netlab-topology").nth(1)
    big.locator("svg.nl-svg").wait_for()
    assert big.locator("g.nl-node[data-kind='netns']").count() == 100
    assert big.locator("g.nl-link[data-kind='veth']").count() == 99
    # fitted to the box both ways, no scrolling, names legible
    f = _fit(page, 1)
    assert f["fit"] == "box" and f["scroll"] == [False, False], f
    assert f["w"] <= f["bw"] + 1 and f["h"] <= f["bh"] + 1 and f["h"] >= 0.9 * f["bh"], f
    assert _font_px(page, ".netlab-topology:nth-of-type(1) svg.nl-svg text") >= 11.9
    assert page.eval_on_selector_all(
        ".netlab-topology svg[data-namespaces='100'] text.nl-ns-name",
        "els => Math.min(...els.map(t => parseFloat(t.getAttribute('font-size')) * t.ownerSVGElement.getScreenCTM().a))"
    ) >= 12.9
    _shot(big, "browser-topology-100.png")
    big.locator("button[data-zoom='+']").click()  # the user zooms in: it scrolls
    assert _fit(page, 1)["fit"] == "user" and _fit(page, 1)["scroll"] == [True, True]
    big.locator("button[data-zoom='fit']").click()
    assert _fit(page, 1)["fit"] == "box"
    t0 = time.monotonic()
    _run_cell(page, 6)
    many = page.locator(".netlab-counters").nth(1)
    many.locator("tr.nl-rule").first.wait_for()
    assert many.locator("tr.nl-rule:not(.nl-policy)").count() == 1000
    assert time.monotonic() - t0 < 30
    # live updates at that size: only rule 8 is highlighted, with what it moved since the cell ran
    row = ".netlab-counters tr[data-key='filter/FORWARD/-s 10.0.7.0/24 -j ACCEPT']"
    page.wait_for_function(f"() => document.querySelector(\"{row}\")?.dataset.moved === 'true'",
                           timeout=15_000)
    delta = page.eval_on_selector(f"{row} td.nl-delta", "el => el.textContent")
    dp = int(re.fullmatch(r"\+(\d+) pkts, \+(\d+) B", delta).group(1))
    assert dp % 2 == 0 and dp > 0 and delta.endswith(f"+{dp * 84} B"), delta
    assert many.locator("tr.nl-moved").count() == 1
    assert page.eval_on_selector(
        ".netlab-counters tr[data-key='filter/FORWARD/-s 10.3.150.0/24 -j ACCEPT']",
        "el => el.dataset.packets") == "5"
    _shot(many, "browser-counters-1000.png")
    page.console.check()


def test_rerun_leaves_one_widget_and_one_poller(page):
    """Re-running a widget's cell ten times: one widget, one view, one poller thread."""
    for _ in range(10):
        _run_cell(page, 8)
        page.locator(".jp-CodeCell").nth(8).locator(".netlab-topology svg.nl-svg").wait_for()
    assert page.locator(".jp-CodeCell").nth(8).locator(".netlab-topology").count() == 1
    time.sleep(1.0)  # the view's message arrives
    out = json.loads(_run_cell(page, 9).strip().splitlines()[-1])
    # topo, big, rerun: the nine earlier reruns were closed
    assert out["pollers"] == 1 and out["topology_widgets"] == 3, out
    assert out["rerun_views"] == 1 and out["rerun_polling"] is True, out
    page.console.check()


def test_layout_height_is_obeyed(page):
    """``w.layout`` is ipywidgets' Layout: a height set there is the box the picture fits."""
    _run_cell(page, 10)
    page.wait_for_function("() => document.querySelector('.netlab-topology').getBoundingClientRect().height <= 301")
    page.wait_for_function("() => document.querySelector('.netlab-topology svg.nl-svg').dataset.fit !== undefined")
    time.sleep(0.5)
    f = _fit(page, 0)
    assert page.evaluate("() => document.querySelector('.netlab-topology').getBoundingClientRect().height") <= 301
    # fitted to what is left of 300 px; only text that would fall under 12 px makes it scroll
    assert f["fit"] == "box" and f["scroll"] == [False, False] or f["fit"] == "readable", f
    assert f["fit"] == "readable" or f["h"] <= f["bh"] + 1, f
    _shot(page.locator(".netlab-topology").first, "browser-topology-300px.png")
    _run_cell(page, 11)
    page.console.check()


def test_widgets_with_the_netlab_extension(browser, server):
    """The same checks on a lab made by ``%load_ext netlab_magic`` (the project's core)."""
    from netlab_magic.widgets.layout import STATE_COLORS

    missing = _extension_missing()
    if missing:
        pytest.skip(missing)
    page = _open(browser, server, "widgets_netlab.ipynb")
    try:
        for k in range(3):
            _run_cell(page, k)
        topo = page.locator(".netlab-topology").first
        topo.locator("svg.nl-svg").wait_for()
        assert topo.locator("g.nl-node[data-kind='netns']").count() == 3
        assert topo.locator("g.nl-link[data-kind='veth']").count() == 2
        half = "svg.nl-svg line.nl-half[data-netns='host'][data-ifname='veth-c1']"
        page.wait_for_function(
            f"() => document.querySelector(\"{half}\")?.getAttribute('data-state') === 'UP'", timeout=15_000)
        _run_cell(page, 3)
        page.wait_for_function(
            f"() => document.querySelector(\"{half}\")?.getAttribute('data-state') === 'DOWN'", timeout=15_000)
        assert _attr(page, half, "stroke") == STATE_COLORS["DOWN"]
        row = f".netlab-counters tr[data-key='{ICMP_KEY}']"
        page.wait_for_selector(row)
        before = int(_attr(page, row, "data-packets"))
        _run_cell(page, 4)
        page.wait_for_function(
            f"() => Number(document.querySelector(\"{row}\")?.dataset.packets) >= {before + 3}", timeout=15_000)
        _shot(page.locator(".jp-Notebook"), "browser-netlab-extension.png")
        _run_cell(page, 5)
        page.console.check()
    finally:
        page.close()


def test_saved_notebook_shows_pictures_without_widgets(browser, server):
    """An untrusted notebook, saved without widget state: every widget is shown as its picture."""
    import nbformat

    nb = nbformat.read(server[1] / "saved.ipynb", as_version=4)
    outs = [c.outputs[0] for c in nb.cells[1:]]
    for out in outs:
        assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"} <= set(out.data)
        assert "object at 0x" not in out.data["text/plain"]
    assert outs[0].data["text/plain"].startswith("netlab topology: 4 namespaces, 3 veth pairs, 1 bridge")
    assert outs[2].data["text/plain"].startswith("iptables table filter in host: 3 chains, 12 rules")
    page = open_notebook(browser, server[0], "saved.ipynb", kernel=False)
    try:
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        for k in (1, 2, 3):
            img = cells.nth(k).locator(".jp-OutputArea-output img")
            img.wait_for(timeout=30_000)
            assert img.evaluate("el => el.naturalWidth") > 300
            assert cells.nth(k).locator(".netlab-topology, .netlab-counters").count() == 0
            assert "Error displaying widget" not in cells.nth(k).locator(".jp-OutputArea").inner_text()
        # the 100-namespace lab's picture is as wide as the live view, no wider
        assert 600 <= cells.nth(2).locator("img").evaluate("el => el.naturalWidth") <= 905
        _shot(page.locator(".jp-Notebook"), "browser-static-fallback.png")
        page.console.check()
    finally:
        page.close()


def _cpu_seconds(pid: int) -> float:
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(fields[k]) for k in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def test_idle_cost_of_both_widgets_on_100_namespaces(browser, server):
    """Both widgets shown on a 100-namespace lab, kernel idle: at most 2 % of a core."""
    missing = _extension_missing()
    if missing:
        pytest.skip(missing)
    page = _open(browser, server, "idle.ipynb")
    try:
        pid = int(_run_cell(page, 0, timeout=180).strip().splitlines()[-1])
        for k in (1, 2):
            _run_cell(page, k)
        page.locator(".netlab-topology svg[data-namespaces='101']").wait_for(timeout=30_000)  # and the host
        page.locator(".netlab-counters section.nl-chain").first.wait_for(timeout=30_000)
        assert _run_cell(page, 3).split()[:2] == ["True", "True"]  # both views reported in
        time.sleep(8)  # past the seconds of fast reads after a cell
        c0, t0 = _cpu_seconds(pid), time.monotonic()
        time.sleep(20)
        share = (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        print(f"idle kernel, both widgets shown, 100 namespaces: {share:.2%} of a core")
        assert share <= 0.02, f"{share:.2%} of a core"
        page.console.check()
    finally:
        page.close()
