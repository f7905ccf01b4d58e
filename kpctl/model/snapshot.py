"""A node snapshot: one versioned JSON document with everything read commands need.

Sections (each optional; writers add theirs, readers take what they need):
  kernel, hostname, created         strings
  ipvs        {"info": IPVSInfo, "services": [VirtualService…], "timeouts": Timeouts, "daemons": […],
               "connections": text of /proc/net/ip_vs_conn}
  ipsets      text of `ipset save` (lossless; parsed by kpctl.core)
  iptables    {"ipv4": {"nft": save-text, "legacy": save-text}, "ipv6": {…}}
  nftables    the JSON of `nft -j list ruleset`
  links       [{"name", "kind", "state", "addresses": ["10.254.0.1/32", …]}]
  routes      {"local": [...], "main": [...]}
  sysctls     {"net.ipv4.vs.conntrack": "1", …}
  modules     ["ip_vs", …]
  conntrack, …         as later work needs

Written indented (`snapshot save`), a section of several lines is decoded only when a command
reads it (kpctl.backends.json_document.decode_object).  A loaded snapshot's sections also hold
its ``format`` and ``version``.
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

    def is_null(self, name: str) -> bool:
        """Whether section ``name`` is stored as null; a section left to be decoded when read (a
        mapping's ``is_null``, see kpctl.backends.json_document) is not decoded to tell."""
        peek = getattr(self.sections, "is_null", None)
        if peek is not None:
            return bool(peek(name))
        return name in self.sections and self.sections[name] is None

    def to_dict(self) -> dict[str, Any]:
        return {"format": SNAPSHOT_FORMAT, "version": self.version, **self.sections}
