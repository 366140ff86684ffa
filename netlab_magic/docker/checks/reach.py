"""What must get through, seen for real: an HTTP answer, a TCP connection, where NAT sent it.

``check_http`` sends one HTTP request from inside a namespace of the lab to the address asked
for (lab addresses or the namespace's own ``localhost``); ``check_tcp`` starts a listener in the
namespace asked for, for the time of one connection; ``check_dnat`` follows one connection in
conntrack, to see where NAT really sent it. Nothing here changes the lab.
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

from ...checks import CheckResult, Missing, beside_the_lab, lab_or_current, run_check, where
from ...linux.process import stop_group
from ...model import HOST
from ...packets.conntrack import read_conntrack
from .. import rules
from .context import docker_daemon, require_netns


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


@beside_the_lab
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
        require_netns(the_lab, netns)
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


@beside_the_lab
def check_no_listener(netns: str, port: int, *, lab: Any = None) -> CheckResult:
    """No process in ``netns`` listens on TCP ``port`` (so a forwarding there is the kernel's, not a proxy's)."""
    what = f"nothing listens on TCP port {port} in {where(netns)}"

    def body():
        the_lab = lab_or_current(lab)
        require_netns(the_lab, netns)
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


@beside_the_lab
def check_isolation_intact(*, lab: Any = None) -> CheckResult:
    """``DOCKER-ISOLATION-STAGE-1`` and ``-2`` hold exactly the rules dockerd made (the lab's ``%docker``)."""
    what = "the DOCKER-ISOLATION chains are as Docker made them"

    def body():
        the_lab = lab_or_current(lab)
        daemon = docker_daemon(the_lab)
        want = rules.build(daemon).chains["filter"]
        for chain in (rules.ISOLATION_1, rules.ISOLATION_2):
            have = _chain_rules(the_lab, "filter", chain)
            if have != want[chain]:
                return False, (f"{chain} was changed: dockerd rewrites its own chains when it restarts; "
                               f"put your rule in {rules.DOCKER_USER}")
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


@beside_the_lab
def check_tcp(src: str, dst: str, ip: str, expect: bool = True, *, port: int = 8000, timeout: float = 1.5,
              lab: Any = None) -> CheckResult:
    """A TCP connection from ``src`` to ``ip:port``, answered by a listener this check starts in
    namespace ``dst`` for that one connection. With ``expect=False`` it passes when none is made."""
    what = (f"{where(src)} opens a TCP connection to {ip}:{port}" if expect
            else f"{where(src)} cannot open a TCP connection to {ip}:{port}")

    def body():
        the_lab = lab_or_current(lab)
        for netns in (src, dst):
            require_netns(the_lab, netns)
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


def _connect_and_follow(the_lab: Any, netns: str, host: str, port: int, nat_in: str,
                        timeout: float) -> tuple[str | None, Any]:
    """One HTTP GET from ``netns`` to ``host:port`` and its conntrack entry in ``nat_in``:
    ``(why no page came, or None; the connection, or None)``."""
    sport = random.randint(40000, 59999)
    result = the_lab.run(netns, [sys.executable, "-c", _GET_FROM_PY, host, str(port), str(sport), str(timeout)],
                         timeout=timeout + 10)
    if NGINX_TITLE not in result.stdout:
        return (result.stderr.strip().splitlines() or ["an answer without the page"])[-1], None
    for _ in range(10):  # the entry is there as soon as the connection is
        found = [c for c in read_conntrack(the_lab, nat_in, "tcp")
                 if (c.original.dst, c.original.dport, c.original.sport) == (host, port, sport)]
        if found:
            return None, found[0]
        time.sleep(0.1)
    return None, None


def _local_addresses(the_lab: Any, netns: str) -> set[str]:
    return {a.split("/")[0] for i in the_lab.netns(netns).read().interfaces for a in i.addresses}


@beside_the_lab
def check_dnat(netns: str, address: str, to: str, *, nat_in: str = HOST, timeout: float = 1.5,
               lab: Any = None) -> CheckResult:
    """One HTTP request from ``netns`` to ``address`` (``IP:PORT``) gets the page, and conntrack (in
    ``nat_in``, the lab's host) shows that connection DNATed to ``to`` (``IP:PORT``, or
    ``CONTAINER:PORT``): the kernel carried it to the container, no program on the way."""
    host, _, port = address.rpartition(":")
    what = f"a connection to {address} is DNATed to {to} (conntrack shows it)"

    def body():
        the_lab = lab_or_current(lab)
        require_netns(the_lab, netns)
        name, _, to_port = to.rpartition(":")
        target = f"{_container_ip(the_lab, name)}:{to_port}"
        failed, conn = _connect_and_follow(the_lab, netns, host, int(port), nat_in, timeout)
        if failed:
            return False, f"no page came: {failed}"
        if conn is None:
            return False, f"conntrack in {where(nat_in)} never saw that connection"
        reply = conn.reply
        if reply.source == target:
            return True, ""
        if reply.src in _local_addresses(the_lab, nat_in) or reply.src.startswith("127."):
            return False, (f"it ended at {reply.source}, on the host itself: a program listening there "
                           "carried it on to the container, not the kernel's DNAT")
        return False, f"it was sent to {reply.source}, not to {target}"
    return run_check(what, body)


@beside_the_lab
def check_proxy_serves(port: int, *, lab: Any = None) -> CheckResult:
    """dockerd runs with its userland proxy, and a connection from the host to ``localhost:PORT``
    still ends at ``docker-proxy`` on the host (conntrack: not DNATed by the kernel)."""
    what = f"docker-proxy still serves localhost:{port} (the userland proxy stays on)"

    def body():
        the_lab = lab_or_current(lab)
        if not docker_daemon(the_lab).userland_proxy:
            return False, "dockerd runs without its userland proxy: this exercise keeps it on"
        failed, conn = _connect_and_follow(the_lab, HOST, "127.0.0.1", port, HOST, 1.5)
        if failed:
            return False, f"localhost:{port} gives no page any more: {failed} (is docker-proxy still running? %netlab jobs)"
        if conn is not None and conn.reply.src not in _local_addresses(the_lab, HOST) \
                and not conn.reply.src.startswith("127."):
            return False, (f"the kernel now sends localhost:{port} on to {conn.reply.source} itself, past "
                           "docker-proxy: a rule of yours reaches further than the port it was meant for "
                           "(%netlab conntrack host shows it)")
        return True, ""
    return run_check(what, body)


@beside_the_lab
def check_source_kept(src: str, to: str, *, lab: Any = None) -> CheckResult:
    """A connection from container ``src`` to ``to`` (``CONTAINER:PORT``) arrives with ``src``'s own
    address: nothing on the way rewrites its source (a MASQUERADE broader than the exercise needs)."""
    name, _, port = to.rpartition(":")
    what = f"{name} sees {src}'s own address when {src} connects to it"

    def body():
        the_lab = lab_or_current(lab)
        require_netns(the_lab, src)
        ip = _container_ip(the_lab, name)
        failed, conn = _connect_and_follow(the_lab, src, ip, int(port), HOST, 1.5)
        if failed:
            return False, f"no page came: {failed}"
        if conn is not None and conn.reply.dst != conn.original.src:
            return False, (f"it arrives from {conn.reply.dst}: a MASQUERADE rewrites packets it was not "
                           f"meant for (%netlab conntrack host shows the rewrite; which rule matched? "
                           f"iptables -t nat -L POSTROUTING -v -n)")
        return True, ""
    return run_check(what, body)


def _container_ip(the_lab: Any, name: str) -> str:
    """A container's address (or ``name`` itself, if it is an address)."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    daemon = docker_daemon(the_lab)
    if name not in daemon.containers:
        raise Missing(f"there is no container {name}")
    return str(daemon.containers[name].ip)
