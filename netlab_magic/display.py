"""How the lab shows itself in a notebook: readable tables, HTML in Jupyter and text elsewhere.

These are small objects with ``_repr_html_`` and ``__repr__``; IPython picks what the front
end can show. Nothing here reads the kernel: they render what they are given.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

from .model import LabSnapshot

STATE_COLOURS = {"UP": "#1a7f37", "DOWN": "#cf222e", "LOWERLAYERDOWN": "#bf8700", "UNKNOWN": "#57606a"}


@dataclass
class Table:
    """A titled table of strings."""

    title: str
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    empty: str = "(nothing)"

    def __repr__(self) -> str:
        if not self.rows:
            return f"{self.title}\n  {self.empty}"
        cols = [list(self.headers)] + [list(r) for r in self.rows]
        widths = [max(len(str(row[i])) for row in cols) for i in range(len(self.headers))]
        lines = [self.title]
        for j, row in enumerate(cols):
            lines.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
            if j == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in self.headers)
        if not self.rows:
            body = f"<tr><td colspan='{len(self.headers)}'><i>{html.escape(self.empty)}</i></td></tr>"
        else:
            body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{_cell(c)}</td>" for c in r) + "</tr>"
                           for r in self.rows)
        return (f"<div class='netlab-table'><b>{html.escape(self.title)}</b>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _cell(value: object) -> str:
    text = str(value)
    colour = STATE_COLOURS.get(text)
    if colour:
        return f"<span style='color:{colour};font-weight:bold'>{html.escape(text)}</span>"
    return html.escape(text).replace("\n", "<br>")


@dataclass
class Tables:
    """Several tables shown one after the other."""

    tables: Sequence[Table]

    def __repr__(self) -> str:
        return "\n\n".join(repr(t) for t in self.tables)

    def _repr_html_(self) -> str:
        return "".join(t._repr_html_() for t in self.tables)


def status_tables(snap: LabSnapshot, mode: str) -> Tables:
    """``%netlab status``: namespaces, interfaces, bridges and routes of the whole lab."""
    interfaces, bridges, routes = [], [], []
    for ns in snap.namespaces:
        for i in ns.interfaces:
            peer = ""
            if i.peer is not None:
                peer = f"{i.peer.ifname or '?'} in {i.peer.netns or 'outside the lab'}"
            interfaces.append([ns.name, i.name, i.kind, i.state, " ".join(a for a in i.addresses if not a.startswith("fe80:")) or "-",
                               peer or "-", i.master or "-"])
        for b in ns.bridges:
            ports = [i.name for i in ns.interfaces if i.master == b.name]
            bridges.append([ns.name, b.name, b.state, ", ".join(ports) or "(no ports)"])
        routes += [[ns.name, str(r)] for r in ns.routes]
    summary = [[ns.name, str(len(ns.interfaces))] for ns in snap.namespaces]
    return Tables([
        Table(f"netlab lab ({mode} mode): namespaces", ["namespace", "interfaces"], summary),
        Table("interfaces", ["namespace", "interface", "kind", "state", "addresses", "peer", "master"], interfaces),
        Table("bridges", ["namespace", "bridge", "state", "ports"], bridges, empty="(no bridges)"),
        Table("routes (main table, IPv4)", ["namespace", "route"], routes, empty="(no routes)"),
    ])
