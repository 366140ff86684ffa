"""Connection tracking: what the kernel remembers of each connection in a namespace, and its NAT.

Each entry holds two tuples: the *original* direction as the first packet went, and the
*reply* direction as the kernel expects the answer. Without NAT one is the other reversed; a
DNAT shows as a reply coming from another address (the container), a SNAT or MASQUERADE as a
reply going to another address (the host). Read with ``conntrack -L -o xml`` (Debian's
conntrack tool) inside the namespace.

    >>> conntrack_table(lab, "host")      # %netlab conntrack host
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..display import Table
from ..errors import NetlabError
from .headers import address_port

if TYPE_CHECKING:
    from ..lab.lab import Lab


class ConntrackError(NetlabError):
    """The connection-tracking table cannot be read."""


@dataclass(frozen=True)
class Endpoint:
    """One direction of a connection: source and destination, with ports where the protocol has them."""

    src: str
    dst: str
    sport: int | None = None
    dport: int | None = None

    @property
    def source(self) -> str:
        return address_port(self.src, self.sport)

    @property
    def destination(self) -> str:
        return address_port(self.dst, self.dport)

    def __str__(self) -> str:
        return f"{self.source} > {self.destination}"


@dataclass(frozen=True)
class Connection:
    """One entry of the table (``conntrack -L``)."""

    protocol: str
    original: Endpoint
    reply: Endpoint
    state: str | None = None  # TCP's: SYN_SENT, ESTABLISHED, TIME_WAIT, ...
    assured: bool = False
    unreplied: bool = False
    timeout: int | None = None
    mark: int = 0

    @property
    def dnat(self) -> str | None:
        """Where DNAT sent the connection (the reply comes from there), or None."""
        if (self.reply.src, self.reply.sport) != (self.original.dst, self.original.dport):
            return self.reply.source
        return None

    @property
    def snat(self) -> str | None:
        """What SNAT (or MASQUERADE) made the source (the reply goes there), or None."""
        if (self.reply.dst, self.reply.dport) != (self.original.src, self.original.sport):
            return self.reply.destination
        return None

    @property
    def nat(self) -> str:
        parts = [f"DNAT to {self.dnat}"] if self.dnat else []
        parts += [f"SNAT to {self.snat}"] if self.snat else []
        return ", ".join(parts) or "-"


def _endpoint(meta: ET.Element) -> tuple[str, Endpoint]:
    l3, l4 = meta.find("layer3"), meta.find("layer4")

    def port(name: str) -> int | None:
        node = l4.find(name) if l4 is not None else None
        return int(node.text) if node is not None and node.text else None
    name = (l4.get("protoname") if l4 is not None else "") or "?"
    if name == "unknown" and l4 is not None:  # conntrack names only the protocols it has a tracker for
        name = {"2": "igmp"}.get(l4.get("protonum", ""), f"proto {l4.get('protonum')}")
    return (name,
            Endpoint(l3.findtext("src", ""), l3.findtext("dst", ""), port("sport"), port("dport")))


def parse_conntrack_xml(text: str) -> list[Connection]:
    """``conntrack -L -o xml`` as connections, sorted (the kernel lists them in hash order)."""
    if not text.strip():
        return []
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise ConntrackError(f"cannot read conntrack's output: {err}") from err
    found = []
    for flow in root.iter("flow"):
        metas = {m.get("direction"): m for m in flow.findall("meta")}
        if "original" not in metas or "reply" not in metas:
            continue
        protocol, original = _endpoint(metas["original"])
        _, reply = _endpoint(metas["reply"])
        extra = metas.get("independent")
        found.append(Connection(
            protocol=protocol, original=original, reply=reply,
            state=extra.findtext("state") if extra is not None else None,
            assured=extra is not None and extra.find("assured") is not None,
            unreplied=extra is not None and extra.find("unreplied") is not None,
            timeout=int(extra.findtext("timeout")) if extra is not None and extra.findtext("timeout") else None,
            mark=int(extra.findtext("mark") or 0) if extra is not None else 0))
    return sorted(found, key=lambda c: (c.protocol, str(c.original), str(c.reply)))


def read_conntrack(lab: "Lab", netns: str, protocol: str | None = None) -> list[Connection]:
    """Equivalent to: ``ip netns exec NETNS conntrack -L [-p PROTOCOL]``."""
    lab.require(netns)
    if shutil.which("conntrack") is None:
        raise ConntrackError("the conntrack tool is not installed: apt-get install conntrack")
    result = lab.run(netns, ["conntrack", "-L", "-o", "xml", *(["-p", protocol] if protocol else [])])
    if result.returncode:
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        raise ConntrackError(f"conntrack -L in {netns!r} failed: {lines[-1] if lines else result.returncode}")
    return parse_conntrack_xml(result.stdout)


def conntrack_table(lab: "Lab", netns: str, protocol: str | None = None) -> Table:
    """The connection-tracking table of ``netns`` (only ``protocol``'s entries, if given):
    original and reply tuples, NAT, TCP state."""
    rows = []
    for c in read_conntrack(lab, netns, protocol):
        flags = " ".join(f for f, on in (("ASSURED", c.assured), ("UNREPLIED", c.unreplied)) if on)
        rows.append([c.protocol, c.state or "-", str(c.original), str(c.reply), c.nat, flags or "-"])
    return Table(f"conntrack in {netns}" + (f" ({protocol})" if protocol else ""), ["protocol", "state", "original (first packet)", "reply (expected back)",
                                          "NAT", "flags"], rows,
                 empty="(no connection tracked: the kernel tracks connections once a rule needs it, "
                       "e.g. NAT or -m conntrack)")
