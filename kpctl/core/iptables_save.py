"""iptables-save text ⇄ :class:`~kpctl.model.iptables.Ruleset`.

Reads what `iptables-save` / `ip6tables-save` write on both backends (nft and legacy),
with or without counters (`-c`), and writes it back so that `iptables-restore` accepts it
and the rule lines equal the input's.  Quoting follows iptables' own: a value made only
of letters, digits, ``_`` and ``-`` is written bare, anything else in double quotes with
``"``, ``\\`` and ``'`` escaped by a backslash.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Optional

from kpctl.errors import InvalidInput
from kpctl.model.iptables import (
    AddressMatch,
    BUILTIN_CHAINS,
    BUILTIN_OPTIONS,
    Builtins,
    Chain,
    Counters,
    Match,
    Option,
    Rule,
    Ruleset,
    Table,
    Target,
    ipv4_network,
    ipv6_address,
)

_COUNTERS = re.compile(r"^\[(\d+):(\d+)\]$")
_COUNTED = re.compile(r"\[([0-9]+):([0-9]+)\] ")  # a rule line's counters, before its -A (iptables-save -c)
_CHAIN_NAME = re.compile(r"^[^\s!\"'\[\]]{1,29}$")
_PLAIN_CHAIN_NAME = re.compile(r"[^\s!\"'\[\]\\]{1,29}")  # one that needs no unquoting
_USER_CHAIN = (None, 0, 0)  # a user chain's declaration: no policy, no counters
_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_BARE = re.compile(r"^[^\s\"'\\]+$")
_STRING_OPTIONS = frozenset({"--comment", "--log-prefix", "--nflog-prefix"})
_ALWAYS_QUOTED = frozenset({"--u32", "--string"})  # these extensions always print quotes
_POLICIES = frozenset({"ACCEPT", "DROP", "-", "QUEUE", "RETURN"})
_SHORT_BUILTIN = {"--source": "-s", "--destination": "-d", "--protocol": "-p", "--in-interface": "-i",
                  "--out-interface": "-o", "--fragment": "-f"}
_NO_VALUE_BUILTINS = frozenset({"-f", "--fragment"})
_SHORT_TO_LONG_JUMP = {"-j": "-j", "--jump": "-j", "-g": "-g", "--goto": "-g"}


class Token(NamedTuple):
    """One word of a rule line; a NamedTuple, not a dataclass: a 110,000-rule document has
    1.3 million of them, and a frozen dataclass costs several times as much to build."""

    text: str
    quoted: bool = False

    @property
    def is_option(self) -> bool:
        """An option name: -x or --xx (a quoted value never is; nor "-" or "-1")."""
        t = self.text
        if self.quoted or len(t) < 2 or t[0] != "-":
            return False
        return t[1].isalpha() or (t[1] == "-" and len(t) > 2)

    @property
    def is_bang(self) -> bool:
        return self.text == "!" and not self.quoted


def _bad(lineno: int, message: str) -> InvalidInput:
    return InvalidInput(f"iptables-save input line {lineno}: {message}")


def _led(origin: str, exc: InvalidInput) -> InvalidInput:
    """``exc`` with its message led by ``origin`` (where the text came from: parse_save), if any."""
    return InvalidInput(f"{origin}: {exc.message}") if origin else exc


_CHUNK = re.compile(r'[^\s"\\]+|[ \t]+|"|\\.?|\s')


def tokenize(line: str, lineno: int = 0) -> list[Token]:
    """Split like iptables-restore: whitespace, "double quotes", backslash escapes."""
    if "\\" not in line:
        if '"' not in line:
            return [Token(part) for part in line.split()]
        simple = _quoted_words(line)
        if simple is not None:
            return simple
    tokens: list[Token] = []
    current: list[str] = []
    quoted = in_quote = have = False
    for chunk in _CHUNK.findall(line):
        first = chunk[0]
        if first == "\\":
            current.append(chunk[1:])
            have = True
        elif first == '"':
            in_quote = not in_quote
            quoted = have = True
        elif first in " \t" and not in_quote:
            if have:
                tokens.append(Token("".join(current), quoted))
            current, quoted, have = [], False, False
        else:
            current.append(chunk)
            have = True
    if in_quote:
        raise _bad(lineno, "unterminated quote")
    if have:
        tokens.append(Token("".join(current), quoted))
    return tokens


def _quoted_words(line: str) -> list[Token] | None:
    """``tokenize`` for a line whose quotes each enclose one whole word (``--comment "a b"``,
    as iptables-save writes them) and which has no backslash; None for anything else.

    Splitting on the quotes is five times cheaper than the chunk loop, and every kube-proxy
    rule carries a quoted comment.
    """
    parts = line.split('"')
    last = len(parts) - 1
    if last % 2:  # an odd number of quotes: the chunk loop reports it
        return None
    tokens: list[Token] = []
    for index, part in enumerate(parts):
        if index % 2:
            tokens.append(Token(part, True))
            continue
        # text glued to a quote (a"b" or "a""b") makes one word of both: not this simple case
        if index and part[:1] not in (" ", "\t") and (part or index < last):
            return None
        if index < last and part[-1:] not in (" ", "\t") and (part or index):
            return None
        tokens.extend(Token(word) for word in part.split())
    return tokens


def quote(value: str, string_option: bool = False, always: bool = False) -> str:
    """Quote a value the way iptables-save does.

    Free-text options (comments, log prefixes) are quoted unless made only of safe
    characters; other values only when they would not survive splitting otherwise.
    """
    safe = _SAFE if string_option else _BARE
    if not always and safe.match(value) and value != "!" and not (value.startswith("-") and len(value) > 1):
        return value
    escaped = "".join("\\" + ch if ch in "\"\\'" else ch for ch in value)
    return f'"{escaped}"'


class _RuleParser:
    def __init__(self, tokens: list[Token], lineno: int, chains: Container[str], table: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.lineno = lineno
        self.chains = chains
        self.table = table

    def bad(self, message: str) -> InvalidInput:
        return _bad(self.lineno, message)

    def next(self) -> Token | None:
        if self.pos >= len(self.tokens):
            return None
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def values(self) -> tuple[str, ...]:
        out = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            if token.is_option or token.is_bang:
                break
            out.append(token.text)
            self.pos += 1
        return tuple(out)

    def parse(self, chain: str) -> tuple[tuple[Match, ...], Target | None, bool]:
        matches: list[Match] = []
        module: str | None = None  # the match that long options belong to
        options: list[Option] = []
        target: Target | None = None
        goto = False
        target_options: list[Option] | None = None
        protocol: str | None = None
        seen_builtins: set[str] = set()

        def close() -> None:
            nonlocal options, module
            if module is not None:
                matches.append(Match(module, tuple(options)))
            module, options = None, []

        while (token := self.next()) is not None:
            negated = False
            if token.is_bang:
                negated = True
                token = self.next()
                if token is None or not token.is_option:
                    raise self.bad(f"'!' must precede an option, found {token.text if token else 'end of line'!r}")
            name = token.text
            if target_options is not None:
                if not token.is_option:
                    raise self.bad(f"unexpected token {name!r} after target {target.name if target else ''}")
                target_options.append(Option(name, self.values(), negated))
                continue
            if name in BUILTIN_OPTIONS:
                short = _SHORT_BUILTIN.get(name, name)
                if short in seen_builtins:
                    raise self.bad(f"multiple {short} options are not allowed")
                seen_builtins.add(short)
                if module != "":
                    close()
                    module = ""
                if name in _NO_VALUE_BUILTINS:
                    options.append(Option(name, (), negated))
                    continue
                value = self.next()
                if value is None or value.is_option or value.is_bang:
                    raise self.bad(f"option {name} needs a value")
                if name in ("-p", "--protocol"):
                    protocol = value.text.lower()
                options.append(Option(name, (value.text,), negated))
            elif name in ("-m", "--match"):
                if negated:
                    raise self.bad("'!' cannot negate -m")
                close()
                value = self.next()
                if value is None or value.is_option or value.is_bang:
                    raise self.bad("-m needs a module name")
                module = value.text
            elif name in _SHORT_TO_LONG_JUMP:
                if negated:
                    raise self.bad(f"'!' cannot negate {name}")
                close()
                value = self.next()
                if value is None or value.is_option or value.is_bang:
                    raise self.bad(f"{name} needs a target")
                goto = _SHORT_TO_LONG_JUMP[name] == "-g"
                is_chain = value.text in self.chains and value.text not in BUILTIN_CHAINS.get(self.table, ())
                if goto and not is_chain:
                    raise self.bad(f"-g needs a user chain, {value.text!r} is not one")
                target = Target(value.text, (), is_chain)
                target_options = []
            elif name in ("-c", "--set-counters"):
                raise self.bad("-c counters inside a rule are not supported; use the [packets:bytes] prefix")
            elif token.is_option and name.startswith("--"):
                if module in (None, ""):
                    # `-p tcp --dport 80`: iptables-restore loads the protocol's match implicitly.
                    if protocol in ("tcp", "udp", "sctp", "udplite", "icmp", "icmpv6", "ipv6-icmp"):
                        close()
                        module = protocol
                    else:
                        raise self.bad(f"option {name} outside a match (missing -m MODULE?)")
                options.append(Option(name, self.values(), negated))
            else:
                raise self.bad(f"unexpected token {name!r}")
        close()
        if target is not None and target_options is not None:
            target = Target(target.name, tuple(target_options), target.is_chain)
        return tuple(matches), target, goto


def split_counters(tokens: list[Token], line: str) -> tuple[Counters | None, list[Token], str]:
    """A rule line's leading ``[packets:bytes]`` (iptables-save -c) taken off its tokens and text."""
    match = _COUNTERS.match(tokens[0].text) if tokens else None
    if not match:
        return None, tokens, line
    return Counters(int(match.group(1)), int(match.group(2))), tokens[1:], line[line.index("]") + 1:].strip()


