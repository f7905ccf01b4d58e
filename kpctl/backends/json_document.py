"""Decoding big JSON documents (snapshots, `nft -j list ruleset`) without the cyclic GC's toll.

A 10,000-service nftables snapshot decodes into ~1.5 million dicts and lists.  Each of those
allocations counts towards the garbage collector's thresholds, so the decode triggers
collection after collection that walk the growing document and find nothing: JSON cannot
hold a reference cycle.  Measured on a 34 MB snapshot: json.load 3.5 s CPU with the collector
on, 0.7 s with it paused.  After decoding, ``gc.freeze()`` moves the document to the permanent
generation, so the collections that the command's own work triggers do not walk it again
(`kpctl nft list -o tree` on that snapshot: 8.7 s → 3.7 s CPU).

A snapshot's biggest section (a node's IPVS table or nftables ruleset: 6 and 34 MB at 10,000
services) is the one many commands never read (`ipset list`, `vip list` on an nftables node):
:func:`decode_object` leaves an object's last member undecoded until it is read, when the text
is laid out as ``json.dumps(indent=2)`` (and `kpctl snapshot save`) write it and that member is
a container of several lines.  The layout tells where the member is without decoding it: a
member of the top object is a line indented by exactly two spaces; the last one's lines, but
its first and its closing one, are indented deeper, and only the document's ``}`` follows.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any, Callable

_DECODER = json.JSONDecoder()
_TOP_LINE = re.compile(r"\n  [^ ]")  # a line of the top object (a member, or a member's closing) at indent=2


def decode(source: str | IO[str]) -> Any:
    """``json.loads``/``json.load`` with the collector paused, the result frozen (see above)."""
    return _paused(lambda: json.loads(source) if isinstance(source, str) else json.load(source))


def _paused(read: Callable[[], Any]) -> Any:
    enabled = gc.isenabled()
    gc.disable()
    try:
        document = read()
    finally:
        if enabled:
            gc.enable()
    gc.freeze()
    return document


def decode_object(text: str, bad: Callable[[ValueError], Exception]) -> Any:
    """:func:`decode` of ``text``; a JSON object's last member is decoded when first read when the
    layout allows (see above): a :class:`LastDeferred` mapping.  ``bad`` makes the error raised when
    that member, read later, is not valid JSON (errors found now are json.JSONDecodeError)."""
    found = _last_member(text)
    if found is None:
        return decode(text)
    key, start = found
    head = decode(text[:start] + "null}")  # the members before it, and the last as null
    if not isinstance(head, dict) or key not in head:
        return decode(text)
    return LastDeferred(head, key, text, start, bad)


def _last_member(text: str) -> tuple[str, int] | None:
    """(key, index of its value) of the top object's last member, when its value is a container
    written over several lines at indent=2 and nothing but the object's ``}`` follows it; else None."""
    end = len(text)
    while end and text[end - 1] in " \t\r\n":  # (rstrip would copy the text)
        end -= 1
    close = end - 6  # "\n  }\n}": the member's closing line, then the document's
    if close < 0 or text[close:end - 1] not in ("\n  }\n", "\n  ]\n") or text[end - 1] != "}":
        return None
    line = text.rfind('\n  "', 0, close)  # the last member's first line
    colon = text.find('": ', line)
    if line < 0 or colon < 0:
        return None
    start = colon + 3
    opening = "{" if text[close + 3] == "}" else "["
    if text[start:start + 2] != opening + "\n" or _TOP_LINE.search(text, start, close) is not None:
        return None
    try:
        key = json.loads(text[line + 3:colon + 1])
    except ValueError:
        return None
    return (key, start) if isinstance(key, str) else None


class LastDeferred(Mapping[str, Any]):
    """A JSON object's members, its last one decoded (and the text let go) when first read."""

    def __init__(self, head: dict[str, Any], last: str, text: str, start: int,
                 bad: Callable[[ValueError], Exception]) -> None:
        self._members, self._last = head, last
        self._text: str | None = text
        self._start, self._bad = start, bad

    def __getitem__(self, key: str) -> Any:
        if key == self._last and self._text is not None:
            self._members[key] = _paused(self._decode_last)
            self._text = None
        return self._members[key]

    def _decode_last(self) -> Any:
        text = self._text
        assert text is not None
        try:
            value, end = _DECODER.raw_decode(text, self._start)
        except ValueError as exc:
            raise self._bad(exc) from None
        if text[end:].strip() != "}":  # more after it than the object's end: its layout misled
            raise self._bad(ValueError(f"unexpected text after member {self._last!r}"))
        return value

    def is_null(self, key: str) -> bool:
        """Whether member ``key`` is there and null, without decoding the last member."""
        if key == self._last and self._text is not None:
            return False  # a container (see _last_member)
        return key in self._members and self._members[key] is None

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members
