"""Indented JSON text equal to ``json.dumps(value, indent=2)``, written in slices.

The standard library encodes with its C accelerator only without ``indent``; with it, every
value goes through the pure-Python encoder (about 1.2 s for the 60,000 objects of a
10,000-service IPVS table).  Here each run of items that are scalars or empty containers
(a whole container, when it holds nothing else) is encoded by the C encoder with separators
that carry the newline and indentation of its depth; only containers that hold containers
are walked in Python.  A dict whose containers are dicts of such items (an IPVS real server and
its counters) is written from a %-template of its shape once its keys have been met at its depth
before, filled with its values' texts from one C call.  The text is the same, byte for byte
(``ensure_ascii`` as asked, keys in their order, non-string keys converted as ``json`` converts
them): unit-tested against ``json.dumps``.  The C encoders skip the circular-reference check: what
is written is a tree of decoded JSON or of the model's documents, and the check's bookkeeping of
every container cost a fifth of the encoding (34 MB of an nft ruleset: 0.47 s -> 0.38 s).
"""

from __future__ import annotations

import json
from functools import partial
from itertools import chain, islice
from typing import Any, Callable, Sequence

from kpctl.model.document import OneLineItems
from kpctl.output.text import PLANNED, SliceWriter, plan_values, second_meeting

INDENT = "  "
_CONTAINERS = (dict, list, tuple)


_BATCH = 256  # OneLineItems' items joined per piece written

_NESTED = (*_CONTAINERS, OneLineItems)  # what a container's run of flat items stops at
_SCALARS = frozenset({str, int, float, bool, type(None)})
_DICT = frozenset({dict})
_ONE_LINE = {ascii_only: json.JSONEncoder(ensure_ascii=ascii_only, check_circular=False).encode
             for ascii_only in (True, False)}
Level = tuple[Callable[[Any], str], str, str, str, str, str]
# Per ensure_ascii, per depth: (C encoder, item separator, "{" + newline, "[" + newline,
# newline + "}", newline + "]")
_LEVELS: dict[bool, list[Level]] = {True: [], False: []}
# Values' texts in one C call, one per line: no JSON text of a scalar or of an empty container
# holds a newline (strings escape theirs).
_LINES = {ascii_only: json.JSONEncoder(separators=("\n", ":"), ensure_ascii=ascii_only, check_circular=False).encode
          for ascii_only in (True, False)}
# A write's dict shapes: (depth, keys) -> None (met once) or a Plan, or False (no plan: see _plan).
# A plan: (place, keys) of the dict's dicts from the last, its %-template, the template's %s count,
# and which of those held a container in the dict it was made from (where one may stand).
Plan = tuple[tuple[tuple[int, tuple[str, ...]], ...], str, int, tuple[int, ...]]
Shapes = dict[tuple[int, tuple[Any, ...]], Any]
# A string key's JSON text, per ensure_ascii: the same few keys repeat by the million.
_KEYS: dict[bool, dict[str, str]] = {True: {}, False: {}}


def _level(depth: int, ascii_only: bool) -> Level:
    levels = _LEVELS[ascii_only]
    while len(levels) <= depth:
        inner = "\n" + INDENT * (len(levels) + 1)
        outer = "\n" + INDENT * len(levels)
        encode = json.JSONEncoder(separators=("," + inner, ": "), ensure_ascii=ascii_only,
                                  check_circular=False).encode
        levels.append((encode, "," + inner, "{" + inner, "[" + inner, outer + "}", outer + "]"))
    return levels[depth]


def _key(key: Any, ascii_only: bool) -> str:
    """A dict key as ``json`` writes it: non-string keys (numbers, booleans, None) as their JSON text."""
    if isinstance(key, str):
        known = _KEYS[ascii_only]
        text = known.get(key)
        if text is None:
            text = known[key] = json.dumps(key, ensure_ascii=ascii_only) + ": "
        return text
    if key is None or isinstance(key, (int, float)):
        return json.dumps(json.dumps(key)) + ": "
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def write_json(value: Any, write: Callable[[str], Any], ensure_ascii: bool = True) -> None:
    """Write ``value`` as JSON indented by two spaces per level (no final newline);
    ``ensure_ascii`` as ``json.dumps`` takes it."""
    sink = SliceWriter(write)
    _value(value, 0, sink.add, ensure_ascii, {})  # see _value for the dicts
    sink.flush()


def _value(value: Any, depth: int, add: Callable[[str], None], ascii_only: bool, shapes: Shapes) -> None:
    """Write ``value`` at ``depth``.  ``shapes``: the plain dicts' shapes met so far (see _by_plans)."""
    if type(value) is OneLineItems:
        _one_line_items(value, depth, add, ascii_only)
        return
    _container(value, depth, add, ascii_only, shapes)


