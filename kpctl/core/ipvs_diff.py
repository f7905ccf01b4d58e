"""Declarative IPVS: a desired table against the current one, as changes and as the operations.

The desired table is read from what kpctl and ipvsadm write (``ipvsadm -Sn`` rules, or the
JSON/YAML of ``kpctl ipvs list -o json|yaml``), through the one ``-A``/``-a`` rule reader of
:mod:`kpctl.core.ipvs_save`: a JSON/YAML service is written out as its rules and read back, so
both inputs are validated by the same code and compared in the same canonical form.

:func:`plan_apply` compares key by key (dicts, never a scan per object), so a 10,000-service
table with a 1% change costs one pass and yields only that 1% as operations.  The operations
are those of :mod:`kpctl.core.ipvs_plan` (the restore planner's), so the backend's
all-or-nothing ``apply`` and its rollback run them unchanged.

Removing a real server that still has connections breaks them; with ``drain`` such a server
is set to weight 0 now (no new connections; the open ones keep working) and deleted later,
when its connections are gone (:attr:`ApplyPlan.after_drain`).  A server already at weight 0
and still busy gets no new write: a second apply of the same file changes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from kpctl.core.ipvs_plan import (
    AddServer,
    AddService,
    DeleteServer,
    DeleteService,
    EditServer,
    EditService,
    Operation,
)
from kpctl.core.ipvs_save import parse_restore, rule_reader
from kpctl.core.ipvsadm_list import server_address, server_rule, service_rule
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import (
    SVC_F_HASHED,
    IPVSInfo,
    IPVSTable,
    RealServer,
    ServiceKey,
    VirtualService,
)

_SERVICE_FIELDS = ("scheduler", "flags", "timeout", "netmask", "pe_name")
_SERVER_FIELDS = ("forward", "weight", "upper_threshold", "lower_threshold", "tun_type", "tun_port", "tun_flags")


# --- reading the desired table -------------------------------------------------------------

# The start of the first line that is neither blank nor a comment: what tells the formats apart.
# (Not io.StringIO(text)'s lines: it copies the text four bytes a character, 156 MB for the 39 MB
# JSON of a 10k x 5 table, most of `ipvs diff`'s peak.)
_FIRST_WORDS = re.compile(r"^[^\S\n]*([^\s#][^\n]{0,15})", re.MULTILINE)


def read_desired(text: str) -> IPVSTable:
    """The table ``text`` describes: ``ipvsadm -S`` rules, or ``kpctl ipvs list -o json|yaml``.

    Bad input raises InvalidInput naming the line (rules) or the service (``services[3]``).
    """
    found = _FIRST_WORDS.search(text)
    first = found.group(1) if found else ""
    if not first or first.startswith(("-", "ipvsadm")):
        return _table_of_adds(parse_restore(text), lambda op: f"line {op.line}: ")
    return _table_of_document(_load_document(text, first))


def _load_document(text: str, first: str) -> Any:
    if first.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError as exc:  # json.JSONDecodeError
            raise InvalidInput(f"not an ipvsadm -S file nor valid JSON: {exc}") from None
    import yaml  # only for YAML input

    from kpctl.core.yaml_load import safe_load

    try:
        return safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"not an ipvsadm -S file nor valid YAML: {str(exc).splitlines()[0]}") from None


def _table_of_document(document: Any) -> IPVSTable:
    """``{"info": …, "services": [...]}`` (or the bare list) as written by ``kpctl ipvs list -o json|yaml``."""
    # A document without "services" (a snapshot file, say) is refused, not read as an empty table:
    # applying that would delete every service.
    services = document.get("services", False) if isinstance(document, dict) else document
    if services is None:  # `services:` with nothing under it
        services = []
    if not isinstance(services, list):
        raise InvalidInput("expected a document with a list of services (as `kpctl ipvs list -o json` writes)")
    ops: list[Any] = []
    read = rule_reader()
    for index, item in enumerate(services):
        where = f"services[{index}]"
        try:
            service = VirtualService.from_dict(item)
            lines = [service_rule(service)] + [server_rule(service.key, s) for s in service.servers]
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise InvalidInput(f"{where}: {exc}") from None
        services[index] = None  # its document let go as it is read (a 10k x 5 table's are ~100 MB)
        for number, line in enumerate(lines):
            try:
                op = read(index + 1, line)
            except InvalidInput as exc:
                message = exc.message.split(": ", 1)[-1]  # the rule's line number means nothing here
                raise InvalidInput(f"{where}{'' if number == 0 else f'.servers[{number - 1}]'}: {message}") from None
            ops.append(op)
    return _table_of_adds(ops, lambda op: f"services[{op.line - 1}]: ")


def _table_of_adds(ops: Iterable[Any], where: Callable[[Any], str]) -> IPVSTable:
    """The table the adds (AddService, AddServer) build."""
    services: dict[ServiceKey, VirtualService] = {}
    servers: dict[ServiceKey, dict[tuple[str, int], RealServer]] = {}
    for op in ops:
        adds_service = getattr(op, "adds_service", None)
        if adds_service:
            if op.key in services:
                raise InvalidInput(f"{where(op)}service {op.key} is given twice")
            services[op.key] = op.service
            servers[op.key] = {}
        elif adds_service is not None:
            own = servers.get(op.key)
            server = op.server
            if own is None:
                raise InvalidInput(f"{where(op)}server {server_address(server)} of service {op.key} "
                                   "comes before the service's -A line")
            if server.key in own:
                raise InvalidInput(f"{where(op)}server {server_address(server)} is given twice in service {op.key}")
            own[server.key] = server
        else:
            raise InvalidInput(f"{where(op)}a desired table holds -A and -a lines only (as ipvsadm -S writes), "
                               f"not {op.describe().split()[0]}")
    return IPVSTable(IPVSInfo("", 0), tuple(service._replace(servers=tuple(servers[key].values()))
                                            for key, service in services.items()))


# --- comparing -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One row of a diff: a service (``server`` None) or a real server to add, change, drain or remove."""

    action: str  # one of ACTIONS; drain: a removal of something with open connections
    service: ServiceKey
    server: RealServer | None = None
    detail: str = ""
    connections: int = 0  # active + inactive, of what is drained or removed

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "service": str(self.service),
                "server": None if self.server is None else server_address(self.server),
                "detail": self.detail, "connections": self.connections}


