"""NodeView: a NodeSnapshot's sections parsed into the models a trace (or doctor) reads.

Missing sections give empty values; the view never raises for an absent piece, only for
a malformed one (InvalidInput from the parsers).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kpctl.errors import InvalidInput
from kpctl.model.snapshot import NodeSnapshot

if TYPE_CHECKING:  # (the models of the modes a node has are imported where they are read)
    from kpctl.core.nft_json import TableIndex
    from kpctl.model.ipset import IPSet
    from kpctl.model.iptables import Ruleset
    from kpctl.model.ipvs import VirtualService


@dataclass(frozen=True)
class Route:
    """One route of `ip -j route show table local|main`."""

    table: str  # local|main
    type: str  # local|unicast|broadcast|blackhole|unreachable|prohibit|anycast|multicast…
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    dev: str | None = None
    gateway: str | None = None
    prefsrc: str | None = None
    metric: int = 0

    def describe(self) -> str:
        text = ("" if self.type == "unicast" else self.type + " ") + (
            "default" if self.dst.prefixlen == 0 else str(self.dst))
        if self.gateway:
            text += f" via {self.gateway}"
        if self.dev:
            text += f" dev {self.dev}"
        if self.prefsrc:
            text += f" src {self.prefsrc}"
        return text + f" (table {self.table})"


@dataclass(frozen=True)
class Link:
    """One network device of the node and its addresses."""

    name: str
    kind: str = ""
    state: str = ""
    addresses: tuple[str, ...] = ()  # "10.254.0.1/32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "state": self.state, "addresses": list(self.addresses)}


@dataclass(frozen=True)
class RouteResult:
    """The answer of a FIB lookup: the kind of route found and the route itself."""

    kind: str  # local|unicast|blackhole|unreachable|prohibit|none
    route: Route | None = None

    @property
    def dev(self) -> str | None:
        return self.route.dev if self.route else None


def _network(text: str, family: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if text == "default":
        return ipaddress.ip_network("0.0.0.0/0" if family == "inet" else "::/0")
    return ipaddress.ip_network(text, strict=False)


def parse_routes(table: str, rows: Any) -> tuple[Route, ...]:
    routes = []
    for row in rows or ():
        dst = str(row.get("dst", "default"))
        family = "inet6" if any(":" in str(row.get(k) or "") for k in ("dst", "gateway", "prefsrc")) else "inet"
        if dst != "default" and ":" not in dst and "." not in dst:
            continue  # e.g. multicast "ff00::/8" forms are covered above; anything odd is skipped
        try:
            network = _network(dst, family)
        except ValueError:
            continue
        routes.append(Route(
            table=table,
            type=str(row.get("type", "local" if table == "local" else "unicast")),
            dst=network,
            dev=row.get("dev"),
            gateway=row.get("gateway"),
            prefsrc=row.get("prefsrc"),
            metric=int(row.get("metric", 0) or 0),
        ))
    return tuple(routes)


def _inert(ruleset: Ruleset) -> bool:
    """No rule, no user chain and every policy ACCEPT: walking it changes nothing.
    (A bare built-in chain with policy DROP is not inert: it drops everything.)"""
    return ruleset.empty and all((c.policy or "ACCEPT") == "ACCEPT"
                                 for t in ruleset.tables.values() for c in t.chains.values())


def _parse_ipsets(text: str) -> dict[str, IPSet]:
    from kpctl.core import ipset_save

    parsed: Any = ipset_save.parse_save(text)
    if isinstance(parsed, Mapping):
        return dict(parsed)
    return {ipset.name: ipset for ipset in parsed}


@dataclass(frozen=True)
class NodeView:
    """What a node looks like to a packet: IPVS, sets, rules, addresses, routes, sysctls."""

    snapshot: NodeSnapshot = field(default_factory=lambda: NodeSnapshot(1, {}))

    def section(self, name: str, default: Any = None) -> Any:
        value = self.snapshot.section(name, default)
        return default if value is None else value

    @cached_property
    def ipvs_services(self) -> tuple[VirtualService, ...]:
        from kpctl.core.trace.ipvs import (
            build_service,  # the snapshot's error for a malformed row
        )

        ipvs = self.section("ipvs", {})
        services = ipvs.get("services", ())
        if not isinstance(services, (list, tuple)):
            raise InvalidInput(f"snapshot: bad ipvs services: a list expected, not {type(services).__name__}")
        return tuple(build_service(s) for s in services)

    @cached_property
    def ipvs_service_rows(self) -> list[dict[str, Any]] | None:
        """The ``ipvs.services`` rows when they can be scanned as they are (kpctl.core.trace.ipvs.service_rows)."""
        ipvs = self.section("ipvs", {})
        if not ipvs:  # no IPVS table: no rows, and no IPVS model to import
            return []
        from kpctl.core.trace.ipvs import service_rows

        return service_rows(ipvs)

    @property
    def has_ipvs(self) -> bool:
        return bool(self.section("ipvs"))

    @cached_property
    def ipsets(self) -> dict[str, IPSet]:
        text = self.section("ipsets", "")
        return _parse_ipsets(text) if text else {}

    @cached_property
    def rulesets(self) -> dict[str, tuple[Ruleset, ...]]:
        """Per family, the iptables rule sets to walk (nft backend first, then legacy)."""
        out: dict[str, tuple[Ruleset, ...]] = {}
        for family, backends in (self.section("iptables", {}) or {}).items():
            found = []
            for backend in ("nft", "legacy"):
                text = (backends or {}).get(backend)
                if text:
                    from kpctl.core.iptables_save import parse_save  # (a node without rules needs no reader)

                    source = self.snapshot.source
                    where = "iptables-save output" if source == "(live)" else \
                        f"snapshot {source!r}" if source else "snapshot"
                    ruleset = parse_save(text, family, backend, lazy=True,  # chains parsed when walked
                                         origin=f"{where} ({family} {backend})")
                    if not _inert(ruleset):
                        found.append(ruleset)
            out[family] = tuple(found)
        return out

    @property
    def nftables(self) -> Any:
        return self.section("nftables", None)

    def nft_table(self, family: str, table: str) -> TableIndex:
        """The index of nft table ``family table`` (its chains, rules by chain, sets), made once: a
        trace walks each base chain of kube-proxy's table through it, 8 walks at a node's 120,000
        objects (an index each was 0.35 s of 0.9)."""
        indexes = self._nft_indexes
        found = indexes.get((family, table))
        if found is None:
            from kpctl.core.nft_json import TableIndex

            found = indexes[(family, table)] = TableIndex(self.nftables, family, table)
        return found

    @cached_property
    def _nft_indexes(self) -> dict[tuple[str, str], TableIndex]:
        return {}

    @cached_property
    def nft_base_chains(self) -> list[dict[str, Any]]:
        """The bodies of the ruleset's chains on a hook, in document order."""
        from kpctl.core.nft_json import items

        return [chain for chain in items(self.nftables, "chain") if "hook" in chain]

    @cached_property
    def nft_hook_order(self) -> dict[tuple[str, str, str], tuple[int, int]]:
        """Each base chain's (table handle, chain handle), iptables-nft's too: the order their hooks
        were registered in, as far as the ruleset tells (handles only grow); among chains of one
        priority the kernel runs the one registered last first."""
        from kpctl.core.nft_json import items

        tables = {(t.get("family"), t.get("name")): t.get("handle") for t in items(self.nftables, "table")}
        order: dict[tuple[str, str, str], tuple[int, int]] = {}
        for chain in self.nft_base_chains:
            key = (str(chain.get("family")), str(chain.get("table")), str(chain.get("name")))
            table, handle = tables.get(key[:2]), chain.get("handle")
            if type(table) is int and type(handle) is int:
                order[key] = (table, handle)
        return order

    @cached_property
    def links(self) -> tuple[Link, ...]:
        return tuple(Link(str(row.get("name")), str(row.get("kind", "") or ""), str(row.get("state", "") or ""),
                          tuple(row.get("addresses", ()))) for row in self.section("links", ()))

    @cached_property
    def routes(self) -> dict[str, tuple[Route, ...]]:
        section = self.section("routes", {})
        return {name: parse_routes(name, section.get(name)) for name in ("local", "main")}

    @property
    def sysctls(self) -> Mapping[str, str]:
        return self.section("sysctls", {})  # type: ignore[no-any-return]

    def sysctl(self, name: str, default: str | None = None) -> str | None:
        value = self.sysctls.get(name)
        return default if value is None else str(value)

    # ------------------------------------------------------------ addresses and routing

    @cached_property
    def local_addresses(self) -> dict[str, str]:
        """Every address of the node → the link holding it (the local table's `local` routes)."""
        out: dict[str, str] = {}
        for link in self.links:
            for cidr in link.addresses:
                out[cidr.split("/")[0]] = link.name
        for route in self.routes.get("local", ()):
            if route.type == "local" and route.dst.prefixlen == route.dst.max_prefixlen:
                out.setdefault(str(route.dst.network_address), route.dev or "lo")
        return out

    def is_local(self, address: str) -> bool:
        return self.address_type(address) == "LOCAL"

    def address_type(self, address: str) -> str:
        """The addrtype match's view: LOCAL, BROADCAST, MULTICAST or UNICAST (UNSPEC for 0.0.0.0)."""
        ip = ipaddress.ip_address(address)
        if ip.is_unspecified:
            return "UNSPEC"
        if ip.is_multicast:
            return "MULTICAST"
        if address in self.local_addresses:
            return "LOCAL"
        for route in self.routes.get("local", ()):
            if route.dst.version == ip.version and ip in route.dst:
                if route.type == "local":
                    return "LOCAL"
                if route.type == "broadcast":
                    return "BROADCAST"
        if ip.version == 4 and ip == ipaddress.ip_address("255.255.255.255"):
            return "BROADCAST"
        return "UNICAST"

    def lookup(self, address: str) -> RouteResult:
        """The kernel's FIB lookup: the local table first, then main's longest prefix."""
        ip = ipaddress.ip_address(address)
        for route in self.routes.get("local", ()):
            if route.type == "local" and route.dst.version == ip.version and ip in route.dst:
                return RouteResult("local", route)
        if address in self.local_addresses and not self.routes.get("local"):
            dev = self.local_addresses[address]
            host = ipaddress.ip_network(address)
            return RouteResult("local", Route("local", "local", host, dev, None, address))
        best: Route | None = None
        for route in self.routes.get("main", ()):
            if route.dst.version != ip.version or ip not in route.dst:
                continue
            if best is None or route.dst.prefixlen > best.dst.prefixlen or (
                    route.dst.prefixlen == best.dst.prefixlen and route.metric < best.metric):
                best = route
        if best is None:
            return RouteResult("none")
        if best.type in ("blackhole", "unreachable", "prohibit"):
            return RouteResult(best.type, best)
        return RouteResult("unicast", best)

    def source_for(self, destination: str) -> str | None:
        """The source address the node picks for a socket talking to ``destination``."""
        result = self.lookup(destination)
        if result.route is not None and result.route.prefsrc:
            return result.route.prefsrc
        if result.kind == "local":
            return destination
        if result.route is not None and result.route.dev:
            return self.primary_address(result.route.dev, ipaddress.ip_address(destination).version)
        return None

    def primary_address(self, dev: str, version: int = 4, fallback: bool = True) -> str | None:
        """The address MASQUERADE/REDIRECT take on ``dev`` (inet_select_addr): the device's first
        global address, else the first global address of any device, in link order."""
        def usable(cidr: str) -> str | None:
            ip = ipaddress.ip_interface(cidr)
            if ip.version != version or ip.ip.is_link_local or ip.ip.is_loopback:
                return None
            return str(ip.ip)

        for link in self.links:
            if link.name == dev:
                for cidr in link.addresses:
                    if usable(cidr):
                        return usable(cidr)
        if not fallback:
            return None
        for link in self.links:
            for cidr in link.addresses:
                if usable(cidr):
                    return usable(cidr)
        return None

    def link_toward(self, address: str) -> str | None:
        """The device a packet from ``address`` arrives on (the reverse route's device)."""
        result = self.lookup(address)
        if result.kind == "local":
            return "lo"
        return result.dev
