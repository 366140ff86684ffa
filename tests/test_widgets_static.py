"""The widgets' static outputs (widgets/_static.py) and their ES modules (widgets/*.js)."""

from __future__ import annotations

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")

from netlab_magic.widgets import CountersWidget, TopologyWidget, parse_iptables_save  # noqa: E402
from netlab_magic.widgets.iptables import flatten  # noqa: E402
from support.widgets import CAPTURED, WIDGETS, star  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_poller")


def test_outputs_carry_a_picture_and_text():
    """GitHub, nbviewer, nbconvert, an untrusted notebook: the lab, not ``<... object at 0x...>``."""
    from IPython.core.formatters import DisplayFormatter

    t = TopologyWidget(lambda: star(4, {2: ("DOWN", "LOWERLAYERDOWN")}), interval=None)
    c = CountersWidget(lambda: CAPTURED, interval=None, where="host")
    fmt = DisplayFormatter()
    for w in (t, c):
        data, _ = fmt.format(w)
        assert {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"} <= set(data)
        import base64

        assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG"
        assert "object at 0x" not in data["text/plain"]
    text = fmt.format(t)[0]["text/plain"]
    assert text.splitlines()[0] == "netlab topology: 4 namespaces, 3 veth pairs, 1 bridge"
    assert "br0 (bridge) UP 10.0.0.1/24 ports: veth1" in text
    assert "veth2 DOWN (admin down) port of br0 <-> c2/eth0" in text and "lo UP 127.0.0.1/8" in text
    text = fmt.format(c)[0]["text/plain"]
    assert text.splitlines()[0].startswith("iptables table filter in host: 4 chains, 6 rules")
    assert '    1        4        336  -m comment --comment "two  spaces" -j ACCEPT' in text
    # a closed widget (ipywidgets drops its view) still shows its last picture and text
    t.close()
    data, _ = fmt.format(t)
    assert "image/png" in data and "application/vnd.jupyter.widget-view+json" not in data
    assert data["text/plain"].startswith("<TopologyWidget: 4 namespaces")
    c.close()


def test_flatten_keys_cover_policies_and_rules():
    flat = flatten(parse_iptables_save(CAPTURED)["filter"])
    assert "filter/FORWARD/policy" in flat and "filter/DOCKER-USER/policy" not in flat
    assert len(flat) == 3 + 6


def test_esm_modules_listen_announce_and_clean_up():
    for cls in (TopologyWidget, CountersWidget):
        src = cls._esm  # the widget's own module, after the shared dom.js and view.js
        assert "export default" in src and "model.off(" in src
        assert "http://" not in src.replace("http://www.w3.org/2000/svg", "")  # no CDN
        # each view says it is there, and when it goes (render's cleanup)
        assert 'model.send({ netlab: "view", id, alive, hidden:' in src and "say(false)" in src
    topo = (WIDGETS / "topology.js").read_text()
    assert '"change:diagram"' in topo and 'get("layout")' not in topo