@dataclass(frozen=True)
class ApplyPlan:
    """What makes the current table the desired one.

    ``now`` runs all or nothing (the backend's apply, with rollback); ``after_drain`` holds the
    deletes of servers and services left at weight 0 with open connections, to run once their
    connections are gone (or a drain timeout passes).
    """

    changes: tuple[Change, ...]
    now: tuple[Operation, ...]
    after_drain: tuple[Operation, ...] = ()

    @property
    def operations(self) -> tuple[Operation, ...]:
        return self.now + self.after_drain

    def to_dict(self) -> dict[str, Any]:
        return {"equal": not self.changes, "changes": [change.to_dict() for change in self.changes],
                "operations": [op.describe() for op in self.now],
                "after_drain": [op.describe() for op in self.after_drain]}


def connections(server: RealServer) -> int:
    return server.active_conns + server.inactive_conns


def _differences(current: Any, desired: Any, names: Sequence[str]) -> str:
    def value(obj: Any, name: str) -> Any:
        number = getattr(obj, name)
        return number & ~SVC_F_HASHED if name == "flags" else number  # the kernel adds HASHED by itself

    return ", ".join(f"{name} {value(current, name)} -> {value(desired, name)}"
                     for name in names if value(current, name) != value(desired, name))


_SERVICE_STATE = attrgetter("scheduler", "timeout", "netmask", "pe_name")  # and flags, less HASHED
_SERVER_STATE = attrgetter(*_SERVER_FIELDS)


# Equal fields, or (rarely) fields that differ only where ipvsadm's rules do not look (e.g. the
# netmask of a service without persistence): the rules are formatted only for those.
def _same_service(current: VirtualService, desired: VirtualService) -> bool:
    if _SERVICE_STATE(current) == _SERVICE_STATE(desired) and not (current.flags ^ desired.flags) & ~SVC_F_HASHED:
        return True
    return service_rule(current) == service_rule(desired)


