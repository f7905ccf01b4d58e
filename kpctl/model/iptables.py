"""iptables rule sets as plain values, shaped for evaluation as well as display.

A :class:`Ruleset` is one `iptables-save` document: one address family on one backend
(nft or legacy).  Rules keep every option in order (``Option``) so nothing is lost, and
offer typed views of the matches and targets a packet walk needs (addresses with prefix
and negation, ports and ranges, ipset lookups, statistic/recent, marks, NAT ranges…).

Typed views are built from the options on first use; the parser touches them once per
rule so that a bad value is reported at parse time, not in the middle of a trace.
Nothing here does I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from socket import AF_INET, AF_INET6, inet_ntop, inet_pton
from typing import Any, NamedTuple, Protocol, Union

from kpctl.model.cached import cached_view

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # evaluated at run time: no `|` on 3.9
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

FAMILIES: tuple[str, ...] = ("ipv4", "ipv6")
BACKENDS: tuple[str, ...] = ("nft", "legacy")

# The built-in chains of each table, in the order the kernel (and iptables-save) lists them.
BUILTIN_CHAINS: dict[str, tuple[str, ...]] = {
    "raw": ("PREROUTING", "OUTPUT"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}
# Targets that end the walk of the current hook for the packet (terminal for this table).
TERMINAL_TARGETS: frozenset[str] = frozenset(
    {"ACCEPT", "DROP", "REJECT", "DNAT", "SNAT", "MASQUERADE", "REDIRECT", "QUEUE", "NFQUEUE"}
)
KUBE_PREFIX = "KUBE-"


@dataclass(frozen=True)
class Counters:
    """Packet and byte counters of a rule (`[packets:bytes]` in iptables-save)."""

    packets: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"packets": self.packets, "bytes": self.bytes}


class Option(NamedTuple):
    """One option as written: ``name`` with its dashes (``-s``, ``--dport``), values, ``!``.

    A NamedTuple: a 110,000-rule document holds a million, and a tuple of strings costs the
    cycle collector nothing once seen, where a dataclass instance is rescanned every time."""

    name: str
    values: tuple[str, ...] = ()
    negated: bool = False

    @property
    def value(self) -> str | None:
        return self.values[0] if self.values else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "negated": self.negated}


# ---------------------------------------------------------------- typed values


def _int(text: str) -> int:
    return int(text, 0)


def _ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


Address = tuple[int, int, bool, str]  # (network, mask, negated, the network as ipaddress prints it)
_FULL = 0xFFFFFFFF


def ipv4_int(text: str) -> int | None:
    """``A.B.C.D`` as ``int(ipaddress.ip_address(text))`` when it is a valid IPv4 address, else None
    (glibc's inet_pton takes exactly the dotted quads ipaddress takes: no leading zeros, 0-255)."""
    try:
        return int.from_bytes(inet_pton(AF_INET, text), "big")
    except (OSError, ValueError):  # ValueError: NUL or non-ASCII text
        return None


def ipv6_address(text: str) -> bool:
    """Whether ``text`` is an IPv6 address inet_pton reads (ipaddress takes those too, and besides
    them only forms with a scope, ``fe80::1%eth0``: a caller that must take every form asks
    ipaddress when this says no)."""
    try:
        inet_pton(AF_INET6, text)
    except (OSError, ValueError):  # ValueError: NUL or non-ASCII text
        return False
    return True


def ipv6_host(text: str) -> str | None:
    """``ADDRESS[/128]`` of an IPv6 host as ipaddress writes its network (kube-proxy's every IPv6
    -s and -d), read by inet_pton and written by inet_ntop; None for anything else: another
    prefix, or an address inet_ntop writes with an IPv4 tail (ipaddress writes those otherwise,
    and differently before Python 3.13).  Checked equal to ipaddress on 300,000 addresses."""
    address, slash, length = text.partition("/")
    if slash and length != "128":
        return None
    try:
        shown = inet_ntop(AF_INET6, inet_pton(AF_INET6, address))
    except (OSError, ValueError):
        return None
    return None if "." in shown else shown + "/128"


@lru_cache(maxsize=1024)
def _network_text(text: str) -> str:
    """The network ``text`` as ipaddress writes it (ValueError when it is none): what is left for
    ipaddress, an IPv6 network other than a host, is a node's few cluster CIDRs, each met in
    thousands of rules (`! -s fd00:10:244::/56 -j KUBE-MARK-MASQ` of every service)."""
    return str(ipaddress.ip_network(text, strict=False))


def ipv4_network(text: str, negated: bool) -> Address | None:
    """``A.B.C.D[/LEN]`` as ``ipaddress.ip_network(text, strict=False)`` reads it, or None."""
    address, slash, length = text.partition("/")
    value = ipv4_int(address)
    if value is None:
        return None
    if not slash or length == "32":  # a host, kube-proxy's every -s and -d: its own network
        return value, _FULL, negated, address + "/32"
    prefix = 32
    if slash:
        if not (0 < len(length) <= 2 and length.isascii() and length.isdigit()) or int(length) > 32:
            return None
        prefix = int(length)
    mask = (_FULL << (32 - prefix)) & _FULL
    network = value & mask
    shown = address if network == value else inet_ntop(AF_INET, network.to_bytes(4, "big"))
    return network, mask, negated, f"{shown}/{prefix}"


@dataclass(frozen=True)
class AddressMatch:
    """``-s``/``-d`` (and conntrack's addresses): a network with prefix, maybe negated."""

    address: str  # as written, e.g. "10.0.0.0/8"
    negated: bool = False
    # made from those by __init__ (a bad address fails there, at parse time):
    ipv4: Address | None = field(init=False, repr=False, compare=False)  # (network, mask, negated, cidr)
    cidr: str = field(init=False, repr=False, compare=False)  # the network as ipaddress writes it ("10.0.0.0/8")

    def __init__(self, address: str, negated: bool = False) -> None:
        # the fields set straight into the instance (a node builds tens of thousands: the frozen
        # __init__'s object.__setattr__ per field cost more than the rest)
        held = self.__dict__
        held["address"], held["negated"] = address, negated
        ipv4 = held["ipv4"] = ipv4_network(address, negated)
        held["cidr"] = ipv4[3] if ipv4 is not None else ipv6_host(address) or _network_text(address)

    @cached_view
    def network(self) -> IPNetwork:
        return ipaddress.ip_network(self.address, strict=False)

    @property
    def version(self) -> int:
        return 6 if ":" in self.cidr else 4

    @property
    def prefix(self) -> int:
        return int(self.cidr.rpartition("/")[2])

    def matches(self, ip: str | IPAddress) -> bool:
        value = ipv4_int(ip) if self.ipv4 is not None and isinstance(ip, str) else None
        if value is not None and self.ipv4 is not None:
            return (value & self.ipv4[1] == self.ipv4[0]) != self.negated
        address = _ip(ip) if isinstance(ip, str) else ip
        inside = address.version == self.network.version and address in self.network
        return inside != self.negated

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.cidr, "prefix": self.prefix, "negated": self.negated}


