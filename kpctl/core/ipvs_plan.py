"""Restore plans for the IPVS table: operations, up-front validation, inverses, rollback.

``ipvsadm -R`` makes one kernel call per line, keeps going after errors and leaves
partial state.  kpctl instead checks the whole input against a model of the table
first (:func:`plan_restore`); the backend applies it undoing what it applied if a kernel call
fails part way (:func:`undo_step`, :func:`rollback`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from kpctl.core.ipvsadm_list import server_address, server_rule, service_option, service_rule
from kpctl.errors import AlreadyExists, KpctlError, NotFound
from kpctl.model.ipvs import IPVSTable, RealServer, ServiceKey, VirtualService


@dataclass(frozen=True)
class AddService:
    service: VirtualService  # its servers are ignored; AddServer adds them
    line: int = field(default=0, compare=False)
    adds_service = True  # not a field: marks the adds (a desired table is made of them)

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

class TableState(Mapping[ServiceKey, VirtualService]):
    """The simulated table: its services by key in the kernel's order, read as VirtualService
    with their servers.  Each service's servers are held by their key (address, port), in order,
    so a check or a change of one server costs the same whatever the number of servers, and a
    change does not rebuild the service.  (check, apply_to_state and inverse read and change a
    service's servers here directly: a restore does so once or twice per line.)"""

    def __init__(self, services: Iterable[VirtualService] = ()) -> None:
        self._services: dict[ServiceKey, VirtualService] = {}  # (their servers as when first held)
        self._servers: dict[ServiceKey, dict[tuple[str, int], RealServer]] = {}
        self._changed: set[ServiceKey] = set()  # the services whose servers differ from _services'
        for service in services:
            self._services[service.key] = service
            self._servers[service.key] = {server.key: server for server in service.servers}

    def __getitem__(self, key: ServiceKey) -> VirtualService:
        service = self._services[key]
        if key in self._changed:
            service = self._services[key] = service.with_servers(tuple(self._servers[key].values()))
            self._changed.discard(key)
        return service

    def __contains__(self, key: object) -> bool:
        return key in self._services

    def __iter__(self) -> Iterator[ServiceKey]:
        return iter(self._services)

    def __len__(self) -> int:
        return len(self._services)

    def set_service(self, service: VirtualService, servers: Iterable[RealServer] = ()) -> None:
        """Service ``service`` with ``servers`` (not its own: they are read as these)."""
        key = service.key
        self._services[key] = service
        self._servers[key] = {server.key: server for server in servers}
        self._changed.add(key)

    def delete_service(self, key: ServiceKey) -> None:
        del self._services[key], self._servers[key]  # (in _changed or not: a service added again is)

    def clear(self) -> None:
        self._services.clear()
        self._servers.clear()
        self._changed.clear()


def state_of(table: IPVSTable) -> TableState:
    return TableState(table.services)


def _where(op: Operation) -> str:
    return f"line {op.line}: " if op.line else ""


def check(state: TableState, op: Operation) -> None:
    """Raise NotFound/AlreadyExists if ``op`` cannot apply to ``state``."""
    if isinstance(op, (AddServer, EditServer, DeleteServer)):
        servers = state._servers.get(op.key)
        if servers is None:
            raise NotFound(f"{_where(op)}service {op.key} does not exist")
        present, adding = op.server.key in servers, isinstance(op, AddServer)
        if adding and present:
            raise AlreadyExists(f"{_where(op)}server {server_address(op.server)} already exists in service {op.key}")
        if not adding and not present:
            raise NotFound(f"{_where(op)}server {server_address(op.server)} does not exist in service {op.key}")
    elif isinstance(op, AddService):
        if op.key in state:
            raise AlreadyExists(f"{_where(op)}service {op.key} already exists")
    elif isinstance(op, (EditService, DeleteService)):
        if op.key not in state:
            raise NotFound(f"{_where(op)}service {op.key} does not exist")
    elif isinstance(op, ZeroCounters):
        if op.key is not None and op.key not in state:
            raise NotFound(f"{_where(op)}service {op.key} does not exist")


def apply_to_state(state: TableState, op: Operation) -> None:
    """Change the simulated ``state`` as the kernel would for ``op`` (assumes :func:`check` passed)."""
    if isinstance(op, (AddServer, EditServer)):
        state._servers[op.key][op.server.key] = op.server  # (a server edited keeps its place)
        state._changed.add(op.key)
    elif isinstance(op, DeleteServer):
        del state._servers[op.key][op.server.key]
        state._changed.add(op.key)
    elif isinstance(op, AddService):
        state.set_service(op.service)  # (its servers are not the table's: read from the table's own)
    elif isinstance(op, EditService):
        old = state[op.key]
        state.set_service(op.service._replace(servers=(), stats=old.stats), old.servers)
    elif isinstance(op, DeleteService):
        state.delete_service(op.key)
    elif isinstance(op, Flush):
        state.clear()


def rebuild(services: Iterable[VirtualService]) -> list[Operation]:
    """The operations that re-create ``services`` with their servers in an empty table."""
    ops: list[Operation] = []
    for service in services:
        ops.append(AddService(service._replace(servers=())))
        ops.extend(AddServer(service.key, server) for server in service.servers)
    return ops


def inverse(op: Operation, state: TableState) -> list[Operation]:
    """The operations that undo ``op`` when applied right after it to a table that was ``state``.

    Counters cannot be restored, so the inverse of :class:`ZeroCounters` is empty.
    """
    if isinstance(op, AddService):
        return [DeleteService(op.key)]
    if isinstance(op, EditService):
        return [EditService(state[op.key]._replace(servers=()))]
    if isinstance(op, DeleteService):
        return rebuild([state[op.key]])
    if isinstance(op, Flush):
        return rebuild(state.values())
    if isinstance(op, AddServer):
        return [DeleteServer(op.key, op.server)]
    if isinstance(op, (EditServer, DeleteServer)):
        old = state._servers[op.key][op.server.key]
        return [EditServer(op.key, old)] if isinstance(op, EditServer) else [AddServer(op.key, old)]
    return []


def undo_step(op: Operation, state: TableState) -> Operation | list[Operation]:
    """What undoes ``op`` on ``state``, for :func:`undo_steps`: an add itself (its inverse does not
    depend on the table: made only if a rollback needs it), any other operation's inverse."""
    return op if isinstance(op, (AddServer, AddService)) else inverse(op, state)


def plan_restore(current: IPVSTable, ops: Sequence[Any], flush: bool = False) -> list[Any]:
    """Check every operation against the table it will meet; return the operations to run.

    Raises the first NotFound/AlreadyExists (naming the input line) before anything is applied.
    With ``flush`` the table is emptied first (a :class:`Flush` leads the plan if needed).
    """
    plan: list[Any] = [Flush()] if flush and current.services else []
    state = TableState() if flush else state_of(current)
    for op in ops:
        check(state, op)
        apply_to_state(state, op)
        plan.append(op)
    return plan


def undo_steps(step: Any) -> list[Operation]:
    """The operations of an undo step (:func:`undo_step`): a list made up front, or an add whose
    inverse is made now."""
    return step if isinstance(step, list) else inverse(step, TableState())


def rollback(undo: Sequence[Sequence[Operation]], execute: Callable[[Operation], None], cause: BaseException) -> None:
    """Execute the undo groups newest first, after ``cause`` stopped a plan; when an undo step
    fails, the others still run and ``cause``'s message (a KpctlError's) says so, naming the first."""
    failed: list[str] = []
    for group in reversed(undo):
        for step in group:
            try:
                execute(step)
            except Exception as exc:  # keep undoing the rest; report at the end
                failed.append(f"{step.describe()}: {exc}")
    if failed and isinstance(cause, KpctlError):
        cause.message = f"{cause.message} (rollback incomplete: {len(failed)} undo step(s) failed, first: {failed[0]})"
