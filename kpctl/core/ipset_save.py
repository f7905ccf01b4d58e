"""The `ipset save` format: write it byte for byte, read it back (and ipset restore's commands).

Written::

    create NAME TYPE HEADER-OPTIONS
    add NAME ELEMENT [ENTRY-OPTIONS]

Read (restore files): lines ``create``, ``add``, ``del``, ``flush``, ``destroy``, ``rename``,
``swap`` (and ipset's short forms ``-N -A -D -F -X -E -W``), each optionally with
``-exist``/``-!``; blank lines and ``#`` comments are skipped.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import NamedTuple

from kpctl.core.address import ascii_number
from kpctl.core.ipset_entry import (
    _parse_ip,
    format_entry,
    parse_member,
    parse_uint,
    tokenize,
    validate_set_name,
)
from kpctl.errors import InvalidInput
from kpctl.model.ipset import FAMILIES, SET_TYPES, IPSet, IPSetEntry

COMMAND_ALIASES: dict[str, str] = {
    "create": "create", "n": "create", "-N": "create", "add": "add", "a": "add", "-A": "add",
    "del": "del", "delete": "del", "-D": "del", "flush": "flush", "-F": "flush",
    "destroy": "destroy", "x": "destroy", "-X": "destroy", "rename": "rename", "e": "rename",
    "-E": "rename", "swap": "swap", "w": "swap", "-W": "swap",
}
_FLAG_OPTIONS = ("counters", "comment", "skbinfo", "forceadd")
_INT_OPTIONS = ("hashsize", "maxelem", "timeout", "size", "bucketsize", "initval", "markmask", "netmask")


class RestoreCommand(NamedTuple):
    """One line of a restore file. ``entry`` for add/del, ``ipset`` for create.  (A tuple: a
    set's save text is a command per member, 100,000 for a large set.)"""

    command: str  # create|add|del|flush|destroy|rename|swap
    lineno: int
    name: str = ""  # the set (empty: all sets, for flush/destroy without a name)
    name2: str = ""  # rename/swap target
    ipset: IPSet | None = None
    entry: IPSetEntry | None = None
    exist: bool = False

    def describe(self) -> str:
        """This command as a line of an ``ipset restore`` file."""
        if self.command == "create" and self.ipset is not None:
            line = format_create(self.ipset)
        elif self.command == "add" and self.entry is not None:
            line = f"add {self.name} {format_entry(self.entry)}"
        elif self.command == "del" and self.entry is not None:
            line = f"del {self.name} {self.entry.raw}"
        else:
            line = " ".join(part for part in (self.command, self.name, self.name2) if part)
        return line + (" -exist" if self.exist else "")


def _default_family(set_type: str) -> str | None:
    if set_type in ("bitmap:port", "list:set", "hash:mac"):
        return None
    return "inet"


def parse_create(name: str, set_type: str, options: Sequence[str]) -> IPSet:
    """``create NAME TYPE OPTIONS…`` -> an :class:`IPSet` without members."""
    validate_set_name(name)
    if set_type not in SET_TYPES:
        raise InvalidInput(f"unknown set type {set_type!r}", "one of " + ", ".join(SET_TYPES))
    values: dict[str, object] = {"family": _default_family(set_type)}
    i = 0
    while i < len(options):
        option = options[i]
        if option in _FLAG_OPTIONS:
            values[option] = True
            i += 1
            continue
        if i + 1 >= len(options):
            raise InvalidInput(f"create option {option!r} needs a value")
        value = options[i + 1]
        if option == "family":
            if value not in FAMILIES:
                raise InvalidInput(f"invalid family {value!r}: inet or inet6")
            if set_type.startswith("bitmap:") and value != "inet":
                raise InvalidInput(f"{set_type} supports family inet only, not {value!r}")
            if values["family"] is not None:
                values["family"] = value
        elif option == "range":
            values["range"] = _parse_range(set_type, value)
        elif option == "bitmask":
            values["bitmask"] = str(ipaddress.ip_address(value)) if _is_ip(value) else _bad(option, value)
        elif option in _INT_OPTIONS:
            maximum = 0xFF if option in ("bucketsize", "netmask") else 0xFFFFFFFF
            values[option] = parse_uint(value, option, maximum)
        else:
            raise InvalidInput(f"unknown create option {option!r} for {set_type}")
        i += 2
    if set_type.startswith("bitmap:") and "range" not in values:
        raise InvalidInput(f"{set_type} set {name!r} needs a range (--range A-B)")
    if set_type.startswith("bitmap:"):
        values["family"] = "inet" if set_type != "bitmap:port" else None
    return IPSet(name=name, type=set_type, **values)  # type: ignore[arg-type]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _bad(option: str, value: str) -> str:
    raise InvalidInput(f"invalid {option} {value!r}")


def _parse_range(set_type: str, text: str) -> str:
    if set_type == "bitmap:port":
        low_text, dash, high_text = text.partition("-")
        low, high = ascii_number(low_text, 5), ascii_number(high_text, 5)
        if not dash or low is None or high is None or low > high or high > 65535:
            raise InvalidInput(f"invalid port range {text!r}: expected LOW-HIGH within 0-65535")
        return f"{low}-{high}"
    if set_type.startswith("bitmap:"):
        if "/" in text:
            network = ipaddress.ip_network(text, strict=False) if _net_ok(text) else None
            if network is None or network.version != 4:
                raise InvalidInput(f"invalid range {text!r}: expected A-B or NET/CIDR (IPv4)")
            return f"{network.network_address}-{network.broadcast_address}"
        start, _, end = _parse_ip(text, "inet", "ip")
        return f"{start}-{end or start}"
    raise InvalidInput(f"range is only valid for bitmap types, not {set_type}")


def _net_ok(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


# The header options after the family, in ipset's order: (field, text of a value); a flag's text is None.
_HEADER: tuple[tuple[str, str | None], ...] = (
    ("range", "range {}"), ("markmask", "markmask 0x{:08x}"), ("hashsize", "hashsize {}"),
    ("maxelem", "maxelem {}"), ("netmask", "netmask {}"), ("bitmask", "bitmask {}"), ("size", "size {}"),
    ("timeout", "timeout {}"), ("counters", None), ("comment", None), ("skbinfo", None),
    ("bucketsize", "bucketsize {}"), ("initval", "initval 0x{:08x}"),
)


def format_header(ipset: IPSet) -> str:
    """Header options in ipset's order, as after ``create NAME TYPE``."""
    out: list[str] = []
    if ipset.family is not None and not ipset.type.startswith("bitmap:") and ipset.type != "list:set":
        out.append(f"family {ipset.family}")
    for name, text in _HEADER:
        value = getattr(ipset, name)
        if text is None:
            if value:
                out.append(name)
        elif value is not None:
            out.append(text.format(value))
    return " ".join(out)


def format_create(ipset: IPSet) -> str:
    header = format_header(ipset)
    return f"create {ipset.name} {ipset.type}" + (f" {header}" if header else "")


def format_save(sets: Iterable[IPSet]) -> str:
    """The text `ipset save` prints for ``sets`` (members in the order given)."""
    lines: list[str] = []
    for ipset in sets:
        lines.append(format_create(ipset))
        lines.extend(f"add {ipset.name} {format_entry(member)}" for member in ipset.members)
    return "".join(line + "\n" for line in lines)


def parse_restore(text: str) -> list[RestoreCommand]:
    """Parse a restore file completely (raises InvalidInput naming the line) before anything runs.

    Entries of ``add``/``del`` lines are checked against the header of a set created earlier in
    the file; for sets that exist only in the kernel, ``entry`` is None and ``raw`` kept in
    ``name2`` until :func:`resolve_entries` sees the kernel's headers.
    """
    commands: list[RestoreCommand] = []
    headers: dict[str, IPSet] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        try:
            command = _parse_line(line, lineno, headers)
        except InvalidInput as exc:
            raise InvalidInput(f"line {lineno}: {exc.message}", exc.hint) from None
        if command is not None:
            commands.append(command)
    return commands


_EXIST_FLAGS = ("-exist", "-!", "--exist")


def _parse_line(line: str, lineno: int, headers: dict[str, IPSet]) -> RestoreCommand | None:
    """One line: ``add SET ELEMENT`` of a set created above (what `ipset save` writes, line after
    line) as :func:`_parse_command` reads it, without its steps for options, flags and the other
    commands; any other line by it."""
    words = line.split()
    if len(words) == 3:
        command, header = _ADD_DEL.get(words[0]), headers.get(words[1])
        if command is not None and header is not None and words[2] not in _EXIST_FLAGS and '"' not in line:
            # (the command's and the set's name: one string each for all their lines, not one per line)
            return RestoreCommand(command, lineno, header.name, entry=parse_member(header, words[2:]))
    return _parse_command(line, lineno, headers)


_ADD_DEL = {"add": "add", "del": "del"}


def _parse_command(line: str, lineno: int, headers: dict[str, IPSet]) -> RestoreCommand | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    tokens = tokenize(stripped)
    exist = False
    while tokens and tokens[-1] in _EXIST_FLAGS:
        exist = True
        tokens.pop()
    if tokens and tokens[0] in _EXIST_FLAGS:
        exist = True
        tokens.pop(0)
    if not tokens:
        return None
    command = COMMAND_ALIASES.get(tokens[0])
    if command is None:
        raise InvalidInput(f"unknown command {tokens[0]!r}")
    args = tokens[1:]
    if command == "create":
        if len(args) < 2:
            raise InvalidInput("create needs NAME TYPE")
        ipset = parse_create(args[0], args[1], args[2:])
        headers[ipset.name] = ipset
        return RestoreCommand("create", lineno, ipset.name, ipset=ipset, exist=exist)
    if command in ("add", "del"):
        if len(args) < 2:
            raise InvalidInput(f"{command} needs NAME ENTRY")
        validate_set_name(args[0])
        if args[0] in headers:
            entry = parse_member(headers[args[0]], args[1:])
            return RestoreCommand(command, lineno, args[0], entry=entry, exist=exist)
        return RestoreCommand(command, lineno, args[0], name2=" ".join(args[1:]), exist=exist)
    if command in ("flush", "destroy"):
        if len(args) > 1:
            raise InvalidInput(f"{command} takes at most one set name")
        if args:
            validate_set_name(args[0])
            if command == "destroy":
                headers.pop(args[0], None)
        return RestoreCommand(command, lineno, args[0] if args else "", exist=exist)
    if len(args) != 2:
        raise InvalidInput(f"{command} needs two set names")
    validate_set_name(args[0])
    validate_set_name(args[1])
    if command == "rename" and args[0] in headers:
        headers[args[1]] = replace(headers.pop(args[0]), name=args[1])
    elif command == "swap" and args[0] in headers and args[1] in headers:
        first, second = headers[args[0]], headers[args[1]]
        headers[args[0]], headers[args[1]] = replace(second, name=args[0]), replace(first, name=args[1])
    return RestoreCommand(command, lineno, args[0], name2=args[1], exist=exist)


def parse_save(text: str) -> list[IPSet]:
    """Sets with their members from `ipset save` text (create/add lines; others are refused)."""
    sets: dict[str, IPSet] = {}
    members: dict[str, list[IPSetEntry]] = {}
    for command in parse_restore(text):
        if command.command == "create" and command.ipset is not None:
            if command.name in sets:
                raise InvalidInput(f"line {command.lineno}: set {command.name!r} created twice")
            sets[command.name] = command.ipset
            members[command.name] = []
        elif command.command == "add" and command.entry is not None:
            members[command.name].append(command.entry)
        elif command.command == "add":
            raise InvalidInput(f"line {command.lineno}: add to set {command.name!r} before its create line")
        else:
            raise InvalidInput(f"line {command.lineno}: {command.command} is not part of `ipset save` output")
    return [ipset.with_members(tuple(members[name])) for name, ipset in sets.items()]
