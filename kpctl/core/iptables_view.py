"""Views of iptables rule sets: selection (--table/--chain/--kube), the jump graph, backends.

Pure functions over :mod:`kpctl.model.iptables`; nothing here prints or reads the kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kpctl.core.iptables_save import LazyChains, ShapedParts, format_options
from kpctl.core.jumps import JumpNode
from kpctl.errors import NotFound
from kpctl.model.iptables import (
    BACKENDS,
    FAMILIES,
    KUBE_PREFIX,
    Chain,
    IptablesState,
    Rule,
    Ruleset,
    Table,
)


def is_kube_chain(name: str) -> bool:
    return name.startswith(KUBE_PREFIX)


def jumps_into_kube(rule: Rule) -> bool:
    return rule.jump is not None and is_kube_chain(rule.jump)


def select(ruleset: Ruleset, table: str | None = None, chain: str | None = None,
           kube: bool = False) -> Ruleset:
    """The part of ``ruleset`` the user asked for (rule numbers stay those of the kernel).

    ``kube``: only KUBE-* chains, and the built-in chains with just their rules that jump
    (or go) into a KUBE-* chain.
    """
    tables: dict[str, Table] = {}
    for name, tab in ruleset.tables.items():
        if table is not None and name != table:
            continue
        if chain is None and not kube:
            tables[name] = tab  # the whole table: chains not read yet stay so
            continue
        # only the rules a filter looks into are read: a named chain is looked up, and a KUBE-*
        # chain kept whole (-o save of a lazily read node prints it as read)
        names: list[str] = []
        replaced: dict[str, Chain] = {}
        for chain_name in tab.chains if chain is None else ((chain,) if chain in tab.chains else ()):
            if kube and not is_kube_chain(chain_name):
                ch = tab.chains[chain_name]
                kept = tuple(r for r in ch.rules if jumps_into_kube(r))
                if not kept:
                    continue
                replaced[chain_name] = Chain(ch.name, ch.policy, ch.packets, ch.bytes, kept)
            names.append(chain_name)
        if names or (table is not None and chain is None and not kube):
            chains: Mapping[str, Chain] = (
                tab.chains.subset(names, replaced) if isinstance(tab.chains, LazyChains)
                else {n: replaced.get(n) or tab.chains[n] for n in names})
            tables[name] = Table(name, chains)
    return replace(ruleset, tables=tables)


def select_state(state: IptablesState, table: str | None = None, chain: str | None = None,
                 kube: bool = False, family: str | None = None, backend: str | None = None,
                 include_empty: bool = False) -> IptablesState:
    """Select from every rule set; raise NotFound when a named table or chain exists nowhere."""
    chosen = [r for r in state.rulesets
              if (family is None or r.family == family) and (backend is None or r.backend == backend)]
    if not include_empty:
        non_empty = [r for r in chosen if not r.empty]
        chosen = non_empty or chosen[:1]
    if table is not None and chosen and not any(table in r.tables for r in chosen):
        raise NotFound(f"table {table!r} not found", _where(chosen))
    if chain is not None and chosen and not any(
            chain in t.chains for r in chosen for t in r.tables.values() if table is None or t.name == table):
        where = f" in table {table!r}" if table else ""
        raise NotFound(f"chain {chain!r} not found{where}", _where(chosen))
    return IptablesState(tuple(select(r, table, chain, kube) for r in chosen))


def _where(rulesets: list[Ruleset]) -> str:
    return "looked in " + ", ".join(f"{r.family}/{r.backend}" for r in rulesets)


# ---------------------------------------------------------------- jump graph


def describe_action(rule: Rule) -> str | None:
    """A short word for a rule's non-jump target: ``DNAT 10.1.0.8:8080``, ``MASQUERADE``…"""
    unbuilt = rule.unbuilt
    if unbuilt is not None and isinstance(unbuilt[0], ShapedParts):
        return unbuilt[0].action(unbuilt[1])
    target = rule.target
    if target is None or target.is_chain:
        return None
    if target.name == "DNAT" or target.name == "SNAT":
        dest = target.option("--to-destination", "--to-source")
        return f"{target.name} {dest.value}" if dest and dest.value else target.name
    if target.name == "MARK" and target.xmark is not None:
        return f"MARK xset 0x{target.xmark[0]:x}/0x{target.xmark[1]:x}"
    if target.name in ("ACCEPT", "DROP", "RETURN", "MASQUERADE", "REJECT", "LOG"):
        return target.name
    return " ".join([target.name, *format_options(target.options)])


def jump_tree(ruleset: Ruleset, table_name: str, roots: tuple[str, ...] | None = None) -> tuple[JumpNode, ...]:
    """One tree per built-in chain of a table (or per chain in ``roots`` that the table has):
    which user chains each rule leads to."""
    table = ruleset.tables[table_name]
    if roots is None:
        roots = tuple(ch.name for ch in table.chains.values() if ch.builtin)
    walk = _JumpWalk(table)
    return tuple(walk.node(name, None) for name in roots if name in table.chains)


# a chain, its rules that jump and the other rules' actions
_ChainSteps = tuple[Chain, tuple[Rule, ...], tuple[str, ...]]


