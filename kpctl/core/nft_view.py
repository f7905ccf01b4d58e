"""What `kpctl nft list` shows of a ruleset: a selection, one summary row per object, the jump graph.

Every function takes the libnftables JSON document and walks it once (kube-proxy's table at
10,000 services holds ~40,000 chains), indexing rules and sets by (family, table, name).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from kpctl.core.jumps import JumpNode
from kpctl.core.nft_document import Entry, Objects, RuleText, entries
from kpctl.core.nft_json import ChainRules, object_kind, priority, sends, verdicts
from kpctl.core.nft_syntax import element, expression, priority_text, statement
from kpctl.errors import InvalidInput, NotFound

# The order packets meet the hooks, so the tree reads like a packet's way through the node.
_HOOK_ORDER = {"ingress": 0, "prerouting": 1, "input": 2, "forward": 3, "output": 4, "postrouting": 5}
# What a chain's rules do besides sending the packet to another chain, shown beside it in the tree
# as `iptables list -o tree` shows a chain's targets (DNAT, MARK, LOG, RETURN…): NAT, marks set,
# logging, and the verdicts that end the chain.
_ACTIONS = frozenset(("dnat", "snat", "masquerade", "redirect", "reject", "drop", "accept", "queue", "return",
                      "mangle", "log", "notrack"))


def select(ruleset: dict[str, Any], table: str | None = None, family: str | None = None,
           chain: str | None = None) -> dict[str, Any]:
    """The document reduced to ``table``/``family`` (and to one ``chain`` with its rules)."""
    if table is None and family is None and chain is None:
        return ruleset
    kept: list[Entry] = []
    tables = chains = 0
    for item in entries(ruleset):
        if isinstance(item, RuleText):  # (a rule not decoded: where it belongs is all it takes)
            if (family is None or item.family == family) and (table is None or item.table == table) \
                    and (chain is None or item.chain == chain):
                kept.append(item)
            continue
        kind = object_kind(item)
        body = item[kind]
        if kind == "metainfo":
            kept.append(item)
            continue
        if family is not None and body.get("family") != family:
            continue
        if table is not None and body.get("table", body.get("name") if kind == "table" else None) != table:
            continue
        if chain is not None:
            if kind in ("chain", "rule") and body.get("chain", body.get("name")) != chain:
                continue
            if kind not in ("table", "chain", "rule"):
                continue
        tables += kind == "table"
        chains += kind == "chain"
        kept.append(item)
    where = " ".join(x for x in (family, table) if x)
    if (table or family) and not tables:
        raise NotFound(f"no nftables table {where}", "see `kpctl nft list`")
    if chain is not None and not chains:
        raise NotFound(f"no chain {chain!r} in nftables{' table ' + where if where else ''}",
                       "see `kpctl nft list`")
    return {"nftables": Objects(kept)}


def _type_text(body: dict[str, Any], kind: str) -> str:
    spec = body.get("type", "")
    text = " . ".join(spec) if isinstance(spec, list) else ("typeof " + expression(spec["typeof"])
                                                             if isinstance(spec, dict) else str(spec))
    if kind == "map":
        target = body.get("map", "")
        text += " : " + (" . ".join(target) if isinstance(target, list) else str(target))
    return text


def _chain_of(rule: Entry) -> tuple[str, str, str]:
    """(family, table, chain) of a rule entry."""
    if isinstance(rule, RuleText):
        return rule.family, rule.table, rule.chain
    body = rule["rule"]
    return body.get("family", ""), body.get("table", ""), body.get("chain", "")


def summary_rows(ruleset: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per table, chain, set and map: what `nft list` would show, counted."""
    rules: Counter[tuple[str, str, str]] = Counter(
        _chain_of(item) for item in entries(ruleset) if isinstance(item, RuleText) or "rule" in item)
    rows = []
    for item in entries(ruleset):
        if isinstance(item, RuleText):
            continue
        kind = object_kind(item)
        if kind in ("metainfo", "rule"):
            continue
        body = item[kind]
        row: dict[str, Any] = {"family": body.get("family", ""), "table": body.get("table", body.get("name", "")),
                               "kind": kind, "name": body.get("name", ""), "type": "", "hook": "", "priority": "",
                               "policy": "", "count": "", "flags": "", "comment": body.get("comment", "")}
        if kind == "chain":
            row["count"] = rules[(row["family"], row["table"], row["name"])]
            if body.get("hook"):
                row.update(type=body.get("type", ""), hook=body["hook"], priority=priority(body.get("prio", 0)),
                           policy=body.get("policy", "accept"))
        elif kind in ("set", "map"):
            flags = body.get("flags", [])
            row.update(type=_type_text(body, kind), count=len(body.get("elem") or ()),
                       flags=flags if isinstance(flags, str) else ",".join(flags))
        elif kind == "table":
            row["name"] = ""
            flags = body.get("flags", [])
            row["flags"] = flags if isinstance(flags, str) else ",".join(flags)
        rows.append(row)
    return rows


# ---------------------------------------------------------------- jump graph


@dataclass(frozen=True)
class NftTableTree:
    """The jump graph of one table, one tree per base chain (or per chosen root)."""

    family: str
    table: str
    roots: tuple[JumpNode, ...]  # via: "" at a root, else how (jump, goto, a map element); heading: the hook


_Edge = tuple[str, str]  # (how, target chain)