# The rule shapes kube-proxy writes by the hundred thousand, read by one regular expression
# whose pieces are valid by construction (octets, prefixes and ports in range), so a rule of
# this shape is checked without building anything; its matches and target are built from the
# pieces on first use, into the very objects the token parser builds (tested line by line
# against it), repeated ones shared.  Anything else goes to the token parser, which reports it.
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_ADDR = rf"{_IPV4}(?:/(?:3[0-2]|[12][0-9]|[0-9]))?"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)"
_PORTS = rf"{_PORT}(?::{_PORT})?"
# ip6tables-save writes every -s and -d with its prefix; an address of these characters is
# checked by inet_pton (_shape), as the regular expression cannot say which are addresses
_ADDR6 = r"[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9])"


def _shape_pattern(address: str) -> re.Pattern[str]:
    return re.compile(
        rf"(?:( !)? -s ({address}))?(?:( !)? -d ({address}))?(?:( !)? -p ({_NAME}))?"
        r'(?: -m comment --comment "([^"\\]*)")?'
        rf"(?: -m (tcp|udp|sctp)(?:( !)? --sport ({_PORTS}))?(?:( !)? --dport ({_PORTS}))?)?"
        r"(?: -m statistic --mode random --probability ([0-9]+(?:\.[0-9]+)?))?"
        rf" -j ({_NAME})(?: (--[a-z][a-z-]*) ([A-Za-z0-9\[][A-Za-z0-9_.:/+\[\]-]*))?")


