"""Kernel modules kube-proxy's IPVS mode needs, and what the node has of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# Where a required module stands.
LOADED = "loaded"  # listed in /proc/modules
BUILTIN = "builtin"  # compiled in (modules.builtin or /boot/config-* =y, or the kernel shows it)
AVAILABLE = "available"  # a module file under /lib/modules/RELEASE, not loaded
MISSING = "missing"  # none of the above
UNKNOWN = "unknown"  # no module support and nothing the kernel exposes tells us

# The verdict a user cares about.
READY = "ready"  # kube-proxy's IPVS mode can run (exit 0)
NOT_READY = "not-ready"  # something is missing but can be had (exit 1)
IMPOSSIBLE = "impossible"  # IPVS itself cannot run on this kernel (exit 6)


@dataclass(frozen=True)
class RequiredModule:
    """A kernel module kube-proxy's IPVS mode needs, and why."""

    name: str
    reason: str  # why kube-proxy wants it, shown to the user

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IpsetTool:
    """The ipset program kube-proxy runs (it requires version >= 6.0)."""

    present: bool
    version: str | None = None  # "7.17"
    protocol: int | None = None  # the kernel/userspace protocol `ipset version` reports
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KernelFacts:
    """Everything read from the node that the module verdict depends on."""

    release: str  # uname -r
    loaded: frozenset[str] | None  # None: no /proc/modules (CONFIG_MODULES unset)
    builtin: frozenset[str] = frozenset()  # from modules.builtin
    available: frozenset[str] = frozenset()  # module files under /lib/modules/RELEASE
    config: Mapping[str, str] = field(default_factory=dict)  # CONFIG_X -> y|m from /boot/config-RELEASE
    proc_net_ip_vs: bool = False  # /proc/net/ip_vs exists (IPVS is in the kernel and initialised)
    conntrack_present: bool = False  # /proc/sys/net/netfilter/nf_conntrack_max exists
    ipvs_genl: bool | None = None  # the IPVS generic netlink family answers; None: not probed
    ipset: IpsetTool = field(default_factory=lambda: IpsetTool(present=False))

    @property
    def modules_supported(self) -> bool:
        return self.loaded is not None


@dataclass(frozen=True)
class ModuleStatus:
    """Whether one required module is loaded, built in, available or missing, and how we know."""

    name: str
    state: str  # LOADED|BUILTIN|AVAILABLE|MISSING|UNKNOWN
    reason: str
    evidence: str = ""  # where the state was read from
    changed: str = ""  # what --load did: "loaded" or "modprobe failed: …"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModulesReport:
    """The answer of `kpctl modules check`: every module's status and the verdict."""

    release: str
    modules_supported: bool
    modules: tuple[ModuleStatus, ...]
    ipset: IpsetTool
    ipvs_genl: bool | None
    proc_net_ip_vs: bool
    verdict: str  # READY|NOT_READY|IMPOSSIBLE
    summary: str = ""  # the verdict in one short line
    advice: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kernel": self.release,
            "modules_supported": self.modules_supported,
            "modules": [m.to_dict() for m in self.modules],
            "ipset": self.ipset.to_dict(),
            "ipvs_genetlink": self.ipvs_genl,
            "proc_net_ip_vs": self.proc_net_ip_vs,
            "verdict": self.verdict,
            "summary": self.summary,
            "advice": list(self.advice),
        }
