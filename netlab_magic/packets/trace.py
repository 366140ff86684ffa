"""Follow the packet: run a command and report every netfilter hook, chain and rule its packets met.

The kernel does the following (``nftrace``): while a trace runs, every namespace of the lab has
a small table of its own, ``netlab-trace``, with a chain first on each hook (priority -450,
before raw, conntrack and NAT) whose only rule is ``meta nftrace set 1``, in family ``ip`` and,
for bridges, in family ``bridge``. From then on the kernel reports each chain and rule an IPv4
packet meets, in every table (the iptables ones are nf_tables tables: Debian's ``iptables`` is
``iptables-nft``), with its verdict. One netlink socket in the lab's host hears the reports
of every namespace (``NETLINK_LISTEN_ALL_NSID``), in the one order the kernel made them.

The trace tables are *owner* tables: they belong to the socket that made them, and the kernel
removes them when it closes, whatever happens (an interrupt, a timeout, a killed kernel). The
iptables tables are never touched: ``iptables-save`` is the same before, during and after.

Here, the run; the rest in one module a stage: :mod:`.trace_session` (the trace tables, the
reports read), :mod:`.trace_assembly` (reports into packets and hops), :mod:`.trace_model` (what
a trace is and how it shows).

    >>> t = lab.trace("ns3", "ping -c 1 10.0.0.1")
    >>> t.packets[0].fate
    'dropped in host by filter FORWARD policy DROP'
    >>> [(h.netns, h.hook, h.table, h.chain, h.verdict) for h in t.hops][-1]
    ('host', 'FORWARD', 'filter', 'FORWARD', 'DROP')
"""

from __future__ import annotations

import io
import re
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..linux import process
from ..model import HOST
from .trace_assembly import build_trace
from .trace_match import parse_match
from .trace_model import Trace
from .trace_session import TABLE, Tracing

if TYPE_CHECKING:
    from ..lab.lab import Lab


class _Tee(io.TextIOBase):
    """Writes to a stream (the cell's output) and keeps a copy."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.copy = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.copy.write(text)
        if self.stream is not None:
            self.stream.write(text)
        return len(text)

    def flush(self) -> None:
        if self.stream is not None:
            self.stream.flush()


def run_trace(lab: "Lab", netns: str, command: str, match: str | None = None, *, timeout: float | None = None,
              stream: bool = False) -> Trace:
    """Run ``command`` (bash) in ``netns`` with the kernel's packet trace on in every namespace of the lab.

    With ``stream`` the command's output goes to the cell as it comes (and is kept in
    ``Trace.output``). ``timeout`` stops the command; what was traced until then is returned
    (``timed_out`` is set). Jupyter's interrupt stops it and the trace. Either way the trace
    tables are gone when this returns.
    """
    lab.require(netns)
    matcher = parse_match(match) if match is not None else None
    namespaces = [HOST, *lab.list_netns()]
    out = _Tee(sys.stdout if stream else None)  # stdout and stderr, in the order they came
    timed_out = False
    with Tracing(lab, namespaces) as tracing:
        proc = lab.popen(netns, process.shell_argv(command), merge_stderr=True)
        try:
            code: int | None = process.stream(proc, out=out, timeout=timeout)
        except process.Timeout:
            code, timed_out = None, True
        events = tracing.finish()
        seen = {n for n, _ in events}
        interfaces = {n: tracing.interfaces(n) for n in seen}
        rules = {n: tracing.rules(n) for n in seen
                 if any(ev.handle is not None and ev.table != TABLE for m, ev in events if m == n)}
        nat_hooks = {n: tracing.nat_hooks(n) for n in seen}
        lost = tracing.lost
    trace = build_trace(events, netns=netns, command=command, match=matcher, returncode=code,
                        output=out.copy.getvalue(), interfaces=interfaces, rules=rules,
                        nat_hooks=nat_hooks, lost=lost, timed_out=timed_out)
    for i, p in enumerate(trace.packets):
        last = p.hops[-1] if p.hops else None
        if last and last.hook == "POSTROUTING" and last.oif and p.header and last.verdict != "DROP":
            why = why_not_sent(lab, last.netns, last.oif, str(p.header.destination))
            if why:
                trace.packets[i] = replace(p, fate=f"{p.fate.split(';')[0]}; not sent: {why}")
    return trace


def why_not_sent(lab: "Lab", netns: str, oif: str, dst: str) -> str:
    """Why a packet that passed POSTROUTING towards ``oif`` did not leave, where the kernel says so:
    the link has no carrier (``ip link``: ``NO-CARRIER``), or the next hop never answered ARP
    (``ip neigh``: ``INCOMPLETE`` or ``FAILED``). Empty when neither holds (it was sent)."""
    link = lab.run(netns, ["ip", "-o", "link", "show", "dev", oif]).stdout
    if "NO-CARRIER" in link or " state DOWN " in link or "LOWERLAYERDOWN" in link:
        return f"{oif} has no carrier"  # (its state word, DOWN or LOWERLAYERDOWN, can be a race)
    route = lab.run(netns, ["ip", "route", "get", dst, "oif", oif]).stdout
    via = re.search(r"\bvia (\S+)", route)
    hop = via.group(1) if via else dst
    neigh = lab.run(netns, ["ip", "neigh", "show", hop, "dev", oif]).stdout.split()
    if neigh and neigh[-1] in ("INCOMPLETE", "FAILED"):
        return f"no answer to ARP for {hop} on {oif}"
    return ""
