"""Demo 2 (``notebooks/03-bridge.ipynb``) in a real JupyterLab, run cell by cell in Chromium (issue 5).

The notebook is copied with its outputs cleared and opened with the netlab kernel (a
``netlab`` kernelspec written to a temporary JUPYTER_PATH, so the test does not depend on
what is installed). Every code cell is run through the UI (Shift+Enter), top to bottom, and
the rendered widgets are checked as the lab grows:

* the topology widget starts with the host alone, then ``ns1`` and ``ns3`` appear with their
  veth links, then ``bridge0``;
* the counters widget's ``FORWARD`` policy row (``DROP``) climbs after the ping that is dropped;
* after ``iptables -I FORWARD -o bridge0 -j ACCEPT`` the rule's row appears and climbs by the
  ping's request and reply, while the policy's count stays;
* a test-only last cell takes ``veth2`` down: its half of the link turns red (DOWN).

Screenshots: ``artifacts/demo2-*.png`` (``docs/widgets.png`` too when ``NETLAB_DOCS_SCREENSHOT=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from jlab import (ARTIFACTS, REPO, attr, browser_tools_missing, compose, jupyter_lab,  # noqa: E402
                  netlab_kernelspec, open_notebook, run_cell, shot, shutdown_kernels)

MISSING = browser_tools_missing()
pytestmark = [pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}"),
              pytest.mark.timeout(600)]

NOTEBOOK = REPO / "notebooks" / "03-bridge.ipynb"
POLICY = "filter/FORWARD/policy"
ACCEPT = "filter/FORWARD/-o bridge0 -j ACCEPT"
# appended to the test's copy only: a link goes down, the picture follows
LINK_DOWN = "!ip link set dev veth2 down"


def _copy_without_outputs(dst: Path) -> list[str]:
    """``03-bridge.ipynb`` with its outputs cleared and the test's own last cell; the code cells' sources."""
    nb = json.loads(NOTEBOOK.read_text())
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
            c["metadata"].pop("execution", None)
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "test-link-down",
                        "metadata": {}, "outputs": [], "source": LINK_DOWN})
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3 (netlab)", "language": "python", "name": "netlab"}
    dst.write_text(json.dumps(nb, indent=1))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.fixture(scope="module")
def demo2(tmp_path_factory):
    """JupyterLab serving a fresh copy of Demo 2, with a ``netlab`` kernelspec of its own."""
    root = tmp_path_factory.mktemp("demo2")
    env = netlab_kernelspec(tmp_path_factory.mktemp("kernels"))
    sources = _copy_without_outputs(root / "demo2.ipynb")
    with jupyter_lab(root, env) as url:
        try:
            yield url, sources
        finally:
            shutdown_kernels(url)


def _index(sources: list[str], start: str) -> int:
    """The code cell whose source starts with ``start``."""
    for k, src in enumerate(sources):
        if src.lstrip().startswith(start):
            return k
    raise AssertionError(f"03-bridge.ipynb has no code cell starting with {start!r}")


def _packets(page, widget: int, key: str) -> int | None:
    """The packets of one row (a policy or a rule) of the ``widget``-th counters widget."""
    v = page.evaluate(
        "([i, key]) => document.querySelectorAll('.netlab-counters')[i]"
        "?.querySelector(`tr[data-key=\"${key}\"]`)?.dataset.packets ?? null", [widget, key])
    return None if v is None else int(v)


def _wait_packets(page, widget: int, key: str, at_least: int, timeout: float = 15) -> int:
    page.wait_for_function(
        "([i, key, n]) => Number(document.querySelectorAll('.netlab-counters')[i]"
        "?.querySelector(`tr[data-key=\"${key}\"]`)?.dataset.packets ?? -1) >= n",
        arg=[widget, key, at_least], timeout=timeout * 1000)
    return _packets(page, widget, key)


def test_demo2_topology_grows_and_forward_counters_climb(browser, demo2):
    from netlab_magic.widgets.layout import STATE_COLORS

    url, sources = demo2
    page = open_notebook(browser, url, "demo2.ipynb")
    try:
        k_topo = _index(sources, "from netlab_magic.widgets import topology, counters")
        k_ns = _index(sources, "!ip netns add ns1")
        k_bridge = _index(sources, "!ip addr flush dev veth2")
        k_drop_counters = _index(sources, 'counters("host", table="filter")')
        k_drop_ping = _index(sources, 'across_bridge.beside(ping("ns3", "10.0.0.1"')  # the predicted ping
        k_accept = _index(sources, "!iptables -I FORWARD -o bridge0 -j ACCEPT")
        k_accept_ping = _index(sources[k_accept:], "%netns ns3 ping -c 1 -W 1 10.0.0.1") + k_accept
        k_down = len(sources) - 1
        assert k_topo < k_ns < k_bridge < k_drop_counters < k_drop_ping < k_accept < k_accept_ping < k_down

        def run_to(stop: int, start: int) -> int:
            for k in range(start, stop + 1):
                run_cell(page, k)
            return stop + 1

        # -- the topology: the host alone, then ns1 and ns3, then the bridge ------------------
        nxt = run_to(k_topo, 0)
        topo = page.locator(".netlab-topology").first
        svg = topo.locator("svg.nl-svg")
        svg.wait_for()
        assert topo.locator("g.nl-node[data-kind='netns']").count() == 1
        assert topo.locator("g.nl-node[data-host='true']").count() == 1
        assert topo.locator("g.nl-link[data-kind='veth']").count() == 0
        assert topo.locator("g.nl-node[data-kind='bridge']").count() == 0

        nxt = run_to(k_ns, nxt)
        page.wait_for_function(
            "() => document.querySelector('.netlab-topology svg.nl-svg')?.dataset.namespaces === '3'",
            timeout=15_000)
        for ns in ("ns1", "ns3"):
            assert topo.locator(f"g.nl-node[data-kind='netns'][data-netns='{ns}']").count() == 1, ns
        assert topo.locator("g.nl-link[data-kind='veth']").count() == 2
        half = "svg.nl-svg line.nl-half[data-netns='host'][data-ifname='veth2']"
        page.wait_for_function(
            f"() => document.querySelector(\"{half}\")?.getAttribute('data-state') === 'UP'", timeout=15_000)
        assert topo.locator("g.nl-node[data-kind='bridge']").count() == 0
        shot(topo, "demo2-topology-namespaces.png")

        nxt = run_to(k_bridge, nxt)
        topo.locator("g.nl-node[data-kind='bridge'][data-ifname='bridge0']").wait_for(timeout=15_000)
        page.wait_for_function(
            "() => document.querySelector(\"g.nl-node[data-ifname='bridge0']\")?.dataset.state === 'UP'",
            timeout=15_000)
        assert topo.locator("g.nl-node[data-kind='netns']").count() == 3
        tip = page.eval_on_selector(
            "svg.nl-svg g.nl-port[data-netns='ns1'][data-ifname='veth1'] > title", "el => el.textContent")
        assert "10.0.0.1/24" in tip, tip

        # -- FORWARD's policy DROP counts the ping that the bridge does not pass ---------------
        nxt = run_to(k_drop_counters, nxt)
        counters = page.locator(".netlab-counters").first
        try:
            counters.locator(f"tr[data-key='{POLICY}']").wait_for(timeout=20_000)
        except Exception:
            pytest.fail(f"no FORWARD policy row in the counters widget: {counters.inner_text()[:1000]!r}")
        assert "policy DROP" in counters.locator(f"tr[data-key='{POLICY}'] td.nl-spec").inner_text()
        drop0 = _packets(page, 0, POLICY)
        assert drop0 == 0, drop0  # nothing was forwarded yet
        counters.locator(f"tr[data-key='{POLICY}']").click()  # plot it
        nxt = run_to(k_drop_ping, nxt)
        drop1 = _wait_packets(page, 0, POLICY, drop0 + 1)
        _while_highlighted(page, 0, POLICY)
        shot(counters, "demo2-counters-drop.png")

        # -- the ACCEPT rule: it appears, then counts the request and the reply ---------------
        nxt = run_to(k_accept, nxt)
        counters.locator(f"tr[data-key='{ACCEPT}']").wait_for(timeout=15_000)
        assert _packets(page, 0, ACCEPT) == 0
        nxt = run_to(k_accept_ping - 1, nxt)  # the second counters widget, where the learner is
        assert page.locator(".netlab-counters").count() == 2
        page.locator(".netlab-counters").nth(1).locator(f"tr[data-key='{ACCEPT}']").wait_for()
        second = page.locator(".netlab-counters").nth(1)
        second.locator(f"tr[data-key='{ACCEPT}']").click()  # plot it
        # a flat line at 0 has no height: "attached", not "visible"
        page.wait_for_selector(f".netlab-counters polyline[data-key='{ACCEPT}']", state="attached",
                               timeout=10_000)
        nxt = run_to(k_accept_ping, nxt)
        for w in (1, 0):
            assert _wait_packets(page, w, ACCEPT, 2) >= 2
            if w == 1:
                _while_highlighted(page, 1, ACCEPT)
                shot(second, "demo2-counters-accept.png")
            assert _packets(page, w, POLICY) == drop1, "the policy's DROP count must not move any more"
        shot(topo, "demo2-topology-bridge.png")

        # -- the rest of the demo (the chat, the exercise), then a link goes down -------------
        nxt = run_to(k_down - 1, nxt)
        assert page.locator(".netlab-topology svg.nl-svg").first.get_attribute("data-namespaces") == "3"
        assert _attr_state(page, half) == "UP"
        run_cell(page, k_down)
        page.wait_for_function(
            f"() => document.querySelector(\"{half}\")?.getAttribute('data-state') === 'DOWN'", timeout=15_000)
        assert attr(page, half, "stroke") == STATE_COLORS["DOWN"]
        far = "svg.nl-svg line.nl-half[data-netns='ns1'][data-ifname='veth1']"
        page.wait_for_function(
            f"() => ['LOWERLAYERDOWN', 'DOWN'].includes(document.querySelector(\"{far}\")?.getAttribute('data-state'))",
            timeout=15_000)
        other = "svg.nl-svg line.nl-half[data-netns='host'][data-ifname='veth4']"
        assert _attr_state(page, other) == "UP"
        shot(topo, "demo2-topology-down.png")
        compose(ARTIFACTS / "demo2-topology-bridge.png", ARTIFACTS / "demo2-counters-accept.png",
                ARTIFACTS / "demo2-widgets.png")
        if os.environ.get("NETLAB_DOCS_SCREENSHOT"):
            shutil.copy(ARTIFACTS / "demo2-widgets.png", REPO / "docs" / "widgets.png")
        page.console.check()
    finally:
        page.close()


def _while_highlighted(page, widget: int, key: str) -> None:
    """Wait (briefly, best effort: it lasts one refresh) for a row's "moved" highlight, for the screenshot."""
    try:
        page.wait_for_function(
            "([i, key]) => document.querySelectorAll('.netlab-counters')[i]"
            "?.querySelector(`tr[data-key=\"${key}\"]`)?.dataset.moved === 'true'",
            arg=[widget, key], timeout=2_000)
    except Exception:
        pass


def _attr_state(page, selector: str) -> str | None:
    return attr(page, selector, "data-state")
