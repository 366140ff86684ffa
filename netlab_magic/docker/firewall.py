"""The engine's hand on the lab host's firewall: every change one ``iptables-restore --noflush``.

:class:`Firewall` knows what the engine put in the host's tables (the model's
:class:`~.tables.Tables` of the last change) and makes the host what dockerd would make it for
the daemon now:

- growth (dockerd's start, ``network create``, ``run -p``) runs the new tail of dockerd's own
  commands, so rules are never re-created unless dockerd itself re-creates them and counters
  stay; shrinking (``rm``, ``network rm``) deletes exactly the rules that went away
  (:func:`~.tables.diff`);
- the commands are checked against the host's real tables first (:func:`~.tables.effective`:
  libnetwork's ``-C``), so a rule a learner deleted by hand is not deleted twice, and positions
  count the learner's own rules;
- they go to the host as **one** ``iptables-restore --noflush`` input on stdin (an argv, no
  shell): each table is committed whole or not at all, and if a later table fails after an
  earlier one was committed, the tables it touched are put back from the ``iptables-save
  --counters`` taken just before. Either way a failed change leaves the rules as they were.
"""

from __future__ import annotations

import subprocess

from ..errors import NetlabError
from ..lab.lab import Lab
from ..linux.iptables import BUILTIN, Command, Tables, diff, effective, restore_payload
from ..linux.iptables_save import parse_iptables_save
from ..model import HOST


class Firewall:
    """The host's iptables as one engine changes them (and its sysctls)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.tables = Tables()  # what the engine put there, as its model had it
        self.log: list[Command] = []  # the dockerd commands that built it
        self.sysctls: dict[str, str] = {}

    def sync(self, wanted: Tables, sysctls: dict[str, str]) -> None:
        """Make the host's firewall ``wanted`` and set ``sysctls``; raise (changing nothing) if it fails."""
        for key, value in sysctls.items():
            if self.sysctls.get(key) != value:
                self.lab.host.sysctl(key, value)
                self.sysctls[key] = value
        for key in [k for k in self.sysctls if k not in sysctls]:
            del self.sysctls[key]  # its bridge went away with it
        if wanted.log[:len(self.log)] == self.log:
            commands = wanted.log[len(self.log):]
        else:
            commands = diff(self.tables, wanted)
        if commands:
            self.apply(commands)
        self.tables, self.log = wanted, list(wanted.log)

    def apply(self, commands: list[Command]) -> None:
        """Run ``commands`` on the host's tables in one ``iptables-restore --noflush``."""
        saved = self._iptables(["iptables-save", "--counters"])
        todo = effective(commands, Tables.parse(saved.stdout))
        if not todo:
            return
        result = self._iptables(["iptables-restore", "--noflush"], restore_payload(todo), check=False)
        if result.returncode:
            self._put_back(saved.stdout, {cmd.table for cmd in todo})
            detail = (result.stderr.strip().splitlines() or ["iptables-restore failed"])[-1]
            raise NetlabError(f"Error response from daemon: iptables failed: {detail}")

    def _put_back(self, saved: str, tables: set[str]) -> None:
        """Restore ``tables`` as ``saved`` (``iptables-save --counters``) had them."""
        blocks = parse_iptables_save(saved)
        payload = []
        for name in sorted(tables):
            # a table that did not exist before comes back empty
            empty = [f"*{name}", *(f":{c} ACCEPT [0:0]" for c in BUILTIN.get(name, ())), "COMMIT"]
            payload += blocks[name].save() if name in blocks else empty
        self._iptables(["iptables-restore", "--counters"], "\n".join(payload) + "\n", check=False)

    def _iptables(self, argv: list[str], stdin: str | None = None,
                  check: bool = True) -> subprocess.CompletedProcess:
        proc = self.lab.popen(HOST, argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        out, err = proc.communicate(stdin.encode() if stdin is not None else None, timeout=60)
        result = subprocess.CompletedProcess(argv, proc.returncode, out.decode(errors="replace"),
                                             err.decode(errors="replace"))
        if check and result.returncode:
            detail = (result.stderr.strip().splitlines() or [f"{argv[0]} failed"])[-1]
            raise NetlabError(f"Error response from daemon: {argv[0]} failed: {detail}")
        return result


__all__ = ["Firewall"]
