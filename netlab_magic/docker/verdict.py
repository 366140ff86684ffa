"""What an iptables rule set decides for a packet described in words, following every jump.

:func:`decide` walks a chain of a :class:`~.tables.Tables` (``iptables-save`` parsed) the way
the kernel does for one :class:`Flow`: rule by rule, into the chains they jump or go to, back on
``RETURN`` or at a chain's end, to the first ``ACCEPT``, ``DROP`` or ``REJECT``, or the built-in
chain's policy. It answers "what does this rule set *allow*" for packets no probe can send
today (a port nothing is DNATed to yet, a container not started yet), and it reads a rule by
what it matches, not by its words: a comment, split halves of the address space, a chain of
one's own are all the same to it.

It knows the matches a learner writes for these exercises: ``-s -d -i -o -p`` (with ``!``),
``-m iprange``, ``--sport --dport --dports``, ``--syn --tcp-flags --icmp-type``, conntrack's ``--ctstate
--ctdir`` and ``-m state --state``, ``-m addrtype --src-type/--dst-type LOCAL``, comments.
A match it does not know is said in :attr:`Decision.unknown`; the walk takes an ACCEPT with
an unknown match as matching and a DROP with one as not (so what it reports open may be, what it
reports closed is).
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field

from ..linux.iptables import BUILTIN, Tables

__all__ = ["Flow", "Decision", "decide"]

_PROTOCOLS = {"tcp": "6", "udp": "17", "icmp": "1"}
_ICMP_TYPES = {"echo-reply": 0, "pong": 0, "destination-unreachable": 3, "echo-request": 8, "ping": 8,
               "time-exceeded": 11, "any": None}
_TCP_FLAGS = {"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32, "ALL": 63, "NONE": 0}
_FINAL = {"ACCEPT", "DROP", "REJECT"}


@dataclass(frozen=True)
class Flow:
    """A packet as a rule sees it: addresses, interfaces (None: none yet, as in OUTPUT), protocol and
    port or ICMP type, TCP flags, and what conntrack says of it."""

    src: str
    dst: str
    iif: str | None
    oif: str | None
    proto: str = "tcp"
    dport: int | None = 80
    sport: int = 40000
    icmp_type: int | None = None
    tcp_flags: int = 2  # a SYN
    ctstate: str = "NEW"
    ctdir: str = "ORIGINAL"
    local: frozenset[str] = frozenset()  # the host's own addresses (addrtype LOCAL)


@dataclass(frozen=True)
class Decision:
    """The verdict (``ACCEPT``, ``DROP``, ``REJECT``), and the rule that gave it (None: a policy)."""

    verdict: str
    table: str
    chain: str
    rule: str | None
    unknown: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        if self.rule is None:
            return f"{self.table} {self.chain}'s policy {self.verdict}"
        return f"`{self.rule}` ({self.table})"


def decide(tables: Tables, table: str, chain: str, flow: Flow) -> Decision:
    """What ``table``'s built-in ``chain`` does with ``flow``, following jumps (``-j CHAIN``, ``-g``)."""
    unknown: list[str] = []
    found = _walk(tables, table, chain, flow, unknown, depth=0)
    if found is not None:
        verdict, where, rule = found
        return Decision(verdict, table, where, rule, tuple(unknown))
    policy = tables.policies.get((table, chain), "ACCEPT") if chain in BUILTIN.get(table, ()) else "ACCEPT"
    return Decision(policy, table, chain, None, tuple(unknown))


def _walk(tables: Tables, table: str, chain: str, flow: Flow, unknown: list[str],
          depth: int) -> tuple[str, str, str] | None:
    """The final verdict met in ``chain`` (or the chains it jumps to), or None if it returns."""
    if depth > 32:  # iptables refuses loops; this is only a guard
        return None
    for rule in tables.chains.get(table, {}).get(chain, []):
        target, goto, matches = _split(rule)
        if target is None:
            continue
        fits, doubts = _matches(matches, flow)
        if doubts:
            unknown.extend(d for d in doubts if d not in unknown)
            fits = fits and target not in ("DROP", "REJECT")  # unsure: open rather than closed
        if not fits:
            continue
        if target in _FINAL:
            return target, chain, f"-A {chain} {rule}"
        if target == "RETURN":
            return None
        if target in tables.chains.get(table, {}):
            found = _walk(tables, table, target, flow, unknown, depth + 1)
            if found is not None or goto:
                return found
        # any other target (LOG, MARK, DNAT in a filter walk...) lets the packet go on
    return None


