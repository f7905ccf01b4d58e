"""Restore plans: up-front checks, inverses, and rollback when the kernel refuses step k."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.core.ipvs_plan import (
    AddServer, AddService, DeleteServer, DeleteService, EditServer, EditService, Flush, Operation, ZeroCounters,
    apply_to_state, check, inverse, plan_restore, state_of,
)
from kpctl.core.ipvs_save import parse_restore
from kpctl.core.ipvsadm_list import format_save
from kpctl.errors import AlreadyExists, KernelError, NotFound
from kpctl.model.ipvs import IPVSTable, RealServer, ServiceKey, Stats, VirtualService
from tests.unit.ipvs_fakes import FakeIPVS, given_fields, load_table

KEY = ServiceKey("inet", "tcp", "10.254.0.1", 443)
SERVER = RealServer("172.30.1.5", 6443, forward="masq", weight=1)


def _table() -> IPVSTable:
    return load_table("node_table.json")


@pytest.mark.parametrize("text, error, message", [
    ("-A -t 10.254.0.1:443 -s rr", AlreadyExists, "line 1: service 10.254.0.1:443/tcp already exists"),
    ("-E -t 10.9.9.9:1 -s rr", NotFound, "line 1: service 10.9.9.9:1/tcp does not exist"),
    ("-D -t 10.9.9.9:1", NotFound, "line 1: service 10.9.9.9:1/tcp does not exist"),
    ("-a -t 10.9.9.9:1 -r 10.0.0.1 -m", NotFound, "line 1: service 10.9.9.9:1/tcp does not exist"),
    ("-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m", AlreadyExists,
     "line 1: server 172.30.1.5:6443 already exists in service 10.254.0.1:443/tcp"),
    ("-e -t 10.254.0.1:443 -r 172.30.1.6:6443 -m", NotFound, "line 1: server 172.30.1.6:6443 does not exist"),
    ("-d -t 10.254.0.1:443 -r 172.30.1.6:6443", NotFound, "line 1: server 172.30.1.6:6443 does not exist"),
    ("-Z -t 10.9.9.9:1", NotFound, "line 1: service 10.9.9.9:1/tcp does not exist"),
    # conflicts inside the input itself
    ("-A -t 10.1.1.1:80\n-A -t 10.1.1.1:80", AlreadyExists, "line 2: service 10.1.1.1:80/tcp already exists"),
    ("-A -t 10.1.1.1:80\n-D -t 10.1.1.1:80\n-a -t 10.1.1.1:80 -r 10.0.0.1", NotFound, "line 3: service"),
    ("-A -t 10.1.1.1:80\n-a -t 10.1.1.1:80 -r 10.0.0.1\n-a -t 10.1.1.1:80 -r 10.0.0.1:80 -w 5", AlreadyExists,
     "line 3: server 10.0.0.1:80 already exists"),
])
def test_plan_rejects_before_anything_applies(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        plan_restore(_table(), parse_restore(text))
    assert str(info.value).startswith(message)


def test_plan_with_flush_checks_against_an_empty_table() -> None:
    ops = parse_restore("-A -t 10.254.0.1:443 -s rr\n-a -t 10.254.0.1:443 -r 10.0.0.1 -m\n")
    plan = plan_restore(_table(), ops, flush=True)
    assert isinstance(plan[0], Flush) and plan[1:] == ops
    assert plan_restore(IPVSTable(_table().info), ops, flush=True) == ops  # nothing to flush
    with pytest.raises(NotFound):
        plan_restore(_table(), parse_restore("-D -t 10.254.0.1:443"), flush=True)


def test_clear_line_inside_input_empties_the_model() -> None:
    ops = parse_restore("-C\n-A -t 10.254.0.1:443 -s rr\n")
    assert plan_restore(_table(), ops) == ops


def _every_op_kind(table: IPVSTable) -> list[Operation]:
    udp = ServiceKey("inet", "udp", "10.254.0.2", 53)
    new_service = VirtualService(address="10.99.0.1", port=80, scheduler="rr")
    return [
        AddService(new_service),
        AddServer(new_service.key, RealServer("10.0.0.1", 80, forward="masq")),
        EditService(VirtualService(protocol="udp", address="10.254.0.2", port=53, scheduler="lc")),
        EditServer(udp, RealServer("172.30.2.3", 53, forward="masq", weight=9)),
        DeleteServer(KEY, SERVER),
        ZeroCounters(None),
        DeleteService(udp),
        Flush(),
        AddService(VirtualService(address="10.98.0.1", port=80, scheduler="sh")),
    ]


def _canonical(state: dict[ServiceKey, VirtualService]) -> dict[ServiceKey, tuple[VirtualService, frozenset[RealServer]]]:
    return {key: (service.with_servers(()), frozenset(service.servers)) for key, service in state.items()}


@pytest.mark.parametrize("op_index", range(9))
def test_inverse_undoes_each_kind(op_index: int) -> None:
    table = _table()
    state = state_of(table)
    ops = _every_op_kind(table)
    for op in ops[:op_index]:
        apply_to_state(state, op)
    before = _canonical(state)
    op = ops[op_index]
    undo = inverse(op, state)
    check(state, op)
    apply_to_state(state, op)
    for step in undo:
        check(state, step)
        apply_to_state(state, step)
    assert _canonical(state) == before


@pytest.mark.parametrize("fail_at", range(9))
def test_rollback_restores_the_table_exactly_when_step_k_fails(fail_at: int) -> None:
    table = _table()
    fake = FakeIPVS(table, fail_at=fail_at)
    before = format_save(fake.table())
    ops = _every_op_kind(table)
    with pytest.raises(KernelError, match="injected failure"):
        fake.apply(ops)
    assert format_save(fake.table()) == before
    # the undo ran newest first: the calls after the failing one mirror the applied ones
    assert fake.calls[fail_at] == ops[fail_at]
    assert len(fake.calls) > fail_at


def test_no_failure_applies_everything_once() -> None:
    table = _table()
    fake = FakeIPVS(table)
    ops = _every_op_kind(table)
    fake.apply(ops)
    assert fake.calls == ops
    assert [str(k) for k in fake.state] == ["10.98.0.1:80/tcp"]


def test_undo_order_is_reverse_of_apply() -> None:
    fake = FakeIPVS(IPVSTable(_table().info), fail_at=3)
    ops = parse_restore("-A -t 10.1.0.1:80 -s rr\n-a -t 10.1.0.1:80 -r 10.2.0.1 -m\n"
                        "-A -t 10.1.0.2:80 -s rr\n-A -t 10.1.0.3:80 -s rr\n")
    with pytest.raises(KernelError):
        fake.apply(ops)
    undo = [op.describe() for op in fake.calls[4:]]
    assert undo == ["-D -t 10.1.0.2:80", "-d -t 10.1.0.1:80 -r 10.2.0.1:80", "-D -t 10.1.0.1:80"]
    assert fake.state == {}


def test_failed_undo_is_reported_and_the_rest_still_undone() -> None:
    class Flaky(FakeIPVS):
        def execute(self, op: Operation) -> None:
            if isinstance(op, DeleteService) and op.key.address == "10.1.0.2":
                self.calls.append(op)
                raise KernelError("busy")
            super().execute(op)

    fake = Flaky(IPVSTable(_table().info), fail_at=3)
    ops = parse_restore("-A -t 10.1.0.1:80 -s rr\n-A -t 10.1.0.2:80 -s rr\n-A -t 10.1.0.3:80 -s rr\n"
                        "-A -t 10.1.0.4:80 -s rr\n")
    with pytest.raises(KernelError) as info:
        fake.apply(ops)
    assert "rollback incomplete: 1 undo step(s) failed, first: -D -t 10.1.0.2:80: busy" in str(info.value)
    assert [str(k) for k in fake.state] == ["10.1.0.2:80/tcp"]


def test_an_unplanned_conflict_part_way_also_rolls_back() -> None:
    fake = FakeIPVS(IPVSTable(_table().info))
    ops = parse_restore("-A -t 10.1.0.1:80 -s rr\n-A -t 10.1.0.2:80 -s rr\n-A -t 10.1.0.1:80 -s rr\n")
    with pytest.raises(AlreadyExists, match="line 3"):
        fake.apply(ops)
    assert fake.state == {}


# -- the simulated table against the plainest model of it ---------------------------------------

def _reference(services: list[VirtualService], op: Operation) -> tuple[list[VirtualService], str | None]:
    """``op`` on a list of services, each server found by walking the list: the table after it, or
    the error ipvsadm's kernel gives (NotFound/AlreadyExists), the list unchanged."""
    keys = [service.key for service in services]
    key = getattr(op, "key", None)
    where = keys.index(key) if key in keys else -1
    if isinstance(op, Flush):
        return [], None
    if isinstance(op, AddService):
        if where >= 0:
            return services, "AlreadyExists"
        return services + [op.service.with_servers(())], None
    if where < 0:
        return services, None if isinstance(op, ZeroCounters) and key is None else "NotFound"
    service = services[where]
    if isinstance(op, EditService):
        changed = op.service._replace(servers=service.servers, stats=service.stats)
        return services[:where] + [changed] + services[where + 1:], None
    if isinstance(op, DeleteService):
        return services[:where] + services[where + 1:], None
    if isinstance(op, ZeroCounters):
        return services, None
    servers = list(service.servers)
    found = [index for index, server in enumerate(servers) if server.key == op.server.key]
    if isinstance(op, AddServer):
        if found:
            return services, "AlreadyExists"
        servers.append(op.server)
    elif not found:
        return services, "NotFound"
    elif isinstance(op, EditServer):
        servers[found[0]] = op.server
    else:
        del servers[found[0]]
    return services[:where] + [service.with_servers(tuple(servers))] + services[where + 1:], None


