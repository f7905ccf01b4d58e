"""`kpctl iptables …`: kube-proxy's iptables rules on both backends (nft and legacy)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from operator import methodcaller
from typing import TYPE_CHECKING, Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.model.document import OneLineItems
from kpctl.output.listing import Column, Listing, MadeRows, OutputSpec

if TYPE_CHECKING:
    from kpctl.core.iptables_view import BackendReport
    from kpctl.model.iptables import IptablesState, Rule, Ruleset


@click.group()
def iptables() -> None:
    """iptables rules as iptables-save shows them, for every family and backend.

    \b
    Examples:
      kpctl iptables list --kube
      kpctl iptables backends
    """


@iptables.command("list")
@click.option("-t", "--table", metavar="TABLE", help="Only this table (filter, nat, mangle, raw, security).")
@click.option("--chain", metavar="CHAIN", help="Only this chain (with -o tree: the graph below it).")
@click.option("--kube", is_flag=True, help="Only KUBE-* chains and the built-in chains' jumps into them.")
@click.option("--counters", is_flag=True, help="Read and show packet and byte counters (iptables-save -c).")
@click.option("--family", type=click.Choice(["ipv4", "ipv6"]), help="Only this address family.")
@click.option("--backend", type=click.Choice(["nft", "legacy"]), help="Only this iptables backend.")
@output_options("tree", "save")
@pass_app
def list_rules(app: AppContext, table: str | None, chain: str | None, kube: bool, counters: bool,
               family: str | None, backend: str | None, output: OutputSpec) -> None:
    """List rules of every backend that holds any (nft and legacy, IPv4 and IPv6).

    -o save prints iptables-save text that iptables-restore loads; -o tree draws the
    jump graph from each built-in chain; -o json writes each rule on a line of its own.

    \b
    Examples:
      kpctl iptables list --kube -t nat
      kpctl iptables list -o tree --kube
      kpctl iptables list --family ipv4 --backend nft -o save | iptables-restore --test
    """
    from kpctl.backends.iptables import open_iptables
    from kpctl.core.iptables_save import read_all
    from kpctl.core.iptables_view import select_state

    # Rules are parsed where a filter or a view looks into them: the chains and tables not shown are
    # not read (as `iptables -t nat -L CHAIN`), and -o save prints the rules shown as read.
    tree = output.format == "tree"
    full = open_iptables(app).read(counters=counters, lazy=True)
    state = select_state(full, table, chain, kube, family, backend)
    roots = select_state(full, table, None, kube, family, backend) if chain and tree else state
    if output.format != "save":  # what is shown is read (and a bad rule in it reported) before printing
        for ruleset in roots.rulesets:  # (the tree starts at the built-in chains: all of their tables)
            read_all(ruleset)
    listing = _rules_listing(state, roots, chain, counters, app.env.color)
    app.render(listing, output)
    app.keep(full, state, roots, listing)


@iptables.command("backends")
@output_options()
@pass_app
def backends(app: AppContext, output: OutputSpec) -> int:
    """Which backends (legacy, nft; IPv4, IPv6) hold rules, and whether KUBE-* rules are split.

    Exit status 1 when kube-proxy's rules are in both legacy and nft (a node whose
    kube-proxy and kubelet disagree about the backend), 0 otherwise.

    \b
    Example:
      kpctl iptables backends
    """
    from kpctl.backends.iptables import open_iptables
    from kpctl.core.iptables_view import compare_backends

    reader = open_iptables(app)
    report = compare_backends(reader.read(lazy=True), reader.available())  # rules counted, not read
    app.render(_backends_listing(report), output)
    if report.mixed:
        click.echo(f"kpctl: {report.verdict}", err=True)
    return 1 if report.mixed else 0


# ---------------------------------------------------------------- listings


RULE_COLUMNS = (
    Column("TABLE", "table"), Column("CHAIN", "chain"), Column("NUM", "number", justify="right"),
    Column("TARGET", "target"), Column("PROT", "protocol"), Column("SOURCE", "source"),
    Column("DESTINATION", "destination"), Column("MATCHES", "matches"),
    Column("IN", "in", priority=1), Column("OUT", "out", priority=1), Column("COMMENT", "comment", priority=1),
)


def _rules_listing(state: IptablesState, roots: IptablesState, chain: str | None, counters: bool,
                   color: bool) -> Listing:
    from kpctl.core.iptables_save import format_save

    several = len(state.rulesets) > 1
    columns = [Column("FAMILY", "family", priority=0 if several else 1),
               Column("BACKEND", "backend", priority=0 if several else 1), *RULE_COLUMNS]
    if counters:
        columns += [Column("PKTS", "packets", justify="right"), Column("BYTES", "bytes", justify="right")]
    rows = MadeRows(lambda: (row(tname, rule) for rs in state.rulesets for row in (_row_maker(rs),)
                          for tname, tab in rs.tables.items() for ch in tab.chains.values() for rule in ch.rules))

    def save() -> str:
        parts = []
        for rs in state.rulesets:
            header = f"# kpctl iptables list: {rs.family} {rs.backend}\n" if several else ""
            parts.append(header + format_save(rs, counters=counters))
        return "".join(parts)

    return Listing(columns, rows, lambda: state.to_dict(_rules_document),
                   {"save": save, "tree": lambda: _tree(roots, chain, color)})


def _rules_document(rules: Sequence[Rule]) -> OneLineItems:
    """A chain's rules in -o json, one per line, and in -o yaml as any list; each rule's document
    made as it is written, then dropped (a node's 110,000 rules were 230 MB of indented JSON,
    7 s and 430 MiB to write; one per line, 94 MB)."""
    return OneLineItems(rules, document=_RULE_DOCUMENT)


_RULE_DOCUMENT = methodcaller("to_dict")


def _row_maker(ruleset: Ruleset) -> Callable[[str, Rule], dict[str, Any]]:
    """The listing row of a rule of ``ruleset``; the text of a match or target that rules share
    (kube-proxy's comments, `-m tcp --dport 80`, `-j KUBE-MARK-MASQ`) is made once."""
    from kpctl.core.iptables_save import rule_texts

    family, backend = ruleset.family, ruleset.backend
    anywhere = "0.0.0.0/0" if family == "ipv4" else "::/0"
    made: dict[int, str] = {}  # id() of a match or target of the ruleset (alive while it is) -> text
    numbers: dict[int, str] = {}  # a rule number's text, one for all chains' rules of that number

    def row(table: str, rule: Rule) -> dict[str, Any]:
        target, protocol, src, dst, iif, oif, extra, comment = rule_texts(rule, made)
        counters = rule.counters
        return {
            "family": family, "backend": backend, "table": table, "chain": rule.chain,
            "number": numbers.get(rule.number) or numbers.setdefault(rule.number, str(rule.number)),
            "target": target, "protocol": protocol,
            "source": src or anywhere, "destination": dst or anywhere, "in": iif, "out": oif,
            "matches": extra, "comment": comment or "",
            "packets": counters.packets if counters else "", "bytes": counters.bytes if counters else "",
        }

    return row


def _tree(state: IptablesState, chain: str | None, color: bool) -> Iterator[str]:
    from kpctl.core.iptables_view import jump_tree
    from kpctl.output.text import escape_cell
    from kpctl.output.tree import draw, jump_label

    def label(node: Any) -> str:
        if isinstance(node, tuple):  # a ruleset or table heading: (text, children)
            return str(node[0])
        # "#3 KUBE-SVC-X 'comment' → DNAT …": #3 is the rule of the parent chain that jumps here.
        rule = node.via
        via = "" if rule is None else f"#{rule.number}{' goto' if rule.goto else ''}"
        return jump_label(node, via, node.heading and f"policy {node.heading}", rule and rule.comment, color)

    headings = []
    for rs in state.rulesets:
        tables = [(f"table {escape_cell(tname)}", nodes) for tname in rs.tables
                  if (nodes := jump_tree(rs, tname, (chain,) if chain else None))]
        headings.append((f"{rs.family} {rs.backend}", tables))
    yield "iptables"
    yield from draw(headings, label, lambda node: node[1] if isinstance(node, tuple) else node.children)


def _backends_listing(report: BackendReport) -> Listing:
    columns = [
        Column("FAMILY", "family"), Column("BACKEND", "backend"), Column("AVAILABLE", "available"),
        Column("TABLES", "tables"), Column("CHAINS", "chains", justify="right"),
        Column("RULES", "rules", justify="right"), Column("KUBE-CHAINS", "kube_chains", justify="right"),
        Column("KUBE-RULES", "kube_rules", justify="right"),
    ]
    rows = [{**u.to_dict(), "available": "yes" if u.available else "no",
             "tables": ",".join(u.tables) or "-"} for u in report.usages]
    return Listing(columns, rows, report.to_dict(), title=report.verdict)
