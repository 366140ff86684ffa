"""The functions a template may call (Go's ``text/template/funcs.go``) and the Docker CLI's own
(``templates.basicFunctions``: json, split, join, title, lower, upper, pad, truncate)."""

from __future__ import annotations

import html as _html
import json
import re
import urllib.parse
from typing import Any, Callable

from .values import MISSING, go_print, go_quote, go_type, truth

#: Go's builtins and the Docker CLI's (templates.basicFunctions): what a template may call.
FUNCTIONS = {"and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
             "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
             "json", "split", "join", "title", "lower", "upper", "pad", "truncate"}


class FuncError(Exception):
    """A function refused its arguments; the executor reports it as Go does (`error calling X: ...`)."""


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None or item is MISSING:
            raise FuncError("index of untyped nil")
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise FuncError(f"value has type {type(key).__name__}; should be string")
            item = item.get(key)  # a missing key is the map's zero value: nil
        elif isinstance(item, (list, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise FuncError(f"cannot index slice/array with type {type(key).__name__}")
            if not 0 <= key < len(item):
                raise FuncError(f"index out of range: {key}")
            item = item[key] if isinstance(item, list) else ord(item[key])
        else:
            raise FuncError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, (list, str)):
        raise FuncError(f"can't slice item of type {go_type(item)}")
    if len(bounds) > 2:
        raise FuncError("too many slice indexes")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise FuncError(f"invalid slice index: {lo} > {hi}" if lo > hi else f"index out of range: {hi}")
    return item[lo:hi]


def _len(item: Any) -> int:
    if isinstance(item, (str, list, dict)):
        return len(item)
    if item is None or item is MISSING:
        raise FuncError("len of nil pointer")
    raise FuncError(f"len of type {go_type(item)}")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None or value is MISSING:
        return "nil"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    if _kind(first) == "other":
        raise FuncError("invalid type for comparison")
    if not others:
        raise FuncError("missing argument for comparison")
    for other in others:
        if _kind(other) != _kind(first):
            if "nil" in (_kind(other), _kind(first)):
                raise FuncError("invalid type for comparison")
            raise FuncError("incompatible types for comparison")
        if first == other:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    if _kind(a) not in ("number", "string") or _kind(b) not in ("number", "string"):
        raise FuncError("invalid type for comparison")
    if _kind(a) != _kind(b):
        raise FuncError("incompatible types for comparison")
    return a < b


def _sprint(*args: Any) -> str:
    out = []
    for i, a in enumerate(args):
        if i and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(a))
    return "".join(out)


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def _sprintf(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise FuncError("wrong type for value; expected string")
    rest = list(args)
    out = []
    pos = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        if not rest:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = rest.pop(0)
        if verb in "vs":
            text = go_print(value)
            if prec is not None:
                text = text[:int(prec)]
        elif verb == "q":
            text = go_quote(value) if isinstance(value, str) else go_print(value)
        elif verb == "d" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = str(int(value))
        elif verb == "t" and isinstance(value, bool):
            text = go_print(value)
        elif verb in "xX" and isinstance(value, (int, str)) and not isinstance(value, bool):
            text = format(value, verb) if isinstance(value, int) else value.encode().hex()
            text = text.upper() if verb == "X" else text
        elif verb in "feg" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = format(float(value), f".{prec or 6}{verb}")
        else:
            text = f"%!{verb}({go_type(value)}={go_print(value)})"
        if width and width != "*":
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        out.append(text)
    out.append(fmt[pos:])
    if rest:
        out.append("%!(EXTRA " + ", ".join(f"{go_type(v)}={go_print(v)}" for v in rest) + ")")
    return "".join(out)


def _json(value: Any) -> str:
    if value is MISSING:
        value = None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise FuncError(f"wrong type for value; expected string; got {go_type(value)}")
    return value


def _need_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FuncError(f"wrong type for value; expected int; got {go_type(value)}")
    return value


def _title(s: Any) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), _need_str(s))


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise FuncError(f"wrong type for value; expected []string; got {go_type(items)}")
    return _need_str(sep).join(items)


def _js(*args: Any) -> str:
    text = _sprint(*args)
    table = {"\\": "\\\\", "'": "\\'", '"': "\\\"", "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
             "=": "\\u003D", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(table.get(ch, ch) for ch in text)


FUNCS: dict[str, Callable[..., Any]] = {
    "index": _index, "slice": _slice, "len": _len, "not": lambda v: not truth(v),
    "eq": _eq, "ne": lambda a, b: not _eq(a, b), "lt": _lt, "le": lambda a, b: _lt(a, b) or _eq(a, b),
    "gt": lambda a, b: not (_lt(a, b) or _eq(a, b)), "ge": lambda a, b: not _lt(a, b),
    "print": _sprint, "println": lambda *a: " ".join(go_print(v) for v in a) + "\n", "printf": _sprintf,
    "html": lambda *a: _html.escape(_sprint(*a)).replace("&#x27;", "&#39;").replace("&quot;", "&#34;"),
    "urlquery": lambda *a: urllib.parse.quote_plus(_sprint(*a)), "js": _js,
    "json": _json, "split": lambda s, sep: _need_str(s).split(_need_str(sep)) if sep != "" else list(s),
    "join": _join, "title": _title, "lower": lambda s: _need_str(s).lower(),
    "upper": lambda s: _need_str(s).upper(),
    "pad": lambda s, a, b: " " * _need_int(a) + _need_str(s) + " " * _need_int(b),
    "truncate": lambda s, n: _need_str(s)[:_need_int(n)],
}
ARITY: dict[str, tuple[int, int | None]] = {
    "index": (1, None), "slice": (1, None), "len": (1, 1), "not": (1, 1), "eq": (1, None), "ne": (2, 2),
    "lt": (2, 2), "le": (2, 2), "gt": (2, 2), "ge": (2, 2), "print": (0, None), "println": (0, None),
    "printf": (1, None), "html": (0, None), "urlquery": (0, None), "js": (0, None), "json": (1, 1),
    "split": (2, 2), "join": (2, 2), "title": (1, 1), "lower": (1, 1), "upper": (1, 1), "pad": (3, 3),
    "truncate": (2, 2),
}
