"""``-o yaml``: block-style YAML of plain data (dicts, lists, strings, numbers, booleans, None).

PyYAML's own dumper builds a node and several events per value and analyses every scalar in
Python: 32 s and 1.1 GB for a 10,000-service IPVS table.  This writer makes the same choices
as ``yaml.safe_dump(value, sort_keys=False, default_flow_style=False)`` (two-space indent,
sequences inside mappings not indented, ``[]``/``{}`` for empty ones) and the same scalar
styles: plain where PyYAML writes plain (its public ``Resolver`` says whether a plain text would
read back as a string), else single-quoted, else double-quoted with PyYAML's escapes.  Its text
is byte for byte PyYAML's (unit-tested against ``yaml.safe_dump``), long plain and single-quoted
scalars folded at the same spaces, except for texts with line breaks or characters that need
escapes and do not fit their line: PyYAML folds those over several lines, here they are one
double-quoted line, which reads back equal.  Each distinct text's style is worked out once.
A mapping whose values are scalars, empty containers and mappings of those (an IPVS real server
and its counters) is written from a %-template of its shape, made the second time its keys are
met at its place (see text.second_meeting).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional

from kpctl.model.document import OneLineItems
from kpctl.output.text import PLANNED, SliceWriter, plan_values, second_meeting

WIDTH = 80  # PyYAML's best_width: past it, it folds scalars at spaces
_STR_TAG = "tag:yaml.org,2002:str"
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_ESCAPES = {"\0": "0", "\x07": "a", "\x08": "b", "\x09": "t", "\x0a": "n", "\x0b": "v", "\x0c": "f", "\x0d": "r",
            "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\xa0": "_", "\u2028": "L", "\u2029": "P"}
_STYLES: dict[str, tuple[str, bool]] = {}  # text -> (as written, whether PyYAML could fold it)
_RESOLVER: list[Any] = []


def _resolves_to_str(text: str) -> bool:
    if not _RESOLVER:
        import yaml

        _RESOLVER.append((yaml.resolver.Resolver(), yaml.nodes.ScalarNode))
    resolver, node = _RESOLVER[0]
    return bool(resolver.resolve(node, text, (True, False)) == _STR_TAG)


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _plain_allowed(text: str) -> bool:
    """PyYAML's analysis of a one-line printable ASCII text in block context: may it be plain?"""
    if not text or text[0] == " " or text[-1] == " " or text.startswith(("---", "...")):
        return False
    first = text[0]
    if first in _FIRST_INDICATORS or (first in "?:-" and (len(text) == 1 or text[1] == " ")):
        return False
    if ": " in text or text.endswith(":") or " #" in text:
        return False
    return _resolves_to_str(text)


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return "\\" + _ESCAPES[ch]
    if ch <= "\xff":
        return f"\\x{ord(ch):02X}"
    return f"\\u{ord(ch):04X}" if ch <= "\uffff" else f"\\U{ord(ch):08X}"


def _double_quoted(text: str, column: int = -1, indent: int = 0) -> str:
    """``text`` double-quoted with PyYAML's escapes; from ``column`` >= 0, folded as PyYAML folds
    it: past column WIDTH, at a space or after an escape, an escaped line break and ``indent``."""
    out = ['"']
    col = column + 1
    start = end = 0
    size = len(text)
    while end <= size:
        ch = text[end] if end < size else None
        if ch is None or ch in _ESCAPES or not " " <= ch <= "~":
            if start < end:
                out.append(text[start:end])
                col += end - start
                start = end
            if ch is not None:
                escaped = _escape(ch)
                out.append(escaped)
                col += len(escaped)
                start = end + 1
        if column >= 0 and 0 < end < size - 1 and (ch == " " or start >= end) and col + (end - start) > WIDTH:
            out.append(text[start:end] + "\\\n" + " " * indent)
            col = indent
            if start < end:
                start = end
            if text[start] == " ":
                out.append("\\")
                col += 1
        end += 1
    out.append('"')
    return "".join(out)


def _string(text: str) -> tuple[str, bool]:
    style = _STYLES.get(text)
    if style is None:
        if _printable_ascii(text):
            written = text if _plain_allowed(text) else "'" + text.replace("'", "''") + "'"
            style = (written, " " in text)
        else:
            style = (_double_quoted(text), True)
        _STYLES[text] = style
    return style


