"""Indented JSON text equal to ``json.dumps(value, indent=2)``, written in slices.

The standard library encodes with its C accelerator only without ``indent``; with it, every
value goes through the pure-Python encoder (about 1.2 s for the 60,000 objects of a
10,000-service IPVS table).  Here each run of items that are scalars or empty containers
(a whole container, when it holds nothing else) is encoded by the C encoder with separators
that carry the newline and indentation of its depth; only containers that hold containers
are walked in Python.  The text is the same, byte for byte (``ensure_ascii`` on, keys in their
order, non-string keys converted as ``json`` converts them): unit-tested against ``json.dumps``.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from kpctl.output.text import SliceWriter

INDENT = "  "
_CONTAINERS = (dict, list, tuple)
# Per depth: (C encoder, item separator, "{" + newline, "[" + newline, newline + "}", newline + "]")
_LEVELS: list[tuple[Callable[[Any], str], str, str, str, str, str]] = []
_KEYS: dict[str, str] = {}  # a string key's JSON text: the same few keys repeat by the million


def _level(depth: int) -> tuple[Callable[[Any], str], str, str, str, str, str]:
    while len(_LEVELS) <= depth:
        inner = "\n" + INDENT * (len(_LEVELS) + 1)
        outer = "\n" + INDENT * len(_LEVELS)
        encode = json.JSONEncoder(separators=("," + inner, ": ")).encode
        _LEVELS.append((encode, "," + inner, "{" + inner, "[" + inner, outer + "}", outer + "]"))
    return _LEVELS[depth]


def _key(key: Any) -> str:
    """A dict key as ``json`` writes it: non-string keys (numbers, booleans, None) as their JSON text."""
    if isinstance(key, str):
        text = _KEYS.get(key)
        if text is None:
            text = _KEYS[key] = json.dumps(key) + ": "
        return text
    if key is None or isinstance(key, (int, float)):
        return json.dumps(json.dumps(key)) + ": "
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def write_json(value: Any, write: Callable[[str], Any]) -> None:
    """Write ``value`` as JSON indented by two spaces per level (no final newline)."""
    sink = SliceWriter(write)
    _value(value, 0, sink.add)
    sink.flush()


def _value(value: Any, depth: int, add: Callable[[str], None]) -> None:
    encode, separator, open_dict, open_list, close_dict, close_list = _level(depth)
    if not value or not isinstance(value, _CONTAINERS):
        add(encode(value))
        return
    is_dict = isinstance(value, dict)
    if is_dict:
        items = list(value.items())
        nested = [i for i, (_k, v) in enumerate(items) if v and isinstance(v, _CONTAINERS)]
        opening, closing = open_dict, close_dict
    else:
        items = value
        nested = [i for i, v in enumerate(items) if v and isinstance(v, _CONTAINERS)]
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
            add(_key(key))
        else:
            child = items[index]
        _value(child, depth + 1, add)
        start = index + 1
        if start < len(items):
            add(separator)
    if start < len(items):
        run = dict(items[start:]) if is_dict else list(items[start:])
        add(encode(run)[1:-1])
    add(closing)
