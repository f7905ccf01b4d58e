"""A cheap reading of the rule lines kube-proxy writes by the thousand, for the trace walk.

A 10,000-service node's KUBE-SERVICES holds one rule per service port, e.g.

    -A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-SVC-TCOU7JCQXEZGVUNU

and a traced packet fails all but one of them on its destination.  Parsing each such line
into a :class:`~kpctl.model.iptables.Rule` (tokenizer, option parser, ``ipaddress``
networks) costs ~100 µs; :func:`recognize` reads it in a few µs into a :class:`QuickRule`
holding just what the walk needs to see a miss: the built-in ``-s/-d/-p/-i/-o`` and the
ports of ``-m tcp|udp|sctp``.

It accepts only a narrow grammar (IPv4 rule sets, single spaces, built-ins before any
``-m``, modules comment/tcp/udp/sctp with ``--sport``/``--dport``, ``-j NAME`` without
options or ``-j REJECT --reject-with TYPE``), every line of which
:func:`~kpctl.core.iptables_save.parse_save` accepts; anything else returns None and is parsed
in full, so a malformed rule still fails exactly as before.  tests/unit/test_trace_fast.py
checks both (property tests over generated lines, every fixture and example line).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from kpctl.model.iptables import _OCTET, Address, ipv4_int, ipv4_network, parse_port_ranges

__all__ = ["Address", "ipv4_int"]

_port_ranges = lru_cache(maxsize=4096)(parse_port_ranges)  # a node repeats a few hundred ports

# Outside the one quoted comment: characters no tokenizer treats specially.
_PLAIN = re.compile(r"[A-Za-z0-9_./:,+!=-]+(?: [A-Za-z0-9_./:,+!=-]+)*")
_COUNTERS = re.compile(r"\[[0-9]+:[0-9]+\] ")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # a value the parser never takes for an option
_PORTS = re.compile(r"[0-9]{1,5}(?::[0-9]{1,5})?")
_COMMENT = "\0"  # stands for the quoted comment while the line is split

# The shape kube-proxy (through iptables-save) writes most, read by one regular expression;
# whatever it takes, the token-by-token reading below takes the same way (tested).
_ADDR = rf"((?:{_OCTET.pattern}\.){{3}}{_OCTET.pattern})(?:/([0-9]{{1,2}}))?"
_PORTS_TEXT = r"([0-9]{1,5}(?::[0-9]{1,5})?)"
_SHAPE = re.compile(
    r"(?:\[[0-9]+:[0-9]+\] )?-A [A-Za-z0-9_./:,+!=-]+"
    rf"(?:( !)? -s {_ADDR})?(?:( !)? -d {_ADDR})?(?:( !)? -p ([A-Za-z0-9][A-Za-z0-9_.+-]*))?"
    r'(?: -m comment --comment "[^"\\\x00]*")?'
    rf"(?: -m (tcp|udp|sctp)(?:( !)? --sport {_PORTS_TEXT})?(?:( !)? --dport {_PORTS_TEXT})?)?"
    r" -j ([A-Za-z0-9][A-Za-z0-9_.+-]*)( --reject-with [A-Za-z0-9][A-Za-z0-9_.+-]*)?")

_BUILTIN = {"-s": "src", "-d": "dst", "-p": "proto", "-i": "iif", "-o": "oif"}
_PORT_MODULES = frozenset({"tcp", "udp", "sctp"})

Name = tuple[str, bool]  # (value, negated)
PortSpec = tuple[tuple[tuple[int, int], ...], bool]  # (ranges, negated)
PortModule = tuple[str, Optional[PortSpec], Optional[PortSpec]]  # (module, sport, dport)


class QuickRule:
    """What a miss needs of one rule line; ``lineno``/``line`` re-parse it in full on a hit."""

    __slots__ = ("number", "text", "lineno", "line", "src", "dst", "proto", "iif", "oif", "modules")

    def __init__(self, number: int, text: str, lineno: int, line: str) -> None:
        self.number, self.text, self.lineno, self.line = number, text, lineno, line
        self.src: Address | None = None
        self.dst: Address | None = None
        self.proto: Name | None = None
        self.iif: Name | None = None
        self.oif: Name | None = None
        self.modules: list[PortModule] = []  # the port matches, in rule order (comments judge nothing)


def _address(dotted: str, length: str | None, negated: bool) -> Address | None:
    prefix = 32 if length is None else int(length)
    a, b, c, d = dotted.split(".")
    address = (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    if prefix == 32:
        return address, 0xFFFFFFFF, negated, dotted + "/32"
    return ipv4_network(f"{dotted}/{length}", negated)


def _shaped(number: int, lineno: int, line: str) -> QuickRule | None:
    """The common shape (:data:`_SHAPE`) read at once; None: let :func:`recognize` read it."""
    found = _SHAPE.fullmatch(line)
    if found is None:
        return None
    (sneg, src, slen, dneg, dst, dlen, pneg, proto, module, spneg, sport, dpneg, dport, target,
     reject) = found.groups()
    if reject is not None and target != "REJECT":
        return None
    text = line if line[0] != "[" else line[line.index("]") + 2:]
    rule = QuickRule(number, text, lineno, line)
    if src is not None:
        rule.src = _address(src, slen, sneg is not None)
        if rule.src is None:
            return None
    if dst is not None:
        rule.dst = _address(dst, dlen, dneg is not None)
        if rule.dst is None:
            return None
    if proto is not None:
        rule.proto = (proto.lower(), pneg is not None)
    if module is not None:
        try:
            rule.modules = [(module, None if sport is None else (_port_ranges(sport), spneg is not None),
                             None if dport is None else (_port_ranges(dport), dpneg is not None))]
        except ValueError:
            return None
    return rule


def _split(line: str) -> list[str] | None:
    """The tokens of a line of plain words and at most one ``--comment "…"`` (that token
    becomes :data:`_COMMENT`), split exactly as the full tokenizer would; None for anything else."""
    if _COMMENT in line or "\\" in line:
        return None
    quotes = line.count('"')
    if quotes == 2:
        start = line.index('"')
        end = line.index('"', start + 1)
        if start < 11 or not line.startswith(" --comment ", start - 11) or not (
                end + 1 == len(line) or line[end + 1] == " "):
            return None
        line = line[:start] + _COMMENT + line[end + 1:]
    elif quotes:
        return None
    if _PLAIN.fullmatch(line.replace(_COMMENT, "c")) is None:
        return None
    return line.split(" ")


def recognize(number: int, lineno: int, line: str, family: str) -> QuickRule | None:
    """``line`` (a stored ``-A CHAIN …`` rule line) as a QuickRule, or None to parse it in full."""
    if family != "ipv4":
        return None
    shaped = _shaped(number, lineno, line)
    return shaped if shaped is not None else _tokens_read(number, lineno, line)


def _tokens_read(number: int, lineno: int, line: str) -> QuickRule | None:
    """The reading token by token (any order of built-ins, interfaces, bare comments…)."""
    text = line
    if line[0] == "[":
        counted = _COUNTERS.match(line)
        if counted is None:
            return None
        text = line[counted.end():]
    tokens = _split(text)
    if tokens is None or len(tokens) < 2 or tokens[0] != "-A":
        return None
    rule = QuickRule(number, text, lineno, line)
    count, pos = len(tokens), 2
    in_builtins = True
    port_module: str | None = None  # the open -m tcp|udp|sctp, with its ports
    sport: PortSpec | None = None
    dport: PortSpec | None = None
    modules: list[PortModule] = []
    while pos < count:
        token = tokens[pos]
        negated = token == "!"
        if negated:
            pos += 1
            if pos >= count:
                return None
            token = tokens[pos]
        if pos + 1 >= count:
            return None  # every option read here takes exactly one value
        value = tokens[pos + 1]
        pos += 2
        field = _BUILTIN.get(token)
        if field is not None:
            if not in_builtins or getattr(rule, field) is not None:
                return None  # after a module it starts a second "" match; twice is refused
            if field in ("src", "dst"):
                address = ipv4_network(value, negated)
                if address is None:
                    return None
                setattr(rule, field, address)
            elif _NAME.fullmatch(value) is None:
                return None
            else:
                setattr(rule, field, (value.lower() if field == "proto" else value, negated))
        elif token == "--sport" or token == "--dport":
            if port_module is None or (sport if token == "--sport" else dport) is not None \
                    or _PORTS.fullmatch(value) is None:
                return None
            try:
                spec = (_port_ranges(value), negated)
            except ValueError:
                return None
            if token == "--sport":
                sport = spec
            else:
                dport = spec
        elif negated:
            return None
        elif token == "-m" or token == "-j":
            in_builtins = False
            if port_module is not None:
                modules.append((port_module, sport, dport))
                port_module = None
            if token == "-j":
                if _NAME.fullmatch(value) is None:
                    return None
                if pos < count and not (value == "REJECT" and count - pos == 2 and tokens[pos] == "--reject-with"
                                        and _NAME.fullmatch(tokens[pos + 1])):
                    return None
                rule.modules = modules
                return rule
            if value in _PORT_MODULES:
                port_module, sport, dport = value, None, None
            elif value == "comment" and count - pos >= 2 and tokens[pos] == "--comment":
                comment = tokens[pos + 1]
                if comment != _COMMENT and _NAME.fullmatch(comment) is None:
                    return None  # a bare comment must be one plain value
                pos += 2
            else:
                return None
        else:
            return None
    if port_module is not None:
        modules.append((port_module, sport, dport))
    rule.modules = modules
    return rule
