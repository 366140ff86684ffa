"""What each node and port of the topology says: its state as drawn, its short label, its tooltip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .text_boxes import v4_first


def display_state(i: Mapping[str, Any]) -> str:
    """The state to draw: the operstate, except that ``UNKNOWN`` is what ``lo`` (and dummies,
    which have no carrier to report) always say: administratively up, such a device works."""
    state = i.get("state") or "UNKNOWN"
    if state == "UNKNOWN":
        return "UP" if i.get("admin_up") else "DOWN"
    return state


def port_title(ns: str, i: Mapping[str, Any]) -> str:
    """An interface's tooltip: kind, index, state, MTU, MAC, addresses, bridge, peer."""
    lines = [f"{ns}/{i['name']} ({i.get('kind') or '?'}, index {i.get('index')})"]
    state = i.get("state")
    shown = display_state(i)
    if state != shown:
        lines.append(f"state {shown} (operstate {state}: {i.get('kind') or 'this device'} reports no carrier), "
                     f"admin {'up' if i.get('admin_up') else 'down'}")
    else:
        lines.append(f"state {state}, admin {'up' if i.get('admin_up') else 'down'}")
    lines.append(f"mtu {i.get('mtu')}" + (f", mac {i['mac']}" if i.get("mac") else ""))
    lines += list(i.get("addresses") or ())
    if i.get("master"):
        lines.append(f"port of bridge {i['master']}")
    peer = i.get("peer")
    if peer:
        lines.append(f"peer {peer.get('netns') or '(outside the lab)'}/{peer.get('ifname') or '?'}")
    return "\n".join(lines)


def ns_title(ns: Mapping[str, Any]) -> str:
    """A namespace's tooltip: its interfaces and routes."""
    ifaces = ns.get("interfaces") or ()
    lines = [f"namespace {ns['name']}: {len(ifaces)} interface(s)"]
    for i in ifaces:
        addrs = " ".join(i.get("addresses") or ())
        lines.append(f"  {i['name']} {display_state(i)} {addrs}".rstrip())
    routes = ns.get("routes") or ()
    if routes:
        lines.append("routes:")
        for r in routes:
            parts = [r.get("dst") or "?"]
            if r.get("gateway"):
                parts += ["via", r["gateway"]]
            if r.get("dev"):
                parts += ["dev", r["dev"]]
            lines.append("  " + " ".join(parts))
    return "\n".join(lines)


def short_lines(i: Mapping[str, Any]) -> list[str]:
    """Name and up to two addresses, IPv6 link-local left to the tooltip."""
    if i.get("kind") == "loopback":
        return [i["name"]]
    return [i["name"], *v4_first(i.get("addresses") or ())[:2]]
