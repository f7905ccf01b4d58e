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
