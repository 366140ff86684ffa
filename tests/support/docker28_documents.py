"""Moby's generated documents of Docker Engine 28.5's rules (``tests/fixtures/docker28/*.rules``),
read into the shape a lab's or the model's tables are compared in (test_docker28.py: the model;
test_docker28_lab.py: a real lab)."""

from __future__ import annotations

from pathlib import Path

from netlab_magic.linux.iptables import Tables

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker28"


def documented(name: str) -> dict[str, dict]:
    """A ``*.rules`` file: table -> {"policies": {chain: policy}, "chains": {chain: [rules]}}."""
    tables: dict[str, dict] = {}
    table = None
    for line in (FIXTURES / f"{name}.rules").read_text().splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {"policies": {}, "chains": {}})
        elif line.startswith("-P "):
            _, chain, policy = line.split()
            table["policies"][chain] = policy
            table["chains"].setdefault(chain, [])
        elif line.startswith("-N "):
            table["chains"].setdefault(line.split()[1], [])
        elif line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            table["chains"].setdefault(chain, []).append(rule)
    return tables


def as_documented(t: Tables, tables) -> dict[str, dict]:
    """The model's (or a lab's) tables in the same shape, for the tables the document shows."""
    out = {}
    for table in tables:
        chains = t.chains.get(table, {})
        builtin = [c for c in chains if c.isupper() and not c.startswith("DOCKER")]
        out[table] = {"policies": {c: t.policies.get((table, c), "ACCEPT") for c in builtin},
                      "chains": {c: list(r) for c, r in chains.items()}}
    return out
