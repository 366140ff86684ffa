"""What the VM backend costs: boot to ready, a command in the guest, memory.

    python benchmarks/vm.py [--boots 3] [--rounds 20] [--cells [--starts 3]] [--json out.json]

Run it as an ordinary user (the VM needs no privilege) where the VM's pieces are installed
(``scripts/setup.sh --vm`` or ``netlab-magic vm prepare``). Each boot is a fresh QEMU
(``netlab_magic.vm.machine.Machine``); per boot: the time from QEMU's start to the agent's
hello (its lab made), then, interleaved round by round, calls to the guest's lab as the magics
make them: a bare call (``lab.require("host")``: the port and pickling), ``lab.run`` of
``true`` on the host and in ns1, of ``ip -br link`` and ``iptables -S`` (after a first call
that loads nf_tables, timed apart), and ``lab.snapshot()`` (what ``%netlab status`` reads);
then QEMU's resident memory and what the guest itself uses. The guest has no network device:
nothing leaves it.

``--cells`` also measures what a learner meets, the two backends side by side: a real "Python 3
(netlab)" kernel per backend (``NETLAB_BACKEND=kernel`` and ``=vm``: the VM booting from the
kernel's start), the same client and the same cells, interleaved: ``--starts`` starts of each (the
order alternating), timed from the kernel's start to the end of its first cell (``!uname -r``);
then, on Demo 1's topology, per cell (:data:`CELLS`): ``%netns ns1 true``, ``!true``, ``%docker
run -d --name web nginx`` and its ``%docker rm -f web``, ``%netlab trace`` of one ping, ``%netlab
status``; then the memory of each learner's whole process tree (kernel, keeper, lab, QEMU). The
load average is printed at the start and the end: this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from deploy import pss_kb  # this folder's (the script's: first on sys.path)
from netlab_magic.vm import image, machine, remote
from support.hub import process_tree  # tests/support, as deploy.py put it on sys.path

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


def cpu_s(pid: int) -> float:
    """The CPU time (user and system) a process has used so far: what a boot costs whatever the load."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        sample = {"ready_s": vm.ready_after, "cpu_to_ready_s": cpu_s(vm.proc.pid), "first_iptables_s": None,
                  "per_command_s": {k: [] for k in COMMANDS}}
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


#: The cells each backend runs, interleaved, after Demo 1's topology (:data:`SETUP`): what issue 22 asks
#: to compare. ``%docker rm -f web`` follows its ``run`` in the same round.
CELLS = {
    "%netns ns1 true": "%netns ns1 true",
    "!true": "!true",
    "%docker run -d --name web nginx": "%docker run -d --name web nginx",
    "%docker rm -f web": "%docker rm -f web",
    "a trace of one ping": "t = %netlab trace ns1 -- ping -c 1 -W 1 10.0.0.2",
    "%netlab status (a snapshot)": "%netlab status",
}
SETUP = ("!ip netns add ns1\n!ip link add veth1 type veth peer name veth2\n!ip link set veth1 netns ns1\n"
         "!ip addr add 10.0.0.2/24 dev veth2 && ip link set dev veth2 up\n"
         "%netns ns1 ip addr add 10.0.0.1/24 dev veth1 && ip link set dev veth1 up && ip link set dev lo up")
BACKENDS = ("kernel", "vm")
#: With ``--before DIR``: a VM kernel that runs the package found in DIR (a checkout of an earlier
#: commit, first on its ``PYTHONPATH``), started in turn with the others: the first cell before and after.
BEFORE = "vm, before"


