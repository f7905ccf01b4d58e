"""The snapshot IPVS backend: reads the `ipvs` section, refuses every write."""

from __future__ import annotations

import json
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
from tests.cli_helpers import kpctl

SERVICE = VirtualService("inet", "tcp", "10.254.0.1", 443, scheduler="rr",
                         servers=(RealServer("10.0.0.2", 8443, weight=3),))
CONNECTION = Connection("TCP", "10.0.0.1", 5000, "10.254.0.1", 443, "10.0.0.2", 8443, "ESTABLISHED", 899)
CONNECTIONS = ("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
               "TCP 0A000001 1388 0AFE0001 01BB 0A000002 20FB ESTABLISHED    899\n")  # /proc/net/ip_vs_conn
SECTION: dict[str, Any] = {
    "info": {"version": "1.2.1", "conn_table_size": 4096},
    "services": [SERVICE.to_dict()],
    "timeouts": {"tcp": 900, "tcp_fin": 120, "udp": 300},
    "daemons": [SyncDaemon("master", "eth0", 3).to_dict()],
    "connections": CONNECTIONS,
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


def test_one_service_is_made_from_its_record_alone() -> None:
    # same port, other address or family or protocol; a fwmark service; a record no table could be made of
    others = [SERVICE._replace(address="10.254.0.2").to_dict(), SERVICE._replace(protocol="udp").to_dict(),
              VirtualService("inet6", "tcp", "fd00::1", 443).to_dict(),
              VirtualService("inet", None, None, 0, fwmark=443).to_dict(), {"port": 8080, "servers": [{"port": 1}]}]
    ipvs = IPVSSnapshot({**SECTION, "services": [*others, SERVICE.to_dict()]}, "node.json")
    assert ipvs.service(SERVICE.key) == SERVICE
    assert ipvs.service(ServiceKey("inet", None, None, 0, 443)).fwmark == 443
    assert ipvs.info() == IPVSInfo("1.2.1", 4096)
    with pytest.raises(NotFound, match="10.254.0.9:443/tcp does not exist in snapshot 'node.json'"):
        ipvs.service(ServiceKey("inet", "tcp", "10.254.0.9", 443))
    with pytest.raises(InvalidInput, match="bad ipvs services"):
        ipvs.table()


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


def _snapshot_file(tmp_path: Any, connections: Any) -> str:
    path = tmp_path / "node.json"
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1,
                                "ipvs": {**SECTION, "connections": connections}}, indent=2))
    return str(path)


def test_snapshot_connections_are_listed_as_from_the_kernel(tmp_path: Any) -> None:
    text = CONNECTIONS + ("UDP fd00:0000:0000:0000:0000:0000:0000:0009 D431 fd00:0000:0000:0000:0000:0000:0000:0010 "
                          "0035 0A000003 0035 UDP             61\n")
    outcome = kpctl("--snapshot", _snapshot_file(tmp_path, text), "ipvs", "connections", "-o", "ipvsadm")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[2:] == [
        "TCP 14:59  ESTABLISHED 10.0.0.1:5000      10.254.0.1:443     10.0.0.2:8443",
        "UDP 01:01  UDP         [fd00::9]:54321    [fd00::10]:53      10.0.0.3:53",
    ]
    by_server = kpctl("--snapshot", _snapshot_file(tmp_path, text), "ipvs", "connections", "--server", "10.0.0.3",
                      "-o", "json")
    assert [c["client_address"] for c in json.loads(by_server.stdout)] == ["fd00::9"]


@pytest.mark.parametrize("connections, named", [
    ([CONNECTION.to_dict()], "not list"),
    (CONNECTIONS.replace("0A000002", "0A0000"), "0A0000"),
    (CONNECTIONS.replace("01BB", "01BX"), "01BX"),
])
def test_bad_snapshot_connections_are_one_line_errors(tmp_path: Any, connections: Any, named: str) -> None:
    outcome = kpctl("--snapshot", _snapshot_file(tmp_path, connections), "ipvs", "connections")
    assert outcome.exit_code == 2 and outcome.stdout == ""
    (line,) = outcome.stderr.strip().splitlines()
    assert line.startswith("kpctl: error: snapshot") and "bad ipvs connections" in line and named in line, line
