"""Service and real-server options with ipvsadm 1.31's rules.

Two stages, so that commands can check all syntax before opening the kernel:
``parse_*_options`` turns option text into typed values (syntax errors), and
``build_service`` / ``build_server`` combine them with the service key (and, for
edits, the current object) into model objects (combination errors).  Without a
``base`` the defaults are ipvsadm's: scheduler wlc, weight 1, direct routing.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import NamedTuple

from kpctl.core.address import ascii_number, parse_server
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import (
    SCHED_FLAG_NAMES, SCHEDULERS, SVC_F_ONEPACKET, SVC_F_PERSISTENT, SVC_F_SCHED1, SVC_F_SCHED2,
    SVC_F_SCHED3, TUN_F_CSUM, TUN_F_NOCSUM, TUN_F_REMCSUM, TUN_TYPE_CODES, RealServer, ServiceKey,
    SyncDaemon, VirtualService,
)

DEFAULT_SCHEDULER = "wlc"
DEFAULT_PERSISTENT_TIMEOUT = 300
MAX_TIMEOUT = 86400 * 31
MAX_THRESHOLD = 2**31 - 1
PERSISTENCE_ENGINES = ("sip",)
SCHED_FLAGS_MASK = SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3
TUN_CSUM_NAMES: dict[str, int] = {"nocsum": TUN_F_NOCSUM, "csum": TUN_F_CSUM, "remcsum": TUN_F_REMCSUM}


def parse_number(text: str, what: str, low: int, high: int) -> int:
    number = ascii_number(text.strip())
    if number is None or not low <= number <= high:
        raise InvalidInput(f"invalid {what} {text!r}: must be a number {low}..{high}")
    return number


@dataclass(frozen=True)
class ServiceOptions:
    """Parsed service options; None means 'not given'."""

    scheduler: str | None = None
    timeout: int | None = None  # set: persistent with this timeout
    netmask: str | None = None  # checked against the family in build_service
    sched_flags: tuple[str, ...] | None = None
    pe_name: str | None = None
    one_packet: bool = False


def parse_service_options(scheduler: str | None = None, persistent: str | None = None,
                          netmask: str | None = None, sched_flags: str | None = None,
                          pe_name: str | None = None, one_packet: bool = False) -> ServiceOptions:
    """``persistent``: None (not given), "" (``-p`` without a value: 300 s) or the timeout text."""
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise InvalidInput(f"unknown scheduler {scheduler!r}: use one of {' '.join(SCHEDULERS)}")
    timeout = None
    if persistent is not None:
        timeout = (DEFAULT_PERSISTENT_TIMEOUT if persistent == ""
                   else parse_number(persistent, "persistence timeout", 1, MAX_TIMEOUT))
    flags = None
    if sched_flags is not None:
        flags = tuple(sched_flags.split(","))
        for flag in flags:
            if flag not in SCHED_FLAG_NAMES:
                raise InvalidInput(f"invalid scheduler flag {flag!r} in {sched_flags!r}: use "
                                   + ", ".join(SCHED_FLAG_NAMES))
    if pe_name is not None and pe_name not in PERSISTENCE_ENGINES:
        raise InvalidInput(f"unknown persistence engine {pe_name!r}: use one of {', '.join(PERSISTENCE_ENGINES)}")
    return ServiceOptions(scheduler, timeout, netmask, flags, pe_name, one_packet)


def _netmask(text: str, family: str) -> int:
    if family == "inet6":
        return parse_number(text, "IPv6 persistence netmask (prefix length)", 1, 128)
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        raise InvalidInput(f"invalid persistence netmask {text!r}: use a dotted IPv4 mask such as 255.255.255.0") from None


def _sched_flag_bits(flags: tuple[str, ...], scheduler: str) -> int:
    bits = 0
    for flag in flags:
        prefix = flag.split("-")[0]
        if prefix in ("sh", "mh") and scheduler != prefix:
            raise InvalidInput(f"scheduler flag {flag!r} needs scheduler {prefix!r}, not {scheduler!r}")
        bits |= SCHED_FLAG_NAMES[flag]
    return bits


def build_service(key: ServiceKey, options: ServiceOptions, base: VirtualService | None = None) -> VirtualService:
    """A VirtualService for ``key``; with ``base`` (edit), options not given keep base's values."""
    default_mask = 128 if key.family == "inet6" else 0xFFFFFFFF
    scheduler = options.scheduler or (base.scheduler if base else DEFAULT_SCHEDULER)
    flags = (base.flags & ~0x2) if base else 0  # HASHED is the kernel's, never ours
    timeout = base.timeout if base else 0
    if options.timeout is not None:
        flags |= SVC_F_PERSISTENT
        timeout = options.timeout
    netmask = base.netmask if base else default_mask
    if options.netmask is not None:
        netmask = _netmask(options.netmask, key.family)
    if options.sched_flags is not None:
        flags = (flags & ~SCHED_FLAGS_MASK) | _sched_flag_bits(options.sched_flags, scheduler)
    elif options.scheduler is not None and base is not None:
        # a new scheduler cannot inherit the old one's sh-/mh- meaning of the flag bits
        flags &= ~SCHED_FLAGS_MASK if options.scheduler != base.scheduler else ~0
    if options.one_packet:
        flags |= SVC_F_ONEPACKET
    pe_name = options.pe_name if options.pe_name is not None else (base.pe_name if base else "")
    service = VirtualService(family=key.family, protocol=key.protocol, address=key.address, port=key.port,
                             fwmark=key.fwmark, scheduler=scheduler, flags=flags, timeout=timeout,
                             netmask=netmask, pe_name=pe_name)
    check_service(service)
    return service


