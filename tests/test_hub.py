"""A room full of learners: a real JupyterHub on this machine, each learner with their own lab.

The way The Littlest JupyterHub runs a class: JupyterHub (as root) with configurable-http-proxy,
local system users and the local process spawner. N learners (``NETLAB_HUB_LEARNERS``, default
5) are logged in and their servers started through the Hub's REST API; each runs notebook 03
(Demo 2, its exercise solved) through its own "Python 3 (netlab)" kernel, all at the same
time, over their server's kernels API and websocket, as JupyterLab would. Then:

* every learner has the same lab (same namespaces, interfaces and addresses) and it worked;
* no traffic crosses between labs: each learner puts one more address of its own on its
  bridge, listens there, and pings and connects to every learner's address, its own included;
  only its own answers, and each listener heard only its own learner;
* nothing of a learner runs as root (the Hub and its proxy do, as in TLJH);
* stopping the Hub (SIGTERM, as ``systemctl stop jupyterhub``) leaves nothing: no learner
  process, nothing inside any lab's namespaces, no proxy.

The users are made here (``learner1``...) and removed afterwards. Needs root; about a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time

import pytest

from support import hub as hubmod
from support.hub import Hub, RemoteKernel
from support.pids import machine_pid

N = int(os.environ.get("NETLAB_HUB_LEARNERS", "5"))

needs_a_hub = pytest.mark.skipif(hubmod.missing() is not None, reason=str(hubmod.missing()))

IDENTITY = """\
import json, os
from netlab_magic import Lab
_lab = Lab.current()
print(json.dumps({"uid": os.getuid(), "mode": _lab.mode, "netns": sorted(_lab.sandbox.list_netns()),
                  "inodes": [os.stat(p).st_ino for p in ["/run/netlab/host"] + ["/run/netns/" + n for n in _lab.sandbox.list_netns()]],
                  "kernel": os.getpid(), "keeper": _lab.sandbox._keeper.pid,
                  "pidns": os.stat("/proc/self/ns/pid").st_ino}))
"""

ADDRESSES = "!ip -o -4 addr show | awk '{print $2, $4}' | sort"


def door(i: int) -> str:
    return f"10.99.0.{i}"


def attempts(i: int, n: int) -> str:
    """From learner i's lab host: ping and connect to every learner's address, all at once."""
    lines = ["%%netns host"]
    for j in range(1, n + 1):
        lines.append(f"(ping -c 1 -W 1 {door(j)} >/dev/null 2>&1 && echo 'ping {j} ok' || echo 'ping {j} no') &")
        lines.append(f"(echo 'hello from learner{i}' | nc -N -w 1 {door(j)} 9000 >/dev/null 2>&1 "
                     f"&& echo 'tcp {j} ok' || echo 'tcp {j} no') &")
    lines.append("wait")
    return "\n".join(lines)


async def workshop(hub: Hub, learners: list[hubmod.Learner]) -> dict:
    names = [l.name for l in learners]
    t0 = time.monotonic()
    tokens = dict(zip(names, await asyncio.gather(*(hub.log_in(n) for n in names))))
    await asyncio.gather(*(hub.start_server(n, tokens[n]) for n in names))

    # The Hub keeps learners apart too: a learner's token does not open another's server.
    if len(names) > 1:
        status, _ = await hub.request("GET", f"/user/{names[0]}/api/kernels", token=tokens[names[1]])
        assert status in (403, 404), f"{names[1]}'s token reached {names[0]}'s server ({status})"
        status, _ = await hub.request("GET", f"/user/{names[0]}/api/kernels", token=tokens[names[0]])
        assert status == 200, status

    t1 = time.monotonic()
    kernels = await asyncio.gather(*(RemoteKernel(hub, n, tokens[n]).start("netlab") for n in names))
    t2 = time.monotonic()
    cells = hubmod.notebook_03()
    runs = await asyncio.gather(*(hubmod.run_cells(k, cells) for k in kernels))
    t3 = time.monotonic()
    print(f"{len(names)} learners: servers {t1 - t0:.1f} s, netlab kernels {t2 - t1:.1f} s, "
          f"notebook 03 at once {t3 - t2:.1f} s")

    for name, replies in zip(names, runs):
        for r in replies:
            assert r.error is None and "UsageError" not in r.stderr and "Traceback" not in r.stderr, (name, r)
        # Demo 2's ping across the bridge: dropped by FORWARD's policy (the prediction step), then
        # answered once the learner's ACCEPT rule is in.
        dropped = [r.stdout for r in replies if 'ping("ns3", "10.0.0.1"' in r.code]
        answered = [r.stdout for r in replies if r.code.strip() == "%netns ns3 ping -c 1 -W 1 10.0.0.1"]
        assert len(dropped) == 1 and "100% packet loss" in dropped[0] and "policy DROP 1 packets" in dropped[0], \
            (name, dropped)
        assert len(answered) == 1 and " 0% packet loss" in answered[0], (name, answered)
        listener = [r.stdout for r in replies if r.code.startswith("%netlab output listener")]
        assert listener and "hello ns3, this is ns1, through bridge0" in listener[0], (name, listener)
        assert replies[-1].results and replies[-1].results[-1].startswith("Well done"), (name, replies[-1])

    # Same lab for everyone: the same names and addresses, and each kernel is rootless.
    ids = [json.loads((await k.ok(IDENTITY)).stdout.strip().splitlines()[-1]) for k in kernels]
    addresses = [(await k.ok(ADDRESSES)).stdout for k in kernels]
    for learner, ident, addr in zip(learners, ids, addresses):
        assert ident["uid"] == 0 and ident["mode"] == "rootless", (learner.name, ident)
        assert ident["netns"] == ["ns1", "ns3", "ns4"], (learner.name, ident)
        assert addr == addresses[0] and "bridge0 10.0.0.10/24" in addr, (learner.name, addr)
    inodes = [i for ident in ids for i in ident["inodes"]]
    assert len(set(inodes)) == len(inodes), "two learners share a namespace"

    # Real traffic between labs: every learner tries every learner's own address.
    for i, k in enumerate(kernels, 1):
        await k.ok(f"!ip addr add {door(i)}/24 dev bridge0")
        await k.ok(f"%%netns host --bg --name door\nnc -lk {door(i)} 9000")
    await asyncio.sleep(0.5)
    tries = await asyncio.gather(*(k.ok(attempts(i, len(kernels)), timeout=60) for i, k in enumerate(kernels, 1)))
    await asyncio.sleep(0.3)
    heard = [(await k.ok("%netlab output door")).stdout for k in kernels]
    for i, (name, out, got) in enumerate(zip(names, tries, heard), 1):
        seen = set(out.stdout.split("\n"))
        for j in range(1, len(kernels) + 1):
            want = "ok" if j == i else "no"
            assert f"ping {j} {want}" in seen and f"tcp {j} {want}" in seen, (name, j, out.stdout)
        assert got.count("hello from learner") == 1 and f"hello from learner{i}" in got, (name, got)

    return {"kernels": kernels, "ids": ids}


def test_the_kernelspec_installed_by_root_is_readable_by_every_user(tmp_path):
    """A learner's server must see the "Python 3 (netlab)" kernel root installed into the venv."""
    from netlab_magic.jupyter.kernelspec import install

    path = install(prefix=str(tmp_path))
    assert os.stat(path).st_mode & 0o755 == 0o755
    assert os.stat(os.path.join(path, "kernel.json")).st_mode & 0o444 == 0o444


