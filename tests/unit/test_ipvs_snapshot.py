"""The snapshot IPVS backend: reads the `ipvs` section, refuses every write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kpctl.backends.ipvs import open_ipvs
from kpctl.backends.ipvs_snapshot import IPVSSnapshot
from kpctl.errors import InvalidInput, NotFound
from kpctl.model.ipvs import (
    Connection,
    IPVSInfo,
    RealServer,
    ServiceKey,
    SyncDaemon,
    Timeouts,
    VirtualService,
)
from kpctl.model.snapshot import NodeSnapshot

SERVICE = VirtualService("inet", "tcp", "10.254.0.1", 443, scheduler="rr",
                         servers=(RealServer("10.0.0.2", 8443, weight=3),))
CONNECTION = Connection("tcp", "10.0.0.1", 5000, "10.254.0.1", 443, "10.0.0.2", 8443, "ESTABLISHED", 899)
SECTION: dict[str, Any] = {
    "info": {"version": "1.2.1", "conn_table_size": 4096},
    "services": [SERVICE.to_dict()],
    "timeouts": {"tcp": 900, "tcp_fin": 120, "udp": 300},
    "daemons": [SyncDaemon("master", "eth0", 3).to_dict()],
    "connections": [CONNECTION.to_dict()],
}


@dataclass
class FakeApp:
    snap: NodeSnapshot | None

    def snapshot(self) -> NodeSnapshot | None:
        return self.snap


def backend() -> Any:
    return open_ipvs(FakeApp(NodeSnapshot(1, {"ipvs": SECTION}, "node.json")))


def test_reads_come_from_the_section() -> None:
    ipvs = backend()
    assert isinstance(ipvs, IPVSSnapshot)
    table = ipvs.table()
    assert table.info == IPVSInfo("1.2.1", 4096)
    assert table.services == (SERVICE,)
    assert ipvs.service(SERVICE.key) == SERVICE
    assert ipvs.timeouts() == Timeouts(900, 120, 300)
    assert ipvs.daemons() == [SyncDaemon("master", "eth0", 3)]
    assert ipvs.connections() == [CONNECTION]


def test_missing_service_and_missing_section() -> None:
    with pytest.raises(NotFound, match="10.254.0.9:80/tcp"):
        backend().service(ServiceKey("inet", "tcp", "10.254.0.9", 80))
    with pytest.raises(NotFound, match="no ipvs section"):
        open_ipvs(FakeApp(NodeSnapshot(1, {}, "empty.json")))


@pytest.mark.parametrize("call", [
    lambda b: b.add_service(SERVICE), lambda b: b.edit_service(SERVICE), lambda b: b.delete_service(SERVICE.key),
    lambda b: b.add_server(SERVICE.key, SERVICE.servers[0]), lambda b: b.flush(), lambda b: b.zero(None),
    lambda b: b.set_timeouts(Timeouts()), lambda b: b.start_daemon(SyncDaemon("master")),
    lambda b: b.stop_daemon("master"), lambda b: b.apply([]),
])
def test_writes_are_refused(call: Any) -> None:
    with pytest.raises(InvalidInput, match="node.json"):
        call(backend())


def test_live_backend_is_chosen_without_a_snapshot_and_opens_nothing_yet() -> None:
    from kpctl.backends.ipvs_netlink import IPVSNetlink

    ipvs = open_ipvs(FakeApp(None))
    assert isinstance(ipvs, IPVSNetlink)
    ipvs.close()
