"""`open_ipvs(app)`: the IPVS backend for a command (live kernel, or the --snapshot file).

Both backends offer the same interface (kpctl.backends.ipvs.IPVSBackend); the snapshot one
raises InvalidInput for every write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from kpctl.core.ipvs_rows import TableRows, rows_of
from kpctl.model.ipvs import (
    Connection,
    IPVSTable,
    RealServer,
    ServiceKey,
    SyncDaemon,
    Timeouts,
    VirtualService,
)


class IPVSBackend(Protocol):
    def table(self) -> IPVSTable: ...
    def service(self, key: ServiceKey) -> VirtualService: ...
    def add_service(self, svc: VirtualService) -> None: ...
    def edit_service(self, svc: VirtualService) -> None: ...
    def delete_service(self, key: ServiceKey) -> None: ...
    def add_server(self, key: ServiceKey, server: RealServer) -> None: ...
    def edit_server(self, key: ServiceKey, server: RealServer) -> None: ...
    def delete_server(self, key: ServiceKey, server: RealServer) -> None: ...
    def flush(self) -> None: ...
    def zero(self, key: ServiceKey | None) -> None: ...
    def timeouts(self) -> Timeouts: ...
    def set_timeouts(self, t: Timeouts) -> None: ...
    def daemons(self) -> list[SyncDaemon]: ...
    def start_daemon(self, d: SyncDaemon) -> None: ...
    def stop_daemon(self, state: str) -> None: ...
    def connections(self) -> list[Connection]: ...
    def execute(self, op: Any) -> None: ...
    def apply(self, ops: Sequence[Any]) -> None: ...
    def close(self) -> None: ...


def open_ipvs(app: Any) -> IPVSBackend:
    """The snapshot's ``ipvs`` section when ``app.snapshot()`` has one, else the kernel.

    Opening never talks to the kernel: the netlink family is resolved on the first request,
    so commands can validate their input first.
    """
    snapshot = app.snapshot()
    if snapshot is not None:
        from kpctl.backends.ipvs_snapshot import IPVSSnapshot
        from kpctl.backends.snapshot import required_section

        return IPVSSnapshot(required_section(snapshot, "ipvs"), snapshot.source)
    from kpctl.backends.ipvs_netlink import IPVSNetlink

    return IPVSNetlink()


def table_rows(backend: IPVSBackend, default_view: bool = False) -> TableRows:
    """The backend's table as rows (kpctl.core.ipvs_rows): read straight into rows where the backend
    can; ``default_view``: what `ipvsadm -Ln`'s default view shows is enough (see IPVSNetlink.table_rows)."""
    read_rows = getattr(backend, "table_rows", None)
    if read_rows is not None:
        return read_rows(default_view)  # type: ignore[no-any-return]
    return rows_of(backend.table())
