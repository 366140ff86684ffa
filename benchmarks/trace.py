"""What following a packet costs: a one-packet ping, traced and not.

    python benchmarks/trace.py [--quick] [--rounds 30] [--namespaces 2,30] [--json out.json]

Needs what the lab needs (root, or root in a user namespace: ``unshare -Ur python
benchmarks/trace.py``). Each lab size runs in a fresh child process with its own lab: the talk's
Demo 2 (ns1 and ns3 on bridge0, FORWARD policy DROP, the ACCEPT rule, br_netfilter on), plus
idle namespaces up to the size asked (each with a veth into the bridge: all of them are traced).
Interleaved, round by round:

* ``ping``       ``lab.run("ns3", "ping -c 1 -W 1 10.0.0.1")``: the ping itself;
* ``trace``      ``lab.trace("ns3", "ping -c 1 -W 1 10.0.0.1")``: the same ping, every namespace
                 traced (owner tables in, one socket for all, the reports read, rules named, tables out);
* ``xt-monitor`` the other way measured for the design: ``iptables -t raw -A PREROUTING/OUTPUT -j
                 TRACE`` and an ``xtables-monitor --trace`` per namespace, the ping, the monitors
                 stopped and the rules deleted (it also leaves an empty ``*raw`` table in
                 ``iptables-save``, and its reports come per namespace, in no common order).

The issue's bar: ``trace`` costs less than 300 ms over ``ping``. Everything happens inside the
lab's namespaces; nothing is sent to the machine's own network.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PING = "ping -c 1 -W 1 10.0.0.1"
BAR = 0.300


def build(lab, extra: int) -> None:  # noqa: ANN001
    lines = [
        "set -e", "iptables -P FORWARD DROP", "sysctl -qw net.bridge.bridge-nf-call-iptables=1",
        "ip link add bridge0 type bridge", "ip addr add 10.0.0.10/16 dev bridge0", "ip link set bridge0 up",
        "iptables -I FORWARD -o bridge0 -j ACCEPT",
    ]
    for name, inside, outside, address in [("ns1", "veth1", "veth2", "10.0.0.1"), ("ns3", "veth3", "veth4", "10.0.0.3")] + [
            (f"idle{i}", "eth0", f"vidle{i}", f"10.0.{1 + i // 250}.{1 + i % 250}") for i in range(extra)]:
        lines += [f"ip netns add {name}", f"ip link add {outside} type veth peer name {inside} netns {name}",
                  f"ip link set {outside} master bridge0", f"ip link set {outside} up",
                  f"ip -n {name} addr add {address}/16 dev {inside}", f"ip -n {name} link set {inside} up",
                  f"ip -n {name} link set lo up"]
    result = lab.run("host", "\n".join(lines))
    if result.returncode:
        raise SystemExit(result.stderr)
    time.sleep(1.5)  # bridge ports forwarding
    if lab.run("ns3", PING).returncode:
        raise SystemExit("the ping of Demo 2 does not pass")


def xt_monitor(lab) -> None:  # noqa: ANN001
    namespaces = ["host", *lab.list_netns()]
    monitors = []
    for ns in namespaces:
        lab.run(ns, "iptables -t raw -A PREROUTING -j TRACE && iptables -t raw -A OUTPUT -j TRACE", check=True)
        monitors.append(lab.popen(ns, ["xtables-monitor", "--trace"]))
    time.sleep(0.05)  # xtables-monitor says nothing when it listens: give it a moment
    lab.run("ns3", PING)
    for proc in monitors:
        proc.terminate()
    for proc, ns in zip(monitors, namespaces):
        proc.communicate()
        lab.run(ns, "iptables -t raw -D PREROUTING -j TRACE && iptables -t raw -D OUTPUT -j TRACE", check=True)


def child(namespaces: int, rounds: int) -> dict:
    sys.path.insert(0, ROOT)
    from netlab_magic import Lab

    lab = Lab.current()
    build(lab, max(0, namespaces - 2))
    samples: dict[str, list[float]] = {"ping": [], "trace": [], "xt-monitor": []}
    hops = 0
    for _ in range(rounds):
        t = time.perf_counter()
        lab.run("ns3", PING)
        samples["ping"].append(time.perf_counter() - t)
        t = time.perf_counter()
        traced = lab.trace("ns3", PING)
        samples["trace"].append(time.perf_counter() - t)
        hops = len(traced.hops)
        assert [p.fate for p in traced.packets] == ["delivered in ns1", "delivered in ns3"], traced.summary()
        t = time.perf_counter()
        xt_monitor(lab)
        samples["xt-monitor"].append(time.perf_counter() - t)
    return {"namespaces": 1 + len(lab.list_netns()), "hops": hops, "samples": samples}


def run_child(namespaces: int, rounds: int) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", str(namespaces), str(rounds)],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, one small lab")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--namespaces", default="2,30", help="lab sizes (namespaces besides the host)")
    parser.add_argument("--json", help="write the raw samples here")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    sizes = [2] if args.quick else [int(n) for n in args.namespaces.split(",")]
    rounds = 5 if args.quick else args.rounds
    results = []
    print(f"{'lab':>12}  {'method':<11} {'median':>9} {'p90':>9}  {'over ping':>10}  {'x ping':>7}")
    for n in sizes:
        r = run_child(n, rounds)
        results.append(r)
        med = {k: statistics.median(v) for k, v in r["samples"].items()}
        for method, values in r["samples"].items():
            p90 = sorted(values)[int(0.9 * (len(values) - 1))]
            over = med[method] - med["ping"]
            print(f"{r['namespaces']:>3} netns ({r['hops']:>2})  {method:<11} {med[method] * 1000:>7.1f}ms "
                  f"{p90 * 1000:>7.1f}ms  {over * 1000:>+8.1f}ms  {med[method] / med['ping']:>6.1f}x")
        verdict = "meets" if med["trace"] - med["ping"] < BAR else "MISSES"
        print(f"{'':>12}  trace {verdict} the bar: < {BAR * 1000:.0f} ms over the ping itself")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
