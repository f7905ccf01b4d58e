"""Listings of `kpctl ipvs diff` / `kpctl ipset diff`: one row per change, the plan as a document,
and the operations as the peer tool's restore lines (``-o save``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kpctl.output.listing import Column, Listing

IPVS_COLUMNS = (Column("ACTION", "action"), Column("SERVICE", "service"), Column("SERVER", "server"),
                Column("DETAIL", "detail"), Column("CONNS", "connections", justify="right"))
IPSET_COLUMNS = (Column("ACTION", "action"), Column("SET", "set"), Column("MEMBER", "member"),
                 Column("DETAIL", "detail"))


def diff_listing(columns: Sequence[Column], plan: Any) -> Listing:
    """``plan`` has ``changes`` (each with ``to_dict()``), ``to_dict()`` and ``operations`` (each ``describe()``)."""
    rows = [change.to_dict() for change in plan.changes]
    text = "".join(op.describe() + "\n" for op in plan.operations)
    return Listing(columns=columns, rows=rows, data=plan.to_dict(), formats={"save": lambda: text})
