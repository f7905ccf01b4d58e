"""What a document (what ``to_dict`` returns, for -o json/yaml) may hold besides plain data."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterable, Iterator, Sequence


class OneLineItems:
    """A list that a JSON writer writes with each item on a line of its own, as ``json.dumps(item)``
    writes it (``", "`` and ``": "``): a long list of deep items (the objects of an ``nft -j``
    ruleset, the rules of an iptables chain) reads as one item per line, and is written by the C
    encoder a batch of items at a time (YAML writes it as any list).  It is true even when empty
    (a writer tells it from a list by its type).

    ``document``, when given, makes each item's document as it is written, which is then dropped:
    the 110,000 rule documents of a node are never all held.  ``texts``, when given, makes the
    items' JSON lines instead: ``texts(encode, ensure_ascii)`` (an item's JSON text on one line
    that it holds already, or ``encode(item)``).  ``fields``, when given, names the values of items
    that are tuples: each item's document is the dict of ``fields`` to its values, which a JSON
    writer need not make (the 200,000 connections of a busy node)."""

    __slots__ = ("items", "texts", "document", "fields")

    def __init__(self, items: Sequence[Any],
                 texts: Callable[[Callable[[Any], str], bool], Iterable[str]] | None = None,
                 document: Callable[[Any], Any] | None = None, fields: tuple[str, ...] = ()) -> None:
        self.items, self.texts, self.document, self.fields = items, texts, document, fields

    def __iter__(self) -> Iterator[Any]:
        """The items' documents."""
        if self.fields:
            return map(dict, map(partial(zip, self.fields), self.items))
        return iter(self.items) if self.document is None else map(self.document, self.items)