def check_service(service: VirtualService) -> None:
    """ipvsadm's combination rules for -A/-E."""
    if not service.fwmark and service.port == 0 and not service.persistent:
        raise InvalidInput(f"port 0 in service {service.key} needs persistence (-p)")
    if service.one_packet and not service.fwmark and service.protocol != "udp":
        raise InvalidInput(f"one-packet scheduling (--ops) is only for UDP or fwmark services, not {service.key}")


class ServerOptions(NamedTuple):
    """Parsed real-server options; None means 'not given' (a tuple: a restore makes one per line)."""

    weight: int | None = None
    forward: str | None = None  # masq|route|tunnel
    upper_threshold: int | None = None
    lower_threshold: int | None = None
    tun_type: str | None = None
    tun_port: int | None = None
    tun_csum: str | None = None  # nocsum|csum|remcsum


@functools.lru_cache(maxsize=1024)  # a restore's 50,000 -a lines carry a few sets of options
def parse_server_options(weight: str | None = None, forward: str | None = None, upper: str | None = None,
                         lower: str | None = None, tun_type: str | None = None, tun_port: str | None = None,
                         tun_csum: str | None = None) -> ServerOptions:
    if forward is not None and forward not in ("masq", "route", "tunnel"):
        raise InvalidInput(f"invalid forwarding method {forward!r}: use masq (-m), route (-g) or tunnel (-i)")
    if tun_type is not None and tun_type not in TUN_TYPE_CODES:
        raise InvalidInput(f"invalid tunnel type {tun_type!r}: use ipip, gue or gre")
    if tun_csum is not None and tun_csum not in TUN_CSUM_NAMES:
        raise InvalidInput(f"invalid tunnel checksum option {tun_csum!r}: use nocsum, csum or remcsum")
    return ServerOptions(
        None if weight is None else parse_number(weight, "weight", 0, 65535),
        forward,
        None if upper is None else parse_number(upper, "upper threshold", 0, MAX_THRESHOLD),
        None if lower is None else parse_number(lower, "lower threshold", 0, MAX_THRESHOLD),
        tun_type,
        None if tun_port is None else parse_number(tun_port, "tunnel port", 1, 65535),
        tun_csum,
    )


def _tunnel_fields(options: ServerOptions, base: RealServer | None) -> tuple[str, int, int]:
    tun_type = options.tun_type or (base.tun_type if base else "ipip")
    if options.tun_type is not None or base is None:
        tun_port = options.tun_port or 0
        tun_flags = TUN_CSUM_NAMES[options.tun_csum] if options.tun_csum else TUN_F_NOCSUM
    else:
        tun_port = options.tun_port if options.tun_port is not None else base.tun_port
        tun_flags = TUN_CSUM_NAMES[options.tun_csum] if options.tun_csum else base.tun_flags
    if tun_type == "ipip" and (options.tun_port is not None or options.tun_csum is not None):
        bad = "--tun-port" if options.tun_port is not None else f"--tun-{options.tun_csum}"
        raise InvalidInput(f"option {bad} does not go with tunnel type 'ipip'")
    if tun_type == "gre" and (options.tun_port is not None or options.tun_csum == "remcsum"):
        bad = "--tun-port" if options.tun_port is not None else "--tun-remcsum"
        raise InvalidInput(f"option {bad} does not go with tunnel type 'gre'")
    if tun_type == "gue" and not tun_port:
        raise InvalidInput("tunnel type 'gue' needs --tun-port")
    if tun_type == "ipip":
        tun_port, tun_flags = 0, TUN_F_NOCSUM
    elif tun_type == "gre":
        tun_port = 0
    return tun_type, tun_port, tun_flags


