"""iptables-save text → :class:`Ruleset` whose chains are parsed on first use.

A trace visits a handful of chains of a 100,000-rule kube-proxy node (KUBE-SERVICES and the
few KUBE-SVC/KUBE-SEP chains of one service), so parsing every rule up front costs ten times
the walk.  :func:`parse_save_lazy` checks the document's structure in one cheap pass (tables,
chain declarations, every rule line's ``-A CHAIN``) and keeps each chain's lines; a chain's
rules are parsed, validated and cached the first time the chain is looked up, with exactly
the parser (and the error messages) of :func:`kpctl.core.iptables_save.parse_save`.  A
document the cheap pass finds anything odd in is handed to ``parse_save`` whole, so
structural errors read the same as ever; a malformed rule surfaces when its chain is read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from kpctl.core import iptables_save as full
from kpctl.core.iptables_quick import QuickRule, recognize
from kpctl.errors import InvalidInput
from kpctl.model.iptables import Chain, Rule, Ruleset, Table

_APPEND = ("-A", "--append")


class LazyChains(Mapping[str, Chain]):
    """Declared chains in save order; each parsed from its lines when first looked up."""

    def __init__(self, table: str, family: str, declared: dict[str, tuple[str | None, int, int]],
                 lines: dict[str, list[tuple[int, str]]], late: dict[str, int] | None = None) -> None:
        self._table, self._family = table, family
        self._declared, self._lines = declared, lines
        # chains declared after the table's first rule line → their declaration line: a rule
        # before it sees no such chain (`-j NAME` is then a target, not a jump), as in parse_save
        self._late = late or {}
        self._built: dict[str, Chain] = {}
        self._walked: dict[str, list[Rule | QuickRule]] = {}

    def __getitem__(self, name: str) -> Chain:
        chain = self._built.get(name)
        if chain is None:
            policy, packets, bytes_ = self._declared[name]  # KeyError for an undeclared chain
            rules = tuple(self._rule(name, number, lineno, line)
                          for number, (lineno, line) in enumerate(self._lines[name], start=1))
            chain = self._built[name] = Chain(name, policy, packets, bytes_, rules)
        return chain

    def walk_rules(self, name: str) -> list[Rule | QuickRule]:
        """The rules of ``name`` for a packet walk: the lines :func:`recognize` reads cheaply as
        QuickRules, the rest parsed in full, in order (so the first malformed line fails as in
        ``self[name]``); :meth:`full_rule` replaces a QuickRule by its Rule when the walk needs it."""
        rules = self._walked.get(name)
        if rules is None:
            built = self._built.get(name)
            if built is not None:
                rules = list(built.rules)
            else:
                self._declared[name]  # KeyError for an undeclared chain, as self[name]
                rules = []
                for number, (lineno, line) in enumerate(self._lines[name], start=1):
                    quick = recognize(number, lineno, line, self._family)
                    rules.append(quick if quick is not None else self._rule(name, number, lineno, line))
            self._walked[name] = rules
        return rules

    def full_rule(self, name: str, index: int) -> Rule:
        """Rule ``index`` (0-based) of ``name`` parsed in full (it is then kept for later walks)."""
        rules = self.walk_rules(name)
        rule = rules[index]
        if isinstance(rule, QuickRule):
            rule = rules[index] = self._rule(name, rule.number, rule.lineno, rule.line)
        return rule

    def __contains__(self, name: object) -> bool:
        return name in self._declared

    def __iter__(self) -> Iterator[str]:
        return iter(self._declared)

    def __len__(self) -> int:
        return len(self._declared)

    def _rule(self, chain: str, number: int, lineno: int, line: str) -> Rule:
        """One rule line, exactly as parse_save reads it."""
        counters, tokens, line = full.split_counters(full.tokenize(line, lineno), line)
        chains: Collection[str] = self._declared.keys()
        if self._late:
            chains = {name for name in chains if self._late.get(name, 0) < lineno}
        matches, target, goto = full.parse_rule_body(tokens[2:], lineno, chain, chains, self._table, self._family)
        return Rule(chain, number, line, matches, target, goto, counters)


def parse_save_lazy(text: str, family: str = "ipv4", backend: str = "nft") -> Ruleset:
    """Like :func:`~kpctl.core.iptables_save.parse_save`, rules parsed per chain on first use."""
    tables: dict[str, Table] = {}
    table: str | None = None
    declared: dict[str, tuple[str | None, int, int]] = {}
    lines: dict[str, list[tuple[int, str]]] = {}
    # The two lines a kube-proxy node has by the hundred thousand take a shortcut that ends
    # where the general code below would: a rule line "-A NAME ..." of a declared chain (no
    # whitespace to strip, a NAME without quote or backslash: see `fast`) and ":NAME - [0:0]".
    fast: dict[str, list[tuple[int, str]]] = {}  # declared chains whose name needs no unquoting
    late: dict[str, int] = {}  # see LazyChains
    ruled = False  # a rule line was seen in this table
    builtins: tuple[str, ...] = ()
    if family not in ("ipv4", "ipv6"):
        return full.parse_save(text, family, backend)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if raw[:3] == "-A ":
            end = raw.find(" ", 3)
            bucket = fast.get(raw[3:end] if end > 0 else raw[3:])
            if bucket is not None and not raw[-1].isspace():
                bucket.append((lineno, raw))
                ruled = True
                continue
        elif raw[:1] == ":" and raw[-8:] == " - [0:0]" and table is not None:
            name = raw[1:-8]
            if name not in declared and name not in builtins and full._CHAIN_NAME.match(name):
                declared[name] = (None, 0, 0)
                bucket = lines[name] = []
                if ruled:
                    late[name] = lineno
                if "\\" not in name:
                    fast[name] = bucket
                continue
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        first = line[0]
        if first == "-" or first == "[":
            at = 1 if first == "[" else 0
            parts = line.split(None, 2 + at)
            if (table is None or len(parts) < at + 2 or (at and not full._COUNTERS.match(parts[0])) or parts[at] not in _APPEND
                    or parts[at + 1] not in declared or '"' in parts[at + 1] or "\\" in parts[at + 1]):
                return full.parse_save(text, family, backend)  # the precise error
            lines[parts[at + 1]].append((lineno, line))
            ruled = True
        elif first == "*":
            name = line[1:].strip()
            if table is not None or not name or " " in name or name in tables:
                return full.parse_save(text, family, backend)
            table, declared, lines, fast, late, ruled = name, {}, {}, {}, {}, False
            builtins = full.BUILTIN_CHAINS.get(table, ())
        elif line == "COMMIT" and table is not None:
            tables[table] = Table(table, LazyChains(table, family, declared, lines, late))
            table, fast = None, {}
        elif first == ":" and table is not None:
            parts = line[1:].split()
            if (len(parts) == 3 and parts[1] == "-" and parts[2] == "[0:0]" and parts[0] not in declared
                    and parts[0] not in full.BUILTIN_CHAINS.get(table, ()) and full._CHAIN_NAME.match(parts[0])):
                declared[parts[0]] = (None, 0, 0)  # the common user chain: what _parse_chain_line makes of it
                lines[parts[0]] = []
                if ruled:
                    late[parts[0]] = lineno
                if "\\" not in parts[0]:
                    fast[parts[0]] = lines[parts[0]]
                continue
            scratch: dict[str, dict[str, object]] = {}
            try:
                full._parse_chain_line(line, lineno, table, scratch, {})
            except InvalidInput:
                return full.parse_save(text, family, backend)
            if line[1:].split()[0] in declared:
                return full.parse_save(text, family, backend)
            ((chain, info),) = scratch.items()
            policy = info["policy"]
            declared[chain] = (policy if isinstance(policy, str) else None,
                               int(str(info["packets"])), int(str(info["bytes"])))
            lines[chain] = []
            if ruled:
                late[chain] = lineno
            if "\\" not in chain:
                fast[chain] = lines[chain]
        else:
            return full.parse_save(text, family, backend)
    if table is not None:
        return full.parse_save(text, family, backend)
    return Ruleset(family, backend, tables)
