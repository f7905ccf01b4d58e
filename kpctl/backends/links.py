"""Links and addresses over rtnetlink (pyroute2 IPRoute), or from a snapshot's ``links``.

The VIP device is made the way kube-proxy makes it: a dummy link, created on the first
address and left administratively DOWN; addresses are host routes (/32, /128).
"""

from __future__ import annotations

import errno
import ipaddress
from typing import Any, Union

from kpctl.errors import (
    AlreadyExists,
    InvalidInput,
    KernelError,
    KernelFeatureMissing,
    NotFound,
    PermissionDenied,
)
from kpctl.model.links import Link

IFF_UP = 0x1
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # evaluated at run time: no `|` on 3.9


def open_links(app: Any) -> SnapshotLinks | LiveLinks:
    snapshot = app.snapshot()
    if snapshot is not None:
        from kpctl.backends.snapshot import required_section

        return SnapshotLinks(required_section(snapshot, "links"), snapshot.source)
    return LiveLinks()


class SnapshotLinks:
    def __init__(self, section: Any, source: str = "") -> None:
        if not isinstance(section, list):
            raise InvalidInput(f"snapshot {source!r}: links is not a list")
        try:
            self._links = tuple(Link.from_dict(item) for item in section)
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"snapshot {source!r}: bad links entry ({exc})") from None

    def links(self) -> tuple[Link, ...]:
        return self._links

    def add_vip(self, dev: str, address: IPAddress) -> bool:
        raise InvalidInput("vip add changes the kernel and cannot run on --snapshot")

    def delete_vip(self, dev: str, address: IPAddress) -> None:
        raise InvalidInput("vip delete changes the kernel and cannot run on --snapshot")


class LiveLinks:
    def __init__(self) -> None:
        self._ipr: Any = None

    def _route(self) -> Any:
        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def links(self) -> tuple[Link, ...]:
        ipr = self._route()
        addresses: dict[int, list[str]] = {}
        for msg in ipr.get_addr():
            address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if address:
                addresses.setdefault(msg["index"], []).append(f"{address}/{msg['prefixlen']}")
        result = []
        for msg in ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            kind = (info.get_attr("IFLA_INFO_KIND") if info is not None else None) or ""
            if not kind and msg.get_attr("IFLA_IFNAME") == "lo":
                kind = "loopback"
            result.append(Link(
                name=msg.get_attr("IFLA_IFNAME"),
                kind=kind,
                state="UP" if msg["flags"] & IFF_UP else "DOWN",
                addresses=tuple(addresses.get(msg["index"], ())),
            ))
        return tuple(result)

    def _index(self, dev: str) -> int | None:
        found = self._route().link_lookup(ifname=dev)
        return found[0] if found else None

    def _has_address(self, index: int, address: IPAddress) -> bool:
        family = 2 if address.version == 4 else 10
        for msg in self._route().get_addr(family=family, index=index):
            local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            if local and ipaddress.ip_address(local) == address:
                return True
        return False

    def add_vip(self, dev: str, address: IPAddress) -> bool:
        """Bind ADDRESS/32|128 on DEV, creating DEV as a DOWN dummy first if needed.

        Returns whether the link was created.  Nothing is left changed on failure.
        """
        from pyroute2.netlink.exceptions import NetlinkError

        ipr = self._route()
        index = self._index(dev)
        if index is not None and self._has_address(index, address):
            raise AlreadyExists(f"VIP {address} is already bound on {dev}")
        created = False
        if index is None:
            try:
                ipr.link("add", ifname=dev, kind="dummy")
            except NetlinkError as exc:
                raise _link_error(exc, f"cannot create dummy link {dev}") from None
            created = True
            index = self._index(dev)
            if index is None:
                raise KernelError(f"dummy link {dev} vanished right after it was created")
        extra = {"broadcast": str(address)} if address.version == 4 else {}
        try:
            ipr.addr("add", index=index, address=str(address), prefixlen=address.max_prefixlen, **extra)
        except NetlinkError as exc:
            if created:
                ipr.link("del", index=index)
            if exc.code == errno.EEXIST:
                raise AlreadyExists(f"VIP {address} is already bound on {dev}") from None
            raise _link_error(exc, f"cannot add {address} to {dev}") from None
        return created

    def delete_vip(self, dev: str, address: IPAddress) -> None:
        from pyroute2.netlink.exceptions import NetlinkError

        index = self._index(dev)
        if index is None:
            raise NotFound(f"device {dev} does not exist")
        if not self._has_address(index, address):
            raise NotFound(f"VIP {address} is not bound on {dev}")
        try:
            self._route().addr("del", index=index, address=str(address), prefixlen=address.max_prefixlen)
        except NetlinkError as exc:
            if exc.code == errno.EADDRNOTAVAIL:
                raise NotFound(f"VIP {address} is not bound on {dev}") from None
            raise _link_error(exc, f"cannot delete {address} from {dev}") from None


def _link_error(exc: Any, what: str) -> Exception:
    code = getattr(exc, "code", 0)
    if code in (errno.EPERM, errno.EACCES):
        return PermissionDenied(what)
    if code == errno.EOPNOTSUPP:
        return KernelFeatureMissing(f"{what}: the kernel has no dummy link support",
                                    "CONFIG_DUMMY is not set; load it with `modprobe dummy`")
    return KernelError(f"{what}: {getattr(exc, 'args', [None, str(exc)])[-1]}")
