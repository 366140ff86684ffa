"""Pure checks of what users type (no privileges, no kernel)."""

import pytest

from netlab_magic.jupyter.arguments import FLAG_OPTIONS, VALUE_OPTIONS, split_command
from netlab_magic.errors import InvalidAddress, InvalidName
from netlab_magic.names import check_ifname, check_netns_name, parse_interface, parse_network


@pytest.mark.parametrize("name", ["ns1", "red", "ns-2", "a_b", "x.y", "N" * 64])
def test_valid_netns_names(name):
    assert check_netns_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../etc", "ns 1", "ns1;touch x", "$(id)", "-x", "N" * 65])
def test_invalid_netns_names(name):
    with pytest.raises(InvalidName) as err:
        check_netns_name(name)
    assert "\n" not in str(err.value)


def test_ifname_limit_is_15_bytes():
    assert check_ifname("a" * 15)
    with pytest.raises(InvalidName, match="at most 15"):
        check_ifname("a" * 16)
    with pytest.raises(InvalidName, match="too long"):
        check_ifname("é" * 8)  # 16 bytes in UTF-8


@pytest.mark.parametrize("name", ["eth0:1", "a/b", "..", "", "veth 1"])
def test_invalid_ifnames(name):
    with pytest.raises(InvalidName):
        check_ifname(name)


def test_cidrs():
    assert str(parse_interface("10.0.0.1/24").network) == "10.0.0.0/24"
    for bad in ["10.0.0.1", "10.0.0.300/24", "10.0.0.1/33", "ten/8", ""]:
        with pytest.raises(InvalidAddress):
            parse_interface(bad)
    assert str(parse_network("default")) == "0.0.0.0/0"
    with pytest.raises(InvalidAddress):
        parse_network("10.0.0.1/24")  # host bits set: not a network


@pytest.mark.parametrize("line, head, command", [
    ("ns1 ip addr", "ns1", "ip addr"),
    ("--timeout 3 ns1 ping -c 1 10.0.0.1", "--timeout 3 ns1", "ping -c 1 10.0.0.1"),
    ("ns1  echo 'a  b' | nc -N 10.0.0.1 8080", "ns1", "echo 'a  b' | nc -N 10.0.0.1 8080"),
    ("--bg -n l host nc -l 8080", "--bg -n l host", "nc -l 8080"),
    ("ns1", "ns1", ""),
])
def test_the_netns_split_keeps_the_command_verbatim(line, head, command):
    assert split_command(line, VALUE_OPTIONS, FLAG_OPTIONS) == (head, command)
