"""Trees as text: the one guide-drawing routine behind every `-o tree` (iptables and nft jump graphs).

Drawn here rather than with rich's Tree, which took 43 s for a 40,000-node tree (kube-proxy's
nft table at 10,000 services) and, without a terminal, wrapped long lines at 200 columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def draw(nodes: Sequence[Any], label: Callable[[Any], str], children: Callable[[Any], Sequence[Any]],
         lines: list[str], prefix: str = "") -> None:
    """Append ``nodes`` and their descendants to ``lines`` under ``prefix``, with rich's guides."""
    last_index = len(nodes) - 1
    for index, node in enumerate(nodes):
        last = index == last_index
        lines.append(prefix + ("└── " if last else "├── ") + label(node))
        below = children(node)
        if below:
            draw(below, label, children, lines, prefix + ("    " if last else "│   "))
