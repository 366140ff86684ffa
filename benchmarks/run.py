"""netlab_magic benchmark suite (issue 6).

    python benchmarks/run.py [--quick] [--n 10,100,500,1000] [--json results.json]

Needs root (or root in a user namespace), like the lab. Prints a table of medians and ratios
measured side by side in one run:

1. build   an N-namespace star (N namespaces, each with a veth pair into bridge br0 on the host,
           an address on each end, all links up) the talk's way (a bash loop of ip), with
           ``ip -batch``/``ip -n``, with raw pyroute2 as its docs show, with netlab's per-call
           API, with ``netlab_magic.build.build_star``, and at a hand-written netlink floor;
2. teardown  ``lab.reset()`` against an ``ip netns del`` loop and deleting the namespaces directly;
3. enter   ``%netns ns1 true`` against ``!ip netns exec ns1 true`` and ``!true`` in one IPython
           shell, and what a ``%%netns ns1 --python`` cell pays;
4. counters  reading the counters of 1,000 iptables rules in a namespace;
5. workbook  every notebook of ``notebooks/`` under nbval (skipped if there are none);
6. snapshot  ``lab.snapshot()`` of a 10/30/100-namespace lab against the same netlink dumps done
           raw (a fresh socket in each namespace, messages read, not parsed): ``floor.dumps``;
7. kernel  the "Python 3 (netlab)" kernel's start through jupyter_client, as JupyterLab starts it:
           until it answers ``kernel_info`` (the lab is made by then), and until a first
           ``%netns host true`` has run, against a plain ``python3`` kernel; then ``%netns ns1
           true`` cells in that kernel (10 per start).

Every measurement runs in a fresh child process (``run.py --child ...``), so each has its own
lab sandbox: everything, the shell baselines included, happens inside the lab's host namespace
(``lab.run("host", script)``), never in the machine's own. Between builds the parent waits until
the kernel has finished freeing the previous child's namespaces (they are freed asynchronously,
under the same locks a build needs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

#: Build methods, in table order. "floor" methods are the reference of their IPv6 setting.
BUILD_METHODS = [
    ("shell", "(a) bash loop of ip (talk's way)", True),
    ("batch", "(b) ip -batch + ip -n", True),
    ("pyroute2", "(c) pyroute2 as documented", True),
    ("api", "netlab per-call API", True),
    ("star6", "netlab build_star(ipv6=True)", True),
    ("floor6", "(d) netlink floor, IPv6 on", True),
    ("star", "netlab build_star() [IPv6 off]", False),
    ("floor", "(d) netlink floor, IPv6 off", False),
]
#: The per-call API (O(1) per call, ~0.3 ms) is measured up to this N; beyond, the bulk paths.
API_MAX_N = 100


def addr(k: int, net: int) -> str:
    return f"10.{net}.{k >> 8}.{k & 255}"


# =============================================================================================
# children: one measurement each, inside a fresh lab
# =============================================================================================

def child_build(method: str, n: int) -> dict:
    from netlab_magic import Lab

    lab = Lab.current()
    if method == "shell":
        lines = ["set -e", "ip link add br0 type bridge", "ip link set br0 up"]
        for i in range(n):
            k = i + 1
            lines += [
                f"ip netns add ns{i}",
                f"ip link add veth{i} type veth peer name c{i}",
                f"ip link set c{i} netns ns{i}",
                f"ip link set veth{i} master br0",
                f"ip addr add {addr(k, 2)}/32 dev veth{i}",
                f"ip link set veth{i} up",
                f"ip netns exec ns{i} ip addr add {addr(k, 1)}/16 dev c{i}",
                f"ip netns exec ns{i} ip link set c{i} up",
                f"ip netns exec ns{i} ip link set lo up",
            ]
        t = time.perf_counter()
        run_script(lab, lines)
        dt = time.perf_counter() - t
        ifname = f"c{n - 1}"
    elif method == "batch":
        host = ["link add br0 type bridge", "link set br0 up"]
        for i in range(n):
            k = i + 1
            host += [f"netns add ns{i}",
                     f"link add veth{i} type veth peer name eth0 netns ns{i}",
                     f"link set veth{i} master br0",
                     f"addr add {addr(k, 2)}/32 dev veth{i}",
                     f"link set veth{i} up"]
        lines = ["set -e", "ip -batch - <<'EOF'", *host, "EOF"]
        for i in range(n):
            lines += [f"ip -n ns{i} -batch - <<'EOF'", f"addr add {addr(i + 1, 1)}/16 dev eth0",
                      "link set eth0 up", "link set lo up", "EOF"]
        t = time.perf_counter()
        run_script(lab, lines)
        dt = time.perf_counter() - t
        ifname = "eth0"
    elif method == "pyroute2":
        from pyroute2 import IPRoute
        from pyroute2 import netns as pnetns

        t = time.perf_counter()
        with IPRoute() as ipr:  # the main thread is in the lab's host
            ipr.link("add", ifname="br0", kind="bridge")
            br = ipr.link_lookup(ifname="br0")[0]
            ipr.link("set", index=br, state="up")
            for i in range(n):
                k = i + 1
                name = f"ns{i}"
                pnetns.create(name)
                ipr.link("add", ifname=f"veth{i}", kind="veth", peer={"ifname": "eth0", "net_ns_fd": name})
                idx = ipr.link_lookup(ifname=f"veth{i}")[0]
                ipr.link("set", index=idx, master=br)
                ipr.addr("add", index=idx, address=addr(k, 2), prefixlen=32)
                ipr.link("set", index=idx, state="up")
                with IPRoute(netns=name) as inner:
                    eth = inner.link_lookup(ifname="eth0")[0]
                    inner.addr("add", index=eth, address=addr(k, 1), prefixlen=16)
                    inner.link("set", index=eth, state="up")
                    inner.link("set", index=inner.link_lookup(ifname="lo")[0], state="up")
        dt = time.perf_counter() - t
        ifname = "eth0"
    elif method == "api":
        t = time.perf_counter()
        lab.host.add_bridge("br0")
        lab.host.link_up("br0")
        for i in range(n):
            k = i + 1
            ns = lab.add_netns(f"ns{i}")
            lab.host.add_veth(f"veth{i}", peer="eth0", peer_netns=ns)
            lab.host.link_set_master(f"veth{i}", "br0")
            lab.host.addr_add(f"veth{i}", f"{addr(k, 2)}/32")
            lab.host.link_up(f"veth{i}")
            ns.addr_add("eth0", f"{addr(k, 1)}/16")
            ns.link_up("eth0")
            ns.link_up("lo")
        dt = time.perf_counter() - t
        ifname = "eth0"
    elif method in ("star", "star6"):
        from netlab_magic.build import build_star

        t = time.perf_counter()
        build_star(lab, n, host_subnet="10.2.0.0/16", ipv6=method == "star6")
        dt = time.perf_counter() - t
        ifname = "eth0"
    elif method in ("floor", "floor6"):
        sys.path.insert(0, HERE)
        import floor

        t = time.perf_counter()
        floor.build(n, ipv6=method == "floor6")
        dt = time.perf_counter() - t
        ifname = "eth0"
    else:
        raise SystemExit(f"unknown method {method}")
    # check the result (outside the timing): every namespace there, the last one complete
    last = n - 1
    out = lab.run("host", f"ip netns list | wc -l; ip -n ns{last} -br addr show dev {ifname}; "
                          f"ip -br link show master br0 | grep -c UP", check=True).stdout.split("\n")
    ok = (int(out[0]) == n and f"{addr(n, 1)}/16" in out[1] and " UP " in out[1] and int(out[2]) == n)
    return {"seconds": dt, "ok": ok}


def run_script(lab, lines: list[str]) -> None:
    """Run a bash script in the lab's host (from a file: a big script exceeds the argv limit)."""
    path = "/run/netlab-bench.sh"  # /run is the lab's private tmpfs
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    lab.run("host", ["bash", path], check=True)


