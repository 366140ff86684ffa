"""Running a parsed template on data (Go's ``text/template/exec.go``): the walk over the tree,
pipelines, fields of dicts, variables, ``range`` with ``break``/``continue``, function calls;
errors in Go's words (``template: :1:2: executing "" at <.X>: ...``)."""

from __future__ import annotations

from typing import Any

from .errors import TemplateError
from .funcs import ARITY, FUNCS, FuncError
from .node import Action, Chain, Command, Control, Field, Ident, Jump, Literal, Node, Pipe, Text, Variable
from .values import MISSING, NONE_GIVEN, go_print, go_type, truth


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class State:
    """One run of a template: its output so far, its variables, the node at work (for errors)."""

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
        value: Any = NONE_GIVEN
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
        if len(cmd.args) > 1 or final is not NONE_GIVEN:
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
        has_args = len(args) > 1 or final is not NONE_GIVEN
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
        self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")

    def arg(self, dot: Any, node: Node) -> Any:
        self.node = node
        if isinstance(node, Literal):
            return dot if node.kind == "dot" else node.value
        if isinstance(node, Field):
            return self.field_chain(dot, dot, node, node.idents, [node], NONE_GIVEN)
        if isinstance(node, Variable):
            value = self.variable(node.idents[0])
            return value if len(node.idents) == 1 else \
                self.field_chain(dot, value, node, node.idents[1:], [node], NONE_GIVEN)
        if isinstance(node, Pipe):
            return self.pipeline(dot, node)
        if isinstance(node, Ident):
            return self.call(dot, node, Command(node.pos, [node]), NONE_GIVEN)
        if isinstance(node, Chain):
            base = self.arg(dot, node.node)
            self.node = node
            return self.field_chain(dot, base, node, node.fields, [node], NONE_GIVEN)
        self.errorf(f"can't handle {node} for arg")

    def call(self, dot: Any, ident: Ident, cmd: Command, final: Any) -> Any:
        name = ident.name
        nodes = cmd.args[1:]
        if name in ("and", "or"):  # short-circuit, as Go 1.18+
            if not nodes and final is NONE_GIVEN:
                self.node = cmd
                self.errorf(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for node in nodes:
                value = self.arg(dot, node)
                if truth(value) != (name == "and"):
                    return value
            if final is not NONE_GIVEN:
                value = final
            return value
        self.node = ident
        func = FUNCS.get(name)
        if func is None:
            self.errorf(f"this lab's docker templates do not implement {name}")
        low, high = ARITY[name]
        given = len(nodes) + (final is not NONE_GIVEN)
        if given < low or (high is not None and given != high):
            want = f"at least {low}" if high is None else str(high)
            self.errorf(f"wrong number of args for {name}: want {want} got {given}")
        args = [self.arg(dot, n) for n in nodes]
        if final is not NONE_GIVEN:
            args.append(final)
        self.node = cmd
        try:
            return func(*args)
        except FuncError as err:
            self.errorf(f"error calling {name}: {err}")

    # printing
    def printable(self, node: Node, value: Any) -> str:
        return go_print(value)
