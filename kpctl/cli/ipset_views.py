"""Listings of `kpctl ipset …`: rows for table/wide/plain, documents for json/yaml, ipset texts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from kpctl.core.ipset_entry import format_entry_options
from kpctl.core.ipset_find import FindMatch
from kpctl.core.ipset_save import format_header, format_save
from kpctl.model.ipset import IPSet
from kpctl.output.listing import Column, Listing

_MEMBER_COLUMNS = [
    Column("SET", "set"), Column("TYPE", "type", 1), Column("MEMBER", "member"),
    Column("TIMEOUT", "timeout", justify="right"), Column("PACKETS", "packets", 1, "right"),
    Column("BYTES", "bytes", 1, "right"), Column("COMMENT", "comment"), Column("OPTIONS", "options", 1),
]
_SET_COLUMNS = [
    Column("NAME", "name"), Column("TYPE", "type"), Column("FAMILY", "family"),
    Column("ENTRIES", "entries", justify="right"), Column("REFERENCES", "references", justify="right"),
    Column("MEMORY", "memory", 1, "right"), Column("REVISION", "revision", 1, "right"), Column("HEADER", "header", 1),
]


def format_list(sets: Sequence[IPSet], terse: bool) -> str:
    """What `ipset list [-t]` prints."""
    blocks = []
    for ipset in sets:
        lines = [f"Name: {ipset.name}", f"Type: {ipset.type}", f"Revision: {ipset.revision or 0}",
                 f"Header: {format_header(ipset)}", f"Size in memory: {ipset.size_in_memory or 0}",
                 f"References: {ipset.references or 0}",
                 f"Number of entries: {ipset.entries if ipset.entries is not None else len(ipset.members)}"]
        if not terse:
            lines.append("Members:")
            lines.extend(member.raw + format_entry_options(member) for member in ipset.members)
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _member_rows(sets: Sequence[IPSet]) -> list[dict[str, Any]]:
    rows = []
    for ipset in sets:
        for member in ipset.members:
            extra = format_entry_options(member, runtime=False).strip()
            if member.comment is not None:
                extra = extra.replace(f'comment "{member.comment}"', "").strip()
            rows.append({"set": ipset.name, "type": ipset.type, "member": member.raw,
                         "timeout": member.timeout, "packets": member.packets, "bytes": member.bytes,
                         "comment": member.comment, "options": extra})
    return rows


def _set_row(ipset: IPSet) -> dict[str, Any]:
    return {"name": ipset.name, "type": ipset.type, "family": ipset.family or "",
            "entries": ipset.entries if ipset.entries is not None else len(ipset.members),
            "references": ipset.references, "memory": ipset.size_in_memory, "revision": ipset.revision,
            "header": format_header(ipset)}


def _set_document(ipset: IPSet, terse: bool) -> dict[str, Any]:
    document = ipset.to_dict()
    document["header"] = format_header(ipset)
    if terse:
        del document["members"]
    return document


def sets_listing(sets: Sequence[IPSet], terse: bool, output_format: str | None = None) -> Listing:
    """Rows, document and ipset texts of ``sets``; given the ``output_format`` to print, only
    what it reads is built (rows and documents of 100,000 members cost seconds and ~100 MiB)."""
    formats = {"save": lambda: format_save(replace(s, members=()) if terse else s for s in sets),
               "ipset": lambda: format_list(sets, terse)}
    everything = output_format is None
    documents = everything or output_format in ("json", "yaml")
    rows = everything or not (documents or output_format in formats)
    data = {"sets": [_set_document(s, terse) for s in sets]} if documents else None
    if terse:
        return Listing(_SET_COLUMNS, [_set_row(s) for s in sets] if rows else [], data, formats)
    return Listing(_MEMBER_COLUMNS, _member_rows(sets) if rows else [], data, formats)


def names_listing(names: Sequence[str]) -> Listing:
    text = "".join(name + "\n" for name in names)
    return Listing([Column("NAME", "name")], [{"name": n} for n in names], {"names": list(names)},
                   {"save": lambda: text, "ipset": lambda: text})


def find_listing(matches: Sequence[FindMatch]) -> Listing:
    columns = [Column("SET", "set"), Column("TYPE", "type"), Column("MEMBER", "member"), Column("VIA", "via"),
               Column("NOMATCH", "nomatch", 1)]
    rows = [{"set": m.set_name, "type": m.set_type, "member": m.member.raw, "via": m.via or "",
             "nomatch": "yes" if m.member.nomatch else ""} for m in matches]
    return Listing(columns, rows, {"matches": [m.to_dict() for m in matches]})