class NetlabKernel:
    """A "Python 3 (netlab)" kernel with ``NETLAB_BACKEND`` forced, its cells timed by the client."""

    def __init__(self, backend: str, package_dir: str | None = None) -> None:
        import tempfile

        from jupyter_client.manager import KernelManager

        self.backend = backend
        env = {**os.environ, "NETLAB_BACKEND": "vm" if backend == BEFORE else backend}
        if package_dir:
            env["PYTHONPATH"] = package_dir
        self.began = time.perf_counter()
        self.manager = KernelManager(kernel_name="netlab")
        # not this checkout's folder: the kernel's sys.path starts with its working directory
        self.manager.start_kernel(env=env, cwd=tempfile.gettempdir())
        self.client = self.manager.client()
        self.client.start_channels()

    def cell(self, code: str) -> float:
        began = time.perf_counter()
        reply = self.client.execute_interactive(code, timeout=180, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"{self.backend}: {code!r} failed: {reply['content']}")
        return time.perf_counter() - began

    def first_cell(self) -> float:
        """From the kernel's start to the end of its first cell (``!uname -r``)."""
        self.client.wait_for_ready(timeout=120)
        self.cell("!uname -r")
        return time.perf_counter() - self.began

    def memory_mib(self) -> dict:
        """What this learner's kernel holds: every process from its launcher down (the kernel, the
        keeper, the lab's processes, QEMU): resident and proportional (PSS) sums; QEMU's own RSS."""
        tree = process_tree(self.manager.provisioner.process.pid)
        return {"rss": sum(rss_mib(p) for p in tree), "pss": sum(pss_kb(p) for p in tree) / 1024,
                "qemu_rss": sum(rss_mib(p) for p, (*_, cmd) in tree.items() if cmd.startswith(machine.QEMU))}

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def namespaces_refused() -> str:
    """Why this machine refuses the in-kernel lab its namespaces (a container under Docker's default
    seccomp profile), tried in a child process; "" where they work."""
    command = ["unshare", "-n", "true"] if os.getuid() == 0 else ["unshare", "-Urn", "true"]
    r = subprocess.run(command, capture_output=True, text=True)
    return "" if r.returncode == 0 else (r.stderr.strip().splitlines() or [f"{' '.join(command)} failed"])[-1]


def both_backends(starts: int, rounds: int, before: str | None = None,
                  backends: tuple[str, ...] = BACKENDS) -> dict:
    """Each backend through its own netlab kernel, the same client and cells, interleaved: ``starts``
    kernel starts each (the order alternating), then ``rounds`` rounds of :data:`CELLS` on the last pair.
    With ``before`` (a directory holding an earlier ``netlab_magic``), its VM kernel starts in turn too.
    ``backends``: the VM alone where the in-kernel lab cannot start (a container under Docker's default seccomp)."""
    sample: dict = {b: {"first_cell_s": [], "per_cell_s": {c: [] for c in CELLS}} for b in backends}
    started = backends + ((BEFORE,) if before else ())
    if before:
        sample[BEFORE] = {"first_cell_s": []}
    kernels: dict[str, NetlabKernel] = {}
    try:
        for i in range(starts):
            for backend in (started if i % 2 == 0 else started[::-1]):
                kernels[backend] = kernel = NetlabKernel(backend, before if backend == BEFORE else None)
                sample[backend]["first_cell_s"].append(kernel.first_cell())
                if backend == BEFORE:
                    kernels.pop(backend).close()
            if i < starts - 1:
                for kernel in kernels.values():
                    kernel.close()
        for kernel in kernels.values():
            kernel.cell(SETUP)
        for r in range(rounds):
            for name, code in CELLS.items():
                for backend in (backends if r % 2 == 0 else backends[::-1]):
                    sample[backend]["per_cell_s"][name].append(kernels[backend].cell(code))
        for backend, kernel in kernels.items():
            sample[backend]["memory_mib"] = kernel.memory_mib()
    finally:
        for kernel in kernels.values():
            kernel.close()
    return sample


