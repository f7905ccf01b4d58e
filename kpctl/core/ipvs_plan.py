"""Restore plans for the IPVS table: operations, up-front validation, inverses, rollback.

``ipvsadm -R`` makes one kernel call per line, keeps going after errors and leaves
partial state.  kpctl instead checks the whole input against a model of the table
first (:func:`plan_restore`), then applies it with :func:`apply_with_rollback`,
which undoes what it applied if a kernel call fails part way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Union
from collections.abc import Callable, Iterable, Sequence

from kpctl.core.ipvsadm_list import server_address, server_rule, service_option, service_rule
from kpctl.errors import AlreadyExists, KpctlError, NotFound
from kpctl.model.ipvs import IPVSTable, RealServer, ServiceKey, VirtualService


@dataclass(frozen=True)
class AddService:
    service: VirtualService  # its servers are ignored; AddServer adds them
    line: int = field(default=0, compare=False)
    adds_service = True  # not a field: marks the adds that AddsTracker checks

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    def describe(self) -> str:

        return service_rule(self.service, "-A")


@dataclass(frozen=True)
class EditService:
    service: VirtualService  # replaces every service parameter (ipvsadm -E semantics)
    line: int = field(default=0, compare=False)

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    def describe(self) -> str:

        return service_rule(self.service, "-E")


@dataclass(frozen=True)
class DeleteService:
    key: ServiceKey
    line: int = field(default=0, compare=False)

    def describe(self) -> str:

        return f"-D {service_option(self.key)}"


@dataclass(frozen=True)
class AddServer:
    key: ServiceKey
    server: RealServer
    line: int = field(default=0, compare=False)
    adds_service = False  # not a field (see AddService)

    @property
    def server_key(self) -> tuple[str, int]:
        return self.server.key

    def describe(self) -> str:

        return server_rule(self.key, self.server, "-a")


@dataclass(frozen=True)
class EditServer:
    key: ServiceKey
    server: RealServer  # replaces every server parameter (ipvsadm -e semantics)
    line: int = field(default=0, compare=False)

    def describe(self) -> str:

        return server_rule(self.key, self.server, "-e")


@dataclass(frozen=True)
class DeleteServer:
    key: ServiceKey
    server: RealServer  # only address and port matter
    line: int = field(default=0, compare=False)

    def describe(self) -> str:

        return f"-d {service_option(self.key)} -r {server_address(self.server)}"


@dataclass(frozen=True)
class Flush:
    line: int = field(default=0, compare=False)

    def describe(self) -> str:
        return "-C"


@dataclass(frozen=True)
class ZeroCounters:
    key: ServiceKey | None = None  # None: every service
    line: int = field(default=0, compare=False)

    def describe(self) -> str:

        return "-Z" if self.key is None else f"-Z {service_option(self.key)}"


Operation = Union[AddService, EditService, DeleteService, AddServer, EditServer, DeleteServer, Flush, ZeroCounters]

# The simulated table: services by key, in insertion order, each with its servers.
TableState = dict[ServiceKey, VirtualService]


def state_of(table: IPVSTable) -> TableState:
    return {service.key: service for service in table.services}


def table_of(state: TableState, like: IPVSTable) -> IPVSTable:
    return IPVSTable(info=like.info, services=tuple(state.values()))


def _where(op: Operation) -> str:
    return f"line {op.line}: " if op.line else ""


def _server_index(service: VirtualService, server: RealServer) -> int:
    for index, existing in enumerate(service.servers):
        if existing.key == server.key:
            return index
    return -1


def _server_name(server: RealServer) -> str:

    return server_address(server)


def check(state: TableState, op: Operation) -> None:
    """Raise NotFound/AlreadyExists if ``op`` cannot apply to ``state``."""
    where = _where(op)
    if isinstance(op, AddService):
        if op.key in state:
            raise AlreadyExists(f"{where}service {op.key} already exists")
    elif isinstance(op, (EditService, DeleteService)):
        if op.key not in state:
            raise NotFound(f"{where}service {op.key} does not exist")
    elif isinstance(op, (AddServer, EditServer, DeleteServer)):
        service = state.get(op.key)
        if service is None:
            raise NotFound(f"{where}service {op.key} does not exist")
        present = _server_index(service, op.server) >= 0
        if isinstance(op, AddServer) and present:
            raise AlreadyExists(f"{where}server {_server_name(op.server)} already exists in service {op.key}")
        if not isinstance(op, AddServer) and not present:
            raise NotFound(f"{where}server {_server_name(op.server)} does not exist in service {op.key}")
    elif isinstance(op, ZeroCounters):
        if op.key is not None and op.key not in state:
            raise NotFound(f"{where}service {op.key} does not exist")


def apply_to_state(state: TableState, op: Operation) -> None:
    """Change the simulated ``state`` as the kernel would for ``op`` (assumes :func:`check` passed)."""
    if isinstance(op, AddService):
        state[op.key] = replace(op.service, servers=())
    elif isinstance(op, EditService):
        old = state[op.key]
        state[op.key] = replace(op.service, servers=old.servers, stats=old.stats)
    elif isinstance(op, DeleteService):
        del state[op.key]
    elif isinstance(op, Flush):
        state.clear()
    elif isinstance(op, (AddServer, EditServer, DeleteServer)):
        service = state[op.key]
        servers = list(service.servers)
        index = _server_index(service, op.server)
        if isinstance(op, AddServer):
            servers.append(op.server)
        elif isinstance(op, EditServer):
            servers[index] = op.server
        else:
            del servers[index]
        state[op.key] = service.with_servers(tuple(servers))


def rebuild(services: Iterable[VirtualService]) -> list[Operation]:
    """The operations that re-create ``services`` with their servers in an empty table."""
    ops: list[Operation] = []
    for service in services:
        ops.append(AddService(replace(service, servers=())))
        ops.extend(AddServer(service.key, server) for server in service.servers)
    return ops


def inverse(op: Operation, state: TableState) -> list[Operation]:
    """The operations that undo ``op`` when applied right after it to a table that was ``state``.

    Counters cannot be restored, so the inverse of :class:`ZeroCounters` is empty.
    """
    if isinstance(op, AddService):
        return [DeleteService(op.key)]
    if isinstance(op, EditService):
        return [EditService(replace(state[op.key], servers=()))]
    if isinstance(op, DeleteService):
        return rebuild([state[op.key]])
    if isinstance(op, Flush):
        return rebuild(state.values())
    if isinstance(op, AddServer):
        return [DeleteServer(op.key, op.server)]
    if isinstance(op, (EditServer, DeleteServer)):
        service = state[op.key]
        old = service.servers[_server_index(service, op.server)]
        return [EditServer(op.key, old)] if isinstance(op, EditServer) else [AddServer(op.key, old)]
    return []


def plan_restore(current: IPVSTable, ops: Sequence[Any], flush: bool = False) -> list[Any]:
    """Check every operation against the table it will meet; return the operations to run.

    Raises the first NotFound/AlreadyExists (naming the input line) before anything is applied.
    With ``flush`` the table is emptied first (a :class:`Flush` leads the plan if needed).
    An input of adds only (what ``ipvsadm -S`` writes) is checked by :class:`AddsTracker`; any
    other is checked op by op on the simulated table.
    """
    plan: list[Any] = [Flush()] if flush and current.services else []
    if adds_only(ops):
        tracker = AddsTracker(IPVSTable(current.info) if flush else current)
        for op in ops:
            tracker.admit(op)
        plan.extend(ops)
        return plan
    state: TableState = {} if flush else state_of(current)
    for op in ops:
        check(state, op)
        apply_to_state(state, op)
        plan.append(op)
    return plan


def adds_only(ops: Sequence[Any]) -> bool:
    """Whether ``ops`` adds services and servers only (after a leading :class:`Flush`, if any)."""
    start = 1 if ops and isinstance(ops[0], Flush) else 0
    return all(getattr(op, "adds_service", None) is not None for op in ops[start:])


class AddsTracker:
    """Checks a plan of adds (see :func:`adds_only`) against a table of service keys and server keys.

    The same errors as :func:`check` at a fraction of its cost: no VirtualService is rebuilt
    per added server.  The undo step of an add is a delete, whatever the table, so it is made
    only when a rollback needs it (:func:`undo_steps`).
    """

    def __init__(self, current: IPVSTable) -> None:
        self._current = current
        self._servers: dict[ServiceKey, set[tuple[str, int]]] = {
            service.key: {server.key for server in service.servers} for service in current.services}
        self._last: tuple[Any, set[tuple[str, int]] | None] = (None, None)  # the servers of the last key seen

    def admit(self, op: Any) -> Any:
        """Check ``op`` and record it in the table; returns its undo step (lazy for adds)."""
        if isinstance(op, Flush):
            steps = rebuild(self._current.services)  # Flush leads the plan: the table is still the current one
            self._servers.clear()
            self._last = (None, None)
            return steps
        key = op.key
        if op.adds_service:
            if key in self._servers:
                raise AlreadyExists(f"{_where(op)}service {key} already exists")
            added: set[tuple[str, int]] = set()
            self._servers[key] = added
            self._last = (key, added)
            return op
        last_key, servers = self._last
        if key is not last_key:  # the servers of a service follow it: their key is the same object
            servers = self._servers.get(key)
            self._last = (key, servers)
        if servers is None:
            raise NotFound(f"{_where(op)}service {key} does not exist")
        server_key = op.server_key
        if server_key in servers:
            raise AlreadyExists(f"{_where(op)}server {_server_name(op.server)} already exists in service {key}")
        servers.add(server_key)
        return op


def undo_steps(step: Any) -> list[Operation]:
    """The operations of an undo step: a list made up front, or an add whose inverse is made now."""
    return step if isinstance(step, list) else inverse(step, {})


def apply_with_rollback(ops: Sequence[Any], execute: Callable[[Operation], None], current: IPVSTable) -> None:
    """Run ``ops`` through ``execute``; if one fails, undo the applied ones (newest first), re-raise.

    If an undo step fails too, the remaining undo steps still run and the original
    error's message says the rollback was incomplete.
    """
    state = state_of(current)
    undo: list[list[Operation]] = []
    for op in ops:
        try:
            check(state, op)  # the plan was checked; this guards callers that skipped plan_restore
            steps = inverse(op, state)
            execute(op)
        except BaseException as exc:
            failed = rollback(undo, execute)
            if failed:
                note = f"rollback incomplete: {len(failed)} undo step(s) failed, first: {failed[0]}"
                if isinstance(exc, KpctlError):
                    exc.message = f"{exc.message} ({note})"
            raise
        undo.append(steps)
        apply_to_state(state, op)


def rollback(undo: Sequence[Sequence[Operation]], execute: Callable[[Operation], None]) -> list[str]:
    """Execute the undo groups newest first; return a description of each step that failed."""
    failed: list[str] = []
    for group in reversed(undo):
        for step in group:
            try:
                execute(step)
            except Exception as exc:  # keep undoing the rest; report at the end
                failed.append(f"{step.describe()}: {exc}")
    return failed
