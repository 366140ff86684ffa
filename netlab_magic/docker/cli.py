"""The Docker CLI's grammar, from one registry: each subcommand's flags, handler and usage.

A :class:`Command` says everything about one subcommand (``network create``, ``run``, ...): its
flags (:class:`Flag`), its arguments, what it does, its aliases and the function that carries
it out. A :class:`Registry` of them parses a line the way the Docker CLI does (``--name=x``,
``--name x``, ``-p 8888:80``, ``-p8888:80``, ``-dit``; for ``run`` and ``exec`` the first
positional ends the flags), and prints ``%docker --help`` and ``%docker CMD --help``: parsing,
help and usage all come from the same entries, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from IPython.core.error import UsageError

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
    stop_at: int | None = None  # positionals after which the rest is the container's command
    note: str = ""  # said after the usage line in %docker --help

    def flag(self, name: str) -> Flag | None:
        return next((f for f in self.flags if name in f.names), None)

    def synopsis(self) -> str:
        return " ".join(p for p in (self.name, *(f.synopsis() for f in self.flags if not f.hidden), self.args) if p)

    def help(self) -> str:
        """``%docker CMD --help``."""
        lines = [f"Usage:  %docker {self.name} [OPTIONS] {self.args}".rstrip(), "", self.summary]
        if self.aliases:
            lines += ["", "Aliases:", "  " + ", ".join(f"%docker {a}" for a in (self.name, *self.aliases))]
        shown = [f for f in self.flags if not f.hidden]
        if shown:
            heads = [(", ".join(f.names) + (f" {f.metavar}" if f.kind != BOOL else ""), f.help) for f in shown]
            width = max(len(h) for h, _ in heads)
            lines += ["", "Options:", *(f"  {h.ljust(width)}   {text}" for h, text in heads)]
        return "\n".join(lines)


@dataclass
class Registry:
    """Every subcommand, by name and alias."""

    commands: list[Command]
    title: str = ""
    by_name: dict[str, Command] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for cmd in self.commands:
            for name in (cmd.name, *cmd.aliases):
                self.by_name[name] = cmd

    def usage(self) -> str:
        """``%docker --help``: every command's synopsis."""
        lines = ["Usage:  %docker COMMAND", "", self.title, "", "Commands:"]
        for cmd in self.commands:
            also = cmd.aliases[:2]
            tail = f"   (also: {', '.join(also)})" if also else ""
            lines.append(f"  {cmd.synopsis()}{tail}" + (f"   {cmd.note}" if cmd.note else ""))
        lines += ["", "%docker COMMAND --help says more about a command."]
        return "\n".join(lines)

    def find(self, tokens: list[str]) -> tuple[Command, list[str]]:
        """The command a line names (``network create``, ``ls``, ``container ps``) and its rest."""
        first = tokens[0]
        groups = sorted({n.split()[0] for n in self.by_name if " " in n})
        if first in groups:
            if len(tokens) < 2 or tokens[1].startswith("-"):
                subs = ", ".join(n.split()[1] for n in self.by_name if n.startswith(first + " "))
                raise UsageError(f'"docker {first}" needs a subcommand: {subs}')
            name = f"{first} {tokens[1]}"
            if name not in self.by_name:
                raise UsageError(f"docker: '{name}' is not a docker command in this lab (see %docker --help)")
            return self.by_name[name], tokens[2:]
        if first not in self.by_name:
            raise UsageError(f"docker: '{first}' is not a docker command in this lab (see %docker --help)")
        return self.by_name[first], tokens[1:]

    def parse(self, cmd: Command, tokens: list[str]) -> Parsed:
        """Parse Docker-style flags: ``--name=x``, ``--name x``, ``-p 8888:80``, ``-p8888:80``, ``-dit``."""
        out = Parsed(args=[])
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok == "--":
                out["args"] += tokens[i + 1:]
                break
            if not tok.startswith("-") or tok == "-":
                out["args"].append(tok)
                if cmd.stop_at is not None and len(out["args"]) >= cmd.stop_at:
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
                    i = _store(out, flag, value if eq else None, tokens, i, name)
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
                i = _store(out, flag, tok[j + 1:].removeprefix("=") or None, tokens, i, f"'{tok[j]}' in -{tok[j]}")
                break
            i += 1
        return out

    def _flag(self, cmd: Command, name: str, whole: str | None = None) -> Flag:
        flag = cmd.flag(name)
        if flag is None:
            have = ", ".join(sorted(n for f in cmd.flags for n in f.names)) or "no flags"
            raise UsageError(f"%docker {cmd.name}: unsupported flag {whole or name} "
                             f"(this lab's docker {cmd.name} takes: {have})")
        return flag


def _store(out: Parsed, flag: Flag, value: str | None, tokens: list[str], i: int, what: str) -> int:
    """Store a flag's value: ``value`` if it came with the flag, else the next token (whose index
    is returned, for the caller to go on after it)."""
    if value is None:
        i += 1
        if i >= len(tokens):
            raise UsageError(f"flag needs an argument: {what}")
        value = tokens[i]
    if flag.kind == MULTI:
        out.setdefault(flag.dest, []).append(value)
    else:
        out[flag.dest] = value
    return i


__all__ = ["BOOL", "VALUE", "MULTI", "Parsed", "Flag", "Command", "Registry"]