def child_teardown(method: str, n: int) -> dict:
    from netlab_magic import Lab
    from netlab_magic.build import build_star
    from netlab_magic.sandbox.sandbox import NETNS_DIR
    from netlab_magic.linux import syscalls

    baseline = netns_count()
    lab = Lab.current()
    build_star(lab, n, host_subnet="10.2.0.0/16")
    t = time.perf_counter()
    if method == "reset":
        lab.reset()
    elif method == "ipdel":
        lab.run("host", f"for i in $(seq 0 {n - 1}); do ip netns del ns$i; done", check=True)
    elif method == "direct":  # what `ip netns del` does, without the fork: umount + unlink
        for i in range(n):
            path = os.path.join(NETNS_DIR, f"ns{i}")
            syscalls.umount(path)
            os.unlink(path)
    dt = time.perf_counter() - t
    baseline += 1  # the lab's host stays (a fresh one after reset)
    freed = wait_netns_freed(baseline, 60)
    return {"seconds": dt, "freed": freed}


def child_enter(reps: int) -> dict:
    from IPython.core.interactiveshell import InteractiveShell

    from netlab_magic import Lab
    from netlab_magic.linux import process

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "netlab_magic")
    lab = Lab.current()
    lab.add_netns("ns1").link_up("lo")

    def spawn() -> None:  # returns None: nothing for the displayhook to show
        process.stream(process.popen(process.shell_argv("true")))

    shell.user_ns["_spawn"] = spawn
    # Two blocks, each interleaved round by round so that drift hits every case alike. The `!`
    # cells run apart: IPython's `!` (pexpect) leaves a pty and a child to tear down, which
    # would land on the clock of whatever cell runs next.
    blocks = [
        {
            "%netns ns1 true": "%netns ns1 true",
            "bash -c true spawned as %netns does, no namespace": "_spawn()",
            "%%netns ns1 --python (pass)": "%%netns ns1 --python\npass\n",
            "Python cell (pass)": "pass\n",
        },
        {
            "!ip netns exec ns1 true": "!ip netns exec ns1 true",
            "!true": "!true",
        },
    ]
    times: dict[str, list[float]] = {}
    for cases in blocks:
        for cell in cases.values():  # warm up
            shell.run_cell(cell, store_history=False)
        for _ in range(reps):
            for key, cell in cases.items():
                t = time.perf_counter()
                result = shell.run_cell(cell, store_history=False)
                times.setdefault(key, []).append(time.perf_counter() - t)
                if not result.success:
                    raise SystemExit(f"cell failed: {cell!r}: {result.error_in_exec or result.error_before_exec}")
    return {k: statistics.median(v) for k, v in times.items()}