def report_both(sample: dict) -> list[str]:
    med = statistics.median
    present = [b for b in BACKENDS if b in sample]
    titles = {"kernel": "in-kernel lab", "vm": "VM"}
    rows = [f"  {'':<34} " + " ".join(f"{titles[b]:>14}" for b in present)]
    first = {b: sample[b]["first_cell_s"] for b in present}
    rows.append(f"  {'kernel start to first cell end':<34} " + " ".join(f"{med(first[b]):>12.2f} s" for b in present)
                + "   (each: " + "; ".join(f"{b} " + ", ".join(f"{v:.2f}" for v in first[b]) for b in present) + ")")
    for name in CELLS:
        rows.append(f"  {'cell ' + name:<34} " + " ".join(f"{med(sample[b]['per_cell_s'][name]) * 1000:>11.1f} ms"
                                                          for b in present))
    for key, label in (("pss", "memory per learner (PSS)"), ("rss", "  (RSS, shared pages counted twice)"),
                       ("qemu_rss", "  of which QEMU resident")):
        rows.append(f"  {label:<34} " + " ".join(f"{sample[b]['memory_mib'][key]:>10.0f} MiB" for b in present))
    if BEFORE in sample:
        before = sample[BEFORE]["first_cell_s"]
        rows.insert(2, f"  {'  the same, --before (VM)':<34} {'':>14} {med(before):>12.2f} s"
                    "   (each: " + ", ".join(f"{v:.2f}" for v in before) + ")")
    vm = sample["vm"]
    cells = {name: med(v) for name, v in vm["per_cell_s"].items()}
    slow = [f"{name} {t * 1000:.0f} ms" for name, t in cells.items() if t > 0.2]
    rows.append("  issue 22's targets, in the VM: first cell <= 5 s: "
                + ("met" if med(vm["first_cell_s"]) <= 5 else f"not met ({med(vm['first_cell_s']):.2f} s)")
                + "; typical cells <= 200 ms: " + ("met" if not slow else "not met for " + ", ".join(slow))
                + "; <= 400 MiB per learner: "
                + ("met" if vm["memory_mib"]["pss"] <= 400 else f"not met ({vm['memory_mib']['pss']:.0f} MiB)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boots", type=int, default=3, help="fresh VMs for the guest's own numbers (0: none)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cells", action="store_true",
                        help="also both backends side by side, each through its own netlab kernel")
    parser.add_argument("--starts", type=int, default=3, help="kernel starts per backend with --cells")
    parser.add_argument("--before", metavar="DIR", help="with --cells, also start a VM kernel on the netlab_magic "
                        "in DIR (e.g. git archive OLD_COMMIT netlab_magic | tar -x -C DIR), in turn: before and after")
    parser.add_argument("--json", help="also write the raw samples here")
    args = parser.parse_args()
    if image.find() is None:
        raise SystemExit("the VM's image is not prepared: netlab-magic vm prepare")
    print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), f"as uid {os.getuid()}, load average "
          + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    med = statistics.median
    result: dict = {}
    if args.boots:
        samples = [one_boot(args.rounds) for _ in range(args.boots)]
        print(f"VM backend, {args.boots} boots, {args.rounds} rounds each (medians)")
        print(f"  ready after QEMU starts: {med(s['ready_s'] for s in samples):.2f} s "
              "(each: " + ", ".join(f"{s['ready_s']:.2f}" for s in samples) + "); QEMU's CPU time until then "
              f"{med(s['cpu_to_ready_s'] for s in samples):.2f} s")
        first = med(s["first_iptables_s"] for s in samples)
        print(f"  first iptables -S (nf_tables modules load): {first * 1000:.0f} ms")
        for name in COMMANDS:
            values = [v for s in samples for v in s["per_command_s"][name]]
            print(f"  {name:<24} {med(values) * 1000:6.1f} ms")
        print(f"  QEMU resident: {med(s['qemu_rss_mib'] for s in samples):.0f} MiB; "
              f"used inside the guest: {med(s['guest_used_mib'] for s in samples):.0f} MiB")
        result["boots"] = samples
    if args.cells:
        refused = namespaces_refused()
        if refused:
            print(f"the in-kernel lab cannot start here ({refused}): the VM's kernel alone")
        both = both_backends(args.starts, args.rounds, args.before, ("vm",) if refused else BACKENDS)
        print(f"{'The VM' if refused else 'Both backends'}, each through a netlab kernel: {args.starts} starts each, "
              f"{args.rounds} rounds of cells, interleaved (medians)")
        print("\n".join(report_both(both)))
        result["backends"] = both
    print("load average at the end " + " ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
