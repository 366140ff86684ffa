"""A magic's subcommands from one registry: each one's flags, handler, help and usage.

``%netlab`` and ``%docker`` both dispatch this way. A :class:`Command` says everything about one
subcommand (``network create``, ``run``, ``trace`` ...): its flags (:class:`Flag`), its
arguments, what it does, its aliases and the function that carries it out. A :class:`Registry`
of them parses a line the way the Docker CLI does (``--name=x``, ``--name x``, ``-p 8888:80``,
``-p8888:80``, ``-dit``; with ``stop_at``, e.g. for ``run`` and ``exec``, the first positional
ends the flags), and prints ``%MAGIC --help`` and ``%MAGIC CMD --help``: parsing, help and usage
all come from the same entries, so they cannot disagree. Every error is one ``UsageError`` line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

from IPython.core.error import UsageError

from .arguments import split_command

BOOL, VALUE, MULTI = "bool", "value", "multi"


class Parsed(dict):
    """Flags by dest, plus ``args``: the positionals (and, for run/exec, the command after them)."""

    def __getattr__(self, key: str) -> Any:
        return self.get(key)


@dataclass(frozen=True)
class Flag:
    """One flag: its names (``-p``, ``--publish``), where its value goes, its kind and help."""

    names: tuple[str, ...]
    dest: str
    kind: str = BOOL
    help: str = ""
    metavar: str = ""  # VALUE/MULTI: the value's name in help (``NAME``, ``[IP:]HOST:CONTAINER``)
    hidden: bool = False  # accepted (``-it``), not shown in the usage
    type: Callable[[str], Any] = str  # VALUE: what the text becomes (``float``: a bad number is one line)
    default: Any = None  # VALUE: the value when the flag is not given

    def synopsis(self) -> str:
        short = self.names[0]
        if self.kind == BOOL:
            return f"[{short}]"
        return f"[{short} {self.metavar}]" + ("..." if self.kind == MULTI else "")


@dataclass(frozen=True)
class Command:
    """One subcommand of ``%docker``."""

    name: str  # "network create"
    args: str  # what follows the flags: "NAME", "IMAGE [CMD...]"
    summary: str
    handler: Callable[..., None]
    flags: tuple[Flag, ...] = ()
    aliases: tuple[str, ...] = ()
    stop_at: int | None = None  # positionals after which the rest is the command to run (run, exec)
    #: with stop_at: that command is a shell line, handed on as typed (``Parsed.command``), not as words
    shell_command: bool = False
    note: str = ""  # said after the usage line in %MAGIC --help
    details: str = ""  # said at the end of %MAGIC CMD --help (examples, what the output shows)

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if name in f.names), None)

    def value_names(self) -> set[str]:
        """The names of the flags that take a value (``-m``, ``--match``)."""
        return {n for f in self.flags if f.kind != BOOL for n in f.names}

    def synopsis(self) -> str:
        return " ".join(p for p in (self.name, *(f.synopsis() for f in self.flags if not f.hidden), self.args) if p)

    def help(self, magic: str = "%docker") -> str:
        """``%MAGIC CMD --help``."""
        lines = [f"Usage:  {magic} {self.name} [OPTIONS] {self.args}".rstrip(), "", self.summary]
        if self.aliases:
            lines += ["", "Aliases:", "  " + ", ".join(f"{magic} {a}" for a in (self.name, *self.aliases))]
        shown = [f for f in self.flags if not f.hidden]
        if shown:
            heads = [(", ".join(f.names) + (f" {f.metavar}" if f.kind != BOOL else ""), f.help) for f in shown]
            width = max(len(h) for h, _ in heads)
            lines += ["", "Options:", *(f"  {h.ljust(width)}   {text}" for h, text in heads)]
        if self.details:
            lines += ["", self.details]
        return "\n".join(lines)


@dataclass
class Registry:
    """Every subcommand, by name and alias."""

    commands: list[Command]
    title: str = ""
    magic: str = "%docker"  # how the user calls it
    #: the error for an unknown command (``{name}``: what was typed)
    unknown: str = "docker: '{name}' is not a docker command in this lab (see %docker --help)"
    by_name: dict[str, Command] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for cmd in self.commands:
            for name in (cmd.name, *cmd.aliases):
                self.by_name[name] = cmd

    def usage(self) -> str:
        """``%MAGIC --help``: every command's synopsis."""
        lines = [f"Usage:  {self.magic} COMMAND", "", self.title, "", "Commands:"]
        for cmd in self.commands:
            also = cmd.aliases[:2]
            tail = f"   (also: {', '.join(also)})" if also else ""
            lines.append(f"  {cmd.synopsis()}{tail}" + (f"   {cmd.note}" if cmd.note else ""))
        lines += ["", f"{self.magic} COMMAND --help says more about a command."]
        return "\n".join(lines)

    def help(self, cmd: Command) -> str:
        """``%MAGIC CMD --help``."""
        return cmd.help(self.magic)

    def find(self, tokens: list[str]) -> tuple[Command, list[str]]:
        """The command a line names (``network create``, ``ls``, ``container ps``) and its rest."""
        first = tokens[0]
        groups = sorted({n.split()[0] for n in self.by_name if " " in n})
        if first in groups:
            if len(tokens) < 2 or tokens[1].startswith("-"):
                subs = ", ".join(n.split()[1] for n in self.by_name if n.startswith(first + " "))
                raise UsageError(f'"{self.magic.lstrip("%")} {first}" needs a subcommand: {subs}')
            name = f"{first} {tokens[1]}"
            if name not in self.by_name:
                raise UsageError(self.unknown.format(name=name))
            return self.by_name[name], tokens[2:]
        if first not in self.by_name:
            raise UsageError(self.unknown.format(name=first))
        return self.by_name[first], tokens[1:]

    def parse_line(self, cmd: Command, text: str) -> Parsed:
        """Parse ``text``, what follows the command's name, read as shell words; for a command
        with ``shell_command``, the command after its positionals (or after ``--``) is cut from the
        raw text first and kept as typed, quotes and pipes included, in ``command``."""
        head, tail = split_command(text, cmd.value_names()) if cmd.shell_command else (text, "")
        try:
            tokens = shlex.split(head)
        except ValueError as err:  # "No closing quotation", "No escaped character"
            raise UsageError(f"{self.magic} {cmd.name}: {err} in: {text.strip()}") from None
        out = self.parse(cmd, tokens)
        out["command"] = tail
        return out

    def parse(self, cmd: Command, tokens: list[str]) -> Parsed:
        """Parse Docker-style flags: ``--name=x``, ``--name x``, ``-p 8888:80``, ``-p8888:80``, ``-dit``."""
        out = Parsed(args=[], **{f.dest: f.default for f in cmd.flags if f.default is not None})
        stop_at = None if cmd.shell_command else cmd.stop_at  # parse_line cut that command off already
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok == "--":
                out["args"] += tokens[i + 1:]
                break
            if not tok.startswith("-") or tok == "-":
                out["args"].append(tok)
                if stop_at is not None and len(out["args"]) >= stop_at:
                    out["args"] += tokens[i + 1:]
                    break
                i += 1
                continue
            if tok.startswith("--"):
                name, eq, value = tok.partition("=")
                flag = self._flag(cmd, name)
                if flag.kind == BOOL:
                    out[flag.dest] = value.lower() not in ("false", "0") if eq else True
                else:
                    i = _store(out, flag, value if eq else None, tokens, i, name, self.magic)
                i += 1
                continue
            # short flags: -d, -dit, -p 8888:80, -p8888:80, -f=FORMAT
            j = 1
            while j < len(tok):
                flag = self._flag(cmd, "-" + tok[j], tok if j == 1 and len(tok) > 2 else None)
                if flag.kind == BOOL:
                    out[flag.dest] = True
                    j += 1
                    continue
                i = _store(out, flag, tok[j + 1:].removeprefix("=") or None, tokens, i, f"'{tok[j]}' in -{tok[j]}",
                           self.magic)
                break
            i += 1
        return out

    def _flag(self, cmd: Command, name: str, whole: str | None = None) -> Flag:
        flag = cmd.flag(name)
        if flag is None:
            have = ", ".join(sorted(n for f in cmd.flags for n in f.names)) or "no flags"
            raise UsageError(f"{self.magic} {cmd.name}: unsupported flag {whole or name} "
                             f"(this lab's {self.magic.lstrip('%')} {cmd.name} takes: {have})")
        return flag


def _store(out: Parsed, flag: Flag, value: str | None, tokens: list[str], i: int, what: str, magic: str) -> int:
    """Store a flag's value: ``value`` if it came with the flag, else the next token (whose index
    is returned, for the caller to go on after it)."""
    if value is None:
        i += 1
        if i >= len(tokens):
            raise UsageError(f"flag needs an argument: {what}")
        value = tokens[i]
    try:
        typed = flag.type(value)
    except ValueError:
        raise UsageError(f"{magic}: {flag.names[-1]} takes {flag.metavar or 'a value'}, not {value!r}") from None
    if flag.kind == MULTI:
        out.setdefault(flag.dest, []).append(typed)
    else:
        out[flag.dest] = typed
    return i


__all__ = ["BOOL", "VALUE", "MULTI", "Parsed", "Flag", "Command", "Registry"]