@dataclass(frozen=True)
class InterfaceMatch:
    """``-i``/``-o``: a name, ``+`` at the end is a wildcard prefix."""

    name: str
    negated: bool = False

    @property
    def wildcard(self) -> bool:
        return self.name.endswith("+")

    def matches(self, interface: str) -> bool:
        hit = interface.startswith(self.name[:-1]) if self.wildcard else interface == self.name
        return hit != self.negated

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "wildcard": self.wildcard, "negated": self.negated}


# Names iptables-save may print as numbers (and /etc/protocols aliases), all as numbers.
PROTOCOL_NUMBERS: dict[str, str] = {
    "icmp": "1", "tcp": "6", "udp": "17", "sctp": "132", "udplite": "136", "dccp": "33",
    "ipv6-icmp": "58", "icmpv6": "58", "icmp6": "58", "gre": "47", "esp": "50", "ah": "51",
    "all": "all",
}


@dataclass(frozen=True)
class ProtocolMatch:
    """`-p PROTO` (optionally negated)."""

    name: str  # tcp|udp|sctp|icmp|all|a number…
    negated: bool = False

    def matches(self, protocol: str) -> bool:
        wanted = PROTOCOL_NUMBERS.get(protocol.lower(), protocol.lower())
        mine = PROTOCOL_NUMBERS.get(self.name.lower(), self.name.lower())
        hit = mine in ("all", "0") or mine == wanted
        return hit != self.negated

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "negated": self.negated}


# A node's -s/-d are few networks met in many rules (the cluster CIDR of every service's
# masquerade rule, each service address in its KUBE-SERVICES and KUBE-SVC rules), its -p fewer:
# each made once while it recurs (the matches are immutable, so the rules share them).
_address_match = lru_cache(maxsize=4096)(AddressMatch)
_protocol_match = lru_cache(maxsize=64)(ProtocolMatch)


def parse_port_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """``80`` / ``30000:32767`` / ``80,443,8000:8080`` → ((lo, hi), …)."""
    ranges = []
    for part in text.split(","):
        low, sep, high = part.partition(":")
        if not all(word.isascii() and word.isdigit() for word in (low, high) if word):
            raise ValueError(f"bad port {part!r}")  # (iptables-save writes numbers, not service names)
        lo = int(low) if low else 0
        hi = (int(high) if high else 65535) if sep else lo
        if not (0 <= lo <= 65535 and 0 <= hi <= 65535) or lo > hi:
            raise ValueError(f"bad port range {part!r}")
        ranges.append((lo, hi))
    return tuple(ranges)


