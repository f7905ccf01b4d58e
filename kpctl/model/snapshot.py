"""A node snapshot: one versioned JSON document with everything read commands need.

Sections (each optional; writers add theirs, readers take what they need):
  kernel, hostname, created         strings
  ipvs        {"info": IPVSInfo, "services": [VirtualService…], "timeouts": Timeouts, "daemons": […]}
  ipsets      text of `ipset save` (lossless; parsed by kpctl.core)
  iptables    {"ipv4": {"nft": save-text, "legacy": save-text}, "ipv6": {…}}
  nftables    the JSON of `nft -j list ruleset`
  links       [{"name", "kind", "state", "addresses": ["10.254.0.1/32", …]}]
  routes      {"local": [...], "main": [...]}
  sysctls     {"net.ipv4.vs.conntrack": "1", …}
  modules     ["ip_vs", …]
  conntrack, connections, …         as later work needs
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

SNAPSHOT_FORMAT = "kpctl-snapshot"
SNAPSHOT_VERSION = 1


@dataclass(frozen=True)
class NodeSnapshot:
    """A snapshot document: its version and its sections (see the module docstring)."""

    version: int
    sections: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # the file it came from, for messages

    def section(self, name: str, default: Any = None) -> Any:
        return self.sections.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return {"format": SNAPSHOT_FORMAT, "version": self.version, **self.sections}
