"""Static checks over the package: ruff (basic rules) everywhere, mypy over core/model/backends/output.

mypy uses the [tool.mypy] settings of pyproject.toml (untyped defs refused in core, model and
backends). Both take a few seconds; mypy's first run in a fresh clone about 20 s.  (cli/ passes
too, except on Python 3.9, whose click 8.1 has no generic CompletionItem.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# pyflakes (F) and pycodestyle's error classes that are never style opinions (E4 imports,
# E7 statements, E9 syntax/io): ruff's own default selection, pinned so config drift cannot widen it.
RUFF_RULES = "E4,E7,E9,F"


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing_in_the_package() -> None:
    proc = _run("ruff", "check", "--no-cache", "--select", RUFF_RULES, "--output-format", "concise", "kpctl",
                timeout=60)
    assert proc.returncode == 0, "ruff check --select " + RUFF_RULES + " kpctl:\n" + proc.stdout + proc.stderr


def test_mypy_accepts_core_model_backends_and_output(tmp_path: Path) -> None:
    proc = _run("mypy", "--cache-dir", str(tmp_path / "mypy-cache"), "--no-error-summary",
                "kpctl/core", "kpctl/model", "kpctl/backends", "kpctl/output", timeout=120)
    assert proc.returncode == 0, "mypy kpctl/{core,model,backends,output}:\n" + proc.stdout + proc.stderr