_SHAPES = {"ipv4": _shape_pattern(_ADDR), "ipv6": _shape_pattern(_ADDR6)}
_DNAT_TO = re.compile(rf"{_IPV4}(?::{_PORT})?")  # DNAT --to-destination values valid by construction
_DNAT_TO6 = re.compile(rf"\[([0-9a-f:]+)\](?::{_PORT})?")  # and IPv6 ones, their address checked (deferrable)

Pieces = tuple[Any, ...]  # the regular expression's groups: str or None


def _shape(line: str, start: int = 0, family: str = "ipv4") -> Pieces | None:
    """The regular expression's pieces of a rule body (``line`` from ``start``, after ``-A CHAIN``)
    of the common shape, or None.  The target option's value is not checked here (see LazyChains._rule)."""
    found = _SHAPES[family].fullmatch(line, start)
    if found is None:
        return None
    pieces = found.groups()
    if (pieces[9] is not None and not _ordered(pieces[9])) or (pieces[11] is not None and not _ordered(pieces[11])):
        return None
    if family == "ipv6" and not all(_ipv6(pieces[at]) for at in (1, 3) if pieces[at] is not None):
        return None
    return pieces


def _ipv6(text: str) -> bool:
    """Whether ``ADDRESS/PREFIX`` (of _ADDR6's characters) is an IPv6 network's text."""
    return ipv6_address(text[:text.index("/")])


def _ordered(ports: str) -> bool:
    """A port or a range ``LOW:HIGH`` with LOW <= HIGH."""
    low, colon, high = ports.partition(":")
    return not colon or int(low) <= int(high)


def deferrable(pieces: Pieces) -> bool:
    """Whether a rule of these pieces is valid without building its parts: its target has no
    option, or is DNAT --to-destination with an address (and port) valid by construction, or
    an IPv6 one in brackets that inet_pton reads."""
    option = pieces[14]
    if option is None:
        return True
    if option != "--to-destination" or pieces[13] != "DNAT":
        return False
    if _DNAT_TO.fullmatch(pieces[15]) is not None:
        return True
    found = _DNAT_TO6.fullmatch(pieces[15])
    return found is not None and _ipv6(found[1] + "/")


def _builtin_match(sneg: str | None, src: str | None, dneg: str | None, dst: str | None,
                   pneg: str | None, proto: str | None) -> Match:
    options = []
    if src is not None:
        options.append(Option("-s", (src,), sneg is not None))
    if dst is not None:
        options.append(Option("-d", (dst,), dneg is not None))
    if proto is not None:
        options.append(Option("-p", (proto,), pneg is not None))
    return Match("", tuple(options))


def _port_match(module: str, spneg: str | None, sport: str | None, dpneg: str | None, dport: str | None) -> Match:
    options = []
    if sport is not None:
        options.append(Option("--sport", (sport,), spneg is not None))
    if dport is not None:
        options.append(Option("--dport", (dport,), dpneg is not None))
    return Match(module, tuple(options))


def _comment_match(_kind: str, comment: str) -> Match:
    return Match("comment", (Option("--comment", (comment,)),))


