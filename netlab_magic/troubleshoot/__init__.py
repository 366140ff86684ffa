"""Broken labs to diagnose: each one a small lab with one thing wrong, and checks that it is fixed.

:func:`broken` resets the lab, builds one of :data:`SCENARIOS` (how, it does not say: that is
the puzzle) and records what it is (:mod:`netlab_magic.changes`); :func:`fixed` returns checks for
:func:`~netlab_magic.checks.exercise` that judge what the kernel does, not the text of a fix:
real packets for what must flow, in both directions, and a trace of what must stay blocked (it
must die on the way, one way); and nothing changed but what the lab is about (a chain of one's
own, a broader sysctl, another cable are named and refused). Their lines name the symptom and
where to look, never the command; :func:`show_me` tells the fault when asked.

The labs are data (:mod:`.scenarios`), built by :mod:`.labs`, judged by :mod:`.effects`.

    >>> broken("link-down")
    >>> exercise(fixed("link-down"))
"""

from __future__ import annotations

from typing import Any

from ..changes import LabRecord, check_changes, record
from ..checks import CheckResult, lab_or_current
from ..errors import NotFound
from .scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "Scenario", "broken", "fixed", "show_me"]


def _scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise NotFound(f"no broken lab called {name!r} (there are: {', '.join(SCENARIOS)})") from None


#: What each broken lab was when :func:`broken` built it: (the lab's generation, the record).
_BUILT: dict[str, tuple[int, LabRecord]] = {}


def broken(name: str, lab: Any = None) -> None:
    """Reset the lab and build the broken lab ``name``; print what is wrong, as a user would say it."""
    scenario = _scenario(name)
    lab = lab_or_current(lab)
    lab.reset()
    scenario.build(lab)
    _BUILT[name] = (lab.generation, record(lab))
    print(f"[{name}] {scenario.story}")


def fixed(name: str, lab: Any = None) -> list[CheckResult]:
    """Checks that the broken lab ``name`` is fixed for real (pass them to ``exercise``).

    The traffic the story asks for flows both ways, what must stay blocked dies on the way (one
    way, followed by a trace), and nothing changed but what the lab is about.
    """
    scenario = _scenario(name)
    lab = lab_or_current(lab)
    built = _BUILT.get(name)
    if built is None or built[0] != lab.generation:
        return [CheckResult(False, f"the lab is the one broken({name!r}) built",
                            f"the lab was reset or rebuilt since: run broken({name!r}) again")]
    return [*scenario.checks(lab), check_changes(built[1], scenario.allowed, lab=lab)]


def show_me(name: str) -> None:
    """Print what is wrong in the broken lab ``name`` (the fault, not the command that fixes it)."""
    print(f"[{name}] {_scenario(name).fault}")
