"""Reading (and writing) snapshot files."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from kpctl.backends.json_document import decode_object
from kpctl.errors import InvalidInput, NotFound
from kpctl.model.snapshot import SNAPSHOT_FORMAT, SNAPSHOT_VERSION, NodeSnapshot


def load_snapshot(path: str) -> NodeSnapshot:
    """The snapshot in file ``path`` (``-``: standard input); written as `snapshot save` writes it,
    its sections of several lines are decoded when a command reads them (json_document.decode_object)."""
    def bad(exc: ValueError) -> InvalidInput:
        where = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return InvalidInput(f"snapshot {path!r} is not valid JSON: {where}")

    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        document = decode_object(text, bad, {"nftables": lambda text, start: _ruleset(text, start, path)})
    except FileNotFoundError:
        raise NotFound(f"snapshot file {path!r} not found") from None
    except IsADirectoryError:
        raise InvalidInput(f"snapshot {path!r} is a directory") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"snapshot {path!r} is not UTF-8 text: byte {exc.start}: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise bad(exc) from None
    if not isinstance(document, Mapping) or document.get("format") != SNAPSHOT_FORMAT:
        raise InvalidInput(f"{path!r} is not a kpctl snapshot (no \"format\": \"{SNAPSHOT_FORMAT}\")")
    version = document.get("version")
    if version != SNAPSHOT_VERSION:
        raise InvalidInput(f"snapshot {path!r} has version {version!r}; this kpctl reads version {SNAPSHOT_VERSION}")
    return NodeSnapshot(version=version, sections=document, source=path)


def _ruleset(text: str, start: int, path: str) -> tuple[Any, int]:
    """The nftables section, its rules held as text (nft_document: imported by the commands that read it)."""
    from kpctl.core.nft_document import read_document

    return read_document(text, start, f"snapshot {path!r}: nftables section")


def required_section(snapshot: NodeSnapshot, name: str) -> Any:
    """Section ``name`` of ``snapshot``; NotFound (exit 3) when it has none (null or left out),
    with the reason `snapshot save` recorded under ``absent`` (e.g. "nft not found")."""
    section = snapshot.section(name)
    if section is None:
        absent = snapshot.section("absent")
        reason = absent.get(name) if isinstance(absent, dict) else None
        raise NotFound(f"snapshot {snapshot.source!r} has no {name} section" + (f" ({reason})" if reason else ""))
    return section
