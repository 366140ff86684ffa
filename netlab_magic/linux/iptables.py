"""iptables in memory: the tables dockerd builds, the commands it runs, and how one state becomes another.

:class:`Tables` holds the ``raw``, ``filter`` and ``nat`` tables as ``iptables-save`` prints
them, and records every :class:`Command` that changed something, the way libnetwork runs them
(each checked with ``-C`` first: adding a rule that is there, or deleting one that is not,
does nothing). The release-specific programs (:mod:`.bridge20`) drive it.

Two states are turned into each other here, with no process run:

- :func:`diff` gives the commands from what the lab holds to what dockerd wants now
  (deletions, insertions after their neighbour, new chains);
- :func:`effective` replays commands on the *real* tables of the lab (parsed from its
  ``iptables-save``), keeping only those that change something, with insertion positions
  counted in the real chains (rules a learner added stay where they are);
- :func:`restore_payload` writes them as one ``iptables-restore --noflush`` input.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from .iptables_save import parse_iptables_save

#: Built-in chains per table, in the order iptables-save lists them.
BUILTIN = {
    "raw": ("PREROUTING", "OUTPUT"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
}
#: The order iptables-save (nf_tables backend) prints tables in.
TABLE_ORDER = ("raw", "filter", "nat")


@dataclass(frozen=True)
class Command:
    """One iptables command: ``iptables -t TABLE OP CHAIN [RULE]``.

    ``op`` is ``-N``, ``-X``, ``-F``, ``-P`` (``rule`` is the target), ``-A``, ``-I``, ``-D``.
    An insertion from :func:`diff` carries ``after``, the rule it must follow (None: first);
    :func:`effective` turns that into a position.
    """

    table: str
    op: str
    chain: str
    rule: str = ""
    after: str | None = None
    position: int | None = None

    def line(self) -> str:
        """As a line of ``iptables-restore`` input (inside its ``*TABLE`` block)."""
        pos = f" {self.position}" if self.position is not None else ""
        return " ".join(p for p in (f"{self.op} {self.chain}{pos}", self.rule) if p)

    def __str__(self) -> str:
        return f"iptables -t {self.table} {self.line()}"


@dataclass
class Tables:
    """The raw, filter and nat tables as iptables keeps them; rules in ``iptables-save`` form."""

    chains: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {t: {c: [] for c in cs} for t, cs in BUILTIN.items()})
    policies: dict[tuple[str, str], str] = field(default_factory=dict)
    log: list[Command] = field(default_factory=list)  # the commands that changed something

    # -- one iptables call each, as libnetwork makes it ---------------------------------------

    def new_chain(self, table: str, chain: str) -> None:
        """``iptables -t TABLE -N CHAIN`` unless it exists (``NewChain``)."""
        self.apply(Command(table, "-N", chain))

    def policy(self, table: str, chain: str, target: str) -> None:
        """``iptables -t TABLE -P CHAIN TARGET`` (``SetDefaultPolicy``)."""
        self.apply(Command(table, "-P", chain, target))

    def append(self, table: str, chain: str, rule: str) -> None:
        """``iptables -t TABLE -A CHAIN RULE`` unless present."""
        self.apply(Command(table, "-A", chain, rule))

    def insert(self, table: str, chain: str, rule: str) -> None:
        """``iptables -t TABLE -I CHAIN RULE`` (to the top) unless present."""
        self.apply(Command(table, "-I", chain, rule))

    def delete(self, table: str, chain: str, rule: str) -> None:
        """``iptables -t TABLE -D CHAIN RULE`` if present."""
        self.apply(Command(table, "-D", chain, rule))

    def to_top(self, table: str, chain: str, rule: str) -> None:
        """Delete the rule if present, then insert it first (``EnsureJumpRule``)."""
        self.delete(table, chain, rule)
        self.insert(table, chain, rule)

    def apply(self, cmd: Command) -> Command | None:
        """Carry out ``cmd`` if it changes something; return it as it was run (else None)."""
        chains = self.chains[cmd.table]
        rules = chains.get(cmd.chain)
        if cmd.op == "-N":
            if rules is not None:
                return None
            chains[cmd.chain] = []
        elif cmd.op in ("-X", "-F"):
            if rules is None or (cmd.op == "-F" and not rules):
                return None
            if cmd.op == "-X":
                del chains[cmd.chain]
            else:
                rules.clear()
        elif cmd.op == "-P":
            if self.policies.get((cmd.table, cmd.chain), "ACCEPT") == cmd.rule:
                return None
            self.policies[cmd.table, cmd.chain] = cmd.rule
        elif cmd.op == "-D":
            if rules is None or cmd.rule not in rules:
                return None
            rules.remove(cmd.rule)
        elif cmd.op in ("-A", "-I"):
            if cmd.rule in rules:
                return None
            if cmd.op == "-A":
                rules.append(cmd.rule)
            else:
                index = 0
                if cmd.after is not None and cmd.after in rules:
                    index = rules.index(cmd.after) + 1
                elif cmd.position is not None:
                    index = cmd.position - 1
                rules.insert(index, cmd.rule)
                if cmd.after is not None or cmd.position is not None:
                    cmd = Command(cmd.table, "-I", cmd.chain, cmd.rule, position=index + 1)
        else:
            raise ValueError(f"unknown iptables operation {cmd.op}")
        self.log.append(cmd)
        return cmd

    # -- reading and writing iptables-save ----------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> "Tables":
        """The tables ``iptables-save [--counters]`` printed (counters dropped)."""
        t = cls()
        for name, table in parse_iptables_save(text).items():
            chains = t.chains.setdefault(name, {})
            for chain in table.chains:
                chains.setdefault(chain.name, []).extend(rule.spec for rule in chain.rules)
                if chain.policy not in (None, "ACCEPT"):
                    t.policies[name, chain.name] = chain.policy
        return t

    def save(self) -> str:
        """The tables as ``iptables-save`` prints them (no comment lines, zero counters).

        The raw table is left out while it holds nothing of Docker's.
        """
        lines: list[str] = []
        for table in TABLE_ORDER:
            if table == "raw" and self.empty(table):
                continue
            builtin, chains = BUILTIN[table], self.chains[table]
            order = [*builtin, *sorted(c for c in chains if c not in builtin)]
            lines.append(f"*{table}")
            for chain in order:
                policy = self.policies.get((table, chain), "ACCEPT") if chain in builtin else "-"
                lines.append(f":{chain} {policy} [0:0]")
            lines += [f"-A {chain} {rule}" for chain in order for rule in chains[chain]]
            lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    def empty(self, table: str) -> bool:
        """True if ``table`` has only its built-in chains, empty, with their default policies."""
        chains = self.chains.get(table, {})
        return (set(chains) <= set(BUILTIN.get(table, ())) and not any(chains.values())
                and not any(t == table for t, _ in self.policies))

    def rules(self) -> dict[str, dict[str, list[str]]]:
        """Every non-empty table: chain -> rules in order (what the tests compare)."""
        return {t: {c: list(r) for c, r in chains.items()} for t, chains in self.chains.items()
                if not self.empty(t)}


# -- from one state to another ---------------------------------------------------------------

def diff(have: Tables, want: Tables) -> list[Command]:
    """Commands turning ``have`` into ``want``: new chains, policies, deletions, insertions."""
    commands: list[Command] = []
    for table, chains in want.chains.items():
        commands += [Command(table, "-N", chain) for chain in chains if chain not in have.chains[table]]
    for (table, chain), target in want.policies.items():
        if have.policies.get((table, chain), "ACCEPT") != target:
            commands.append(Command(table, "-P", chain, target))
    for table, chains in have.chains.items():
        for chain, rules in chains.items():
            keep = want.chains[table].get(chain, [])
            commands += [Command(table, "-D", chain, r) for r in rules if r not in keep]
    for table, chains in want.chains.items():
        for chain, rules in chains.items():
            current = have.chains[table].get(chain, [])
            for i, rule in enumerate(rules):
                if rule not in current:
                    commands.append(Command(table, "-I", chain, rule, after=rules[i - 1] if i else None))
    for table, chains in have.chains.items():
        commands += [Command(table, op, chain) for chain in chains if chain not in want.chains[table]
                     for op in ("-F", "-X")]
    return commands


def effective(commands: list[Command], real: Tables) -> list[Command]:
    """The commands that change something when run, in order, on the real tables ``real``.

    Each is checked the way libnetwork checks (``-C``): a rule already there is not added
    again, a rule already gone is not deleted, a chain that exists is not made. Insertions
    after a neighbour get the position the neighbour has in the real chain.
    """
    state = copy.deepcopy(real)
    state.log = []
    for cmd in commands:
        state.chains.setdefault(cmd.table, {c: [] for c in BUILTIN.get(cmd.table, ())})
        state.apply(cmd)
    return state.log


def restore_payload(commands: list[Command]) -> str:
    """``iptables-restore --noflush`` input running ``commands``: one block per table, in order."""
    tables: dict[str, list[str]] = {}
    for cmd in commands:
        tables.setdefault(cmd.table, []).append(cmd.line())
    return "".join(f"*{table}\n" + "".join(f"{line}\n" for line in lines) + "COMMIT\n"
                   for table, lines in tables.items())


__all__ = ["Tables", "Command", "BUILTIN", "TABLE_ORDER", "diff", "effective", "restore_payload"]
