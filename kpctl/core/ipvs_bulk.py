"""The lines ``ipvsadm -S`` writes for plain services, read without building model objects.

A restore of 10,000 services × 5 real servers is 60,000 lines of two shapes::

    -A -t 10.96.0.1:80 -s rr
    -a -t 10.96.0.1:80 -r 172.16.0.1:8080 -m -w 1

Read through the general parser (:mod:`kpctl.core.ipvs_save`) each line builds a frozen
VirtualService or RealServer (with its Stats), which costs more than the kernel's work for
it.  :func:`parse_line` recognises exactly these shapes (IPv4, TCP or UDP, canonical
addresses) and returns a compact :class:`BulkAddService` / :class:`BulkAddServer` that
holds only what the request needs; ``to_operation()`` gives the Operation the general
parser returns for the same line (unit-tested over generated inputs).  Any other line,
including every line with an error, is left to the general parser, so messages and line
numbers stay its own.
"""

from __future__ import annotations

import socket
from typing import Union

from kpctl.core.ipvs_plan import AddServer, AddService, Operation
from kpctl.model.ipvs import SCHEDULERS, SVC_F_PERSISTENT, RealServer, ServiceKey, VirtualService

MAX_PERSISTENT_TIMEOUT = 86400 * 31  # ipvs_options.MAX_TIMEOUT (not imported: it pulls ipaddress in)
_PROTOCOLS = {"-t": "tcp", "-u": "udp"}
_FORWARD = {"-m": "masq", "-g": "route"}
_SCHEDULERS = frozenset(SCHEDULERS)


class BulkAddService:
    """``-A -t|-u V4:PORT -s SCHED [-p TIMEOUT]``: AddService of a service with no other option."""

    __slots__ = ("key", "packed", "scheduler", "timeout", "line")
    adds_service = True  # see kpctl.core.ipvs_plan.AddsTracker

    def __init__(self, key: ServiceKey, packed: bytes, scheduler: str, timeout: int, line: int) -> None:
        self.key, self.packed, self.scheduler, self.timeout, self.line = key, packed, scheduler, timeout, line

    @property
    def flags(self) -> int:
        return SVC_F_PERSISTENT if self.timeout else 0

    def to_operation(self) -> AddService:
        key = self.key
        service = VirtualService(family="inet", protocol=key.protocol, address=key.address, port=key.port,
                                 fwmark=0, scheduler=self.scheduler, flags=self.flags, timeout=self.timeout,
                                 netmask=0xFFFFFFFF, pe_name="")
        return AddService(service, line=self.line)

    @property
    def service(self) -> VirtualService:
        return self.to_operation().service

    def describe(self) -> str:
        return self.to_operation().describe()


class BulkAddServer:
    """``-a -t|-u V4:PORT -r V4:PORT -m|-g -w WEIGHT``: AddServer with no threshold or tunnel option."""

    __slots__ = ("key", "service_packed", "address", "packed", "port", "forward", "weight", "line")
    adds_service = False

    def __init__(self, key: ServiceKey, service_packed: bytes, address: str, packed: bytes, port: int,
                 forward: str, weight: int, line: int) -> None:
        self.key, self.service_packed = key, service_packed
        self.address, self.packed, self.port = address, packed, port
        self.forward, self.weight, self.line = forward, weight, line

    @property
    def server_key(self) -> tuple[str, int]:
        return (self.address, self.port)

    @property
    def server(self) -> RealServer:
        return RealServer(address=self.address, port=self.port, family="inet", forward=self.forward,
                          weight=self.weight)

    def to_operation(self) -> AddServer:
        return AddServer(self.key, self.server, line=self.line)

    def describe(self) -> str:
        return self.to_operation().describe()


BulkOperation = Union[BulkAddService, BulkAddServer]


def _ipv4(text: str) -> bytes | None:
    """The 4 bytes of a dotted quad written the way inet_ntop writes it; None for anything else."""
    try:
        packed = socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return None
    return packed if socket.inet_ntop(socket.AF_INET, packed) == text else None


