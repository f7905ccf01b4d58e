"""Trees as text: the one guide-drawing routine behind every `-o tree` (iptables and nft jump graphs).

Drawn here rather than with rich's Tree, which took 43 s for a 40,000-node tree (kube-proxy's
nft table at 10,000 services) and, without a terminal, wrapped long lines at 200 columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any


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
