"""Pure-logic test doubles for IPVS: fixture loading and an in-memory backend."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from kpctl.core.ipvs_plan import (
    AddServer, AddService, DeleteServer, DeleteService, EditServer, EditService, Flush, Operation, ZeroCounters,
    TableState, apply_to_state, check, rollback, state_of, undo_step, undo_steps,
)
from kpctl.errors import NotFound
from kpctl.model.ipvs import (
    Connection, IPVSInfo, IPVSTable, RealServer, ServiceKey, SyncDaemon, Timeouts, VirtualService,
)

FIXTURES = Path(__file__).parent / "fixtures" / "ipvs"


def load_table(name: str) -> IPVSTable:
    data = json.loads((FIXTURES / name).read_text())
    return IPVSTable(IPVSInfo(**data["info"]), tuple(VirtualService.from_dict(s) for s in data["services"]))


def table_of(state: TableState, like: IPVSTable) -> IPVSTable:
    """The table a simulated state stands for (with ``like``'s info line)."""
    return IPVSTable(info=like.info, services=tuple(state.values()))


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


class FakeIPVS:
    """An in-memory IPVS table obeying the kernel's exists/not-found rules; records every write."""

    def __init__(self, table: IPVSTable | None = None, fail_at: int | None = None) -> None:
        self._info = (table or IPVSTable(IPVSInfo("1.2.1", 4096))).info
        self.state = state_of(table or IPVSTable(self._info))
        self.calls: list[Operation] = []
        self.fail_at = fail_at  # the index of the write (0-based) that the "kernel" refuses
        self.timeouts_value = Timeouts()
        self.daemon_list: list[SyncDaemon] = []
        self.conns: list[Connection] = []
        self.closed = False

    # reads
    def info(self) -> IPVSInfo:
        return self._info

    def table(self) -> IPVSTable:
        return table_of(self.state, IPVSTable(self._info))

    def service(self, key: ServiceKey) -> VirtualService:
        if key not in self.state:
            raise NotFound(f"service {key} does not exist")
        return self.state[key]

    def timeouts(self) -> Timeouts:
        return self.timeouts_value

    def daemons(self) -> list[SyncDaemon]:
        return list(self.daemon_list)

    def connections(self) -> list[Connection]:
        return list(self.conns)

    # writes
    def execute(self, op: Operation) -> None:
        from kpctl.errors import KernelError

        if self.fail_at is not None and len(self.calls) == self.fail_at:
            self.calls.append(op)
            raise KernelError(f"injected failure at {op.describe()}")
        self.calls.append(op)
        check(self.state, op)
        apply_to_state(self.state, op)

    def add_service(self, svc: VirtualService) -> None:
        self.execute(AddService(svc))

    def edit_service(self, svc: VirtualService) -> None:
        self.execute(EditService(svc))

    def delete_service(self, key: ServiceKey) -> None:
        self.execute(DeleteService(key))

    def add_server(self, key: ServiceKey, server: RealServer) -> None:
        self.execute(AddServer(key, server))

    def edit_server(self, key: ServiceKey, server: RealServer) -> None:
        self.execute(EditServer(key, server))

    def delete_server(self, key: ServiceKey, server: RealServer) -> None:
        self.execute(DeleteServer(key, server))

    def flush(self) -> None:
        self.execute(Flush())

    def zero(self, key: ServiceKey | None) -> None:
        self.execute(ZeroCounters(key))

    def set_timeouts(self, t: Timeouts) -> None:
        self.calls.append(("set_timeouts", t))  # type: ignore[arg-type]
        self.timeouts_value = t

    def start_daemon(self, d: SyncDaemon) -> None:
        self.calls.append(("start_daemon", d))  # type: ignore[arg-type]
        self.daemon_list.append(d)

    def stop_daemon(self, state: str) -> None:
        self.calls.append(("stop_daemon", state))  # type: ignore[arg-type]
        self.daemon_list = [d for d in self.daemon_list if d.state != state]

    def apply(self, ops: Sequence[Operation]) -> None:
        """Run ``ops`` one by one; when one fails, undo the applied ones (newest first) and re-raise:
        what the netlink backend does (its batches aside), with the same plan steps."""
        state = state_of(self.table())
        undo: list[Any] = []
        for op in ops:
            try:
                check(state, op)
                step = undo_step(op, state)
                self.execute(op)
            except BaseException as exc:
                rollback([undo_steps(s) for s in undo], self.execute, exc)
                raise
            undo.append(step)
            apply_to_state(state, op)

    def close(self) -> None:
        self.closed = True


def install(monkeypatch: Any, fake: FakeIPVS) -> list[Any]:
    """Make `open_ipvs` return ``fake``; the returned list records each open (to prove none happened)."""
    import kpctl.backends.ipvs as backend_module

    opened: list[Any] = []

    def open_ipvs(app: Any) -> FakeIPVS:
        opened.append(app)
        return fake

    monkeypatch.setattr(backend_module, "open_ipvs", open_ipvs)
    return opened


def given_fields(model: Any) -> Any:
    """``model`` (RealServer, VirtualService, Stats: NamedTuples) made from the arguments given
    only, for ``st.builds``: given the class itself, builds() draws every field, defaults included."""
    return lambda *args, **kwargs: model(*args, **kwargs)
