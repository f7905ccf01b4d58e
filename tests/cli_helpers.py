"""Drive the CLI in-process (CliRunner), with stdout and stderr kept apart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from click.testing import CliRunner

from kpctl.cli.main import cli


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2 keeps stderr apart by default


def kpctl(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Outcome:
    """Run `kpctl ARGS…` in this process and return exit code, stdout, stderr."""
    result = _runner().invoke(cli, list(args), input=input, env=env, catch_exceptions=True)
    exception = result.exception if not isinstance(result.exception, SystemExit) else None
    return Outcome(result.exit_code, result.stdout, result.stderr, exception)


def argv(items: Sequence[str]) -> list[str]:
    return list(items)