def child_counters(rules: int, reps: int) -> dict:
    from netlab_magic import Lab

    lab = Lab.current()
    lab.add_netns("ns1")
    lines = ["*filter", ":BENCH - [0:0]", "-A INPUT -j BENCH"]
    lines += [f"-A BENCH -s {addr(k, 9)}/32 -p tcp --dport {1000 + k % 5000} -j ACCEPT" for k in range(1, rules + 1)]
    path = "/run/netlab-bench-rules"  # /run is the lab's private tmpfs
    with open(path, "w") as f:
        f.write("\n".join(lines + ["COMMIT", ""]))
    t = time.perf_counter()
    lab.run("ns1", ["iptables-restore", "--noflush", path], check=True)
    load = time.perf_counter() - t
    lab.run("ns1", "ping -c 3 -i 0.01 -q 127.0.0.1 >/dev/null || true")  # some counters non-zero
    counter = re.compile(r"^\[(\d+):(\d+)\] -A ", re.M)
    out: dict = {"load (iptables-restore --noflush)": load}
    for key, argv in (("iptables-save -c", ["iptables-save", "-c", "-t", "filter"]),
                      ("iptables -L -v -n -x", ["iptables", "-L", "-v", "-n", "-x"])):
        samples = []
        for _ in range(reps):
            t = time.perf_counter()
            text = lab.run("ns1", argv, check=True).stdout
            if key.startswith("iptables-save"):
                found = [(int(p), int(b)) for p, b in counter.findall(text)]
            else:
                found = [ln for ln in text.splitlines() if ln.strip() and ln.split()[0].isdigit()]
            samples.append(time.perf_counter() - t)
            if len(found) < rules:
                raise SystemExit(f"{key}: read {len(found)} counters, expected {rules}")
        out[key] = statistics.median(samples)
    return out


