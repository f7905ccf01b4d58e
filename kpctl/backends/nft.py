"""`open_nft(app)`: the nftables ruleset, live (`nft -j list ruleset`) or from a snapshot.

Live reading runs nft in JSON mode (libnftables' documented schema, never its text) in the
current network namespace (`--netns` has already entered it).  The snapshot section
``nftables`` is that same JSON, so both readers hand out one document.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any, Protocol

from kpctl.backends.json_document import decode
from kpctl.core.nft_document import read_document
from kpctl.core.nft_json import check_document
from kpctl.errors import KernelError, KernelFeatureMissing, PermissionDenied

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
# nft -j itself needs 6 s CPU (and 20 s system time) for a 10k-service kube-proxy table; on the
# loaded 2-core test host it took 60-90 s, so 120 s (the iptables backend's limit) was too tight.
_TIMEOUT = 600
NFT_HINT = "install the nftables package (nft 0.9.3 or newer, with JSON support)"


class NftReader(Protocol):
    source: str

    def ruleset(self) -> dict[str, Any]: ...


def nft_program() -> str:
    """The path of ``nft`` (also looked for in the sbin folders a non-root PATH lacks)."""
    path = os.environ.get("PATH", "")
    extra = os.pathsep.join(d for d in _SBIN if d not in path.split(os.pathsep))
    found = shutil.which("nft", path=path + (os.pathsep + extra if extra else ""))
    if found is None:
        raise KernelFeatureMissing("nft not found", NFT_HINT)
    return found


def parse_ruleset(text: str) -> dict[str, Any]:
    """The document `nft -j list ruleset` printed (nothing at all when the ruleset is empty)."""
    origin = "nft -j list ruleset"
    try:
        document = decode(text, lambda text, start: read_document(text, start, origin)) \
            if text and not text.isspace() else {"nftables": []}  # (strip() would copy the text)
    except json.JSONDecodeError as exc:
        raise KernelError(f"nft -j list ruleset printed no JSON: line {exc.lineno}: {exc.msg}") from None
    check_document(document, origin)
    return dict(document)


class LiveNft:
    source = "kernel"

    def ruleset(self) -> dict[str, Any]:
        argv = [nft_program(), "-j", "list", "ruleset"]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise KernelError(f"nft -j list ruleset did not finish within {_TIMEOUT} s") from None
        if proc.returncode != 0:
            message = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            if "ermission denied" in message or "Operation not permitted" in message:
                raise PermissionDenied(f"nft: {message}")
            if "JSON support not compiled-in" in message or "unrecognized option" in message:
                raise KernelFeatureMissing(f"nft has no JSON output: {message}", NFT_HINT)
            raise KernelError(f"nft -j list ruleset failed: {message}")
        return parse_ruleset(proc.stdout)


class SnapshotNft:
    def __init__(self, section: Any, source: str) -> None:
        check_document(section, f"snapshot {source!r}: nftables section")
        self._section: dict[str, Any] = section
        self.source = source

    def ruleset(self) -> dict[str, Any]:
        return self._section


def open_nft(app: Any) -> NftReader:
    """The snapshot's ``nftables`` section when ``app.snapshot()`` has one, else live nft."""
    snapshot = app.snapshot()
    if snapshot is not None:
        from kpctl.backends.snapshot import required_section

        return SnapshotNft(required_section(snapshot, "nftables"), snapshot.source)
    return LiveNft()
