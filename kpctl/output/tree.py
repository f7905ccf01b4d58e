"""Trees as text: the one guide-drawing routine behind every `-o tree` (iptables and nft jump graphs).

Drawn here rather than with rich's Tree, which took 43 s for a 40,000-node tree (kube-proxy's
nft table at 10,000 services) and, without a terminal, wrapped long lines at 200 columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kpctl.output.text import BOLD, DIM, escape_cell, styled


def draw(nodes: Sequence[Any], label: Callable[[Any], str], children: Callable[[Any], Sequence[Any]],
         prefix: str = "") -> Iterator[str]:
    """The lines of ``nodes`` and their descendants under ``prefix``, with rich's guides, one at a
    time: a 80,000-node tree is written as it is drawn, never held whole."""
    last_index = len(nodes) - 1
    for index, node in enumerate(nodes):
        last = index == last_index
        yield prefix + ("└── " if last else "├── ") + label(node)
        below = children(node)
        if below:
            yield from draw(below, label, children, prefix + ("    " if last else "│   "))


def jump_label(node: Any, via: str, heading: str | None, comment: str | None, color: bool) -> str:
    """The line of a jump graph's node (kpctl.core.jumps.JumpNode), iptables' or nft's: how it is
    reached (``via``: "#3 goto", "@service-ips tcp . 10.0.0.1 . 80: goto"), the chain, what a root
    says of itself (``heading``: "policy ACCEPT", an nft hook), the jumping rule's ``comment``, the
    chain's actions, and whether it was expanded above.  Names and comments are user data,
    escaped like every cell."""
    # (escape_cell's own test first: this runs for each of 80,000 nodes)
    chain = node.chain if node.chain.isprintable() else escape_cell(node.chain)
    text = styled(chain, BOLD, color)
    if via:
        text = styled(via if via.isprintable() else escape_cell(via), DIM, color) + " " + text
    if heading:
        text += f" ({escape_cell(heading)})"
    if comment:
        text += " " + styled(repr(comment), DIM, color)  # repr() escapes what is not printable
    if node.actions:
        text += " → " + escape_cell(", ".join(node.actions))
    if node.seen_above:
        text += " " + styled("(expanded above)", DIM, color)
    return text
