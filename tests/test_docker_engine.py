"""``%docker`` in a real kernel: Docker's bridge networking built in the lab, real packets.

The talk's Demo 3 (two networks, one container on each: isolation) and Demo 4 (``-p 8888:80``
nginx, reached from the host) with the userland proxy off and on; the lab host's
``iptables-save`` against :func:`netlab_magic.docker.rules.iptables_save` (the model checked
against real dockerd captures); bad input in Docker's words with nothing half-built.
Every packet stays inside the lab's namespaces.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from netlab_magic.docker import webserver
from support import docker_lab
from support.docker_lab import ENGINE, lab_save, model_save, normalised
from support.waiting import wait_for

DEMO3 = [
    "%docker network create dummy1",
    "%docker network create dummy2",
    "%docker run --network=dummy1 --name=dummy1 -d jonlabelle/network-tools",
    "%docker run --network=dummy2 --name=dummy2 -d jonlabelle/network-tools",
]
DEMO4 = "%docker run -p 8888:80 --name=nginx -d nginx"


def proxy(k, on: bool) -> None:
    """A fresh lab whose dockerd runs with --userland-proxy=on/off."""
    k.ok("%netlab reset")
    r = k.ok(f"%docker dockerd --userland-proxy={str(on).lower()}")
    assert f"--userland-proxy={str(on).lower()}" in r.stdout


def drops(k, bridge: str) -> int:
    """Packets counted by ``-A DOCKER-ISOLATION-STAGE-2 -o BRIDGE -j DROP``."""
    out = k.ok("!iptables -t filter -L DOCKER-ISOLATION-STAGE-2 -v -n -x").stdout
    for line in out.splitlines():
        cols = line.split()
        if len(cols) >= 7 and cols[2] == "DROP" and cols[6] == bridge:
            return int(cols[0])
    raise AssertionError(f"no DROP rule for {bridge} in {out}")


def bridge_of(k, network: str) -> str:
    return k.value(f"{ENGINE}.daemon.networks[{network!r}].bridge")


def ip_of(k, container: str) -> str:
    r = k.ok(f"%docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}' "
             f"{container}")
    return r.stdout.strip()


def curl(k, where: str, url: str, tries: int = 20) -> str:
    """``curl -s URL`` from a namespace, retried while the server comes up."""
    for _ in range(tries):
        r = k.run(f"%netns {where} curl -s -m 2 {url}")
        if "Welcome to nginx!" in r.stdout:
            return r.stdout
        time.sleep(0.2)
    return r.stdout + r.stderr


def lab_state(k) -> dict:
    """Everything a docker command could leave behind, and the sysctls dockerd sets."""
    return {**docker_lab.lab_state(k),
            "sysctls": k.ok("!sysctl -a 2>/dev/null | grep -E 'route_localnet|ip_forward ' | sort").stdout}


# -- Demo 3: two networks, one container on each ------------------------------------------------


def test_demo3_isolation_drops_are_counted(lab):
    for cell in DEMO3:
        assert re.fullmatch(r"[0-9a-f]{64}\n", lab.ok(cell).stdout)
    assert ip_of(lab, "dummy1") == "172.18.0.2"
    assert ip_of(lab, "dummy2") == "172.19.0.2"
    r = lab.ok("%docker exec dummy1 ping -c 1 -W 1 172.18.0.1")
    assert "1 received" in r.stdout
    bridge2 = bridge_of(lab, "dummy2")
    before = drops(lab, bridge2)
    r = lab.run("%docker exec dummy1 ping -c 2 -i 0.2 -W 1 172.19.0.2")
    assert "0 received" in r.stdout and "(exit status 1)" in r.stderr
    assert drops(lab, bridge2) >= before + 2
    # what the container sees is what Docker gives it
    out = lab.ok("%docker exec dummy1 ip -o addr show eth0").stdout
    assert "172.18.0.2/16" in out
    assert "02:42:ac:12:00:02" in lab.ok("%docker exec dummy1 ip link show eth0").stdout
    assert "default via 172.18.0.1 dev eth0" in lab.ok("%docker exec dummy1 ip route").stdout
    # the host's side: bridge br-<12 hex of the id>, veth<7 hex> enslaved to it
    net_id = lab.ok("%docker network inspect -f '{{.Id}}' dummy1").stdout.strip()
    assert bridge_of(lab, "dummy1") == "br-" + net_id[:12]
    links = lab.ok(f"!ip -o link show master br-{net_id[:12]}").stdout
    assert re.search(r"\d+: veth[0-9a-f]{7}@", links), links


def test_ps_inspect_logs_stop_rm(lab):
    for cell in DEMO3:
        lab.ok(cell)
    ps = lab.ok("%docker ps").stdout.splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    assert [ln.split()[-1] for ln in ps[1:]] == ["dummy2", "dummy1"]
    assert [ln.split()[-1] for ln in lab.ok("%docker ls").stdout.splitlines()] == ["NAMES", "dummy2", "dummy1"]
    inspect = lab.ok("%docker inspect dummy1").stdout
    assert '"Name": "/dummy1"' in inspect and '"IPAddress": "172.18.0.2"' in inspect
    # on a user-defined network .NetworkSettings.IPAddress is empty, as in Docker
    assert lab.ok("%docker inspect -f '{{.NetworkSettings.IPAddress}}' dummy1").stdout == "\n"
    assert lab.ok("%docker stop dummy1").stdout == "dummy1\n"
    assert "dummy1" not in lab.ok("%docker ps").stdout
    assert re.search(r"Exited \(\d+\)", lab.ok("%docker ps -a").stdout)
    assert "dummy1" not in lab.ok("!ip netns list").stdout
    r = lab.run("%docker exec dummy1 true")
    assert r.usage_error and "is not running" in r.usage_error
    lab.ok("%docker rm dummy1")
    r = lab.run("%docker rm dummy2")
    assert r.usage_error.startswith("Error response from daemon: You cannot remove a running container")
    lab.ok("%docker rm -f dummy2")
    assert lab.ok("%docker ps -a").stdout.count("\n") == 1
    lab.ok("%docker network rm dummy1 dummy2")
    assert lab_save(lab) == model_save(lab)
    assert [ln.split()[1] for ln in lab.ok("%docker network ls").stdout.splitlines()[1:]] == ["bridge"]


def test_stop_interrupts_and_rm_force_kills_at_once(lab, tmp_path):
    """docker(1): ``rm -f`` "uses SIGKILL": the command's SIGINT trap never runs, as ``stop``'s does."""
    mark = tmp_path / "signals"
    trap = f"trap 'echo {{}} >> {mark}; exit 130' INT; echo up >> {mark}; while true; do sleep 0.1; done"
    for cell, heard in (("stop", ["up", "stop"]), ("rm -f", ["up"])):
        lab.ok(f'%docker run -d --name deaf busybox sh -c "{trap.format(cell)}"')
        assert wait_for(mark.exists)
        lab.ok(f"%docker {cell} deaf")
        assert mark.read_text().split() == heard
        lab.run("%docker rm deaf")
        mark.unlink()


def test_foreground_run_streams_and_exits(lab):
    r = lab.ok("%docker run --rm --name once busybox sh -c 'echo hello from $(ip -o -4 addr show eth0 | "
               "awk \"{print \\$4}\")'")
    assert r.stdout.strip() == "hello from 172.17.0.2/16"
    assert "once" not in lab.ok("%docker ps -a").stdout
    assert "once" not in lab.ok("!ip netns list").stdout
    r = lab.ok("%docker run --name kept busybox false")
    assert re.search(r"Exited \(1\).*kept", lab.ok("%docker ps -a").stdout)
    lab.ok("%docker run -d --rm --name brief busybox sleep 30")
    assert "brief" in lab.ok("%docker ps").stdout
    lab.ok("%docker stop brief")
    assert "brief" not in lab.ok("%docker ps -a").stdout
    assert lab_save(lab) == model_save(lab)


# -- Demo 4: a published port, proxy off and on ---------------------------------------------------


@pytest.mark.parametrize("on", [False, True], ids=["proxy-off", "proxy-on"])
def test_demo4_published_port(kernel, on):
    proxy(kernel, on)
    assert re.fullmatch(r"[0-9a-f]{64}\n", kernel.ok(DEMO4).stdout)
    ip = ip_of(kernel, "nginx")
    assert ip == "172.17.0.2"
    assert "Welcome to nginx!" in curl(kernel, "host", "localhost:8888")
    assert "Welcome to nginx!" in curl(kernel, "host", f"{ip}:80")
    assert "Welcome to nginx!" in curl(kernel, "host", "172.17.0.1:8888")
    jobs = kernel.ok("%netlab jobs").results[0]
    # our docker-proxy (python -m netlab_magic.docker.proxy), with the arguments of Docker's own
    assert ("docker.proxy -proto tcp -host-ip 0.0.0.0 -host-port 8888 -container-ip 172.17.0.2 "
            "-container-port 80" in jobs) == on
    route_localnet = kernel.ok("!sysctl -n net.ipv4.conf.docker0.route_localnet").stdout.strip()
    assert route_localnet == ("0" if on else "1")
    ps = kernel.ok("%docker ps").stdout
    assert "0.0.0.0:8888->80/tcp" in ps
    assert "GET / HTTP" in kernel.ok("%docker logs nginx").stdout
    kernel.ok("%docker rm -f nginx")
    assert "Welcome" not in kernel.run("%netns host curl -s -m 1 localhost:8888").stdout
    assert "docker-proxy" not in kernel.ok("%netlab jobs").results[0]


def test_the_web_server_asks_dns_nothing(kernel):
    """``nginx`` looks nothing up when it starts. Python's own ``http.server`` first asks DNS for
    the machine's host name (``getfqdn("0.0.0.0")``): in a container whose name no file knows, that
    is a query out of the lab container, and where nothing answers the server listens only after the
    resolver's 5-second timeout (the next cell's curl was refused, in a Docker container). Here the
    query goes to the lab's own host (172.17.0.1, where it is counted), under a host name no file
    knows; ``http.server`` is the control that shows a query would be seen."""
    proxy(kernel, False)
    kernel.ok("%docker run --name=web -d nginx")  # returns once the server listens: no retry below
    assert "Welcome to nginx!" in kernel.ok(f"%netns host curl -sS -m 2 {ip_of(kernel, 'web')}:80").stdout
    assert kernel.ok("%docker logs web").stdout.startswith("Serving HTTP on 0.0.0.0 port 80")
    kernel.ok("!iptables -t raw -I PREROUTING -i docker0 -d 172.17.0.1 -p udp --dport 53 -j ACCEPT")
    python = kernel.value("__import__('sys').executable")

    def queries_when_starting(server: str) -> int:
        kernel.ok("!iptables -t raw -Z PREROUTING")
        kernel.run(f"%netns web unshare --uts --mount sh -c 'echo nameserver 172.17.0.1 > /run/netlab-test-resolv"
                   f" && mount --bind /run/netlab-test-resolv /etc/resolv.conf && hostname netlab-no-such-host"
                   f" && exec timeout 3 {python} {server} 8080 --bind 0.0.0.0'")
        raw = kernel.ok("!iptables -t raw -L PREROUTING -v -n -x").stdout
        return int(next(line.split()[0] for line in raw.splitlines() if "dpt:53" in line))

    assert queries_when_starting("-m http.server") >= 1
    assert queries_when_starting("-I -S /run/netlab-docker/webserver.py") == 0  # as the image runs it


def test_the_web_servers_arguments_are_argparses(capsys):
    """The server reads its arguments without argparse (its import is slow in the VM's guest), as argparse did."""
    assert webserver.parse([]) == (80, "0.0.0.0", ".")
    assert webserver.parse(["8080", "--bind", "::", "--directory=/srv"]) == (8080, "::", "/srv")
    for argv, error in ((["--bind"], "argument --bind: expected one argument"),
                        (["eighty"], "argument port: invalid int value: 'eighty'"),
                        (["80", "81"], "unrecognized arguments: 81"), (["-x"], "unrecognized arguments: -x")):
        with pytest.raises(SystemExit) as ended:
            webserver.parse(argv)
        assert ended.value.code == 2
        assert capsys.readouterr().err == f"{webserver.USAGE}\nwebserver.py: error: {error}\n"


def test_the_web_server_listens_before_its_slow_import(lab, tmp_path):
    """nginx listens within milliseconds; ours listens before it imports ``http.server`` (a second
    of the VM guest's CPU), and a request made meanwhile waits in the socket's backlog until the
    handler is there. The import is held here: a package ``http`` of the test's own, beside a copy
    of the server, waits for a file before it loads the real one (``-S`` without ``-I``: the
    script's directory first on its path)."""
    shutil.copy(Path(webserver.__file__), tmp_path / "webserver.py")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("early\n")
    (tmp_path / "http").mkdir()
    go = tmp_path / "go"
    (tmp_path / "http" / "__init__.py").write_text(
        "import os, time\n"
        f"while not os.path.exists({str(go)!r}):\n    time.sleep(0.02)\n"
        "__path__[:] = [os.path.join(os.path.dirname(os.__file__), 'http')]\n"
        "exec(compile(open(__path__[0] + '/__init__.py').read(), __path__[0] + '/__init__.py', 'exec'))\n")
    python = lab.value("__import__('sys').executable")
    lab.ok(f"%docker run -d --name early busybox {python} -S {tmp_path}/webserver.py 80 --directory {tmp_path}/site")
    ip = ip_of(lab, "early")

    def queued() -> str | None:  # the listener's Recv-Q (connections not yet accepted), None if none listens
        line = lab.ok("%netns early ss -ltnH sport = :80").stdout.split()
        return line[1] if line else None

    def answered() -> str:
        return answer.read_text() if answer.exists() else ""

    answer = tmp_path / "answer"
    assert wait_for(lambda: queued() is not None), "the server did not listen while http.server's import was held"
    lab.ok(f"%docker run -d --name client busybox sh -c 'curl -sS -m 60 http://{ip}/ > {answer}'")
    assert wait_for(lambda: queued() == "1"), queued()  # the request waits in the backlog
    assert answered() == "" and lab.ok("%docker logs early").stdout == ""
    go.touch()
    assert wait_for(lambda: answered() == "early\n", timeout=60), answered()
    assert lab.ok("%docker logs early").stdout.startswith("Serving HTTP on 0.0.0.0 port 80")
    lab.ok("%docker rm -f early client")


# -- fidelity: the lab's firewall is the model's, which is dockerd's -------------------------------


@pytest.mark.parametrize("on", [False, True], ids=["proxy-off", "proxy-on"])
def test_iptables_save_equals_the_model(kernel, on):
    proxy(kernel, on)
    assert lab_save(kernel) == model_save(kernel)
    for cell in [*DEMO3, DEMO4]:
        kernel.ok(cell)
        assert lab_save(kernel) == model_save(kernel), cell
    save = lab_save(kernel)
    not_in = "! -i docker0 " if on else ""
    assert f"-A DOCKER {not_in}-p tcp -m tcp --dport 8888 -j DNAT --to-destination 172.17.0.2:80" in save
    assert ("-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER" in save) == on
    # counters stay across changes: a drop counted before a new network is still counted after
    bridge2 = bridge_of(kernel, "dummy2")
    kernel.run("%docker exec dummy1 ping -c 1 -W 1 172.19.0.2")
    counted = drops(kernel, bridge2)
    assert counted >= 1
    kernel.ok("%docker network create dummy3")
    kernel.ok("%docker rm -f nginx")
    assert drops(kernel, bridge2) == counted
    # taking everything down leaves what dockerd leaves: its start state
    kernel.ok("%docker rm -f dummy1 dummy2")
    kernel.ok("%docker network rm dummy1 dummy2 dummy3")
    assert lab_save(kernel) == model_save(kernel)
    start = kernel.value("__import__('netlab_magic.docker.rules', fromlist=['x']).iptables_save("
                         "__import__('netlab_magic.docker.daemon', fromlist=['x']).Daemon("
                         f"userland_proxy={on}))")
    assert lab_save(kernel) == normalised(start)


# -- bad input: Docker's words, one line, nothing half-built ---------------------------------------


BAD = [
    ("%docker network create dummy1", "Error response from daemon: network with name dummy1 already exists"),
    ("%docker run --name dummy1 -d busybox",
     'docker: Error response from daemon: Conflict. The container name "/dummy1" is already in use by container'),
    ("%docker run --network nope --name x -d busybox", "docker: Error response from daemon: network nope not found."),
    ("%docker network rm dummy1", "Error response from daemon: error while removing network: network dummy1 id "),
    ("%docker network rm bridge", "Error response from daemon: bridge is a pre-defined network and cannot be removed"),
    ("%docker network rm nope", "Error: No such network: nope"),
    ("%docker run -p 8888:80 --name web2 -d nginx",
     "docker: Error response from daemon: driver failed programming external connectivity on endpoint web2 ("),
    ("%docker run -p 8888 --name web3 -d nginx", "this lab needs HOST:CONTAINER"),
    ("%docker run --privileged --name x -d busybox", "%docker run: unsupported flag --privileged"),
    ("%docker run -v /tmp:/tmp -d busybox", "%docker run: unsupported flag -v"),
    ("%docker network create --attachable n9", "%docker network create: unsupported flag --attachable"),
    ("%docker rm nope", "Error: No such container: nope"),
    ("%docker inspect nope", "Error: No such object: nope"),
    ("%docker run --name 'bad name' -d busybox", "Invalid container name (bad name)"),
    ("%docker pull nginx", "docker: 'pull' is not a docker command in this lab"),
    ("%docker run -d nginx:", "docker: invalid reference format."),
    ("%docker run -d Nginx:1.25", "docker: invalid reference format: repository name (library/Nginx) must be lowercase."),
    ("%docker run", '"docker run" requires at least 1 argument.'),
    ("%docker exec dummy1", '"docker exec" requires at least 2 arguments.'),
]


@pytest.fixture(scope="module")
def busy(kernel):
    """Demo 3 and Demo 4 built once for the bad-input tests (each checks it changed nothing)."""
    kernel.ok("%netlab reset")
    for cell in [*DEMO3, DEMO4]:
        kernel.ok(cell)
    return kernel


@pytest.mark.parametrize("cell, message", BAD, ids=[c for c, _ in BAD])
def test_bad_input_is_one_line_in_dockers_words(busy, cell, message):
    before = lab_state(busy)
    r = busy.run(cell)
    assert r.usage_error is not None, r
    assert message in r.usage_error, r.usage_error
    assert "Traceback" not in r.stderr + r.stdout
    assert lab_state(busy) == before
    assert lab_save(busy) == model_save(busy)


def test_a_name_taken_by_a_user_namespace_is_refused(lab):
    lab.ok("!ip netns add web")
    before = lab_state(lab)
    r = lab.run("%docker run --name web -d nginx")
    assert r.usage_error and "already has a namespace called 'web'" in r.usage_error
    after = lab_state(lab)
    assert after["netns"] == before["netns"] and after["jobs"] == before["jobs"]
    assert "web" not in lab.ok("%docker ps -a").stdout


def test_proxy_bind_failure_rolls_back(kernel):
    proxy(kernel, True)
    kernel.ok("%%netns host --bg --name squatter\nexec python3 -c \"import socket,time; s=socket.socket(); "
              "s.bind(('0.0.0.0', 8888)); s.listen(); print('up', flush=True); time.sleep(60)\"")
    for _ in range(50):
        if "up" in kernel.ok("%netlab output squatter").stdout:
            break
        time.sleep(0.1)
    before = lab_state(kernel)
    r = kernel.run(DEMO4)
    assert r.usage_error and r.usage_error.startswith(
        "docker: Error response from daemon: driver failed programming external connectivity on endpoint nginx")
    assert "Error starting userland proxy: listen tcp4 0.0.0.0:8888: bind: address already in use" in r.usage_error
    assert lab_state(kernel) == before
    assert "nginx" not in kernel.ok("%docker ps -a").stdout
    kernel.ok("%netlab stop squatter")
    kernel.ok(DEMO4)  # the same command works once the port is free
    assert "Welcome to nginx!" in curl(kernel, "host", "localhost:8888")


def test_reset_gives_a_fresh_dockerd(lab):
    for cell in DEMO3:
        lab.ok(cell)
    lab.ok("%netlab reset")
    out = lab.ok("%docker network ls").stdout
    assert [ln.split()[1] for ln in out.splitlines()[1:]] == ["bridge"]
    assert lab.ok("%docker ps -a").stdout.count("\n") == 1
    lab.ok(DEMO3[0])  # dummy1 can be made again, and gets the first free pool again
    assert lab.ok("%docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}' dummy1").stdout \
        == "172.18.0.0/16\n"
    assert lab_save(lab) == model_save(lab)


def test_help_and_unsupported_flags_name_them(lab):
    assert "network create" in lab.ok("%docker --help").stdout
    r = lab.run("%docker run -d --name x --cap-add NET_ADMIN busybox")
    assert r.usage_error.startswith("%docker run: unsupported flag --cap-add")
    r = lab.run("%docker ps --format '{{.Names}}'")
    assert r.usage_error.startswith("%docker ps: unsupported flag --format")


def test_unnamed_containers_internal_networks_and_ids(lab):
    lab.ok("%docker network create --internal --subnet 10.9.0.0/24 inner")
    cid = lab.ok("%docker run -d --network inner busybox").stdout.strip()
    name = lab.ok(f"%docker inspect -f '{{{{.Name}}}}' {cid[:8]}").stdout.strip()
    assert re.fullmatch(r"/[a-z]+_[a-z]+", name), name
    assert ip_of(lab, name[1:]) == "10.9.0.2"
    assert "default" not in lab.ok(f"%docker exec {name[1:]} ip route").stdout  # no way out
    assert "1 received" in lab.ok(f"%docker exec {cid[:12]} ping -c 1 -W 1 10.9.0.1").stdout
    assert lab_save(lab) == model_save(lab)
    assert "-A DOCKER-ISOLATION-STAGE-1 ! -s 10.9.0.0/24 -o br-" in "\n".join(lab_save(lab))


def test_go_templates_docker_inspect_uses():
    from netlab_magic.jupyter.docker_magic import render

    data = {"Name": "/c1", "NetworkSettings": {"IPAddress": "", "Networks": {
        "b": {"IPAddress": "172.19.0.2"}, "a": {"IPAddress": "172.18.0.2"}}}, "State": {"Running": True}}
    assert render("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", data) == "172.18.0.2172.19.0.2"
    assert render("{{.NetworkSettings.IPAddress}}", data) == ""
    assert render("{{.Name}} {{.State.Running}}", data) == "/c1 true"
    assert render('{{index .NetworkSettings.Networks "b"}}', data) == "map[IPAddress:172.19.0.2]"
    assert render("{{json .State}}", data) == '{"Running":true}'
    assert render("{{if .State.Running}}up{{else}}down{{end}}", data) == "up"
