"""The workbook's notebooks are whole: run top to bottom in the netlab kernel, outputs stored.

nbval compares stored outputs with a new run, but it silently passes a cell that was never
run. These checks close that gap; the outputs themselves are checked by nbval (scripts/test.sh).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_the_workbook_has_every_demo():
    names = [p.stem for p in NOTEBOOKS]
    assert names[:4] == ["00-start-here", "01-bare-veth", "02-second-namespace", "03-bridge"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_was_run_top_to_bottom_in_the_netlab_kernel(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "netlab"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{path.name}: not one clean run, top to bottom: {counts}"
    assert "".join(code[0]["source"]).strip().startswith("%netlab reset"), "each demo starts from a fresh lab"
    assert any("exercise(" in "".join(c["source"]) for c in code), "each notebook ends with a self-checking exercise"
    ignored = [c for c in code if "NBVAL_IGNORE_OUTPUT" in "".join(c["source"])]
    assert len(ignored) <= 1, f"{path.name}: outputs that teach must be checked, not ignored"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", [])), \
        f"{path.name}: a stored run raised an error"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_are_one_block_per_stream_as_jupyterlab_saves_them(path):
    """A ping is one block of text, as a learner's saved notebook has it (JupyterLab merges a
    stream's consecutive outputs): scripts/run-notebooks.sh runs and stores them so."""
    nb = json.loads(path.read_text())
    for n, cell in enumerate((c for c in nb["cells"] if c["cell_type"] == "code"), 1):
        streams = [o.get("name") if o.get("output_type") == "stream" else None for o in cell.get("outputs", [])]
        split = [name for name, after in zip(streams, streams[1:]) if name is not None and name == after]
        assert not split, f"{path.name}, code cell {n}: {split[0]} stored in pieces (run it with scripts/run-notebooks.sh)"


def test_the_sanitizer_never_turns_one_link_state_into_another():
    """nbval compares through notebooks/sanitize.cfg: a rule may say that a state is not decided
    (a race), but must not make a DOWN look like a LOWERLAYERDOWN, or the reverse (issue 18)."""
    import configparser
    import re

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(NOTEBOOKS[0].parent / "sanitize.cfg")
    line = ("2: veth2@if3: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state {} mode DEFAULT "
            "group default qlen 1000\r\n    link/ether 46:5c:a8:9f:81:48 brd ff:ff:ff:ff:ff:ff link-netns ns1\r\n")
    for state, other in (("DOWN", "LOWERLAYERDOWN"), ("LOWERLAYERDOWN", "DOWN"), ("UP", "DOWN")):
        text = line.format(state)
        for section in cfg.sections():
            text = re.sub(cfg[section]["regex"], cfg[section]["replace"], text)
        assert f"state {other} " not in text, (section, text)
