"""`open_iptables(app)`: the node's iptables rule sets, live (the *-save tools) or from a snapshot.

Live reading runs, for each family and backend whose tool exists, ``iptables-nft-save``,
``iptables-legacy-save``, ``ip6tables-nft-save``, ``ip6tables-legacy-save`` (or plain
``iptables-save``/``ip6tables-save``, placed by its ``--version``), with ``-c`` when counters
are asked for.  It never changes anything.  The snapshot section ``iptables`` holds the same
texts: ``{"ipv4": {"nft": TEXT, "legacy": TEXT}, "ipv6": {...}}``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Protocol

from kpctl.core.iptables_save import parse_save
from kpctl.errors import (
    InvalidInput,
    KernelError,
    KernelFeatureMissing,
    PermissionDenied,
)
from kpctl.model.iptables import BACKENDS, FAMILIES, IptablesState

SaveTexts = dict[str, dict[str, str]]

_PROGRAMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ipv4", "nft"): ("iptables-nft-save",),
    ("ipv4", "legacy"): ("iptables-legacy-save",),
    ("ipv6", "nft"): ("ip6tables-nft-save",),
    ("ipv6", "legacy"): ("ip6tables-legacy-save",),
}
_PLAIN: dict[str, str] = {"ipv4": "iptables-save", "ipv6": "ip6tables-save"}
_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")


class IptablesReader(Protocol):
    source: str

    def available(self) -> dict[tuple[str, str], bool]: ...
    def save_texts(self, counters: bool = False) -> SaveTexts: ...
    def read(self, counters: bool = False, lazy: bool = False) -> IptablesState: ...


def _parse_texts(texts: SaveTexts, origin: str, lazy: bool = False) -> IptablesState:
    """Every document as a Ruleset; ``lazy``: each chain's rules parsed when first read, for
    callers that look at a few chains of a 100,000-rule node (doctor), not list them all."""
    rulesets = []
    for family in FAMILIES:
        for backend in BACKENDS:
            text = texts.get(family, {}).get(backend)
            if text is None:
                continue
            rulesets.append(parse_save(text, family, backend, lazy, f"{origin} ({family} {backend})"))
    return IptablesState(tuple(rulesets))


def _which(program: str) -> str | None:
    path = os.environ.get("PATH", "")
    extra = os.pathsep.join(d for d in _SBIN if d not in path.split(os.pathsep))
    return shutil.which(program, path=path + (os.pathsep + extra if extra else ""))


class LiveIptables:
    source = "kernel"

    def __init__(self) -> None:
        self._tools: dict[tuple[str, str], str] | None = None

    def tools(self) -> dict[tuple[str, str], str]:
        """(family, backend) → the program that dumps it, for those present on this host."""
        if self._tools is None:
            found: dict[tuple[str, str], str] = {}
            for key, names in _PROGRAMS.items():
                for name in names:
                    if (path := _which(name)) is not None:
                        found[key] = path
                        break
            for family, name in _PLAIN.items():
                path = _which(name)
                if path is None:
                    continue
                backend = "nft" if "nf_tables" in self._run([path, "--version"], check=False) else "legacy"
                found.setdefault((family, backend), path)
            self._tools = found
        return self._tools

    def available(self) -> dict[tuple[str, str], bool]:
        tools = self.tools()
        return {(f, b): (f, b) in tools for f in FAMILIES for b in BACKENDS}

    def save_texts(self, counters: bool = False) -> SaveTexts:
        tools = self.tools()
        if not tools:
            raise KernelFeatureMissing("no iptables-save program found", "install the iptables package")
        texts: SaveTexts = {}
        for (family, backend), program in tools.items():
            texts.setdefault(family, {})[backend] = self._run([program] + (["-c"] if counters else []))
        return texts

    def read(self, counters: bool = False, lazy: bool = False) -> IptablesState:
        return _parse_texts(self.save_texts(counters), "iptables-save output", lazy)

    @staticmethod
    def _run(argv: list[str], check: bool = True) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except FileNotFoundError:
            raise KernelFeatureMissing(f"{argv[0]} not found", "install the iptables package") from None
        except subprocess.TimeoutExpired:
            raise KernelError(f"{os.path.basename(argv[0])} did not finish within 120 s") from None
        if check and proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            name = os.path.basename(argv[0])
            if "ermission denied" in message or "must be root" in message:
                raise PermissionDenied(f"{name}: {message}")
            if "insmod" in message or "not available" in message.lower():
                return ""  # the kernel has no such backend here: nothing to list
            raise KernelError(f"{name} failed: {message}")
        return proc.stdout + ("" if check else proc.stderr)


class SnapshotIptables:
    def __init__(self, section: Any, source: str) -> None:
        if not isinstance(section, dict):
            raise InvalidInput(f"snapshot {source!r}: iptables section is not an object")
        texts: SaveTexts = {}
        for family, backends in section.items():
            if family not in FAMILIES or not isinstance(backends, dict):
                raise InvalidInput(f"snapshot {source!r}: iptables section has unknown key {family!r}")
            for backend, text in backends.items():
                if backend not in BACKENDS or not (text is None or isinstance(text, str)):
                    raise InvalidInput(f"snapshot {source!r}: iptables.{family} has bad entry {backend!r}")
                if text is not None:
                    texts.setdefault(family, {})[backend] = text
        self._texts = texts
        self.source = source

    def available(self) -> dict[tuple[str, str], bool]:
        return {(f, b): b in self._texts.get(f, {}) for f in FAMILIES for b in BACKENDS}

    def save_texts(self, counters: bool = False) -> SaveTexts:
        return {f: dict(b) for f, b in self._texts.items()}

    def read(self, counters: bool = False, lazy: bool = False) -> IptablesState:
        return _parse_texts(self._texts, f"snapshot {self.source!r}", lazy)


def open_iptables(app: Any) -> IptablesReader:
    """The snapshot's ``iptables`` section when ``app.snapshot()`` has one, else the live tools."""
    snapshot = app.snapshot()
    if snapshot is not None:
        from kpctl.backends.snapshot import required_section

        return SnapshotIptables(required_section(snapshot, "iptables"), snapshot.source)
    return LiveIptables()
