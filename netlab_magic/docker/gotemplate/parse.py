"""The parser (Go's ``text/template/parse/parse.go``): items into a tree of nodes, with Go's
checks and error messages (``template: :1: function "x" not defined``)."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import TemplateError
from .funcs import FUNCTIONS
from .lex import (ASSIGN, BLOCK, BOOL, BREAK, CHAR, CHAR_CONST, COMMENT, CONTINUE, DECLARE, DEFINE, DOT,
                  ELSE, END, EOF, ERROR, FIELD, IDENT, IF, LEFT_DELIM, LEFT_PAREN, NIL, NUMBER, PIPE,
                  RANGE, RAW_STRING, RIGHT_DELIM, RIGHT_PAREN, SPACE, STRING, TEMPLATE, TEXT, VARIABLE,
                  WITH, Item, lex)
from .node import (THE_DOT, Action, Chain, Command, Control, Field, Ident, Jump, Literal, Marker, Node,
                   Pipe, Text, Variable)
from .values import go_quote


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items = lex(text)
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
            if isinstance(node, Marker):
                self.errorf(f"unexpected {node}")
            if node is not None:
                root.append(node)
        return root

    def item_list(self) -> tuple[list[Node], Marker]:
        nodes: list[Node] = []
        while self.peek_non_space().typ != EOF:
            node = self.text_or_action()
            if isinstance(node, Marker):
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
            return Marker(item.pos, "end")
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
            return Marker(peek.pos, "else")  # "else if": the if is parsed by control()
        self.expect(RIGHT_DELIM, "else")
        return Marker(peek.pos, "else")

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
            return Literal(item.pos, THE_DOT, ".", "dot")
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
