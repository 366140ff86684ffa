"""What the VM backend costs: boot to ready, a command in the guest, memory.

    python benchmarks/vm.py [--boots 3] [--rounds 20] [--cells] [--json out.json]

Run it as an ordinary user (the VM needs no privilege) where the VM's pieces are installed
(``scripts/setup.sh --vm`` or ``netlab-magic vm prepare``). Each boot is a fresh QEMU
(``netlab_magic.vm.machine.Machine``); per boot: the time from QEMU's start to the agent's
hello (its lab made), then, interleaved round by round, calls to the guest's lab as the magics
make them: a bare call (``lab.require("host")``: the port and pickling), ``lab.run`` of
``true`` on the host and in ns1, of ``ip -br link`` and ``iptables -S`` (after a first call
that loads nf_tables, timed apart), and ``lab.snapshot()`` (what ``%netlab status`` reads);
then QEMU's resident memory and what the guest itself uses. The guest has no network device:
nothing leaves it.

``--cells`` also measures what a learner meets, through a real "Python 3 (netlab)" kernel with
``NETLAB_BACKEND=vm`` (the VM booting from the kernel's start): the kernel's start to the end of
its first cell (``!uname -r``), then per cell, interleaved: ``%netns ns1 true``, ``%netns host
true`` and ``!true``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from netlab_magic.vm import image, machine, remote

COMMANDS = {  # what each does through the guest's lab: (method, args)
    "a call (require host)": ("require", ("host",)),
    "run host true": ("run", ("host", ["true"])),
    "run ns1 true": ("run", ("ns1", ["true"])),
    "run host ip -br link": ("run", ("host", ["ip", "-br", "link"])),
    "run host iptables -S": ("run", ("host", ["iptables", "-S"])),
    "snapshot (2 namespaces)": ("snapshot", ()),
}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(agent, method: str, args: tuple) -> float:  # noqa: ANN001
    start = time.perf_counter()
    result = agent.call(remote.LAB, method, args)
    elapsed = time.perf_counter() - start
    if getattr(result, "returncode", 0):
        raise SystemExit(f"{method}{args} failed in the guest: {result}")
    return elapsed


def one_boot(rounds: int) -> dict:
    vm = machine.Machine(image.find())
    vm.start()
    try:
        agent = vm.wait_ready()
        sample = {"ready_s": vm.ready_after, "first_iptables_s": None, "per_command_s": {k: [] for k in COMMANDS}}
        timed(agent, "add_netns", ("ns1",))
        sample["first_iptables_s"] = timed(agent, "run", ("host", ["iptables", "-S"]))
        for _ in range(rounds):
            for name, (method, args) in COMMANDS.items():
                sample["per_command_s"][name].append(timed(agent, method, args))
        meminfo = agent.call(remote.LAB, "run", ("host", "awk '/MemTotal|MemAvailable/ {print $2}' /proc/meminfo"))
        total, available = (int(x) for x in meminfo.stdout.split())
        sample["guest_used_mib"] = (total - available) / 1024
        sample["qemu_rss_mib"] = rss_mib(vm.proc.pid)
        return sample
    finally:
        vm.stop()


def through_a_kernel(rounds: int) -> dict:
    import os

    from jupyter_client.manager import KernelManager

    os.environ["NETLAB_BACKEND"] = "vm"
    start = time.perf_counter()
    km = KernelManager(kernel_name="netlab")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()

    def cell(code: str) -> float:
        began = time.perf_counter()
        reply = kc.execute_interactive(code, timeout=120, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"{code!r} failed: {reply['content']}")
        return time.perf_counter() - began

    try:
        kc.wait_for_ready(timeout=60)
        cell("!uname -r")
        sample = {"first_cell_s": time.perf_counter() - start, "per_cell_s": {}}
        cell("!ip netns add ns1")
        cells = ("%netns ns1 true", "%netns host true", "!true")
        sample["per_cell_s"] = {c: [] for c in cells}
        for _ in range(rounds):
            for c in cells:
                sample["per_cell_s"][c].append(cell(c))
        return sample
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boots", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cells", action="store_true", help="also the cells of a netlab kernel in the VM")
    parser.add_argument("--json", help="also write the raw samples here")
    args = parser.parse_args()
    if image.find() is None:
        raise SystemExit("the VM's image is not prepared: netlab-magic vm prepare")
    samples = [one_boot(args.rounds) for _ in range(args.boots)]
    med = statistics.median
    print(f"VM backend, {args.boots} boots, {args.rounds} rounds each (medians)")
    print(f"  ready after QEMU starts: {med(s['ready_s'] for s in samples):.2f} s "
          "(each: " + ", ".join(f"{s['ready_s']:.2f}" for s in samples) + ")")
    print(f"  first iptables -S (nf_tables modules load): {med(s['first_iptables_s'] for s in samples) * 1000:.0f} ms")
    for name in COMMANDS:
        values = [v for s in samples for v in s["per_command_s"][name]]
        print(f"  {name:<24} {med(values) * 1000:6.1f} ms")
    print(f"  QEMU resident: {med(s['qemu_rss_mib'] for s in samples):.0f} MiB; "
          f"used inside the guest: {med(s['guest_used_mib'] for s in samples):.0f} MiB")
    result = {"boots": samples}
    if args.cells:
        kernel = through_a_kernel(args.rounds)
        print(f"  a netlab kernel in the VM: its start to its first cell's end {kernel['first_cell_s']:.2f} s")
        for name, values in kernel["per_cell_s"].items():
            print(f"  cell {name:<22} {med(values) * 1000:6.1f} ms")
        result["kernel"] = kernel
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
