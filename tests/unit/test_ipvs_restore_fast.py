"""The restore's fast lanes equal its general ones: the common -S lines read without the option
tokenizer (ipvs_save._CommonLines) give the same operations and plans, and adds packed in batches
straight from their operations (ipvs_netlink._add_packers) the same requests as add_service/add_server
pack them.

Same operations and line numbers from the reader (or the same error), the same plan or
error from the planner, the same request bytes and the same rollback on the wire.
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
from kpctl.core.ipvs_save import parse_restore, parse_rule_line
from kpctl.errors import KpctlError
from kpctl.model.ipvs import IPVSInfo, IPVSTable, RealServer, VirtualService
from tests.unit.ipvs_fakes import given_fields

INFO = IPVSInfo("1.2.1", 4096)

# Tokens close to the fast shapes: canonical and non-canonical addresses, ports and numbers at
# and past their limits, every option the shapes use and a few they do not.
HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.1.1", "0.0.0.0", "255.255.255.255", "010.0.0.1", "10.0.0", "10.0.0.256",
         "1.2.3.4.5", "fd00::1", "[fd00::1]", "a.b.c.d", "10.0.0.1 ", "١٠.0.0.1"]
PORTS = ["80", "0", "65535", "65536", "080", "", "x", "²", "99999999999"]
WEIGHTS = ["1", "0", "65535", "65536", "01", "-1", "", "x", "３"]
SCHEDULERS = ["rr", "wlc", "sh", "RR", "nope", "ipvsadm"]


def _addr(draw: Any) -> str:
    host = draw(st.sampled_from(HOSTS))
    port = draw(st.sampled_from(PORTS))
    return host if draw(st.booleans()) and port == "" else f"{host}:{port}"


@st.composite
def service_line(draw: Any) -> str:
    tokens = ["-A", draw(st.sampled_from(["-t", "-u", "--sctp-service", "-f"])), _addr(draw),
              "-s", draw(st.sampled_from(SCHEDULERS))]
    if draw(st.booleans()):
        tokens += [draw(st.sampled_from(["-p", "-M", "--pe"])), draw(st.sampled_from(["300", "0", "2678401", "x", "1"]))]
    return " ".join(tokens)


@st.composite
def server_line(draw: Any) -> str:
    tokens = [draw(st.sampled_from(["-a", "-a", "-e", "-d"])), draw(st.sampled_from(["-t", "-u", "-t"])), _addr(draw),
              "-r", _addr(draw), draw(st.sampled_from(["-m", "-g", "-i", "-x"])), "-w", draw(st.sampled_from(WEIGHTS))]
    return " ".join(tokens)


lines = st.one_of(service_line(), server_line(), st.sampled_from(["", "# comment", "ipvsadm -A -t 10.0.0.1:80 -s rr",
                                                                  "-C", "-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 1 -x 5"]))


def _general(text: str) -> tuple[list[Any], str | None]:
    """Every line through parse_rule_line (the option tokenizer)."""
    try:
        return [op for number, line in enumerate(text.splitlines(), 1)
                if (op := parse_rule_line(number, line)) is not None], None
    except KpctlError as exc:
        return [], f"{type(exc).__name__}: {exc.message} {exc.hint}"


def _fast(text: str) -> tuple[list[Any], str | None]:
    try:
        return parse_restore(text), None
    except KpctlError as exc:
        return [], f"{type(exc).__name__}: {exc.message} {exc.hint}"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, max_size=12))
def test_the_common_lines_are_read_as_the_option_tokenizer_reads_them(text_lines: list[str]) -> None:
    text = "\n".join(text_lines)
    general, general_error = _general(text)
    fast, fast_error = _fast(text)
    assert fast_error == general_error
    assert fast == general
    assert [op.line for op in fast] == [op.line for op in general]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(lines, st.sampled_from([
    "-a -t 10.0.0.1:80 -r 10.1.1.1:80 -w3 -m", "-a -t 10.0.0.1:80 -r 10.1.1.1:80 -w5 -m",
    "-a -t 10.0.0.1:80 -r 10.1.1.1:80 --weight=4 -g", "-a -t 10.0.0.1:80 -r 10.1.1.1:80 --weight=9 -g",
    "-A --tcp-service 10.0.0.1:80 -s rr", "-A --udp-service 10.0.0.1:80 -s rr",
    "-A -t 10.0.0.1:80 -s rr -p", "-A -t 10.0.0.1:80 -s rr -p 60", "-A -t 10.0.0.1:80 -p -s rr",
    "-A -f 7 -6 -s rr", "-A -6 -f 7 -s rr", "-a -t 10.0.0.1:80 -r 10.1.1.1 -i --tun-type gue --tun-port 6080",
    "-a -t 10.0.0.1:80 -m -r 10.1.1.1:80 -x 10 -y 5", "-a -t 10.0.0.1:80 -r -m -w 1", "-D -t 10.0.0.1:80 -t 10.0.0.2:80",
])), max_size=12))
def test_a_line_reads_the_same_after_lines_of_its_layout(text_lines: list[str]) -> None:
    """The option tokenizer keeps each good line's layout for the lines after it: every line reads as
    it reads with nothing kept (the same operation, or the same error)."""
    from kpctl.core import ipvs_save

    def read(number: int, line: str) -> Any:
        try:
            return parse_rule_line(number, line)
        except KpctlError as exc:
            return f"{type(exc).__name__}: {exc.message} {exc.hint}"

    kept = [read(number, line) for number, line in enumerate(text_lines, 1)]
    alone = []
    for number, line in enumerate(text_lines, 1):
        ipvs_save._LAYOUTS.clear()
        alone.append(read(number, line))
    assert kept == alone


def test_the_lines_ipvsadm_save_writes_take_the_common_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    from kpctl.core import ipvs_save

    text = ("-A -t 10.96.0.1:80 -s rr\n"
            "-a -t 10.96.0.1:80 -r 172.16.0.1:8080 -m -w 1\n"
            "-A -u 10.96.0.10:53 -s wlc -p 10800\n"
            "-a -u 10.96.0.10:53 -r 172.16.0.2:53 -g -w 0\n"
            "-a -u 10.96.0.10:53 -r 172.16.0.3:53 -g -w 0\n")
    general = _general(text)[0]
    monkeypatch.setattr(ipvs_save, "parse_rule_line", lambda *args: pytest.fail("the option tokenizer was used"))
    ops = parse_restore(text)
    assert [type(op) for op in ops] == [AddService, AddServer, AddService, AddServer, AddServer]
    assert ops == general and [op.describe() for op in ops] == [op.describe() for op in general]


def _table(services: list[tuple[str, list[str]]]) -> IPVSTable:
    return IPVSTable(INFO, tuple(
        VirtualService(address=address, port=80, scheduler="rr",
                       servers=tuple(RealServer(address=server, port=80) for server in servers))
        for address, servers in services))


tables = st.lists(st.tuples(st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
                            st.lists(st.sampled_from(["10.1.1.1", "10.1.1.2"]), unique=True)),
                  unique_by=lambda s: s[0], max_size=3).map(_table)
add_lines = st.one_of(
    st.builds("-A -t {}:80 -s rr".format, st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"])),
    st.builds("-a -t {}:80 -r {}:80 -m -w 1".format, st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
              st.sampled_from(["10.1.1.1", "10.1.1.2"])),
    st.just("-A -t 10.0.0.3:80 -s rr -M 255.255.0.0 -p"),  # an add the general parser reads
    st.just("-E -t 10.0.0.1:80 -s wrr"))  # not an add: the whole plan goes the general way


def _plan(current: IPVSTable, ops: list[Any], flush: bool) -> tuple[list[Any], str | None]:
    try:
        return plan_restore(current, ops, flush), None
    except KpctlError as exc:
        return [], f"{type(exc).__name__}: {exc.message}"


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(tables, st.lists(add_lines, max_size=10), st.booleans())
def test_the_plan_of_compact_adds_is_the_general_plan(current: IPVSTable, text_lines: list[str], flush: bool) -> None:
    text = "\n".join(text_lines)
    assert _plan(current, parse_restore(text), flush) == _plan(current, _general(text)[0], flush)


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
        general = _wire(IPVSNetlink, current, plan_restore(current, _general(text)[0], flush), refuse)
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
           given_fields(VirtualService), address=st.just(host[0]), family=st.just(host[1]), protocol=st.sampled_from(["tcp", "udp", "sctp"]),
           port=st.integers(0, 65535), fwmark=st.sampled_from([0, 7]), scheduler=st.sampled_from(["rr", "wlc"]),
           flags=st.sampled_from([0, 1, 2, 3]), timeout=st.integers(0, 10),
           netmask=st.sampled_from([0xFFFFFFFF, 0xFFFF0000, 64]), pe_name=st.sampled_from(["", "sip"]))),
       st.sampled_from([("10.1.1.1", "inet"), ("fd00::2", "inet6")]).flatmap(lambda host: st.builds(
           given_fields(RealServer), address=st.just(host[0]), family=st.just(host[1]), port=st.integers(0, 65535),
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


def test_a_number_too_long_for_int_is_left_to_the_option_tokenizer() -> None:
    text = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w " + "1" * 5000 + "\n"
    assert _fast(text) == _general(text) == ([], "InvalidInput: line 2: invalid weight '" + "1" * 5000
                                                 + "': must be a number 0..65535 None")
