"""The parse tree (Go's ``text/template/parse/node.go``): each node prints as the template
text it came from (Go's error messages quote it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class _Dot:
    def __repr__(self) -> str:
        return "."


#: the value of a ``.`` literal: a placeholder the executor replaces with the current dot
THE_DOT = _Dot()


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
class Marker(Node):
    kind: str  # "end", "else"

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"
