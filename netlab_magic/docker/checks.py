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
the lab to the address asked for (lab addresses or the namespace's own ``localhost``);
``check_tcp`` starts a listener in the namespace asked for, for the time of one connection;
``check_dnat`` follows one connection in conntrack, to see where NAT really sent it.
"""

from __future__ import annotations

import ipaddress
import random
import select
import shutil
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from ..checks import CheckResult, Missing, lab_or_current, run_check, where
from ..conntrack import read_conntrack
from ..model import HOST
from ..process import stop_group
from . import rules

__all__ = ["check_http", "check_no_listener", "check_docker_user_rule", "check_isolation_intact", "check_tcp",
           "check_answers_by_conntrack", "check_dnat", "check_docker_chain_intact"]

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
        if mine and ("-j RETURN" not in have or have[-1] == "-j RETURN"):  # 28.x: no RETURN at all
            return True, ""
        if mine:
            return False, "it has, but after the RETURN, where no packet gets to: use iptables -I DOCKER-USER ..."
        return False, f"it has none yet; try: iptables -I {rules.DOCKER_USER} ..."
    return run_check(what, body)


def _daemon(the_lab: Any) -> Any:
    """The lab's dockerd model, or the hint that none runs yet."""
    from .engine import engine

    daemon = engine(the_lab).daemon
    if daemon is None:
        raise Missing("dockerd has not started in this lab (run a %docker command first)")
    return daemon


def check_isolation_intact(*, lab: Any = None) -> CheckResult:
    """``DOCKER-ISOLATION-STAGE-1`` and ``-2`` hold exactly the rules dockerd made (the lab's ``%docker``)."""
    what = "the DOCKER-ISOLATION chains are as Docker made them"

    def body():
        the_lab = lab_or_current(lab)
        daemon = _daemon(the_lab)
        want = rules.build(daemon).chains["filter"]
        for chain in (rules.ISOLATION_1, rules.ISOLATION_2):
            have = _chain_rules(the_lab, "filter", chain)
            if have != want[chain]:
                return False, (f"{chain} was changed: dockerd rewrites its own chains when it restarts; "
                               f"put your rule in {rules.DOCKER_USER}")
        return True, ""
    return run_check(what, body)


def check_docker_chain_intact(*, lab: Any = None) -> CheckResult:
    """The filter table's ``DOCKER`` chain still holds every rule dockerd made, in its order (in
    28.x: the per-port ACCEPTs, then a DROP per bridge for everything not published)."""
    what = "the DOCKER chain holds Docker's rules, in Docker's order"

    def body():
        the_lab = lab_or_current(lab)
        daemon = _daemon(the_lab)
        have = iter(_chain_rules(the_lab, "filter", rules.DOCKER))
        for rule in rules.build(daemon).chains["filter"][rules.DOCKER]:
            if rule not in have:  # consumes `have` up to the rule: order matters
                return False, (f"'{rule}' is missing or moved: Docker's rules stay, yours go where a packet "
                               "meets them before Docker's")
        return True, ""
    return run_check(what, body)


# -- TCP, answers and NAT: what ping alone cannot tell ---------------------------------------------------

_LISTEN_PY = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1]))); s.listen(); s.settimeout(float(sys.argv[2]))\n"
    "print('ready', flush=True)\n"
    "try:\n"
    "    c, _ = s.accept(); c.sendall(b'hello\\n'); c.close()\n"
    "except OSError:\n"
    "    pass\n"
)
_CONNECT_PY = (
    "import socket, sys\n"
    "try:\n"
    "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))\n"
    "    sys.exit(0 if c.recv(16) == b'hello\\n' else 3)\n"
    "except OSError as err:\n"
    "    sys.stderr.write(f'{type(err).__name__}: {err}\\n'); sys.exit(7)\n"
)


def check_tcp(src: str, dst: str, ip: str, expect: bool = True, *, port: int = 8000, timeout: float = 1.5,
              lab: Any = None) -> CheckResult:
    """A TCP connection from ``src`` to ``ip:port``, answered by a listener this check starts in
    namespace ``dst`` for that one connection. With ``expect=False`` it passes when none is made."""
    what = (f"{where(src)} opens a TCP connection to {ip}:{port}" if expect
            else f"{where(src)} cannot open a TCP connection to {ip}:{port}")

    def body():
        the_lab = lab_or_current(lab)
        for netns in (src, dst):
            _require_netns(the_lab, netns)
        listener = the_lab.popen(dst, [sys.executable, "-c", _LISTEN_PY, str(port), str(timeout + 5)])
        try:
            ready, _, _ = select.select([listener.stdout], [], [], 10)
            if not ready or b"ready" not in listener.stdout.readline():
                raise Missing(f"no listener could be started in {where(dst)} on port {port}")
            result = the_lab.run(src, [sys.executable, "-c", _CONNECT_PY, ip, str(port), str(timeout)],
                                 timeout=timeout + 10)
        finally:
            stop_group(listener)
        connected = result.returncode == 0
        if connected == expect:
            return True, ""
        if connected:
            return False, "it was made: the answers came back, and so did the connection"
        reason = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        return False, f"none: {reason} (ping works with one packet each way; TCP needs its answers back too)"
    return run_check(what, body)


