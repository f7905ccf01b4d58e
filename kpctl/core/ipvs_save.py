"""Reading the rule format of ``ipvsadm -R`` (what ``ipvsadm -Sn`` writes: :func:`kpctl.core.ipvsadm_list.format_save`)."""

from __future__ import annotations

import functools
from operator import itemgetter
from typing import Callable, Sequence

from kpctl.core.address import ascii_number, canonical_ipv4, parse_address, parse_fwmark, parse_port
from kpctl.core.ipvs_options import (
    MAX_TIMEOUT,
    build_server, build_service, parse_server_options, parse_service_options, server_identity,
)
from kpctl.core.ipvs_plan import (
    AddServer, AddService, DeleteServer, DeleteService, EditServer, EditService, Flush, Operation,
    ZeroCounters,
)
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import SCHEDULERS, SVC_F_PERSISTENT, RealServer, ServiceKey, VirtualService

_COMMANDS = {
    "-A": "add-service", "--add-service": "add-service", "-E": "edit-service", "--edit-service": "edit-service",
    "-D": "delete-service", "--delete-service": "delete-service", "-C": "clear", "--clear": "clear",
    "-a": "add-server", "--add-server": "add-server", "-e": "edit-server", "--edit-server": "edit-server",
    "-d": "delete-server", "--delete-server": "delete-server", "-Z": "zero", "--zero": "zero",
}
_UNSUPPORTED = {"-L", "-l", "--list", "-S", "--save", "-R", "--restore", "--set", "--start-daemon",
                "--stop-daemon", "-h", "--help", "-v", "--version"}
# option spelling -> (canonical name, takes a value)
_OPTIONS: dict[str, tuple[str, bool]] = {
    "-t": ("tcp", True), "--tcp-service": ("tcp", True), "-u": ("udp", True), "--udp-service": ("udp", True),
    "--sctp-service": ("sctp", True), "-f": ("fwmark", True), "--fwmark-service": ("fwmark", True),
    "-6": ("ipv6", False), "--ipv6": ("ipv6", False),
    "-s": ("scheduler", True), "--scheduler": ("scheduler", True),
    "-p": ("persistent", False), "--persistent": ("persistent", False),  # optional value, handled below
    "-M": ("netmask", True), "--netmask": ("netmask", True), "-o": ("ops", False), "--ops": ("ops", False),
    "--pe": ("pe", True), "-b": ("sched-flags", True), "--sched-flags": ("sched-flags", True),
    "-r": ("real-server", True), "--real-server": ("real-server", True),
    "-m": ("masq", False), "--masquerading": ("masq", False), "-g": ("route", False),
    "--gatewaying": ("route", False), "-i": ("tunnel", False), "--ipip": ("tunnel", False),
    "-w": ("weight", True), "--weight": ("weight", True), "-x": ("u-threshold", True),
    "--u-threshold": ("u-threshold", True), "-y": ("l-threshold", True), "--l-threshold": ("l-threshold", True),
    "--tun-type": ("tun-type", True), "--tun-port": ("tun-port", True), "--tun-nocsum": ("nocsum", False),
    "--tun-csum": ("csum", False), "--tun-remcsum": ("remcsum", False),
    "-n": ("numeric", False), "--numeric": ("numeric", False),
}
_SERVICE_OPTIONS = {"tcp", "udp", "sctp", "fwmark", "ipv6"}
_FORWARD = {"masq", "route", "tunnel"}
_CSUM = {"nocsum", "csum", "remcsum"}
_SERVER_ONLY = {"real-server", "weight", "u-threshold", "l-threshold", "tun-type", "tun-port"} | _FORWARD | _CSUM
_SVC_ONLY = {"scheduler", "persistent", "netmask", "ops", "pe", "sched-flags"}
_ALLOWED: dict[str, set[str]] = {
    "add-service": _SERVICE_OPTIONS | _SVC_ONLY, "edit-service": _SERVICE_OPTIONS | _SVC_ONLY,
    "delete-service": set(_SERVICE_OPTIONS), "clear": set(), "zero": set(_SERVICE_OPTIONS),
    "add-server": _SERVICE_OPTIONS | _SERVER_ONLY, "edit-server": _SERVICE_OPTIONS | _SERVER_ONLY,
    "delete-server": _SERVICE_OPTIONS | {"real-server"},
}


