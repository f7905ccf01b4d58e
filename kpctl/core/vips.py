"""VIPs on kube-ipvs0: parsing, and what on the node refers to each."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar, Union

from kpctl.core.address import pack_address_or_none
from kpctl.errors import InvalidInput
from kpctl.model.links import Link, Vip

if TYPE_CHECKING:
    from kpctl.model.ipset import IPSet
    from kpctl.model.ipvs import VirtualService

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # evaluated at run time: no `|` on 3.9
T = TypeVar("T")
_IFNAME = re.compile(r"^[^\s/:]{1,15}$")


def parse_vip(text: str) -> IPAddress:
    """``10.254.0.1``, ``10.254.0.1/32``, ``fd00::1`` or ``fd00::1/128`` -> the address.

    kube-proxy binds host addresses only, so any other prefix length is refused.
    """
    raw = text.strip()
    address_text, _, prefix = raw.partition("/")
    try:
        address = ipaddress.ip_address(address_text.strip("[]"))
    except ValueError:
        raise InvalidInput(f"invalid VIP address {text!r}", "expected an IPv4 or IPv6 address") from None
    if prefix and prefix != str(address.max_prefixlen):
        raise InvalidInput(f"invalid VIP {text!r}: a VIP is a /{address.max_prefixlen}, not /{prefix}")
    if address.is_multicast or address.is_unspecified:
        raise InvalidInput(f"invalid VIP address {text!r}: not a unicast address")
    return address


def validate_dev(name: str) -> str:
    if not _IFNAME.match(name) or name in (".", ".."):
        raise InvalidInput(f"invalid device name {name!r}", "at most 15 characters, no '/', ':' or spaces")
    return name


def addresses_of(link: Link) -> list[tuple[IPAddress, int]]:
    result = []
    for text in link.addresses:
        address, _, prefix = text.partition("/")
        parsed = ipaddress.ip_address(address)
        result.append((parsed, int(prefix) if prefix else parsed.max_prefixlen))
    return result


def find_link(links: Iterable[Link], dev: str) -> Link | None:
    return next((link for link in links if link.name == dev), None)


def bound_vips(links: Iterable[Link], dev: str) -> list[tuple[IPAddress, int]]:
    link = find_link(links, dev)
    return addresses_of(link) if link else []


def _index(pairs: Iterable[tuple[str | None, T]]) -> dict[bytes, list[T]]:
    """(address text, item) pairs grouped by packed address, in order; non-addresses dropped.

    One pass over services and members instead of comparing each with every VIP.
    """
    index: dict[bytes, list[T]] = {}
    for text, item in pairs:
        if text:
            packed = pack_address_or_none(text)
            if packed is not None:
                index.setdefault(packed, []).append(item)
    return index


def build_vips(links: Iterable[Link], dev: str, services: Iterable[VirtualService],
               ipsets: Iterable[IPSet]) -> tuple[Vip, ...]:
    """Every address on ``dev`` with the IPVS services and ipset members that name it."""
    bound = bound_vips(links, dev)
    if not bound:
        return ()
    by_service = _index((svc.address, svc) for svc in services if not svc.fwmark)
    # The first dimension is the service address in every KUBE-* set that holds VIPs;
    # KUBE-LOOP-BACK's third dimension is a pod, not a VIP.
    by_member = _index((member.ip, (ipset.name, member.raw)) for ipset in ipsets for member in ipset.members)
    return tuple(
        Vip(
            address=str(address),
            prefixlen=prefixlen,
            dev=dev,
            services=tuple(str(svc.key) for svc in by_service.get(address.packed, ())),
            ipset_entries=tuple(f"{name} {raw}" for name, raw in by_member.get(address.packed, ())),
        )
        for address, prefixlen in bound
    )
