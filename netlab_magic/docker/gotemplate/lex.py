"""The lexer (Go's ``text/template/parse/lex.go``): a template's text into items, the same
tokens in the same order, a malformed one ending in an ERROR item with Go's words."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from .values import go_quote


LEFT, RIGHT, TRIM = "{{", "}}", "-"
SPACES = " \t\r\n"

# item types
(ERROR, BOOL, CHAR, CHAR_CONST, COMMENT, ASSIGN, DECLARE, EOF, FIELD, IDENT, LEFT_DELIM,
 LEFT_PAREN, NUMBER, PIPE, RAW_STRING, RIGHT_DELIM, RIGHT_PAREN, SPACE, STRING, TEXT,
 VARIABLE) = range(21)
KEYWORD = 100  # keywords sort after it (their String() is <word>)
KEYWORDS = {".": KEYWORD + 1, "block": KEYWORD + 2, "break": KEYWORD + 3, "continue": KEYWORD + 4,
            "define": KEYWORD + 5, "else": KEYWORD + 6, "end": KEYWORD + 7, "if": KEYWORD + 8,
            "nil": KEYWORD + 9, "range": KEYWORD + 10, "template": KEYWORD + 11, "with": KEYWORD + 12}
DOT, BLOCK, BREAK, CONTINUE, DEFINE, ELSE, END, IF, NIL, RANGE, TEMPLATE, WITH = sorted(KEYWORDS.values())


@dataclass
class Item:
    typ: int
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        if self.typ == EOF:
            return "EOF"
        if self.typ == ERROR:
            return self.val
        if self.typ > KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _go_rune(ch: str) -> str:
    """Go's ``%#U``: ``U+007D '}'``."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class _Stop(Exception):
    pass


