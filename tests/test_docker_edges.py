"""``%docker`` edge cases, in a real kernel: what Docker does at the edges, done here too.

- ``run --rm``: a container whose command ends is removed at once (namespace, veth, rules,
  name), without waiting for the next ``%docker`` command; without ``--rm`` its network still
  goes when it exits, and it stays listed as exited.
- a host port published twice (in one ``run``, or by a second container) is refused with
  Docker's words, and nothing of the refused container is left;
- a malformed ``inspect -f`` template is Go's parse error, as the Docker CLI prints it.

Every packet stays inside the lab's namespaces.
"""

from __future__ import annotations

import re
import time

import pytest

from support.docker_lab import ENGINE, lab_save, lab_state, model_save


def veth_of(k, name: str) -> str:
    return k.value(f"{ENGINE}.daemon.containers[{name!r}].veth")


def ip_of(k, name: str) -> str:
    return k.value(f"str({ENGINE}.daemon.containers[{name!r}].ip)")


def names(k) -> list[str]:
    """The NAMES column of ``%docker ps -a``."""
    return [ln.split()[-1] for ln in k.ok("%docker ps -a").stdout.splitlines()[1:]]


def eventually(check, timeout: float = 5.0, pause: float = 0.1):
    """Retry ``check()`` (which asserts) until it passes or ``timeout`` seconds went by."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(pause)


# -- run --rm: removed as soon as it exits ---------------------------------------------------------


def test_detached_rm_container_is_removed_when_its_command_exits(lab):
    """``run -d --rm ... sleep 2``: while it runs it is there; once it exited, without any other
    %docker command, its namespace, veth, rules and name are gone."""
    lab.ok("%docker run -d --rm --name brief -p 8891:80 busybox sleep 2")
    veth, ip = veth_of(lab, "brief"), ip_of(lab, "brief")
    assert "brief" in lab.ok("!ip netns list").stdout
    assert veth in lab.ok("!ip -o link show").stdout
    assert any(ip in rule for rule in lab_save(lab))

    def gone():
        assert "brief" not in lab.ok("!ip netns list").stdout
        assert veth not in lab.ok("!ip -o link show").stdout
        save = lab.ok("!iptables-save").stdout
        assert ip not in save and "8891" not in save and veth not in save, save
        assert not any(j.startswith("docker-brief") for j in
                       lab.value("[j.name for j in __import__('netlab_magic').Lab.current().jobs.all()]"))

    # only shell commands and Python look: no %docker command may do the cleaning
    eventually(gone, timeout=8)
    assert "brief" not in names(lab)
    assert lab_save(lab) == model_save(lab)
    lab.ok("%docker run -d --rm --name brief busybox sleep 30")  # the name is free again
    lab.ok("%docker rm -f brief")


def test_detached_rm_container_whose_command_exits_at_once(lab):
    """``run -d --rm ... true``: the next cell already sees nothing of it."""
    lab.ok("%docker ps")  # dockerd started
    before = lab_state(lab)
    lab.ok("%docker run -d --rm --name once busybox true")

    def gone():
        assert lab_state(lab) == before

    eventually(gone, timeout=5)
    assert "once" not in names(lab)
    assert lab_save(lab) == model_save(lab)


def test_without_pidfds_a_thread_notices_the_exit(lab):
    """On a system without pidfd_open, a small thread waits on the command and wakes the loop."""
    lab.ok("import os as _os\n_pidfd_open = _os.pidfd_open\n"
           "def _no_pidfd(pid, flags=0):\n    raise OSError(38, 'Function not implemented')\n"
           "_os.pidfd_open = _no_pidfd")
    try:
        lab.ok("%docker run -d --rm --name nofd busybox sleep 0.5")

        def gone():
            assert "nofd" not in lab.ok("!ip netns list").stdout
            assert "172.17.0.2" not in lab.ok("!iptables-save").stdout

        eventually(gone, timeout=6)
        assert "nofd" not in names(lab)
    finally:
        lab.ok("_os.pidfd_open = _pidfd_open")


def test_detached_container_without_rm_keeps_its_record_but_loses_its_network(lab):
    lab.ok("%docker run -d --name done -p 8892:80 busybox sh -c 'exit 3'")
    veth = lab.value(f"{ENGINE}.daemon.containers['done'].veth")  # the record stays, for inspect after exit

    def network_gone():
        assert "done" not in lab.ok("!ip netns list").stdout
        assert veth not in lab.ok("!ip -o link show").stdout
        assert "8892" not in lab.ok("!iptables-save").stdout

    eventually(network_gone, timeout=5)
    assert re.search(r"Exited \(3\) .* done\n", lab.ok("%docker ps -a").stdout)
    assert lab.ok("%docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' done").stdout == "exited 3\n"
    lab.ok("%docker rm done")
    assert lab_save(lab) == model_save(lab)


def test_the_wait_for_a_web_server_ends_in_one_line(lab):
    """``run -d nginx`` waits until the server listens (``wait_listening``): when the container's
    command ends first (here a real container whose command fails at once), the wait ends with a line
    that says so, its exit status and last line; one that runs but never listens, at the bound."""
    wait = (f"from netlab_magic.docker import container_jobs\n"
            f"container_jobs.wait_listening({ENGINE}.lab, {ENGINE}.get({{name!r}}), 80, timeout={{timeout}})")
    lab.ok("%docker run -d --name brief busybox sh -c 'echo bind: Address already in use >&2; exit 3'")
    r = lab.run(wait.format(name="brief", timeout=30))
    assert r.error == ("NetlabError", "docker: the container's command ended before it listened on port 80 "
                                      "(exit status 3): bind: Address already in use"), r.error
    lab.ok("%docker run -d --name mute busybox sleep 30")
    r = lab.run(wait.format(name="mute", timeout=0.2))
    assert r.error == ("NetlabError", "docker: the container's server did not listen on port 80 within 0.2 s "
                                      "(it still runs: %docker logs mute)"), r.error
    lab.ok("%docker rm -f brief mute")


def test_foreground_rm_leaves_nothing(lab):
    lab.ok("%docker ps")  # dockerd started
    before = lab_state(lab)
    r = lab.ok("%docker run --rm --name fg -p 8893:80 busybox echo hi")
    assert r.stdout == "hi\n"
    assert lab_state(lab) == before
    assert "fg" not in names(lab)


def test_stop_and_reset_do_not_confuse_the_watcher(lab):
    """A container stopped by hand, or a lab reset while containers run: nothing is removed
    twice, nothing reappears in the fresh lab."""
    lab.ok("%docker run -d --rm --name c1 busybox sleep 30")
    lab.ok("%docker run -d --name c2 busybox sleep 30")
    lab.ok("%docker stop c1 c2")
    assert lab.ok("%docker ps -aq").stdout.count("\n") == 1  # c2, exited; c1 is gone
    lab.ok("%docker run -d --rm --name c3 -p 8894:80 busybox sleep 30")
    lab.ok("%netlab reset")
    time.sleep(0.5)
    assert lab.ok("!ip netns list").stdout == ""
    assert "DOCKER" not in lab.ok("!iptables-save").stdout
    assert lab.ok("%docker ps -a").stdout.count("\n") == 1


# -- a host port is published once ------------------------------------------------------------------

PORT_TAKEN = re.compile(
    r"docker: Error response from daemon: driver failed programming external connectivity on endpoint "
    r"(?P<name>\S+) \([0-9a-f]{64}\): Bind for 0\.0\.0\.0:(?P<port>\d+) failed: port is already allocated\.")


CLI_REFUSALS = [("%docker run -p 70000:80 -d --name x2 nginx", "docker: invalid hostPort: 70000."),
                ("%docker run -p 8080 -d nginx", "docker: invalid publish spec '8080': this lab needs HOST:CONTAINER "
                                                 "(Docker would pick a random host port)."),
                ("%docker network create --gateway 10.8.0.1 x1",
                 "every ip-range or gateway must have a corresponding subnet")]


def test_what_the_cli_refuses_never_reaches_dockerd(lab):
    """The Docker CLI checks ``-p`` and ``--gateway`` before dockerd hears of the command: one line,
    in the CLI's words, and no dockerd started (no docker0, no rules)."""
    before = lab_state(lab)
    for cell, message in CLI_REFUSALS:
        r = lab.run(cell)
        assert r.usage_error == message and r.stdout == "", (cell, r.usage_error)
        assert lab.value(f"{ENGINE}.daemon is None"), cell
    assert lab_state(lab) == before