def _same_server(key: ServiceKey, current: RealServer, desired: RealServer) -> bool:
    return _SERVER_STATE(current) == _SERVER_STATE(desired) or server_rule(key, current) == server_rule(key, desired)


class _Planner:
    def __init__(self, drain: bool) -> None:
        self.drain = drain
        self.changes: list[Change] = []
        self.now: list[Operation] = []
        self.removals: list[Operation] = []  # after the adds and edits: new servers serve before old ones go
        self.after: list[Operation] = []

    def add_service(self, service: VirtualService) -> None:
        self.changes.append(Change("add", service.key, detail=service_rule(service)))
        self.now.append(AddService(service._replace(servers=())))
        for server in service.servers:
            self.add_server(service.key, server)

    def add_server(self, key: ServiceKey, server: RealServer) -> None:
        self.changes.append(Change("add", key, server, server_rule(key, server)))
        self.now.append(AddServer(key, server))

    def update_service(self, current: VirtualService, desired: VirtualService) -> None:
        key = desired.key
        if not _same_service(current, desired):
            detail = _differences(current, desired, _SERVICE_FIELDS) or service_rule(desired, "-E")
            self.changes.append(Change("change", key, detail=detail))
            self.now.append(EditService(desired._replace(servers=())))
        present = {server.key: server for server in current.servers}
        for server in desired.servers:
            old = present.pop(server.key, None)
            if old is None:
                self.add_server(key, server)
            elif not _same_server(key, old, server):
                detail = _differences(old, server, _SERVER_FIELDS) or server_rule(key, server, "-e")
                self.changes.append(Change("change", key, server, detail))
                self.now.append(EditServer(key, server))
        for old in present.values():
            self.remove_server(key, old)

    def remove_server(self, key: ServiceKey, server: RealServer) -> None:
        busy = connections(server)
        self.changes.append(Change("drain" if busy else "remove", key, server, connections=busy))
        if self.drain and busy:
            if server.weight:
                self.removals.append(EditServer(key, server._replace(weight=0)))
            self.after.append(DeleteServer(key, server))
        else:
            self.removals.append(DeleteServer(key, server))

    def remove_service(self, service: VirtualService) -> None:
        busy = sum(connections(server) for server in service.servers)
        count = len(service.servers)
        self.changes.append(Change("drain" if busy else "remove", service.key,
                                   detail=f"{count} server{'s' if count != 1 else ''}", connections=busy))
        if self.drain and busy:
            self.removals.extend(EditServer(service.key, server._replace(weight=0))
                                 for server in service.servers if server.weight)
            self.after.append(DeleteService(service.key))
        else:
            self.removals.append(DeleteService(service.key))


def plan_apply(current: IPVSTable, desired: IPVSTable, drain: bool = False) -> ApplyPlan:
    """The changes and operations that turn ``current`` into ``desired``; unchanged objects get none.

    With ``drain``, servers and services that go away while they have connections are set to
    weight 0 now and deleted in :attr:`ApplyPlan.after_drain`; without it they are deleted now.
    """
    planner = _Planner(drain)
    existing = {service.key: service for service in current.services}
    for service in desired.services:
        old = existing.pop(service.key, None)
        if old is None:
            planner.add_service(service)
        else:
            planner.update_service(old, service)
    for old in existing.values():
        planner.remove_service(old)
    return ApplyPlan(tuple(planner.changes), tuple(planner.now + planner.removals), tuple(planner.after))


def split_drained(pending: Sequence[Operation], table: IPVSTable) -> tuple[list[Operation], list[Operation]]:
    """The pending deletes whose target has no connections left, and those still busy.

    A target already gone from the table (someone else removed it) is in neither list.
    """
    services = {service.key: service for service in table.services}
    wanted = {op.key for op in pending}  # type: ignore[union-attr]
    loads = {(key, server.key): connections(server)
             for key in wanted if key in services for server in services[key].servers}
    ready: list[Operation] = []
    busy: list[Operation] = []
    for op in pending:
        if isinstance(op, DeleteService):
            if op.key not in services:
                continue
            load = sum(connections(server) for server in services[op.key].servers)
        else:
            found = loads.get((op.key, op.server.key))  # type: ignore[union-attr]
            if found is None:
                continue
            load = found
        (busy if load else ready).append(op)
    return ready, busy
