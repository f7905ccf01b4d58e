"""ipset(8) element syntax: parse what users and `ipset save` write, format what ipset prints.

Element text per set type (dimensions separated by commas)::

    hash:ip            10.0.0.1 | 10.0.0.0/30 | 10.0.0.1-10.0.0.9
    hash:ip,port       10.0.0.1,tcp:80 | 10.0.0.1,80 | 10.0.0.1,udp:53-60 | 10.0.0.1,icmp:ping | 10.0.0.1,tcp:ssh
    hash:ip,port,ip    10.0.0.1,tcp:80,10.0.0.1
    hash:ip,port,net   10.0.0.1,tcp:80,10.0.0.0/8
    hash:net           10.0.0.0/8 | fd00::/64
    hash:net,port      10.0.0.0/24,tcp:30000
    hash:net,iface     10.0.0.0/8,eth0 | 10.0.0.0/8,physdev:eth1
    bitmap:ip          10.0.0.3 | 10.0.0.0/30
    bitmap:port        30080 | 80-90
    list:set           KUBE-LOOP-BACK

Options after the element: ``timeout N``, ``packets N``, ``bytes N``, ``comment "TEXT"``,
``skbmark V[/MASK]``, ``skbprio MAJ:MIN``, ``skbqueue N``, ``nomatch``, ``wildcard``
(and for list:set adds ``before NAME`` / ``after NAME``, which are not stored).

Everything raises :class:`kpctl.errors.InvalidInput` naming the bad value.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from kpctl.core.address import ascii_number
from kpctl.errors import InvalidInput
from kpctl.model.ipset import SET_TYPE_DIMENSIONS, IPSet, IPSetEntry

# Protocol numbers and the names netbase's /etc/protocols gives them (what ipset prints
# through getprotobynumber).  Only protocols that make sense in an ipset port dimension
# need to round-trip; the rest print numerically.
PROTOCOL_NAMES: dict[int, str] = {
    0: "ip", 1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp",
    12: "pup", 17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp",
    37: "ddp", 38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp",
    47: "gre", 50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts",
    73: "rspf", 81: "vmtp", 88: "eigrp", 89: "ospf", 93: "ax.25", 94: "ipip", 97: "etherip", 98: "encap",
    103: "pim", 108: "ipcomp", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc",
    135: "mobility-header", 136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip", 140: "shim6",
    141: "wesp", 142: "rohc", 143: "ethernet",
}
PROTOCOL_NUMBERS: dict[str, int] = {name: num for num, name in PROTOCOL_NAMES.items()}
PROTOCOL_NUMBERS.update({"icmpv6": 58, "ipv6-icmp": 58, "hopopt": 0})
PORT_PROTOCOLS = (6, 17, 132, 136)  # protocols with real ports: tcp, udp, sctp, udplite
ICMP, ICMPV6 = 1, 58

# ipset's names for ICMP type/code pairs (first name wins when printing).
ICMP_NAMES: tuple[tuple[str, int, int], ...] = (
    ("echo-reply", 0, 0), ("pong", 0, 0), ("network-unreachable", 3, 0),
    ("host-unreachable", 3, 1), ("protocol-unreachable", 3, 2), ("port-unreachable", 3, 3),
    ("fragmentation-needed", 3, 4), ("source-route-failed", 3, 5), ("network-unknown", 3, 6),
    ("host-unknown", 3, 7), ("network-prohibited", 3, 9), ("host-prohibited", 3, 10),
    ("TOS-network-unreachable", 3, 11), ("TOS-host-unreachable", 3, 12),
    ("communication-prohibited", 3, 13), ("host-precedence-violation", 3, 14),
    ("precedence-cutoff", 3, 15), ("source-quench", 4, 0), ("network-redirect", 5, 0),
    ("host-redirect", 5, 1), ("TOS-network-redirect", 5, 2), ("TOS-host-redirect", 5, 3),
    ("echo-request", 8, 0), ("ping", 8, 0), ("router-advertisement", 9, 0),
    ("router-solicitation", 10, 0), ("ttl-zero-during-transit", 11, 0),
    ("ttl-zero-during-reassembly", 11, 1), ("ip-header-bad", 12, 0),
    ("required-option-missing", 12, 1), ("timestamp-request", 13, 0),
    ("timestamp-reply", 14, 0), ("address-mask-request", 17, 0), ("address-mask-reply", 18, 0),
)
ICMPV6_NAMES: tuple[tuple[str, int, int], ...] = (
    ("no-route", 1, 0), ("communication-prohibited", 1, 1), ("address-unreachable", 1, 3),
    ("port-unreachable", 1, 4), ("packet-too-big", 2, 0), ("ttl-zero-during-transit", 3, 0),
    ("ttl-zero-during-reassembly", 3, 1), ("bad-header", 4, 0), ("unknown-header-type", 4, 1),
    ("unknown-option", 4, 2), ("echo-request", 128, 0), ("ping", 128, 0), ("echo-reply", 129, 0),
    ("pong", 129, 0), ("router-solicitation", 133, 0), ("router-advertisement", 134, 0),
    ("neighbour-solicitation", 135, 0), ("neigbour-solicitation", 135, 0),
    ("neighbour-advertisement", 136, 0), ("neigbour-advertisement", 136, 0), ("redirect", 137, 0),
)

SETNAME_MAX = 31  # IPSET_MAXNAMELEN - 1
IFNAME_MAX = 15
COMMENT_MAX = 255
_NAME_RE = re.compile(r"^[^\s,\"']{1,31}$")
_UINT_RE = re.compile(r"^(0x[0-9a-fA-F]+|[0-9]+)$")


def family_of_address(text: str) -> str:
    return "inet6" if ":" in text else "inet"


def _bits(family: str) -> int:
    return 128 if family == "inet6" else 32


def format_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as ipset prints it (inet_ntop: ``::ffff:1.2.3.4`` keeps its dotted tail)."""
    if address.version == 6:
        return socket.inet_ntop(socket.AF_INET6, address.packed)
    return str(address)