@needs_a_hub
@pytest.mark.timeout(600)
def test_a_class_of_learners_each_with_a_lab_of_their_own():
    workdir = tempfile.mkdtemp(prefix="netlab-hub-", dir="/tmp")
    os.chmod(workdir, 0o755)
    names = [f"learner{i}" for i in range(1, N + 1)]
    hub = None
    try:
        learners = hubmod.ensure_learners(names, os.path.join(workdir, "home"))
        uids = {l.uid for l in learners}
        python, pythonpath = hubmod.learner_python(os.path.join(workdir, "runtime"), learners[0])
        hub = Hub(os.path.join(workdir, "hub"), learners, python, pythonpath)
        t = time.monotonic()
        hub.start()
        print(f"hub up in {time.monotonic() - t:.1f} s")
        result = asyncio.run(workshop(hub, learners))

        # Nothing of a learner runs as root: below the Hub, only its proxy does.
        tree = hubmod.process_tree(hub.proc.pid)
        root_owned = {pid: cmd for pid, (r, e, s, cmd) in tree.items() if 0 in (r, e, s) and pid != hub.proc.pid}
        assert all("configurable-http-proxy" in cmd for cmd in root_owned.values()), root_owned
        for ident in result["ids"]:
            for pid in (machine_pid(ident["pidns"], ident[key]) for key in ("kernel", "keeper")):
                assert pid in tree and tree[pid][0] in uids and tree[pid][:3] == (tree[pid][0],) * 3, (pid, tree.get(pid))
        everyone = hubmod.learner_processes(uids)
        assert len(everyone) >= 3 * N  # a server, a kernel and a keeper each, at least

        # Stopping the Hub, as `systemctl stop jupyterhub` does, leaves nothing behind.
        inodes = {i for ident in result["ids"] for i in ident["inodes"]}
        born_before = hubmod.uptime() + 0.01
        proxy_pid = int(open(os.path.join(hub.workdir, "proxy.pid")).read())
        t = time.monotonic()
        assert hub.stop() == 0, hub.log_tail()
        print(f"hub stopped in {time.monotonic() - t:.1f} s")
        assert hubmod.wait_until(lambda: not hubmod.learner_processes(uids)), \
            f"learner processes survived the Hub: {hubmod.learner_processes(uids)}"
        assert hubmod.wait_until(lambda: not hubmod.netns_users(inodes, born_before)), \
            f"processes still inside the labs: {hubmod.netns_users(inodes, born_before)}"
        assert hubmod.wait_until(lambda: not os.path.exists(f"/proc/{proxy_pid}")), "the proxy survived the Hub"
    finally:
        if hub is not None and hub.proc is not None and hub.proc.poll() is None:
            hub.stop()
        for pid in hubmod.learner_processes({l.uid for l in hubmod.existing_learners(names)}):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        hubmod.remove_learners(names)
        shutil.rmtree(workdir, ignore_errors=True)
    assert not any(hubmod.existing_learners(names)), "the learners' users were not removed"