_SHORT_ATTACHED = frozenset(name for name in (*_OPTIONS, *_COMMANDS) if len(name) == 2)
# options of which a line takes one: given twice (or two of a group), the line is refused
_GROUPS = {**dict.fromkeys(_SERVICE_OPTIONS - {"ipv6"}, "service"), **dict.fromkeys(_FORWARD, "forward"),
           **dict.fromkeys(_CSUM, "csum")}
_GROUP_ERRORS = {
    "service": "line {n}: option {name!r} given twice",
    "forward": "line {n}: more than one forwarding method ({name!r})",
    "csum": "line {n}: option {name!r} conflicts with another --tun-*csum option",
}


def _split_option(token: str) -> tuple[str, str | None]:
    """``--weight=3`` → (--weight, 3); ``-w3`` → (-w, 3); otherwise (token, None)."""
    if token in _OPTIONS or token in _COMMANDS:
        return token, None
    if token.startswith("--") and "=" in token:
        name, _, value = token.partition("=")
        return name, value
    if len(token) > 2 and token[0] == "-" and token[:2] in _SHORT_ATTACHED:
        return token[:2], token[2:]
    return token, None


# A line's layout: its command, the options whose values are its tokens (names, and a getter of
# those tokens), and the options whose values it holds whole (flags: "", and attached: -w3).
Layout = tuple[str, tuple[str, ...], Callable[[Sequence[str]], Sequence[str]], dict[str, str]]
# A file's lines come in a few layouts (`ipvsadm -Sn` writes 60,000 lines of two): each is read
# once.  What the tokenizer reads of a line is the tokens that begin with "-", and where the
# others stand (all of them values, when the line is good: a bad line's layout is never kept).
_LAYOUTS: dict[tuple[str, ...], Layout] = {}
_LAYOUTS_KEPT = 4096


def _tokenize(number: int, tokens: list[str]) -> tuple[str, dict[str, str]]:
    """The command and its options: canonical option -> value ("" for flags)."""
    shape = tuple([token if token[0] == "-" else "" for token in tokens])
    layout = _LAYOUTS.get(shape)
    if layout is None:
        layout = _layout(number, tokens)
        if len(_LAYOUTS) < _LAYOUTS_KEPT:
            _LAYOUTS[shape] = layout
    command, names, pick, whole = layout
    values = dict(zip(names, pick(tokens)))
    if whole:
        values.update(whole)
    return command, values


def _layout(number: int, tokens: list[str]) -> Layout:
    """The command and where each option's value is (:func:`_tokenize`); errors name line ``number``."""
    command = ""
    values: dict[str, int | str] = {}
    spelled: dict[str, str] = {}
    groups: set[str] = set()
    index, count = 0, len(tokens)
    while index < count:
        name, attached = _split_option(tokens[index])
        index += 1
        if name in _COMMANDS:
            if command:
                raise InvalidInput(f"line {number}: more than one command ({name!r})")
            command = _COMMANDS[name]
            continue
        known = _OPTIONS.get(name)
        if known is None:
            if name in _UNSUPPORTED:
                raise InvalidInput(f"line {number}: {name!r} cannot be used in a restore file")
            raise InvalidInput(f"line {number}: unknown option {name!r}")
        canonical, takes_value = known
        group = _GROUPS.get(canonical)
        if canonical in values or group in groups:
            error = _GROUP_ERRORS["service" if canonical in values or group is None else group]
            raise InvalidInput(error.format(n=number, name=name))
        if group is not None:
            groups.add(group)
        value: int | str = attached if attached is not None else ""
        if takes_value and attached is None:
            if index >= count:
                raise InvalidInput(f"line {number}: option {name!r} needs a value")
            value = index
            index += 1
        elif canonical == "persistent" and attached is None and index < count \
                and not tokens[index].startswith("-"):
            value = index  # popt's optional argument
            index += 1
        if canonical == "ipv6" and "fwmark" not in values:
            raise InvalidInput(f"line {number}: -6 used before -f")
        values[canonical] = value
        spelled[canonical] = name
    if not command:
        raise InvalidInput(f"line {number}: no command (-A, -E, -D, -a, -e, -d, -C or -Z) in {' '.join(tokens)!r}")
    allowed = _ALLOWED[command]
    for option in values:
        if option not in allowed and option != "numeric":
            raise InvalidInput(f"line {number}: option {spelled[option]!r} is not allowed with {command}")
    places = {name: at for name, at in values.items() if type(at) is int}
    positions = tuple(places.values())
    pick = itemgetter(*positions) if len(positions) > 1 else lambda tokens: [tokens[at] for at in positions]
    return command, tuple(places), pick, {name: text for name, text in values.items() if type(text) is str}