def _steps(rules: list[dict[str, Any]], maps: dict[str, dict[str, Any]]) -> tuple[list[_Edge], tuple[str, ...]]:
    """Where a chain's rules can send the packet (each jump/goto and every verdict of a verdict
    map), and what else they do (its actions, each once): one pass over their statements."""
    edges: list[_Edge] = []
    found: dict[str, None] = {}
    looked_up: tuple[Any, str] = (None, "")  # a verdict map and the text of what it looks up
    for rule in rules:
        for stmt in rule.get("expr", ()):
            if not isinstance(stmt, dict):
                continue
            if sends(stmt):
                for verb, target, vmap, key in verdicts(stmt, maps):
                    if vmap is None:
                        edges.append((verb, target))
                        continue
                    if looked_up[0] is not vmap:
                        data = vmap.get("data")
                        looked_up = (vmap, f"{data} " if isinstance(data, str) else f"{expression(vmap.get('key'))} = ")
                    edges.append((f"{looked_up[1]}{element(key)}: {verb}", target))
            elif len(stmt) == 1 and (kind := next(iter(stmt))) in _ACTIONS:
                try:
                    found[statement(stmt)] = None
                except InvalidInput:  # an action nft syntax cannot show: name it
                    found[kind] = None
    return edges, tuple(found)


def jump_trees(ruleset: dict[str, Any], roots: tuple[str, ...] | None = None) -> tuple[NftTableTree, ...]:
    """Per table, the graph from each base chain (or from ``roots``) through jumps, gotos and vmaps."""
    chains: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    rules: dict[tuple[str, str], ChainRules] = {}  # (a chain's rules decoded when it is drawn)
    maps: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for item in entries(ruleset):
        if isinstance(item, RuleText):
            _held(rules, (item.family, item.table)).setdefault(item.chain, []).append(item)
            continue
        (kind, body), = item.items()  # (one each: check_document)
        key = (body.get("family", ""), body.get("table", body.get("name", "")))
        if kind == "rule":
            _held(rules, key).setdefault(body["chain"], []).append(item)
        elif kind == "chain":
            chains.setdefault(key, {})[body["name"]] = body
        elif kind == "table":
            chains.setdefault(key, {})
        elif kind == "map":
            maps.setdefault(key, {})[body["name"]] = body
    return tuple(_table_tree(key, table_chains, rules.get(key, ChainRules()), maps.get(key, {}), roots)
                 for key, table_chains in chains.items())


def _held(rules: dict[tuple[str, str], ChainRules], key: tuple[str, str]) -> dict[str, list[Any]]:
    """The rules held by chain of table ``key`` (made when its first rule is met)."""
    found = rules.get(key)
    if found is None:
        found = rules[key] = ChainRules()
    return found.data


def _table_tree(key: tuple[str, str], table_chains: dict[str, dict[str, Any]],
                table_rules: ChainRules, table_maps: dict[str, dict[str, Any]],
                roots: tuple[str, ...] | None) -> NftTableTree:
    names = roots if roots is not None else tuple(sorted(
        (n for n, b in table_chains.items() if b.get("hook")),
        key=lambda n: (_HOOK_ORDER.get(table_chains[n]["hook"], 9), priority(table_chains[n].get("prio", 0)))))
    table: _Graph = (table_chains, table_rules, table_maps, {}, {})
    return NftTableTree(key[0], key[1], tuple(_node(table, n, "", frozenset()) for n in names if n in table_chains))


# a table's chains, rules by chain, maps, the steps of the chains expanded so far in its tree, and
# the node of each chain that sends nowhere by how it was reached
_Graph = tuple[dict[str, dict[str, Any]], ChainRules, dict[str, dict[str, Any]],
               dict[str, tuple[list[_Edge], tuple[str, ...]]], dict[tuple[str, str], JumpNode]]


def _node(table: _Graph, name: str, via: str, path: frozenset[str]) -> JumpNode:
    """The node of chain ``name`` reached ``via`` a verdict; ``table``: its chains, rules, maps and
    the steps of the chains expanded so far (a chain reached again, such as the masquerade chain
    every endpoint jumps to, is not read again; a function of its own: a closure calling itself
    is a reference cycle, which kept them for the cycle collector).  A chain that sends nowhere
    has the same node wherever it is reached the same way: one node, however often it is drawn
    (`jump mark-for-masquerade`: half the nodes of kube-proxy's tree)."""
    table_chains, table_rules, table_maps, expanded, leaves = table
    leaf = leaves.get((name, via))
    if leaf is not None:
        return leaf
    body = table_chains.get(name)
    if body is None:
        return JumpNode(name, via, missing=True)
    steps = expanded.get(name)
    seen = steps is not None
    if steps is None:
        steps = expanded[name] = _steps(table_rules.get(name, []), table_maps)
    edges, actions = steps
    hook = ""
    if body.get("hook"):
        prio = priority_text(body.get("family", ""), body["hook"], priority(body.get("prio", 0)))
        hook = (f"{body.get('type', '')} hook {body['hook']} priority {prio}"
                f" policy {body.get('policy', 'accept')}")
    if seen and edges:
        return JumpNode(name, via, hook, actions, seen_above=True)
    if not edges:
        leaf = leaves[(name, via)] = JumpNode(name, via, hook, actions)
        return leaf
    below = path | {name}
    children = tuple(_node(table, target, how, below) for how, target in edges if target not in path)
    return JumpNode(name, via, hook, actions, children)
