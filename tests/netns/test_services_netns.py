"""`kpctl services` live on the host kernel, inside a throwaway namespace: kube-proxy's iptables
rules (iptables-restore) and nftables table (`nft -f`) loaded for real, read back live and from
a snapshot taken there, and compared with what the bundled example snapshots say."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in

SOURCES = Path(__file__).resolve().parents[2] / "examples" / "sources"
EXAMPLES = SOURCES.parent


def _services(*args: str) -> dict[str, Any]:
    out = kpctl(*args, "services", "-o", "json")
    assert out.exit_code == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _live_and_saved(ns: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    live = _services("--netns", ns)
    path = tmp_path / "node.json"
    saved = kpctl("--netns", ns, "snapshot", "save", str(path))
    assert saved.exit_code == 0, saved.stderr
    return live, _services("--snapshot", str(path))


def test_iptables_mode_live_equals_snapshot_and_the_example(netns: str, tmp_path: Path) -> None:
    run_in(netns, "iptables-nft-restore", input=(SOURCES / "iptables.rules").read_text())
    live, saved = _live_and_saved(netns, tmp_path)
    assert live["read"] == ["iptables"] and live["active_mode"] == "iptables"
    assert live["services"] == saved["services"]
    example = _services("--snapshot", str(EXAMPLES / "iptables-node.json"))
    assert live["services"] == example["services"]
    assert len(live["services"]) == 11


def test_nftables_mode_live_equals_snapshot_and_the_example(netns: str, tmp_path: Path) -> None:
    run_in(netns, "nft", "-f", str(SOURCES / "nftables.nft"))
    live, saved = _live_and_saved(netns, tmp_path)
    assert live["read"] == ["nftables"]
    assert live["services"] == saved["services"]
    example = _services("--snapshot", str(EXAMPLES / "nftables-node.json"))
    assert live["services"] == example["services"]
    web = next(s for s in live["services"] if s["service"] == "10.96.100.10:80/tcp")
    assert sorted((e["address"], e["chance"]) for e in web["endpoints"]) == [
        ("10.244.1.5", 0.333333), ("10.244.2.7", 0.333333), ("10.244.2.8", 0.333333)]


def test_both_modes_loaded_are_both_read(netns: str, tmp_path: Path) -> None:
    run_in(netns, "iptables-nft-restore", input=(SOURCES / "iptables.rules").read_text())
    run_in(netns, "nft", "-f", str(SOURCES / "nftables.nft"))
    out = kpctl("--netns", netns, "services", "-o", "json")
    assert out.exit_code == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["coexisting"] is True and set(doc["read"]) == {"iptables", "nftables"}
    assert doc["active_mode"] == "nftables" and "coexists" in out.stderr
    assert {s["mode"] for s in doc["services"]} == {"iptables", "nftables"}
    assert len(doc["services"]) == 11 + 5
