"""How many learners one machine holds: a real JupyterHub, N learners running Demo 2 at once.

    sudo .venv/bin/python benchmarks/deploy.py                  # 1, 10 and 30 learners (~8 min here)
    sudo .venv/bin/python benchmarks/deploy.py --learners 1,5 --starts 3 --json out.json
    sudo .venv/bin/python benchmarks/deploy.py --quick           # 1 and 2 learners, 2 starts: a smoke run

The Hub is the one ``tests/test_hub.py`` runs (``tests/support/hub.py``): JupyterHub as root with
configurable-http-proxy, local system users ``learner1..N`` (made here, removed afterwards), the
local process spawner, each learner's server started through the Hub's REST API. Measured:

1. **kernel start**: ``POST /user/NAME/api/kernels`` until the kernel answers ``kernel_info`` over
   its websocket, what a learner waits for when opening a notebook; the "Python 3 (netlab)"
   kernel (user namespace, extension loaded) against ipykernel's plain ``python3``, interleaved,
   in one learner's server while nothing else runs;
2. **memory per learner** once Demo 2 has run (its lab, a listener and a client still alive):
   the proportional set size (PSS, shared pages split among sharers) of the learner's processes by
   role (Jupyter server, kernel, keeper, lab processes), and the machine's ``MemAvailable`` drop
   from before the kernels started, divided by N (which includes the kernel's own memory for the
   namespaces, interfaces and iptables tables);
3. **learners at once**: the wall time of notebook 03 (Demo 2, its exercise solved, every cell)
   for N learners started together, each in their own kernel, with the time to start their
   servers and kernels; and whether stopping the Hub left anything.

Needs root (it makes users and runs the Hub). Nothing leaves the machine: the Hub and the
servers listen on 127.0.0.1 and the labs have no uplink.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import hub as hubmod  # noqa: E402
from support.hub import Hub, RemoteKernel  # noqa: E402


def meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])  # kB
    return out


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def role(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "jupyterhub.singleuser" in cmd:
        return "server"
    if "ipykernel_launcher" in cmd or "netlab_magic.jupyter.kernel" in cmd:
        return "kernel"
    if "keeper.py" in cmd:
        return "keeper"
    return "lab processes"


def fmt_s(x: float) -> str:
    return f"{x:.2f} s"


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


async def kernel_starts(hub: Hub, name: str, token: str, rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"python3": [], "netlab": []}
    for _ in range(rounds):
        for kind in ("python3", "netlab"):
            k = await RemoteKernel(hub, name, token).start(kind)
            times[kind].append(k.ready_seconds)
            await k.shutdown()
            await asyncio.sleep(0.5)
    return times


async def classroom(hub: Hub, learners: list[hubmod.Learner], starts: int) -> dict:
    names = [l.name for l in learners]
    out: dict = {"n": len(names)}
    t0 = time.monotonic()
    tokens = dict(zip(names, await asyncio.gather(*(hub.log_in(n) for n in names))))
    await asyncio.gather(*(hub.start_server(n, tokens[n]) for n in names))
    out["servers_s"] = time.monotonic() - t0
    if starts:
        out["kernel_start"] = await kernel_starts(hub, names[0], tokens[names[0]], starts)

    before = meminfo()["MemAvailable"]
    t1 = time.monotonic()
    kernels = await asyncio.gather(*(RemoteKernel(hub, n, tokens[n]).start("netlab") for n in names))
    out["kernels_s"] = time.monotonic() - t1
    out["kernel_ready_s"] = [k.ready_seconds for k in kernels]
    cells = hubmod.notebook_03()

    async def one(k: RemoteKernel) -> dict:
        t = time.monotonic()
        replies = await hubmod.run_cells(k, cells, timeout=300)
        errors = [r.code[:60] for r in replies if r.error or "UsageError" in r.stderr]
        verdict = replies[-1].results[-1] if replies[-1].results else ""
        return {"seconds": time.monotonic() - t, "errors": errors, "done": verdict.startswith("Well done")}

    t2 = time.monotonic()
    runs = await asyncio.gather(*(one(k) for k in kernels))
    out["notebook_wall_s"] = time.monotonic() - t2
    out["notebook_s"] = [r["seconds"] for r in runs]
    out["failed"] = [(n, r["errors"]) for n, r in zip(names, runs) if r["errors"] or not r["done"]]
    # Demo 2's listener and client are stopped by the notebook; keep one job alive per lab, as a class would
    await asyncio.gather(*(k.ok("%%netns ns3 --bg --name listener\nnc -lk 8080") for k in kernels))
    await asyncio.sleep(1.0)
    after = meminfo()["MemAvailable"]
    out["memavailable_drop_kb_per_learner"] = (before - after) / len(names)
    per_role: dict[str, list[int]] = {}
    for learner in learners:
        sums: dict[str, int] = {}
        for pid in hubmod.learner_processes({learner.uid}):
            r = role(pid)
            sums[r] = sums.get(r, 0) + pss_kb(pid)
        for r, kb in sums.items():
            per_role.setdefault(r, []).append(kb)
    out["pss_kb"] = {r: median(v) for r, v in per_role.items()}
    for k in kernels:
        k.ws.close()
    return out


def run_one(n: int, starts: int, workdir: str) -> dict:
    names = [f"learner{i}" for i in range(1, n + 1)]
    learners = hubmod.ensure_learners(names, os.path.join(workdir, "home"))
    python, pythonpath = hubmod.learner_python(os.path.join(workdir, "runtime"), learners[0])
    hub = Hub(os.path.join(workdir, f"hub-{n}"), learners, python, pythonpath)
    t = time.monotonic()
    hub.start()
    hub_start = time.monotonic() - t
    try:
        result = asyncio.run(classroom(hub, learners, starts))
        result["hub_start_s"] = hub_start
        t = time.monotonic()
        born_before = hubmod.uptime() + 0.01
        result["hub_exit"] = hub.stop()
        result["hub_stop_s"] = time.monotonic() - t
        uids = {l.uid for l in learners}
        result["left_after_stop"] = (None if hubmod.wait_until(lambda: not hubmod.learner_processes(uids), 60)
                                     else hubmod.learner_processes(uids))
        del born_before
        return result
    finally:
        if hub.proc is not None and hub.proc.poll() is None:
            hub.stop()


def report(results: list[dict]) -> str:
    lines = []
    ks = next((r["kernel_start"] for r in results if r.get("kernel_start")), None)
    if ks:
        p, n = median(ks["python3"]), median(ks["netlab"])
        lines += ["#### Kernel start, through a learner's server (median of "
                  f"{len(ks['netlab'])}; POST /api/kernels until kernel_info answers)", "",
                  "| kernel | median | min | max |", "|---|---|---|---|",
                  f"| python3 (plain ipykernel) | {fmt_s(p)} | {fmt_s(min(ks['python3']))} | {fmt_s(max(ks['python3']))} |",
                  f"| Python 3 (netlab) | {fmt_s(n)} | {fmt_s(min(ks['netlab']))} | {fmt_s(max(ks['netlab']))} |",
                  "", f"netlab costs {n - p:+.2f} s ({n / p:.2f}x) at start.", ""]
    first = results[0]
    roles = ["server", "kernel", "keeper", "lab processes"]
    del first
    lines += ["#### Memory per learner after Demo 2 (MiB; PSS, shared pages split among sharers; median over learners)", "",
              "| learners | " + " | ".join(roles) + " | total | MemAvailable drop per learner (kernel + keeper + lab) |",
              "|" + "---|" * (len(roles) + 3)]
    for r in results:
        pss = r["pss_kb"]
        total = sum(pss.get(x, 0) for x in roles)
        lines.append(f"| {r['n']} | " + " | ".join(f"{pss.get(x, 0) / 1024:.1f}" for x in roles)
                     + f" | {total / 1024:.1f} | {r['memavailable_drop_kb_per_learner'] / 1024:.1f} |")
    lines += ["", "#### Learners at once: notebook 03 (Demo 2, every cell), each in their own server and kernel", "",
              "| learners | servers up | netlab kernels up | notebook 03: median / slowest learner | all done | failed | hub stop | left behind |",
              "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['n']} | {fmt_s(r['servers_s'])} | {fmt_s(r['kernels_s'])} | "
                     f"{fmt_s(median(r['notebook_s']))} / {fmt_s(max(r['notebook_s']))} | {fmt_s(r['notebook_wall_s'])} | "
                     f"{len(r['failed'])} | {fmt_s(r['hub_stop_s'])} | {'nothing' if not r['left_after_stop'] else r['left_after_stop']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--learners", default="1,10,30", help="comma-separated class sizes (default 1,10,30)")
    ap.add_argument("--starts", type=int, default=5, help="kernel starts of each kind, in the first class (default 5)")
    ap.add_argument("--quick", action="store_true", help="1 and 2 learners, 2 starts")
    ap.add_argument("--json", help="write the raw results here")
    args = ap.parse_args()
    why = hubmod.missing()
    if why:
        print(f"deploy.py: {why}", file=sys.stderr)
        return 2
    sizes = [1, 2] if args.quick else [int(x) for x in args.learners.split(",")]
    starts = 2 if args.quick else args.starts
    workdir = tempfile.mkdtemp(prefix="netlab-deploy-", dir="/tmp")
    os.chmod(workdir, 0o755)
    names = [f"learner{i}" for i in range(1, max(sizes) + 1)]
    results = []
    t0 = time.time()
    try:
        for i, n in enumerate(sizes):
            print(f"== {n} learner(s)", file=sys.stderr, flush=True)
            results.append(run_one(n, starts if i == 0 else 0, workdir))
            print(json.dumps({k: v for k, v in results[-1].items() if k != "kernel_start"}), file=sys.stderr, flush=True)
    finally:
        for pid in hubmod.learner_processes({l.uid for l in hubmod.existing_learners(names)}):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        hubmod.remove_learners(names)
        shutil.rmtree(workdir, ignore_errors=True)
    ip = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    print(f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t0))}: nproc {os.cpu_count()}, "
          f"{meminfo()['MemTotal'] // 1024} MiB, kernel {platform.release()}, python {platform.python_version()}, "
          f"jupyterhub {__import__('jupyterhub').__version__}, {ip}; {time.time() - t0:.0f} s in all.\n")
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all(not r["failed"] and not r["left_after_stop"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