def _split(rule: str) -> tuple[str | None, bool, list[str]]:
    """``(target, is a goto, the match words)`` of a rule in ``iptables-save`` words."""
    try:
        words = shlex.split(rule)
    except ValueError:
        words = rule.split()
    for flag in ("-j", "-g"):
        if flag in words:
            i = words.index(flag)
            return words[i + 1], flag == "-g", words[:i]
    return None, False, words


def _matches(words: list[str], flow: Flow) -> tuple[bool, list[str]]:
    """Does ``flow`` match every condition in ``words``? And the options not understood."""
    doubts: list[str] = []
    fits = True
    i, negate = 0, False
    while i < len(words):
        word = words[i]
        if word == "!":
            negate, i = True, i + 1
            continue
        if word == "-m":  # the module's name: its options follow
            i += 2
            continue
        if word in ("--syn",):
            result: bool | None = flow.proto == "tcp" and flow.tcp_flags & 0x17 == 0x02
            i += 1
        elif word == "--tcp-flags":
            mask, comp = (sum(_TCP_FLAGS.get(f, 0) for f in words[j].split(",")) for j in (i + 1, i + 2))
            result = flow.proto == "tcp" and flow.tcp_flags & mask == comp
            i += 3
        elif i + 1 < len(words):
            result = _condition(word, words[i + 1], flow)
            i += 2
        else:
            result, i = None, i + 1
        if result is None:
            doubts.append(word)
        elif result == negate:
            fits = False
        negate = False
    return fits, doubts


def _condition(option: str, value: str, flow: Flow) -> bool | None:
    """One ``OPTION VALUE`` condition; None if the option is not one this module knows."""
    if option in ("-s", "--source", "-d", "--destination"):
        address = flow.src if option in ("-s", "--source") else flow.dst
        return any(ipaddress.ip_address(address) in ipaddress.ip_network(v, strict=False) for v in value.split(","))
    if option in ("--src-range", "--dst-range"):  # -m iprange
        low, _, high = value.partition("-")
        address = ipaddress.ip_address(flow.src if option == "--src-range" else flow.dst)
        return ipaddress.ip_address(low) <= address <= ipaddress.ip_address(high or low)
    if option in ("-i", "--in-interface", "-o", "--out-interface"):
        name = flow.iif if option in ("-i", "--in-interface") else flow.oif
        if name is None:
            return False
        return name.startswith(value[:-1]) if value.endswith("+") else name == value
    if option in ("-p", "--protocol"):
        return value == "all" or _PROTOCOLS.get(value, value) == _PROTOCOLS.get(flow.proto, flow.proto)
    if option in ("--dport", "--destination-port", "--dports", "--destination-ports", "--sport", "--sports",
                  "--source-port", "--source-ports"):
        port = flow.sport if "s" == option.lstrip("-")[0] else flow.dport
        return port is not None and any(_in_range(port, part) for part in value.split(","))
    if option == "--icmp-type":
        want = _ICMP_TYPES.get(value, None if not value.split("/")[0].isdigit() else int(value.split("/")[0]))
        return flow.proto == "icmp" and (want is None or flow.icmp_type == want)
    if option in ("--ctstate", "--state"):
        return flow.ctstate in value.split(",")
    if option == "--ctdir":
        return flow.ctdir == value
    if option in ("--src-type", "--dst-type"):
        address = flow.src if option == "--src-type" else flow.dst
        kinds = set(value.split(","))
        if kinds == {"LOCAL"}:
            return address in flow.local
        return None
    if option == "--comment":
        return True
    return None


def _in_range(port: int, text: str) -> bool:
    low, _, high = text.partition(":")
    return int(low or 0) <= port <= int(high or low or 65535)
