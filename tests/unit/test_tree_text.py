"""The one tree printer behind every `-o tree`: rich's guides, depth first, each line once."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.output.tree import draw

# A node: (name, children); a forest is a list of them.
FORESTS = st.recursive(st.just([]), lambda inner: st.lists(st.tuples(st.text("abc", max_size=2), inner), max_size=4),
                       max_leaves=30)


def guides(nodes: list[Any], prefix: str = "") -> list[str]:
    """What the tree reads as: each node after its parent's line, its children below it, a
    ``├── `` before all but the last of a level, ``└── `` before the last, and ``│   `` carried
    down under every node that has siblings below it."""
    lines = []
    for index, (name, children) in enumerate(nodes):
        last = index == len(nodes) - 1
        lines.append(prefix + ("└── " if last else "├── ") + name)
        lines += guides(children, prefix + ("    " if last else "│   "))
    return lines


@settings(max_examples=300)
@given(FORESTS, st.sampled_from(["", "  "]))
def test_every_node_once_under_its_parent_with_rich_guides(forest: list[Any], prefix: str) -> None:
    assert list(draw(forest, lambda node: node[0], lambda node: node[1], prefix)) == guides(forest, prefix)


def test_a_deep_and_wide_tree() -> None:
    chain: list[Any] = []
    for depth in range(200):  # deeper than a recursive printer's frames would like
        chain = [(f"d{depth}", chain), ("leaf", [])]
    lines = list(draw(chain, lambda node: node[0], lambda node: node[1]))
    assert len(lines) == 400 and lines[:3] == ["├── d199", "│   ├── d198", "│   │   ├── d197"]
    assert lines[-2:] == ["│   └── leaf", "└── leaf"] and lines[200] == "│   " * 199 + "└── leaf"
    assert lines == guides(chain)
