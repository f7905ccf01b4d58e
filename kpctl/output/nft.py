"""How `kpctl nft list -o tree` prints the jump graph (its table is the registry's).

Names and comments are user data: escaped like every other printer's cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from kpctl.output.text import DIM, escape_cell, styled
from kpctl.output.tree import draw, jump_label


def tree_text(trees: Sequence[Any], color: bool) -> Iterator[str]:
    """The lines of the jump graph of each table: one branch per base chain, children indented
    with guides."""

    def label(node: Any) -> str:
        text = jump_label(node, node.via, node.heading, None, color)
        return text + " " + styled("(no such chain)", DIM, color) if node.missing else text

    for tree in trees:
        yield f"table {tree.family} {escape_cell(tree.table)}"
        yield from draw(tree.roots, label, lambda node: node.children)