@functools.lru_cache(maxsize=4096)  # every -a line of a service repeats its -t/-u text
def parse_rule_service(protocol: str, text: str) -> ServiceKey:
    """ipvsadm's ``ADDR[:PORT]`` / ``[V6]:PORT`` after -t/-u/--sctp-service (no port: port 0)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if not rest.startswith(":"):
            raise InvalidInput(f"invalid service address {text!r}")
        port_text: str | None = rest[1:]
    elif text.count(":") > 1:
        host, port_text = text, None
    else:
        host, _sep, port_text = text.rpartition(":") if ":" in text else (text, "", None)
    address, family = parse_address(host, f"service {text!r}")
    port = 0 if port_text is None else parse_port(port_text, f"service {text!r}")
    return ServiceKey(family=family, protocol=protocol, address=address, port=port)


def _rule_fwmark(text: str) -> int:
    """ipvsadm 1.31 -S writes marks above 2^31-1 with %d (negative): read those back as unsigned."""
    negative = ascii_number(text[1:]) if text.startswith("-") else None
    if negative is not None and 0 < negative <= 1 << 31:
        return (1 << 32) - negative
    return parse_fwmark(text)


def _service_key(values: dict[str, str]) -> ServiceKey | None:
    if "fwmark" in values:
        family = "inet6" if "ipv6" in values else "inet"
        return ServiceKey(family=family, protocol=None, fwmark=_rule_fwmark(values["fwmark"]))
    for protocol in ("tcp", "udp", "sctp"):
        if protocol in values:
            return parse_rule_service(protocol, values[protocol])
    return None


def _operation(n: int, command: str, values: dict[str, str]) -> Operation:
    key = _service_key(values)
    if command == "clear":
        return Flush(line=n)
    if command == "zero":
        return ZeroCounters(key, line=n)
    if key is None:
        raise InvalidInput(f"line {n}: {command} needs a service (-t, -u, --sctp-service or -f)")
    if command in ("add-service", "edit-service"):
        options = parse_service_options(values.get("scheduler"), values.get("persistent"), values.get("netmask"),
                                        values.get("sched-flags"), values.get("pe"), "ops" in values)
        service = build_service(key, options)
        return AddService(service, line=n) if command == "add-service" else EditService(service, line=n)
    if command == "delete-service":
        return DeleteService(key, line=n)
    if "real-server" not in values:
        raise InvalidInput(f"line {n}: {command} needs a real server (-r)")
    if command == "delete-server":
        return DeleteServer(key, server_identity(key, values["real-server"]), line=n)
    forward = "masq" if "masq" in values else "route" if "route" in values else "tunnel" if "tunnel" in values else None
    csum = "nocsum" if "nocsum" in values else "csum" if "csum" in values else "remcsum" if "remcsum" in values else None
    server_options = parse_server_options(values.get("weight"), forward, values.get("u-threshold"),
                                          values.get("l-threshold"), values.get("tun-type"),
                                          values.get("tun-port"), csum)
    server = build_server(key, values["real-server"], server_options)
    return AddServer(key, server, line=n) if command == "add-server" else EditServer(key, server, line=n)


def parse_rule_line(number: int, raw: str) -> Operation | None:
    """The operation of line ``number`` of an ``ipvsadm -R`` input; None for a blank or comment line."""
    tokens = raw.split()
    if "ipvsadm" in tokens:
        tokens = [t for t in tokens if t != "ipvsadm"]
    if not tokens or tokens[0].startswith("#"):
        return None
    command, values = _tokenize(number, tokens)
    try:
        return _operation(number, command, values)
    except InvalidInput as exc:
        if exc.message.startswith(f"line {number}:"):
            raise
        raise InvalidInput(f"line {number}: {exc.message}", exc.hint) from None


def parse_restore(text: str) -> list[Operation]:
    """The operations of an ``ipvsadm -R`` input (``-S`` output and the other -A/-E/-D/-a/-e/-d/-C/-Z lines).

    Blank lines and lines starting with ``#`` are skipped; a leading ``ipvsadm`` word is ignored.
    Errors are InvalidInput naming the line number and the bad token.
    """
    read = rule_reader()
    ops: list[Operation] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        op = read(number, raw)
        if op is not None:
            ops.append(op)
    return ops


def rule_reader() -> Callable[[int, str], Operation | None]:
    """:func:`parse_rule_line` for the lines of one input: the two shapes `ipvsadm -Sn` writes by
    the ten thousand are read by :class:`_CommonLines` (which remembers the input's services)."""
    common = _CommonLines().read

    def read(number: int, raw: str) -> Operation | None:
        op: Operation | None = common(number, raw.split())
        return op if op is not None else parse_rule_line(number, raw)

    return read


# -- the two shapes `ipvsadm -Sn` writes by the ten thousand ----------------------------------
# A restore of 10,000 services x 5 real servers is 60,000 lines of two shapes:
#     -A -t 10.96.0.1:80 -s rr
#     -a -t 10.96.0.1:80 -r 172.16.0.1:8080 -m -w 1
# _CommonLines recognises exactly these (IPv4, TCP or UDP, canonical addresses and numbers) from
# the split line and makes their operation without the option tokenizer; it returns None for
# every other line, including every line with an error, which then takes parse_rule_line (so
# messages and line numbers are its own).  Unit-tested: the same operations as parse_rule_line.
_PROTOCOLS = {"-t": "tcp", "-u": "udp"}
_SHORT_FORWARD = {"-m": "masq", "-g": "route"}
_SCHEDULER_NAMES = frozenset(SCHEDULERS)


def _number(text: str, high: int) -> int | None:
    """Up to 10 ASCII digits of a value at most ``high``; None for anything else (parse_rule_line's)."""
    value = ascii_number(text, 10)
    return value if value is not None and value <= high else None


class _CommonLines:
    """Reads one split line at a time; remembers the services it has seen (every -a line repeats
    one: its servers get the very same ServiceKey object)."""

    def __init__(self) -> None:
        self._services: dict[tuple[str, str], ServiceKey | None] = {}
        self._last: tuple[str, str, ServiceKey | None] = ("", "", None)
        self._numbers: dict[str, int | None] = {}  # port and weight texts repeat: each read once

    def _service(self, option: str, text: str) -> ServiceKey | None:
        last = self._last
        if text == last[1] and option == last[0]:
            return last[2]
        key = self._services.get((option, text), False)
        if key is False:
            host, sep, port_text = text.partition(":")
            port = _number(port_text, 0xFFFF) if sep else None
            key = None
            if port is not None and canonical_ipv4(host):
                key = ServiceKey(family="inet", protocol=_PROTOCOLS[option], address=host, port=port)
            self._services[(option, text)] = key
        self._last = (option, text, key)  # type: ignore[assignment]
        return key  # type: ignore[return-value]

    def _port(self, text: str) -> int | None:
        """A port or weight (0..65535) written in ASCII digits; None for anything else."""
        value = self._numbers.get(text, -1)
        if value == -1:
            value = self._numbers[text] = _number(text, 0xFFFF)
        return value

    def read(self, number: int, tokens: list[str]) -> Operation | None:
        count = len(tokens)
        if count == 8:
            command, option, service_text, r_option, server_text, forward_option, w_option, weight_text = tokens
            if command != "-a" or r_option != "-r" or w_option != "-w" or option not in _PROTOCOLS:
                return None
            forward = _SHORT_FORWARD.get(forward_option)
            weight = self._port(weight_text)
            key = self._service(option, service_text)
            if forward is None or weight is None or key is None:
                return None
            host, sep, port_text = server_text.partition(":")
            port = self._port(port_text) if sep else None
            if port is None or not canonical_ipv4(host):
                return None
            if forward == "route":
                port = key.port  # ipvsadm: a direct-routing server takes the service's port
            return AddServer(key, RealServer(host, port, "inet", forward, weight), line=number)
        if (count == 5 or count == 7) and tokens[0] == "-A" and tokens[1] in _PROTOCOLS and tokens[3] == "-s":
            timeout = 0
            if count == 7:
                if tokens[5] != "-p":
                    return None
                timeout = _number(tokens[6], MAX_TIMEOUT) or 0
                if not timeout:
                    return None
            key = self._service(tokens[1], tokens[2])
            if key is None or tokens[4] not in _SCHEDULER_NAMES or (key.port == 0 and not timeout):
                return None  # port 0 without persistence: parse_rule_line's error
            return AddService(VirtualService(
                family="inet", protocol=key.protocol, address=key.address, port=key.port, scheduler=tokens[4],
                flags=SVC_F_PERSISTENT if timeout else 0, timeout=timeout, netmask=0xFFFFFFFF), line=number)
        return None
