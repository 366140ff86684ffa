"""The trace widget in a real JupyterLab (notebook 06, Part 1), driven by headless Chromium.

``notebooks/06-follow-one-packet.ipynb`` is copied with its outputs cleared and opened with the
netlab kernel; its cells run through the UI up to ``t.widget()``, the trace of Demo 2's ping that
FORWARD's policy drops. Then, in the rendered widget:

* one panel per namespace the packet crossed (ns3, host), and in the host's panel the iptables
  FORWARD hook that br_netfilter calls is marked as the drop, the routed path is untouched;
* the hop table has a line per hop, the last one (policy DROP) in red;
* "next hop" selects hop 1, in the table and in the picture; a click on the last line selects it
  and its node; the kernel's ``step`` follows the clicks.

No error may reach the browser console. Screenshot: ``artifacts/trace-widget.png`` (and
``docs/trace-widget.png`` with ``NETLAB_DOCS_SCREENSHOT=1``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from jlab import (ARTIFACTS, REPO, browser_tools_missing, jupyter_lab, netlab_kernelspec,  # noqa: E402
                  open_notebook, run_cell, shot, shutdown_kernels)

MISSING = browser_tools_missing()
pytestmark = [pytest.mark.skipif(MISSING is not None, reason=f"browser test skipped: {MISSING}"),
              pytest.mark.timeout(400)]

NOTEBOOK = REPO / "notebooks" / "06-follow-one-packet.ipynb"


def _copy(dst: Path) -> list[str]:
    """Notebook 06 up to its widget cell, outputs cleared, the widget kept as ``w``; the code sources."""
    nb = json.loads(NOTEBOOK.read_text())
    cells = []
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        c["outputs"], c["execution_count"] = [], None
        c["metadata"].pop("execution", None)
        if "".join(c["source"]).strip() == "t.widget()":
            c["source"] = "w = t.widget()\nw"
            cells.append(c)
            break
        cells.append(c)
    cells.append({"cell_type": "code", "execution_count": None, "id": "test-step", "metadata": {},
                  "outputs": [], "source": "print('step', w.step)"})
    nb["cells"] = cells
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3 (netlab)", "language": "python", "name": "netlab"}
    dst.write_text(json.dumps(nb, indent=1))
    return ["".join(c["source"]) for c in cells]


@pytest.fixture(scope="module")
def notebook06(tmp_path_factory):
    root = tmp_path_factory.mktemp("trace")
    env = netlab_kernelspec(tmp_path_factory.mktemp("kernels"))
    sources = _copy(root / "trace.ipynb")
    with jupyter_lab(root, env) as url:
        try:
            yield url, sources
        finally:
            shutdown_kernels(url)


def test_the_trace_widget_draws_the_drop_and_steps_through_hops(browser, notebook06):
    url, sources = notebook06
    page = open_notebook(browser, url, "trace.ipynb")
    try:
        k_widget = next(k for k, s in enumerate(sources) if s.startswith("w = t.widget()"))
        for k in range(k_widget + 1):
            run_cell(page, k)
        widget = page.locator(".netlab-trace").first
        widget.locator("svg.nl-trace-svg").wait_for()

        panels = [p.get_attribute("data-netns") for p in widget.locator("g.nl-panel").all()]
        assert panels == ["ns3", "host"]
        host = widget.locator("g.nl-panel[data-netns='host']")
        assert host.locator("g[data-node='brnf:FORWARD']").get_attribute("data-state") == "drop"
        assert host.locator("g[data-node='br:FORWARD']").get_attribute("data-state") == "passed"
        assert host.locator("g[data-node='ip:INPUT']").get_attribute("data-state") == "idle"
        assert widget.locator(".nl-note-drop").all_text_contents() == ["\u2718 filter FORWARD: policy DROP"]
        assert "dropped in host by filter FORWARD policy DROP" in widget.locator(".nl-fate").inner_text()

        rows = widget.locator("tr.nl-row")
        assert rows.count() == 6
        last = rows.nth(5)
        assert "nl-row-drop" in last.get_attribute("class") and "policy DROP" in last.inner_text()

        widget.locator("button.nl-next").click()
        page.wait_for_function("() => document.querySelector('.netlab-trace tr.nl-row.nl-selected')?.dataset.step === '1'")
        assert widget.locator("g.nl-selected[data-node='ip:OUTPUT']").count() == 1
        last.click()
        page.wait_for_function("() => document.querySelector('.netlab-trace tr.nl-row.nl-selected')?.dataset.step === '6'")
        assert widget.locator("g.nl-selected[data-node='brnf:FORWARD']").count() == 1
        assert "hop 6 of 6" in widget.locator(".nl-where").inner_text()

        out = run_cell(page, k_widget + 1)
        assert out.strip().endswith("step 6"), out  # Python holds the state the clicks set

        path = shot(widget, "trace-widget.png")
        if os.environ.get("NETLAB_DOCS_SCREENSHOT") == "1":
            shutil.copy(path, REPO / "docs" / "trace-widget.png")
        ARTIFACTS.mkdir(exist_ok=True)
        page.console.check()
    finally:
        page.close()
