"""Where the magics parse their arguments.

``%%netns`` and ``%netns`` take options, a namespace name and (line form) a command that
must reach bash exactly as typed, quotes and pipes included. So the command is cut from the
raw line, and only the part before it goes through the ``magic_arguments`` parser.
"""

from __future__ import annotations

import re

#: Options of %netns / %%netns that take a value.
VALUE_OPTIONS = {"--timeout", "-t", "--name", "-n"}

_TOKEN = re.compile(r"\S+")


def split_netns_line(line: str) -> tuple[str, str]:
    """Split ``"[options] NAME [command ...]"`` into (``"[options] NAME"``, ``"command ..."``).

    The command keeps its original spacing and quoting.
    """
    expect_value = False
    for match in _TOKEN.finditer(line):
        token = match.group()
        if expect_value:
            expect_value = False
            continue
        if token.startswith("-"):
            if token in VALUE_OPTIONS:
                expect_value = True
            continue
        end = match.end()
        return line[:end], line[end:].strip()
    return line, ""
