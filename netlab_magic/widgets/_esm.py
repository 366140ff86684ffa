"""The widgets' ES modules: anywidget loads one module a widget, and it cannot import its
neighbours, so the parts they share (``dom.js``, ``view.js``) are joined in front of each."""

from __future__ import annotations

import pathlib

_HERE = pathlib.Path(__file__).parent


def esm(*names: str) -> str:
    """The files ``names`` of this folder, in this order, as one module's source."""
    return "".join((_HERE / name).read_text() for name in names)
