"""`kpctl nft …`: nftables rulesets (kube-proxy's nftables mode, and every other table)."""

from __future__ import annotations

import json
from typing import Any, Callable

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.core.nft_document import Objects
from kpctl.output.listing import Column, Listing, OutputSpec

FAMILIES = ("ip", "ip6", "inet", "arp", "bridge", "netdev")


@click.group()
def nft() -> None:
    """nftables rulesets as `nft -j list ruleset` gives them: chains, sets, maps, jump graph.

    \b
    Examples:
      kpctl nft list --table kube-proxy
      kpctl nft list --table kube-proxy -o tree
    """


@nft.command("list")
@click.option("--table", metavar="NAME", help="Only this table (kube-proxy's is `kube-proxy`).")
@click.option("--family", type=click.Choice(FAMILIES), help="Only tables of this family.")
@click.option("--chain", metavar="CHAIN", help="Only this chain and its rules (with -o tree: the graph below it).")
@output_options("tree", "save")
@pass_app
def list_ruleset(app: AppContext, table: str | None, family: str | None, chain: str | None,
                 output: OutputSpec) -> None:
    """List tables, chains (type, hook, priority, policy, rules) and sets and maps (elements).

    Read live with `nft -j list ruleset` (inside --netns) or from a --snapshot.  -o tree
    draws the jump graph from each base chain, through jump, goto and verdict maps
    (kube-proxy: services → @service-ips → service chains → endpoint chains); -o json is
    the libnftables JSON of the selection (compact, as `nft -j`); -o save is nft syntax that `nft -f` loads.

    \b
    Examples:
      kpctl nft list --table kube-proxy
      kpctl nft list --table kube-proxy -o tree
      kpctl --snapshot node.json nft list --chain services -o save
      kpctl nft list --table kube-proxy -o save | nft -c -f -
    """
    from kpctl.backends.nft import open_nft
    from kpctl.core.nft_view import select

    full = open_nft(app).ruleset()
    selected = select(full, table, family, chain)
    graph = select(full, table, family) if chain else selected
    app.render(_listing(selected, graph, chain, output, app.env.color), output)


COLUMNS = (
    Column("FAMILY", "family"), Column("TABLE", "table"), Column("KIND", "kind"), Column("NAME", "name"),
    Column("TYPE", "type"), Column("HOOK", "hook"), Column("PRIO", "priority", justify="right"),
    Column("POLICY", "policy"), Column("RULES/ELEMS", "count", justify="right"),
    Column("FLAGS", "flags", priority=1), Column("COMMENT", "comment", priority=1),
)


def _listing(selected: dict[str, Any], graph: dict[str, Any], chain: str | None, output: OutputSpec,
             color: bool) -> Listing:
    from kpctl.core.nft_document import one_line
    from kpctl.core.nft_syntax import save_text
    from kpctl.core.nft_view import jump_trees, summary_rows
    from kpctl.output.nft import tree_text

    # Rows cost a pass over ~40,000 chains at 10k services: built only for the formats showing them.
    rows = summary_rows(selected) if output.format in ("table", "wide", "plain") else []

    formats = {
        "tree": lambda: tree_text(jump_trees(graph, (chain,) if chain else None), color),
        "save": lambda: save_text(selected),
        "json": lambda: _json_text(selected),
    }
    return Listing(COLUMNS, rows, lambda: one_line(selected), formats)  # (-o yaml; -o json: _json_text)


def _json_text(document: dict[str, Any]) -> str:
    """Compact, as `nft -j` prints it (the indenting encoder took 20 s and 770 MiB at 10k services),
    each object encoded as it is decoded (a rule is held as text until then: nft_document.RuleText).
    A decoded document holds no cycle to check for (see kpctl.output.json_text)."""
    encode = json.JSONEncoder(check_circular=False).encode
    members = (encode(key) + ": " + (_objects_text(value, encode) if isinstance(value, Objects) else encode(value))
               for key, value in document.items())
    return "{" + ", ".join(members) + "}\n"


def _objects_text(objects: Objects, encode: Callable[[Any], str]) -> str:
    """``encode(list(objects))``: a held rule as its own text (see Objects.texts), the others encoded."""
    return "[" + ", ".join(objects.texts(encode, True)) + "]"
