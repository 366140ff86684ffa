"""``%docker``: the Docker CLI's syntax, for Docker's bridge networking built inside the lab.

Type what the talk types::

    %docker network create dummy1
    %docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools
    %docker exec dummy1 ping -c 1 172.18.0.1
    %docker run -p 8888:80 --name=nginx -d nginx
    %docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' nginx

Each container is a network namespace of the lab named after it (so ``%%netns nginx`` works
too), wired to its network's bridge as Docker wires it, and the host's iptables rules are
exactly dockerd's (see :mod:`netlab_magic.docker.engine`). **Images are not pulled**: there are
no images. A container runs its command with the kernel's own files and programs; only its
network is its own. ``nginx`` (and ``httpd``) stand for a web server on port 80 (Python's
``http.server``); any other image, with no command given, runs ``sleep infinity``.

What each subcommand takes is in :data:`COMMANDS`, the one registry parsing, ``--help`` and the
usage text come from (:mod:`netlab_magic.jupyter.commands`); ``dockerd --version=20.10|28.5 --userland-proxy=true|false``
is this lab's own (before the first other ``%docker`` command; the defaults here are 20.10, the
talk's release, and ``false``, where Docker's is ``true``). Any other flag is refused in one line.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any, Callable

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from ..docker import engine as engine_mod
from ..docker import gotemplate
from ..docker.daemon import DEFAULT_NETWORK
from ..docker.options import check_ipam_flags, split_options
from ..docker.output import info_text, ps_table, table, version_text
from ..docker.ports import parse_publish
from ..errors import NetlabError
from ..lab.lab import Lab
from ..linux.process import describe_exit
from .commands import BOOL, MULTI, VALUE, Command, Flag, Parsed, Registry
from .magics import current_lab, one_line_errors

# -- Go templates, the part `docker inspect -f` needs ------------------------------------------------


def template(text: str) -> gotemplate.Template:
    """``-f FORMAT`` parsed as the Docker CLI parses it; a malformed one is Docker's one-line error."""
    try:
        return gotemplate.parse(text)
    except gotemplate.TemplateError as err:
        raise NetlabError(f"template parsing error: {err}") from None


def render(text: str, data: Any) -> str:
    """Go's ``text/template`` on ``data`` (see :mod:`.gotemplate`), errors in the Docker CLI's words:
    ``template parsing error: template: :1: unclosed action``."""
    tmpl = template(text)
    try:
        return tmpl.execute(data)
    except gotemplate.TemplateError as err:
        raise NetlabError(f"template parsing error: {err}") from None


# -- the subcommands ---------------------------------------------------------------------------------


def _network_create(lab: Lab, args: Parsed) -> None:
    _count("network create", args, 1, 1)
    if args.driver not in (None, "bridge"):
        raise UsageError(f"%docker network create: only the bridge driver is in this lab (not {args.driver})")
    check_ipam_flags(args.subnet, args.gateway)
    e = engine_mod.engine(lab)
    print(e.network_create(args["args"][0], subnet=args.subnet, gateway=args.gateway, internal=bool(args.internal),
                           options=split_options(args.opt or [])).id)