@pytest.mark.parametrize("proxy", [False, True], ids=["proxy-off", "proxy-on"])
def test_the_same_host_port_twice_in_one_run_is_refused(kernel, proxy):
    kernel.ok("%netlab reset")
    kernel.ok(f"%docker dockerd --userland-proxy={str(proxy).lower()}")
    before = lab_state(kernel)
    r = kernel.run("%docker run -d -p 8891:80 -p 8891:81 --name twice nginx")
    assert r.usage_error, r
    m = PORT_TAKEN.fullmatch(r.usage_error)
    assert m and m["name"] == "twice" and m["port"] == "8891", r.usage_error
    assert "Traceback" not in r.stdout + r.stderr
    assert lab_state(kernel) == before
    assert "twice" not in names(kernel)
    assert lab_save(kernel) == model_save(kernel)
    # the same, with an explicit address overlapping 0.0.0.0, and with the same binding twice
    for cell in ("%docker run -d -p 127.0.0.1:8891:80 -p 8891:81 --name twice nginx",
                 "%docker run -d -p 8891:80 -p 8891:80 --name twice nginx"):
        r = kernel.run(cell)
        assert r.usage_error and "failed: port is already allocated." in r.usage_error, (cell, r)
        assert lab_state(kernel) == before
    # different protocols, or different ports, are fine
    kernel.ok("%docker run -d -p 8891:80 -p 8891:80/udp -p 8892:81 --name ok nginx")
    assert kernel.ok("!iptables-save -t nat").stdout.count("--dport 8891 ") == 2


