"""An `nft -j list ruleset` document read with its rules kept as text until a command reads them.

At 10,000 services kube-proxy's table holds ~80,000 rules among ~120,000 objects, and the rules
are 90% of the decoded document (~780,000 of its ~890,000 dicts: ~200 MB).  Most commands read
few rules (`vip list`, `trace`) or one chain's at a time (`nft list`, `services`, `doctor`), so
:func:`read_document` keeps each rule as a :class:`RuleText` (where it belongs and its text) in
:class:`Objects`, and everything else decoded.  A rule written on a line of its own (as
`snapshot save` writes the ruleset: one object per line) is not decoded at all; in `nft -j`'s
one-line output each is decoded once to find its end and let go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Union, overload

from kpctl.errors import InvalidInput
from kpctl.model.document import OneLineItems

_DECODER = json.JSONDecoder()


class RuleText(NamedTuple):
    """A rule of a document as its JSON text (``{"rule": {…}}``), with the chain it belongs to."""

    family: str
    table: str
    chain: str
    text: str
    number: int  # its place in the document (1-based), named by an error
    origin: str  # where the document came from, named by an error

    def body(self) -> dict[str, Any]:
        """The rule (the value of ``"rule"``), decoded now (and not kept)."""
        try:
            value, end = _DECODER.raw_decode(self.text)
            if end != len(self.text):
                raise ValueError(f"extra data at character {end}")
        except ValueError as exc:
            raise InvalidInput(f"{self.origin}: nftables object #{self.number} is not valid JSON: {exc}") from None
        return self.rule_of(value)

    def rule_of(self, value: Any) -> dict[str, Any]:
        """The rule in ``value`` (the text, decoded); a one-line error when it is not a rule of
        the chain it was filed under."""
        body = value.get("rule") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(body, dict) or (body.get("family"), body.get("table"), body.get("chain")) != self[:3]:
            raise InvalidInput(f"{self.origin}: nftables object #{self.number} is not {{\"rule\": {{…}}}} "
                               f"of chain {self.chain!r}")
        return body


Entry = Union[dict, RuleText]  # an object of a document: decoded ({"KIND": {…}}), or a rule not yet


RUN = 256  # entries decoded together (one call of the C decoder for their rules; see run)


def run(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """The objects of ``entries``, decoded: their rules in one call (not one each: the
    decoder's call costs as much as a small rule's decoding)."""
    texts = [entry.text for entry in entries if isinstance(entry, RuleText)]
    if len(texts) > 1:
        try:
            values = _DECODER.decode("[" + ", ".join(texts) + "]")
        except ValueError:
            values = None  # (each decoded alone below: the bad one names itself)
        if values is not None and len(values) == len(texts):
            found = iter(values)
            out: list[dict[str, Any]] = []
            for entry in entries:
                if isinstance(entry, RuleText):
                    value = next(found)
                    entry.rule_of(value)
                    out.append(value)
                else:
                    out.append(entry)
            return out
    return [entry if isinstance(entry, dict) else {"rule": entry.body()} for entry in entries]


def bodies(rules: Sequence[Entry]) -> list[dict[str, Any]]:
    """The rules of rule entries (``{"rule": body}`` or RuleText), decoded: one or two each alone
    (joining them costs more than it saves: 40,000 rules in pairs 0.118 s alone, 0.134 s as runs;
    in fours 0.145 and 0.119), more as a run."""
    if len(rules) > 2:
        return [value["rule"] for value in run(rules)]
    return [entry["rule"] if isinstance(entry, dict) else entry.body() for entry in rules]


class Objects(Sequence[dict]):
    """The ``"nftables"`` list of a document read by :func:`read_document`: its objects, each
    decoded when taken (rules not kept decoded: a walk over them holds one at a time)."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return run(self.entries[index])
        return run(self.entries[index:index + 1 or None])[0]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        held = self.entries
        for start in range(0, len(held), RUN):
            yield from run(held[start:start + RUN])

    def texts(self, encode: Callable[[Any], str], ascii_only: bool) -> Iterator[str]:
        """Each object as one line of JSON: a held rule as its own text (checked by decoding it
        with its run, not encoded again: it is the JSON nft or a snapshot wrote, unless
        ``ascii_only`` and it is not ASCII), any other ``encode``d."""
        held = self.entries
        for start in range(0, len(held), RUN):
            entries = held[start:start + RUN]
            for entry, value in zip(entries, run(entries)):
                if type(entry) is RuleText and (not ascii_only or entry.text.isascii()):
                    yield entry.text
                else:
                    yield encode(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, Objects)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Objects({len(self.entries)} objects)"


def entries(ruleset: Any) -> Iterable[Entry]:
    """The objects of a document as they are held: decoded dicts, and rules not yet decoded."""
    objects = ruleset.get("nftables", ()) if isinstance(ruleset, dict) else ()
    return objects.entries if isinstance(objects, Objects) else objects


def one_line(document: Any) -> Any:
    """The document for a printer: its objects a OneLineItems, one JSON line each (a held rule its
    own text: Objects.texts) and, walked item by item (YAML), decoded a run at a time (never all
    held: a 10,000-service ruleset decoded is ~200 MB)."""
    objects = document.get("nftables") if isinstance(document, dict) else None
    if isinstance(objects, (list, Objects)):
        return {**document, "nftables": OneLineItems(objects, objects.texts if isinstance(objects, Objects) else None)}
    return document


