"""The IPython magics: ``%%netns``, ``%netns`` and ``%netlab``. Thin: parse, call the lab, display.

Arguments go through IPython's ``magic_arguments``, so ``%netns?`` and ``%netlab?`` print
the same help the parser uses, and a bad argument is a one-line ``UsageError``. Any
:class:`~netlab_magic.errors.NetlabError` is shown the same way: one line, no traceback.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, kwds, magic_arguments

from ..display import Table, status_tables
from ..errors import NetlabError
from ..lab import backend
from ..lab.backend import LabBackend
from ..lab.lab import Lab
from ..linux import process
from ..packets.capture import capture_for, get_capture, start_capture
from ..packets.conntrack import conntrack_table
from ..packets.trace import run_trace
from . import doctor
from .arguments import parse, parse_words, split_command, split_netns_line


def current_lab() -> LabBackend:
    """The lab the magics work on, in-kernel or VM (:mod:`.backend`); a one-line ``UsageError`` if none can be made."""
    try:
        return backend.current()
    except NetlabError as err:
        raise UsageError(str(err)) from None


def kernel_lab(what: str = "this magic") -> Lab:
    """The in-kernel lab, for what only it does yet (jobs, ``%netlab status``, trace, ``%docker``, ...).

    In the VM backend, one line saying so.
    """
    lab = current_lab()
    if not isinstance(lab, Lab):
        raise UsageError(f"{what} does not run in the VM backend yet: there, !commands, %%netns, %netns, "
                         "%netlab reset and %netlab doctor do (see %netlab doctor)")
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
              help="run the cell as Python in this kernel, with its sockets opened inside NETNS")
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
            head, command = split_netns_line(line)
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
            with kernel_lab("%%netns --python").entered(args.netns):
                self.shell.run_cell(command, store_history=False)
            return
        if args.bg:
            job = kernel_lab("%%netns --bg").start_job(args.netns, command, name=args.name)
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

    @magic_arguments()
    @argument("action", choices=["status", "reset", "doctor", "jobs", "output", "stop", "send", "wait",
                                 "trace", "capture", "conntrack"],
              help="status: the lab at a glance; reset: destroy everything, start fresh; "
                   "doctor: mode and capabilities; jobs: background jobs; output JOB: what a job printed; "
                   "stop JOB: stop a job; send JOB TEXT: type a line into a job; wait JOB: wait for a job to end; "
                   "trace NETNS -- COMMAND: follow the command's packets through every namespace; "
                   "capture IFACE: the packets on an interface; conntrack NETNS: the connection-tracking "
                   "table (each has --help)")
    @argument("job", nargs="?", help="the job's name (for output, stop, send, wait)")
    @argument("text", nargs="*", help="for send: the text to type")
    @argument("-t", "--timeout", type=float, default=10.0, help="for wait: give up after this many seconds")
    @no_var_expand
    @line_magic
    @one_line_errors
    def netlab(self, line: str) -> Any:
        """Manage the lab: ``%netlab status | reset | doctor | jobs | output J | stop J | send J TEXT | wait J``;
        follow packets: ``%netlab trace NETNS -- COMMAND | capture IFACE | conntrack NETNS``."""
        action, _, rest = line.strip().partition(" ")
        if action in _PACKET_ACTIONS:
            return _PACKET_ACTIONS[action](self, rest)
        if _wants_help(line):
            print(self.netlab.__doc__)
            return None
        args = parse(self.netlab, line, "%netlab")
        if args.action in ("status", "reset", "doctor", "jobs") and (args.job or args.text):
            extra = " ".join([args.job or "", *args.text]).strip()
            raise UsageError(f"%netlab {args.action} takes no argument (got {extra!r})")
        if args.action in ("output", "stop", "wait") and args.text:
            raise UsageError(f"%netlab {args.action} takes one job name (got {' '.join([args.job, *args.text])!r})")
        if args.action == "doctor":  # works without a lab: it says why there is none
            return doctor.report(doctor.run_checks(_lab_or_none()))
        if args.action in ("output", "stop", "send", "wait") and not args.job:
            raise UsageError(f"%netlab {args.action} needs a job name (see %netlab jobs)")
        if args.action == "reset":
            self.lab.reset()
            print("lab reset: every namespace, interface, rule and job is gone; the host is fresh")
            return None
        lab = kernel_lab(f"%netlab {args.action}")
        if args.action == "status":
            return status_tables(lab.snapshot(), lab.mode)
        if args.action == "jobs":
            return Table("netlab jobs", ["job", "namespace", "status", "command"],
                         [[j.name, j.netns, j.status, _first_line(j.command)] for j in lab.jobs.all()],
                         empty="(no jobs)")
        job = lab.jobs.get(args.job)
        if args.action == "output":
            print(job.output(), end="")
        elif args.action == "stop":
            job.stop()
            print(f"[{job.name}] stopped ({job.status})")
        elif args.action == "send":
            job.send(" ".join(args.text))
        elif args.action == "wait":
            if not job.wait(args.timeout):
                raise UsageError(f"job {job.name!r} still running after {args.timeout:g} s")
            print(f"[{job.name}] {job.status}")
        return None


# -- following packets: %netlab trace | capture | conntrack ----------------------------------------

_TRACE_VALUE_OPTIONS = {"--match", "-m", "--timeout", "-t"}


@magic_arguments(name="netlab trace")
@kwds(usage="%(prog)s [-m MATCH] [-t TIMEOUT] [--draw] [--widget] NETNS -- COMMAND")
@argument("netns", help="the namespace to run the command in; 'host' is the lab's host")
@argument("-m", "--match", help='show only these packets (and their connections), in iptables words: '
                                '"-p tcp --dport 8888", "-s 10.0.0.1", "-o bridge0" ...')
@argument("-t", "--timeout", type=float, help="stop the command after this many seconds (what was traced is shown)")
@argument("--draw", action="store_true", help="also draw each packet's path on the packet-flow picture")
@argument("--widget", action="store_true", help="show the path as a live widget to step through")
def _trace_arguments(line: str) -> None:
    """Run a command in a namespace and follow its packets through every namespace of the lab.

    %netlab trace ns1 -- ping -c 1 10.0.0.3
    %netlab trace host --match "-p tcp --dport 8888" -- curl -s localhost:8888

    One table per packet: a line per netfilter hook, chain and rule it met (namespace, hook,
    table:chain, the rule as iptables -S prints it or the policy, verdict), as the kernel's
    netfilter trace reported them. A dropped packet ends at the rule or policy that dropped it.
    `t = %netlab trace ...` keeps the Trace: t.hops, t.packets, t.draw(), t.widget().
    """


def _trace(magics: "NetlabMagics", rest: str) -> Any:
    if _wants_help(rest.split(" -- ")[0]):
        print(_trace_arguments.__doc__)
        return None
    head, command = split_command(rest, _TRACE_VALUE_OPTIONS)
    args = parse_words(_trace_arguments, head, "%netlab trace", _TRACE_VALUE_OPTIONS)
    if not command:
        raise UsageError("%netlab trace needs a command: %netlab trace NETNS -- COMMAND (e.g. -- ping -c 1 10.0.0.3)")
    lab = kernel_lab("%netlab trace")
    try:
        trace = run_trace(lab, args.netns, command, args.match, timeout=args.timeout, stream=True)
    except process.Interrupted:
        raise process.Interrupted(f"stopped the command in {args.netns}; the trace is off") from None
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


@magic_arguments(name="netlab capture")
@kwds(usage="%(prog)s IFACE [-n NETNS] [--bg | --show | --stop] [-c COUNT] [-t TIMEOUT] [-m MATCH] [--ipv6] "
            "[--pcap FILE]")
@argument("iface", help="the interface; the capture runs in the namespace that has it")
@argument("-n", "--netns", help="the namespace of IFACE, where several have an interface of that name")
@argument("--bg", action="store_true", help="capture in the background (a job of the lab) until --stop or a reset")
@argument("--show", action="store_true", help="the packets captured so far")
@argument("--stop", action="store_true", help="stop the background capture and show its packets")
@argument("-c", "--count", type=int, help="stop after this many packets (in the foreground: 10)")
@argument("-t", "--timeout", type=float, default=5.0, help="in the foreground: stop after this many seconds (5)")
@argument("-m", "--match", help='show only these IPv4 packets, in iptables words: "-p icmp", "-s 10.0.0.1"')
@argument("--pcap", metavar="FILE", help="also save the packets to FILE (pcap, for tcpdump -r or Wireshark)")
@argument("--ipv6", action="store_true", help="show IPv6 frames too (the kernel's link-local chatter)")
def _capture_arguments(line: str) -> None:
    """The packets on one interface of the lab, tcpdump-like, as a table.

    %netlab capture veth2 --bg          # start capturing in veth2's namespace
    %netlab capture veth2 --show        # the packets so far
    %netlab capture veth2 --stop --pcap veth2.pcap
    %netlab capture veth2 -c 4          # in the foreground: 4 packets or 5 seconds

    tcpdump runs inside the interface's own namespace (rootless, a reader of the same packets
    that writes the same pcap file); a background capture is a job of the lab, stopped by
    --stop, %netlab stop capture-IFACE or a reset.
    """


def _capture(magics: "NetlabMagics", rest: str) -> Any:
    if _wants_help(rest):
        print(_capture_arguments.__doc__)
        return None
    args = parse_words(_capture_arguments, rest, "%netlab capture", {"--match", "-m"})
    if sum((args.bg, args.show, args.stop)) > 1:
        raise UsageError("%netlab capture: choose one of --bg, --show and --stop")
    lab = kernel_lab("%netlab capture")
    if args.bg:
        cap = start_capture(lab, args.iface, args.netns, count=args.count, match=args.match)
        print(f"[{cap.name}] capturing on {cap.ifname} in {cap.netns}: "
              f"%netlab capture {cap.ifname} --show shows the packets so far, --stop ends it")
        return None
    if args.show or args.stop or (args.pcap and not args.count):
        cap = get_capture(lab, args.iface, args.netns)
        if args.stop:
            cap.stop()
    else:
        try:
            cap = capture_for(lab, args.iface, args.netns, count=args.count or 10, timeout=args.timeout,
                              match=args.match)
        except KeyboardInterrupt:
            raise process.Interrupted(f"stopped the capture on {args.iface}") from None
    if args.pcap:
        cap.save(args.pcap)
        print(f"saved {len(cap.frames())} packets to {args.pcap}")
    return cap.table(args.match, ipv6=args.ipv6) if args.match or args.ipv6 else cap


@magic_arguments(name="netlab conntrack")
@kwds(usage="%(prog)s NETNS [-p PROTOCOL]")
@argument("netns", help="the namespace whose connection-tracking table to show; 'host' is the lab's host")
@argument("-p", "--proto", help="only this protocol's connections (tcp, udp, icmp)")
def _conntrack_arguments(line: str) -> None:
    """The connection-tracking table of a namespace (conntrack -L), as a table.

    %netlab conntrack host
    %netlab conntrack host -p tcp

    One line per connection the kernel remembers: the original direction (the first packet),
    the reply it expects back, what NAT did (a DNAT: the reply comes from elsewhere; a SNAT
    or MASQUERADE: it goes elsewhere), TCP's state and the flags.
    """


def _conntrack(magics: "NetlabMagics", rest: str) -> Any:
    if _wants_help(rest):
        print(_conntrack_arguments.__doc__)
        return None
    args = parse_words(_conntrack_arguments, rest, "%netlab conntrack")
    return conntrack_table(kernel_lab("%netlab conntrack"), args.netns, args.proto)


_PACKET_ACTIONS: dict[str, Callable[..., Any]] = {"trace": one_line_errors(_trace),
                                                  "capture": one_line_errors(_capture),
                                                  "conntrack": one_line_errors(_conntrack)}


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
