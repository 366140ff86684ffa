"""widgets/topology_widget.py on real labs: a sandbox lab's link states, and the project's own Lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")

from netlab_magic.model import Peer  # noqa: E402
from netlab_magic.widgets import TopologyWidget, _poll  # noqa: E402
from support.waiting import wait_for  # noqa: E402
from support.widgets import view  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_poller")


def test_real_lab_topology_follows_link_state(sandbox_lab):
    snap = sandbox_lab.snapshot()
    assert snap.names == ("host", "c1", "c2", "solo")
    assert snap["host"].interface("veth-c1").master == "br0"
    assert snap["c1"].interface("eth0").peer == Peer("host", "veth-c1")
    w = TopologyWidget(sandbox_lab.snapshot, interval=0.2)
    view(w)
    _poll.POLLER.executing = True
    try:
        lay = w.diagram
        assert len([lk for lk in lay["links"] if lk["kind"] == "veth"]) == 4
        port = lambda ns, ifn: next(p for p in w.diagram["ports"] if (p["netns"], p["ifname"]) == (ns, ifn))  # noqa: E731
        assert port("host", "veth-c1")["node"] == "br:host/br0"
        assert port("c1", "eth0")["state"] == "UP"
        sandbox_lab.sh("ip link set veth-c1 down")
        assert wait_for(lambda: port("host", "veth-c1")["state"] == "DOWN", timeout=10)
        # the far end loses its carrier: LOWERLAYERDOWN (or DOWN if ifindexes collide)
        assert wait_for(lambda: port("c1", "eth0")["state"] in ("LOWERLAYERDOWN", "DOWN"))
        link = next(lk for lk in w.diagram["links"] if "veth-c1" in (lk["a"] + str(lk["b"])))
        assert link["state"] != "UP"
        # the half-up veth of "solo": one end admin up, the other down
        assert not port("host", "v-solo")["admin_up"] and port("solo", "eth0")["admin_up"]
        # a half-up pair inside one namespace: the up end is LOWERLAYERDOWN
        assert wait_for(lambda: port("solo", "x0")["state"] == "LOWERLAYERDOWN")
        assert port("solo", "x1")["state"] == "DOWN"
        sandbox_lab.sh("ip link set veth-c1 up")
        assert wait_for(lambda: port("c1", "eth0")["state"] == "UP", timeout=10)
    finally:
        w.close()
    assert not w.polling


LEAD_LAB_SCRIPT = """
import json, sys, time
from netlab_magic import Lab, PrivilegeError
from netlab_magic.widgets import TopologyWidget
try:
    lab = Lab.current()
except PrivilegeError as err:
    print(json.dumps({"skip": str(err)})); sys.exit(0)
ns1 = lab.add_netns("ns1")
lab.host.add_veth("veth2", peer="veth1", peer_netns="ns1")
ns1.link_up("veth1")
w = TopologyWidget(lab.snapshot, interval=0.1)   # polled from the poller's thread...
w._handle_custom_msg({"netlab": "view", "id": "v", "alive": True}, [])  # ... while a view shows it
first = [lk["state"] for lk in w.diagram["links"]]
lab.host.link_up("veth2")
end = time.monotonic() + 10
while time.monotonic() < end and [lk["state"] for lk in w.diagram["links"]] != ["UP"]:
    time.sleep(0.05)
out = {"first": first, "then": [lk["state"] for lk in w.diagram["links"]], "error": w.error,
       "names": w.snapshot and [n["name"] for n in w.snapshot["namespaces"]]}
w.close()
out["polling"] = w.polling
lab.close()
print(json.dumps(out))
"""


def test_with_the_projects_lab_snapshot():
    """``TopologyWidget(Lab.current().snapshot)``, in a child process (the lab moves its main thread)."""
    try:
        import netlab_magic.lab.lab  # noqa: F401
    except ImportError as err:
        pytest.skip(f"netlab_magic.Lab not available: {err}")
    r = subprocess.run([sys.executable, "-c", LEAD_LAB_SCRIPT], capture_output=True, text=True,
                       timeout=60, cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    assert out["names"] == ["host", "ns1"]
    assert out["first"] != ["UP"] and out["then"] == ["UP"]
    assert out["error"] == "" and out["polling"] is False