def build_server(service: ServiceKey, server_text: str, options: ServerOptions,
                 base: RealServer | None = None) -> RealServer:
    """A RealServer of ``service`` from ``ADDR[:PORT]`` and options (ipvsadm -a/-e rules).

    Like ipvsadm, route and tunnel servers of a non-fwmark service take the service's port.
    With ``base`` (edit), options not given keep base's values.
    """
    address, port, family = parse_server(server_text, service.port)
    forward, tun_type, tun_port, tun_flags, weight, upper, lower = _server_fields(options, base)
    if not service.fwmark and forward in ("route", "tunnel"):
        port = service.port
    if family != service.family and forward != "tunnel":
        raise InvalidInput(f"server {server_text!r} is {family} but service {service} is {service.family}: "
                           "mixed families need the tunnel forwarding method (-i)")
    if lower > upper:
        # The kernel refuses it (ERANGE in ip_vs_add_dest/edit_dest); say so before any call.
        raise InvalidInput(f"lower threshold {lower} is above upper threshold {upper} (-y must not exceed -x)")
    return RealServer(
        address=address, port=port, family=family, forward=forward,
        weight=weight, upper_threshold=upper, lower_threshold=lower,
        tun_type=tun_type, tun_port=tun_port, tun_flags=tun_flags,
    )


@functools.lru_cache(maxsize=1024)  # a restore's 50,000 servers share a few sets of options (and no base)
def _server_fields(options: ServerOptions, base: RealServer | None) -> tuple[str, str, int, int, int, int, int]:
    """A server's forwarding method, tunnel type, port and flags, weight and thresholds, from
    ``options`` over ``base``'s (or the defaults): what does not depend on its address."""
    forward = options.forward or (base.forward if base else "route")
    if forward == "local":
        forward = "route"
    if forward != "tunnel" and (options.tun_type is not None or options.tun_port is not None
                                or options.tun_csum is not None):
        raise InvalidInput(f"tunnel options need the tunnel forwarding method (-i), not {forward!r}")
    if forward == "tunnel":
        tun_type, tun_port, tun_flags = _tunnel_fields(options, base if base and base.forward == "tunnel" else None)
    else:
        tun_type, tun_port, tun_flags = "ipip", 0, TUN_F_NOCSUM
    weight, upper, lower = options.weight, options.upper_threshold, options.lower_threshold
    if weight is None:
        weight = base.weight if base else 1
    if upper is None:
        upper = base.upper_threshold if base else 0
    if lower is None:
        lower = base.lower_threshold if base else 0
    return forward, tun_type, tun_port, tun_flags, weight, upper, lower


def server_identity(service: ServiceKey, server_text: str) -> RealServer:
    """The server named for delete/lookup: address and port only (port defaults to the service's)."""
    address, port, family = parse_server(server_text, service.port)
    return RealServer(address=address, port=port, family=family)


def check_persistence_engine(service: VirtualService) -> None:
    """A persistence engine only acts on persistent services (kpctl refuses the no-op; ipvsadm allows it)."""
    if service.pe_name and not service.persistent:
        raise InvalidInput(f"--pe {service.pe_name} needs persistence: add -p [TIMEOUT]")


def parse_timeouts(values: tuple[str, ...]) -> tuple[int, int, int]:
    """``TCP TCPFIN UDP`` seconds for --set; 0 leaves a value unchanged (kernel semantics)."""
    if len(values) != 3:
        raise InvalidInput(f"timeout needs 3 values (TCP TCPFIN UDP) or none, got {len(values)}")
    tcp, fin, udp = (parse_number(v, f"{name} timeout", 0, MAX_TIMEOUT) for v, name in zip(values, ("tcp", "tcpfin", "udp")))
    return tcp, fin, udp


def parse_daemon_state(state: str) -> str:
    if state not in ("master", "backup"):
        raise InvalidInput(f"invalid sync daemon state {state!r}: use master or backup")
    return state


def build_daemon(state: str, interface: str | None = None, syncid: str | None = None, maxlen: str | None = None,
                 group: str | None = None, port: str | None = None, ttl: str | None = None) -> SyncDaemon:
    """A sync daemon to start, with ipvsadm's ranges (interface defaults to eth0, as ipvsadm's)."""
    group_text = ""
    if group is not None:
        try:
            address = ipaddress.ip_address(group)
        except ValueError:
            address = None
        if address is None or not address.is_multicast:
            raise InvalidInput(f"invalid mcast-group {group!r}: must be an IPv4 or IPv6 multicast address")
        group_text = str(address)
    if interface is not None and not 0 < len(interface) < 16:
        raise InvalidInput(f"invalid mcast-interface {interface!r}: interface names are 1..15 characters")
    return SyncDaemon(
        state=parse_daemon_state(state), mcast_ifn=interface or "eth0",
        syncid=0 if syncid is None else parse_number(syncid, "syncid", 0, 255),
        sync_maxlen=0 if maxlen is None else parse_number(maxlen, "sync-maxlen", 1, 65535 - 20 - 8),
        mcast_group=group_text,
        mcast_port=0 if port is None else parse_number(port, "mcast-port", 1, 65535),
        mcast_ttl=0 if ttl is None else parse_number(ttl, "mcast-ttl", 1, 255),
    )