def _number(text: str, high: int) -> int | None:
    # (a long text is the general parser's: int() of over 4300 digits raises there, as it did before)
    if len(text) <= 10 and text.isascii() and text.isdigit():
        value = int(text)
        if value <= high:
            return value
    return None


class BulkParser:
    """Reads one line at a time; remembers the services it has seen (every -a line repeats one)."""

    def __init__(self) -> None:
        self._services: dict[tuple[str, str], tuple[ServiceKey, bytes] | None] = {}
        self._last: tuple[str, str, tuple[ServiceKey, bytes] | None] = ("", "", None)
        self._ports: dict[str, int | None] = {}  # port and weight texts repeat: each read once

    def _service(self, option: str, text: str) -> tuple[ServiceKey, bytes] | None:
        last = self._last
        if text == last[1] and option == last[0]:
            return last[2]
        found: tuple[ServiceKey, bytes] | None | bool = self._services.get((option, text), False)
        if found is False:
            found = None
            host, sep, port_text = text.partition(":")
            port = _number(port_text, 0xFFFF) if sep else None
            packed = _ipv4(host) if port is not None else None
            if packed is not None and port is not None:
                found = (ServiceKey(family="inet", protocol=_PROTOCOLS[option], address=host, port=port), packed)
            self._services[(option, text)] = found
        self._last = (option, text, found)  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def _port(self, text: str) -> int | None:
        """A port or weight (0..65535) written in ASCII digits; None for anything else."""
        value = self._ports.get(text, -1)
        if value == -1:
            value = self._ports[text] = _number(text, 0xFFFF)
        return value

    def parse_line(self, number: int, tokens: list[str]) -> BulkOperation | None:
        """The compact operation of a line split into ``tokens``, or None: the general parser's line."""
        count = len(tokens)
        if count == 8:
            command, option, service_text, r_option, server_text, forward_option, w_option, weight_text = tokens
            if command != "-a" or r_option != "-r" or w_option != "-w" or option not in _PROTOCOLS:
                return None
            forward = _FORWARD.get(forward_option)
            weight = self._port(weight_text)
            service = self._service(option, service_text)
            if forward is None or weight is None or service is None:
                return None
            host, sep, port_text = server_text.partition(":")
            port = self._port(port_text) if sep else None
            packed = _ipv4(host) if port is not None else None
            if packed is None or port is None:
                return None
            key = service[0]
            if forward == "route":
                port = key.port  # ipvsadm: a direct-routing server takes the service's port
            return BulkAddServer(key, service[1], host, packed, port, forward, weight, number)
        if (count == 5 or count == 7) and tokens[0] == "-A" and tokens[1] in _PROTOCOLS and tokens[3] == "-s":
            timeout = 0
            if count == 7:
                if tokens[5] != "-p":
                    return None
                timeout = _number(tokens[6], MAX_PERSISTENT_TIMEOUT) or 0
                if not timeout:
                    return None
            service = self._service(tokens[1], tokens[2])
            if service is None or tokens[4] not in _SCHEDULERS or (service[0].port == 0 and not timeout):
                return None  # port 0 without persistence: the general parser's error
            return BulkAddService(service[0], service[1], tokens[4], timeout, number)
        return None


def parse_restore_bulk(text: str) -> list[Operation | BulkOperation]:
    """:func:`kpctl.core.ipvs_save.parse_restore`, with the plain adds as compact operations.

    ``[op.to_operation() for op in result]`` equals ``parse_restore(text)``, and errors are the same.
    """
    parse_line = BulkParser().parse_line
    ops: list[Operation | BulkOperation] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        op: Operation | BulkOperation | None = parse_line(number, raw.split())
        if op is None:
            op = _parse_rule_line(number, raw)
            if op is None:
                continue
        ops.append(op)
    return ops


def _parse_rule_line(number: int, raw: str) -> Operation | None:
    # imported only when a line needs it: the general parser pulls ipaddress, re and the
    # option rules in, which a file of plain adds never needs
    from kpctl.core.ipvs_save import parse_rule_line

    return parse_rule_line(number, raw)
