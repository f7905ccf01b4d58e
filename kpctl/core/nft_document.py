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
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Union, overload

from kpctl.errors import InvalidInput

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
        """The rule (the value of ``"rule"``), decoded now (and not kept); a one-line error when
        the text is not a rule of the chain it was filed under."""
        try:
            value, end = _DECODER.raw_decode(self.text)
            if end != len(self.text):
                raise ValueError(f"extra data at character {end}")
            body = value.get("rule") if isinstance(value, dict) and len(value) == 1 else None
        except ValueError as exc:
            raise InvalidInput(f"{self.origin}: nftables object #{self.number} is not valid JSON: {exc}") from None
        if not isinstance(body, dict) or (body.get("family"), body.get("table"), body.get("chain")) != self[:3]:
            raise InvalidInput(f"{self.origin}: nftables object #{self.number} is not {{\"rule\": {{…}}}} "
                               f"of chain {self.chain!r}")
        return body


Entry = Union[dict, RuleText]  # an object of a document: decoded ({"KIND": {…}}), or a rule not yet


def decoded(entry: Entry) -> dict[str, Any]:
    """The object of an entry, decoded."""
    return entry if isinstance(entry, dict) else {"rule": entry.body()}


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
            return [decoded(entry) for entry in self.entries[index]]
        return decoded(self.entries[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(decoded, self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (list, Objects)) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Objects({len(self.entries)} objects)"


def entries(ruleset: Any) -> Iterable[Entry]:
    """The objects of a document as they are held: decoded dicts, and rules not yet decoded."""
    objects = ruleset.get("nftables", ()) if isinstance(ruleset, dict) else ()
    return objects.entries if isinstance(objects, Objects) else objects


def rule_body(entry: Entry) -> dict[str, Any]:
    """The rule of a rule entry (``{"rule": body}`` or a RuleText), decoded."""
    return entry["rule"] if isinstance(entry, dict) else entry.body()


def plain(document: Any) -> Any:
    """The document with every object decoded (plain dicts and lists, for a generic printer)."""
    if isinstance(document, dict) and isinstance(document.get("nftables"), Objects):
        return {**document, "nftables": list(document["nftables"])}
    return document


# ---------------------------------------------------------------- reading the text

_OPEN = re.compile(r'\s*\{\s*"nftables"\s*:\s*\[\s*')
_NEXT = re.compile(r'\s*([,\]])\s*')
_CLOSE = re.compile(r'\s*\}')
# A rule as nft writes it (its keys in nft's order, each name without escapes).
_HEAD = r'\{"rule": \{"family": "([a-z0-9]+)", "table": "([^"\\]*)", "chain": "([^"\\]*)", '
_RULE = re.compile(_HEAD)
# ... on a line of its own (group 4: where it ends), with what follows up to the next object (or
# the list's closing bracket: group 5).  Tried on lines shorter than _LONG_LINE only: the pattern
# runs to the line's end, and `nft -j` prints the whole document on one line.
_RULE_LINE = re.compile(_HEAD + r'[^\n]*\}\}()[ \t\r]*(?:,[ \t\r]*\n[ \t]*|\n\s*(\]))')
_LONG_LINE = 1 << 16


def read_document(text: str, start: int, origin: str) -> tuple[Any, int]:
    """The JSON value at ``text[start:]`` (after blanks) and where it ends, as
    ``JSONDecoder.raw_decode`` reads it, an `nft -j` document's rules held as :class:`RuleText`
    in :class:`Objects`.  A text that is not a document of objects separated by commas is
    decoded whole (and its errors are raised).  ``origin`` is named by errors found later."""
    opened = _OPEN.match(text, start)
    found = _objects(text, opened.end(), origin) if opened else None
    if found is None:
        while text[start:start + 1].isspace():
            start += 1
        return _DECODER.raw_decode(text, start)
    return found


def _objects(text: str, at: int, origin: str) -> tuple[Any, int] | None:
    """The objects from ``at`` (after ``[``) to the document's closing ``]}``; None when the text
    is laid out otherwise (or is not JSON: the whole decode that follows names the error)."""
    out: list[Entry] = []
    newline = -1  # the end of the line ``at`` is on (looked for again only once ``at`` passes it)
    names: dict[str, str] = {}  # one string per family, table and chain name for all their rules
    name = names.setdefault
    make = RuleText._make
    try:
        if text.startswith("]", at):
            at += 1
        else:
            while True:
                if newline < at:
                    newline = text.find("\n", at)
                    newline = len(text) if newline < 0 else newline
                line = _RULE_LINE.match(text, at) if newline - at < _LONG_LINE else None
                if line is not None:  # a rule on a line of its own: not decoded
                    family, table, chain, _, last = line.groups()
                    out.append(make((name(family, family), name(table, table), name(chain, chain),
                                     text[at:line.end(4)], len(out) + 1, origin)))
                    at = line.end()
                    if last:
                        break
                    continue
                value, end = _DECODER.raw_decode(text, at)
                head = _RULE.match(text, at)
                if head is not None:  # (`nft -j`'s one line: decoded to find its end)
                    family, table, chain = head.groups()
                    out.append(make((name(family, family), name(table, table), name(chain, chain),
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
    except ValueError:
        return None
    return ({"nftables": Objects(out)}, closed.end()) if closed else None
