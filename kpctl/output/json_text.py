"""Indented JSON text equal to ``json.dumps(value, indent=2)``, written in slices.

The standard library encodes with its C accelerator only without ``indent``; with it, every
value goes through the pure-Python encoder (about 1.2 s for the 60,000 objects of a
10,000-service IPVS table).  Here each run of items that are scalars or empty containers
(a whole container, when it holds nothing else) is encoded by the C encoder with separators
that carry the newline and indentation of its depth; only containers that hold containers
are walked in Python.  The text is the same, byte for byte (``ensure_ascii`` as asked, keys in
their order, non-string keys converted as ``json`` converts them): unit-tested against ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from kpctl.model.document import SharedDict
from kpctl.output.text import SliceWriter, repeated_text

INDENT = "  "
_CONTAINERS = (dict, list, tuple)


class OneLine:
    """A value written on one line, as ``json.dumps(value)`` writes it (``", "`` and ``": "``), where
    the document has it: a long list of deep items (the objects of an ``nft -j`` ruleset) reads as
    one item per line, and is written by the C encoder in one call per item."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_NESTED = (*_CONTAINERS, OneLine)  # what a container's run of flat items stops at
_ONE_LINE = {ascii_only: json.JSONEncoder(ensure_ascii=ascii_only).encode for ascii_only in (True, False)}
Level = tuple[Callable[[Any], str], str, str, str, str, str]
# Per ensure_ascii, per depth: (C encoder, item separator, "{" + newline, "[" + newline,
# newline + "}", newline + "]")
_LEVELS: dict[bool, list[Level]] = {True: [], False: []}
# A string key's JSON text, per ensure_ascii: the same few keys repeat by the million.
_KEYS: dict[bool, dict[str, str]] = {True: {}, False: {}}


def _level(depth: int, ascii_only: bool) -> Level:
    levels = _LEVELS[ascii_only]
    while len(levels) <= depth:
        inner = "\n" + INDENT * (len(levels) + 1)
        outer = "\n" + INDENT * len(levels)
        encode = json.JSONEncoder(separators=("," + inner, ": "), ensure_ascii=ascii_only).encode
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
    _value(value, 0, sink.add, ensure_ascii, {})  # see _value for the dict
    sink.flush()


def _value(value: Any, depth: int, add: Callable[[str], None], ascii_only: bool,
           shared: dict[tuple[int, int], str | None]) -> None:
    """Write ``value`` at ``depth``.  ``shared``: the SharedDicts met so far, by id() and depth (the
    document holds them, so an id is its own until the write ends): see text.repeated_text."""
    if type(value) is OneLine:
        add(_ONE_LINE[ascii_only](value.value))
        return
    if type(value) is SharedDict:
        text = repeated_text(shared, (id(value), depth), lambda put: _container(value, depth, put, ascii_only, shared))
        if text is not None:
            add(text)
            return
    _container(value, depth, add, ascii_only, shared)


def _container(value: Any, depth: int, add: Callable[[str], None], ascii_only: bool,
               shared: dict[tuple[int, int], str | None]) -> None:
    encode, separator, open_dict, open_list, close_dict, close_list = _level(depth, ascii_only)
    if not value or not isinstance(value, _CONTAINERS):
        add(encode(value))
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
        _value(child, depth + 1, add, ascii_only, shared)
        start = index + 1
        if start < len(items):
            add(separator)
    if start < len(items):
        run = dict(items[start:]) if is_dict else list(items[start:])
        add(encode(run)[1:-1])
    add(closing)