def _one_line_items(value: OneLineItems, depth: int, add: Callable[[str], None], ascii_only: bool) -> None:
    items = value.items
    if not items:
        add("[]")
        return
    _encode, separator, _open_dict, open_list, _close_dict, close_list = _level(depth, ascii_only)
    one_line = _ONE_LINE[ascii_only]
    joined: Callable[[list[Any]], str]  # a batch's text
    if value.fields:  # tuples: their values' texts into a template of their fields
        pending = iter(items)
        joined = partial(_records, fields=value.fields, template=_record_template(value.fields, ascii_only),
                         separator=separator, ascii_only=ascii_only)
    else:  # each item's line
        pending = iter(map(one_line, value) if value.texts is None else value.texts(one_line, ascii_only))
        joined = separator.join
    add(open_list)
    first = True
    for batch in iter(lambda: list(islice(pending, _BATCH)), []):
        if not first:
            add(separator)
        add(joined(batch))
        first = False
    add(close_list)


def _record_template(fields: tuple[str, ...], ascii_only: bool) -> str:
    """The %-template of a record's line: its fields' keys, a %s for each value."""
    return "{" + ", ".join(_key(field, ascii_only).replace("%", "%%") + "%s" for field in fields) + "}"


def _records(batch: list[Any], fields: tuple[str, ...], template: str, separator: str, ascii_only: bool) -> str:
    """The one-line texts of ``batch``'s records (tuples of ``fields``' values, one per field)
    joined by ``separator``: when every value is a scalar, their texts from one C call, one per
    line, fill ``template`` repeated; else each record's dict is encoded."""
    values = list(chain.from_iterable(batch))
    if not _SCALARS.issuperset(map(type, values)):
        return separator.join([_ONE_LINE[ascii_only](dict(zip(fields, record))) for record in batch])
    texts = _LINES[ascii_only](values)[1:-1].split("\n")
    return separator.join([template] * len(batch)) % tuple(texts)


def _container(value: Any, depth: int, add: Callable[[str], None], ascii_only: bool,
               shapes: Shapes) -> None:
    encode, separator, open_dict, open_list, close_dict, close_list = _level(depth, ascii_only)
    if not value or not isinstance(value, _CONTAINERS):
        add(encode(value))
        return
    if type(value) is dict and len(value) >= PLANNED:
        texts = _by_plans((value,), depth, ascii_only, shapes, True)
        if texts is not None:
            add(texts[0])
            return
    elif not isinstance(value, dict) and type(value[0]) is dict and len(value[0]) >= PLANNED:
        _list_by_plans(value, depth, add, ascii_only, shapes)
        return
    is_dict = isinstance(value, dict)
    if is_dict:
        items = list(value.items())
        nested = [i for i, (_k, v) in enumerate(items) if v and isinstance(v, _NESTED)]
        opening, closing = open_dict, close_dict
    else:
        items = value
        nested = [i for i, v in enumerate(items) if v and isinstance(v, _NESTED)]
        opening, closing = open_list, close_list
    if not nested:  # the whole container in one call
        add(opening + encode(value)[1:-1] + closing)
        return
    add(opening)
    start = 0
    for index in nested:
        if index > start:  # the run of flat items before it, from the original keys (json converts them)
            run = dict(items[start:index]) if is_dict else list(items[start:index])
            add(encode(run)[1:-1] + separator)
        if is_dict:
            key, child = items[index]
            add(_key(key, ascii_only))
        else:
            child = items[index]
        _value(child, depth + 1, add, ascii_only, shapes)
        start = index + 1
        if start < len(items):
            add(separator)
    if start < len(items):
        run = dict(items[start:]) if is_dict else list(items[start:])
        add(encode(run)[1:-1])
    add(closing)


def _list_by_plans(value: Sequence[Any], depth: int, add: Callable[[str], None], ascii_only: bool,
                   shapes: Shapes) -> None:
    """Write the non-empty list ``value`` (at ``depth``): CHUNK items per C call while they are
    dicts that fit their plans, a chunk with an item that does not item by item (which is the
    text a run of flat items takes too).  Each item is its own piece (a slice stays small)."""
    _, separator, _, open_list, _, close_list = _level(depth, ascii_only)
    for start in range(0, len(value), CHUNK):
        chunk = value[start:start + CHUNK]
        lead = open_list if not start else separator
        flat = _flat_dicts(chunk, depth, ascii_only, separator)
        if flat is not None:
            add(lead + flat)
            continue
        texts = _by_plans(chunk, depth + 1, ascii_only, shapes, False)
        if texts is None:
            for item in chunk:
                add(lead)
                _value(item, depth + 1, add, ascii_only, shapes)
                lead = separator
        else:
            for text in texts:
                add(lead + text)
                lead = separator
    add(close_list)