def scalar(value: Any, column: int = -1, indent: int = 0) -> str:
    """One scalar as written from ``column`` (-1: a key, never folded), its folded lines (if
    PyYAML would fold it) indented by ``indent``."""
    if isinstance(value, str):
        written, foldable = _STYLES.get(value) or _string(value)  # a text met before: no call
        if foldable and column >= 0 and column + len(written) > WIDTH:
            if written[0] == '"':
                return _double_quoted(value, column, indent)
            return _fold(value, column, indent, written[0] == "'")
        return written
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return _float(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


_SINGLE_SPACE = re.compile(r"(?<! ) (?! )")  # a space that is a run of its own


def _fold(text: str, column: int, indent: int, quoted: bool) -> str:
    """A plain or single-quoted one-line text as PyYAML's writer folds it: a single space past
    column WIDTH becomes a line break and ``indent`` spaces (never the text's first or last
    character).  Each character takes a column (a quote written doubled, two), so a break is the
    first single space at or past the column where the line passes WIDTH: found by one search
    per line written, not a step per word."""
    if quoted:
        return "'" + _fold(text.replace("'", "''"), column + 1, indent, False) + "'"
    lines = []
    start, col, last = 0, column, len(text) - 1
    while True:
        found = _SINGLE_SPACE.search(text, max(start + WIDTH - col + 1, start, 1))
        if found is None or found.start() == last:
            break
        lines.append(text[start:found.start()])
        start, col = found.end(), indent
    lines.append(text[start:])
    return ("\n" + " " * indent).join(lines)


def _float(value: float) -> str:
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


_CONTAINERS = (dict, list, tuple)
_BLOCKS = (*_CONTAINERS, OneLineItems)  # what is written as a block when not empty


def write_yaml(value: Any, write: Callable[[str], Any]) -> None:
    """Write ``value`` as a YAML document (ending with a newline).  A OneLineItems is written as
    the sequence of its items' documents, each made as it is written (none held)."""
    if type(value) is OneLineItems:
        value = value if value.items else []
    if not isinstance(value, _BLOCKS):
        text = scalar(value, 0, 2)
        write(text + ("\n...\n" if text[0] not in "'\"" else "\n"))
        return
    if not value:
        write("{}\n" if isinstance(value, dict) else "[]\n")
        return
    lines = SliceWriter(write, "\n", "\n")
    _block(value, 0, "", lines.add, {})
    lines.flush()


def _block(value: Any, indent: int, lead: str, add: Callable[[str], None], shapes: dict[Any, Any]) -> None:
    """A non-empty mapping or sequence whose items start at ``indent``; its first line begins
    with ``lead`` (the ``- `` of the sequence item it is, or nothing) instead of spaces.
    ``shapes``: the plain mappings' shapes met so far (see _by_plan)."""
    if type(value) is dict and len(value) >= PLANNED:
        text = _by_plan(value, indent, lead, shapes)
        if text is not None:
            add(text)
            return
    pad = " " * indent
    first = lead or pad
    if isinstance(value, dict):
        for key, child in value.items():
            head = _HEADS.get((first, key)) or _head(first, key)
            first = pad
            if type(child) is OneLineItems and not child.items:
                child = []
            if type(child) is int:  # the most common value (counters, ports): one spelling, no style
                add(f"{head} {child}")
            elif isinstance(child, _BLOCKS) and child:
                add(head)
                # a sequence in a mapping is not indented; a mapping is, by two
                _block(child, indent if not isinstance(child, dict) else indent + 2, "", add, shapes)
            elif isinstance(child, _CONTAINERS):
                add(head + (" {}" if isinstance(child, dict) else " []"))
            else:
                add(head + " " + scalar(child, len(head) + 1, indent + 2))
        return
    for child in value:
        head = first + "- "
        first = pad
        if type(child) is OneLineItems and not child.items:
            child = []
        if isinstance(child, _BLOCKS) and child:
            _block(child, indent + 2, head, add, shapes)
        elif isinstance(child, _CONTAINERS):
            add(head + ("{}" if isinstance(child, dict) else "[]"))
        else:
            add(head + scalar(child, len(head), len(head)))


_HEADS: dict[tuple[str, Any], str] = {}  # (what a key's line begins with, the key) -> "… key:"


def _head(first: str, key: Any) -> str:
    """The start of a mapping's line up to its key's colon; the same few keys, at the same few
    indents, begin most lines of a document."""
    head = first + scalar(key) + ":"
    if type(key) is str:  # (1 and True are one key to a dict, two to YAML)
        _HEADS[first, key] = head
    return head


# A mapping's plan: (place, keys) of its mappings from the last, the text between its values (with
# %% for %), per value the column and fold indent it is written at and, for a sequence, the indent
# of its block (else None), and its templates by the types of the values (see _by_plan).
Slot = tuple[int, int, Optional[int]]
Plan = tuple[tuple[tuple[int, tuple[str, ...]], ...], tuple[str, ...], tuple[Slot, ...], dict[tuple[type, ...], Any]]


def _by_plan(value: dict[Any, Any], indent: int, lead: str, shapes: dict[Any, Any]) -> str | None:
    """The lines of the plain mapping ``value`` (as _items writes them) from the plan of its keys
    at ``indent`` after ``lead``, when its values fit it: mappings with the plan's keys where the
    plan has them, sequences where it has a sequence's block, scalars and empty containers
    everywhere else; else None.

    The template for the values' types has %d where a value is an int (written by the % operator
    itself, the most common value: ports, counters) and %s where it is written by scalar() or,
    for a sequence (an IPVS service's servers), by _block()."""
    shape = (indent, lead, tuple(value))
    plan = shapes.get(shape)
    if not plan:
        if plan is None:
            plan = second_meeting(shapes, shape, lambda: _plan(value, indent, lead))
        if not plan:
            return None
    dicts, pieces, slots, templates = plan
    row = plan_values(value, dicts)
    if row is None:
        return None
    types = tuple(map(type, row))
    typed = templates.get(types)
    if typed is None:
        typed = templates[types] = _typed(pieces, slots, types)
    template, others = typed
    for index, column, fold, block in others:
        item = row[index]
        if block is None:
            text = scalar(item, column, fold) if type(item) is str else _slot(item, column, fold)
        elif item and (type(item) is list or type(item) is tuple):
            lines: list[str] = []
            _block(item, block, "", lines.append, shapes)
            text = "\n" + "\n".join(lines)
        else:
            text = _slot(item, column, fold)
            text = None if text is None else " " + text
        if text is None:
            return None
        row[index] = text
    return template % tuple(row)  # type: ignore[no-any-return]


def _typed(pieces: tuple[str, ...], slots: tuple[Slot, ...],
           types: tuple[type, ...]) -> tuple[str, tuple[tuple[int, int, int, Optional[int]], ...]]:
    """A plan's template for values of ``types`` and the slot (column, fold indent, block indent)
    of each value that is not an int written in place, with its index first."""
    ints = [kind is int and slot[2] is None for kind, slot in zip(types, slots)]
    template = pieces[0] + "".join(("%d" if is_int else "%s") + piece for is_int, piece in zip(ints, pieces[1:]))
    return template, tuple((index, *slots[index]) for index, is_int in enumerate(ints) if not is_int)


def _slot(value: Any, column: int, indent: int) -> str | None:
    """``value`` written from ``column`` (as scalar()), or None for a non-empty container."""
    if isinstance(value, _CONTAINERS) or type(value) is OneLineItems:
        return None if value else "{}" if isinstance(value, dict) else "[]"
    return scalar(value, column, indent)


def _plan(value: dict[Any, Any], indent: int, lead: str) -> Plan | bool:
    """The plan of ``value``'s shape (see Plan); False when a value is a container other than a
    list or a plain mapping of scalars and empty containers (such a shape would not fit the next
    time either), or a key not a string (1 and True are one key to a dict, not to YAML)."""
    dicts: list[tuple[int, tuple[str, ...]]] = []
    slots: list[Slot] = []
    pieces = [""]
    pad, inner_pad = " " * indent, " " * (indent + 2)
    first = lead or pad
    for place, (key, child) in enumerate(value.items()):
        if type(key) is not str:
            return False
        head = first + scalar(key) + ":"
        first = pad
        if type(child) is dict and child:
            if not all(type(inner) is str and not (item and isinstance(item, _CONTAINERS))
                       for inner, item in child.items()):
                return False
            dicts.insert(0, (place, tuple(child)))
            pieces[-1] += head.replace("%", "%%") + "\n"
            for inner in child:
                inner_head = inner_pad + scalar(inner) + ":"
                pieces[-1] += inner_head.replace("%", "%%") + " "
                pieces.append("\n")
                slots.append((len(inner_head) + 1, indent + 4, None))
        elif type(child) is list and child:  # a block of its own, the sequence not indented
            pieces[-1] += head.replace("%", "%%")
            pieces.append("\n")
            slots.append((len(head) + 1, indent + 2, indent))
        elif (isinstance(child, _CONTAINERS) and child) or type(child) is OneLineItems:
            return False
        else:
            pieces[-1] += head.replace("%", "%%") + " "
            pieces.append("\n")
            slots.append((len(head) + 1, indent + 2, None))
    pieces[-1] = pieces[-1][:-1]  # no line break after the last value
    return tuple(dicts), tuple(pieces), tuple(slots), {}
