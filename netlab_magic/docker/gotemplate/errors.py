"""The one error of a template: Go's message, whether it failed to parse or to run."""

from __future__ import annotations

from ...errors import NetlabError


class TemplateError(NetlabError):
    """A template that does not parse, or fails while it runs (Go's message)."""
