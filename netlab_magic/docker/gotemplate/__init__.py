"""Go's ``text/template``, the part ``docker inspect -f`` needs, with Go's own error messages.

:func:`parse` lexes and parses a template the way Go's ``text/template/parse`` does (same
tokens, same order, same checks), so a malformed template fails with Go's words:
``template: :1: unclosed action``, ``template: :1: function "x" not defined``,
``template: :1: unexpected "}" in operand`` ... :meth:`Template.execute` runs it on plain data
(what ``docker inspect`` prints as JSON: dicts, lists, strings, numbers, booleans, None), like
Go runs a template on the decoded JSON (missing keys print ``<no value>``, JSON ``null``
prints ``<nil>``); its errors are Go's ``template: :1:2: executing "" at <.X>: ...``.

What is there: text, comments, trim markers (``{{- ``, `` -}}``), fields and chains, ``$`` and
variables (``{{$v := ...}}``, ``{{range $k, $v := ...}}``), pipelines (``|``), parentheses,
literals, ``if``/``else if``/``else``, ``range`` (``break``/``continue``), ``with``, Go's
functions and Docker's (``json``, ``split``, ``join``, ``title``, ``lower``, ``upper``,
``pad``, ``truncate``). ``define``/``template``/``block`` are refused in one line.


The package follows Go's files, one stage each: :mod:`.lex` (the lexer), :mod:`.node` and
:mod:`.parse` (the tree and the parser), :mod:`.execute` (running it), :mod:`.funcs` (the
functions), :mod:`.values` (truth and printing of decoded JSON), :mod:`.template` (parse once,
run often). Nothing outside needs more than :func:`parse`, :class:`Template` and
:class:`TemplateError`.
"""

from .errors import TemplateError
from .funcs import FUNCTIONS
from .template import Template, parse
from .values import go_print, truth

__all__ = ["parse", "Template", "TemplateError", "FUNCTIONS", "go_print", "truth"]