CHUNK = 64  # list items written from their plans (or as flat dicts) per C call


def _flat_dicts(items: Sequence[Any], depth: int, ascii_only: bool, separator: str) -> str | None:
    """The text of ``items`` (list items at ``depth`` + 1, joined by the list's ``separator``) when
    each is a non-empty plain dict of scalars and empty containers, from one C call; else None.
    The C encoder of depth + 1 writes the dicts' items already indented; what it writes between
    two dicts, ``}`` + its separator + ``{``, occurs nowhere else (the separator holds a newline,
    which no string's text does, and within a dict a key follows it), so the dicts' own braces
    are indented by replacing it."""
    if not (_DICT.issuperset(map(type, items)) and all(items)):
        return None
    if not _SCALARS.issuperset(map(type, chain.from_iterable(map(dict.values, items)))) and any(
            v and isinstance(v, _NESTED) for item in items for v in item.values()):
        return None
    encode, inner, open_dict, _, close_dict, _ = _level(depth + 1, ascii_only)
    text = encode(items)  # "[{" … "}" + inner + "{" … "}]"
    return open_dict + text[2:-2].replace("}" + inner + "{", close_dict + separator + open_dict) + close_dict


def _by_plans(dicts: Sequence[Any], depth: int, ascii_only: bool, shapes: Shapes, meet: bool) -> list[str] | None:
    """The texts of ``dicts`` at ``depth``, each from the plan of its keys there, all scalars in one
    C call; None unless every item is a plain dict that fits its plan: dicts with the plan's keys
    where the plan has them, scalars and empty containers in those and in the rest of its values,
    but where the plan's dict had a container: any value there (a container is written on its own,
    as it would be without the plan: a service's endpoints, a chain's rules).  ``meet``: count this
    meeting of a shape (a plan is made the second time it is met)."""
    values: list[Any] = []
    plans = []
    nested: dict[int, Any] = {}  # place in ``values`` -> a container written on its own
    for value in dicts:
        if type(value) is not dict:
            return None
        shape = (depth, tuple(value))
        plan = shapes.get(shape)
        if not plan:
            if plan is None and meet:
                plan = second_meeting(shapes, shape, lambda: _plan(value, depth, ascii_only))
            if not plan:
                return None
        row = plan_values(value, plan[0])
        if row is None:
            return None
        if not _SCALARS.issuperset(map(type, row)):
            for at in plan[3]:
                item = row[at]
                if item and isinstance(item, _NESTED):
                    nested[len(values) + at] = item
                    row[at] = None
            if not _SCALARS.issuperset(map(type, row)) and any(item and isinstance(item, _NESTED) for item in row):
                return None  # (a container where the plan's dict had none)
        values += row
        plans.append(plan)
    lines = _LINES[ascii_only](values)[1:-1].split("\n")
    for at, item in nested.items():
        parts: list[str] = []
        _value(item, depth + 1, parts.append, ascii_only, shapes)
        lines[at] = "".join(parts)
    texts = []
    start = 0
    for _, template, count, _containers in plans:
        texts.append(template % tuple(lines[start:start + count]))
        start += count
    return texts


def _plan(value: dict[Any, Any], depth: int, ascii_only: bool) -> Plan | bool:
    """The plan of ``value``'s shape: where its dicts of scalars and empty containers are and their
    keys, a %-template of its text at ``depth`` with one %s per other value, and which of those are
    other containers (written on their own: _by_plans); False when a key is not a string (json
    converts those: 1 and True are one key to a dict)."""
    dicts: list[tuple[int, tuple[str, ...]]] = []
    lines, count, containers = [], 0, []
    _, separator, opening, _, closing, _ = _level(depth, ascii_only)
    _, inner_separator, inner_opening, _, inner_closing, _ = _level(depth + 1, ascii_only)
    for place, (key, child) in enumerate(value.items()):
        if type(key) is not str:
            return False
        if type(child) is dict and child and all(type(inner) is str and not (item and isinstance(item, _NESTED))
                                                 for inner, item in child.items()):
            dicts.insert(0, (place, tuple(child)))
            text = inner_opening + inner_separator.join(
                _key(inner, ascii_only).replace("%", "%%") + "%s" for inner in child) + inner_closing
            count += len(child)
        else:
            if isinstance(child, _NESTED):
                containers.append(count)
            text, count = "%s", count + 1
        lines.append(_key(key, ascii_only).replace("%", "%%") + text)
    return tuple(dicts), opening + separator.join(lines) + closing, count, tuple(containers)
