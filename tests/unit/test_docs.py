"""docs/cli.md is what the commands' --help prints (scripts/gen-docs.py writes it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen-docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN_DOCS = _gen_docs()
COMMANDS = [" ".join(("kpctl", *path)) for path, _ in GEN_DOCS.commands()]


def test_cli_reference_is_up_to_date() -> None:
    assert (ROOT / "docs" / "cli.md").read_text() == GEN_DOCS.render(), \
        "docs/cli.md is stale: run .venv/bin/python scripts/gen-docs.py"


def test_reference_covers_every_command() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for title in COMMANDS:
        assert f"# {title}\n" in text