def _statistic_match(_kind: str, probability: str) -> Match:
    return Match("statistic", (Option("--mode", ("random",)), Option("--probability", (probability,))))


def _shared(shared: dict[tuple[str | None, ...], Any], key: tuple[str | None, ...], make: Callable[..., Match]) -> Match:
    """``make(*key)``, or the match made before from the same pieces."""
    made = shared.get(key)
    if made is None:
        made = shared[key] = make(*key)
    return made  # type: ignore[no-any-return]


def _shaped_match(shared: dict[tuple[str | None, ...], Any], pieces: Pieces, kind: str | None) -> Match | None:
    """The match ``kind`` of a rule of the common shape ("builtin": -s/-d/-p, "comment", "port": -m
    tcp|udp|sctp, "statistic"), None when its pieces have none; a match built before in the table
    from the same pieces is that one (``shared``)."""
    if kind == "builtin":
        if pieces[1] is None and pieces[3] is None and pieces[5] is None:
            return None
        return _shared(shared, pieces[:6], _builtin_match)
    if kind == "comment":
        return None if pieces[6] is None else _shared(shared, ("comment", pieces[6]), _comment_match)
    if kind == "port":
        return None if pieces[7] is None else _shared(shared, pieces[7:12], _port_match)
    if kind == "statistic":
        return None if pieces[12] is None else _shared(shared, ("statistic", pieces[12]), _statistic_match)
    return None


_SHAPED_MATCHES = ("builtin", "comment", "port", "statistic")  # in the order the token parser builds them


def _build_shaped(pieces: Pieces, is_chain: Callable[[str], bool],
                  shared: dict[tuple[str | None, ...], Any]) -> tuple[tuple[Match, ...], Target | None, bool]:
    """The matches and target of a rule of the common shape (its target option unchecked); a match
    or target equal to one built before in the table is that one (``shared``, by its pieces)."""
    matches = tuple([match for kind in _SHAPED_MATCHES if (match := _shaped_match(shared, pieces, kind)) is not None])
    return matches, _shaped_target(pieces, is_chain, shared), False


def _shaped_target(pieces: Pieces, is_chain: Callable[[str], bool], shared: dict[tuple[str | None, ...], Any]) -> Target:
    key = pieces[13:]  # -j TARGET [OPTION VALUE]
    target = shared.get(key)
    if target is None:
        name, option, value = key
        target = shared[key] = Target(name, ((Option(option, (value,)),) if option else ()), is_chain(name))
    return target  # type: ignore[no-any-return]


# The match of a rule of the common shape that can hold each view of Match (the others are None):
# the built-in match (-s, -d, -p), the port match (-m tcp|udp|sctp), -m statistic, -m comment.
_HOLDERS = {**dict.fromkeys(("builtins", "src", "dst", "protocol", "in_interface", "out_interface", "fragment"),
                            "builtin"),
            **dict.fromkeys(("sport", "dport", "ports"), "port"), "statistic": "statistic", "comment": "comment"}


class ShapedParts:
    """Builds the parts of a table's rules of the common shape (``self(pieces)``, what a deferred
    rule calls), sharing repeated matches and targets, and answers from the pieces alone what a
    walk over a node's rules asks (the action of a jump tree, a listing's texts), each as the
    built parts would."""

    __slots__ = ("is_chain", "shared", "texts_of")

    def __init__(self, is_chain: Callable[[str], bool]) -> None:
        # no reference back to the chains: a cycle would leave a whole node's rules to the cycle
        # collector instead of reference counts
        self.is_chain = is_chain
        self.shared: dict[tuple[str | None, ...], Any] = {}
        self.texts_of: dict[tuple[str | None, ...], Any] = {}  # pieces of a part -> its texts

    def __call__(self, pieces: Pieces) -> tuple[tuple[Match, ...], Target | None, bool]:
        return _build_shaped(pieces, self.is_chain, self.shared)

    def target(self, pieces: Pieces) -> Target | None:
        """The target alone (the one the rule's parts hold when built)."""
        return _shaped_target(pieces, self.is_chain, self.shared)

    def holder(self, pieces: Pieces, view: str) -> Match | None:
        """The match alone (the one the rule's parts hold when built) that can have ``view`` (a view
        of Match: dport, statistic, src…); None when the rule has none."""
        kind = _HOLDERS.get(view)
        return None if kind is None else _shaped_match(self.shared, pieces, kind)

    def action(self, pieces: Pieces) -> str | None:
        """describe_action of the rule: its target is a chain, DNAT with --to-destination (the
        only option a deferred rule's target has), or a name alone."""
        name = pieces[13]
        if self.is_chain(name):
            return None
        return name if pieces[14] is None else f"{name} {pieces[15]}"  # type: ignore[no-any-return]

    def texts(self, pieces: Pieces) -> RuleTexts:
        """:func:`rule_texts` of the rule these pieces build."""
        texts_of = self.texts_of
        key = pieces[:6]  # -s, -d, -p
        builtins = texts_of.get(key)
        if builtins is None:  # what builtin_texts makes of the match's views, without building them
            sneg, src, dneg, dst, pneg, proto = key
            builtins = texts_of[key] = (
                "all" if proto is None else "!" + proto.lower() if pneg else proto.lower(),
                None if src is None else _negated(_cidr(src), sneg),
                None if dst is None else _negated(_cidr(dst), dneg),
                "", "")
        # part_text of the target: the option values the shape admits are never quoted
        name, option, value = pieces[13:]
        target = name if option is None else f"{name} {option} {value}"
        extra = ""
        if pieces[7] is not None:
            key = pieces[7:12]
            extra = texts_of.get(key) or texts_of.setdefault(key, part_text(_shared(self.shared, key, _port_match)))
        if pieces[12] is not None:
            key = ("statistic", pieces[12])
            text = texts_of.get(key) or texts_of.setdefault(key, part_text(_shared(self.shared, key, _statistic_match)))
            extra = f"{extra} {text}" if extra else text
        return (target, *builtins, extra, pieces[6])


