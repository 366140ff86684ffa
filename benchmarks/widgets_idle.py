"""What the live widgets cost a kernel that sits idle: CPU share, reads per minute.

    python benchmarks/widgets_idle.py [--n 100] [--seconds 30] [--json widgets_idle.json]

Starts a real netlab kernel (the "Python 3 (netlab)" launcher: as root an ordinary kernel with
the extension, otherwise rootless in its user namespace), builds an N-namespace star in its
lab (``build_star``), then measures the kernel process's CPU (its threads and the
``iptables-save`` it runs: ``/proc/PID/stat`` utime+stime+cutime+cstime, read from outside)
over ``--seconds`` of idle kernel, in turn:

1. the lab alone (the kernel's own idle cost: the baseline);
2. ``topology()`` and ``counters("host")`` made, no view shown (a notebook nobody looks at,
   or an nbclient run): nothing should be read;
3. both widgets shown: each has a view that says it is there every 30 s, as the browser's
   does (``{"netlab": "view"}`` custom messages, sent here as silent executions: no cell runs);
4. both shown, the 5 s right after a cell (reads every interval: the picture follows the cell).

Idle starts 8 s after the last cell (the poller reads at the cells' pace for 5 s after one).
Everything happens inside the kernel's lab; nothing touches the machine's network.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")


def kernel_cpu(pid: int) -> float:
    """Seconds of CPU used by the process, its threads and its waited-for children."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(fields[k]) for k in (11, 12, 13, 14)) / TICK  # utime stime cutime cstime


class Kernel:
    def __init__(self) -> None:
        from jupyter_client.manager import KernelManager

        base = tempfile.mkdtemp(prefix="netlab-bench-kernels-")
        spec = os.path.join(base, "kernels", "netlab-bench")
        os.makedirs(spec)
        pythonpath = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
        with open(os.path.join(spec, "kernel.json"), "w") as f:
            json.dump({"argv": [sys.executable, "-m", "netlab_magic.jupyter.kernel", "-f", "{connection_file}"],
                       "display_name": "netlab-bench", "language": "python",
                       "env": {"PYTHONPATH": pythonpath}}, f)
        os.environ["JUPYTER_PATH"] = base + os.pathsep + os.environ.get("JUPYTER_PATH", "")
        self.km = KernelManager(kernel_name="netlab-bench")
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.pid = self.km.provisioner.process.pid

    def execute(self, code: str, silent: bool = False, timeout: float = 300) -> dict:
        """Run ``code`` (a cell, or ``silent``: no cell events, as a front end's own requests)."""
        msg_id = self.kc.execute(code, silent=silent, store_history=not silent,
                                 user_expressions={"v": "__import__('json').dumps(_bench)"} if "_bench" in code else {})
        while True:
            reply = self.kc.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"{code!r} failed: {content.get('ename')}: {content.get('evalue')}")
        v = content.get("user_expressions", {}).get("v")
        return json.loads(ast.literal_eval(v["data"]["text/plain"])) if v else {}

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


VIEWS = ("for _w in (t, c): _w._handle_custom_msg({'netlab': 'view', 'id': 'bench-' + type(_w).__name__, "
         "'alive': True}, [])")
READS = "_bench = {'topology': t.refreshes, 'counters': c.refreshes}"


def measure(k: Kernel, seconds: float, views: bool) -> dict:
    """CPU share of the kernel over ``seconds``, a view heartbeat every 30 s if ``views``."""
    reads0 = k.execute(READS, silent=True) if views is not None else {}
    c0, t0 = kernel_cpu(k.pid), time.monotonic()
    while (left := seconds - (time.monotonic() - t0)) > 0:
        time.sleep(min(30.0, left))
        if views and seconds - (time.monotonic() - t0) > 0:
            k.execute(VIEWS, silent=True)  # what the browser's views say every 30 s
    c1, t1 = kernel_cpu(k.pid), time.monotonic()
    out = {"cpu_share": (c1 - c0) / (t1 - t0), "seconds": t1 - t0}
    if views is not None:
        reads1 = k.execute(READS, silent=True)
        out["reads_per_min"] = {w: (reads1[w] - reads0[w]) * 60 / (t1 - t0) for w in reads1}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="namespaces in the lab (default 100)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each idle measurement")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    k = Kernel()
    results: dict = {"n": args.n}
    try:
        k.execute("from netlab_magic import Lab\nfrom netlab_magic.build import build_star\n"
                  f"build_star(Lab.current(), {args.n})")
        costs = k.execute("import time\nlab = Lab.current()\n"
                          "t0 = time.perf_counter(); [lab.snapshot() for _ in range(10)]\n"
                          "t1 = time.perf_counter(); [lab.run('host', ['iptables-save', '-c', '-t', 'filter']) for _ in range(10)]\n"
                          "_bench = {'snapshot_ms': (t1 - t0) * 100, 'iptables_save_ms': (time.perf_counter() - t1) * 100}")
        results.update(costs)
        time.sleep(8)
        results["lab alone"] = measure(k, args.seconds, views=None)
        k.execute("from netlab_magic.widgets import topology, counters\nt = topology()\nc = counters('host')")
        time.sleep(8)
        results["widgets, no view"] = measure(k, args.seconds, views=False)
        k.execute(VIEWS, silent=True)
        time.sleep(8)
        results["widgets shown, idle"] = measure(k, args.seconds, views=True)
        k.execute("x = 1")  # a cell: the poller follows it for 5 s
        results["widgets shown, 5 s after a cell"] = measure(k, 5.0, views=True)
        k.execute("t.close(); c.close()")
    finally:
        k.shutdown()

    print(f"netlab widgets, idle kernel, {args.n}-namespace star: "
          f"lab.snapshot() {results['snapshot_ms']:.1f} ms, iptables-save {results['iptables_save_ms']:.1f} ms")
    print(f"{'scenario':34} {'CPU (% of a core)':>18} {'topology reads/min':>19} {'counters reads/min':>19}")
    base = results["lab alone"]["cpu_share"]
    for name in ("lab alone", "widgets, no view", "widgets shown, idle", "widgets shown, 5 s after a cell"):
        r = results[name]
        rpm = r.get("reads_per_min", {})
        extra = f"  (+{(r['cpu_share'] - base) * 100:.2f} over the lab alone)" if name != "lab alone" else ""
        print(f"{name:34} {r['cpu_share'] * 100:17.2f}% {rpm.get('topology', 0):19.1f} "
              f"{rpm.get('counters', 0):19.1f}{extra}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
