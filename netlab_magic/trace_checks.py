"""Predict, then trace: checks that compare a learner's prediction of a packet's path with the kernel's.

A prediction is the list of hooks the packet passes, as ``"NETNS HOOK"`` (``"ns3 OUTPUT"``,
``"host FORWARD"``), and optionally how it ends (``"dropped in host"``, ``"delivered in ns1"``).
The bridge's own hooks count only if the prediction names one (``"host bridge FORWARD"``).
Each check is a :class:`~netlab_magic.checks.CheckResult` for :func:`~netlab_magic.checks.exercise`.
A wrong prediction is told *which* step is wrong, and where to look, never what the kernel
reported there: the trace above it shows that, for the learner to read.

    >>> t = lab.trace("ns3", "ping -c 1 -W 1 10.0.0.1")
    >>> exercise(check_path(t, ["ns3 OUTPUT", "ns3 POSTROUTING", "host PREROUTING", "host FORWARD"],
    ...                     end="dropped in host"))
"""

from __future__ import annotations

from typing import Sequence

from .checks import CheckResult
from .packets.trace_model import Packet, Trace

__all__ = ["check_path", "check_drop"]


def _norm(step: str) -> str:
    return " ".join(step.split()).replace("bridge ", "bridge:").lower()


def check_path(trace: Trace, prediction: Sequence[str], *, end: str | None = None,
               packet: int = 0) -> list[CheckResult]:
    """Is ``prediction`` the path the kernel reported for packet ``packet`` (0: the first) of ``trace``?"""
    what = f"packet {packet + 1} goes the way you said"
    if not prediction:
        return [CheckResult(False, what, "write your prediction first: a list like [\"ns3 OUTPUT\", ...]")]
    if packet >= len(trace.packets):
        return [CheckResult(False, what, f"the trace has {len(trace.packets)} packet(s), not {packet + 1}")]
    p: Packet = trace.packets[packet]
    bridge = any("bridge" in step.split() for step in prediction)
    real = p.path(bridge=bridge)
    said = [_norm(s) for s in prediction]
    results = [_compare(what, said, real, list(prediction))]
    if end is not None:
        said_end = end.lower().split()
        if len(said_end) < 3 or said_end[1] != "in":
            results.append(CheckResult(False, f"packet {packet + 1} ends the way you said",
                                       "say how it ends: \"delivered in NETNS\" or \"dropped in NETNS\""))
        else:
            ok = p.fate.lower().split()[:len(said_end)] == said_end
            results.append(CheckResult(ok, f"packet {packet + 1} was {end}", "" if ok else
                                       f"it ended otherwise: the title of packet {packet + 1}'s table says how"))
    return results


def check_drop(trace: Trace, chain: str, *, packet: int = 0) -> CheckResult:
    """Was packet ``packet`` of ``trace`` dropped in chain ``chain`` (by a rule of it, or its policy)?"""
    what = f"packet {packet + 1} was dropped in {chain or '(which chain?)'}"
    if not chain:
        return CheckResult(False, what, "name the chain you expect to drop it")
    if packet >= len(trace.packets):
        return CheckResult(False, what, f"the trace has {len(trace.packets)} packet(s), not {packet + 1}")
    drop = trace.packets[packet].drop
    if drop is None:
        return CheckResult(False, what, "it was not dropped: the title of its table says how it ended")
    if drop.chain == chain:
        return CheckResult(True, what)
    return CheckResult(False, what, f"another chain dropped it: the last line of packet {packet + 1}'s table names it")


def _compare(what: str, said: list[str], real: list[str], typed: list[str]) -> CheckResult:
    for i, (mine, theirs) in enumerate(zip(said, real)):
        if mine != _norm(theirs):
            return CheckResult(False, what, f"step {i + 1} ({typed[i]!r}) is not where it went"
                                            + (" next" if i else " first") + ": the trace's table lists its hooks in order")
    if len(said) < len(real):
        return CheckResult(False, what, f"it went on after step {len(said)} ({typed[-1]!r}): "
                                        f"{len(real) - len(said)} more hook(s) in the trace's table")
    if len(said) > len(real):
        return CheckResult(False, what, f"it stopped after step {len(real)}: {typed[len(real)]!r} never happened")
    return CheckResult(True, what)
