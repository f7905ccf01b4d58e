"""Reading the libnftables JSON of `nft -j list ruleset` (the one walker of that document).

The document is ``{"nftables": [{"metainfo": …}, {"table": …}, {"chain": …}, {"set": …},
{"map": …}, {"rule": …}, …]}``: one object per line of `nft list ruleset`, each naming its
family and table.  Used by `kpctl nft list`, the nftables tracer and (later) `kpctl services`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kpctl.errors import InvalidInput

# Object kinds of the document, in the order `nft list ruleset` prints a table's contents.
OBJECT_KINDS: tuple[str, ...] = ("table", "set", "map", "flowtable", "counter", "quota", "ct helper",
                                 "limit", "ct timeout", "ct expectation", "secmark", "synproxy", "chain", "rule")
NAMED_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


def items(ruleset: Any, kind: str) -> Iterator[dict[str, Any]]:
    """The objects of one ``kind`` (table, chain, set, map, rule…), in document order."""
    if not isinstance(ruleset, dict):
        return
    for item in ruleset.get("nftables", ()):
        if isinstance(item, dict) and kind in item:
            yield item[kind]


def elements(container: Any) -> list[Any]:
    """Set or map elements with ``{"elem": {"val": …}}`` wrappers (timeouts, comments) removed."""
    out = []
    for elem in container or ():
        if isinstance(elem, dict) and "elem" in elem:
            elem = elem["elem"].get("val", elem["elem"])
        out.append(elem)
    return out


def priority(value: Any) -> int:
    """A chain priority as a number (``dstnat`` → -100, ``srcnat + 1`` → 101)."""
    if isinstance(value, int):
        return value
    text = str(value).replace(" ", "")
    for name, base in NAMED_PRIORITIES.items():
        if text.startswith(name):
            rest = text[len(name):]
            return base + (int(rest) if rest else 0)
    try:
        return int(text)
    except ValueError:
        return 0


def check_document(ruleset: Any, origin: str) -> list[dict[str, Any]]:
    """The object list of a ruleset document; a one-line error when it is not one."""
    if ruleset is None:
        return []
    if not isinstance(ruleset, dict) or not isinstance(ruleset.get("nftables", []), list):
        raise InvalidInput(f"{origin}: not the JSON of `nft -j list ruleset` (no \"nftables\" list)")
    objects = ruleset.get("nftables", [])
    for number, item in enumerate(objects, 1):
        if not isinstance(item, dict) or len(item) != 1 or not isinstance(next(iter(item.values())), (dict, type(None))):
            raise InvalidInput(f"{origin}: nftables object #{number} is not {{\"KIND\": {{…}}}}")
    return objects


def object_kind(item: dict[str, Any]) -> str:
    """``"chain"`` for ``{"chain": {…}}``."""
    return next(iter(item))


class TableIndex:
    """Rules per chain, and sets/maps per name, for one nft table."""

    def __init__(self, ruleset: Any, family: str, table: str) -> None:
        self.rules: dict[str, list[dict[str, Any]]] = {}
        self.sets: dict[str, dict[str, Any]] = {}
        for chain in items(ruleset, "chain"):
            if chain.get("family") == family and chain.get("table") == table:
                self.rules.setdefault(chain["name"], [])
        for rule in items(ruleset, "rule"):
            if rule.get("family") == family and rule.get("table") == table:
                self.rules.setdefault(rule["chain"], []).append(rule)
        for kind in ("set", "map"):
            for item in items(ruleset, kind):
                if item.get("family") == family and item.get("table") == table:
                    self.sets[item["name"]] = item