# =============================================================================================
# the parent: runs the children, prints the table
# =============================================================================================

def child_snapshot(sizes: list[int], reps: int) -> dict:
    """Median time of ``lab.snapshot()`` and of the raw dumps, interleaved, for each lab size."""
    sys.path.insert(0, HERE)
    import floor
    from netlab_magic import Lab
    from netlab_magic.build import build_star

    lab = Lab.current()
    made, out = 0, {}
    for n in sizes:
        build_star(lab, n - made, start=made, host_subnet="10.2.0.0/16", ipv6=True)
        made = n
        paths = [lab.sandbox.netns_path(name) for name in ["host", *lab.list_netns()]]
        t = time.perf_counter()
        lab.snapshot()
        cold = time.perf_counter() - t
        snaps, floors = [], []
        for _ in range(reps):
            t = time.perf_counter()
            floor.dumps(paths)
            floors.append(time.perf_counter() - t)
            t = time.perf_counter()
            lab.snapshot()
            snaps.append(time.perf_counter() - t)
        out[n] = {"cold": cold, "snapshot": statistics.median(snaps), "floor": statistics.median(floors)}
    return out


def child_kernel(rounds: int) -> dict:
    """Start the netlab and the plain python3 kernel ``rounds`` times each, interleaved."""
    from jupyter_client.manager import KernelManager

    cells = {"netlab": "%netns host true", "python3": "pass"}
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, cell in cells.items():
            t = time.perf_counter()
            km = KernelManager(kernel_name=name)
            km.start_kernel()
            kc = km.client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=60)
                ready = time.perf_counter() - t
                reply = kc.execute_interactive(cell, timeout=60, output_hook=lambda msg: None)
                if reply["content"]["status"] != "ok":
                    raise SystemExit(f"{name}: {cell!r} failed")
                first = time.perf_counter() - t
                if name == "netlab":  # what a command costs in the kernel itself, through Jupyter
                    kc.execute_interactive("!ip netns add ns1", timeout=60, output_hook=lambda msg: None)
                    for _ in range(10):
                        c = time.perf_counter()
                        kc.execute_interactive("%netns ns1 true", timeout=60, output_hook=lambda msg: None)
                        times.setdefault("netlab: %netns ns1 true, a cell through jupyter_client", []).append(
                            time.perf_counter() - c)
            finally:
                kc.stop_channels()
                km.shutdown_kernel(now=True)
            times.setdefault(f"{name}: ready (kernel_info)", []).append(ready)
            times.setdefault(f"{name}: first cell ({cell}) done", []).append(first)
    return {k: statistics.median(v) for k, v in times.items()}


def netns_count() -> int:
    """Network namespaces alive in the kernel, dying ones included (slab objects; SLUB may count a few spare)."""
    try:
        with open("/proc/slabinfo") as f:
            for line in f:
                if line.startswith("net_namespace "):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def wait_netns_freed(baseline: int, limit: float) -> float:
    """Seconds until the kernel has freed the namespaces made since ``baseline`` was counted.

    Namespaces are freed asynchronously (a kernel worker, under the locks a build needs), so the
    next measurement waits for it. Other users of the machine make namespaces too: give up
    when the count stops falling for 1 s, or after ``limit`` seconds.
    """
    start = time.monotonic()
    if baseline < 0:
        return 0.0
    last, last_fall = netns_count(), start
    while time.monotonic() - start < limit:
        now = netns_count()
        if now <= baseline + 7:  # one slab's worth of slack
            break
        if now < last:
            last, last_fall = now, time.monotonic()
        elif time.monotonic() - last_fall > 1.0:
            break
        time.sleep(0.02)
    return time.monotonic() - start


