"""The live IPVS backend: the kernel's table over generic netlink (family "IPVS").

One socket, resolved lazily (so bad input is refused before any kernel contact).
Kernel errnos become kpctl's named errors here, per command, because the same errno
means different things: ENOENT from NEW_SERVICE is a missing scheduler/PE module, from
SET_DEST/DEL_DEST a missing real server; ESRCH is always a missing service.
"""

from __future__ import annotations

import errno
import os
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from kpctl.backends import ipvs_codec as codec
from kpctl.backends import ipvs_dump
from kpctl.backends.genl import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    GenlSocket,
    NetlinkRefusal,
)
from kpctl.backends.ipvs_messages import GENL_NAME, Cmd
from kpctl.core.ipvs_proc import ProcKey, proc_key, servers_by_service
from kpctl.errors import (
    IPVS_HINT,
    AlreadyExists,
    InvalidInput,
    KernelError,
    KernelFeatureMissing,
    KpctlError,
    NotFound,
    PermissionDenied,
)
from kpctl.model.ipvs import (Connection, IPVSInfo, IPVSTable, RealServer, ServiceKey, SyncDaemon, Timeouts,
    VirtualService)

PROC_IP_VS_CONN = "/proc/net/ip_vs_conn"
PROC_IP_VS = "/proc/net/ip_vs"  # the table as text, in the current network namespace
BATCH = 64  # requests per send: their ACKs (~1 KiB of receive buffer each) must fit the socket's buffer
SYS_MODULE = "/sys/module"


def _service_request(svc: VirtualService) -> list[tuple[str, Any]]:
    """The attributes of NEW_SERVICE / SET_SERVICE."""
    return [("IPVS_CMD_ATTR_SERVICE", codec.service_nest(svc))]


