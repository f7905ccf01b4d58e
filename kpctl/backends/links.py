"""Links and addresses over rtnetlink (kpctl.backends.rtnl), or from a snapshot's ``links``.

The VIP device is made the way kube-proxy makes it: a dummy link, created on the first
address and left administratively DOWN; addresses are host routes (/32, /128).
"""

from __future__ import annotations

import errno
import ipaddress
import os
from socket import AF_INET, AF_INET6, if_nametoindex, inet_ntop
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
        self._rtnl: Any = None

    def _route(self) -> Any:
        if self._rtnl is None:
            from kpctl.backends.rtnl import Rtnl

            self._rtnl = Rtnl()
        return self._rtnl

    def close(self) -> None:
        if self._rtnl is not None:
            self._rtnl.close()
            self._rtnl = None

    def links(self) -> tuple[Link, ...]:
        rtnl = self._route()
        addresses: dict[int, list[str]] = {}
        for index, family, packed, prefixlen in _read(rtnl.addresses):
            addresses.setdefault(index, []).append(f"{inet_ntop(family, packed)}/{prefixlen}")
        result = []
        for index, name, kind, flags in _read(rtnl.links):
            result.append(Link(
                name=name,
                kind=kind or ("loopback" if name == "lo" else ""),
                state="UP" if flags & IFF_UP else "DOWN",
                addresses=tuple(addresses.get(index, ())),
            ))
        return tuple(result)

    def _index(self, dev: str) -> int | None:
        try:
            return if_nametoindex(dev)
        except (OSError, ValueError):  # no such link in this namespace (ValueError: a NUL in the name)
            return None

    def _has_address(self, index: int, address: IPAddress) -> bool:
        """Whether ``address`` is bound on link ``index``, with any prefix length."""
        family = AF_INET if address.version == 4 else AF_INET6
        packed = address.packed
        return any(row[0] == index and row[2] == packed for row in _read(self._route().addresses, family))

    def add_vip(self, dev: str, address: IPAddress) -> bool:
        """Bind ADDRESS/32|128 on DEV, creating DEV as a DOWN dummy first if needed.

        Returns whether the link was created.  Nothing is left changed on failure.
        """
        from kpctl.backends.genl import NetlinkRefusal

        rtnl = self._route()
        index = self._index(dev)
        if index is not None and self._has_address(index, address):
            raise AlreadyExists(f"VIP {address} is already bound on {dev}")
        created = False
        if index is None:
            try:
                rtnl.add_dummy(dev)
            except NetlinkRefusal as exc:
                raise _link_error(exc, f"cannot create dummy link {dev}") from None
            created = True
            index = self._index(dev)
            if index is None:
                raise KernelError(f"dummy link {dev} vanished right after it was created")
        try:
            rtnl.add_address(index, address.packed, address.max_prefixlen)
        except NetlinkRefusal as exc:
            if created:
                rtnl.delete_link(index)
            if exc.errno == errno.EEXIST:
                raise AlreadyExists(f"VIP {address} is already bound on {dev}") from None
            raise _link_error(exc, f"cannot add {address} to {dev}") from None
        return created

    def delete_vip(self, dev: str, address: IPAddress) -> None:
        from kpctl.backends.genl import NetlinkRefusal

        index = self._index(dev)
        if index is None:
            raise NotFound(f"device {dev} does not exist")
        if not self._has_address(index, address):
            raise NotFound(f"VIP {address} is not bound on {dev}")
        try:
            self._route().delete_address(index, address.packed, address.max_prefixlen)
        except NetlinkRefusal as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise NotFound(f"VIP {address} is not bound on {dev}") from None
            raise _link_error(exc, f"cannot delete {address} from {dev}") from None


def _read(dump: Any, *args: Any) -> Any:
    """``dump(*args)``'s rows (Rtnl.links, Rtnl.addresses); a refusal as kpctl's error."""
    from kpctl.backends.genl import NetlinkRefusal

    try:
        return dump(*args)
    except NetlinkRefusal as exc:
        raise _link_error(exc, "cannot read links and addresses") from None


def _link_error(exc: Any, what: str) -> Exception:
    code = getattr(exc, "errno", 0)
    if code in (errno.EPERM, errno.EACCES):
        return PermissionDenied(what)
    if code == errno.EOPNOTSUPP:
        return KernelFeatureMissing(f"{what}: the kernel has no dummy link support",
                                    "CONFIG_DUMMY is not set; load it with `modprobe dummy`")
    return KernelError(f"{what}: {os.strerror(code) if code else exc}")
