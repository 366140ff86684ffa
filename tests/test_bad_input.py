"""Bad input: one clear line, no traceback, and nothing half-built."""

from __future__ import annotations

import os

import pytest

from support.kernel_client import DEMO1


def names(k):
    return k.value("[(n.name, sorted(i.name for i in n.interfaces)) for n in "
                   "__import__('netlab_magic').Lab.current().snapshot().namespaces]")


@pytest.mark.parametrize("cell, message", [
    ("%netns ns9 true", "namespace 'ns9' does not exist (the lab has: host, ns1)"),
    ("%netns ../../etc true", "'../../etc' is not a valid namespace name"),
    ("%netns ns1;touch${IFS}/tmp/netlab-injected true", "is not a valid namespace name"),
    ("%netns ns1", "%netns needs a command after the namespace"),
    ("%%netns ns1 extra words\ntrue", "unrecognized arguments: extra words"),
    ("%netlab frobnicate", "%netlab: 'frobnicate' is not a %netlab command (see %netlab --help)"),
    ("%netlab output nosuchjob", "no job called 'nosuchjob'"),
    ("%netlab stop", "%netlab stop needs a job name"),
    ("%%netns ns1 --python --bg\npass", "--python runs in the kernel itself"),
    ("%%netns ns1 --name x\ntrue", "--name names a background job: add --bg"),
])
def test_magic_errors_are_one_line(lab, cell, message):
    lab.ok("!ip netns add ns1")
    r = lab.run(cell)
    assert r.usage_error is not None, r
    assert message in r.usage_error
    assert r.error is None or r.error[0] == "UsageError"
    assert "Traceback" not in r.stderr + r.stdout
    assert not os.path.exists("/tmp/netlab-injected")


def test_duplicate_job_name(lab):
    lab.ok("%%netns host --bg --name j\nsleep 30")
    r = lab.run("%%netns host --bg --name j\nsleep 30")
    assert r.usage_error == "job 'j' is already running; stop it first with %netlab stop j"
    lab.ok("%netlab stop j")


API = "from netlab_magic import Lab, NetlabError\nlab = Lab.current()\n"


@pytest.mark.parametrize("call, error, message", [
    ("lab.add_netns('a/b')", "InvalidName", "'a/b' is not a valid namespace name"),
    ("lab.add_netns('..')", "InvalidName", "'..' is not a valid namespace name"),
    ("lab.add_netns('ns1')", "AlreadyExists", "namespace 'ns1' already exists"),
    ("lab.add_netns('host')", "InvalidName", "'host' is the lab's host"),
    ("lab.netns('ns7')", "NamespaceNotFound", "namespace 'ns7' does not exist"),
    ("lab.host.add_veth('a-name-far-too-long', peer='x')", "InvalidName", "the kernel allows at most 15"),
    ("lab.host.add_veth('va', peer='vb', peer_netns='nope')", "NamespaceNotFound", "namespace 'nope' does not exist"),
    ("lab.host.add_veth('veth2', peer='vb')", "AlreadyExists", "interface 'veth2' already exists in namespace 'host'"),
    ("lab.host.add_veth('vnew', peer='veth1', peer_netns='ns1')", "AlreadyExists", "interface 'veth1' already exists in namespace 'ns1'"),
    ("lab.host.addr_add('veth2', '10.0.0.300/24')", "InvalidAddress", "'10.0.0.300/24' is not a valid address/prefix"),
    ("lab.host.addr_add('veth2', '10.0.0.5')", "InvalidAddress", "is not an address with a prefix length"),
    ("lab.host.addr_add('nosuch0', '10.0.0.5/24')", "NotFound", "interface 'nosuch0' does not exist in namespace 'host'"),
    ("lab.host.route_add('10.1.0.0/24', via='10.0.0.999')", "InvalidAddress", "'10.0.0.999' is not a valid IP address"),
    ("lab.host.link_set_master('veth2', 'nobridge')", "NotFound", "interface 'nobridge' does not exist"),
    ("lab.host.sysctl('kernel.hostname', 'x')", "InvalidName", "is not a per-namespace sysctl"),
    ("lab.host.sysctl('net.ipv4.no_such_thing')", "NotFound", "sysctl 'net.ipv4.no_such_thing' does not exist"),
])
def test_api_errors_are_typed_one_liners_and_build_nothing(lab, call, error, message):
    lab.ok(DEMO1)
    before = names(lab)
    r = lab.run(API + f"try:\n    {call}\nexcept NetlabError as e:\n    print(type(e).__name__ + '|' + str(e))")
    assert r.error is None, r
    kind, text = r.stdout.strip().split("|", 1)
    assert kind == error and message in text and "\n" not in text
    assert names(lab) == before


def test_api_errors_in_a_cell_show_one_line(lab):
    r = lab.run(API + "lab.add_netns('bad name')")
    assert r.error[0] == "InvalidName"
