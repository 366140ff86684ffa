"""The widgets' ES modules: anywidget loads one module a widget, and it cannot import its
neighbours, so the parts they share (``dom.js``, ``view.js``, in this folder) are joined in front of each."""

from __future__ import annotations

import pathlib

_HERE = pathlib.Path(__file__).parent


def esm(own: pathlib.Path, *shared: str) -> str:
    """The shared parts ``shared`` (files of this folder, in this order), then the widget's ``own`` module,
    as one module's source."""
    return "".join((_HERE / name).read_text() for name in shared) + own.read_text()
