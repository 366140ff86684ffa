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

Why one module of ~1,300 lines: it is one grammar, ported from Go's own files and read in their
order (``lex.go``, then ``node.go``/``parse.go``, then ``exec.go`` and ``funcs.go``, each a
section below). The three stages share their private token, node and error types, and nothing
outside needs more than :func:`parse`, :class:`Template` and :class:`TemplateError`; split into
files, each part would import the others' privates or make them public for no caller.
"""

from __future__ import annotations

import html as _html
import json
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import NetlabError


class TemplateError(NetlabError):
    """A template that does not parse, or fails while it runs (Go's message)."""


# -- the lexer (text/template/parse/lex.go) --------------------------------------------------------

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


def _go_rune(ch: str) -> str:
    """Go's ``%#U``: ``U+007D '}'``."""
    return f"U+{ord(ch):04X} '{ch}'" if ch.isprintable() else f"U+{ord(ch):04X}"


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class _Stop(Exception):
    pass


class _Lexer:
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


# -- the parse tree (text/template/parse/node.go, parse.go) -------------------------------------------

@dataclass
class Node:
    pos: int


@dataclass
class Text(Node):
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass
class Field(Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass
class Variable(Node):
    idents: list[str]  # ["$x", "A", "B"]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass
class Chain(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass
class Ident(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class Literal(Node):
    value: Any
    text: str
    kind: str  # "bool", "number", "string", "nil", "dot"

    def __str__(self) -> str:
        return self.text


@dataclass
class Command(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass
class Pipe(Node):
    line: int
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass
class Action(Node):
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class Control(Node):
    kind: str  # "if", "range", "with"
    pipe: Pipe
    body: list[Node]
    other: list[Node] | None

    def __str__(self) -> str:
        text = f"{{{{{self.kind} {self.pipe}}}}}" + "".join(str(n) for n in self.body)
        if self.other is not None:
            text += "{{else}}" + "".join(str(n) for n in self.other)
        return text + "{{end}}"


@dataclass
class Jump(Node):
    kind: str  # "break", "continue"

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


@dataclass
class _Marker(Node):
    kind: str  # "end", "else"

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


#: Go's builtins and the Docker CLI's (templates.basicFunctions): what a template may call.
FUNCTIONS = {"and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
             "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
             "json", "split", "join", "title", "lower", "upper", "pad", "truncate"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = _Lexer(text).lex()
        self.i = 0
        self.furthest = 0
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0

    # tokens
    def next(self) -> Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.furthest = max(self.furthest, min(self.i, len(self.items) - 1))
        self.i += 1
        return item

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        item = self.next()
        self.backup()
        return item

    def next_non_space(self) -> Item:
        while True:
            item = self.next()
            if item.typ != SPACE:
                return item

    def peek_non_space(self) -> Item:
        """As Go's: the spaces before the item stay consumed."""
        item = self.next_non_space()
        self.backup()
        return item

    def errorf(self, message: str) -> None:
        line = self.items[self.furthest].line
        raise TemplateError(f"template: :{line}: {message}")

    def unexpected(self, item: Item, context: str) -> None:
        if item.typ == ERROR:
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at :{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(f"{item}{extra}")
        self.errorf(f"unexpected {item} in {context}")

    def expect(self, typ: int, context: str) -> Item:
        item = self.next_non_space()
        if item.typ != typ:
            self.unexpected(item, context)
        return item

    # the grammar
    def parse(self) -> list[Node]:
        root: list[Node] = []
        while self.peek().typ != EOF:
            node = self.text_or_action()
            if isinstance(node, _Marker):
                self.errorf(f"unexpected {node}")
            if node is not None:
                root.append(node)
        return root

    def item_list(self) -> tuple[list[Node], _Marker]:
        nodes: list[Node] = []
        while self.peek_non_space().typ != EOF:
            node = self.text_or_action()
            if isinstance(node, _Marker):
                return nodes, node
            if node is not None:
                nodes.append(node)
        self.errorf("unexpected EOF")
        raise AssertionError  # not reached

    def text_or_action(self) -> Node | None:
        item = self.next_non_space()
        if item.typ == TEXT:
            return Text(item.pos, item.val)
        if item.typ == LEFT_DELIM:
            self.action_line = item.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if item.typ == COMMENT:
            return None
        self.unexpected(item, "input")
        return None

    def action(self) -> Node:
        item = self.next_non_space()
        if item.typ == ELSE:
            return self.else_control()
        if item.typ == END:
            self.expect(RIGHT_DELIM, "end")
            return _Marker(item.pos, "end")
        if item.typ in (IF, RANGE, WITH):
            return self.control(item)
        if item.typ in (BREAK, CONTINUE):
            self.expect(RIGHT_DELIM, f"{{{{{item.val}}}}}")
            if self.range_depth == 0:
                self.errorf(f"{{{{{item.val}}}}} outside {{{{range}}}}")
            return Jump(item.pos, item.val)
        if item.typ in (BLOCK, DEFINE, TEMPLATE):
            self.errorf(f"{{{{{item.val}}}}}: this lab's docker templates have no named templates")
        self.backup()
        return Action(self.peek().pos, self.pipeline("command", RIGHT_DELIM))

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == IF:
            return _Marker(peek.pos, "else")  # "else if": the if is parsed by control()
        self.expect(RIGHT_DELIM, "else")
        return _Marker(peek.pos, "else")

    def control(self, item: Item) -> Control:
        context = item.val
        depth = len(self.vars)
        try:
            pipe = self.pipeline(context, RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            body, marker = self.item_list()
            if context == "range":
                self.range_depth -= 1
            other = None
            if marker.kind == "else":
                if context == "if" and self.peek().typ == IF:
                    nested = self.next()
                    other = [self.control(nested)]
                else:
                    other, marker = self.item_list()
                    if marker.kind != "end":
                        self.errorf(f"expected end; found {marker}")
            return Control(pipe.pos, context, pipe, body, other)
        finally:
            del self.vars[depth:]

    def pipeline(self, context: str, end: int) -> Pipe:
        first = self.peek_non_space()
        pipe = Pipe(first.pos, first.line)
        while True:  # declarations
            v = self.peek_non_space()
            if v.typ != VARIABLE:
                break
            at = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (ASSIGN, DECLARE):
                pipe.is_assign = nxt.typ == ASSIGN
                self.next_non_space()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
                break
            if nxt.typ == CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(v.val)
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (VARIABLE, RIGHT_DELIM, RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            self.i = at
            break
        while True:
            item = self.next_non_space()
            if item.typ == end:
                if not pipe.cmds:
                    self.errorf(f"missing value for {context}")
                for n, cmd in enumerate(pipe.cmds[1:]):
                    if isinstance(cmd.args[0], Literal):
                        self.errorf(f"non executable command in pipeline stage {n + 2}")
                return pipe
            if item.typ in (BOOL, CHAR_CONST, DOT, FIELD, IDENT, NUMBER, NIL, RAW_STRING, STRING,
                            VARIABLE, LEFT_PAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(item, context)

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            item = self.next()
            if item.typ == SPACE:
                continue
            if item.typ in (RIGHT_DELIM, RIGHT_PAREN):
                self.backup()
            elif item.typ != PIPE:
                self.unexpected(item, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == FIELD:
            fields = []
            while self.peek().typ == FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, Field):
                return Field(node.pos, node.idents + fields)
            if isinstance(node, Variable):
                return Variable(node.pos, node.idents + fields)
            if isinstance(node, Literal):
                self.errorf(f"unexpected . after term {go_quote(str(node))}")
            return Chain(node.pos, node, fields)
        return node

    def term(self) -> Node | None:
        item = self.next_non_space()
        if item.typ == IDENT:
            if item.val not in FUNCTIONS:
                self.errorf(f"function {go_quote(item.val)} not defined")
            return Ident(item.pos, item.val)
        if item.typ == DOT:
            return Literal(item.pos, _DOT, ".", "dot")
        if item.typ == NIL:
            return Literal(item.pos, None, "nil", "nil")
        if item.typ == VARIABLE:
            name = item.val
            if name not in self.vars:
                self.errorf(f"undefined variable {go_quote(name)}")
            return Variable(item.pos, [name])
        if item.typ == FIELD:
            return Field(item.pos, [item.val[1:]])
        if item.typ == BOOL:
            return Literal(item.pos, item.val == "true", item.val, "bool")
        if item.typ in (NUMBER, CHAR_CONST):
            return Literal(item.pos, self._number(item), item.val, "number")
        if item.typ == LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", RIGHT_PAREN)
        if item.typ in (STRING, RAW_STRING):
            return Literal(item.pos, self._unquote(item), item.val, "string")
        self.backup()
        return None

    def _number(self, item: Item) -> Any:
        text = item.val
        if item.typ == CHAR_CONST:
            body = text[1:-1]
            try:
                body = body.encode().decode("unicode_escape") if body.startswith("\\") else body
            except UnicodeDecodeError:
                body = ""
            if len(body) != 1:
                self.errorf(f"malformed character constant: {text}")
            return ord(body)
        clean = text.replace("_", "")
        try:
            if clean.endswith("i"):
                raise ValueError
            if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)", clean):
                return int(clean, 0) if not re.fullmatch(r"[+-]?0[0-7]+", clean) else int(clean, 8)
            value = float(clean)
            return int(value) if value.is_integer() and "e" not in clean.lower() and "." not in clean else value
        except ValueError:
            self.errorf(f"illegal number syntax: {go_quote(text)}")

    def _unquote(self, item: Item) -> str:
        if item.typ == RAW_STRING:
            return item.val[1:-1]
        try:
            if "\\x" in item.val or "\\a" in item.val or "\\v" in item.val:
                return item.val[1:-1].encode().decode("unicode_escape")
            return json.loads(item.val, strict=False)
        except (ValueError, UnicodeDecodeError):
            self.errorf("invalid syntax")
            raise AssertionError  # not reached


def parse(text: str) -> "Template":
    """Parse ``text`` as Go's text/template; a malformed one raises :class:`TemplateError` with Go's words."""
    return Template(text, _Parser(text).parse())


# -- execution (text/template/exec.go) -------------------------------------------------------------------

class _Dot:
    def __repr__(self) -> str:
        return "."


_DOT = _Dot()


class _MissingType:
    """A map's missing key (Go's invalid reflect.Value): prints ``<no value>``."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING = _MissingType()
_NONE_GIVEN = object()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; :meth:`execute` runs it on data."""

    def __init__(self, text: str, root: list[Node]) -> None:
        self.text = text
        self.root = root

    def execute(self, data: Any) -> str:
        state = _State(self.text, data)
        state.walk(data, self.root)
        return "".join(state.out)


class _State:
    def __init__(self, text: str, data: Any) -> None:
        self.text = text
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.node: Node | None = None

    def errorf(self, message: str) -> None:
        if self.node is None:
            raise TemplateError(f"template: : {message}")
        pos = self.node.pos
        before = self.text[:pos]
        nl = before.rfind("\n")
        col = pos if nl < 0 else pos - (nl + 1)
        context = str(self.node)
        if len(context) > 20:
            context = context[:20] + "..."
        raise TemplateError(f'template: :{1 + before.count(chr(10))}:{col}: executing "" at <{context}>: {message}')

    # walking
    def walk(self, dot: Any, nodes: list[Node]) -> None:
        for node in nodes:
            self.node = node
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipeline(dot, node.pipe)
                if not node.pipe.decl:
                    self.out.append(self.printable(node, value))
            elif isinstance(node, Control):
                self.control(dot, node)
            elif isinstance(node, Jump):
                raise _Break if node.kind == "break" else _Continue

    def control(self, dot: Any, node: Control) -> None:
        mark = len(self.vars)
        try:
            if node.kind == "range":
                self.range(dot, node)
                return
            value = self.pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.other is not None:
                self.walk(dot, node.other)
        finally:
            del self.vars[mark:]

    def range(self, dot: Any, node: Control) -> None:
        self.node = node
        value = self.pipeline(dot, node.pipe)
        mark = len(self.vars)
        if isinstance(value, dict):
            pairs = [(k, value[k]) for k in sorted(value)]
        elif isinstance(value, list):
            pairs = list(enumerate(value))
        elif value is None or value is MISSING:
            pairs = []
        else:
            self.node = node
            self.errorf(f"range can't iterate over {self.printable(node, value)}")
        if not pairs:
            if node.other is not None:
                self.walk(dot, node.other)
            return
        for key, elem in pairs:
            del self.vars[mark:]
            if len(node.pipe.decl) == 1:
                self._set_top(node.pipe.decl[0], elem)
            elif len(node.pipe.decl) == 2:
                self._set_top(node.pipe.decl[0], key)
                self._set_top(node.pipe.decl[1], elem)
            try:
                self.walk(elem, node.body)
            except _Continue:
                continue
            except _Break:
                break

    def _set_top(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return

    # pipelines and commands
    def pipeline(self, dot: Any, pipe: Pipe) -> Any:
        value: Any = _NONE_GIVEN
        for cmd in pipe.cmds:
            value = self.command(dot, cmd, value)
        for name in pipe.decl:
            if pipe.is_assign:
                if not any(n == name for n, _ in self.vars):
                    self.errorf(f"undefined variable: {name}")
                self._set_top(name, value)
            else:
                self.vars.append((name, value))
        return value

    def command(self, dot: Any, cmd: Command, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, Field):
            return self.field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, Chain):
            self.node = first
            if isinstance(first.node, Literal) and first.node.kind == "nil":
                self.errorf(f"indirection through explicit nil in {first}")
            base = self.arg(dot, first.node)
            return self.field_chain(dot, base, first, first.fields, cmd.args, final)
        if isinstance(first, Variable):
            value = self.variable(first.idents[0])
            if len(first.idents) == 1:
                self.not_a_function(cmd, final)
                return value
            return self.field_chain(dot, value, first, first.idents[1:], cmd.args, final)
        if isinstance(first, Ident):
            return self.call(dot, first, cmd, final)
        if isinstance(first, Pipe):
            self.not_a_function(cmd, final)
            return self.pipeline(dot, first)
        self.not_a_function(cmd, final)
        assert isinstance(first, Literal)
        self.node = first
        if first.kind == "nil":
            self.errorf("nil is not a command")
        return dot if first.kind == "dot" else first.value

    def not_a_function(self, cmd: Command, final: Any) -> None:
        if len(cmd.args) > 1 or final is not _NONE_GIVEN:
            self.node = cmd
            self.errorf(f"can't give argument to non-function {cmd.args[0]}")

    def variable(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        self.errorf(f"undefined variable: {name}")

    def field_chain(self, dot: Any, receiver: Any, node: Node, idents: list[str], args: list[Node],
                    final: Any) -> Any:
        self.node = node
        for ident in idents[:-1]:
            receiver = self.field(ident, receiver, False)
        has_args = len(args) > 1 or final is not _NONE_GIVEN
        return self.field(idents[-1], receiver, has_args)

    def field(self, name: str, receiver: Any, has_args: bool) -> Any:
        if receiver is MISSING:
            return MISSING
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        if isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            return receiver.get(name, MISSING)
        self.errorf(f"can't evaluate field {name} in type {_go_type(receiver)}")

    def arg(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, Literal):
            return dot if node.kind == "dot" else node.value
        if isinstance(node, Field):
            return self.field_chain(dot, dot, node, node.idents, [node], _NONE_GIVEN)
        if isinstance(node, Variable):
            value = self.variable(node.idents[0])
            return value if len(node.idents) == 1 else \
                self.field_chain(dot, value, node, node.idents[1:], [node], _NONE_GIVEN)
        if isinstance(node, Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, Ident):
            return self.call(dot, node, Command(node.pos, [node]), _NONE_GIVEN)
        if isinstance(node, Chain):
            base = self.arg(dot, node.node)
            self.node = node
            return self.field_chain(dot, base, node, node.fields, [node], _NONE_GIVEN)
        self.errorf(f"can't handle {node} for arg")

    def call(self, dot: Any, ident: Ident, cmd: Command, final: Any) -> Any:
        name = ident.name
        nodes = cmd.args[1:]
        if name in ("and", "or"):  # short-circuit, as Go 1.18+
            if not nodes and final is _NONE_GIVEN:
                self.node = cmd
                self.errorf(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for node in nodes:
                value = self.arg(dot, node)
                if truth(value) != (name == "and"):
                    return value
            if final is not _NONE_GIVEN:
                value = final
            return value
        self.node = ident
        func = _FUNCS.get(name)
        if func is None:
            self.errorf(f"this lab's docker templates do not implement {name}")
        low, high = _ARITY[name]
        given = len(nodes) + (final is not _NONE_GIVEN)
        if given < low or (high is not None and given != high):
            want = f"at least {low}" if high is None else str(high)
            self.errorf(f"wrong number of args for {name}: want {want} got {given}")
        args = [self.arg(dot, n) for n in nodes]
        if final is not _NONE_GIVEN:
            args.append(final)
        self.node = cmd
        try:
            return func(*args)
        except _FuncError as err:
            self.errorf(f"error calling {name}: {err}")

    # printing
    def printable(self, node: Node, value: Any) -> str:
        return go_print(value)


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil, and empty strings, lists and maps are false."""
    if value is MISSING or value is None or value is _NONE_GIVEN:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, str, list, dict)):
        return bool(value)
    return True


def _go_type(value: Any) -> str:
    return "interface {}"


def go_print(value: Any, nested: bool = False) -> str:
    """fmt's ``%v`` of a decoded JSON value (``<no value>`` for a missing key)."""
    if value is MISSING or value is _NONE_GIVEN:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(value[k], True)}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v, True) for v in value) + "]"
    return str(value)


def _go_float(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if math.isnan(x):
        return "NaN"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    return text.replace("e+0", "e+").replace("e-0", "e-")


# -- functions -----------------------------------------------------------------------------------------

class _FuncError(Exception):
    pass


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None or item is MISSING:
            raise _FuncError("index of untyped nil")
        if isinstance(item, dict):
            if not isinstance(key, str):
                raise _FuncError(f"value has type {type(key).__name__}; should be string")
            item = item.get(key)  # a missing key is the map's zero value: nil
        elif isinstance(item, (list, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise _FuncError(f"cannot index slice/array with type {type(key).__name__}")
            if not 0 <= key < len(item):
                raise _FuncError(f"index out of range: {key}")
            item = item[key] if isinstance(item, list) else ord(item[key])
        else:
            raise _FuncError(f"can't index item of type {_go_type(item)}")
    return item


def _slice(item: Any, *bounds: Any) -> Any:
    if not isinstance(item, (list, str)):
        raise _FuncError(f"can't slice item of type {_go_type(item)}")
    if len(bounds) > 2:
        raise _FuncError("too many slice indexes")
    lo = bounds[0] if bounds else 0
    hi = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= lo <= hi <= len(item):
        raise _FuncError(f"invalid slice index: {lo} > {hi}" if lo > hi else f"index out of range: {hi}")
    return item[lo:hi]


def _len(item: Any) -> int:
    if isinstance(item, (str, list, dict)):
        return len(item)
    if item is None or item is MISSING:
        raise _FuncError("len of nil pointer")
    raise _FuncError(f"len of type {_go_type(item)}")


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
        raise _FuncError("invalid type for comparison")
    if not others:
        raise _FuncError("missing argument for comparison")
    for other in others:
        if _kind(other) != _kind(first):
            if "nil" in (_kind(other), _kind(first)):
                raise _FuncError("invalid type for comparison")
            raise _FuncError("incompatible types for comparison")
        if first == other:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    if _kind(a) not in ("number", "string") or _kind(b) not in ("number", "string"):
        raise _FuncError("invalid type for comparison")
    if _kind(a) != _kind(b):
        raise _FuncError("incompatible types for comparison")
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
        raise _FuncError("wrong type for value; expected string")
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
            text = f"%!{verb}({_go_type(value)}={go_print(value)})"
        if width and width != "*":
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), "0" if "0" in flags else " ")
        out.append(text)
    out.append(fmt[pos:])
    if rest:
        out.append("%!(EXTRA " + ", ".join(f"{_go_type(v)}={go_print(v)}" for v in rest) + ")")
    return "".join(out)


def _json(value: Any) -> str:
    if value is MISSING:
        value = None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _FuncError(f"wrong type for value; expected string; got {_go_type(value)}")
    return value


def _need_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _FuncError(f"wrong type for value; expected int; got {_go_type(value)}")
    return value


def _title(s: Any) -> str:
    return re.sub(r"(^|[^\w'])(\w)", lambda m: m.group(1) + m.group(2).upper(), _need_str(s))


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise _FuncError(f"wrong type for value; expected []string; got {_go_type(items)}")
    return _need_str(sep).join(items)


def _js(*args: Any) -> str:
    text = _sprint(*args)
    table = {"\\": "\\\\", "'": "\\'", '"': "\\\"", "<": "\\u003C", ">": "\\u003E", "&": "\\u0026",
             "=": "\\u003D", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(table.get(ch, ch) for ch in text)


_FUNCS: dict[str, Callable[..., Any]] = {
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
_ARITY: dict[str, tuple[int, int | None]] = {
    "index": (1, None), "slice": (1, None), "len": (1, 1), "not": (1, 1), "eq": (1, None), "ne": (2, 2),
    "lt": (2, 2), "le": (2, 2), "gt": (2, 2), "ge": (2, 2), "print": (0, None), "println": (0, None),
    "printf": (1, None), "html": (0, None), "urlquery": (0, None), "js": (0, None), "json": (1, 1),
    "split": (2, 2), "join": (2, 2), "title": (1, 1), "lower": (1, 1), "upper": (1, 1), "pad": (3, 3),
    "truncate": (2, 2),
}


__all__ = ["parse", "Template", "TemplateError", "FUNCTIONS", "go_print", "truth"]
