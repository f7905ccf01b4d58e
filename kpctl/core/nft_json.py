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
    """Chains, rules per chain, and sets/maps per name, for one nft table (one pass over the document)."""

    def __init__(self, ruleset: Any, family: str, table: str) -> None:
        self.chains: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, list[dict[str, Any]]] = {}
        self.sets: dict[str, dict[str, Any]] = {}
        self._targets: dict[str, frozenset[str]] = {}
        objects = ruleset.get("nftables", ()) if isinstance(ruleset, dict) else ()
        for item in objects:
            if not isinstance(item, dict):
                continue
            for kind, value in item.items():
                if not isinstance(value, dict) or value.get("table") != table or value.get("family") != family:
                    continue
                if kind == "rule":
                    self.rules.setdefault(value["chain"], []).append(value)
                elif kind == "chain":
                    self.chains.setdefault(value["name"], value)
                    self.rules.setdefault(value["name"], [])
                elif kind in ("set", "map"):
                    self.sets[value["name"]] = value

    def targets(self, chain: str) -> frozenset[str]:
        """Every chain the rules of ``chain`` send to (jump/goto, also inside anonymous vmaps)."""
        found = self._targets.get(chain)
        if found is None:
            found = self._targets[chain] = frozenset(
                target for rule in self.rules.get(chain, ()) for target in jump_targets(rule.get("expr")))
        return found


def jump_targets(value: Any) -> Iterator[str]:
    """Every chain an expression, a rule's statements or a map element sends to (jump/goto, also
    inside anonymous vmaps)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "jump" or key == "goto":
                if isinstance(inner, dict) and "target" in inner:
                    yield str(inner["target"])
            elif isinstance(inner, (dict, list)):
                yield from jump_targets(inner)
    elif isinstance(value, list):
        for inner in value:
            if isinstance(inner, (dict, list)):
                yield from jump_targets(inner)