# ---------------------------------------------------------------- a listing's texts of a rule

# (target [" [goto]"], protocol, source, destination, in, out, the other matches, comment):
# source and destination None when the rule has none (anywhere), protocol "all", in/out "".
RuleTexts = tuple[str, str, Optional[str], Optional[str], str, str, str, Optional[str]]


def part_text(item: Match | Target) -> str:
    """``-m tcp --dport 80``, ``DNAT --to-destination 10.1.0.8:8080``: a match or target as a
    listing shows it."""
    head = [item.name] if isinstance(item, Target) else ["-m", item.module]
    return " ".join(head + format_options(item.options))


def _cidr(address: str) -> str:
    """AddressMatch(address).cidr of an address the shape admits: a host (kube-proxy's every -s and
    -d) is its own network, and the shape's octets are written as ipaddress writes them; an IPv6
    network as ipaddress writes it (met once per distinct match: ShapedParts.texts)."""
    if address.endswith("/32"):
        return address
    if ":" in address:
        return AddressMatch(address).cidr
    if "/" not in address:
        return address + "/32"
    return ipv4_network(address, False)[3]  # type: ignore[index]


def _negated(text: str, negated: Any) -> str:
    return "!" + text if negated else text


def builtin_texts(views: Builtins) -> tuple[str, str | None, str | None, str, str]:
    """The built-in matches' texts: protocol, source, destination, in, out (``!`` when negated)."""
    protocol, src, dst, iif, oif = views
    return (_negated(protocol.name, protocol.negated) if protocol else "all",
            _negated(src.cidr, src.negated) if src else None,
            _negated(dst.cidr, dst.negated) if dst else None,
            _negated(iif.name, iif.negated) if iif else "",
            _negated(oif.name, oif.negated) if oif else "")


def rule_texts(rule: Rule, made: dict[int, str]) -> RuleTexts:
    """What a listing shows of ``rule``; ``made``: the texts of matches and targets made so far
    (by id(), for parts the rules share and that live as long as ``made`` is used)."""
    unbuilt = rule.unbuilt
    if unbuilt is not None and isinstance(unbuilt[0], ShapedParts):
        return unbuilt[0].texts(unbuilt[1])
    target = "" if rule.target is None else _made_text(rule.target, made)
    if rule.goto:
        target += " [goto]"
    extra = " ".join([_made_text(m, made) for m in rule.matches if m.module and m.module != "comment"])
    return (target, *builtin_texts(rule.builtins()), extra, rule.comment)


def _made_text(item: Match | Target, made: dict[int, str]) -> str:
    """part_text of ``item``, made once per item (see rule_texts)."""
    known = made.get(id(item))
    if known is None:
        known = made[id(item)] = part_text(item)
    return known


def parse_rule_body(tokens: list[Token], lineno: int, chain: str, chains: Container[str], table: str,
                    family: str) -> tuple[tuple[Match, ...], Target | None, bool]:
    """The matches and target after ``-A CHAIN``, validated and checked against the family."""
    matches, target, goto = _RuleParser(tokens, lineno, chains, table).parse(chain)
    try:
        for item in matches:
            item.validate()
        if target is not None:
            target.validate()
    except (ValueError, IndexError) as exc:
        raise _bad(lineno, str(exc)) from None
    _check_family(matches, family, lineno)
    return matches, target, goto