class _JumpWalk:
    """The walk behind :func:`jump_tree`: ``expanded``, the chains drawn with their children so
    far; ``path``, the chains from the root down to the node being made (a jump back up one is
    not followed); ``seen``, each chain's jumping rules and actions, read from its rules once.
    (Methods, not a closure that calls itself: that closure is a reference cycle, which kept
    the table and its rules for the cycle collector to free.)"""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.expanded: set[str] = set()
        self.path: set[str] = set()
        self.seen: dict[str, _ChainSteps | None] = {}

    def _chain(self, name: str) -> _ChainSteps | None:
        chain = self.table.chains.get(name)
        if chain is None:
            return None
        jumping: list[Rule] = []  # the rules that jump
        found: dict[str, None] = {}  # the other rules' actions, each once, in order
        for rule in chain.rules:
            if rule.jump is not None:
                jumping.append(rule)
            elif action := describe_action(rule):
                found[action] = None
        return chain, tuple(jumping), tuple(found)

    def node(self, name: str, via: Rule | None) -> JumpNode:
        """The node of chain ``name`` reached by rule ``via``."""
        seen = self.seen
        known = seen[name] if name in seen else seen.setdefault(name, self._chain(name))
        if known is None:
            return JumpNode(name, via, missing=True)
        chain, jumping, actions = known
        if name in self.expanded and jumping:
            return JumpNode(name, via, chain.policy, actions, seen_above=True)
        self.expanded.add(name)
        path = self.path
        path.add(name)
        children = tuple([self.node(rule.jump, rule) for rule in jumping  # type: ignore[arg-type]
                          if rule.jump not in path])
        path.discard(name)
        return JumpNode(name, via, chain.policy, actions, children)


# ---------------------------------------------------------------- backends


@dataclass(frozen=True)
class BackendUsage:
    family: str
    backend: str
    available: bool  # the tool for this backend exists (or the snapshot has its text)
    tables: tuple[str, ...] = ()
    chains: int = 0
    rules: int = 0
    kube_chains: int = 0
    kube_rules: int = 0  # rules inside KUBE-* chains plus rules jumping into them

    @property
    def holds_rules(self) -> bool:
        return self.rules > 0 or self.chains > 0

    @property
    def holds_kube(self) -> bool:
        return self.kube_chains > 0 or self.kube_rules > 0

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "backend": self.backend, "available": self.available,
                "tables": list(self.tables), "chains": self.chains, "rules": self.rules,
                "kube_chains": self.kube_chains, "kube_rules": self.kube_rules,
                "holds_rules": self.holds_rules, "holds_kube": self.holds_kube}


@dataclass(frozen=True)
class BackendReport:
    usages: tuple[BackendUsage, ...] = ()
    mixed_families: tuple[str, ...] = field(default=())  # families whose KUBE-* objects are in both

    @property
    def kube_backends(self) -> tuple[str, ...]:
        return tuple(b for b in BACKENDS if any(u.backend == b and u.holds_kube for u in self.usages))

    @property
    def mixed(self) -> bool:
        """KUBE-* chains or rules exist in both nft and legacy (in any family)."""
        return len(self.kube_backends) > 1

    @property
    def verdict(self) -> str:
        if self.mixed:
            where = ", ".join(self.mixed_families) or "across families"
            return (f"KUBE-* rules are split across legacy and nft ({where}); "
                    "kube-proxy and kubelet must use one iptables backend")
        if self.kube_backends:
            return f"KUBE-* rules are only in {self.kube_backends[0]}"
        return "no KUBE-* rules in any backend"

    def to_dict(self) -> dict[str, Any]:
        return {"backends": [u.to_dict() for u in self.usages], "kube_backends": list(self.kube_backends),
                "mixed": self.mixed, "mixed_families": list(self.mixed_families), "verdict": self.verdict}


def usage_of(ruleset: Ruleset, available: bool = True) -> BackendUsage:
    """What ``ruleset`` holds; the rules of KUBE-* chains are counted, not read (a 10,000-service
    node has 110,000), only the other chains' rules are read, for their jumps into KUBE-* chains."""
    counts = [(table, name, *_counted(table, name)) for table in ruleset.tables.values() for name in table.chains]
    user_chains = [name for _table, name, builtin, _count in counts if not builtin]
    kube_chains = [name for name in user_chains if is_kube_chain(name)]
    kube_rules = sum(count for _table, name, _builtin, count in counts if is_kube_chain(name)) + sum(
        1 for table, name, _builtin, count in counts if count and not is_kube_chain(name)
        for rule in table.chains[name].rules if jumps_into_kube(rule))
    return BackendUsage(
        ruleset.family, ruleset.backend, available,
        tables=tuple(dict.fromkeys(table.name for table, _name, builtin, count in counts if not builtin or count)),
        chains=len(user_chains),
        rules=sum(count for *_rest, count in counts),
        kube_chains=len(kube_chains),
        kube_rules=kube_rules,
    )


def _counted(table: Table, name: str) -> tuple[bool, int]:
    """Whether chain ``name`` of ``table`` is built-in, and its number of rules (not read if not yet)."""
    if isinstance(table.chains, LazyChains):
        return table.chains.counted(name)
    chain = table.chains[name]
    return chain.builtin, len(chain.rules)


def compare_backends(state: IptablesState, available: dict[tuple[str, str], bool] | None = None) -> BackendReport:
    """Which backends hold rules, and whether KUBE-* objects are split between nft and legacy."""
    usages = []
    for family in FAMILIES:
        for backend in BACKENDS:
            ruleset = state.get(family, backend)
            has_tool = (available or {}).get((family, backend), ruleset is not None)
            if ruleset is None:
                usages.append(BackendUsage(family, backend, has_tool))
            else:
                usages.append(usage_of(ruleset, has_tool))
    mixed_families = tuple(
        f for f in FAMILIES if all(any(u.family == f and u.backend == b and u.holds_kube for u in usages)
                                   for b in BACKENDS))
    return BackendReport(tuple(usages), mixed_families)
