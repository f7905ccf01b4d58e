"""kpctl's one IPVS request encoder packs every operation byte for byte as the independent pyroute2
reference (tests/unit/ipvs_pyroute2.py) does."""

from __future__ import annotations

import pytest

from kpctl.backends import ipvs_codec as codec
from kpctl.backends.ipvs_netlink import IPVSNetlink
from kpctl.core.ipvs_plan import (
    AddServer,
    AddService,
    DeleteServer,
    DeleteService,
    EditServer,
    EditService,
    Flush,
    ZeroCounters,
)
from kpctl.model.ipvs import RealServer, SyncDaemon, VirtualService
from tests.unit.ipvs_pyroute2 import reference_encode, reference_request

SERVICES = [
    VirtualService(family="inet", protocol="tcp", address="10.0.0.1", port=80, scheduler="rr"),
    VirtualService(family="inet", protocol="udp", address="10.0.0.2", port=53, scheduler="wrr", flags=1,
                   timeout=300, netmask=0xFFFFFF00, pe_name="sip"),
    VirtualService(family="inet", protocol="sctp", address="10.0.0.3", port=9, scheduler="mh", flags=0x30),
    VirtualService(family="inet6", protocol="tcp", address="2001:db8::1", port=443, scheduler="sh", netmask=64),
    VirtualService(family="inet", fwmark=42, scheduler="lc"),
]
SERVERS = [
    RealServer(address="10.1.1.1", port=8080),
    RealServer(address="10.1.1.2", port=0, forward="route", weight=0, upper_threshold=100, lower_threshold=10),
    RealServer(address="2001:db8::2", port=8443, family="inet6", forward="local", weight=65535),
    RealServer(address="10.1.1.3", port=80, forward="tunnel", tun_type="gue", tun_port=6080, tun_flags=3),
]


def operations() -> list[object]:
    ops: list[object] = [Flush()]
    for svc in SERVICES:
        ops += [AddService(svc), EditService(svc), DeleteService(svc.key), ZeroCounters(svc.key)]
        for server in SERVERS:
            ops += [AddServer(svc.key, server), EditServer(svc.key, server), DeleteServer(svc.key, server)]
    return ops + [ZeroCounters(None)]


def recorded(ops: list[object]) -> list[tuple[int, list[tuple[str, object]]]]:
    backend = IPVSNetlink()
    backend._pending = []
    for op in ops:
        backend.execute(op)
    return [(cmd, attrs) for cmd, attrs, _what, _errors in backend._pending]


@pytest.mark.parametrize("index", range(len(operations())))
def test_every_operation_is_packed_as_the_reference_packs_it(index: int) -> None:
    op = operations()[index]
    ((cmd, attrs),) = recorded([op])
    reference_cmd, reference_attrs = reference_request(op)
    assert cmd == reference_cmd
    assert codec.encode(cmd, attrs, 0x21, 0x5, 1000 + index) == reference_encode(cmd, reference_attrs, 0x21, 0x5,
                                                                                   1000 + index)


@pytest.mark.parametrize("daemon", [
    SyncDaemon("master", "eth0", syncid=3, sync_maxlen=1400, mcast_group="224.0.0.81", mcast_port=8848, mcast_ttl=2),
    SyncDaemon("backup", "eth1", mcast_group="ff02::1:2"),
])
def test_daemon_requests_are_packed_as_the_reference_packs_them(daemon: SyncDaemon) -> None:
    attrs = [("IPVS_CMD_ATTR_DAEMON", codec.daemon_attrs(daemon))]
    assert codec.encode(9, attrs, 0x21, 0x5, 3) == reference_encode(9, attrs, 0x21, 0x5, 3)
