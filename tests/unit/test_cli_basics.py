"""The CLI frame: help, version, usage errors, the error handler's exit codes."""

from __future__ import annotations

import kpctl
from tests.cli_helpers import kpctl as run


def test_version_prints_package_version() -> None:
    outcome = run("--version")
    assert outcome.exit_code == 0
    assert outcome.stdout.strip() == f"kpctl {kpctl.__version__}"


def test_help_lists_ipvs_group() -> None:
    outcome = run("--help")
    assert outcome.exit_code == 0
    assert "ipvs" in outcome.stdout


def test_unknown_command_is_usage_error_one_line() -> None:
    outcome = run("frobnicate")
    assert outcome.exit_code == 2
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("kpctl: error: ")
    assert "frobnicate" in lines[0]


def test_missing_snapshot_file_is_not_found() -> None:
    outcome = run("--snapshot", "/nonexistent/snap.json", "ipvs", "list")
    assert outcome.exit_code == 3
    assert "kpctl: error:" in outcome.stderr and "/nonexistent/snap.json" in outcome.stderr


def test_bad_netns_name_is_usage_error() -> None:
    outcome = run("--netns", "../etc", "ipvs", "list")
    assert outcome.exit_code == 2


def test_a_run_pauses_the_cycle_collector_and_gives_it_back() -> None:
    import gc
    import traceback
    from pathlib import Path

    example = str(Path(__file__).parents[2] / "examples" / "iptables-node.json")
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:  # counts collections inside kpctl's own run
        if phase == "start" and any(frame.f_code.co_name == "_run" for frame, _ in traceback.walk_stack(None)):
            collections.append(info["generation"])

    threshold = gc.get_threshold()
    gc.set_threshold(50)  # a collection every few allocations, were the collector on
    gc.callbacks.append(seen)
    try:
        result = run("--snapshot", example, "iptables", "list", "-o", "json")
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*threshold)
    assert result.exit_code == 0 and '"KUBE-SERVICES"' in result.stdout
    assert collections == []
    assert gc.isenabled()