def parse_uint(text: str, what: str, maximum: int = 0xFFFFFFFF) -> int:
    if not _UINT_RE.match(text):
        raise InvalidInput(f"invalid {what} {text!r}: not a number")
    if len(text) > 22:  # (longer than any 64-bit number: int() of over 4300 digits raises)
        raise InvalidInput(f"invalid {what} {text[:24]!r}…: larger than {maximum}")
    value = int(text, 16) if text.lower().startswith("0x") else int(text)
    if value > maximum:
        raise InvalidInput(f"invalid {what} {text!r}: larger than {maximum}")
    return value


def parse_address(text: str, family: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidInput(f"invalid IP address {text!r}") from None
    if (address.version == 6) != (family == "inet6"):
        raise InvalidInput(f"address {text!r} does not match the set's family {family}")
    return address


def validate_set_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise InvalidInput(f"invalid set name {name!r}: 1-{SETNAME_MAX} characters, no spaces, commas or quotes")
    return name


def _parse_ip(text: str, family: str, kind: str, zero: bool = False) -> tuple[str, int | None, str | None]:
    """``ADDR``, ``ADDR/CIDR`` or ``ADDR-ADDR`` -> (address, cidr or None for a host, range end);
    ``zero``: a network may have prefix 0 (the kernel stores /0 only in hash:net,iface)."""
    if "-" in text:
        start, _, end = text.partition("-")
        first, last = parse_address(start, family), parse_address(end, family)
        if int(last) < int(first):
            raise InvalidInput(f"invalid range {text!r}: end before start")
        if first == last:
            return format_address(first), None, None
        return format_address(first), None, format_address(last)
    if "/" in text:
        address_text, _, cidr_text = text.partition("/")
        address = parse_address(address_text, family)
        cidr = ascii_number(cidr_text, 3)
        if cidr is None or cidr < (0 if kind == "ip" or zero else 1) or cidr > _bits(family):
            raise InvalidInput(f"invalid prefix length in {text!r}")
        network = ipaddress.ip_network(f"{address}/{cidr}", strict=False)
        if cidr == _bits(family):
            return format_address(network.network_address), None, None
        return format_address(network.network_address), cidr, None
    if family == "inet":
        try:  # fast path: inet_pton takes exactly the canonical dotted quads, which print as written
            socket.inet_pton(socket.AF_INET, text)
            return text, None, None
        except (OSError, ValueError):  # ValueError: NUL or non-ASCII text
            pass
    return format_address(parse_address(text, family)), None, None


def _icmp_table(proto: int) -> tuple[tuple[str, int, int], ...]:
    return ICMP_NAMES if proto == ICMP else ICMPV6_NAMES


def protocol_number(text: str) -> int | None:
    """A protocol by name (tcp, udp, icmp, …, any case) or number (0-255) as ipset reads it; None
    when it is neither."""
    known = PROTOCOL_NUMBERS.get(text.lower())
    if known is not None:
        return known
    number = ascii_number(text, 3)
    return number if number is not None and number <= 255 else None


def _parse_port(text: str, family: str, with_proto: bool) -> tuple[int, int, int | None]:
    """``[PROTO:]PORT[-PORT]`` -> (proto number, port, port_to)."""
    proto_num = 6
    port_text = text
    if ":" in text:
        proto_text, _, port_text = text.partition(":")
        number = protocol_number(proto_text)
        if number is None:
            raise InvalidInput(f"invalid protocol {proto_text!r} in {text!r}")
        proto_num = number
        if proto_num == 0:
            raise InvalidInput(f"invalid protocol {proto_text!r} in {text!r}: protocol 0 cannot be stored")
        if not with_proto and proto_num not in (6, 17):
            raise InvalidInput(f"invalid port {text!r}: only tcp: or udp: may prefix a bitmap:port port")
    if proto_num in (ICMP, ICMPV6):
        if (proto_num == ICMP) != (family == "inet"):
            raise InvalidInput(f"protocol in {text!r} does not match the set's family {family}")
        for name, icmp_type, code in _icmp_table(proto_num):
            if port_text.lower() == name.lower():
                return proto_num, icmp_type << 8 | code, None
        type_text, slash, code_text = port_text.partition("/")
        given_type, given_code = ascii_number(type_text, 3), ascii_number(code_text, 3)
        if not slash or given_type is None or given_code is None or given_type > 255 or given_code > 255:
            raise InvalidInput(f"invalid ICMP type/code {port_text!r} in {text!r}")
        return proto_num, given_type << 8 | given_code, None
    start_text, dash, end_text = port_text.partition("-")
    port = _port_number(start_text, proto_num)
    port_to = _port_number(end_text, proto_num) if dash else -1
    if port < 0 or (dash and port_to < 0):
        named = PROTOCOL_NAMES[proto_num] if proto_num in PORT_PROTOCOLS else ""
        raise InvalidInput(f"invalid port {port_text!r} in {text!r}"
                           + (f": not a number nor a {named} service name (/etc/services)" if named else ""))
    if proto_num not in PORT_PROTOCOLS and (port != 0 or dash):
        raise InvalidInput(f"invalid port in {text!r}: protocol {proto_num} takes only port 0")
    if dash:
        if port_to < port:
            raise InvalidInput(f"invalid port range {port_text!r}: end before start")
        return proto_num, port, (port_to if port_to != port else None)
    return proto_num, port, None


def _port_number(text: str, proto_num: int) -> int:
    """A port written as a number or, as ipset(8) reads it, as the name /etc/services gives it for
    the protocol (``ssh``, ``domain``: getservbyname); -1 for neither."""
    if text.isdigit():
        return parse_uint(text, "port", 65535)
    if text and proto_num in PORT_PROTOCOLS and text.isascii() and text.isprintable():
        try:
            return socket.getservbyname(text, PROTOCOL_NAMES[proto_num])
        except OSError:  # no such service of that protocol
            pass
    return -1


def format_port(proto_num: int, port: int) -> str:
    name = PROTOCOL_NAMES.get(proto_num, str(proto_num))
    if proto_num in (ICMP, ICMPV6):
        icmp_type, code = port >> 8, port & 0xFF
        for label, known_type, known_code in _icmp_table(proto_num):
            if (known_type, known_code) == (icmp_type, code):
                return f"{name}:{label}"
        return f"{name}:{icmp_type}/{code}"
    return f"{name}:{port}"


def _format_ip(address: str, cidr: int | None, address_to: str | None) -> str:
    if address_to:
        return f"{address}-{address_to}"
    return address if cidr is None else f"{address}/{cidr}"


def format_element(entry: IPSetEntry, set_type: str) -> str:
    """The element text ipset prints for ``entry`` (ranges as ``A-B`` on input only)."""
    parts: list[str] = []
    ip_seen = 0
    for kind in SET_TYPE_DIMENSIONS.get(set_type, ()):
        if kind in ("ip", "net"):
            if ip_seen == 0:
                parts.append(_format_ip(entry.ip or "", entry.cidr, entry.ip_to))
            else:
                parts.append(_format_ip(entry.ip2 or "", entry.cidr2, entry.ip2_to))
            ip_seen += 1
        elif kind == "port":
            if set_type == "bitmap:port":
                port = entry.port or 0
                parts.append(f"{port}-{entry.port_to}" if entry.port_to is not None else str(port))
            else:
                text = format_port(entry.proto_num if entry.proto_num is not None else 6, entry.port or 0)
                parts.append(f"{text}-{entry.port_to}" if entry.port_to is not None else text)
        elif kind == "iface":
            parts.append(("physdev:" if entry.physdev else "") + (entry.iface or ""))
        elif kind == "mark":
            parts.append(f"0x{entry.mark or 0:08x}")
        elif kind == "mac":
            if entry.mac is not None or set_type != "bitmap:ip,mac":  # (optional there: see parse_element)
                parts.append((entry.mac or "").upper())
        elif kind == "name":
            parts.append(entry.name or "")
    return ",".join(parts)


# The element shapes kube-proxy's sets hold by the ten thousand (IPv4 hosts and networks,
# tcp/udp/sctp/udplite ports, bitmap ports), written as ipset prints them: read by one regular
# expression per set type whose pieces are canonical by construction (octets and ports without
# leading zeros and in range, a prefix below 32 of an address that is its network's), so the
# element is its own ``raw`` and no ipaddress object or second formatting pass is needed.  Any
# other text, right or wrong, takes the dimension-by-dimension reading below (tested against it).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_QUAD = rf"({_OCTET}(?:\.{_OCTET}){{3}})"
_NET = rf"{_QUAD}(?:/([1-9]|[12][0-9]|3[01]))?"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)"
_PROTO_PORT = rf"(tcp|udp|sctp|udplite):{_PORT}"
_SHAPES = {"hash:ip": _QUAD, "hash:net": _NET, "hash:ip,port": rf"{_QUAD},{_PROTO_PORT}",
           "hash:ip,port,ip": rf"{_QUAD},{_PROTO_PORT},{_QUAD}", "hash:ip,port,net": rf"{_QUAD},{_PROTO_PORT},{_NET}",
           "bitmap:port": _PORT}
