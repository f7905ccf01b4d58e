"""The live IPVS backend: the kernel's table over generic netlink (family "IPVS").

One socket, resolved lazily (so bad input is refused before any kernel contact).
Kernel errnos become kpctl's named errors here, per command, because the same errno
means different things: ENOENT from NEW_SERVICE is a missing scheduler/PE module, from
SET_DEST/DEL_DEST a missing real server; ESRCH is always a missing service.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence
from typing import Any, Self

from kpctl.backends import ipvs_codec as codec
from kpctl.backends.genl import (
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    GenlSocket,
    NetlinkRefusal,
)
from kpctl.backends.ipvs_messages import GENL_NAME, Cmd, ipvs_msg
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
from kpctl.model.ipvs import (
    Connection,
    IPVSInfo,
    IPVSTable,
    RealServer,
    ServiceKey,
    SyncDaemon,
    Timeouts,
    VirtualService,
)

PROC_IP_VS_CONN = "/proc/net/ip_vs_conn"
SYS_MODULE = "/sys/module"


def server_name(server: RealServer) -> str:
    host = f"[{server.address}]" if server.family == "inet6" else server.address
    return f"{host}:{server.port}"


class IPVSNetlink:
    """IPVSBackend on the running kernel."""

    def __init__(self) -> None:
        self._genl = GenlSocket(GENL_NAME)

    def close(self) -> None:
        self._genl.close()

    def __enter__(self) -> Self:
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

    def _send(self, msg: ipvs_msg, dump: bool = False) -> list[bytes]:
        family = self._family()
        seq = self._genl.next_seq()
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
        return self._genl.send_encoded(codec.encode(msg, family, flags, seq), seq)

    def _call(self, cmd: Cmd, attrs: list[tuple[str, Any]], what: str,
              errors: dict[int, Callable[[], KpctlError]] | None = None, dump: bool = False) -> list[bytes]:
        try:
            return self._send(codec.new_request(cmd, attrs), dump=dump)
        except NetlinkRefusal as exc:
            if errors and exc.errno in errors:
                raise errors[exc.errno]() from None
            raise _generic(exc, what) from None

    # -- reads ----------------------------------------------------------------------------
    def info(self) -> IPVSInfo:
        (reply,) = self._call(Cmd.GET_INFO, [], "cannot read IPVS info")[:1]
        return codec.decode_info(reply)

    def table(self) -> IPVSTable:
        info = self.info()
        services = []
        for payload in self._call(Cmd.GET_SERVICE, [], "cannot list IPVS services", dump=True):
            service, raw_key = codec.decode_service(payload)
            services.append(service.with_servers(self._servers(raw_key, service)))
        return IPVSTable(info=info, services=tuple(services))

    def _servers(self, raw_key: bytes, service: VirtualService) -> tuple[RealServer, ...]:
        af = codec.family_code(service.family)
        seq = self._genl.next_seq()
        body = codec.dest_dump_body(raw_key)
        data = codec.genl.NLMSGHDR.pack(codec.genl.NLMSGHDR.size + len(body), self._family(),
                                        NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
        try:
            replies = self._genl.send_encoded(data, seq)
        except NetlinkRefusal as exc:
            raise _generic(exc, f"cannot list the real servers of {service.key}") from None
        return tuple(codec.decode_dest(payload, af) for payload in replies)

    def service(self, key: ServiceKey) -> VirtualService:
        attrs = [("IPVS_CMD_ATTR_SERVICE", {"attrs": codec.service_key_attrs(key)})]
        replies = self._call(Cmd.GET_SERVICE, attrs, f"cannot read service {key}",
                             {errno.ESRCH: lambda: NotFound(f"service {key} does not exist")})
        service, raw_key = codec.decode_service(replies[0])
        return service.with_servers(self._servers(raw_key, service))

    def timeouts(self) -> Timeouts:
        replies = self._call(Cmd.GET_CONFIG, [], "cannot read IPVS timeouts")
        return codec.decode_timeouts(replies[0])

    def daemons(self) -> list[SyncDaemon]:
        replies = self._call(Cmd.GET_DAEMON, [], "cannot list sync daemons", dump=True)
        return [codec.decode_daemon(payload) for payload in replies]

    def connections(self) -> list[Connection]:
        from kpctl.core.ipvs_conn import parse_ip_vs_conn

        try:
            with open(PROC_IP_VS_CONN, encoding="ascii", errors="replace") as handle:
                text = handle.read()
        except FileNotFoundError:
            raise KernelFeatureMissing(f"no {PROC_IP_VS_CONN}: the kernel has no IPVS", IPVS_HINT) from None
        except PermissionError:
            raise PermissionDenied(f"cannot read {PROC_IP_VS_CONN}") from None
        return parse_ip_vs_conn(text)

    # -- services -------------------------------------------------------------------------
    def add_service(self, svc: VirtualService) -> None:
        key = svc.key
        self._call(Cmd.NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_attrs(svc))], f"cannot add service {key}", {
            errno.EEXIST: lambda: AlreadyExists(f"service {key} already exists"),
            errno.ENOENT: lambda: _missing_module(svc),
            errno.EINVAL: lambda: InvalidInput(f"the kernel refused service {key}: invalid parameters"),
            errno.EAFNOSUPPORT: lambda: KernelFeatureMissing(f"the kernel cannot do {svc.family} services ({key})"),
        })

    def edit_service(self, svc: VirtualService) -> None:
        key = svc.key
        self._call(Cmd.SET_SERVICE, [("IPVS_CMD_ATTR_SERVICE", codec.service_attrs(svc))], f"cannot edit service {key}", {
            errno.ESRCH: lambda: NotFound(f"service {key} does not exist"),
            errno.ENOENT: lambda: _missing_module(svc),
            errno.EINVAL: lambda: InvalidInput(f"the kernel refused service {key}: invalid parameters"),
        })

    def delete_service(self, key: ServiceKey) -> None:
        self._call(Cmd.DEL_SERVICE, [("IPVS_CMD_ATTR_SERVICE", {"attrs": codec.service_key_attrs(key)})],
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
        attrs = [("IPVS_CMD_ATTR_SERVICE", {"attrs": codec.service_key_attrs(key)}),
                 ("IPVS_CMD_ATTR_DEST", codec.dest_attrs(server, full))]
        self._call(cmd, attrs, f"cannot {verb} server {name} in service {key}", errors)

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
        self._call(Cmd.ZERO, [("IPVS_CMD_ATTR_SERVICE", {"attrs": codec.service_key_attrs(key)})],
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

    def apply(self, ops: Sequence[Any]) -> None:
        """Execute a plan op by op; if the kernel refuses one, undo what was applied and re-raise.

        One request per operation and per acknowledgement today; batching several requests in
        one send would go in :meth:`execute`'s caller here without changing the interface.
        """
        from kpctl.core.ipvs_plan import apply_with_rollback

        if ops:
            apply_with_rollback(ops, self.execute, self.table())


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
