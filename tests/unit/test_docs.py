"""docs/cli.md is what the commands' --help prints (scripts/gen-docs.py writes it), and every
command's and group's help says what it does and gives an example."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

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
@pytest.mark.parametrize("title", COMMANDS)
def test_every_command_has_help_with_an_example(title: str) -> None:
    path = tuple(title.split()[1:])
    text = GEN_DOCS.help_text(path)
    lines = text.splitlines()
    usage = [n for n, line in enumerate(lines) if line.startswith("Usage: ")]
    assert usage, f"`{title} --help` has no usage line"
    description = [line for line in lines[usage[0] + 1:] if line.strip() and not line.startswith("Options:")]
    assert description, f"`{title} --help` says nothing about what it does"
    examples = [n for n, line in enumerate(lines)
                if line.strip().startswith("Example") and line.strip().endswith(":")]
    assert examples, f"`{title} --help` has no 'Example:' section"
    assert "kpctl " in lines[examples[0] + 1], \
        f"`{title} --help`: the line after {lines[examples[0]].strip()!r} is not a kpctl command line"