# ---------------------------------------------------------------- reading the text

_WS = r"[ \t\n\r]*"  # JSON's blanks (json.loads takes no other)
_OPEN = re.compile(f'\\{{{_WS}"nftables"{_WS}:{_WS}\\[{_WS}')
_NEXT = re.compile(f'{_WS}([,\\]]){_WS}')
_CLOSE = re.compile(f'{_WS}\\}}')
# A rule as nft writes it (its keys in nft's order, each name without escapes).
_HEAD = r'\{"rule": \{"family": "([a-z0-9]+)", "table": "([^"\\]*)", "chain": "([^"\\]*)", '
_RULE = re.compile(_HEAD)
# An object on a line of its own (a rule: groups 1-3; group 4: where the object ends), with what
# follows up to the next object (or the list's closing bracket: group 5).  Tried on lines shorter
# than _LONG_LINE only: the pattern runs to the line's end, and `nft -j` prints one line in all.
_LINE = re.compile(r'\{"(?:' + _HEAD[3:] + r'|[^"\\\n]+": \{)[^\n]*\}\}()[ \t\r]*(?:,[ \t\r]*\n[ \t]*|\n' + _WS + r'(\]))')
_LONG_LINE = 1 << 16
# The start of a second object on a rule's line (every object of a document begins with its
# family; nothing nested in a rule does): a line holding two is read the general way.  Looked for
# only on a line where the family's key comes again after the rule's own (_FAMILY, a C-speed find).
_JOINED = re.compile(r'\}, \{"[^"\\]+": \{"family": ')
_FAMILY = '"family": '
_PAST_FAMILY = len('{"rule": {"family": ')  # where a rule's own family key has been passed


def read_document(text: str, start: int, origin: str) -> tuple[Any, int]:
    """The JSON value at ``text[start:]`` and where it ends, as ``JSONDecoder.raw_decode`` reads it, an `nft -j` document's rules held as :class:`RuleText`
    in :class:`Objects`.  A text that is not a document of objects separated by commas is
    decoded whole (and its errors are raised).  ``origin`` is named by errors found later."""
    opened = _OPEN.match(text, start)
    found = _objects(text, opened.end(), origin) if opened else None
    if found is None:
        return _DECODER.raw_decode(text, start)
    return found


def _objects(text: str, at: int, origin: str) -> tuple[Any, int] | None:
    """The objects from ``at`` (after ``[``) to the document's closing ``]}``; None when the text
    is laid out otherwise (or is not JSON: the whole decode that follows names the error).
    Objects on lines of their own other than rules are decoded together, in one call at the end."""
    out: list[Any] = []
    together: list[tuple[int, int]] = []  # (start, stop) of the objects decoded at the end
    newline = -1  # the end of the line ``at`` is on (looked for again only once ``at`` passes it)
    names: dict[str, str] = {}  # one string per family, table and chain name for all their rules
    name, match_line, joined, new, find = names.setdefault, _LINE.match, _JOINED.search, tuple.__new__, text.find
    try:
        if text.startswith("]", at):
            at += 1
        else:
            while True:
                if newline < at:
                    newline = text.find("\n", at)
                    newline = len(text) if newline < 0 else newline
                line = match_line(text, at) if newline - at < _LONG_LINE else None
                if line is not None:  # an object on a line of its own
                    family, table, chain, _, last = line.groups()
                    stop = line.end(4)
                    if family is None:
                        together.append((at, stop))
                        out.append(None)  # (its place)
                    elif find(_FAMILY, at + _PAST_FAMILY, stop) < 0 or joined(text, at, stop) is None:
                        out.append(new(RuleText, (name(family, family), name(table, table), name(chain, chain),
                                                  text[at:stop], len(out) + 1, origin)))
                    else:
                        line = None  # (two objects on the line: read the general way)
                if line is not None:
                    at = line.end()
                    if last:
                        break
                    continue
                value, end = _DECODER.raw_decode(text, at)
                head = _RULE.match(text, at)
                if head is not None:  # (`nft -j`'s one line: decoded to find its end)
                    family, table, chain = head.groups()
                    out.append(new(RuleText, (name(family, family), name(table, table), name(chain, chain),
                                              text[at:end], len(out) + 1, origin)))
                elif isinstance(value, dict):
                    out.append(value)
                else:
                    return None
                step = _NEXT.match(text, end)
                if step is None:
                    return None
                at = step.end()
                if step.group(1) == "]":
                    break
        closed = _CLOSE.match(text, at)
        values = _DECODER.decode("[" + ", ".join([text[start:stop] for start, stop in together]) + "]")
    except ValueError:
        return None
    if closed is None or len(values) != len(together):
        return None  # (two objects on a line)
    places = iter([number for number, entry in enumerate(out) if entry is None])
    for number, value in zip(places, values):
        out[number] = value  # (an object: each text begins with "{" and they decoded one value each)
    return {"nftables": Objects(out)}, closed.end()
