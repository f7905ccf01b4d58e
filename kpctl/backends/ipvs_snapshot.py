"""The IPVS read interface over a snapshot file's ``ipvs`` section (writes are refused)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from kpctl.errors import InvalidInput, NotFound
from kpctl.model.ipvs import (Connection, IPVSInfo, IPVSTable, RealServer, ServiceKey, SyncDaemon, Timeouts,
    VirtualService)


class IPVSSnapshot:
    """IPVSBackend reading ``{"info", "services", "timeouts", "daemons", "connections"}`` (the last
    the text of /proc/net/ip_vs_conn)."""

    def __init__(self, section: Mapping[str, Any], source: str = "") -> None:
        self.section = section
        self.source = source

    def _field(self, name: str, default: Any) -> Any:
        value = self.section.get(name, default)
        return default if value is None else value

    def _bad(self, what: str, exc: Exception) -> InvalidInput:
        return InvalidInput(f"snapshot {self.source!r}: bad ipvs {what}: {exc}")

    def info(self) -> IPVSInfo:
        info = self._field("info", {})
        try:
            return IPVSInfo(version=str(info.get("version", "")), conn_table_size=int(info.get("conn_table_size", 0)))
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._bad("info", exc) from None

    def table(self) -> IPVSTable:
        try:
            return IPVSTable(self.info(), tuple(VirtualService.from_dict(item) for item in self._field("services", [])))
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._bad("services", exc) from None

    def service(self, key: ServiceKey) -> VirtualService:
        """The service ``key``, made from its record alone (not a table of 10,000 for one)."""
        try:
            for item in self._field("services", []):
                if item.get("port", 0) == key.port and item.get("fwmark", 0) == key.fwmark:  # (most differ here)
                    service = VirtualService.from_dict(item)
                    if service.key == key:
                        return service
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._bad("services", exc) from None
        raise NotFound(f"service {key} does not exist in snapshot {self.source!r}")

    def timeouts(self) -> Timeouts:
        try:
            return Timeouts(**{k: int(v) for k, v in self._field("timeouts", {}).items()})
        except (TypeError, ValueError, AttributeError) as exc:
            raise self._bad("timeouts", exc) from None

    def daemons(self) -> list[SyncDaemon]:
        try:
            return [SyncDaemon(**item) for item in self._field("daemons", [])]
        except (TypeError, ValueError) as exc:
            raise self._bad("daemons", exc) from None

    def connections(self) -> list[Connection]:
        """Read from :meth:`connection_text` as the kernel's text is."""
        from kpctl.core.ipvs_conn import parse_ip_vs_conn

        try:
            return parse_ip_vs_conn(self.connection_text())
        except ValueError as exc:
            raise self._bad("connections", exc) from None

    def connection_text(self) -> str:
        """``connections``: the text of /proc/net/ip_vs_conn (none: no connections)."""
        text = self._field("connections", "")
        if not isinstance(text, str):
            raise self._bad("connections", TypeError(f"the text of /proc/net/ip_vs_conn expected, not "
                                                     f"{type(text).__name__}"))
        return text

    # -- writes: a snapshot is a record, not a kernel -------------------------------------
    def _refuse(self, what: str) -> NoReturn:
        raise InvalidInput(f"{what} changes the kernel and cannot run on snapshot {self.source!r}")

    def add_service(self, svc: VirtualService) -> None:
        self._refuse("adding a service")

    def edit_service(self, svc: VirtualService) -> None:
        self._refuse("editing a service")

    def delete_service(self, key: ServiceKey) -> None:
        self._refuse("deleting a service")

    def add_server(self, key: ServiceKey, server: RealServer) -> None:
        self._refuse("adding a server")

    def edit_server(self, key: ServiceKey, server: RealServer) -> None:
        self._refuse("editing a server")

    def delete_server(self, key: ServiceKey, server: RealServer) -> None:
        self._refuse("deleting a server")

    def flush(self) -> None:
        self._refuse("clearing the table")

    def zero(self, key: ServiceKey | None) -> None:
        self._refuse("zeroing counters")

    def set_timeouts(self, t: Timeouts) -> None:
        self._refuse("setting timeouts")

    def start_daemon(self, d: SyncDaemon) -> None:
        self._refuse("starting a sync daemon")

    def stop_daemon(self, state: str) -> None:
        self._refuse("stopping a sync daemon")

    def execute(self, op: Any) -> None:
        self._refuse("restoring")

    def apply(self, ops: Sequence[Any]) -> None:
        self._refuse("restoring")

    def close(self) -> None:
        pass