class LazyChains(Mapping[str, Chain]):
    """A table's declared chains in save order; each chain's rules are parsed, validated and
    kept the first time it is looked up (a trace reads a handful of a 100,000-rule node's)."""

    def __init__(self, table: str, family: str, declared: dict[str, tuple[str | None, int, int]],
                 lines: dict[str, list[tuple[int, str]]], late: dict[str, int], origin: str = "") -> None:
        self._table, self._family = table, family
        self._origin = origin  # what leads the message of a malformed rule found when its chain is read
        self._declared, self._lines = declared, lines
        # chains declared after the table's first rule line → their declaration line: a rule
        # before it sees no such chain (`-j NAME` is then a target, not a jump)
        self._late = late
        self._built: dict[str, Chain] = {}
        # what builds a deferred rule's parts, sharing repeated matches and targets within the table
        builtin = BUILTIN_CHAINS.get(table, ())
        self._build = ShapedParts(frozenset(name for name in declared if name not in builtin).__contains__)
        # the chains this mapping lists (a subset's: some of the declared ones, some of them replaced)
        self._listed: Mapping[str, Any] = declared
        self._replaced: Mapping[str, Chain] = {}

    def subset(self, names: Iterable[str], replaced: Mapping[str, Chain]) -> LazyChains:
        """These chains with only ``names`` listed (``replaced``: chains that stand for their own,
        e.g. a built-in chain with only some of its rules); rules not read yet stay so, and rules
        are still read against every declared chain.  What `iptables list --kube -o save` prints."""
        view = copy.copy(self)  # shares the declarations, the lines and the chains read so far
        view._listed = dict.fromkeys(names)
        view._replaced = replaced
        return view

    def __getitem__(self, name: str) -> Chain:
        if name not in self._listed:  # undeclared, or left out of a subset
            raise KeyError(name)
        chain = self._replaced.get(name) or self._built.get(name)
        if chain is None:
            chain = self._built[name] = self._parsed(name)
            del self._lines[name]  # each rule keeps its text
        return chain

    def once(self, name: str) -> Chain | None:
        """Chain ``name`` (None when not listed) for a walk that reads each chain once: its rules
        are parsed now and not kept, unless they were read already.  What `services` walks with:
        the 110,000 rules of a 10,000-service node, kept with their parts, were 50 MiB of its peak."""
        if name not in self._listed:
            return None
        chain = self._replaced.get(name) or self._built.get(name)
        return chain if chain is not None else self._parsed(name)

    def _parsed(self, name: str) -> Chain:
        policy, packets, bytes_ = self._declared[name]
        try:
            rules = self._read(name)
        except InvalidInput as exc:
            raise _led(self._origin, exc) from None
        return Chain(name, policy, packets, bytes_, rules)

    def _read(self, chain: str) -> tuple[Rule, ...]:
        """The rules of ``chain``, parsed and validated: a line of the common shape by one regular
        expression (its parts built when first read), any other by the token parser (:meth:`_rule`)."""
        lines = self._lines[chain]
        if self._late:  # every line goes to the token parser
            return tuple(self._rule(chain, number, lineno, line) for number, (lineno, line) in enumerate(lines, 1))
        prefix, deferred, maker, family = "-A " + chain, Rule.deferred, self._build, self._family
        start, is_chain = len(prefix), maker.is_chain
        rules = []
        for number, (lineno, line) in enumerate(lines, 1):
            text, counters = line, None
            if line[0] == "[" and (counted := _COUNTED.match(line)) is not None:  # iptables-save -c
                text, counters = line[counted.end():], Counters(int(counted[1]), int(counted[2]))
            pieces = _shape(text, start, family) if text.startswith(prefix) else None
            if pieces is not None and (pieces[14] is None or deferrable(pieces)):  # (no target option: the common case)
                name = pieces[13]
                rules.append(deferred(chain, number, text, name, name if is_chain(name) else None, pieces[6], maker,
                                      pieces, counters))
            else:
                rules.append(self._rule(chain, number, lineno, line, pieces, text, counters))
        return tuple(rules)

    def counted(self, name: str) -> tuple[bool, int]:
        """Whether chain ``name`` is built-in, and how many rules it has, without reading them."""
        chain = self._replaced.get(name) or self._built.get(name)
        if chain is not None:
            return chain.builtin, len(chain.rules)
        return self._declared[name][0] is not None, len(self._lines[name])

    def __contains__(self, name: object) -> bool:
        return name in self._listed

    def __iter__(self) -> Iterator[str]:
        return iter(self._listed)

    def __len__(self) -> int:
        return len(self._listed)

    def read_all(self) -> None:
        """Parse (and validate) every listed chain not read yet, in save order; nothing left: no work.
        (What ``self[name]`` does for each, without its lookups: a node has 40,000 chains.)"""
        lines, built, parsed = self._lines, self._built, self._parsed
        for name in [name for name in lines if name in self._listed and name not in self._replaced]:
            built[name] = parsed(name)
            del lines[name]  # each rule keeps its text

    def save_lines(self) -> list[str]:
        """The listed chains' declarations and rule lines, without counters, as read: chains not
        read yet are printed without parsing their rules (`iptables list -o save` of a node)."""
        out = []
        for name in self._listed:
            policy, packets, bytes_ = self._declared[name]
            out.append(f":{name} {policy or '-'} [{packets}:{bytes_}]")
        for name in self._listed:
            built = self._replaced.get(name) or self._built.get(name)
            if built is not None:
                out.extend(rule.text or format_rule(rule) for rule in built.rules)
            else:
                out.extend(line[line.index("]") + 1:].lstrip() if line[0] == "[" else line
                           for _, line in self._lines[name])
        return out

    def _rule(self, chain: str, number: int, lineno: int, line: str, pieces: Pieces | None = None,
              text: str = "", counters: Counters | None = None) -> Rule:
        """Rule ``number`` of ``chain`` built now; ``pieces``: the common shape's (of ``text``, the
        line without its ``counters``), of a rule whose target has an option other than DNAT's
        (checked here)."""
        if pieces is not None:
            parts = self._build(pieces)
            try:
                parts[1].validate()  # type: ignore[union-attr]
                return Rule(chain, number, text, *parts, counters)
            except (ValueError, IndexError):
                pass  # the token parser reports it
        chains: Container[str] = _DeclaredBefore(self._declared, self._late, lineno) if self._late else self._declared
        counters, tokens, line = split_counters(tokenize(line, lineno), line)
        matches, target, goto = parse_rule_body(tokens[2:], lineno, chain, chains, self._table, self._family)
        return Rule(chain, number, line, matches, target, goto, counters)


