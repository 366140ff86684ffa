"""Predict, then run: a learner's prediction of one step, recorded before the step, shown beside what happened.

The learner fills ``answer`` with one of the question's choices; the step then runs for real and
:meth:`Prediction.beside` prints the prediction next to what the kernel did, with the evidence
(the lines of the tool's own output that decide it). No answer is pre-filled: an unfilled
prediction is said in one line, and the step still runs.

    >>> p = predict("ns1 pings 10.0.0.2 before any cable: what happens?",
    ...             ["reply", "no reply", "unreachable"], answer=None)
    >>> p.beside(ping("ns1", "10.0.0.2"))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from .checks import FAIL_MARK, OK_MARK, beside_the_lab

if TYPE_CHECKING:
    from .lab.lab import Lab

__all__ = ["Prediction", "Outcome", "predict", "ping", "fetch", "PING_CHOICES", "FETCH_CHOICES"]

#: What a one-packet ping can end in, as :func:`ping` names it.
PING_CHOICES = ("reply", "no reply", "unreachable")
#: What fetching a page can end in, as :func:`fetch` names it.
FETCH_CHOICES = ("page", "refused", "timeout")


@dataclass(frozen=True)
class Outcome:
    """What a step did (``happened``, one of its question's choices) and the lines that show it."""

    happened: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prediction:
    """A learner's answer (``None`` until they fill it) to ``question``, one of ``choices``."""

    question: str
    choices: tuple[str, ...]
    answer: str | None = None

    @property
    def problem(self) -> str:
        """Why this is not a prediction yet (empty when it is one)."""
        if self.answer is None or not str(self.answer).strip():
            return f"no prediction yet: write answer= one of {_choices(self.choices)} above, and run it again"
        if self._said() not in self.choices:
            return f"{self.answer!r} is not one of {_choices(self.choices)}"
        return ""

    def _short_problem(self) -> str:
        return "no prediction yet" if self.problem.startswith("no prediction yet") else self.problem

    def _said(self) -> str:
        return " ".join(str(self.answer).split()).lower()

    def __str__(self) -> str:
        return self.problem or f"your prediction: {self._said()}"

    def __repr__(self) -> str:
        return str(self)

    def right(self, outcome: Outcome) -> bool:
        """Did the prediction say what happened? (False when there is no prediction.)"""
        return not self.problem and self._said() == outcome.happened

    def verdict(self, outcome: Outcome) -> str:
        """One line: the prediction beside what happened, then the evidence, a line each."""
        if self.problem:
            head = f"it happened: {outcome.happened} ({self._short_problem()})"
        else:
            mark = OK_MARK if self.right(outcome) else FAIL_MARK
            head = f"{mark} you said: {self._said()} · it happened: {outcome.happened}"
        return "\n".join([head, *(f"  evidence: {line}" for line in outcome.evidence)])

    def beside(self, outcome: Outcome) -> None:
        """Print :meth:`verdict`."""
        print(self.verdict(outcome))


def predict(question: str, choices: Sequence[str], answer: str | None = None) -> Prediction:
    """Record a prediction; its display says it back, or in one line why it is not one yet."""
    p = Prediction(question, tuple(choices), answer)
    print(f"{question}\n  {p}")
    return p


@beside_the_lab
def ping(netns: str, address: str, *, look: str = "", look_in: str | None = None,
         lab: Lab | None = None) -> Outcome:
    """``ping -c 1 -W 1 ADDRESS`` in ``netns``, its output printed in one piece, then ``look`` (a command
    that shows why: ``ip neigh show ...``), run in ``look_in`` (default: ``netns``), as evidence.
    Equivalent to: ``ip netns exec NETNS ping -c 1 -W 1 ADDRESS``.
    """
    from .lab.lab import Lab as _Lab

    lab = lab or _Lab.current()
    run = lab.run(netns, ["ping", "-c", "1", "-W", "1", address])
    text = (run.stdout + run.stderr).rstrip()
    print(text + (f"\n(exit status {run.returncode})" if run.returncode else ""))
    lines = [line.strip() for line in text.splitlines()]
    if run.returncode == 0:
        happened = "reply"
    elif any("nreachable" in line for line in lines):
        happened = "unreachable"
    else:
        happened = "no reply"
    evidence = [line for line in lines if "nreachable" in line or "packets transmitted" in line][:2]
    return Outcome(happened, tuple(evidence + _look(lab, look, look_in, netns)))


@beside_the_lab
def fetch(netns: str, url: str, *, look: str = "", look_in: str | None = None,
          lab: Lab | None = None) -> Outcome:
    """``curl -sS -m 1 URL`` in ``netns``: the page's ``<title>`` line or curl's error, then ``look``
    (run in ``look_in``, default ``netns``) as evidence. Equivalent to: ``ip netns exec NETNS curl -sS -m 1 URL``.
    """
    from .lab.lab import Lab as _Lab

    lab = lab or _Lab.current()
    run = lab.run(netns, ["curl", "-sS", "-m", "1", url])
    titles = [line.strip() for line in run.stdout.splitlines() if "<title>" in line]
    error = run.stderr.strip()
    print("\n".join(titles) if run.returncode == 0 else f"{error}\n(exit status {run.returncode})")
    happened = {0: "page", 7: "refused", 28: "timeout"}.get(run.returncode, f"curl's error {run.returncode}")
    evidence = titles[:1] if run.returncode == 0 else [error.splitlines()[-1]] if error else []
    return Outcome(happened, tuple(evidence + _look(lab, look, look_in, netns)))


def _look(lab: Lab, look: str, look_in: str | None, netns: str) -> list[str]:
    """``look``'s output, run in ``look_in`` (default ``netns``), as one evidence entry (none without ``look``)."""
    if not look:
        return []
    shown = lab.run(look_in or netns, look)
    out = (shown.stdout + shown.stderr).strip()
    where = f" (in {look_in})" if look_in and look_in != netns else ""
    return [f"{look}{where}: " + ("\n" + " " * 12).join(out.splitlines() or ["(nothing)"])]


def _choices(choices: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in choices)
