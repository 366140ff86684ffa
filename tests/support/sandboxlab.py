"""A tiny real lab for the widget tests, standing in until ``Lab.snapshot()`` exists.

``SandboxLab()`` starts this file as a server inside ``unshare -Urnm`` (a user, network
and mount namespace of its own, so no privilege is needed and nothing of the machine is
touched). Inside, ``ip netns add`` makes the lab's namespaces; the sandbox's own network
namespace plays "host". The server reads the lab with pyroute2 and answers JSON lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))  # the repo (tests/support/../..), for netlab_magic

from netlab_magic.model import HOST, Interface, LabSnapshot, Namespace, Peer, Route  # noqa: E402

DEMO = """
ip link set lo up
ip link add br0 type bridge
ip addr add 10.77.0.1/24 dev br0
ip link set br0 up
for c in c1 c2; do
  ip netns add $c
  ip link add veth-$c type veth peer name eth0 netns $c
  ip link set veth-$c master br0 up
  ip -n $c link set lo up
done
ip -n c1 addr add 10.77.0.11/24 dev eth0
ip -n c2 addr add 10.77.0.12/24 dev eth0
ip -n c1 link set eth0 up
ip -n c2 link set eth0 up
ip netns add solo
ip link add v-solo type veth peer name eth0 netns solo
ip -n solo link set eth0 up
ip -n solo link add x0 type veth peer name x1
ip -n solo link set x0 up
iptables -P FORWARD DROP
iptables -A INPUT -i br0 -p icmp -j ACCEPT
iptables -A INPUT -i br0 -p tcp --dport 80 -j ACCEPT
iptables -A FORWARD -o br0 -j ACCEPT
"""


def can_sandbox() -> str | None:
    """``None`` if a sandbox lab can be built here, else the reason it cannot."""
    for tool in ("unshare", "ip", "iptables"):
        if not shutil.which(tool):
            return f"{tool} not found"
    r = subprocess.run(["unshare", "-Urnm", sys.executable, "-c", "import pyroute2"],
                       capture_output=True, text=True)
    if r.returncode:
        return f"unshare -Urnm fails: {r.stderr.strip()}"
    return None


def snapshot_from_dict(d: dict[str, Any]) -> LabSnapshot:
    """Rebuild a :class:`LabSnapshot` from its ``to_dict()``."""
    nss = []
    for ns in d["namespaces"]:
        ifs = tuple(
            Interface(**{**i, "addresses": tuple(i["addresses"]),
                         "peer": Peer(**i["peer"]) if i.get("peer") else None})
            for i in ns["interfaces"]
        )
        nss.append(Namespace(ns["name"], ifs, tuple(Route(**r) for r in ns["routes"])))
    return LabSnapshot(tuple(nss))


class SandboxLab:
    """A throwaway lab: ``sh(cmd)`` runs in its host namespace, ``snapshot()`` reads it."""

    def __init__(self, demo: bool = True):
        self._proc = subprocess.Popen(
            ["unshare", "-Urnm", sys.executable, "-u", os.path.abspath(__file__), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self._lock = threading.Lock()
        if demo:
            self.sh(DEMO)

    def _ask(self, req: dict[str, Any]) -> Any:
        with self._lock:
            assert self._proc.stdin and self._proc.stdout
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("sandbox lab server died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def sh(self, cmd: str, check: bool = True) -> str:
        """Run a shell script in the lab's host namespace; returns stdout."""
        r = self._ask({"op": "sh", "cmd": cmd})
        if check and r["rc"]:
            raise RuntimeError(f"{cmd!r} failed ({r['rc']}): {r['err']}")
        return r["out"]

    def snapshot(self) -> LabSnapshot:
        """The lab now."""
        return snapshot_from_dict(self._ask({"op": "snapshot"}))

    def iptables_save(self) -> str:
        """``iptables-save -c`` of the lab's host namespace."""
        return self.sh("iptables-save -c")

    def close(self) -> None:
        """End the server; the kernel removes its namespaces with it."""
        if self._proc.poll() is None:
            assert self._proc.stdin
            self._proc.stdin.close()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> SandboxLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- the server side