_PORT_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "udplite": 136}
_SHAPED: dict[str, Any] = {}  # set type -> the compiled shape's fullmatch (made on first use)


def _network(address: str, prefix: str | None) -> int | None:
    """The prefix length of ``address/prefix`` when the address is its network's, else -1 (ipset
    prints another address); None without a prefix."""
    if prefix is None:
        return None
    cidr = int(prefix)
    value = int.from_bytes(socket.inet_aton(address), "big")
    return cidr if value & ((1 << (32 - cidr)) - 1) == 0 else -1


def _shaped(set_type: str, text: str) -> IPSetEntry | None:
    """The member ``text`` is, when it has one of the canonical IPv4 shapes above; else None."""
    match = _SHAPED.get(set_type)
    if match is None:
        match = _SHAPED[set_type] = re.compile(_SHAPES[set_type], re.ASCII).fullmatch
    found = match(text)
    if found is None:
        return None
    parts = found.groups()
    # (only the fields that differ from their defaults: None for the others, ranges included)
    if set_type == "bitmap:port":
        values: dict[str, Any] = {"port": int(parts[0])}
    elif len(parts) == 3:  # hash:ip,port, kube-proxy's every set but one
        values = {"ip": parts[0], "port": int(parts[2]), "proto_num": _PORT_NUMBERS[parts[1]], "proto": parts[1]}
    else:
        cidr = _network(parts[0], parts[1]) if set_type == "hash:net" else None
        values = {"ip": parts[0], "cidr": cidr}
        if len(parts) > 3:
            cidr = _network(parts[3], parts[4]) if set_type == "hash:ip,port,net" else None
            values.update(port=int(parts[2]), proto_num=_PORT_NUMBERS[parts[1]], proto=parts[1], ip2=parts[3],
                          cidr2=cidr)
        if cidr == -1:
            return None
    return IPSetEntry.with_fields(values, lambda entry: text)