def _dest_request(key: ServiceKey, server: RealServer, full: bool) -> list[tuple[str, Any]]:
    """The attributes of NEW_DEST / SET_DEST (``full``) / DEL_DEST."""
    return [("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(key)), ("IPVS_CMD_ATTR_DEST", codec.dest_nest(server, full))]


def _add_packers(family: int, flags: int) -> dict[type, Callable[[Any, int], bytes]]:
    """The requests of the adds a restore is made of, packed from their operations as add_service /
    add_server pack them, without recording each one's error translations (those are made only
    for a request the kernel refuses: :meth:`IPVSNetlink._recorded`)."""
    from kpctl.core.ipvs_plan import AddServer, AddService

    encode, new_service, new_dest = codec.encode, Cmd.NEW_SERVICE, Cmd.NEW_DEST
    return {AddService: lambda op, seq: encode(new_service, _service_request(op.service), family, flags, seq),
            AddServer: lambda op, seq: encode(new_dest, _dest_request(op.key, op.server, True), family, flags, seq)}


def server_name(server: RealServer) -> str:
    host = f"[{server.address}]" if server.family == "inet6" else server.address
    return f"{host}:{server.port}"


_READ_COMMANDS = frozenset({Cmd.GET_INFO, Cmd.GET_SERVICE, Cmd.GET_DEST, Cmd.GET_CONFIG, Cmd.GET_DAEMON})


class IPVSNetlink:
    """IPVSBackend on the running kernel."""

    # Requests that change the kernel, sent by any instance: tests read it to prove that an
    # apply with nothing to change writes nothing (reads are not counted).
    write_requests = 0

    def __init__(self) -> None:
        self._genl = GenlSocket(GENL_NAME)
        self._pending: list[tuple[Cmd, list[tuple[str, Any]], str, dict[int, Callable[[], KpctlError]] | None]] | None = None

    def close(self) -> None:
        self._genl.close()

    def __enter__(self) -> IPVSNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------
    def _family(self) -> int:
        try:
            return self._genl.family_id
        except NetlinkRefusal as exc:
            if exc.errno == errno.ENOENT:
                raise KernelFeatureMissing("the kernel has no IPVS (generic netlink family IPVS not found)",
                                           IPVS_HINT) from None
            raise _generic(exc, "cannot resolve the IPVS netlink family") from None
        except PermissionError:
            raise PermissionDenied("cannot open a netlink socket") from None

    def _send(self, cmd: Cmd, attrs: list[tuple[str, Any]], dump: bool = False) -> list[bytes]:
        family = self._family()
        seq = self._genl.next_seq()
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        return self._genl.send_encoded(codec.encode(cmd, attrs, family, flags, seq), seq)

    def _call(self, cmd: Cmd, attrs: list[tuple[str, Any]], what: str,
              errors: dict[int, Callable[[], KpctlError]] | None = None, dump: bool = False) -> list[bytes]:
        if self._pending is not None and not dump:  # recording a batch (see _run_batch)
            self._pending.append((cmd, attrs, what, errors))
            return []
        if cmd not in _READ_COMMANDS:
            IPVSNetlink.write_requests += 1
        try:
            return self._send(cmd, attrs, dump=dump)
        except NetlinkRefusal as exc:
            if errors and exc.errno in errors:
                raise errors[exc.errno]() from None
            raise _generic(exc, what) from None

    # -- reads ----------------------------------------------------------------------------
    def info(self) -> IPVSInfo:
        (reply,) = self._call(Cmd.GET_INFO, [], "cannot read IPVS info")[:1]
        return codec.decode_info(reply)

    def table(self) -> IPVSTable:
        return self._table(default_view=False)

    def default_view_table(self) -> IPVSTable:
        """The table with the servers only as `ipvsadm -Ln`'s default view shows them (address,
        port, forwarding method, weight, active and inactive connections; their other fields
        None), read in one go from /proc/net/ip_vs instead of a GET_DEST dump per service
        (kpctl.core.ipvs_proc).  The servers of a service that text does not name alone, or of
        every service when it cannot be read, come from netlink, as all of them do without it."""
        return self._table(default_view=True)

    def _table(self, default_view: bool) -> IPVSTable:
        info = self.info()
        reader = ipvs_dump.DumpReader(self._genl, self._family())
        try:
            services = reader.services()
        except NetlinkRefusal as exc:
            raise _generic(exc, "cannot list IPVS services") from None
        listed = _proc_servers() if default_view else {}
        names: list[ProcKey | None] = [proc_key(service) for service, _key in services] if listed else [None] * len(services)
        if listed:  # a name two services share here (a fwmark's IPv4 and IPv6 services) is neither's
            named = Counter(names)
            listed = {key: servers for key, servers in listed.items() if named[key] == 1}
        table = []
        for (service, raw_key), name in zip(services, names):
            found = listed.get(name)
            if found is None:
                found = self._servers(reader, raw_key, service)
            table.append(service.with_servers(tuple(found)))
        return IPVSTable(info, tuple(table))

    def _servers(self, reader: ipvs_dump.DumpReader, raw_key: bytes, service: VirtualService) -> list[RealServer]:
        try:
            return reader.servers(raw_key, codec.family_code(service.family))
        except NetlinkRefusal as exc:
            raise _generic(exc, f"cannot list the real servers of {service.key}") from None

    def service(self, key: ServiceKey) -> VirtualService:
        attrs = [("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(key))]
        replies = self._call(Cmd.GET_SERVICE, attrs, f"cannot read service {key}",
                             {errno.ESRCH: lambda: NotFound(f"service {key} does not exist")})
        service, raw_key = ipvs_dump.read_service(replies[0])
        return service.with_servers(tuple(self._servers(ipvs_dump.DumpReader(self._genl, self._family()), raw_key,
                                                        service)))

    def timeouts(self) -> Timeouts:
        replies = self._call(Cmd.GET_CONFIG, [], "cannot read IPVS timeouts")
        return codec.decode_timeouts(replies[0])

    def daemons(self) -> list[SyncDaemon]:
        replies = self._call(Cmd.GET_DAEMON, [], "cannot list sync daemons", dump=True)
        return [codec.decode_daemon(payload) for payload in replies]

    def connections(self) -> list[Connection]:
        from kpctl.core.ipvs_conn import parse_ip_vs_conn

        return parse_ip_vs_conn(self.connection_text())

    def connection_text(self) -> str:
        """The text of /proc/net/ip_vs_conn (what a snapshot records of the connections)."""
        try:
            with open(PROC_IP_VS_CONN, encoding="ascii", errors="replace") as handle:
                return handle.read()
        except FileNotFoundError:
            raise KernelFeatureMissing(f"no {PROC_IP_VS_CONN}: the kernel has no IPVS", IPVS_HINT) from None
        except PermissionError:
            raise PermissionDenied(f"cannot read {PROC_IP_VS_CONN}") from None

    # -- services -------------------------------------------------------------------------
    def add_service(self, svc: VirtualService) -> None:
        key = svc.key
        self._service_call(Cmd.NEW_SERVICE, svc, "add", {
            errno.EEXIST: lambda: AlreadyExists(f"service {key} already exists"),
            errno.EAFNOSUPPORT: lambda: KernelFeatureMissing(f"the kernel cannot do {svc.family} services ({key})"),
        })

    def edit_service(self, svc: VirtualService) -> None:
        self._service_call(Cmd.SET_SERVICE, svc, "edit",
                           {errno.ESRCH: lambda: NotFound(f"service {svc.key} does not exist")})

    def _service_call(self, cmd: Cmd, svc: VirtualService, verb: str,
                      errors: dict[int, Callable[[], KpctlError]]) -> None:
        """NEW_SERVICE / SET_SERVICE: ENOENT is a scheduler or persistence engine the kernel cannot
        load, EINVAL parameters it refuses, ``errors`` the command's own."""
        key = svc.key
        self._call(cmd, _service_request(svc), f"cannot {verb} service {key}", {
            errno.ENOENT: lambda: _missing_module(svc),
            errno.EINVAL: lambda: InvalidInput(f"the kernel refused service {key}: invalid parameters"),
            **errors,
        })

    def delete_service(self, key: ServiceKey) -> None:
        self._call(Cmd.DEL_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(key))],
                   f"cannot delete service {key}", {errno.ESRCH: lambda: NotFound(f"service {key} does not exist")})

    # -- real servers ---------------------------------------------------------------------
    def _dest_call(self, cmd: Cmd, key: ServiceKey, server: RealServer, full: bool, verb: str) -> None:
        name = server_name(server)
        errors: dict[int, Callable[[], KpctlError]] = {
            errno.ESRCH: lambda: NotFound(f"service {key} does not exist"),
            errno.ERANGE: lambda: InvalidInput(f"the kernel refused server {name}: weight or thresholds out of range"),
            errno.EINVAL: lambda: InvalidInput(f"the kernel refused server {name} in service {key}: invalid parameters"),
        }
        if cmd == Cmd.NEW_DEST:
            errors[errno.EEXIST] = lambda: AlreadyExists(f"server {name} already exists in service {key}")
        else:
            errors[errno.ENOENT] = lambda: NotFound(f"server {name} does not exist in service {key}")
        self._call(cmd, _dest_request(key, server, full), f"cannot {verb} server {name} in service {key}", errors)

    def add_server(self, key: ServiceKey, server: RealServer) -> None:
        self._dest_call(Cmd.NEW_DEST, key, server, True, "add")

    def edit_server(self, key: ServiceKey, server: RealServer) -> None:
        self._dest_call(Cmd.SET_DEST, key, server, True, "edit")

    def delete_server(self, key: ServiceKey, server: RealServer) -> None:
        self._dest_call(Cmd.DEL_DEST, key, server, False, "delete")

    # -- table-wide -----------------------------------------------------------------------
    def flush(self) -> None:
        self._call(Cmd.FLUSH, [], "cannot clear the IPVS table")

    def zero(self, key: ServiceKey | None) -> None:
        if key is None:
            self._call(Cmd.ZERO, [], "cannot zero the IPVS counters")
            return
        self._call(Cmd.ZERO, [("IPVS_CMD_ATTR_SERVICE", codec.service_key_nest(key))],
                   f"cannot zero service {key}", {errno.ESRCH: lambda: NotFound(f"service {key} does not exist")})

    def set_timeouts(self, t: Timeouts) -> None:
        attrs = codec.timeout_attrs(t)
        if attrs:
            self._call(Cmd.SET_CONFIG, attrs, "cannot set IPVS timeouts", {
                errno.EINVAL: lambda: InvalidInput(f"the kernel refused timeouts {t.tcp} {t.tcp_fin} {t.udp}"),
            })

    def start_daemon(self, d: SyncDaemon) -> None:
        self._call(Cmd.NEW_DAEMON, [("IPVS_CMD_ATTR_DAEMON", codec.daemon_attrs(d))], f"cannot start the {d.state} sync daemon", {
            errno.EEXIST: lambda: AlreadyExists(f"a {d.state} sync daemon is already running"),
            errno.ENODEV: lambda: NotFound(f"interface {d.mcast_ifn!r} does not exist"),
            errno.EINVAL: lambda: InvalidInput(f"the kernel refused the {d.state} sync daemon on {d.mcast_ifn!r}"),
        })

    def stop_daemon(self, state: str) -> None:
        if state not in codec.DAEMON_STATES:
            raise InvalidInput(f"invalid sync daemon state {state!r} (master or backup)")
        daemon = SyncDaemon(state=state)
        self._call(Cmd.DEL_DAEMON, [("IPVS_CMD_ATTR_DAEMON", {"attrs": codec.daemon_attrs(daemon)["attrs"][:1]})],
                   f"cannot stop the {state} sync daemon",
                   {errno.ESRCH: lambda: NotFound(f"no {state} sync daemon is running")})

    # -- restore plans --------------------------------------------------------------------
    _STOCK_WRITERS = (add_service, add_server)

    def execute(self, op: Any) -> None:
        """Run one kpctl.core.ipvs_plan Operation against the kernel."""
        kind = type(op).__name__
        if kind == "AddService":
            self.add_service(op.service)
        elif kind == "EditService":
            self.edit_service(op.service)
        elif kind == "DeleteService":
            self.delete_service(op.key)
        elif kind == "AddServer":
            self.add_server(op.key, op.server)
        elif kind == "EditServer":
            self.edit_server(op.key, op.server)
        elif kind == "DeleteServer":
            self.delete_server(op.key, op.server)
        elif kind == "Flush":
            self.flush()
        elif kind == "ZeroCounters":
            self.zero(op.key)
        else:
            raise InvalidInput(f"unknown IPVS operation {kind}")

    def _packs_directly(self) -> bool:
        """Whether adds may be packed without calling add_service/add_server.

        A subclass or wrapper that replaces those methods (to watch or change each operation)
        gets every operation through them instead, with the kernel holding all that came
        before it, as in :meth:`apply`'s op-by-op batching.
        """
        cls = type(self)
        return (cls.add_service, cls.add_server) == self._STOCK_WRITERS

    def apply(self, ops: Sequence[Any]) -> None:
        """Execute a plan; if the kernel refuses an operation, undo what was applied and re-raise.

        Up to BATCH requests go in one send (the kernel runs them in order and acknowledges each).  The
        kernel goes on past a refused request, so the ones after it in its batch that succeeded
        are undone too.  The plan is tracked on the simulated table, op by op.  With the stock
        add_service/add_server, adds are packed straight from their operations
        (:func:`_add_packers`), the other operations through :meth:`execute`.
        When add_service/add_server are replaced (see :meth:`_packs_directly`), work on a service
        added in the same batch starts the next one, so they see the kernel with it.
        """
        from kpctl.core import ipvs_plan as plan

        if not ops:
            return
        table = self.table()
        direct = self._packs_directly()
        packers = _add_packers(self._family(), NLM_F_REQUEST | NLM_F_ACK) if direct else {}
        state = plan.state_of(table)

        def admit(op: Any) -> Any:
            plan.check(state, op)  # the plan was checked; this guards callers that skipped plan_restore
            step = plan.undo_step(op, state)
            plan.apply_to_state(state, op)
            return step

        undo: list[Any] = []
        i = 0
        try:
            while i < len(ops):
                chunk: list[Any] = []
                steps: list[Any] = []
                created: set[Any] = set()  # services this chunk adds
                if direct:
                    chunk = list(ops[i:i + BATCH])
                    steps = [admit(op) for op in chunk]
                    i += len(chunk)
                while not direct and i < len(ops) and len(chunk) < BATCH:
                    op = ops[i]
                    if created and _target(op) in created:
                        break  # work on a service added in this chunk waits until the kernel has it
                    if type(op).__name__ == "AddService":
                        created.add(op.service.key)
                    steps.append(admit(op))
                    chunk.append(op)
                    i += 1
                failure, oks = self._run_batch(chunk, packers)
                undo.extend(step for step, ok in zip(steps, oks) if ok)
                if failure is not None:
                    raise failure
        except BaseException as exc:
            plan.rollback([plan.undo_steps(step) for step in undo], self.execute, exc)
            raise

    def _run_batch(self, chunk: Sequence[Any], packers: dict[type, Callable[[Any, int], bytes]],
                   ) -> tuple[KpctlError | None, list[bool]]:
        """Send the requests of ``chunk`` in one go: the first refusal as kpctl's error, and which succeeded.

        ``packers`` (:func:`_add_packers`, or none) pack the adds; the other operations are recorded
        through :meth:`execute` and packed by codec.encode.
        """
        family = self._family()
        flags = NLM_F_REQUEST | NLM_F_ACK
        data = bytearray()
        seqs: list[int] = []
        recorded: dict[int, tuple[str, dict[int, Callable[[], KpctlError]] | None]] = {}
        next_seq = self._genl.next_seq
        self._pending = []
        try:
            for index, op in enumerate(chunk):
                pack = packers.get(type(op))
                seq = next_seq()
                if pack is not None:
                    packed = pack(op, seq)
                else:
                    self.execute(op)
                    ((cmd, attrs, what, errors),) = self._pending
                    self._pending.clear()
                    recorded[index] = (what, errors)
                    packed = codec.encode(cmd, attrs, family, flags, seq)
                data += packed
                seqs.append(seq)
        finally:
            self._pending = None
        IPVSNetlink.write_requests += len(seqs)
        codes = self._genl.send_batch(bytes(data), seqs)
        first: KpctlError | None = None
        oks = [codes[seq] == 0 for seq in seqs]
        if not all(oks):
            index = oks.index(False)
            what, errors = recorded[index] if index in recorded else self._recorded(chunk[index])
            code = codes[seqs[index]]
            first = errors[code]() if errors and code in errors else _generic(NetlinkRefusal(code), what)
        return first, oks

    def _recorded(self, op: Any) -> tuple[str, dict[int, Callable[[], KpctlError]] | None]:
        """What the request of ``op`` is about and its errno translations, as :meth:`execute` records them."""
        self._pending = []
        try:
            self.execute(op)
            ((_cmd, _attrs, what, errors),) = self._pending
        finally:
            self._pending = None
        return what, errors


def _proc_servers() -> dict[Any, list[RealServer] | None]:
    """Each service's servers as /proc/net/ip_vs lists them (kpctl.core.ipvs_proc); nothing when
    the file cannot be read (no procfs, or another layout): then every service's come from netlink."""
    try:
        with open(PROC_IP_VS, encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return {}
    return servers_by_service(text)


def _target(op: Any) -> Any:
    """The service key an operation works on (None for a flush)."""
    service = getattr(op, "service", None)
    return service.key if service is not None else getattr(op, "key", None)


def _generic(exc: NetlinkRefusal, what: str) -> KpctlError:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(f"{what}: {os.strerror(exc.errno)}")
    return KernelError(f"{what}: {os.strerror(exc.errno)}")


def _missing_module(svc: VirtualService) -> KernelFeatureMissing:
    """ENOENT from NEW/SET_SERVICE: the scheduler or the persistence engine could not be loaded."""
    if svc.pe_name and os.path.isdir(os.path.join(SYS_MODULE, f"ip_vs_{svc.scheduler}")):
        module, what = f"ip_vs_pe_{svc.pe_name}", f"persistence engine {svc.pe_name!r}"
        hint = f"try: modprobe {module}"
    else:
        module, what = f"ip_vs_{svc.scheduler}", f"scheduler {svc.scheduler!r}"
        hint = f"try: kpctl modules check --load --scheduler {svc.scheduler}"
    return KernelFeatureMissing(f"the kernel has no {what} (module {module} missing)", hint)
