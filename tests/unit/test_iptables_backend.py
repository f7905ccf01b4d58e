"""Which *-save program reads which backend, and how their failures are named (programs faked)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kpctl.backends import iptables as backend
from kpctl.errors import KernelError, KernelFeatureMissing, PermissionDenied

RULES = (Path(__file__).parents[1] / "fixtures" / "kube-iptables-mode.rules").read_text()


class FakeTools:
    def __init__(self, present: dict[str, str], outputs: dict[str, tuple[int, str, str]]) -> None:
        self.present = present  # program name -> path
        self.outputs = outputs  # path (+ " -c"/" --version") -> (returncode, stdout, stderr)
        self.calls: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return self.present.get(name)

    def run(self, argv: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        code, out, err = self.outputs.get(" ".join(argv), (0, "", ""))
        return subprocess.CompletedProcess(argv, code, out, err)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    tools = FakeTools({}, {})
    monkeypatch.setattr(backend, "_which", tools.which)
    monkeypatch.setattr(backend.subprocess, "run", tools.run)
    return tools


def test_all_four_tools_and_counters_flag(fake: FakeTools) -> None:
    fake.present = {name: f"/usr/sbin/{name}" for names in backend._PROGRAMS.values() for name in names}
    fake.outputs = {"/usr/sbin/iptables-nft-save -c": (0, RULES, "")}
    live = backend.LiveIptables()
    assert all(live.available().values())
    state = live.read(counters=True)
    assert [(r.family, r.backend) for r in state.rulesets] == [
        ("ipv4", "nft"), ("ipv4", "legacy"), ("ipv6", "nft"), ("ipv6", "legacy")]
    assert state.get("ipv4", "nft").rule_count == 75  # type: ignore[union-attr]
    assert all(call[-1] == "-c" for call in fake.calls)


def test_plain_iptables_save_is_placed_by_its_version(fake: FakeTools) -> None:
    fake.present = {"iptables-save": "/sbin/iptables-save", "ip6tables-save": "/sbin/ip6tables-save"}
    fake.outputs = {"/sbin/iptables-save --version": (0, "iptables-save v1.8.9 (nf_tables)\n", ""),
                    "/sbin/ip6tables-save --version": (0, "ip6tables-save v1.8.7 (legacy)\n", "")}
    tools = backend.LiveIptables().tools()
    assert tools == {("ipv4", "nft"): "/sbin/iptables-save", ("ipv6", "legacy"): "/sbin/ip6tables-save"}


def test_no_tool_at_all(fake: FakeTools) -> None:
    with pytest.raises(KernelFeatureMissing, match="no iptables-save program found"):
        backend.LiveIptables().read()


def test_permission_denied(fake: FakeTools) -> None:
    fake.present = {"iptables-nft-save": "/usr/sbin/iptables-nft-save"}
    fake.outputs = {"/usr/sbin/iptables-nft-save": (
        4, "", ("iptables-nft-save v1.8.9 (nf_tables): Could not fetch rule set generation id: "
               "Permission denied (you must be root)\n"))}
    with pytest.raises(PermissionDenied, match="you must be root"):
        backend.LiveIptables().read()


def test_legacy_without_kernel_support_reads_as_empty(fake: FakeTools) -> None:
    fake.present = {"iptables-legacy-save": "/usr/sbin/iptables-legacy-save"}
    fake.outputs = {"/usr/sbin/iptables-legacy-save": (
        1, "", "iptables-legacy-save: Table does not exist (do you need to insmod?)\n")}
    state = backend.LiveIptables().read()
    assert state.get("ipv4", "legacy") is not None and state.get("ipv4", "legacy").empty  # type: ignore[union-attr]


def test_other_failure_is_a_kernel_error_naming_the_tool(fake: FakeTools) -> None:
    fake.present = {"iptables-nft-save": "/usr/sbin/iptables-nft-save"}
    fake.outputs = {"/usr/sbin/iptables-nft-save": (1, "", "something odd\n")}
    with pytest.raises(KernelError, match="iptables-nft-save failed: something odd"):
        backend.LiveIptables().read()