class _DeclaredBefore:
    """The chains a rule line sees: those declared before it (``late``: declared after the table's
    first rule, with their line); a lookup per name, not a set per rule."""

    __slots__ = ("declared", "late", "lineno")

    def __init__(self, declared: Container[str], late: dict[str, int], lineno: int) -> None:
        self.declared, self.late, self.lineno = declared, late, lineno

    def __contains__(self, name: object) -> bool:
        return name in self.declared and self.late.get(name, 0) < self.lineno  # type: ignore[call-overload]


def parse_save(text: str, family: str = "ipv4", backend: str = "nft", lazy: bool = False,
               origin: str = "") -> Ruleset:
    """Parse iptables-save (or ip6tables-save) output.  Malformed input → InvalidInput, its
    message led by ``origin`` (where the text came from) when given.

    One cheap pass checks the structure (tables, chain declarations, each rule line's
    ``-A CHAIN``) and keeps each chain's lines; rules are parsed per chain on first use.
    ``lazy``: leave them so (a malformed rule then fails when its chain is read); else
    every chain is read before returning.
    """
    if family not in ("ipv4", "ipv6"):
        raise InvalidInput(f"unknown family {family!r} (ipv4 or ipv6)")
    try:
        ruleset = Ruleset(family, backend, _tables(text, family, origin))
    except InvalidInput as exc:
        raise _led(origin, exc) from None
    if not lazy:
        read_all(ruleset)  # (a chain's errors name the origin themselves: LazyChains)
    return ruleset


def _tables(text: str, family: str, origin: str) -> dict[str, Table]:
    """The structure pass of parse_save: each table's chains, their rules' lines kept."""
    tables: dict[str, Table] = {}
    table: str | None = None
    declared: dict[str, tuple[str | None, int, int]] = {}
    lines: dict[str, list[tuple[int, str]]] = {}
    plain: dict[str, list[tuple[int, str]]] = {}  # chains whose name needs no unquoting
    late: dict[str, int] = {}  # see LazyChains
    ruled = False  # a rule line was seen in this table
    builtin: Container[str] = ()  # the table's built-in chains
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if raw[:3] == "-A " or raw[:1] == "[":  # the line a kube-proxy node has by the hundred thousand
            at = 3  # where the chain's name starts: after "-A ", or iptables-save -c's "[PACKETS:BYTES] -A "
            if raw[0] == "[":
                counted = _COUNTED.match(raw)
                at = counted.end() + 3 if counted is not None and raw.startswith("-A ", counted.end()) else 0
            end = raw.find(" ", at)
            bucket = plain.get(raw[at:end] if end > 0 else raw[at:]) if at else None
            if bucket is not None and not raw[-1].isspace():
                bucket.append((lineno, raw))
                ruled = True
                continue
        elif raw[-8:] == " - [0:0]" and raw[:1] == ":":  # a user chain's declaration, tens of thousands
            name = raw[1:-8]
            if (table is not None and not ruled and name not in declared and name not in builtin
                    and _PLAIN_CHAIN_NAME.fullmatch(name)):
                declared[name] = _USER_CHAIN
                plain[name] = lines[name] = []
                continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            if table is not None:
                raise _bad(lineno, f"table {line[1:]!r} starts before COMMIT of {table!r}")
            table = line[1:].strip()
            if not table or " " in table:
                raise _bad(lineno, f"bad table line {line!r}")
            if table in tables:
                raise _bad(lineno, f"table {table!r} appears twice")
            declared, lines, plain, late, ruled = {}, {}, {}, {}, False
            builtin = BUILTIN_CHAINS.get(table, ())
            continue
        if table is None:
            raise _bad(lineno, f"{line.split()[0]!r} outside a table (missing *TABLE)")
        if line == "COMMIT":
            tables[table] = Table(table, LazyChains(table, family, declared, lines, late, origin))
            table, plain = None, {}
            continue
        if line.startswith(":"):
            name = _parse_chain_line(line, lineno, table, declared)
            lines[name] = []
            if "\\" not in name:
                plain[name] = lines[name]
            if ruled:
                late[name] = lineno
            continue
        _, tokens, rest = split_counters(tokenize(line, lineno), line)
        if len(tokens) < 2 or tokens[0].text not in ("-A", "--append"):
            first = tokens[0].text if tokens else rest
            raise _bad(lineno, f"unexpected {first!r} (expected -A CHAIN, :CHAIN, *TABLE or COMMIT)")
        chain = tokens[1].text
        if chain not in declared:
            raise _bad(lineno, f"chain {chain!r} is not declared in table {table!r}")
        lines[chain].append((lineno, line))
        ruled = True
    if table is not None:
        raise InvalidInput(f"iptables-save input: table {table!r} has no COMMIT")
    return tables