@dataclass(frozen=True)
class PortMatch:
    """`--sport`/`--dport`/`--sports`/`--dports`: port ranges (optionally negated)."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def matches(self, port: int) -> bool:
        return any(lo <= port <= hi for lo, hi in self.ranges) != self.negated

    def to_dict(self) -> dict[str, Any]:
        return {"ranges": [list(r) for r in self.ranges], "negated": self.negated}


@dataclass(frozen=True)
class SetMatch:
    """``-m set --match-set NAME FLAGS``: FLAGS like ("dst", "dst") select packet fields."""

    name: str
    flags: tuple[str, ...]
    negated: bool = False
    return_nomatch: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "flags": list(self.flags), "negated": self.negated,
                "return_nomatch": self.return_nomatch}


@dataclass(frozen=True)
class StatisticMatch:
    """`-m statistic`: random with a probability, or every nth packet."""

    mode: str  # random|nth
    probability: float | None = None
    every: int | None = None
    packet: int | None = None
    negated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "probability": self.probability, "every": self.every,
                "packet": self.packet, "negated": self.negated}


@dataclass(frozen=True)
class RecentMatch:
    """`-m recent`: a list of recently seen addresses and what the rule does with it."""

    name: str = "DEFAULT"
    action: str | None = None  # set|rcheck|update|remove
    seconds: int | None = None
    hitcount: int | None = None
    reap: bool = False
    rttl: bool = False
    side: str = "rsource"  # rsource|rdest: which address is remembered
    mask: str | None = None
    negated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "seconds": self.seconds,
                "hitcount": self.hitcount, "reap": self.reap, "rttl": self.rttl,
                "side": self.side, "mask": self.mask, "negated": self.negated}


@dataclass(frozen=True)
class AddrtypeMatch:
    """`-m addrtype`: source/destination address types (LOCAL, UNICAST, …)."""

    src_type: tuple[str, ...] | None = None
    src_negated: bool = False
    dst_type: tuple[str, ...] | None = None
    dst_negated: bool = False
    limit_iface_in: bool = False
    limit_iface_out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"src_type": None if self.src_type is None else list(self.src_type),
                "src_negated": self.src_negated,
                "dst_type": None if self.dst_type is None else list(self.dst_type),
                "dst_negated": self.dst_negated, "limit_iface_in": self.limit_iface_in,
                "limit_iface_out": self.limit_iface_out}


@dataclass(frozen=True)
class MarkMatch:
    """``-m mark --mark V[/M]`` (and connmark): true when (mark & M) == V."""

    value: int
    mask: int = 0xFFFFFFFF
    negated: bool = False

    def matches(self, mark: int) -> bool:
        return ((mark & self.mask) == self.value) != self.negated

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "mask": self.mask, "negated": self.negated}


def parse_mark(text: str) -> tuple[int, int | None]:
    value, sep, mask = text.partition("/")
    return _int(value), (_int(mask) if sep else None)


@dataclass(frozen=True)
class ConntrackMatch:
    """`-m conntrack`: connection tracking state, status, direction and tuple parts."""

    ctstate: tuple[str, ...] | None = None
    ctstate_negated: bool = False
    ctstatus: tuple[str, ...] | None = None
    ctstatus_negated: bool = False
    ctproto: ProtocolMatch | None = None
    ctorigsrc: AddressMatch | None = None
    ctorigdst: AddressMatch | None = None
    ctreplsrc: AddressMatch | None = None
    ctrepldst: AddressMatch | None = None
    ctorigsrcport: PortMatch | None = None
    ctorigdstport: PortMatch | None = None
    ctreplsrcport: PortMatch | None = None
    ctrepldstport: PortMatch | None = None
    ctdir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value is None or value is False:
                continue
            out[name] = value.to_dict() if hasattr(value, "to_dict") else (
                list(value) if isinstance(value, tuple) else value)
        return out


@dataclass(frozen=True)
class PhysdevMatch:
    """`-m physdev`: the bridge ports a bridged packet came in or goes out on."""

    physdev_in: InterfaceMatch | None = None
    physdev_out: InterfaceMatch | None = None
    is_in: bool | None = None  # True: --physdev-is-in, False: ! --physdev-is-in
    is_out: bool | None = None
    is_bridged: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"physdev_in": self.physdev_in.to_dict() if self.physdev_in else None,
                "physdev_out": self.physdev_out.to_dict() if self.physdev_out else None,
                "is_in": self.is_in, "is_out": self.is_out, "is_bridged": self.is_bridged}


# ---------------------------------------------------------------- matches


_ADDRESS_OPTS = {"-s": "src", "--source": "src", "-d": "dst", "--destination": "dst"}
BUILTIN_OPTIONS = frozenset({"-s", "--source", "-d", "--destination", "-p", "--protocol",
                           "-i", "--in-interface", "-o", "--out-interface", "-f", "--fragment"})


# -p, -s, -d, -i, -o of a rule (Match.builtins, Rule.builtins)
Builtins = tuple[Union[ProtocolMatch, None], Union[AddressMatch, None], Union[AddressMatch, None],
                 Union[InterfaceMatch, None], Union[InterfaceMatch, None]]
_NO_BUILTINS: Builtins = (None, None, None, None, None)
_BUILTIN_KINDS = {"-p": 0, "--protocol": 0, "-s": 1, "--source": 1, "-d": 2, "--destination": 2,
                  "-i": 3, "--in-interface": 3, "-o": 4, "--out-interface": 4}


@dataclass(frozen=True)
class Match:
    """One match: ``module`` is the ``-m`` name, or "" for the built-in -s/-d/-p/-i/-o/-f.

    ``options`` keep every option in order; unknown modules are kept as they are (their
    typed views are all None) and written back verbatim.
    """

    module: str
    options: tuple[Option, ...] = ()

    def option(self, *names: str) -> Option | None:
        for opt in self.options:
            if opt.name in names:
                return opt
        return None

    def _has(self, name: str) -> bool:
        return any(opt.name == name for opt in self.options)

    # -- built-ins ("" module)
    @cached_view
    def builtins(self) -> Builtins:
        """-p, -s, -d, -i, -o (each None unless this is the built-in match and has it), read in
        one pass over the options: the first of each, as :meth:`option` finds it."""
        if self.module != "":
            return _NO_BUILTINS
        first: dict[int, Option] = {}
        for option in self.options:
            kind = _BUILTIN_KINDS.get(option.name)
            if kind is not None and kind not in first:
                first[kind] = option
        if not first:
            return _NO_BUILTINS
        # built in the order validate() reads them, so the first bad value is the one reported
        src = _address_match(_one(opt), opt.negated) if (opt := first.get(1)) else None
        dst = _address_match(_one(opt), opt.negated) if (opt := first.get(2)) else None
        protocol = _protocol_match(_one(opt).lower(), opt.negated) if (opt := first.get(0)) else None
        iif = InterfaceMatch(_one(opt), opt.negated) if (opt := first.get(3)) else None
        oif = InterfaceMatch(_one(opt), opt.negated) if (opt := first.get(4)) else None
        return protocol, src, dst, iif, oif

    @cached_view
    def src(self) -> AddressMatch | None:
        return self.builtins[1]

    @cached_view
    def dst(self) -> AddressMatch | None:
        return self.builtins[2]

    @cached_view
    def protocol(self) -> ProtocolMatch | None:
        return self.builtins[0]

    @cached_view
    def in_interface(self) -> InterfaceMatch | None:
        return self.builtins[3]

    @cached_view
    def out_interface(self) -> InterfaceMatch | None:
        return self.builtins[4]

    @cached_view
    def fragment(self) -> bool | None:
        opt = self.option("-f", "--fragment") if self.module == "" else None
        return None if opt is None else not opt.negated

    # -- tcp/udp/sctp/udplite (and multiport, whose ports are lists)
    @cached_view
    def sport(self) -> PortMatch | None:
        return self._ports("--sport", "--source-port", "--sports", "--source-ports")

    @cached_view
    def dport(self) -> PortMatch | None:
        return self._ports("--dport", "--destination-port", "--dports", "--destination-ports")

    @cached_view
    def ports(self) -> PortMatch | None:
        """multiport ``--ports``: source or destination port."""
        return self._ports("--ports") if self.module == "multiport" else None

    def _ports(self, *names: str) -> PortMatch | None:
        if self.module not in ("tcp", "udp", "sctp", "udplite", "dccp", "multiport"):
            return None
        opt = self.option(*names)
        return PortMatch(parse_port_ranges(_one(opt)), opt.negated) if opt else None

    # -- modules kube-proxy uses
    @cached_view
    def match_set(self) -> SetMatch | None:
        if self.module != "set":
            return None
        opt = self.option("--match-set", "--set")
        if opt is None:
            return None
        if len(opt.values) != 2:
            raise ValueError("--match-set needs NAME FLAGS")
        return SetMatch(opt.values[0], tuple(opt.values[1].split(",")), opt.negated,
                        self._has("--return-nomatch"))

    @cached_view
    def statistic(self) -> StatisticMatch | None:
        if self.module != "statistic":
            return None
        mode = self.option("--mode")
        if mode is None:
            raise ValueError("statistic needs --mode")
        prob, every, packet = self.option("--probability"), self.option("--every"), self.option("--packet")
        negated = any(o.negated for o in self.options if o.name in ("--probability", "--every"))
        return StatisticMatch(
            _one(mode),
            float(_one(prob)) if prob else None,
            int(_one(every)) if every else None,
            int(_one(packet)) if packet else None,
            negated,
        )

    @cached_view
    def recent(self) -> RecentMatch | None:
        if self.module != "recent":
            return None
        action, negated = None, False
        for opt in self.options:
            if opt.name in ("--set", "--rcheck", "--update", "--remove"):
                action, negated = opt.name[2:], opt.negated
        name, seconds, hits, mask = (self.option(n) for n in ("--name", "--seconds", "--hitcount", "--mask"))
        return RecentMatch(
            _one(name) if name else "DEFAULT",
            action,
            int(_one(seconds)) if seconds else None,
            int(_one(hits)) if hits else None,
            self._has("--reap"),
            self._has("--rttl"),
            "rdest" if self._has("--rdest") else "rsource",
            _one(mask) if mask else None,
            negated,
        )

    @cached_view
    def addrtype(self) -> AddrtypeMatch | None:
        if self.module != "addrtype":
            return None
        src, dst = self.option("--src-type"), self.option("--dst-type")
        return AddrtypeMatch(
            tuple(_one(src).split(",")) if src else None,
            bool(src and src.negated),
            tuple(_one(dst).split(",")) if dst else None,
            bool(dst and dst.negated),
            self._has("--limit-iface-in"),
            self._has("--limit-iface-out"),
        )

    @cached_view
    def mark(self) -> MarkMatch | None:
        if self.module not in ("mark", "connmark"):
            return None
        opt = self.option("--mark")
        if opt is None:
            return None
        value, mask = parse_mark(_one(opt))
        return MarkMatch(value, 0xFFFFFFFF if mask is None else mask, opt.negated)

    @cached_view
    def conntrack(self) -> ConntrackMatch | None:
        if self.module not in ("conntrack", "state"):
            return None
        values: dict[str, Any] = {}
        for opt in self.options:
            key = opt.name.lstrip("-")
            if key in ("ctstate", "state", "ctstatus"):
                key = "ctstate" if key == "state" else key
                values[key] = tuple(_one(opt).split(","))
                values[key + "_negated"] = opt.negated
            elif key == "ctproto":
                values[key] = ProtocolMatch(_one(opt).lower(), opt.negated)
            elif key in ("ctorigsrc", "ctorigdst", "ctreplsrc", "ctrepldst"):
                values[key] = AddressMatch(_one(opt), opt.negated)
            elif key in ("ctorigsrcport", "ctorigdstport", "ctreplsrcport", "ctrepldstport"):
                values[key] = PortMatch(parse_port_ranges(_one(opt)), opt.negated)
            elif key == "ctdir":
                values[key] = _one(opt)
        return ConntrackMatch(**values)

    @cached_view
    def comment(self) -> str | None:
        opt = self.option("--comment") if self.module == "comment" else None
        return _one(opt) if opt else None

    @cached_view
    def physdev(self) -> PhysdevMatch | None:
        if self.module != "physdev":
            return None
        pin, pout = self.option("--physdev-in"), self.option("--physdev-out")

        def flag(name: str) -> bool | None:
            opt = self.option(name)
            return None if opt is None else not opt.negated

        return PhysdevMatch(
            InterfaceMatch(_one(pin), pin.negated) if pin else None,
            InterfaceMatch(_one(pout), pout.negated) if pout else None,
            flag("--physdev-is-in"), flag("--physdev-is-out"), flag("--physdev-is-bridged"),
        )

    @property
    def known(self) -> bool:
        return self.module in KNOWN_MATCH_MODULES

    def validate(self) -> None:
        """Build the typed views of this module once (raises ValueError on a bad value)."""
        for name in _VIEWS_OF_MODULE.get(self.module, ()):
            getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"module": self.module, "options": [o.to_dict() for o in self.options]}
        for name in _VIEWS_OF_MODULE.get(self.module, ()):  # every other view is None
            value = getattr(self, name)
            if value is not None:
                data[name] = value.to_dict() if hasattr(value, "to_dict") else value
        return data


_PORT_VIEWS = ("sport", "dport")
_VIEWS_OF_MODULE: dict[str, tuple[str, ...]] = {
    "": ("src", "dst", "protocol", "in_interface", "out_interface", "fragment"),
    "tcp": _PORT_VIEWS, "udp": _PORT_VIEWS, "sctp": _PORT_VIEWS, "udplite": _PORT_VIEWS, "dccp": _PORT_VIEWS,
    "multiport": ("sport", "dport", "ports"), "set": ("match_set",), "statistic": ("statistic",),
    "recent": ("recent",), "addrtype": ("addrtype",), "mark": ("mark",), "connmark": ("mark",),
    "conntrack": ("conntrack",), "state": ("conntrack",), "comment": ("comment",), "physdev": ("physdev",),
}

KNOWN_MATCH_MODULES: frozenset[str] = frozenset({
    "", "tcp", "udp", "sctp", "udplite", "multiport", "set", "statistic", "recent", "addrtype",
    "mark", "connmark", "conntrack", "state", "comment", "physdev",
})


def _one(opt: Option | None) -> str:
    if opt is None or len(opt.values) != 1:
        name = opt.name if opt else "option"
        raise ValueError(f"{name} needs exactly one value")
    return opt.values[0]


# ---------------------------------------------------------------- targets


class NatRange(NamedTuple):
    """``--to-destination``/``--to-source``: ``[ADDR[-ADDR]][:PORT[-PORT]]``.  A NamedTuple, as
    Option: every endpoint of a node has one (a frozen dataclass's __init__ cost twice as much)."""

    min_address: str | None
    max_address: str | None
    min_port: int | None
    max_port: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"min_address": self.min_address, "max_address": self.max_address,
                "min_port": self.min_port, "max_port": self.max_port}