def _from_network(rule: str, subnet: ipaddress.IPv4Network, bridge: str) -> bool:
    """Could ``rule`` (``iptables -S`` words) match a packet coming from ``subnet`` on ``bridge``?"""
    words = rule.split()
    for flag, fits in (("-s", lambda v: ipaddress.ip_network(v, strict=False).overlaps(subnet)),
                       ("-i", lambda v: v == bridge or (v.endswith("+") and bridge.startswith(v[:-1])))):
        if flag in words:
            i = words.index(flag)
            negated = i > 0 and words[i - 1] == "!"
            if not negated and not fits(words[i + 1]):
                return False
    return True


def check_answers_by_conntrack(network: str, *, lab: Any = None) -> CheckResult:
    """``DOCKER-USER`` lets packets coming from ``network`` through only as answers: each of its
    ACCEPTs that could match them asks conntrack (``--ctstate ESTABLISHED``, ``RELATED``)."""
    what = f"{rules.DOCKER_USER} lets {network}'s packets through only as answers (conntrack)"

    def body():
        the_lab = lab_or_current(lab)
        daemon = _daemon(the_lab)
        if network not in daemon.networks:
            raise Missing(f"there is no Docker network {network} (run the demo's %docker commands first)")
        net = daemon.networks[network]
        for rule in _chain_rules(the_lab, "filter", rules.DOCKER_USER):
            if "-j ACCEPT" not in rule or not _from_network(rule, net.subnet, net.bridge):
                continue
            states = rule.split("--ctstate ")[1].split()[0].split(",") if "--ctstate " in rule else []
            if not states or not set(states) <= {"ESTABLISHED", "RELATED"}:
                return False, (f"'{rule}' lets {network}'s packets in whether they answer something or not; "
                               "conntrack knows which packets belong to a connection already made")
        return True, ""
    return run_check(what, body)


_GET_FROM_PY = (
    "import socket, sys\n"
    "host, port, sport, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])\n"
    "try:\n"
    "    c = socket.create_connection((host, port), timeout=timeout, source_address=('', sport))\n"
    "    c.sendall(f'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n'.encode())\n"
    "    data = b''\n"
    "    while chunk := c.recv(65536):\n"
    "        data += chunk\n"
    "    sys.stdout.write(data.decode(errors='replace'))\n"
    "except OSError as err:\n"
    "    sys.stderr.write(f'{type(err).__name__}: {err}\\n'); sys.exit(7)\n"
)


def check_dnat(netns: str, address: str, to: str, *, nat_in: str = HOST, timeout: float = 1.5,
               lab: Any = None) -> CheckResult:
    """One HTTP request from ``netns`` to ``address`` (``IP:PORT``) gets the page, and conntrack (in
    ``nat_in``, the lab's host) shows that connection DNATed to ``to`` (``IP:PORT``, or
    ``CONTAINER:PORT``): the kernel carried it to the container, no program on the way."""
    host, _, port = address.rpartition(":")
    what = f"a connection to {address} is DNATed to {to} (conntrack shows it)"

    def body():
        the_lab = lab_or_current(lab)
        _require_netns(the_lab, netns)
        name, _, to_port = to.rpartition(":")
        target = f"{_container_ip(the_lab, name)}:{to_port}"
        sport = random.randint(40000, 59999)
        result = the_lab.run(netns, [sys.executable, "-c", _GET_FROM_PY, host, port, str(sport), str(timeout)],
                             timeout=timeout + 10)
        if NGINX_TITLE not in result.stdout:
            reason = (result.stderr.strip().splitlines() or ["an answer without the page"])[-1]
            return False, f"no page came: {reason}"
        for _ in range(10):  # the entry is there as soon as the connection is
            found = [c for c in read_conntrack(the_lab, nat_in, "tcp")
                     if (c.original.dst, c.original.dport, c.original.sport) == (host, int(port), sport)]
            if found:
                break
            time.sleep(0.1)
        if not found:
            return False, f"conntrack in {where(nat_in)} never saw that connection"
        reply = found[0].reply
        if reply.source == target:
            return True, ""
        own = {a.split("/")[0] for i in the_lab.netns(nat_in).read().interfaces for a in i.addresses}
        if reply.src in own or reply.src.startswith("127."):
            return False, (f"it ended at {reply.source}, on the host itself: a program listening there "
                           "carried it on to the container, not the kernel's DNAT")
        return False, f"it was sent to {reply.source}, not to {target}"
    return run_check(what, body)


def _container_ip(the_lab: Any, name: str) -> str:
    """A container's address (or ``name`` itself, if it is an address)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    daemon = _daemon(the_lab)
    if name not in daemon.containers:
        raise Missing(f"there is no container {name}")
    return str(daemon.containers[name].ip)