def run_child(*args: str, timeout: float = 900, settle: float = 60) -> dict:
    """Run one measurement in a fresh process (its own lab); then wait until its namespaces are freed."""
    baseline = netns_count()
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"child {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    wait_netns_freed(baseline, settle)
    return result


def build_reps(method: str, n: int, quick: bool) -> int:
    """Repetitions: the fast methods get more (noise is relatively larger for them)."""
    if method == "api" and n > API_MAX_N:
        return 0
    if quick:
        return 1
    fast = method in ("star", "star6", "floor", "floor6")
    if n >= 500:  # IPv6 on costs ~20 s a build at N=1000: once
        return 3 if method in ("star", "floor") else 1
    return 5 if fast or n <= 10 else 3


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    out = [f"\n### {title}\n", line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition: a smoke test (seconds)")
    parser.add_argument("--n", default=None, help="namespace counts to build, comma-separated (default 10,100,500,1000)")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--only", default="build,teardown,enter,counters,workbook,snapshot,kernel",
                        help="scenarios to run, comma-separated (default: all seven)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        if kind == "build":
            result = child_build(rest[0], int(rest[1]))
        elif kind == "teardown":
            result = child_teardown(rest[0], int(rest[1]))
        elif kind == "enter":
            result = child_enter(int(rest[0]))
        elif kind == "counters":
            result = child_counters(int(rest[0]), int(rest[1]))
        elif kind == "snapshot":
            result = child_snapshot([int(x) for x in rest[0].split(",")], int(rest[1]))
        elif kind == "kernel":
            result = child_kernel(int(rest[0]))
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(result))
        return

    if os.geteuid() != 0:
        raise SystemExit("run.py needs root (or root in a user namespace), as the lab does")
    only = set(args.only.split(","))
    sizes = [int(x) for x in (args.n or ("3" if args.quick else "10,100,500,1000")).split(",")]
    settle = 2.0 if args.quick else 30.0
    results: dict = {"machine": machine(), "build": {}, "teardown": {}, "enter": {}, "counters": {},
                     "workbook": None, "snapshot": {}, "kernel": {}}
    started = time.monotonic()
    report: list[str] = [f"netlab_magic benchmarks, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
                         "machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items())]
    print(report[0] + "\n" + report[1], flush=True)

    # 1. build ------------------------------------------------------------------------------
    build_rows = []
    for n in (sizes if "build" in only else []):
        reps = {m: build_reps(m, n, args.quick) for m, _, _ in BUILD_METHODS}
        samples: dict[str, list[float]] = {}
        for round_ in range(max(reps.values())):  # interleaved: drift and noise hit every method alike
            for method, _label, _ in BUILD_METHODS:
                if round_ >= reps[method]:
                    continue
                r = run_child("build", method, str(n), settle=settle)
                if not r["ok"]:
                    raise RuntimeError(f"build {method} N={n}: the result is incomplete")
                samples.setdefault(method, []).append(r["seconds"])
                print(f"  build {method:8} N={n:<5} {fmt_s(r['seconds'])}", file=sys.stderr, flush=True)
        med = {m: statistics.median(v) for m, v in samples.items()}
        results["build"][n] = {"median": med, "samples": samples}
        for method, label, ipv6 in BUILD_METHODS:
            if method not in med:
                build_rows.append([n, label, 0, "skipped (O(N^2): minutes)", "-", "-", "-"])
                continue
            ref = med["floor6" if ipv6 else "floor"]
            build_rows.append([n, label, len(samples[method]), fmt_s(med[method]), f"{med[method] / n * 1000:.2f}",
                               f"{med[method] / ref:.2f}x", f"{med['shell'] / med[method]:.1f}x"])
    if build_rows:
        report.append(table("1. Build an N-namespace star (median; x floor = vs the floor with the same IPv6 setting)",
                            ["N", "method", "runs", "total", "ms/ns", "x floor", "faster than shell"], build_rows))
        print(report[-1], flush=True)

    # 2. teardown ---------------------------------------------------------------------------
    td_rows = []
    for n in (sorted({min(100, max(sizes)), max(sizes)}) if "teardown" in only else []):
        reps = 1 if args.quick or n >= 500 else 3
        samples = {}
        for _ in range(reps):
            for method in ("reset", "ipdel", "direct"):
                samples.setdefault(method, []).append(run_child("teardown", method, str(n), settle=settle))
        med = {m: statistics.median(s["seconds"] for s in v) for m, v in samples.items()}
        freed = {m: statistics.median(s["freed"] for s in v) for m, v in samples.items()}
        results["teardown"][n] = {"median": med, "kernel_freed_after": freed}
        for method, label in (("reset", "lab.reset()"), ("ipdel", "ip netns del loop"),
                              ("direct", "umount+unlink each (direct)")):
            td_rows.append([n, label, fmt_s(med[method]), f"{med[method] / med['direct']:.2f}x"])
    if td_rows:
        report.append(table("2. Teardown (median; the kernel frees namespaces asynchronously afterwards)",
                            ["N", "method", "time", "x direct"], td_rows))
        print(report[-1], flush=True)

    # 3. entering a namespace ----------------------------------------------------------------
    enter = run_child("enter", "20" if args.quick else "100") if "enter" in only else {}
    results["enter"] = enter
    spawn = enter.get("bash -c true spawned as %netns does, no namespace", 0.0)
    plain = enter.get("Python cell (pass)", 0.0)
    rows = []
    for k, v in enter.items():
        if k.startswith(("%netns", "!")):
            versus = f"{(v - spawn) * 1000:+.2f} ms vs spawning the command"
        elif k.startswith("%%netns"):
            versus = f"{(v - plain) * 1000:+.2f} ms vs a plain Python cell"
        else:
            versus = ""
        rows.append([k, f"{v * 1000:.2f} ms", versus])
    if rows:
        report.append(table("3. Entering a namespace, one IPython shell (median per cell, run_cell)",
                            ["cell", "time", "overhead"], rows))
        print(report[-1], flush=True)

    # 4. counters ---------------------------------------------------------------------------
    counters = run_child("counters", "1000", "5" if args.quick else "30") if "counters" in only else {}
    results["counters"] = counters
    if counters:
        report.append(table("4. Counters of 1,000 iptables rules in a namespace (median per refresh, via lab.run)",
                            ["what", "time"], [[k, fmt_s(v)] for k, v in counters.items()]))
        print(report[-1], flush=True)

    # 5. workbook ---------------------------------------------------------------------------
    if "workbook" in only:
        report.append("\n### 5. Workbook (nbval)\n\n" + workbook(args.quick, results))
        print(report[-1], flush=True)

    # 6. snapshot ---------------------------------------------------------------------------
    if "snapshot" in only:
        snap = run_child("snapshot", "3,10" if args.quick else "10,30,100", "5" if args.quick else "40")
        results["snapshot"] = snap
        rows = [[n, fmt_s(v["cold"]), fmt_s(v["snapshot"]), fmt_s(v["floor"]), f"{v['snapshot'] / v['floor']:.2f}x"]
                for n, v in snap.items()]
        report.append(table("6. lab.snapshot() vs the same dumps raw (median; IPv6 on, as the talk's labs have it)",
                            ["namespaces", "first snapshot", "snapshot", "raw dumps", "x raw"], rows))
        print(report[-1], flush=True)

    # 7. kernel start -------------------------------------------------------------------------
    if "kernel" in only:
        starts = run_child("kernel", "2" if args.quick else "15")
        results["kernel"] = starts
        report.append(table("7. Kernel start through jupyter_client (median)",
                            ["what", "time"], [[k, fmt_s(v)] for k, v in starts.items()]))
        print(report[-1], flush=True)

    report.append(targets(results, sizes))
    print(report[-1], flush=True)

    total = time.monotonic() - started
    print(f"\nTotal wall time of the suite: {total:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)


def targets(results: dict, sizes: list[int]) -> str:
    """The issue's targets, each with the measured value and met / MISSED."""
    rows = []

    def row(what: str, value: str, ok: bool) -> None:
        rows.append([what, value, "met" if ok else "MISSED"])

    build = results["build"]
    for n in (100, 1000):
        if n not in build:
            continue
        med = build[n]["median"]
        for star, floor_ in (("star", "floor"), ("star6", "floor6")):
            ratio = med[star] / med[floor_]
            row(f"N={n}: build_star({'ipv6=True' if star == 'star6' else ''}) <= 1.5x the floor",
                f"{ratio:.2f}x", ratio <= 1.5)
        if n == 100:
            speed = med["shell"] / med["star"]
            row("N=100: build_star() >= 10x faster than the shell loop", f"{speed:.1f}x", speed >= 10)
            if "api" in med:
                ratio = med["api"] / med["star6"]
                row("N=100: per-call API <= 3x build_star (same topology, IPv6 on)", f"{ratio:.2f}x", ratio <= 3)
    for n, td in results["teardown"].items():
        ratio = td["median"]["reset"] / td["median"]["direct"]
        row(f"N={n}: lab.reset() <= 1.5x deleting the namespaces directly", f"{ratio:.2f}x", ratio <= 1.5)
    enter = results["enter"]
    if enter:
        magic, ipexec = enter["%netns ns1 true"], enter["!ip netns exec ns1 true"]
        spawn = enter["bash -c true spawned as %netns does, no namespace"]
        row("%netns ns1 true <= !ip netns exec ns1 true", f"{magic * 1000:.1f} vs {ipexec * 1000:.1f} ms",
            magic <= ipexec)
        row("%netns overhead above spawning the command < 1 ms", f"{(magic - spawn) * 1000:+.2f} ms",
            magic - spawn < 0.001)
    if results["counters"]:
        value = results["counters"]["iptables-save -c"]
        row("1,000 rules' counters (iptables-save -c) < 100 ms", fmt_s(value), value < 0.1)
    for n, v in results.get("snapshot", {}).items():
        ratio = v["snapshot"] / v["floor"]
        row(f"{n} namespaces: lab.snapshot() <= 2x the raw dumps", f"{ratio:.2f}x", ratio <= 2)
    wb = results.get("workbook")
    if wb:
        row("workbook under nbval < 60 s (and passing)", f"{wb['seconds']:.1f} s, exit {wb['exit']}",
            wb["seconds"] < 60 and wb["exit"] == 0)
    return table("Targets", ["target", "measured", "verdict"], rows)


def workbook(quick: bool, results: dict) -> str:
    nbdir = os.path.join(ROOT, "notebooks")
    books = sorted(f for f in os.listdir(nbdir) if f.endswith(".ipynb")) if os.path.isdir(nbdir) else []
    if not books:
        return "skipped: notebooks/ has no notebooks yet"
    if quick:
        return f"skipped under --quick ({len(books)} notebooks in notebooks/)"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "notebooks/",
            "--nbval-kernel-name", "netlab"]
    if os.path.exists(os.path.join(nbdir, "sanitize.cfg")):
        argv += ["--sanitize-with", "notebooks/sanitize.cfg"]
    t = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    dt = time.perf_counter() - t
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
    results["workbook"] = {"seconds": dt, "notebooks": len(books), "exit": proc.returncode, "summary": tail}
    verdict = "meets" if dt < 60 and proc.returncode == 0 else "MISSES"
    return (f"{len(books)} notebooks, `{' '.join(argv[2:])}`: {dt:.1f} s wall, exit {proc.returncode} "
            f"({tail}); target < 60 s: {verdict}")


def machine() -> dict:
    import platform

    import pyroute2

    ip = subprocess.run(["ip", "-V"], capture_output=True, text=True).stdout.strip()
    ipt = subprocess.run(["iptables", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "pyroute2": pyroute2.__version__, "iproute2": ip.split(",")[1].strip() if "," in ip else ip,
            "iptables": ipt}


if __name__ == "__main__":
    main()
