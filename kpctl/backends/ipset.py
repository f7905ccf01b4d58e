"""Where `kpctl ipset` reads from: the kernel (netlink) or a snapshot's ``ipsets`` section.

Both readers offer ``list_sets(name=None, header_only=False)`` and ``names()``; writes exist
only on the live backend (:class:`kpctl.backends.ipset_netlink.IPSetNetlink`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from kpctl.core.ipset_save import parse_save
from kpctl.errors import InvalidInput, NotFound
from kpctl.model.ipset import IPSet


class IPSetReader(Protocol):
    def list_sets(self, name: str | None = None, header_only: bool = False) -> list[IPSet]: ...

    def names(self) -> list[str]: ...

    def close(self) -> None: ...


class SnapshotIPSets:
    """Sets parsed from the ``ipset save`` text a snapshot holds."""

    def __init__(self, text: str, source: str = "") -> None:
        try:
            self._sets = parse_save(text)
        except InvalidInput as exc:
            raise InvalidInput(f"snapshot {source!r}: ipsets section: {exc.message}") from None

    def list_sets(self, name: str | None = None, header_only: bool = False) -> list[IPSet]:
        found = [s for s in self._sets if name is None or s.name == name]
        if name is not None and not found:
            raise NotFound(f"set {name!r} does not exist in the snapshot")
        return [replace(s, members=()) if header_only else s for s in found]

    def names(self) -> list[str]:
        return [s.name for s in self._sets]

    def close(self) -> None:
        pass


def snapshot_reader(snapshot: Any) -> SnapshotIPSets:
    from kpctl.backends.snapshot import required_section

    text = required_section(snapshot, "ipsets")
    if not isinstance(text, str):
        raise InvalidInput(f"snapshot {snapshot.source!r}: the ipsets section must be the text of `ipset save`")
    return SnapshotIPSets(text, snapshot.source)


def open_ipset(app: Any) -> IPSetReader:
    """The snapshot reader under ``--snapshot``, else a netlink socket in the current namespace."""
    snapshot = app.snapshot()
    if snapshot is not None:
        return snapshot_reader(snapshot)
    from kpctl.backends.ipset_netlink import IPSetNetlink

    return IPSetNetlink()


def open_live(app: Any, what: str, why: str = "changes the kernel") -> Any:
    """The netlink backend for a command that changes (or must ask) the kernel (refused on --snapshot)."""
    app.require_live(what, why)
    from kpctl.backends.ipset_netlink import IPSetNetlink

    return IPSetNetlink()


def save_text(reader: IPSetReader, name: str | None = None) -> str:
    """`ipset save [NAME]` text from any reader (snapshots use it to record the node)."""
    from kpctl.core.ipset_save import format_save

    return format_save(reader.list_sets(name))
