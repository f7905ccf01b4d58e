"""Reading (and writing) snapshot files."""

from __future__ import annotations

import json
import sys
from typing import Any

from kpctl.backends.json_document import decode
from kpctl.errors import InvalidInput, NotFound
from kpctl.model.snapshot import SNAPSHOT_FORMAT, SNAPSHOT_VERSION, NodeSnapshot


def load_snapshot(path: str) -> NodeSnapshot:
    try:
        if path == "-":
            document = decode(sys.stdin)
        else:
            with open(path, encoding="utf-8") as handle:
                document = decode(handle)
    except FileNotFoundError:
        raise NotFound(f"snapshot file {path!r} not found") from None
    except IsADirectoryError:
        raise InvalidInput(f"snapshot {path!r} is a directory") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"snapshot {path!r} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
        raise InvalidInput(f"{path!r} is not a kpctl snapshot (no \"format\": \"{SNAPSHOT_FORMAT}\")")
    version = document.get("version")
    if version != SNAPSHOT_VERSION:
        raise InvalidInput(f"snapshot {path!r} has version {version!r}; this kpctl reads version {SNAPSHOT_VERSION}")
    sections = {k: v for k, v in document.items() if k not in ("format", "version")}
    return NodeSnapshot(version=version, sections=sections, source=path)


def required_section(snapshot: NodeSnapshot, name: str) -> Any:
    """Section ``name`` of ``snapshot``; NotFound (exit 3) when it has none (null or left out),
    with the reason `snapshot save` recorded under ``absent`` (e.g. "nft not found")."""
    section = snapshot.section(name)
    if section is None:
        absent = snapshot.section("absent")
        reason = absent.get(name) if isinstance(absent, dict) else None
        raise NotFound(f"snapshot {snapshot.source!r} has no {name} section" + (f" ({reason})" if reason else ""))
    return section
