"""Where the magics parse their arguments.

``%%netns`` and ``%netns`` take options, a namespace name and (line form) a command that
must reach bash exactly as typed, quotes and pipes included. So the command is cut from the
raw line (:func:`split_command`), and only the part before it goes through the
``magic_arguments`` parser.

One splitter, two modes, because the magics' rules differ and each is kept as it is: ``%netns``
(given its ``flags``) splits on whitespace, knows its options (an unknown one after the namespace
is an error here, never handed to bash) and takes ``--`` only after the namespace; ``%netlab
trace`` reads shell words (``--match "-p tcp"``), takes any dash word for an option (its parser,
:mod:`.commands`, refuses the unknown ones) and ``--`` anywhere. Making ``%netns`` quote-aware
too would change which word is its namespace when an option's value is quoted with spaces.
"""

from __future__ import annotations

import argparse
import re
from typing import Callable

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

#: Options of %netns / %%netns that take a value, and those that do not.
VALUE_OPTIONS = {"--timeout", "-t", "--name", "-n"}
FLAG_OPTIONS = {"--python", "--bg", "--check", "-h", "--help"}

_TOKEN = re.compile(r"\S+")


def parse(magic: Callable, line: str, name: str) -> argparse.Namespace:
    """``parse_argstring`` with a one-line error for what the shell-like split cannot read."""
    try:
        return parse_argstring(magic, line)
    except ValueError as err:  # shlex: "No closing quotation", "No escaped character"
        raise UsageError(f"{name}: {err} in: {line.strip()}") from None


#: One shell word: unquoted text, '...' or "..." (with backslash escapes), glued together.
_WORD = re.compile(r"""(?:[^\s'"\\]+|\\.|'[^']*'|"(?:[^"\\]|\\.)*")+""")


def split_command(line: str, value_options: set[str], flags: set[str] | None = None) -> tuple[str, str]:
    """Split ``"[options] NAME [options] [--] COMMAND ..."`` into (options and NAME, command).

    The command keeps its original spacing and quoting. ``value_options`` are the options that
    take a value. Without ``flags`` (``%netlab trace``): shell words, so an option's value may
    hold spaces and dashes (``--match "-p tcp --dport 80"``), every dash word an option, ``--``
    anywhere. With the magic's ``flags`` (``%netns``): whitespace words, options before or right
    after the namespace, ``--`` after it; a command cannot start with ``-``: an unknown option
    there is an error, never handed to bash.
    """
    strict = flags is not None
    known = value_options | (flags or set())
    expect_value = False
    seen_name = False
    for match in (_TOKEN if strict else _WORD).finditer(line):
        token = match.group()
        if expect_value:
            expect_value = False
            continue
        if token == "--" and (seen_name or not strict):
            return line[:match.start()].rstrip(), line[match.end():].strip()
        if token.startswith("-") and (not strict or not seen_name or token.split("=")[0] in known):
            expect_value = token in value_options
            continue
        if not seen_name:
            seen_name = True
            continue
        if token.startswith("-"):
            raise UsageError(f"%netns: unknown option {token!r} (options go before the command; see %netns --help)")
        return line[:match.start()].rstrip(), line[match.start():].strip()
    return line, ""
