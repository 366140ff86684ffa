"""``%docker``: the Docker CLI's syntax, for Docker's bridge networking built inside the lab.

Type what the talk types::

    %docker network create dummy1
    %docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools
    %docker exec dummy1 ping -c 1 172.18.0.1
    %docker run -p 8888:80 --name=nginx -d nginx
    %docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' nginx

Each container is a network namespace of the lab named after it (so ``%%netns nginx`` works
too), wired to its network's bridge as Docker wires it, and the host's iptables rules are
exactly dockerd 20.10's (see :mod:`netlab_magic.docker.engine`). **Images are not pulled**:
there are no images. A container runs its command with the kernel's own files and programs;
only its network is its own. ``nginx`` (and ``httpd``) stand for a web server on port 80
(Python's ``http.server``); any other image, with no command given, runs ``sleep infinity``.

Supported: ``network create [--subnet CIDR] [--internal] NAME``, ``network ls``,
``network rm NAME...``, ``network inspect [-f FORMAT] NAME...``,
``run [-d] [--rm] [--name NAME] [--network NET] [-p [IP:]HOST:CONTAINER[/PROTO]]... IMAGE [CMD...]``,
``ps [-a] [-q]`` (also ``ls`` and ``container ls``), ``inspect [-f FORMAT] NAME...``,
``exec NAME CMD...``, ``logs NAME``, ``stop NAME...``, ``rm [-f] NAME...``, and, this lab's own,
``dockerd --userland-proxy=true|false`` (before the first other ``%docker`` command; the default
here is ``false``, Docker's is ``true``). Any other flag is refused in one line.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, no_var_expand

from ..errors import NetlabError
from ..lab import Lab
from ..magics import kernel_lab, one_line_errors
from . import engine as engine_mod
from . import gotemplate
from .daemon import DEFAULT_NETWORK

# -- flags -------------------------------------------------------------------------------------

BOOL, VALUE, MULTI = "bool", "value", "multi"

#: subcommand -> {flag: (dest, kind)}; what is not here is refused.
FLAGS: dict[str, dict[str, tuple[str, str]]] = {
    "run": {"-d": ("detach", BOOL), "--detach": ("detach", BOOL), "--name": ("name", VALUE),
            "--network": ("network", VALUE), "--net": ("network", VALUE),
            "-p": ("publish", MULTI), "--publish": ("publish", MULTI), "--rm": ("rm", BOOL),
            "-i": ("interactive", BOOL), "--interactive": ("interactive", BOOL),
            "-t": ("tty", BOOL), "--tty": ("tty", BOOL)},
    "exec": {"-i": ("interactive", BOOL), "--interactive": ("interactive", BOOL),
             "-t": ("tty", BOOL), "--tty": ("tty", BOOL)},
    "ps": {"-a": ("all", BOOL), "--all": ("all", BOOL), "-q": ("quiet", BOOL), "--quiet": ("quiet", BOOL)},
    "inspect": {"-f": ("format", VALUE), "--format": ("format", VALUE)},
    "logs": {},
    "stop": {},
    "rm": {"-f": ("force", BOOL), "--force": ("force", BOOL)},
    "network create": {"-d": ("driver", VALUE), "--driver": ("driver", VALUE),
                       "--subnet": ("subnet", VALUE), "--internal": ("internal", BOOL)},
    "network ls": {"-q": ("quiet", BOOL), "--quiet": ("quiet", BOOL)},
    "network rm": {},
    "network inspect": {"-f": ("format", VALUE), "--format": ("format", VALUE)},
    "dockerd": {"--userland-proxy": ("userland_proxy", VALUE)},
}

#: Commands whose first positional ends the flags (what follows is the container's command).
STOP_AT_FIRST = {"run": 1, "exec": 1}

ALIASES = {"ls": "ps", "container ls": "ps", "container ps": "ps", "container list": "ps",
           "container run": "run", "container exec": "exec", "container inspect": "inspect",
           "container stop": "stop", "container rm": "rm", "container logs": "logs",
           "network list": "network ls", "network remove": "network rm"}


class Parsed(dict):
    """Flags by dest, plus ``args``: the positionals (and, for run/exec, the command after them)."""

    def __getattr__(self, key: str) -> Any:
        return self.get(key)


def parse(command: str, tokens: list[str]) -> Parsed:
    """Parse Docker-style flags: ``--name=x``, ``--name x``, ``-p 8888:80``, ``-p8888:80``, ``-dit``."""
    spec = FLAGS[command]
    out = Parsed(args=[])
    stop_after = STOP_AT_FIRST.get(command)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "--":
            out["args"] += tokens[i + 1:]
            break
        if not tok.startswith("-") or tok == "-":
            out["args"].append(tok)
            if stop_after is not None and len(out["args"]) >= stop_after:
                out["args"] += tokens[i + 1:]
                break
            i += 1
            continue
        if tok.startswith("--"):
            flag, eq, value = tok.partition("=")
            if flag not in spec:
                raise UsageError(_unsupported(command, flag))
            dest, kind = spec[flag]
            if kind == BOOL:
                out[dest] = value.lower() not in ("false", "0") if eq else True
            else:
                if not eq:
                    i += 1
                    if i >= len(tokens):
                        raise UsageError(f"flag needs an argument: {flag}")
                    value = tokens[i]
                _store(out, dest, kind, value)
            i += 1
            continue
        # short flags: -d, -dit, -p 8888:80, -p8888:80, -f=FORMAT
        j = 1
        while j < len(tok):
            flag = "-" + tok[j]
            if flag not in spec:
                raise UsageError(_unsupported(command, flag if j > 1 or len(tok) == 2 else tok))
            dest, kind = spec[flag]
            if kind == BOOL:
                out[dest] = True
                j += 1
                continue
            value = tok[j + 1:]
            if value.startswith("="):
                value = value[1:]
            if not value:
                i += 1
                if i >= len(tokens):
                    raise UsageError(f"flag needs an argument: '{tok[j]}' in {flag}")
                value = tokens[i]
            _store(out, dest, kind, value)
            break
        i += 1
    return out


def _store(out: Parsed, dest: str, kind: str, value: str) -> None:
    if kind == MULTI:
        out.setdefault(dest, []).append(value)
    else:
        out[dest] = value


def _unsupported(command: str, flag: str) -> str:
    have = ", ".join(sorted(FLAGS[command])) or "no flags"
    return f"%docker {command}: unsupported flag {flag} (this lab's docker {command} takes: {have})"


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


# -- output ---------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list[str]]) -> str:
    """Docker's tables: columns padded, three spaces apart."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join(lines)


