"""The restore's adds packed in batches straight from their operations (ipvs_netlink._add_packers)
equal what add_service/add_server pack: the same request bytes and the same rollback on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpctl.backends import ipvs_codec as codec
from kpctl.backends import ipvs_netlink
from kpctl.backends.ipvs_netlink import IPVSNetlink
from kpctl.core.ipvs_plan import AddServer, AddService, Flush, plan_restore
from kpctl.core.ipvs_save import parse_restore
from kpctl.errors import KpctlError
from kpctl.model.ipvs import IPVSInfo, IPVSTable, RealServer, VirtualService

INFO = IPVSInfo("1.2.1", 4096)


def _table(services: list[tuple[str, list[str]]]) -> IPVSTable:
    return IPVSTable(INFO, tuple(
        VirtualService(address=address, port=80, scheduler="rr",
                       servers=tuple(RealServer(address=server, port=80) for server in servers))
        for address, servers in services))


# -- the wire -------------------------------------------------------------------------------

class FakeGenl:
    """Records every request; refuses the request number ``refuse`` (0-based) with ``code``."""

    family_id = 0x21

    def __init__(self, refuse: int | None = None, code: int = 17) -> None:
        self._seq = 0
        self.requests: list[bytes] = []
        self.refuse, self.code = refuse, code

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _split(self, data: bytes) -> list[bytes]:
        out, offset = [], 0
        while offset < len(data):
            length = int.from_bytes(data[offset:offset + 4], "little")
            out.append(data[offset:offset + length])
            offset += length
        return out

    def send_batch(self, data: bytes, seqs: list[int]) -> dict[int, int]:
        codes = {}
        for seq, request in zip(seqs, self._split(data)):
            codes[seq] = self.code if len(self.requests) == self.refuse else 0
            self.requests.append(request)
        return codes

    def send_encoded(self, data: bytes, seq: int) -> list[bytes]:
        self.requests.append(data)
        return []

    def close(self) -> None:
        pass


class Watched(IPVSNetlink):
    """add_service/add_server replaced: every operation goes through them (the general path)."""

    def add_service(self, svc: VirtualService) -> None:
        super().add_service(svc)

    def add_server(self, key: Any, server: RealServer) -> None:
        super().add_server(key, server)


def _wire(cls: type[IPVSNetlink], current: IPVSTable, ops: list[Any], refuse: int | None = None
          ) -> tuple[list[bytes], str | None]:
    backend = cls()
    backend._genl = FakeGenl(refuse)  # type: ignore[assignment]
    backend.table = lambda: current  # type: ignore[method-assign]
    try:
        backend.apply(ops)
    except KpctlError as exc:
        return backend._genl.requests, exc.message  # type: ignore[attr-defined]
    return backend._genl.requests, None  # type: ignore[attr-defined]


def _requests(current: IPVSTable, text: str, flush: bool, refuse: int | None) -> list[Any]:
    """The packed adds' requests equal those recorded through execute (same batches: a refusal undoes
    the same), and those of the methods, op by op through add_service/add_server, tracked on the
    simulated table."""
    fast = _wire(IPVSNetlink, current, plan_restore(current, parse_restore(text), flush), refuse)
    with pytest.MonkeyPatch.context() as patch:  # nothing packed: every add through execute and encode
        patch.setattr(ipvs_netlink, "_add_packers", lambda family, flags: {})
        general = _wire(IPVSNetlink, current, plan_restore(current, parse_restore(text), flush), refuse)
    assert fast == general
    if refuse is None:
        assert _wire(Watched, current, plan_restore(current, parse_restore(text), flush)) == fast
    return fast[0]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 150), st.integers(0, 6), st.booleans(), st.none() | st.integers(0, 400))
def test_the_same_requests_and_rollback_go_to_the_kernel(services: int, servers: int, flush: bool,
                                                         refuse: int | None) -> None:
    lines = []
    for i in range(services):
        lines.append(f"-A -{'tu'[i % 2]} 10.96.{i >> 8}.{i & 255}:{80 + i % 3} -s {['rr', 'wlc'][i % 2]}"
                     + (" -p 300" if i % 7 == 3 else ""))
        lines += [f"-a -{'tu'[i % 2]} 10.96.{i >> 8}.{i & 255}:{80 + i % 3} -r 172.16.{i & 255}.{j}:8080 "
                  f"-{'mg'[j % 2]} -w {j}" for j in range(servers)]
    current = _table([("10.0.0.1", ["10.1.1.1"])])
    _requests(current, "\n".join(lines), flush, refuse)


def test_a_refused_add_is_reported_as_the_general_path_reports_it_and_everything_is_undone() -> None:
    text = "-A -t 10.96.0.1:80 -s rr\n-a -t 10.96.0.1:80 -r 172.16.0.1:8080 -m -w 1\n" \
           "-a -t 10.96.0.1:80 -r 172.16.0.2:8080 -m -w 1\n"
    current = IPVSTable(INFO)
    requests, message = _wire(IPVSNetlink, current, plan_restore(current, parse_restore(text)), refuse=2)
    assert message == "server 172.16.0.2:8080 already exists in service 10.96.0.1:80/tcp"
    assert len(requests) == 3 + 2  # the three adds, then: delete the first server, delete the service


@given(st.sampled_from([("10.0.0.1", "inet"), ("fd00::1", "inet6")]).flatmap(lambda host: st.builds(
           VirtualService, address=st.just(host[0]), family=st.just(host[1]), protocol=st.sampled_from(["tcp", "udp", "sctp"]),
           port=st.integers(0, 65535), fwmark=st.sampled_from([0, 7]), scheduler=st.sampled_from(["rr", "wlc"]),
           flags=st.sampled_from([0, 1, 2, 3]), timeout=st.integers(0, 10),
           netmask=st.sampled_from([0xFFFFFFFF, 0xFFFF0000, 64]), pe_name=st.sampled_from(["", "sip"]))),
       st.sampled_from([("10.1.1.1", "inet"), ("fd00::2", "inet6")]).flatmap(lambda host: st.builds(
           RealServer, address=st.just(host[0]), family=st.just(host[1]), port=st.integers(0, 65535),
           forward=st.sampled_from(["masq", "route", "tunnel", "local"]), weight=st.integers(0, 65535),
           upper_threshold=st.integers(0, 9), lower_threshold=st.integers(0, 9))))
def test_any_add_is_packed_in_a_batch_as_add_service_and_add_server_pack_it(service: VirtualService,
                                                                             server: RealServer) -> None:
    if service.fwmark:
        service = VirtualService(family=service.family, protocol=None, fwmark=service.fwmark, scheduler="rr")
    if server.family != service.family and server.forward != "tunnel":
        server = RealServer(address="10.1.1.1" if service.family == "inet" else "fd00::2", port=server.port,
                            family=service.family, forward=server.forward, weight=server.weight)
    packers = ipvs_netlink._add_packers(0x21, 5)
    for op in (AddService(service), AddServer(service.key, server)):
        backend = IPVSNetlink()
        backend._pending = []
        backend.execute(op)
        ((cmd, attrs, _what, _errors),) = backend._pending
        assert packers[type(op)](op, 9) == codec.encode(cmd, attrs, 0x21, 5, 9)


def test_a_flush_before_compact_adds_is_undone_by_rebuilding_the_old_table() -> None:
    current = _table([("10.0.0.1", ["10.1.1.1", "10.1.1.2"])])
    plan = plan_restore(current, parse_restore("-A -t 10.0.0.2:80 -s rr\n"), flush=True)
    assert isinstance(plan[0], Flush)
    requests = _requests(current, "-A -t 10.0.0.2:80 -s rr\n", True, refuse=1)
    assert len(requests) == 2 + 3  # flush, the add; then the old service and its two servers
    assert [type(op) for op in plan[1:]] == [AddService]
