"""How `kpctl nft list -o tree` prints the jump graph (its table is the registry's).

Names and comments are user data: escaped like every other printer's cells.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from kpctl.output.text import BOLD, DIM, escape_cell, styled
from kpctl.output.tree import draw


def tree_text(trees: Sequence[Any], color: bool) -> Iterator[str]:
    """The lines of the jump graph of each table: one branch per base chain, children indented
    with guides."""

    def dim(text: str) -> str:
        return styled(text, DIM, color)

    def label(node: Any) -> str:
        text = (dim(escape_cell(node.via)) + " " if node.via else "") + (
            styled(escape_cell(node.chain), BOLD, color))
        if node.heading:
            text += f" ({escape_cell(node.heading)})"
        if node.actions:
            text += " → " + escape_cell(", ".join(node.actions))
        if node.seen_above:
            text += " " + dim("(expanded above)")
        if node.missing:
            text += " " + dim("(no such chain)")
        return text

    for tree in trees:
        yield f"table {tree.family} {escape_cell(tree.table)}"
        yield from draw(tree.roots, label, lambda node: node.children)
