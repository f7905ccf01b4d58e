"""Choosing IPVS connections (/proc/net/ip_vs_conn entries) by service, server and client."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable

from kpctl.core.address import parse_address, parse_port, parse_service
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import Connection


@dataclass(frozen=True)
class Endpoint:
    address: str  # as inet_ntop writes it (parse_address's text)
    port: int | None = None  # None: any port

    def matches(self, address: str, port: int) -> bool:
        """Whether ``address``:``port`` is this one (both addresses as inet_ntop writes them: a
        Connection's are, kpctl.core.ipvs_conn)."""
        return address == self.address and (self.port is None or self.port == port)


def parse_endpoint(text: str, what: str) -> Endpoint:
    """``ADDR``, ``ADDR:PORT``, ``[V6]`` or ``[V6]:PORT``."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise InvalidInput(f"invalid {what} {text!r}: expected [ADDR]:PORT")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    address, _ = parse_address(host, f"{what} {text!r}")
    return Endpoint(address, None if port_text is None else parse_port(port_text, f"{what} {text!r}"))


@dataclass(frozen=True)
class ConnectionFilter:
    protocol: str | None = None  # of the service chosen (lower case)
    virtual: Endpoint | None = None  # the service's address and port
    server: Endpoint | None = None
    client: Endpoint | None = None

    def matches(self, conn: Connection) -> bool:
        if self.virtual is not None and (conn.protocol.lower() != self.protocol
                                         or not self.virtual.matches(conn.virtual_address, conn.virtual_port)):
            return False
        if self.server is not None and not self.server.matches(conn.server_address, conn.server_port):
            return False
        return self.client is None or self.client.matches(conn.client_address, conn.client_port)


def connection_filter(service: str | None, server: str | None, client: str | None) -> ConnectionFilter:
    key = parse_service(service) if service else None
    if key is not None and key.fwmark:
        raise InvalidInput(f"cannot filter connections by {service!r}: the connection table has no fwmarks; "
                           "filter by --server or --client instead")
    return ConnectionFilter(None if key is None else key.protocol,
                            None if key is None else Endpoint(key.address or "", key.port),
                            parse_endpoint(server, "server") if server else None,
                            parse_endpoint(client, "client") if client else None)


def filter_connections(conns: Iterable[Connection], chosen: ConnectionFilter) -> list[Connection]:
    if chosen == ConnectionFilter():  # nothing chosen: every connection
        return list(conns)
    return [c for c in conns if chosen.matches(c)]
