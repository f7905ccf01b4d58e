"""Judge a :class:`~kpctl.core.iptables_quick.QuickRule` against a packet without parsing it.

:func:`quick_miss` answers with the reason the full :func:`~kpctl.core.trace.netfilter.judge_rule`
would give when the rule cannot match, word for word (the trace prints it), and None when
the rule may match: the walk then parses that one rule in full and judges it as ever.
Only the judgements of the built-in match (src, dst, protocol, interfaces, in that order)
and of tcp/udp/sctp ports are reproduced; none of them carries a note or a chance.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from kpctl.core.iptables_quick import Address, QuickRule
from kpctl.model.iptables import PROTOCOL_NUMBERS
from kpctl.model.trace import Packet


@lru_cache(maxsize=64)
def _ipv4_int(address: str) -> int | None:
    """The packet address as an int when IPv4 (None: IPv6, inside no IPv4 network)."""
    ip = ipaddress.ip_address(address)  # a bad address fails as AddressMatch.matches would
    return int(ip) if ip.version == 4 else None


def _address_miss(label: str, spec: Address, address: str) -> str | None:
    network, mask, negated, shown = spec
    ip = _ipv4_int(address)
    inside = ip is not None and ip & mask == network
    if inside != negated:
        return None
    return f"{label} {address} {'∈' if inside else '∉'} {shown}" + (" (negated)" if negated else "")


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}:{hi}" for lo, hi in ranges)


def quick_miss(rule: QuickRule, packet: Packet) -> str | None:
    """Why ``rule`` cannot match ``packet`` (as judge_rule words it), or None if it may."""
    if rule.src is not None:
        why = _address_miss("src", rule.src, packet.src)
        if why is not None:
            return why
    if rule.dst is not None:
        why = _address_miss("dst", rule.dst, packet.dst)
        if why is not None:
            return why
    if rule.proto is not None:
        name, negated = rule.proto
        wanted = PROTOCOL_NUMBERS.get(packet.protocol.lower(), packet.protocol.lower())
        mine = PROTOCOL_NUMBERS.get(name, name)
        if (mine in ("all", "0") or mine == wanted) == negated:
            return f"protocol {packet.protocol} is not {'!' if negated else ''}{name}"
    for label, spec, device in (("in", rule.iif, packet.iif), ("out", rule.oif, packet.oif)):
        if spec is not None:
            name, negated = spec
            if device is None:
                hit = negated
            else:
                hit = (device.startswith(name[:-1]) if name.endswith("+") else device == name) != negated
            if not hit:
                return f"{label}-interface {device or '(none)'} vs {'!' if negated else ''}{name}"
    for module, sport, dport in rule.modules:
        if module != packet.protocol:
            return f"-m {module} needs a {module} packet"
        for label, ports, port in (("sport", sport, packet.sport), ("dport", dport, packet.dport)):
            if ports is not None:
                ranges, negated = ports
                if any(lo <= port <= hi for lo, hi in ranges) == negated:
                    return f"{label} {port} does not match {'!' if negated else ''}{_ranges(ranges)}"
    return None
