"""The IPython magics: ``%%netns``, ``%netns`` and ``%netlab``. Thin: parse, call the lab, display.

``%netns``'s arguments go through IPython's ``magic_arguments``, so ``%netns?`` prints the same
help the parser uses; ``%netlab``'s subcommands are a registry (:data:`NETLAB`, see
:mod:`.commands`, as ``%docker``'s), whose entries give its parsing, ``%netlab --help`` and
``%netlab CMD --help``. A bad argument is a one-line ``UsageError``, and so is any
:class:`~netlab_magic.errors.NetlabError`: one line, no traceback.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from .. import backend
from ..backend import LabBackend
from ..display import Table, status_tables
from ..errors import NetlabError
from ..lab.lab import Lab
from ..linux import process
from ..linux.jobs import Job
from ..packets.capture import capture_for, get_capture, start_capture, stop_capture
from ..packets.conntrack import conntrack_table
from ..packets.trace import run_trace
from . import doctor
from .arguments import FLAG_OPTIONS, VALUE_OPTIONS, parse, split_command
from .commands import BOOL, VALUE, Command, Flag, Parsed, Registry


def current_lab() -> LabBackend:
    """The lab the magics work on, in-kernel or VM (:mod:`.backend`); a one-line ``UsageError`` if none can be made."""
    try:
        return backend.current()
    except NetlabError as err:
        raise UsageError(str(err)) from None


def kernel_lab(what: str = "this magic") -> Lab:
    """The in-kernel lab, for what only it does (Python cells run by this kernel's interpreter).

    In the VM backend, one line saying so.
    """
    lab = current_lab()
    if not isinstance(lab, Lab):
        raise UsageError(f"{what} does not run in the VM backend (see %netlab doctor)")
    return lab


def one_line_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """A magic whose errors are one line: a NetlabError as a UsageError, an interrupt as ``KeyboardInterrupt``."""
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except NetlabError as err:
            raise UsageError(str(err)) from err
        except process.Interrupted:
            raise
        except KeyboardInterrupt:
            raise process.Interrupted() from None
    return wrapper


@magics_class
class NetlabMagics(Magics):
    """``%%netns`` / ``%netns`` run code inside a namespace; ``%netlab`` manages the lab."""

    @property
    def lab(self) -> LabBackend:
        return current_lab()

    @magic_arguments()
    @argument("netns", help="the namespace to run in; 'host' is the lab's host")
    @argument("--python", action="store_true",
              help="run the cell as Python in this kernel, with its sockets opened inside NETNS (in the VM backend: "
                   "in the guest's Python, with variables of its own)")
    @argument("--bg", action="store_true",
              help="start in the background and return at once (see %%netlab jobs/output/stop)")
    @argument("-n", "--name", help="name of the background job (default: job1, job2, ...)")
    @argument("-t", "--timeout", type=float, help="stop the command after this many seconds")
    @argument("--check", action="store_true", help="make a non-zero exit status an error")
    @no_var_expand  # the command reaches bash as typed: `$i` is bash's, not a Python variable
    @line_cell_magic
    @one_line_errors
    def netns(self, line: str, cell: str | None = None) -> None:
        """Run a bash cell (or one line) inside a network namespace of the lab.

        ``%%netns ns1`` runs the cell with bash inside ns1, output streaming live;
        ``%netns ns1 ip addr`` does the same for one line. The commands are the talk's,
        verbatim: it is as if you had typed ``ip netns exec ns1 bash``.
        """
        if cell is None:
            head, command = split_command(line, VALUE_OPTIONS, FLAG_OPTIONS)
            if not command and not _wants_help(head):
                raise UsageError("%netns needs a command after the namespace, e.g. %netns ns1 ip addr; "
                                 "or use %%netns as a cell magic")
        else:
            head, command = line, cell
        if _wants_help(head):
            print(self.netns.__doc__)
            return
        args = parse(self.netns, head, "%netns")
        lab = self.lab  # a missing namespace is a one-line error from each path below
        if args.python:
            if args.bg or args.timeout is not None:
                raise UsageError("--python runs in the kernel itself: it takes neither --bg nor --timeout")
            if lab.backend == backend.VM:  # a semantic of its own: the guest's interpreter, its own variables
                from ..vm.server import run_python

                return lab.call(run_python, args.netns, command)  # the last line's value: this cell's Out
            with kernel_lab("%%netns --python").entered(args.netns):
                self.shell.run_cell(command, store_history=False)
            return
        if args.bg:
            job = lab.start_job(args.netns, command, name=args.name)
            print(f"[{job.name}] started in {job.netns}: {_first_line(command)}")
            return
        if args.name:
            raise UsageError("--name names a background job: add --bg")
        try:
            code = lab.run_cell(args.netns, command, timeout=args.timeout)
        except process.Timeout as err:
            raise UsageError(f"%%netns {args.netns}: {err}") from None
        except process.Interrupted:
            raise process.Interrupted(f"stopped the command in {args.netns}") from None
        if code:
            message = process.describe_exit(code)
            if args.check:
                raise UsageError(f"%%netns {args.netns}: the command failed ({message})")
            print(f"({message})", file=sys.stderr)

    @no_var_expand
    @line_magic
    @one_line_errors
    def netlab(self, line: str) -> Any:
        """Manage the lab: ``%netlab status | reset | doctor | jobs | output J | stop J | send J TEXT | wait J``;
        follow packets: ``%netlab trace NETNS -- COMMAND | capture IFACE | conntrack NETNS``.
        ``%netlab --help`` lists them, ``%netlab CMD --help`` says more about one."""
        action, _, rest = line.strip().partition(" ")
        if action in ("", "-h", "--help", "help"):
            print(NETLAB.usage())
            return None
        command, _ = NETLAB.find([action])
        if _wants_help(rest.split(" -- ")[0]):
            print(NETLAB.help(command))
            return None
        return command.handler(self, NETLAB.parse_line(command, rest))


# -- the lab and its jobs: %netlab status | reset | doctor | jobs | output | stop | send | wait --------

def _no_argument(name: str, args: Parsed) -> None:
    if args["args"]:
        raise UsageError(f"%netlab {name} takes no argument (got {' '.join(args['args'])!r})")


def _job(name: str, args: Parsed) -> Job:
    """The job a subcommand names (one, which must exist)."""
    names = args["args"]
    if not names:
        raise UsageError(f"%netlab {name} needs a job name (see %netlab jobs)")
    if len(names) > 1 and name != "send":
        raise UsageError(f"%netlab {name} takes one job name (got {' '.join(names)!r})")
    return current_lab().jobs.get(names[0])


def _status(magics: "NetlabMagics", args: Parsed) -> Any:
    _no_argument("status", args)
    lab = current_lab()
    return status_tables(lab.snapshot(), lab.mode)


def _reset(magics: "NetlabMagics", args: Parsed) -> None:
    _no_argument("reset", args)
    magics.lab.reset()
    print("lab reset: every namespace, interface, rule and job is gone; the host is fresh")


def _doctor(magics: "NetlabMagics", args: Parsed) -> Any:
    _no_argument("doctor", args)
    return doctor.report(doctor.run_checks(_lab_or_none()))  # works without a lab: it says why there is none


def _jobs(magics: "NetlabMagics", args: Parsed) -> Table:
    _no_argument("jobs", args)
    return Table("netlab jobs", ["job", "namespace", "status", "command"],
                 [[j.name, j.netns, j.status, _first_line(j.command)] for j in current_lab().jobs.all()],
                 empty="(no jobs)")


def _output(magics: "NetlabMagics", args: Parsed) -> None:
    job = _job("output", args)
    if args.until is None:
        print(job.output(), end="")
        return
    printed, found = job.output_until(args.until, args.timeout)
    print(printed, end="")
    if not found:
        raise UsageError(f"job {job.name!r} has not printed {args.until!r} "
                         f"({'it ended' if not job.running else f'in {args.timeout:g} s'}); what it printed is above")


def _stop(magics: "NetlabMagics", args: Parsed) -> None:
    job = _job("stop", args)
    job.stop()
    print(f"[{job.name}] stopped ({job.status})")


def _send(magics: "NetlabMagics", args: Parsed) -> None:
    _job("send", args).send(" ".join(args["args"][1:]))


def _wait(magics: "NetlabMagics", args: Parsed) -> None:
    job = _job("wait", args)
    if not job.wait(args.timeout):
        raise UsageError(f"job {job.name!r} still running after {args.timeout:g} s")
    print(f"[{job.name}] {job.status}")


# -- following packets: %netlab trace | capture | conntrack ----------------------------------------

def _trace(magics: "NetlabMagics", args: Parsed) -> Any:
    if not args["args"]:
        raise UsageError("%netlab trace needs a namespace: %netlab trace NETNS -- COMMAND")
    netns, command = args["args"][0], args["command"]
    if not command:
        raise UsageError("%netlab trace needs a command: %netlab trace NETNS -- COMMAND (e.g. -- ping -c 1 10.0.0.3)")
    lab = current_lab()
    try:
        trace = lab.call(run_trace, netns, command, args.match, timeout=args.timeout, stream=True)
    except process.Interrupted:
        raise process.Interrupted(f"stopped the command in {netns}; the trace is off") from None
    sys.stdout.flush()
    if trace.timed_out:
        print(f"(stopped after the {args.timeout:g} s timeout; what was traced until then:)", file=sys.stderr)
    elif trace.returncode:
        print(f"({process.describe_exit(trace.returncode)})", file=sys.stderr)
    sys.stderr.flush()
    if args.widget:
        return trace.widget()
    if args.draw:
        from IPython.display import display

        display(trace)
        return trace.draw()
    return trace


def _capture(magics: "NetlabMagics", args: Parsed) -> Any:
    if len(args["args"]) != 1:
        raise UsageError("%netlab capture takes one interface: %netlab capture IFACE [--bg | --show | --stop]")
    iface = args["args"][0]
    if sum(bool(x) for x in (args.bg, args.show, args.stop)) > 1:
        raise UsageError("%netlab capture: choose one of --bg, --show and --stop")
    lab = current_lab()  # each step runs where the lab lives; from the VM its packets come back with it
    if args.bg:
        cap = lab.call(start_capture, iface, args.netns, count=args.count, match=args.match)
        print(f"[{cap.name}] capturing on {cap.ifname} in {cap.netns}: "
              f"%netlab capture {cap.ifname} --show shows the packets so far, --stop ends it")
        return None
    if args.show or args.stop or (args.pcap and not args.count):
        cap = lab.call(stop_capture if args.stop else get_capture, iface, args.netns)
    else:
        try:
            cap = lab.call(capture_for, iface, args.netns, count=args.count or 10, timeout=args.timeout,
                           match=args.match)
        except KeyboardInterrupt:
            raise process.Interrupted(f"stopped the capture on {iface}") from None
    if args.pcap:
        cap.save(args.pcap)  # on this side: the kernel's file, wherever the lab runs
        print(f"saved {len(cap.frames())} packets to {args.pcap}")
    return cap.table(args.match, ipv6=bool(args.ipv6)) if args.match or args.ipv6 else cap


def _conntrack(magics: "NetlabMagics", args: Parsed) -> Any:
    if len(args["args"]) != 1:
        raise UsageError("%netlab conntrack takes one namespace: %netlab conntrack NETNS [-p PROTOCOL]")
    return current_lab().call(conntrack_table, args["args"][0], args.proto)


_MATCH = "in iptables words"
#: Every subcommand of %netlab: its flags, arguments, help and handler. Parsing, --help and the usage come from here.
NETLAB = Registry([
    Command("status", "", "The lab at a glance: namespaces, interfaces and their state, addresses, peers, "
            "bridges, routes", _status),
    Command("reset", "", "Destroy everything in the lab (namespaces, interfaces, rules, jobs); start fresh", _reset),
    Command("doctor", "", "Which backend and mode the lab runs in, and why; each tool and capability", _doctor),
    Command("jobs", "", "The background jobs", _jobs),
    Command("output", "JOB", "What a job printed", _output, (
        Flag(("--until",), "until", VALUE, "first wait until it has printed TEXT (a line that takes a moment "
             "to cross: from a client to a listener)", "TEXT"),
        Flag(("-t", "--timeout"), "timeout", VALUE, "with --until: give up after this many seconds (10)", "SECONDS",
             type=float, default=10.0))),
    Command("stop", "JOB", "Stop a job", _stop),
    Command("send", "JOB TEXT...", "Type a line into a job, as in its terminal", _send, stop_at=1),
    Command("wait", "JOB", "Wait for a job to end", _wait, (
        Flag(("-t", "--timeout"), "timeout", VALUE, "give up after this many seconds (10)", "SECONDS",
             type=float, default=10.0),)),
    Command("trace", "NETNS -- COMMAND", "Run a command in a namespace and follow its packets through every "
            "namespace of the lab", _trace, (
                Flag(("-m", "--match"), "match", VALUE, "show only these packets (and their connections), "
                     f'{_MATCH}: "-p tcp --dport 8888", "-s 10.0.0.1", "-o bridge0" ...', "MATCH"),
                Flag(("-t", "--timeout"), "timeout", VALUE, "stop the command after this many seconds (what was "
                     "traced is shown)", "SECONDS", type=float),
                Flag(("--draw",), "draw", BOOL, "also draw each packet's path on the packet-flow picture"),
                Flag(("--widget",), "widget", BOOL, "show the path as a live widget to step through")),
            stop_at=1, shell_command=True, details="""\
  %netlab trace ns1 -- ping -c 1 10.0.0.3
  %netlab trace host --match "-p tcp --dport 8888" -- curl -s localhost:8888

One table per packet: a line per netfilter hook, chain and rule it met (namespace, hook,
table:chain, the rule as iptables -S prints it or the policy, verdict), as the kernel's
netfilter trace reported them. A dropped packet ends at the rule or policy that dropped it.
`t = %netlab trace ...` keeps the Trace: t.hops, t.packets, t.draw(), t.widget()."""),
    Command("capture", "IFACE", "The packets on one interface of the lab, tcpdump-like, as a table", _capture, (
        Flag(("-n", "--netns"), "netns", VALUE, "the namespace of IFACE, where several have an interface of "
             "that name", "NETNS"),
        Flag(("--bg",), "bg", BOOL, "capture in the background (a job of the lab) until --stop or a reset"),
        Flag(("--show",), "show", BOOL, "the packets captured so far"),
        Flag(("--stop",), "stop", BOOL, "stop the background capture and show its packets"),
        Flag(("-c", "--count"), "count", VALUE, "stop after this many packets (in the foreground: 10)", "COUNT",
             type=int),
        Flag(("-t", "--timeout"), "timeout", VALUE, "in the foreground: stop after this many seconds (5)", "SECONDS",
             type=float, default=5.0),
        Flag(("-m", "--match"), "match", VALUE, f'show only these IPv4 packets, {_MATCH}: "-p icmp", "-s 10.0.0.1"',
             "MATCH"),
        Flag(("--pcap",), "pcap", VALUE, "also save the packets to FILE (pcap, for tcpdump -r or Wireshark)", "FILE"),
        Flag(("--ipv6",), "ipv6", BOOL, "show IPv6 frames too (the kernel's link-local chatter)")), details="""\
  %netlab capture veth2 --bg          # start capturing in veth2's namespace
  %netlab capture veth2 --show        # the packets so far
  %netlab capture veth2 --stop --pcap veth2.pcap
  %netlab capture veth2 -c 4          # in the foreground: 4 packets or 5 seconds

tcpdump runs inside the interface's own namespace (rootless, a reader of the same packets
that writes the same pcap file); a background capture is a job of the lab, stopped by
--stop, %netlab stop capture-IFACE or a reset."""),
    Command("conntrack", "NETNS", "The connection-tracking table of a namespace (conntrack -L), as a table",
            _conntrack, (Flag(("-p", "--proto"), "proto", VALUE, "only this protocol's connections (tcp, udp, icmp)",
                              "PROTOCOL"),), details="""\
  %netlab conntrack host
  %netlab conntrack host -p tcp

One line per connection the kernel remembers: the original direction (the first packet),
the reply it expects back, what NAT did (a DNAT: the reply comes from elsewhere; a SNAT
or MASQUERADE: it goes elsewhere), TCP's state and the flags."""),
], title="The lab: its state, its jobs, and the packets that cross it.", magic="%netlab",
    unknown="%netlab: '{name}' is not a %netlab command (see %netlab --help)")


def _lab_or_none() -> LabBackend | None:
    try:
        return backend.current()
    except NetlabError:
        return None


def _wants_help(options: str) -> bool:
    return any(token in ("-h", "--help") for token in options.split())


def _first_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    return lines[0] + (" ..." if len(lines) > 1 else "")