def read_all(ruleset: Ruleset) -> Ruleset:
    """``ruleset`` with every chain parsed now, for a caller about to read (nearly) all of them."""
    for table in ruleset.tables.values():
        if isinstance(table.chains, LazyChains):
            table.chains.read_all()
    return ruleset


def _parse_chain_line(line: str, lineno: int, table: str,
                      declared: dict[str, tuple[str | None, int, int]]) -> str:
    parts = line[1:].split()
    if len(parts) not in (2, 3) or not _CHAIN_NAME.match(parts[0]) or parts[1] not in _POLICIES:
        raise _bad(lineno, f"bad chain line {line!r} (expected :NAME POLICY [packets:bytes])")
    name, policy = parts[0], parts[1]
    packets = bytes_ = 0
    if len(parts) == 3 and parts[2] != "[0:0]":  # kube-proxy's chains all have [0:0]
        counted = _COUNTERS.match(parts[2])
        if not counted:
            raise _bad(lineno, f"bad counters {parts[2]!r} (expected [packets:bytes])")
        packets, bytes_ = int(counted.group(1)), int(counted.group(2))
    builtin = name in BUILTIN_CHAINS.get(table, ())
    if builtin == (policy == "-") and table in BUILTIN_CHAINS:
        kind = "built-in" if builtin else "user"
        raise _bad(lineno, f"{kind} chain {name!r} cannot have policy {policy!r}")
    if name in declared:
        raise _bad(lineno, f"chain {name!r} declared twice")
    declared[name] = (None if policy == "-" else policy, packets, bytes_)
    return name


def _check_family(matches: tuple[Match, ...], family: str, lineno: int) -> None:
    version = 4 if family == "ipv4" else 6
    for item in matches:
        for address in (item.src, item.dst):
            if address is not None and address.version != version:
                raise _bad(lineno, f"address {address.address!r} is not {family}")


# ---------------------------------------------------------------- writer


def format_options(options: tuple[Option, ...]) -> list[str]:
    parts: list[str] = []
    for opt in options:
        if opt.negated:
            parts.append("!")
        parts.append(opt.name)
        parts.extend(quote(v, opt.name in _STRING_OPTIONS, opt.name in _ALWAYS_QUOTED) for v in opt.values)
    return parts


def format_rule(rule: Rule) -> str:
    """The ``-A CHAIN …`` line of a rule, built from its parts."""
    parts = ["-A", rule.chain]
    for match in rule.matches:
        if match.module:
            parts += ["-m", match.module]
        parts += format_options(match.options)
    if rule.target is not None:
        parts += ["-g" if rule.goto else "-j", rule.target.name]
        parts += format_options(rule.target.options)
    return " ".join(parts)


def format_save(ruleset: Ruleset, counters: bool = False, header: str | None = None) -> str:
    """iptables-save text of ``ruleset`` (``counters``: like `iptables-save -c`)."""
    lines: list[str] = []
    for table in ruleset.tables.values():
        if header:
            lines.append(f"# {header}")
        lines.append(f"*{table.name}")
        if isinstance(table.chains, LazyChains) and not counters:
            lines.extend(table.chains.save_lines())
            lines.append("COMMIT")
            continue
        for chain in table.chains.values():
            lines.append(f":{chain.name} {chain.policy or '-'} [{chain.packets}:{chain.bytes}]")
        for chain in table.chains.values():
            for rule in chain.rules:
                prefix = ""
                if counters:
                    c = rule.counters or Counters()
                    prefix = f"[{c.packets}:{c.bytes}] "
                lines.append(prefix + (rule.text or format_rule(rule)))  # a rule read from text: as read
        lines.append("COMMIT")
    return "\n".join(lines) + ("\n" if lines else "")
