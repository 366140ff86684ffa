"""A template: parsed once (:func:`parse`), run on data as often as wanted (:meth:`Template.execute`)."""

from __future__ import annotations

from typing import Any

from .execute import State
from .node import Node
from .parse import Parser


class Template:
    """A parsed template; :meth:`execute` runs it on data."""

    def __init__(self, text: str, root: list[Node]) -> None:
        self.text = text
        self.root = root

    def execute(self, data: Any) -> str:
        state = State(self.text, data)
        state.walk(data, self.root)
        return "".join(state.out)


def parse(text: str) -> "Template":
    """Parse ``text`` as Go's text/template; a malformed one raises :class:`TemplateError` with Go's words."""
    return Template(text, Parser(text).parse())