def parse_nat_range(text: str) -> NatRange:
    address, colon, port = text.partition(":")
    if colon and ":" not in port and "-" not in text and ipv4_int(address) is not None:
        # ADDR:PORT, the DNAT of every endpoint of a node (what the general reading below makes of it)
        number = int(port) if port else None
        return NatRange(address, address, number, number)
    if text.startswith("["):  # [fd00::1]:80 or [fd00::1]-[fd00::2]:80
        close = text.rindex("]")
        addresses, rest = text[:close + 1], text[close + 1:]
        ports = rest[1:] if rest.startswith(":") else None
        addresses = addresses.replace("[", "").replace("]", "")
        if (rest and ports is None) or not addresses:  # "[]:80": brackets around nothing
            raise ValueError(f"bad NAT range {text!r}")
    elif text.count(":") == 1 or text.startswith(":"):
        addresses, _, ports = text.partition(":")
    else:  # no port: an IPv4 range, or a bare IPv6 address
        addresses, ports = text, None
    lo_addr = hi_addr = None
    if addresses:
        lo_addr, _, hi_addr = addresses.partition("-")
        for address in (lo_addr, hi_addr) if hi_addr else (lo_addr,):
            if ipv4_int(address) is None and not ipv6_address(address):
                _ip(address)  # neither as inet_pton reads them: ipaddress reads it (a scope) or fails
        hi_addr = hi_addr or lo_addr
    lo_port = hi_port = None
    if ports:
        lo_text, _, hi_text = ports.partition("-")
        lo_port = int(lo_text)
        hi_port = int(hi_text) if hi_text else lo_port
    return NatRange(lo_addr, hi_addr, lo_port, hi_port)