class Lexer:
    """Go's lexer as a state machine: each state method returns the next state."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.start = 0
        self.paren = 0
        self.items: list[Item] = []

    def lex(self) -> list[Item]:
        state: Callable[[], Any] | None = self.text
        try:
            while state is not None:
                state = state()
        except _Stop:
            pass
        return self.items

    # helpers
    def next(self) -> str:
        if self.pos >= len(self.s):
            self.pos += 1  # so that backup() after EOF works
            return ""
        ch = self.s[self.pos]
        self.pos += 1
        return ch

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def backup(self) -> None:
        self.pos -= 1

    def line_of(self, pos: int) -> int:
        return 1 + self.s.count("\n", 0, pos)

    def emit(self, typ: int) -> None:
        self.items.append(Item(typ, self.s[self.start:self.pos], self.start, self.line_of(self.start)))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def error(self, message: str) -> None:
        self.items.append(Item(ERROR, message, self.start, self.line_of(self.start)))
        raise _Stop

    def at_right_delim(self) -> tuple[bool, bool]:
        rest = self.s[self.pos:]
        if rest.startswith(RIGHT):
            return True, False
        if len(rest) >= 2 and rest[0] in SPACES and rest[1] == TRIM and rest[2:].startswith(RIGHT):
            return True, True
        return False, False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in SPACES or ch in ".,|:)(" or ch == RIGHT[0]

    # states
    def text(self):
        i = self.s.find(LEFT, self.pos)
        if i < 0:
            self.pos = len(self.s)
            if self.pos > self.start:
                self.emit(TEXT)
            self.emit(EOF)
            return None
        if i > self.pos:
            self.pos = i
            after = self.s[i + len(LEFT):]
            trim = 0
            if len(after) >= 2 and after[0] == TRIM and after[1] in SPACES:
                chunk = self.s[self.start:self.pos]
                trim = len(chunk) - len(chunk.rstrip(SPACES))
            self.pos -= trim
            if self.pos > self.start:
                self.emit(TEXT)
            self.pos += trim
            self.ignore()
        return self.left_delim

    def left_delim(self):
        self.pos += len(LEFT)
        rest = self.s[self.pos:]
        trim = len(rest) >= 2 and rest[0] == TRIM and rest[1] in SPACES
        after = 2 if trim else 0
        if self.s[self.pos + after:].startswith("/*"):
            self.pos += after
            self.ignore()
            return self.comment
        item = Item(LEFT_DELIM, LEFT, self.start, self.line_of(self.start))
        self.pos += after
        self.ignore()
        self.paren = 0
        self.items.append(item)
        return self.inside_action

    def comment(self):
        self.pos += 2
        x = self.s.find("*/", self.pos)
        if x < 0:
            self.error("unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
        if trim:
            self.pos += 2
        self.pos += len(RIGHT)
        if trim:
            rest = self.s[self.pos:]
            self.pos += len(rest) - len(rest.lstrip(SPACES))
        self.ignore()
        return self.text

    def right_delim(self):
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(RIGHT)
        self.emit(RIGHT_DELIM)
        if trim:
            rest = self.s[self.pos:]
            self.pos += len(rest) - len(rest.lstrip(SPACES))
            self.ignore()
        return self.text

    def inside_action(self):
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren == 0:
                return self.right_delim
            self.error("unclosed left paren")
        ch = self.next()
        if ch == "":
            self.backup()
            self.error("unclosed action")
        if ch in SPACES:
            self.backup()
            return self.space
        if ch == "=":
            self.emit(ASSIGN)
        elif ch == ":":
            if self.next() != "=":
                self.error("expected :=")
            self.emit(DECLARE)
        elif ch == "|":
            self.emit(PIPE)
        elif ch == '"':
            return self.quote
        elif ch == "`":
            return self.raw_quote
        elif ch == "$":
            return self.variable
        elif ch == "'":
            return self.char
        elif ch == "." and self.peek() != "" and not "0" <= self.peek() <= "9":
            return self.field
        elif ch in "+-." or "0" <= ch <= "9":
            self.backup()
            return self.number
        elif _alnum(ch):
            self.backup()
            return self.identifier
        elif ch == "(":
            self.emit(LEFT_PAREN)
            self.paren += 1
        elif ch == ")":
            self.emit(RIGHT_PAREN)
            self.paren -= 1
            if self.paren < 0:
                self.error("unexpected right paren")
        elif ord(ch) < 128 and ch.isprintable():
            self.emit(CHAR)
        else:
            self.error(f"unrecognized character in action: {_go_rune(ch)}")
        return self.inside_action

    def space(self):
        n = 0
        while self.peek() != "" and self.peek() in SPACES:
            self.pos += 1
            n += 1
        rest = self.s[self.pos - 1:]
        if len(rest) >= 2 and rest[1] == TRIM and rest[2:].startswith(RIGHT):
            self.backup()  # the space belongs to " -}}"
            if n == 1:
                return self.inside_action
        self.emit(SPACE)
        return self.inside_action

    def identifier(self):
        self._skip_alnum()
        word = self.s[self.start:self.pos]
        if not self.at_terminator():
            self.error(f"bad character {_go_rune(self.peek())}")
        if word in KEYWORDS and word != ".":
            self.emit(KEYWORDS[word])
        elif word in ("true", "false"):
            self.emit(BOOL)
        else:
            self.emit(IDENT)
        return self.inside_action

    def field(self):
        return self._field_or_variable(FIELD)

    def variable(self):
        return self._field_or_variable(VARIABLE)

    def _field_or_variable(self, typ: int):
        if self.at_terminator():
            self.emit(VARIABLE if typ == VARIABLE else DOT)
            return self.inside_action
        self._skip_alnum()
        if not self.at_terminator():
            self.error(f"bad character {_go_rune(self.peek())}")
        self.emit(typ)
        return self.inside_action

    def _skip_alnum(self) -> None:
        """Moves past letters, digits and underscores."""
        while True:
            ch = self.next()
            if not (ch and _alnum(ch)):
                self.backup()
                return

    def char(self):
        return self._quoted("'", CHAR_CONST, "unterminated character constant")

    def quote(self):
        return self._quoted('"', STRING, "unterminated quoted string")

    def _quoted(self, close: str, typ: int, unterminated: str):
        """Scans to `close` past backslash escapes; a newline or the end is `unterminated`."""
        while True:
            ch = self.next()
            if ch == "\\":
                if self.next() not in ("", "\n"):
                    continue
                ch = ""
            if ch in ("", "\n"):
                self.error(unterminated)
            if ch == close:
                break
        self.emit(typ)
        return self.inside_action

    def raw_quote(self):
        x = self.s.find("`", self.pos)
        if x < 0:
            self.error("unterminated raw quoted string")
        self.pos = x + 1
        self.emit(RAW_STRING)
        return self.inside_action

    _NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9_]+)?|0[bB][01_]*|0[oO][0-7_]*"
                         r"|[0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]+)?)i?")

    def number(self):
        m = self._NUMBER.match(self.s, self.pos)
        self.pos = m.end() if m else self.pos
        if self.peek() and _alnum(self.peek()):
            self.pos += 1
            self.error(f"bad number syntax: {go_quote(self.s[self.start:self.pos])}")
        self.emit(NUMBER)
        return self.inside_action


def lex(text: str) -> list[Item]:
    """The items of ``text``, ending in EOF (or in an ERROR item where the text is malformed)."""
    return Lexer(text).lex()