@pytest.mark.parametrize("proxy", [False, True], ids=["proxy-off", "proxy-on"])
def test_a_host_port_published_by_another_container_is_refused(kernel, proxy):
    kernel.ok("%netlab reset")
    kernel.ok(f"%docker dockerd --userland-proxy={str(proxy).lower()}")
    kernel.ok("%docker run -d -p 8891:80 --name first nginx")
    before = lab_state(kernel)
    r = kernel.run("%docker run -d -p 8891:80 --name second nginx")
    m = PORT_TAKEN.fullmatch(r.usage_error or "")
    assert m and m["name"] == "second", r
    assert lab_state(kernel) == before
    assert "second" not in names(kernel)
    dnat = [ln for ln in lab_save(kernel) if "--dport 8891 " in ln and "DNAT" in ln]
    assert len(dnat) == 1, dnat
    assert lab_save(kernel) == model_save(kernel)
    # once the first one is gone, the port is free again
    kernel.ok("%docker rm -f first")
    kernel.ok("%docker run -d -p 8891:80 --name second nginx")


# -- inspect -f: Go's template errors ---------------------------------------------------------------

TEMPLATE_ERRORS = [
    ("{{.Foo", "template parsing error: template: :1: unclosed action"),
    ("{{.Name}} {{", "template parsing error: template: :1: unclosed action"),
    ("{{.Foo}", 'template parsing error: template: :1: unexpected "}" in operand'),
    ("{{foo .Name}}", 'template parsing error: template: :1: function "foo" not defined'),
    ("{{}}", "template parsing error: template: :1: missing value for command"),
    ("{{end}}", "template parsing error: template: :1: unexpected {{end}}"),
    ("{{else}}", "template parsing error: template: :1: unexpected {{else}}"),
    ("{{range .NetworkSettings.Networks}}{{.IPAddress}}", "template parsing error: template: :1: unexpected EOF"),
    ("{{if}}x{{end}}", "template parsing error: template: :1: missing value for if"),
    ('{{index .Name "a}}', "template parsing error: template: :1: unterminated quoted string"),
    ("{{.Name)}}", 'template parsing error: template: :1: unexpected ")" in command'),
    ("{{.Foo\n", "template parsing error: template: :2: unclosed action started at :1"),
    ("{{/* no end }}", "template parsing error: template: :1: unclosed comment"),
    ("line one\n{{.Foo", "template parsing error: template: :2: unclosed action"),
    ("{{$x.Name}}", 'template parsing error: template: :1: undefined variable "$x"'),
]


@pytest.fixture(scope="module")
def web(kernel):
    kernel.ok("%netlab reset")
    kernel.ok("%docker run -d --name web busybox")
    return kernel


@pytest.mark.parametrize("template, message", TEMPLATE_ERRORS, ids=[t for t, _ in TEMPLATE_ERRORS])
def test_malformed_inspect_templates_are_gos_parse_errors(template, message):
    from netlab_magic.jupyter.docker_magic import render

    with pytest.raises(Exception) as err:
        render(template, {"Name": "/web"})
    assert str(err.value) == message


@pytest.mark.parametrize("cell", ["%docker inspect -f '{{.Foo' web",
                                  "%docker inspect --format='{{.Foo}' web",
                                  "%docker network inspect -f '{{.Name' bridge"])
def test_malformed_template_is_one_line_in_the_kernel(web, cell):
    r = web.run(cell)
    assert r.usage_error is not None, r
    assert r.usage_error.startswith("template parsing error: template: :1: "), r.usage_error
    assert r.stdout == "" and "Traceback" not in r.stderr and "{{" not in r.stdout


def test_good_templates_still_work(web):
    assert web.ok("%docker inspect -f '{{.Name}}' web").stdout == "/web\n"
    out = web.ok("%docker inspect -f '{{range $n, $c := .NetworkSettings.Networks}}{{$n}}={{$c.IPAddress}}"
                 "{{end}}' web").stdout
    assert out == "bridge=172.17.0.2\n"
    assert web.ok("%docker inspect -f '{{.Name | upper}} {{len .Name}}' web").stdout == "/WEB 4\n"
    assert web.ok("%docker inspect -f '{{if eq .State.Status \"running\"}}up{{else if .State.Running}}?"
                  "{{else}}down{{end}}' web").stdout == "up\n"
    assert web.ok("%docker inspect -f '{{- /* a comment */ -}} {{ .State.Running -}} !' web").stdout == "true!\n"