@dataclass(frozen=True)
class Target:
    """``-j NAME [options]`` (or ``-g NAME``).  ``is_chain``: NAME is a user chain of the table."""

    name: str
    options: tuple[Option, ...] = ()
    is_chain: bool = False

    def option(self, *names: str) -> Option | None:
        for opt in self.options:
            if opt.name in names:
                return opt
        return None

    def _flag(self, name: str) -> bool:
        return self.option(name) is not None

    @property
    def terminal(self) -> bool:
        return self.name in TERMINAL_TARGETS

    @cached_view
    def to_destination(self) -> NatRange | None:
        opt = self.option("--to-destination") if self.name == "DNAT" else None
        return parse_nat_range(_one(opt)) if opt else None

    @cached_view
    def to_source(self) -> NatRange | None:
        opt = self.option("--to-source") if self.name == "SNAT" else None
        return parse_nat_range(_one(opt)) if opt else None

    @cached_view
    def to_ports(self) -> tuple[int, int] | None:
        opt = self.option("--to-ports") if self.name in ("MASQUERADE", "REDIRECT") else None
        if opt is None:
            return None
        lo, _, hi = _one(opt).partition("-")
        return (int(lo), int(hi) if hi else int(lo))

    @property
    def random(self) -> bool:
        return self._flag("--random")

    @property
    def random_fully(self) -> bool:
        return self._flag("--random-fully")

    @property
    def persistent(self) -> bool:
        return self._flag("--persistent")

    @cached_view
    def xmark(self) -> tuple[int, int] | None:
        """MARK/CONNMARK as (value, mask) meaning new = (old & ~mask) ^ value.

        --set-xmark V/M as is; --set-mark V/M → (V, M|V); --or-mark V → (V, V);
        --and-mark V → (0, ~V); --xor-mark V → (V, 0).
        """
        if self.name not in ("MARK", "CONNMARK"):
            return None
        full = 0xFFFFFFFF
        for opt in self.options:
            if opt.name not in ("--set-xmark", "--set-mark", "--or-mark", "--and-mark", "--xor-mark"):
                continue
            value, mask = parse_mark(_one(opt))
            if opt.name == "--set-xmark":
                return (value, full if mask is None else mask)
            if opt.name == "--set-mark":
                return (value, (full if mask is None else mask) | value)
            if opt.name == "--or-mark":
                return (value, value)
            if opt.name == "--and-mark":
                return (0, ~value & full)
            return (value, 0)
        return None

    def apply_mark(self, mark: int) -> int:
        """The packet mark after this MARK target (unchanged for any other target)."""
        if self.xmark is None:
            return mark
        value, mask = self.xmark
        return ((mark & ~mask) ^ value) & 0xFFFFFFFF

    @property
    def reject_with(self) -> str | None:
        opt = self.option("--reject-with") if self.name == "REJECT" else None
        if self.name == "REJECT" and opt is None:
            return "icmp-port-unreachable"
        return _one(opt) if opt else None

    @property
    def log_prefix(self) -> str | None:
        opt = self.option("--log-prefix") if self.name == "LOG" else None
        return _one(opt) if opt else None

    def validate(self) -> None:
        for name in ("to_destination", "to_source", "to_ports", "xmark", "reject_with", "log_prefix"):
            getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "options": [o.to_dict() for o in self.options],
                                "is_chain": self.is_chain}
        for name in ("to_destination", "to_source"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value.to_dict()
        if self.to_ports is not None:
            data["to_ports"] = list(self.to_ports)
        if self.xmark is not None:
            data["xmark"] = {"value": self.xmark[0], "mask": self.xmark[1]}
        for name in ("random", "random_fully", "persistent"):
            if getattr(self, name):
                data[name] = True
        for name in ("reject_with", "log_prefix"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        return data


# ---------------------------------------------------------------- rules, chains, tables


_MATCH_ATTRS = vars(Match)


class PartsMaker(Protocol):
    """What builds a deferred rule's parts from the pieces its reader kept: all of them, or one
    alone (the very object the whole build then holds)."""

    def __call__(self, pieces: Any) -> tuple[tuple[Match, ...], Target | None, bool]: ...

    def target(self, pieces: Any) -> Target | None: ...

    def holder(self, pieces: Any, view: str) -> Match | None:
        """The match that can have ``view`` (dport, statistic, src…), or None: the rule has none."""


class _ValueSlots:
    """Equality and hash by ``_key()``, as a frozen dataclass has them, for the classes below that
    a node holds by the ten thousand and so are plain classes with slots."""

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return other.__class__ is self.__class__ and self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._key())


class Rule(_ValueSlots):
    """One `-A CHAIN …` rule: its matches, target and counters, and the line it came from.

    A plain class with slots, not a frozen dataclass: a kube-proxy node has 110,000 rules.
    A rule read from text may keep its parts unbuilt (:meth:`deferred`): the reader has
    checked them already, and they are built from the line's pieces on first use (a listing
    or a trace reads a few of a node's rules; ``-o save`` reads none).
    """

    __slots__ = ("chain", "number", "text", "counters", "target_name", "jump", "comment", "matches", "target", "goto",
                 "unbuilt")
    _PARTS = frozenset({"matches", "target"})
    # a deferred rule's (maker, pieces) until its parts are built, else None: what the reader can
    # answer some questions from without building them (a listing's texts)
    unbuilt: tuple[PartsMaker, Any] | None

    def __init__(self, chain: str, number: int, text: str, matches: tuple[Match, ...] = (),
                 target: Target | None = None, goto: bool = False, counters: Counters | None = None) -> None:
        self.chain, self.number, self.text, self.counters = chain, number, text, counters
        self.target_name: str | None = None if target is None else target.name  # without building a deferred rule
        # the user chain this rule jumps (or goes) to, if any: read by every walk over a node's rules
        self.jump: str | None = target.name if target is not None and target.is_chain else None
        # the first ``-m comment --comment`` text
        self.comment: str | None = next((m.comment for m in matches if m.module == "comment" and m.comment is not None),
                                        None)
        self.matches, self.target, self.goto = matches, target, goto
        self.unbuilt = None

    @classmethod
    def deferred(cls, chain: str, number: int, text: str, target_name: str, jump: str | None, comment: str | None,
                 maker: PartsMaker, pieces: Any, counters: Counters | None = None) -> Rule:
        """A `-j` rule whose matches and target (named ``target_name``; ``jump``: that name if it
        is a user chain; ``comment``: its comment match's) are ``maker(pieces)``, made when first
        read: until then their slots are empty, and reading one lands in __getattr__."""
        rule = cls.__new__(cls)
        rule.chain, rule.number, rule.text, rule.counters, rule.target_name = chain, number, text, counters, target_name
        rule.jump, rule.comment = jump, comment
        rule.goto = False
        rule.unbuilt = (maker, pieces)
        return rule

    def __getattr__(self, name: str) -> Any:
        if name not in Rule._PARTS or self.unbuilt is None:
            raise AttributeError(name)
        maker, pieces = self.unbuilt
        if name == "target":  # alone: a walk to a DNAT's address needs no matches
            self.target = maker.target(pieces)
            return self.target
        self.matches, self.target, self.goto = maker(pieces)
        self.unbuilt = None
        return getattr(self, name)

    def _key(self) -> tuple[Any, ...]:
        return (self.chain, self.number, self.text, self.matches, self.target, self.goto, self.counters)

    def __repr__(self) -> str:
        return (f"Rule(chain={self.chain!r}, number={self.number!r}, text={self.text!r}, matches={self.matches!r}, "
                f"target={self.target!r}, goto={self.goto!r}, counters={self.counters!r})")

    def first(self, view: str) -> Any:
        """The first match's ``view`` (a view of Match: dport, statistic, recent…) that is not None;
        of a deferred rule, from the one match that can have it, built alone."""
        if view == "builtins":  # never None: the rule's, over all its matches
            return self.builtins()
        if type(_MATCH_ATTRS.get(view)) is not cached_view:
            raise AttributeError(f"Match has no view {view!r}")
        unbuilt = self.unbuilt
        if unbuilt is None:
            for match in self.matches:
                found = getattr(match, view)
                if found is not None:
                    return found
            return None
        holder = unbuilt[0].holder(unbuilt[1], view)
        return None if holder is None else getattr(holder, view)

    def builtins(self) -> Builtins:
        """The built-in matches' views, -p, -s, -d, -i, -o (each appears at most once in a rule),
        from one pass over the matches: a listing row reads them all."""
        unbuilt = self.unbuilt
        if unbuilt is not None:
            holder = unbuilt[0].holder(unbuilt[1], "builtins")
            return _NO_BUILTINS if holder is None else holder.builtins
        found = _NO_BUILTINS
        for match in self.matches:
            if match.module == "":  # only the built-in match has these views
                views = match.builtins
                found = views if found is _NO_BUILTINS else tuple(  # type: ignore[assignment]
                    mine or theirs for mine, theirs in zip(found, views))
        return found

    @property
    def protocol(self) -> ProtocolMatch | None:
        return self.builtins()[0]

    @property
    def src(self) -> AddressMatch | None:
        return self.builtins()[1]

    @property
    def dst(self) -> AddressMatch | None:
        return self.builtins()[2]

    @property
    def in_interface(self) -> InterfaceMatch | None:
        return self.builtins()[3]

    @property
    def out_interface(self) -> InterfaceMatch | None:
        return self.builtins()[4]

    def modules(self, name: str) -> tuple[Match, ...]:
        return tuple(m for m in self.matches if m.module == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "number": self.number,
            "text": self.text,
            "matches": [m.to_dict() for m in self.matches],
            "target": self.target.to_dict() if self.target else None,
            "goto": self.goto,
            "counters": self.counters.to_dict() if self.counters else None,
        }


RulesDocument = Callable[[Sequence[Rule]], Any]  # see IptablesState.to_dict


class Chain(_ValueSlots):
    """A chain: its policy and counters (built-in chains) and its rules, in order.

    A plain class with slots, not a frozen dataclass: a 10,000-service node has 40,000 chains,
    and the dataclass's __init__ (one object.__setattr__ per field) was a sixth of reading them.
    """

    __slots__ = ("name", "policy", "packets", "bytes", "rules")

    def __init__(self, name: str, policy: str | None = None, packets: int = 0, bytes: int = 0,
                 rules: tuple[Rule, ...] = ()) -> None:
        # policy: ACCEPT/DROP for built-in chains; None for user chains
        self.name, self.policy, self.packets, self.bytes, self.rules = name, policy, packets, bytes, rules

    def _key(self) -> tuple[Any, ...]:
        return (self.name, self.policy, self.packets, self.bytes, self.rules)

    def __repr__(self) -> str:
        return (f"Chain(name={self.name!r}, policy={self.policy!r}, packets={self.packets!r}, "
                f"bytes={self.bytes!r}, rules={self.rules!r})")

    @property
    def builtin(self) -> bool:
        return self.policy is not None

    def to_dict(self, rules: RulesDocument | None = None) -> dict[str, Any]:
        return {"name": self.name, "policy": self.policy, "packets": self.packets, "bytes": self.bytes,
                "rules": [r.to_dict() for r in self.rules] if rules is None else rules(self.rules)}


@dataclass(frozen=True)
class Table:
    """One table of a ruleset (filter, nat, mangle, raw, security): its chains in save order."""

    name: str
    chains: Mapping[str, Chain] = field(default_factory=dict)  # in save order

    def chain(self, name: str) -> Chain | None:
        return self.chains.get(name)

    def to_dict(self, rules: RulesDocument | None = None) -> dict[str, Any]:
        return {"name": self.name, "chains": [c.to_dict(rules) for c in self.chains.values()]}


@dataclass(frozen=True)
class Ruleset:
    """One iptables-save document: ``family`` ipv4|ipv6 on ``backend`` nft|legacy."""

    family: str = "ipv4"
    backend: str = "nft"
    tables: Mapping[str, Table] = field(default_factory=dict)  # in save order

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)

    def chain(self, table: str, chain: str) -> Chain | None:
        found = self.tables.get(table)
        return found.chains.get(chain) if found else None

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables.values() for c in t.chains.values())

    @property
    def empty(self) -> bool:
        """No rules and no user chains (what an untouched backend shows)."""
        return all(c.builtin and not c.rules for t in self.tables.values() for c in t.chains.values())

    def to_dict(self, rules: RulesDocument | None = None) -> dict[str, Any]:
        return {"family": self.family, "backend": self.backend,
                "tables": [t.to_dict(rules) for t in self.tables.values()]}


@dataclass(frozen=True)
class IptablesState:
    """Every rule set a node holds: one Ruleset per (family, backend) that was read."""

    rulesets: tuple[Ruleset, ...] = ()

    def get(self, family: str, backend: str) -> Ruleset | None:
        for ruleset in self.rulesets:
            if ruleset.family == family and ruleset.backend == backend:
                return ruleset
        return None

    def family(self, family: str) -> tuple[Ruleset, ...]:
        return tuple(r for r in self.rulesets if r.family == family)

    def to_dict(self, rules: RulesDocument | None = None) -> dict[str, Any]:
        """``rules``: what stands for a chain's rules in the document, made from them (default: the
        list of their documents)."""
        return {"rulesets": [r.to_dict(rules) for r in self.rulesets]}
