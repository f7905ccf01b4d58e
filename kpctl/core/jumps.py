"""The node of a jump graph, for iptables (:mod:`kpctl.core.iptables_view`) and nftables
(:mod:`kpctl.core.nft_view`) alike: what `-o tree` draws (kpctl.output.tree)."""

from __future__ import annotations

from typing import Any


class JumpNode:
    """A chain reached from a built-in (base) chain.

    ``via``: how it is reached (the iptables Rule that jumps, or nft's ``jump``, ``goto`` or a map
    element; None or "" at a root); ``heading``: what a root chain says of itself (an iptables
    policy, an nft hook); ``actions``: what the chain does besides jumping ("DNAT 10.1.0.8:8080");
    ``seen_above``: expanded earlier in its table's tree; ``missing``: jumped to but not in the
    table (only in a hand-made snapshot).  A plain class with slots, not a frozen dataclass: a
    10,000-service node's tree has 80,000 of them, and the dataclass's __init__ (one
    object.__setattr__ per field) was a quarter of the walk."""

    __slots__ = ("chain", "via", "heading", "actions", "children", "seen_above", "missing")

    def __init__(self, chain: str, via: Any = None, heading: str | None = None, actions: tuple[str, ...] = (),
                 children: tuple[JumpNode, ...] = (), seen_above: bool = False, missing: bool = False) -> None:
        self.chain, self.via, self.heading, self.actions = chain, via, heading, actions
        self.children, self.seen_above, self.missing = children, seen_above, missing

    def __repr__(self) -> str:
        return "JumpNode(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in JumpNode.__slots__) + ")"