def parse_element(set_type: str, family: str | None, text: str) -> IPSetEntry:
    """Parse the element text of a member of a ``set_type`` set (no options)."""
    if set_type in _SHAPES and family != "inet6":
        entry = _shaped(set_type, text)
        if entry is not None:
            return entry
    dimensions = SET_TYPE_DIMENSIONS.get(set_type)
    if dimensions is None:
        raise InvalidInput(f"unknown set type {set_type!r}")
    fam = family or "inet"
    if dimensions == ("name",):
        validate_set_name(text)
        return IPSetEntry(raw=text, name=text)
    pieces = text.split(",")
    if set_type == "bitmap:ip,mac" and len(pieces) == 1:  # the MAC may be left out: the kernel fills it in
        dimensions = dimensions[:1]                        # from the first packet from the address
    if len(pieces) != len(dimensions) or not all(pieces):
        raise InvalidInput(f"invalid entry {text!r} for a {set_type} set: expected {','.join(dimensions).upper()}")
    values: dict[str, Any] = {}
    ip_seen = 0
    for kind, piece in zip(dimensions, pieces):
        if kind in ("ip", "net"):
            if set_type.startswith("bitmap:") and family_of_address(piece) == "inet6":
                raise InvalidInput(f"invalid entry {text!r}: {set_type} holds IPv4 addresses only")
            address, cidr, address_to = _parse_ip(piece, fam, kind, set_type == "hash:net,iface")
            if kind == "net" and "-" in piece and fam == "inet6":
                raise InvalidInput(f"invalid entry {text!r}: IPv6 ranges are not supported")
            prefix = "" if ip_seen == 0 else "2"
            values["ip" + prefix], values["cidr" + prefix], values["ip" + prefix + "_to"] = address, cidr, address_to
            ip_seen += 1
        elif kind == "port":
            proto_num, port, port_to = _parse_port(piece, fam, with_proto=set_type != "bitmap:port")
            values["port"], values["port_to"] = port, port_to
            if set_type != "bitmap:port":
                values["proto_num"], values["proto"] = proto_num, PROTOCOL_NAMES.get(proto_num, str(proto_num))
        elif kind == "iface":
            physdev = piece.startswith("physdev:")
            iface = piece[len("physdev:"):] if physdev else piece
            if not iface or len(iface) > IFNAME_MAX or "/" in iface or " " in iface:
                raise InvalidInput(f"invalid interface name {iface!r} in {text!r}")
            values["iface"], values["physdev"] = iface, physdev
        elif kind == "mark":
            values["mark"] = parse_uint(piece, "mark")
        elif kind == "mac":
            if not re.match(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$", piece):
                raise InvalidInput(f"invalid MAC address {piece!r} in {text!r}")
            values["mac"] = piece.upper()
    return entry_of(values, set_type)


def entry_of(values: dict[str, Any], set_type: str) -> IPSetEntry:
    """The member of a ``set_type`` set with these fields (the others their defaults), its
    ``raw`` the element text they make (format_element, reading them as attributes)."""
    return IPSetEntry.with_fields(values, lambda entry: format_element(entry, set_type))


def tokenize(line: str) -> list[str]:
    """Split a command line on blanks; ``"…"`` is one token (quotes kept, as ipset's comment)."""
    if '"' not in line:
        return line.split()  # the same blanks as str.isspace
    tokens: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        if line[i] == '"':
            end = line.find('"', i + 1)
            if end < 0:
                raise InvalidInput(f"unterminated quote in {line.strip()!r}")
            i = end + 1
            if i < n and not line[i].isspace():
                raise InvalidInput(f"unexpected text after closing quote in {line.strip()!r}")
        else:
            while i < n and not line[i].isspace():
                i += 1
        tokens.append(line[start:i])
    return tokens


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_entry_options(entry: IPSetEntry, options: Sequence[str]) -> IPSetEntry:
    """Apply ``timeout``/``packets``/``bytes``/``comment``/``skb*``/``nomatch`` tokens to ``entry``."""
    values: dict[str, object] = {}
    i = 0
    while i < len(options):
        option = options[i]
        if option in ("nomatch", "wildcard"):
            values[option] = True
            i += 1
            continue
        if option not in ("timeout", "packets", "bytes", "comment", "skbmark", "skbprio", "skbqueue",
                          "before", "after"):
            raise InvalidInput(f"unknown entry option {option!r}")
        if i + 1 >= len(options):
            raise InvalidInput(f"entry option {option!r} needs a value")
        value = options[i + 1]
        if option in ("timeout", "packets", "bytes"):
            maximum = 2147483 if option == "timeout" else (1 << 64) - 1
            values[option] = parse_uint(value, option, maximum)
        elif option == "comment":
            comment = _unquote(value)
            if '"' in comment or len(comment) > COMMENT_MAX:
                raise InvalidInput(f"invalid comment {value!r}: no double quotes, at most {COMMENT_MAX} characters")
            values["comment"] = comment
        elif option == "skbmark":
            mark_text, slash, mask_text = value.partition("/")
            values["skbmark"] = parse_uint(mark_text, "skbmark")
            values["skbmarkmask"] = parse_uint(mask_text, "skbmark mask") if slash else 0xFFFFFFFF
        elif option == "skbprio":
            major, colon, minor = value.partition(":")
            if not colon or not re.match(r"^[0-9a-fA-F]{1,4}$", major) or not re.match(r"^[0-9a-fA-F]{1,4}$", minor):
                raise InvalidInput(f"invalid skbprio {value!r}: expected MAJOR:MINOR (hex)")
            values["skbprio"] = f"{int(major, 16):x}:{int(minor, 16):x}"
        elif option == "skbqueue":
            values["skbqueue"] = parse_uint(value, "skbqueue", 0xFFFF)
        else:
            raise InvalidInput(f"list:set positioning {option!r} is not supported; members are added at the end")
        i += 2
    return replace(entry, **values) if values else entry  # type: ignore[arg-type]


def parse_member(ipset: IPSet, tokens: Sequence[str]) -> IPSetEntry:
    """A member of ``ipset`` from its words (``ELEMENT [OPTIONS…]``, see :func:`tokenize`), checked
    to fit the set's header."""
    if not tokens:
        raise InvalidInput(f"missing entry for set {ipset.name!r}")
    entry = parse_element(ipset.type, ipset.family, tokens[0])
    if len(tokens) > 1 or ipset.type.startswith("bitmap:"):  # (else no option, no range to be within)
        entry = parse_entry_options(entry, tokens[1:])
        check_entry_fits(ipset, entry)
    return entry


def check_entry_fits(ipset: IPSet, entry: IPSetEntry) -> None:
    """Refuse options the set was not created for (ipset(8) refuses them too)."""
    if entry.timeout is not None and ipset.timeout is None:
        raise InvalidInput(f"set {ipset.name!r} has no timeout support; cannot add {entry.raw!r} with a timeout")
    if (entry.packets is not None or entry.bytes is not None) and not ipset.counters:
        raise InvalidInput(f"set {ipset.name!r} has no counters; cannot set packets/bytes of {entry.raw!r}")
    if entry.comment is not None and not ipset.comment:
        raise InvalidInput(f"set {ipset.name!r} has no comment support; create it with --comment")
    if (entry.skbmark is not None or entry.skbprio is not None or entry.skbqueue is not None) and not ipset.skbinfo:
        raise InvalidInput(f"set {ipset.name!r} has no skbinfo support")
    if entry.wildcard and "iface" not in ipset.dimensions:
        raise InvalidInput(f"wildcard is only valid in hash:net,iface sets, not {ipset.type}")
    if entry.nomatch and "net" not in ipset.dimensions:
        raise InvalidInput(f"nomatch is only valid in sets with a net dimension, not {ipset.type}")
    if ipset.type == "bitmap:ip" and ipset.range and entry.ip:
        start, _, end = ipset.range.partition("-")
        last = entry.ip_to or entry.ip
        if int(ipaddress.ip_address(entry.ip)) < int(ipaddress.ip_address(start)) or \
                int(ipaddress.ip_address(last)) > int(ipaddress.ip_address(end)):
            raise InvalidInput(f"entry {entry.raw!r} is outside the range {ipset.range} of set {ipset.name!r}")
    if ipset.type == "bitmap:port" and ipset.range and entry.port is not None:
        low, _, high = ipset.range.partition("-")
        if entry.port < int(low) or (entry.port_to or entry.port) > int(high):
            raise InvalidInput(f"entry {entry.raw!r} is outside the range {ipset.range} of set {ipset.name!r}")


def format_entry_options(entry: IPSetEntry, runtime: bool = True) -> str:
    """The options ipset prints after an element, in ipset's order (leading space included).

    ``runtime=False`` leaves out what the kernel changes by itself (timeout, counters), as
    ``format_entry_options(entry.without_runtime())`` would, without copying the entry."""
    out = []
    if runtime and entry.timeout is not None:
        out.append(f" timeout {entry.timeout}")
    if entry.nomatch:
        out.append(" nomatch")
    if entry.wildcard:
        out.append(" wildcard")
    if runtime and entry.packets is not None:
        out.append(f" packets {entry.packets}")
    if runtime and entry.bytes is not None:
        out.append(f" bytes {entry.bytes}")
    if entry.comment is not None:
        out.append(f' comment "{entry.comment}"')
    if entry.skbmark is not None:
        mask = entry.skbmarkmask if entry.skbmarkmask is not None else 0xFFFFFFFF
        out.append(f" skbmark 0x{entry.skbmark:x}" + ("" if mask == 0xFFFFFFFF else f"/0x{mask:x}"))
    if entry.skbprio is not None:
        out.append(f" skbprio {entry.skbprio}")
    if entry.skbqueue is not None:
        out.append(f" skbqueue {entry.skbqueue}")
    return "".join(out)


def format_entry(entry: IPSetEntry) -> str:
    """Element plus options, as after ``add NAME`` in `ipset save`."""
    return entry.raw + format_entry_options(entry)
