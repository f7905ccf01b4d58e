"""Decoding big JSON documents (snapshots, `nft -j list ruleset`) without the cyclic GC's toll.

A 10,000-service nftables snapshot decodes into ~1.5 million dicts and lists.  Each of those
allocations counts towards the garbage collector's thresholds, so the decode triggers
collection after collection that walk the growing document and find nothing: JSON cannot
hold a reference cycle.  Measured on a 34 MB snapshot: json.load 3.5 s CPU with the collector
on, 0.7 s with it paused.  After decoding, ``gc.freeze()`` moves the document to the permanent
generation, so the collections that the command's own work triggers do not walk it again
(`kpctl nft list -o tree` on that snapshot: 8.7 s → 3.7 s CPU).

A snapshot's big sections (a node's IPVS table or nftables ruleset: 6 and 34 MB at 10,000
services; its routes, its links) are ones many commands never read (`ipset list`, `vip list` on
an nftables node): :func:`decode_object` leaves each member of a JSON object that is written over
several lines undecoded until it is read, when the text is laid out as ``json.dumps(indent=2)``
(and `kpctl snapshot save`) write it.  The layout tells where each member is without decoding
it: a line of the top object (a member's first line, or the closing line of a member's value)
is indented by exactly two spaces, every line inside a member's value by more.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any, Callable

_DECODER = json.JSONDecoder()
_NOT_BLANK = re.compile(r"[^ \t\n\r]")  # anything but JSON's blanks
_TOP_LINE = re.compile(r"\n  [^ ]")  # a line of the top object (a member, or a member's closing) at indent=2


# A reader of one JSON value: (text, where it starts) -> (the value, where it ends), as
# JSONDecoder.raw_decode; a reader of its own may give a document's parts undecoded (nft_document).
Reader = Callable[[str, int], "tuple[Any, int]"]


def decode(source: str | IO[str], reader: Reader | None = None) -> Any:
    """``json.loads``/``json.load`` (or ``reader`` over the whole text) with the collector paused,
    the result frozen (see above)."""
    if reader is not None and isinstance(source, str):
        return _paused(lambda: _whole(reader, source))
    return _paused(lambda: json.loads(source) if isinstance(source, str) else json.load(source))


def _whole(reader: Reader, text: str) -> Any:
    """``reader``'s value of the whole text, as json.loads reads it: JSON's blanks around it and
    nothing else (found by a pattern: stripping would copy the text, 35 MB from `nft -j`)."""
    value, end = reader(text, _past_blanks(text, 0))
    if _past_blanks(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value


def _past_blanks(text: str, at: int) -> int:
    """Where the JSON blanks from ``at`` end (the text's length when nothing else follows)."""
    found = _NOT_BLANK.search(text, at)
    return found.start() if found is not None else len(text)


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


def decode_object(text: str, bad: Callable[[ValueError], Exception], readers: Mapping[str, Reader] = {}) -> Any:
    """:func:`decode` of ``text``; a JSON object laid out as said above comes as a :class:`Deferred`
    mapping, its members of several lines decoded when first read (member KEY by ``readers[KEY]``
    if given).  ``bad`` makes the error raised when such a member, read later, is not valid JSON
    (errors found now are json.JSONDecodeError)."""
    spans = _spans(text)
    if not spans:
        return decode(text)
    pieces, at = [], 0
    for _key, start, stop in spans:
        pieces += [text[at:start], "null"]
        at = stop
    pieces.append(text[at:])
    try:
        head = decode("".join(pieces))  # the object, its members of several lines as null
    except ValueError:
        return decode(text)  # laid out otherwise after all (a nested line indented as the top's)
    if not isinstance(head, dict) or any(head.get(key, 0) is not None for key, _start, _stop in spans):
        return decode(text)  # (a key given twice, the last time on one line)
    return Deferred(head, {key: (start, stop) for key, start, stop in spans}, text, bad, readers)


def _spans(text: str) -> list[tuple[str, int, int]]:
    """(key, start, end) of each value of the top object that is a container written over several
    lines at indent=2; none when the text is not laid out so."""
    end = len(text)
    while end and text[end - 1] in " \t\r\n":  # (rstrip would copy the text)
        end -= 1
    if not text.startswith("{\n") or text[end - 2:end] != "\n}":
        return []
    lines = [found.start() for found in _TOP_LINE.finditer(text, 0, end)]  # one pass over the text
    spans = []
    for number, line in enumerate(lines):
        if text[line + 3] != '"':
            continue  # the closing line of a member's value
        close = lines[number + 1] if number + 1 < len(lines) else -1
        colon = text.find('": ', line, close if close >= 0 else end)
        start = colon + 3
        if colon < 0 or text[start:start + 2] not in ("{\n", "[\n"):
            continue  # a member on one line
        if close < 0 or text[close + 3] != ("}" if text[start] == "{" else "]"):
            return []  # no closing line where the layout puts it
        try:
            key = json.loads(text[line + 3:colon + 1])
        except ValueError:
            return []
        if not isinstance(key, str):
            return []
        spans.append((key, start, close + 4))
    return spans


class Deferred(Mapping[str, Any]):
    """A JSON object's members, those written over several lines decoded when first read."""

    def __init__(self, head: dict[str, Any], spans: dict[str, tuple[int, int]], text: str,
                 bad: Callable[[ValueError], Exception], readers: Mapping[str, Reader] = {}) -> None:
        self._members, self._spans = head, spans
        self._text: str | None = text
        self._bad = bad
        self._readers = readers

    def __getitem__(self, key: str) -> Any:
        if key in self._spans:
            self._read(key)
            # the text is let go once what is left of it is small (the rest is decoded now): a
            # command that read the ruleset should not keep its 34 MB of text for the routes
            if sum(stop - start for start, stop in self._spans.values()) * 8 < len(self._text or ""):
                for rest in list(self._spans):
                    self._read(rest)
                self._text = None
        return self._members[key]

    def _read(self, key: str) -> None:
        start, stop = self._spans[key]
        self._members[key] = _paused(lambda: self._decode(key, start, stop))
        del self._spans[key]  # (a member that failed fails again when read again)

    def _decode(self, key: str, start: int, stop: int) -> Any:
        try:
            value, end = self._readers.get(key, _DECODER.raw_decode)(self._text or "", start)
        except ValueError as exc:
            raise self._bad(exc) from None
        if end != stop:  # the value ends elsewhere than its closing line: the layout misled
            raise self._bad(ValueError(f"member {key!r} does not end on its closing line"))
        return value

    def is_null(self, key: str) -> bool:
        """Whether member ``key`` is there and null, without decoding any member."""
        return key not in self._spans and key in self._members and self._members[key] is None

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members
