"""What `kpctl doctor` looks at (NodeState) and what it reports (Finding)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (types only: a node of one mode imports no other mode's model)
    from kpctl.model.ipset import IPSet
    from kpctl.model.iptables import Ruleset
    from kpctl.model.ipvs import IPVSTable, Timeouts
    from kpctl.model.links import Link

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One problem a doctor check found: what, why it matters, and the fix."""

    check: str  # the stable id of the check, e.g. "vip-missing"
    severity: str  # error|warning|info
    subject: str  # what it is about: a service, a VIP, a set, a sysctl
    found: str  # what was found
    why: str  # why it matters
    fix: str  # what to do

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NodeState:
    """The pieces of a node the checks read; None means "could not be read here".

    ``iptables`` maps family (ipv4|ipv6) -> backend (nft|legacy) -> Ruleset.
    ``nftables`` is the document of `nft -j list ruleset` (libnftables JSON).
    ``kernel`` is the kernel release (`uname -r`); ``mode`` kube-proxy's configured mode when
    known (a snapshot's ``mode``), else the mode is worked out from the state.
    ``unavailable`` says, per piece, why it is None (shown as info findings); a piece that is
    None without a reason there was read and is simply absent (no IPVS services, no table).
    """

    ipvs: IPVSTable | None = None
    timeouts: Timeouts | None = None
    links: tuple[Link, ...] | None = None
    ipsets: tuple[IPSet, ...] | None = None
    iptables: Mapping[str, Mapping[str, Ruleset]] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nftables: Any = None
    kernel: str | None = None
    mode: str | None = None
    unavailable: Mapping[str, str] = field(default_factory=dict)
    # What checks derive from the pieces once for all of them (the nftables tables' index), by
    # name; not an argument: a copy made with dataclasses.replace() starts without it.
    derived: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    def ipset(self, name: str) -> IPSet | None:
        return next((s for s in self.ipsets or () if s.name == name), None)

    def sysctl(self, name: str) -> str | None:
        return self.sysctls.get(name)


@dataclass(frozen=True)
class DoctorReport:
    """The findings of one `kpctl doctor` run and the ids of the checks that ran."""

    findings: tuple[Finding, ...]
    checks_run: tuple[str, ...]
    mode: str = ""  # the kube-proxy mode taken as active ("none" when no state was found)
    mode_reason: str = ""
    not_applicable: tuple[str, ...] = ()  # checks selected but skipped: they are for another mode

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": {"active": self.mode, "reason": self.mode_reason},
            "checks": list(self.checks_run),
            "not_applicable": list(self.not_applicable),
            "findings": [f.to_dict() for f in self.findings],
            "errors": self.errors,
            "warnings": sum(1 for f in self.findings if f.severity == WARNING),
        }
