"""The real servers of every IPVS service from the text of /proc/net/ip_vs: the table in one read.

`ipvsadm -Ln` (and the netlink path of :mod:`kpctl.backends.ipvs_dump`) asks the kernel for the
servers of each service in a dump of its own: 10,000 dumps at 10,000 services.  The kernel also
writes the whole table as text, in the current network namespace (net/netfilter/ipvs/ip_vs_ctl.c,
ip_vs_info_seq_show)::

    IP Virtual Server version 1.2.1 (size=4096)
    Prot LocalAddress:Port Scheduler Flags
      -> RemoteAddress:Port Forward Weight ActiveConn InActConn
    TCP  0AFE0001:01BB rr
      -> AC1E0105:192B      Masq    1      0          0
    UDP  [2001:0db8:0000:0000:0000:0000:0000:0053]:0035 mh
    FWM  00000064 lblc
      -> 0A000014:0000      Route   1      0          0

A service line has its protocol, hex address and port (or ``FWM`` and its mark), scheduler, and
``ops``/``persistent`` words; a server line its hex address and port, forwarding method, weight,
active and inactive connections: every field `ipvsadm -Ln`'s default view shows of a server, and
none of the others (thresholds, persistent connections, tunnels, counters).  The service line
lacks scheduler flags, the persistence engine and, for a fwmark, the family: services are read
from netlink (one GET_SERVICE dump), and only their servers from here.  The kernel names every
forwarding method but local, tunnel and route "Masq" (ip_vs_fwd_name): a server with the bypass
method, which only a raw netlink client can add (not ipvsadm, kube-proxy or kpctl), reads as masq.
"""

from __future__ import annotations

from socket import AF_INET6, inet_pton
from typing import Any

from kpctl.core.address import pack_address, unpack_address
from kpctl.model.ipvs import RealServer, Stats, VirtualService

ProcKey = tuple[Any, ...]  # ("TCP", packed address, port) or ("FWM", mark)
_FORWARD = {"Masq": "masq", "Local": "local", "Tunnel": "tunnel", "Route": "route"}
_UNREAD_SERVER = (None,) * 4  # persistent connections, tunnel type, port and flags: not on the line
_UNREAD_STATS = Stats(*(None,) * 10)  # type: ignore[arg-type]  # nor the counters


def proc_key(service: VirtualService) -> ProcKey:
    """How /proc/net/ip_vs names ``service``."""
    if service.fwmark:
        return ("FWM", service.fwmark)
    return (str(service.protocol).upper(), pack_address(service.address), service.port)


def _address_port(text: str) -> tuple[bytes, int]:
    """``0A000001:0050`` or ``[2001:0db8:…]:0050`` -> (packed address, port)."""
    if text[0] == "[":
        close = text.index("]")
        return inet_pton(AF_INET6, text[1:close]), int(text[close + 2:], 16)
    address, _, port = text.partition(":")
    if len(address) != 8:
        raise ValueError(text)
    return bytes.fromhex(address), int(port, 16)


def _server(head: str, rest: str, tails: dict[str, tuple[Any, ...]]) -> RealServer:
    """The RealServer of a server line (``head``: its address:port; ``rest``: method, weight, active
    and inactive connections, whose fields most servers share: read once each, ``tails``); the
    fields the line lacks are None (such a server serves the default view only)."""
    tail = tails.get(rest)
    if tail is None:
        forward, weight, active, inactive = rest.split()
        tail = tails[rest] = (_FORWARD[forward], int(weight), None, None, int(active), int(inactive),
                              *_UNREAD_SERVER, _UNREAD_STATS)
    packed, port = _address_port(head)
    address, family = unpack_address(packed)
    return RealServer._make((address, port, family, *tail))


def servers_by_service(text: str) -> dict[ProcKey, list[RealServer] | None]:
    """Each service's real servers, in the kernel's order, keyed as :func:`proc_key` keys a
    service; None for a key the text names twice (a fwmark's IPv4 and IPv6 services) or a
    service with a line this reader does not know: read those from netlink.  An unknown layout
    gives nothing (every service from netlink)."""
    lines = text.split("\n")
    if len(lines) < 3 or not lines[1].startswith("Prot LocalAddress:Port"):
        return {}
    found: dict[ProcKey, list[RealServer] | None] = {}
    servers: list[RealServer] | None = None  # the current service's, while it is read from here
    key: ProcKey = ()
    tails: dict[str, tuple[Any, ...]] = {}
    for line in lines[3:]:
        fields = line.split(None, 2)
        if not fields:
            continue
        if fields[0] == "->":
            if servers is not None:
                try:
                    servers.append(_server(fields[1], fields[2], tails))
                except (ValueError, KeyError, IndexError, OSError):  # a line of another layout
                    found[key] = servers = None
            continue
        try:
            key = ("FWM", int(fields[1], 16)) if fields[0] == "FWM" else (fields[0], *_address_port(fields[1]))
        except (ValueError, IndexError, OSError):  # a service this reader cannot name: it and its servers skipped
            servers = None
            continue
        servers = [] if key not in found else None  # a name met twice: neither service from here
        found[key] = servers
    return found
