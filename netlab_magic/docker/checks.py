"""Self-checking exercises for the Docker notebooks (Demo 3 and Demo 4 of the talk).

Same style as :mod:`netlab_magic.checks`: each ``check_*`` reads the lab and returns a
:class:`~netlab_magic.checks.CheckResult` (✔ or ✘, with a hint); pass several to
:func:`~netlab_magic.checks.exercise`.

    >>> from netlab_magic.checks import check_ping, exercise
    >>> from netlab_magic.docker.checks import check_docker_user_rule, check_isolation_intact
    >>> exercise(check_ping("dummy1", "172.19.0.2"),
    ...          check_docker_user_rule(),
    ...          check_isolation_intact())

Nothing here changes the lab. ``check_http`` sends one HTTP request from inside a namespace of
the lab to the address asked for (lab addresses or the namespace's own ``localhost``).
"""

from __future__ import annotations

import shutil
from typing import Any
from urllib.parse import urlsplit

from ..checks import CheckResult, Missing, lab_or_current, run_check, where
from ..model import HOST
from . import rules

__all__ = ["check_http", "check_no_listener", "check_docker_user_rule", "check_isolation_intact"]

#: What the lab's ``nginx`` image serves.
NGINX_TITLE = "Welcome to nginx!"

_FETCH_PY = (
    "import sys, urllib.request\n"
    "try:\n"
    "    sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).read().decode())\n"
    "except Exception as err:\n"
    "    reason = getattr(err, 'reason', err)\n"
    "    sys.stderr.write(f'{type(reason).__name__}: {reason}\\n')\n"
    "    sys.exit(7)\n"
)


def _fetch_argv(url: str, timeout: float) -> list[str]:
    if shutil.which("curl"):
        return ["curl", "-sS", "-m", str(timeout), url]
    return ["python3", "-c", _FETCH_PY, url, str(timeout)]


def _require_netns(lab: Any, netns: str) -> None:
    if netns != HOST and netns not in lab.list_netns():
        have = ", ".join(lab.list_netns()) or "none"
        raise Missing(f"namespace {netns!r} does not exist (the lab has: host, {have})")


def check_http(netns: str, url: str, expect: bool = True, *, contains: str = NGINX_TITLE,
               timeout: float = 1.5, lab: Any = None) -> CheckResult:
    """One HTTP GET of ``url`` from inside ``netns``: does the answer contain ``contains``?

    With ``expect=False`` the check passes when it does *not* (refused, timed out, or another page).
    """
    if "://" not in url:
        url = "http://" + url
    server = urlsplit(url).netloc
    what = f"{where(netns)} gets the web page at {server}" if expect else \
        f"{where(netns)} does not get the web page at {server}"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, netns)
        result = the_lab.run(netns, _fetch_argv(url, timeout), timeout=timeout + 10)
        got = result.returncode == 0 and contains in result.stdout
        if got == expect:
            return True, ""
        if got:
            return False, f"it answered with {contains!r}"
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        if result.returncode == 0:
            reason = f"an answer came, but without {contains!r}"
        return False, f"no page: {reason}"
    return run_check(what, body)


def check_no_listener(netns: str, port: int, *, lab: Any = None) -> CheckResult:
    """No process in ``netns`` listens on TCP ``port`` (so a forwarding there is the kernel's, not a proxy's)."""
    what = f"nothing listens on TCP port {port} in {where(netns)}"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, netns)
        out = the_lab.run(netns, ["ss", "-Hltn", f"sport = :{port}"], check=True).stdout
        if not out.strip():
            return True, ""
        return False, "something does (ss -ltn shows it): do it with iptables, without a proxy"
    return run_check(what, body)


def _chain_rules(the_lab: Any, table: str, chain: str) -> list[str]:
    """The rules of ``chain`` as ``iptables -S`` prints them, without the ``-A CHAIN`` (or ``-N``)."""
    result = the_lab.run(HOST, ["iptables", "-t", table, "-S", chain])
    if result.returncode:
        raise Missing(f"there is no chain {chain} in the {table} table of the lab's host "
                       "(has dockerd started? run a %docker command first)")
    prefix = f"-A {chain} "
    return [line[len(prefix):] for line in result.stdout.splitlines() if line.startswith(prefix)]


def check_docker_user_rule(*, lab: Any = None) -> CheckResult:
    """``DOCKER-USER`` (filter table) has a rule of yours before Docker's final ``-j RETURN``."""
    what = f"{rules.DOCKER_USER} has a rule of yours"

    def body():
        have = _chain_rules(lab_or_current(lab), "filter", rules.DOCKER_USER)
        mine = [r for r in have if r != "-j RETURN"]
        if mine and have[-1] == "-j RETURN":
            return True, ""
        if mine:
            return False, "it has, but after the RETURN, where no packet gets to: use iptables -I DOCKER-USER ..."
        return False, f"it has only Docker's -j RETURN; try: iptables -I {rules.DOCKER_USER} ..."
    return run_check(what, body)


def check_isolation_intact(*, lab: Any = None) -> CheckResult:
    """``DOCKER-ISOLATION-STAGE-1`` and ``-2`` hold exactly the rules dockerd made (the lab's ``%docker``)."""
    what = "the DOCKER-ISOLATION chains are as Docker made them"

    def body():
        from .engine import engine

        the_lab = lab_or_current(lab)
        daemon = engine(the_lab).daemon
        if daemon is None:
            raise Missing("dockerd has not started in this lab (run a %docker command first)")
        want = rules.build(daemon).chains["filter"]
        for chain in (rules.ISOLATION_1, rules.ISOLATION_2):
            have = _chain_rules(the_lab, "filter", chain)
            if have != want[chain]:
                return False, (f"{chain} was changed: dockerd rewrites its own chains when it restarts; "
                               f"put your rule in {rules.DOCKER_USER}")
        return True, ""
    return run_check(what, body)