def _ago(t: float) -> str:
    return engine_mod.human_duration(time.time() - t) + " ago"


def _ports(box: engine_mod.Box) -> str:
    if not box.running or box.last is None:
        return ""
    return ", ".join(f"{p.host_ip}:{p.host_port}->{p.container_port}/{p.proto}" for p in box.last.ports)


def _command_column(box: engine_mod.Box) -> str:
    text = box.command if not box.cmd else shlex.join(box.cmd)
    text = text.replace(sys.executable, "python3")
    if len(text) > 20:
        text = text[:19] + "…"
    return f'"{text}"'


# -- the magic -------------------------------------------------------------------------------------

USAGE = """Usage:  %docker COMMAND

Docker's bridge networking, built for real inside this lab (images are not pulled).

Commands:
  network create [--subnet CIDR] [--internal] NAME
  network ls | network rm NAME... | network inspect [-f FORMAT] NAME...
  run [-d] [--rm] [--name NAME] [--network NET] [-p [IP:]HOST:CONTAINER[/PROTO]]... IMAGE [CMD...]
  ps [-a] [-q]          (also: ls, container ls)
  inspect [-f FORMAT] NAME...
  exec NAME CMD...      logs NAME      stop NAME...      rm [-f] NAME...
  dockerd --userland-proxy=true|false   (before anything else; default here: false)"""