_ADDRESSES = st.sampled_from(["10.0.0.1", "10.0.0.2", "10.0.0.3"])
_SERVERS = st.builds(given_fields(RealServer), st.sampled_from(["10.1.1.1", "10.1.1.2", "10.1.1.3"]), st.sampled_from([80, 81]),
                     weight=st.integers(0, 3))
_SERVICES = st.builds(given_fields(VirtualService), address=_ADDRESSES, port=st.just(80), scheduler=st.sampled_from(["rr", "wlc"]),
                      servers=st.lists(_SERVERS, unique_by=lambda s: s.key, max_size=3).map(tuple),
                      stats=st.builds(given_fields(Stats), conns=st.integers(0, 2)))
_KEYS = _ADDRESSES.map(lambda address: ServiceKey("inet", "tcp", address, 80))
_OPS = st.one_of(
    st.builds(AddService, _SERVICES), st.builds(EditService, _SERVICES), st.builds(DeleteService, _KEYS),
    st.builds(AddServer, _KEYS, _SERVERS), st.builds(EditServer, _KEYS, _SERVERS),
    st.builds(DeleteServer, _KEYS, _SERVERS), st.builds(ZeroCounters, st.none() | _KEYS), st.just(Flush()))


@settings(max_examples=400, deadline=None)
@given(st.lists(_SERVICES, unique_by=lambda s: s.key, max_size=3), st.lists(_OPS, max_size=25))
def test_the_simulated_table_changes_as_a_list_of_services_does(start: list[VirtualService], ops: list[Operation]
                                                                ) -> None:
    state, expected = state_of(IPVSTable(_table().info, tuple(start))), list(start)
    for op in ops:
        expected, error = _reference(expected, op)
        try:
            check(state, op)
        except (NotFound, AlreadyExists) as exc:
            assert type(exc).__name__ == error
            continue
        assert error is None
        undo = inverse(op, state)
        before = list(state.values())
        apply_to_state(state, op)
        assert list(state.values()) == expected
        assert list(state) == [service.key for service in expected] and len(state) == len(expected)
        undone = state_of(IPVSTable(_table().info, tuple(list(state.values()))))
        for step in undo:
            check(undone, step)
            apply_to_state(undone, step)
        assert _canonical(dict(undone.items())) == _canonical(dict(zip([s.key for s in before], before)))
