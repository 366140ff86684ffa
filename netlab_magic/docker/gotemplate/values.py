"""Decoded JSON values as Go's template sees them: a missing key, truth, and fmt's printing
(``%v`` for output, ``%q`` for error messages)."""

from __future__ import annotations

import math
from typing import Any


class _MissingType:
    """A map's missing key (Go's invalid reflect.Value): prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _MissingType()
#: "no value piped in": the final argument a command's first stage does not have
NONE_GIVEN = object()


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is MISSING or value is None or value is NONE_GIVEN:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, str, list, dict)):
        return bool(value)
    return True


def go_type(value: Any) -> str:
    return "interface {}"


def go_print(value: Any, nested: bool = False) -> str:
    """fmt's ``%v`` of a decoded JSON value (``<no value>`` for a missing key)."""
    if value is MISSING or value is NONE_GIVEN:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k], True)}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v, True) for v in value) + "]"
    return str(value)


def go_float(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if math.isnan(x):
        return "NaN"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    return text.replace("e+0", "e+").replace("e-0", "e-")


def go_quote(s: str) -> str:
    """Go's ``%q`` of a string (enough of strconv.Quote for error messages)."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'