def _network_ls(lab: Lab, args: Parsed) -> None:
    _count("network ls", args, 0, 0)
    nets = sorted(engine_mod.engine(lab).network_ls(), key=lambda n: n.name)
    if args.quiet:
        print("\n".join(n.id[:12] for n in nets))
        return
    print(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"], [[n.id[:12], n.name, "bridge", "local"] for n in nets]))


def _run(lab: Lab, args: Parsed) -> None:
    _count("run", args, 1)
    image, *cmd = args["args"]
    publish = parse_publish(args.publish or ())
    c = engine_mod.engine(lab).run(image, cmd, name=args.name, network=args.network or DEFAULT_NETWORK,
                                   publish=publish, detach=bool(args.detach), remove=bool(args.rm),
                                   hostname=args.hostname)
    if args.detach:
        print(c.id)


def _ps(lab: Lab, args: Parsed) -> None:
    _count("ps", args, 0, 0)
    containers = engine_mod.engine(lab).ps(all=bool(args.all))
    print("\n".join(c.id[:12] for c in containers) if args.quiet else ps_table(containers))


def _exec(lab: Lab, args: Parsed) -> None:
    _count("exec", args, 2)
    name, *cmd = args["args"]
    code = engine_mod.engine(lab).exec(name, shlex.join(cmd))
    sys.stdout.flush()
    if code:
        print(f"({describe_exit(code)})", file=sys.stderr)


def _dockerd(lab: Lab, args: Parsed) -> None:
    proxy = args.userland_proxy
    if args["args"] or (proxy is not None and proxy.lower() not in ("true", "false", "1", "0")):
        raise UsageError("%docker dockerd takes --version=20.10|28.5 and --userland-proxy=true|false")
    e = engine_mod.configure(lab, userland_proxy=None if proxy is None else proxy.lower() in ("true", "1"),
                             version=args.version)
    daemon = e.start()
    print(f"dockerd {daemon.release.version} running in the lab's host "
          f"(--userland-proxy={str(e.userland_proxy).lower()})")


def _version(lab: Lab, args: Parsed) -> None:
    _count("version", args, 0, 0)
    print(version_text(engine_mod.engine(lab).start()))


def _info(lab: Lab, args: Parsed) -> None:
    _count("info", args, 0, 0)
    print(info_text(engine_mod.engine(lab).start()))


def _each_name(command: str, act: Callable[[engine_mod.Engine, str, Parsed], Any]) -> Callable:
    """A handler doing ``act`` for every NAME given, printing it as the CLI does."""
    def handler(lab: Lab, args: Parsed) -> None:
        _count(command, args, 1)
        e = engine_mod.engine(lab)
        _each(args["args"], lambda name: (act(e, name, args), print(name)))
    return handler


def _inspector(command: str, get: Callable[[engine_mod.Engine], Callable[[str], Any]]) -> Callable:
    """A handler for ``inspect [-f FORMAT] NAME...``."""
    def handler(lab: Lab, args: Parsed) -> None:
        _count(command, args, 1)
        _print_objects(args["args"], get(engine_mod.engine(lab)), args.format)
    return handler


def _top(lab: Lab, args: Parsed) -> None:
    _count("top", args, 1, 1)
    print(engine_mod.engine(lab).top(args["args"][0]), end="")


def _logs(lab: Lab, args: Parsed) -> None:
    _count("logs", args, 1, 1)
    print(engine_mod.engine(lab).logs(args["args"][0]), end="")


_FORMAT = Flag(("-f", "--format"), "format", VALUE, "Format the output using the given Go template", "FORMAT")
_QUIET = Flag(("-q", "--quiet"), "quiet", BOOL, "Only display IDs")
_TTY = (Flag(("-i", "--interactive"), "interactive", hidden=True), Flag(("-t", "--tty"), "tty", hidden=True))

#: Every subcommand: its flags, arguments, help and handler. Parsing, --help and the usage come from here.
COMMANDS = Registry([
    Command("network create", "NAME", "Create a network (a bridge br-<12 hex of its id>)", _network_create, (
        Flag(("-d", "--driver"), "driver", VALUE, "Driver to manage the Network (bridge only)", "DRIVER", hidden=True),
        Flag(("--subnet",), "subnet", VALUE, "Subnet in CIDR format that represents a network segment", "CIDR"),
        Flag(("--gateway",), "gateway", VALUE, "IPv4 Gateway for the master subnet", "IP"),
        Flag(("--internal",), "internal", BOOL, "Restrict external access to the network"),
        Flag(("-o", "--opt"), "opt", MULTI, "Set driver specific options: com.docker.network.bridge.name, "
             ".enable_icc, .enable_ip_masquerade, .gateway_mode_ipv4 (28.5)", "KEY=VALUE"))),
    Command("network ls", "", "List networks", _network_ls, (_QUIET,), aliases=("network list",)),
    Command("network rm", "NAME...", "Remove one or more networks",
            _each_name("network rm", lambda e, name, args: e.network_rm(name)), aliases=("network remove",)),
    Command("network inspect", "NAME...", "Display detailed information on one or more networks",
            _inspector("network inspect", lambda e: e.network_inspect), (_FORMAT,)),
    Command("run", "IMAGE [CMD...]", "Create and run a new container from an image (images are not pulled)", _run, (
        Flag(("-d", "--detach"), "detach", BOOL, "Run container in background and print container ID"),
        Flag(("--rm",), "rm", BOOL, "Automatically remove the container when it exits"),
        Flag(("--name",), "name", VALUE, "Assign a name to the container", "NAME"),
        Flag(("-h", "--hostname"), "hostname", VALUE, "Container host name", "NAME"),
        Flag(("--network", "--net"), "network", VALUE, "Connect a container to a network", "NET"),
        Flag(("-p", "--publish"), "publish", MULTI, "Publish a container's port to the host",
             "[IP:]HOST:CONTAINER[/PROTO]"),
        *_TTY), aliases=("container run",), stop_at=1),
    Command("ps", "", "List containers", _ps, (Flag(("-a", "--all"), "all", BOOL, "Show all containers"), _QUIET),
            aliases=("ls", "container ls", "container ps", "container list")),
    Command("inspect", "NAME...", "Return low-level information on containers",
            _inspector("inspect", lambda e: e.inspect), (_FORMAT,), aliases=("container inspect",)),
    Command("exec", "NAME CMD...", "Execute a command in a running container", _exec, _TTY,
            aliases=("container exec",), stop_at=1),
    Command("logs", "NAME", "Fetch the logs of a container", _logs, aliases=("container logs",)),
    Command("top", "NAME", "Display the running processes of a container", _top, aliases=("container top",)),
    Command("stop", "NAME...", "Stop one or more running containers",
            _each_name("stop", lambda e, name, args: e.stop(name)), aliases=("container stop",)),
    Command("rm", "NAME...", "Remove one or more containers",
            _each_name("rm", lambda e, name, args: e.rm(name, force=bool(args.force))),
            (Flag(("-f", "--force"), "force", BOOL, "Force the removal of a running container"),),
            aliases=("container rm",)),
    Command("version", "", "Show the Docker version information (which release this lab models)", _version),
    Command("info", "", "Display system-wide information", _info),
    Command("dockerd", "", "This lab's own: start dockerd with these settings", _dockerd, (
        Flag(("--version",), "version", VALUE, "The Docker Engine release to model: 20.10 (default) or 28.5",
             "20.10|28.5"),
        Flag(("--userland-proxy",), "userland_proxy", VALUE, "Use userland proxy for loopback traffic "
             "(default here: false)", "true|false")), note="(before anything else)"),
], title="Docker's bridge networking, built for real inside this lab (images are not pulled).")


@magics_class
class DockerMagics(Magics):
    """``%docker``: Docker's CLI syntax for containers and bridge networks inside the lab."""

    @no_var_expand
    @line_magic
    @one_line_errors
    def docker(self, line: str) -> None:
        """%docker network create|ls|rm|inspect, run, ps, inspect, exec, logs, stop, rm (see %docker --help).

        Images are not pulled: a container is a namespace of the lab running a command of this
        machine; ``nginx`` is a web server on port 80, other images ``sleep infinity``.
        """
        try:
            tokens = shlex.split(line)
        except ValueError as err:
            raise UsageError(f"%docker: cannot parse the line: {err}") from None
        if not tokens or tokens[0] in ("-h", "--help", "help"):
            print(COMMANDS.usage())
            return
        command, rest = COMMANDS.find(tokens)
        if rest[:1] in (["-h"], ["--help"]):
            print(COMMANDS.help(command))
            return
        current_lab().call(run_command, command.name, COMMANDS.parse(command, rest))


def run_command(lab: Lab, name: str, args: Parsed) -> None:
    """Subcommand ``name`` (``"network create"``) with its parsed ``args``, on ``lab``.

    Called through :meth:`Lab.call <netlab_magic.lab.lab.Lab.call>`: in the VM backend it runs in the
    guest, next to the lab and the engine's state, and only the name and the arguments cross."""
    COMMANDS.by_name[name].handler(lab, args)


# -- helpers -----------------------------------------------------------------------------------------

def _count(command: str, args: Parsed, least: int, most: int | None = None) -> None:
    """Docker's words for a wrong number of arguments."""
    n = len(args["args"])
    if most == 0 and n:
        raise UsageError(f'"docker {command}" accepts no arguments.')
    if least == most and n != least:
        raise UsageError(f'"docker {command}" requires exactly {least} argument.')
    if n < least:
        plural = "s" if least > 1 else ""
        raise UsageError(f'"docker {command}" requires at least {least} argument{plural}.')


def _each(names: list[str], fn: Callable[[str], Any]) -> None:
    """Like the CLI: do every name, report the failures at the end (one line)."""
    errors = []
    for name in names:
        try:
            fn(name)
        except NetlabError as err:
            errors.append(str(err))
    sys.stdout.flush()
    if errors:
        raise UsageError("; ".join(errors))


def _print_objects(names: list[str], get: Callable[[str], Any], template_text: str | None) -> None:
    """``docker inspect [-f FORMAT] NAME...`` as the CLI does it: the template is parsed first (a
    malformed one is the only error), every name is looked up, what was found is printed, then the
    errors (one line)."""
    tmpl = template(template_text) if template_text else None
    found, errors = [], []
    for name in names:
        try:
            obj = get(name)
            found.append(obj if tmpl is None else tmpl.execute(obj))
        except gotemplate.TemplateError as err:
            errors.append(f"template parsing error: {err}")
        except NetlabError as err:
            errors.append(str(err))
    if tmpl is None:
        if found or not errors:
            print(json.dumps(found, indent=4))
    else:
        for text in found:
            print(text)
    sys.stdout.flush()
    if errors:
        raise UsageError("; ".join(errors))


__all__ = ["DockerMagics", "COMMANDS", "render", "template"]