_SCOPES = {0: "universe", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
_PROTOS = {2: "kernel", 3: "boot", 4: "static"}


def _read_lab() -> dict[str, Any]:
    from pyroute2 import IPRoute

    names = [HOST] + sorted(os.listdir("/run/netns"))
    fds = {HOST: os.open("/proc/self/ns/net", os.O_RDONLY)}
    for n in names[1:]:
        fds[n] = os.open(f"/run/netns/{n}", os.O_RDONLY)
    raw: dict[str, tuple[list[Any], list[Any], list[Any], dict[int, str]]] = {}
    try:
        for n in names:
            ipr = IPRoute() if n == HOST else IPRoute(netns=n)
            try:
                links = list(ipr.get_links())
                addrs = list(ipr.get_addr())
                routes = list(ipr.get_routes(family=2, table=254))
                nsids: dict[int, str] = {}
                for other in names:
                    if other != n:
                        got = ipr.get_netnsid(fd=fds[other])
                        if got and got.get("nsid") is not None and got["nsid"] >= 0:
                            nsids[got["nsid"]] = other
            finally:
                ipr.close()
            raw[n] = (links, addrs, routes, nsids)
    finally:
        for fd in fds.values():
            os.close(fd)
    by_index = {n: {lk["index"]: lk.get("ifname") for lk in raw[n][0]} for n in names}
    out = []
    for n in names:
        links, addrs, routes, nsids = raw[n]
        ifaces = []
        for lk in links:
            idx = lk["index"]
            kind = lk.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
            if kind is None:
                kind = "loopback" if lk.get("ifname") == "lo" else "device"
            a = [a for a in addrs if a["index"] == idx]
            a.sort(key=lambda x: x["family"] != 2)
            peer = None
            link = lk.get("link")
            if kind == "veth" and link:
                nsid = lk.get("link_netnsid")
                pns = n if nsid is None else nsids.get(nsid)
                pname = by_index.get(pns, {}).get(link) if pns else None
                peer = {"netns": pns, "ifname": pname}
            ifaces.append({
                "name": lk.get("ifname"), "index": idx, "kind": kind,
                "state": lk.get("operstate"), "admin_up": bool(lk["flags"] & 1),
                "mtu": lk.get("mtu"), "mac": lk.get("address"),
                "addresses": [f"{x.get('address')}/{x['prefixlen']}" for x in a],
                "master": by_index[n].get(lk.get("master")) if lk.get("master") else None,
                "peer": peer,
            })
        rts = []
        for r in routes:
            dst = r.get("dst")
            rts.append({
                "dst": f"{dst}/{r['dst_len']}" if dst else "default",
                "dev": by_index[n].get(r.get("oif")), "gateway": r.get("gateway"),
                "src": r.get("prefsrc"), "proto": _PROTOS.get(r["proto"], str(r["proto"])),
                "scope": _SCOPES.get(r["scope"], str(r["scope"])),
            })
        out.append({"name": n, "interfaces": ifaces, "routes": rts})
    return {"namespaces": out}


def _serve() -> None:
    subprocess.run(["mount", "--make-rprivate", "/"], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    os.makedirs("/run/netns", exist_ok=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "sh":
                r = subprocess.run(["sh", "-ec", req["cmd"]], capture_output=True, text=True, timeout=60)
                result: Any = {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
            elif req["op"] == "snapshot":
                result = _read_lab()
            else:
                raise ValueError(f"unknown op {req['op']!r}")
            reply = {"result": result}
        except Exception as err:  # reported to the caller
            reply = {"error": f"{type(err).__name__}: {err}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__" and sys.argv[1:] == ["--serve"]:
    _serve()
