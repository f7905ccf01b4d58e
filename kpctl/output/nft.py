"""How `kpctl nft list` prints: an aligned table and a jump-graph tree, written as plain text.

Both are drawn here rather than with rich because kube-proxy's table at 10,000 services has
~40,000 chains: measured on this host, rich took 131 s for a 40,000-row table and 43 s for a
40,000-node tree; joining strings takes a fraction of a second.  Cells are escaped like every
other printer's (names and comments are user data).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kpctl.output.listing import Column
from kpctl.output.text import escape_cell

_BOLD, _DIM, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"


def aligned_table(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], wide: bool,
                  no_headers: bool, color: bool) -> str:
    """Columns padded to their widest cell (two spaces apart), like the rich table without its cost."""
    shown = [c for c in columns if c.priority == 0 or wide]
    cells = [[escape_cell(row.get(c.key)) for c in shown] for row in rows]
    widths = [len(c.header) for c in shown]
    for line in cells:
        widths = [max(w, len(text)) for w, text in zip(widths, line)]
    # Columns empty in every row and without header text would only add spaces: kept, they are few.

    def fmt(line: Sequence[str]) -> str:
        padded = [text.rjust(w) if c.justify == "right" else text.ljust(w)
                  for c, text, w in zip(shown, line, widths)]
        return "  ".join(padded).rstrip()

    out = []
    if not no_headers:
        header = fmt([c.header for c in shown])
        out.append(f"{_BOLD}{header}{_RESET}" if color else header)
    out.extend(fmt(line) for line in cells)
    return "\n".join(out) + "\n" if out else ""


def tree_text(trees: Sequence[Any], color: bool) -> str:
    """The jump graph of each table: one branch per base chain, children indented with guides."""
    lines: list[str] = []

    def dim(text: str) -> str:
        return f"{_DIM}{text}{_RESET}" if color else text

    def label(node: Any) -> str:
        text = (dim(escape_cell(node.via)) + " " if node.via else "") + (
            f"{_BOLD}{escape_cell(node.chain)}{_RESET}" if color else escape_cell(node.chain))
        if node.hook:
            text += f" ({escape_cell(node.hook)})"
        if node.actions:
            text += " → " + escape_cell(", ".join(node.actions))
        if node.seen_above:
            text += " " + dim("(expanded above)")
        if node.missing:
            text += " " + dim("(no such chain)")
        return text

    def add(node: Any, prefix: str, last: bool) -> None:
        lines.append(prefix + ("└── " if last else "├── ") + label(node))
        inner = prefix + ("    " if last else "│   ")
        for index, child in enumerate(node.children):
            add(child, inner, index == len(node.children) - 1)

    for tree in trees:
        lines.append(f"table {tree.family} {escape_cell(tree.table)}")
        for index, root in enumerate(tree.roots):
            add(root, "", index == len(tree.roots) - 1)
    return "\n".join(lines) + "\n" if lines else ""
