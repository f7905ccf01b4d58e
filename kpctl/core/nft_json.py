"""Reading the libnftables JSON of `nft -j list ruleset` (the one walker of that document).

The document is ``{"nftables": [{"metainfo": …}, {"table": …}, {"chain": …}, {"set": …},
{"map": …}, {"rule": …}, …]}``: one object per line of `nft list ruleset`, each naming its
family and table.  Used by `kpctl nft list`, the nftables tracer and (later) `kpctl services`.
"""

from __future__ import annotations

from collections import UserDict
from collections.abc import Iterator
from typing import Any

from kpctl.core.nft_document import Objects, RuleText, bodies, entries
from kpctl.errors import InvalidInput

NAMED_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


def items(ruleset: Any, kind: str) -> Iterator[dict[str, Any]]:
    """The objects of one ``kind`` (table, chain, set, map, rule…), in document order (rules
    held as text are decoded only when rules are asked for)."""
    for item in entries(ruleset):
        if isinstance(item, RuleText):
            if kind == "rule":
                yield item.body()
        elif isinstance(item, dict) and kind in item:
            yield item[kind]


def elements(container: Any) -> list[Any]:
    """Set or map elements with ``{"elem": {"val": …}}`` wrappers (timeouts, comments) removed."""
    return [_bare(elem) for elem in container or ()]


def _bare(elem: Any) -> Any:
    """One set or map element without its ``{"elem": {"val": …}}`` wrapper."""
    if isinstance(elem, dict) and "elem" in elem:
        return elem["elem"].get("val", elem["elem"])
    return elem


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


def check_document(ruleset: Any, origin: str) -> None:
    """A one-line error when ``ruleset`` is not a ruleset document (None: an empty one)."""
    if ruleset is None:
        return
    if not isinstance(ruleset, dict) or not isinstance(ruleset.get("nftables", []), (list, Objects)):
        raise InvalidInput(f"{origin}: not the JSON of `nft -j list ruleset` (no \"nftables\" list)")
    for number, item in enumerate(entries(ruleset), 1):
        if isinstance(item, RuleText):
            continue  # (checked when read: RuleText.body)
        if not isinstance(item, dict) or len(item) != 1 or not isinstance(next(iter(item.values())), (dict, type(None))):
            raise InvalidInput(f"{origin}: nftables object #{number} is not {{\"KIND\": {{…}}}}")


def object_kind(item: dict[str, Any]) -> str:
    """``"chain"`` for ``{"chain": {…}}``."""
    return next(iter(item))


class TableIndex:
    """Chains, rules per chain, and sets/maps per name, for one nft table (one pass over the document)."""

    def __init__(self, ruleset: Any, family: str, table: str) -> None:
        self.chains: dict[str, dict[str, Any]] = {}
        self.rules = ChainRules()
        self.sets: dict[str, dict[str, Any]] = {}
        self._targets: dict[str, frozenset[str]] = {}
        held = self.rules.data
        for item in entries(ruleset):
            if isinstance(item, RuleText):
                if item.table == table and item.family == family:
                    held.setdefault(item.chain, []).append(item)
                continue
            if not isinstance(item, dict):
                continue
            for kind, value in item.items():
                if not isinstance(value, dict) or value.get("table") != table or value.get("family") != family:
                    continue
                if kind == "rule":
                    held.setdefault(value["chain"], []).append(item)
                elif kind == "chain":
                    self.chains.setdefault(value["name"], value)
                    held.setdefault(value["name"], [])
                elif kind in ("set", "map"):
                    self.sets[value["name"]] = value

    def targets(self, chain: str) -> frozenset[str]:
        """Every chain the rules of ``chain`` send to (jump/goto, also inside anonymous vmaps; a
        named map's elements are the map's, see :func:`verdicts`)."""
        found = self._targets.get(chain)
        if found is None:
            found = self._targets[chain] = frozenset(
                verdict[1] for rule in self.rules.get(chain, ()) for stmt in rule.get("expr", ())
                if sends(stmt) for verdict in verdicts(stmt, None))
        return found


class ChainRules(UserDict[str, list]):
    """A table's rules by chain name (``data``: each chain's as held, ``{"rule": body}`` or
    RuleText), a chain's decoded each time it is read (not kept: a walk over every chain holds one
    chain's rules at a time; see nft_document)."""

    def __getitem__(self, chain: str) -> list[dict[str, Any]]:
        return bodies(self.data[chain])


VERDICT_STATEMENTS = frozenset(("jump", "goto", "vmap"))
_VERBS = ("jump", "goto")


def sends(stmt: Any) -> bool:
    """Whether a rule's statement may send the packet to a chain (a jump, a goto, a verdict map);
    a cheap test that skips the matches, counters and NAT statements most rules are made of."""
    return isinstance(stmt, dict) and (len(stmt) != 1 or next(iter(stmt)) in VERDICT_STATEMENTS)


def verdicts(stmt: dict[str, Any], maps: dict[str, dict[str, Any]] | None) -> Iterator[tuple[str, str, Any, Any]]:
    """Where one statement sends the packet: ``(verb, chain, vmap, key)`` for its own jump or goto
    (``vmap`` and ``key`` None), then for each jump/goto element of its verdict map (the vmap
    statement's body and the element's key, wrappers removed).  A named map (``@name``) is looked
    up in ``maps``; with ``maps`` None its elements are left out (the map's own, not the rule's)."""
    for verb in _VERBS:
        if verb in stmt:
            target = _target(stmt[verb])
            if target is not None:
                yield verb, target, None, None
    vmap = stmt.get("vmap")
    if not isinstance(vmap, dict):
        return
    data = vmap.get("data")
    if isinstance(data, str) and data.startswith("@"):
        pairs = (maps or {}).get(data[1:], {}).get("elem")
    else:
        pairs = data.get("set") if isinstance(data, dict) else None
    for pair in pairs or ():
        if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], dict):
            verdict = pair[1]
            for verb in _VERBS:
                if verb in verdict:
                    target = _target(verdict[verb])
                    if target is not None:
                        yield verb, target, vmap, _bare(pair[0])


def _target(verdict: Any) -> str | None:
    """The chain of a jump or goto's ``{"target": CHAIN}``."""
    return str(verdict["target"]) if isinstance(verdict, dict) and "target" in verdict else None


def jump_targets(value: Any) -> Iterator[str]:
    """The chains a verdict (a map element's value: ``{"goto": {"target": CHAIN}}``) or a rule's
    statement sends to."""
    if isinstance(value, dict):
        for _verb, target, _vmap, _key in verdicts(value, None):
            yield target