@magics_class
class DockerMagics(Magics):
    """``%docker``: Docker's CLI syntax for containers and bridge networks inside the lab."""

    @property
    def lab(self) -> Lab:
        return kernel_lab()

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
            print(USAGE)
            return
        command, rest = _subcommand(tokens)
        if any(t in ("-h", "--help") for t in rest[:1]):
            print(USAGE)
            return
        args = parse(command, rest)
        lab = self.lab
        if command == "dockerd":
            value = (args.userland_proxy or "").lower()
            if value not in ("true", "false", "1", "0") or args["args"]:
                raise UsageError("%docker dockerd takes --userland-proxy=true or --userland-proxy=false")
            e = engine_mod.configure(lab, userland_proxy=value in ("true", "1"))
            e.start()
            print(f"dockerd running in the lab's host (--userland-proxy={str(e.userland_proxy).lower()})")
            return
        getattr(self, "_" + command.replace(" ", "_"))(engine_mod.engine(lab), args)

    # -- networks --------------------------------------------------------------------------------

    def _network_create(self, e: engine_mod.Engine, args: Parsed) -> None:
        names = args["args"]
        if len(names) != 1:
            raise UsageError('"docker network create" requires exactly 1 argument.')
        if args.driver not in (None, "bridge"):
            raise UsageError(f"%docker network create: only the bridge driver is in this lab (not {args.driver})")
        print(e.network_create(names[0], subnet=args.subnet, internal=bool(args.internal)).id)

    def _network_ls(self, e: engine_mod.Engine, args: Parsed) -> None:
        _no_args("network ls", args)
        nets = sorted(e.network_ls(), key=lambda n: n.name)
        if args.quiet:
            print("\n".join(n.id[:12] for n in nets))
            return
        print(table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                    [[n.id[:12], n.name, "bridge", "local"] for n in nets]))

    def _network_rm(self, e: engine_mod.Engine, args: Parsed) -> None:
        _at_least_one("network rm", args)
        _each(args["args"], lambda name: (e.network_rm(name), print(name)))

    def _network_inspect(self, e: engine_mod.Engine, args: Parsed) -> None:
        _at_least_one("network inspect", args)
        _print_objects(args["args"], e.network_inspect, args.format)

    # -- containers ------------------------------------------------------------------------------

    def _run(self, e: engine_mod.Engine, args: Parsed) -> None:
        if not args["args"]:
            raise UsageError('"docker run" requires at least 1 argument.')
        image, *cmd = args["args"]
        box = e.run(image, cmd, name=args.name, network=args.network or DEFAULT_NETWORK,
                    publish=args.publish or [], detach=bool(args.detach), remove=bool(args.rm))
        if args.detach:
            print(box.id)

    def _ps(self, e: engine_mod.Engine, args: Parsed) -> None:
        _no_args("ps", args)
        boxes = e.ps(all=bool(args.all))
        if args.quiet:
            print("\n".join(b.id[:12] for b in boxes))
            return
        rows = []
        for b in boxes:
            status = (f"Up {engine_mod.human_duration(time.time() - b.started)}" if b.running
                      else f"Exited ({b.exit_code}) {_ago(b.finished or time.time())}")
            rows.append([b.id[:12], b.image, _command_column(b), _ago(b.created), status, _ports(b), b.name])
        print(table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))

    def _inspect(self, e: engine_mod.Engine, args: Parsed) -> None:
        _at_least_one("inspect", args)
        _print_objects(args["args"], e.inspect, args.format)

    def _exec(self, e: engine_mod.Engine, args: Parsed) -> None:
        if len(args["args"]) < 2:
            raise UsageError('"docker exec" requires at least 2 arguments.')
        name, *cmd = args["args"]
        code = e.exec(name, shlex.join(cmd))
        sys.stdout.flush()
        if code:
            message = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
            print(f"({message})", file=sys.stderr)

    def _logs(self, e: engine_mod.Engine, args: Parsed) -> None:
        if len(args["args"]) != 1:
            raise UsageError('"docker logs" requires exactly 1 argument.')
        print(e.logs(args["args"][0]), end="")

    def _stop(self, e: engine_mod.Engine, args: Parsed) -> None:
        _at_least_one("stop", args)
        _each(args["args"], lambda name: (e.stop(name), print(name)))

    def _rm(self, e: engine_mod.Engine, args: Parsed) -> None:
        _at_least_one("rm", args)
        _each(args["args"], lambda name: (e.rm(name, force=bool(args.force)), print(name)))


def _subcommand(tokens: list[str]) -> tuple[str, list[str]]:
    first = tokens[0]
    if first in ("network", "container"):
        if len(tokens) < 2 or tokens[1].startswith("-"):
            choices = "create, ls, rm, inspect" if first == "network" else "ls, run, exec, inspect, stop, rm"
            raise UsageError(f'"docker {first}" needs a subcommand: {choices}')
        name = f"{first} {tokens[1]}"
        name = ALIASES.get(name, name)
        if name not in FLAGS:
            raise UsageError(f"docker: '{first} {tokens[1]}' is not a docker command in this lab "
                             "(see %docker --help)")
        return name, tokens[2:]
    name = ALIASES.get(first, first)
    if name not in FLAGS:
        raise UsageError(f"docker: '{first}' is not a docker command in this lab (see %docker --help)")
    return name, tokens[1:]


def _no_args(command: str, args: Parsed) -> None:
    if args["args"]:
        raise UsageError(f'"docker {command}" accepts no arguments.')


def _at_least_one(command: str, args: Parsed) -> None:
    if not args["args"]:
        raise UsageError(f'"docker {command}" requires at least 1 argument.')


def _each(names: list[str], fn) -> None:  # noqa: ANN001
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


def _print_objects(names: list[str], get, template_text: str | None) -> None:  # noqa: ANN001
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


__all__ = ["DockerMagics", "parse", "render", "table"]
