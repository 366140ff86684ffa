"""``--match``: which packets a trace shows, said the way iptables says it (``-p tcp --dport 8888``).

The kernel traces every IPv4 packet of the lab while the command runs; a :class:`Match` then
picks the packets that match at some point of their path, and with them every packet of the
same connections (the replies, and what NAT made of them). Understood: ``-p``, ``-s``, ``-d``,
``--sport``, ``--dport``, ``-i``, ``-o``, ``--icmp-type``, each optionally negated with ``!``
before it; ``-m tcp|udp|icmp`` is accepted (iptables needs it, the trace does not).
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import Callable

from ..errors import InvalidArgument
from .headers import ICMP_TYPE_NUMBERS, PROTOCOL_NUMBERS, IPv4

_OPTIONS = {
    "-p": "proto", "--protocol": "proto",
    "-s": "src", "--source": "src", "--src": "src",
    "-d": "dst", "--destination": "dst", "--dst": "dst",
    "--sport": "sport", "--source-port": "sport",
    "--dport": "dport", "--destination-port": "dport",
    "-i": "iif", "--in-interface": "iif",
    "-o": "oif", "--out-interface": "oif",
    "--icmp-type": "icmp_type",
}
_MODULES = {"tcp", "udp", "icmp"}
UNDERSTOOD = "-p, -s, -d, --sport, --dport, -i, -o, --icmp-type (each may follow !), -m tcp|udp|icmp"

#: A test on one point of the path: the packet's header there, and the interfaces it came in and went out.
Test = Callable[[IPv4, "str | None", "str | None"], bool]


@dataclass(frozen=True)
class Match:
    """A parsed ``--match``: every test must hold at one hop of the packet's path."""

    text: str
    tests: tuple[Test, ...] = field(default=(), repr=False)

    def __call__(self, header: IPv4, iif: str | None = None, oif: str | None = None) -> bool:
        return all(test(header, iif, oif) for test in self.tests)


def parse_match(text: str) -> Match:
    """Parse ``text``; a one-line :class:`InvalidArgument` says what is wrong."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise InvalidArgument(f"--match {text!r}: {err}") from None
    tests: list[Test] = []
    negate = False
    i = 0
    while i < len(words):
        word = words[i]
        if word == "!":
            if negate:
                raise InvalidArgument(f"--match {text!r}: '!' twice")
            negate = True
            i += 1
            continue
        if word in ("-m", "--match"):
            module = words[i + 1] if i + 1 < len(words) else ""
            if module not in _MODULES:
                raise InvalidArgument(f"--match {text!r}: the trace does not understand -m {module or '(nothing)'}; "
                                      f"it understands {UNDERSTOOD}")
            i += 2
            continue
        key = _OPTIONS.get(word)
        if key is None:
            raise InvalidArgument(f"--match {text!r}: unknown option {word!r}; the trace understands {UNDERSTOOD}")
        if i + 1 >= len(words):
            raise InvalidArgument(f"--match {text!r}: {word} needs a value")
        test = _test(key, words[i + 1], text)
        tests.append((lambda t: lambda h, a, b: not t(h, a, b))(test) if negate else test)
        negate = False
        i += 2
    if negate:
        raise InvalidArgument(f"--match {text!r}: '!' at the end, before nothing")
    if not tests:
        raise InvalidArgument(f"--match {text!r}: no test in it; e.g. --match \"-p tcp --dport 8888\"")
    return Match(text, tuple(tests))


def _test(key: str, value: str, text: str) -> Test:
    if key == "proto":
        number = PROTOCOL_NUMBERS.get(value.lower()) if not value.isdigit() else int(value)
        if number is None:
            raise InvalidArgument(f"--match {text!r}: unknown protocol {value!r} (tcp, udp, icmp or a number)")
        return lambda h, _i, _o: h.proto == number
    if key in ("src", "dst"):
        try:
            net = ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            raise InvalidArgument(f"--match {text!r}: {value!r} is not an IPv4 address or network") from None
        return (lambda h, _i, _o: ipaddress.IPv4Address(h.src) in net) if key == "src" else \
            (lambda h, _i, _o: ipaddress.IPv4Address(h.dst) in net)
    if key in ("sport", "dport"):
        low, sep, high = value.partition(":")
        try:
            first = int(low) if low else 0
            last = (int(high) if high else 65535) if sep else first
        except ValueError:
            raise InvalidArgument(f"--match {text!r}: {value!r} is not a port or a range like 8000:8999") from None
        if not (0 <= first <= last <= 65535):
            raise InvalidArgument(f"--match {text!r}: {value!r} is not a port or a range like 8000:8999")
        if key == "sport":
            return lambda h, _i, _o: h.sport is not None and first <= h.sport <= last
        return lambda h, _i, _o: h.dport is not None and first <= h.dport <= last
    if key == "icmp_type":
        number = ICMP_TYPE_NUMBERS.get(value) if not value.isdigit() else int(value)
        if number is None:
            raise InvalidArgument(f"--match {text!r}: unknown ICMP type {value!r} "
                                  f"({', '.join(ICMP_TYPE_NUMBERS)} or a number)")
        return lambda h, _i, _o: h.icmp_type == number
    prefix = value[:-1] if value.endswith("+") else None  # iptables' wildcard: veth+

    def interface(name: str | None) -> bool:
        if name is None:
            return False
        return name.startswith(prefix) if prefix is not None else name == value
    if key == "iif":
        return lambda _h, i, _o: interface(i)
    return lambda _h, _i, o: interface(o)
