"""`kpctl --help` lists the command groups from kpctl.cli.main.SUMMARIES without importing them.

The list must read exactly as if every group were imported (issue 6: no output changes), at any
terminal width, and stay so when a group's docstring changes.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from kpctl.cli import main as main_module
from kpctl.cli.main import COMMAND_GROUPS, SUMMARIES, cli

ROOT = Path(__file__).resolve().parents[2]


def _group(name: str) -> click.Command:
    module, attribute = COMMAND_GROUPS[name]
    return getattr(importlib.import_module(module), attribute)  # type: ignore[no-any-return]


def test_every_group_has_a_summary() -> None:
    assert SUMMARIES.keys() == COMMAND_GROUPS.keys()


@pytest.mark.parametrize("name", sorted(COMMAND_GROUPS))
def test_summary_is_the_first_paragraph_of_the_groups_help(name: str) -> None:
    group = _group(name)
    assert group.help is not None and group.short_help is None and not group.hidden and not group.deprecated
    assert SUMMARIES[name].split() == group.help.partition("\n\n")[0].split()
    stand_in = click.Command(name, help=SUMMARIES[name])
    for limit in range(0, 160):
        assert stand_in.get_short_help_str(limit) == group.get_short_help_str(limit), limit


class _AllImported(main_module.KpctlGroup):
    """The root group listing the real, imported groups (what --help printed before)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        click.Group.format_commands(self, ctx, formatter)


@pytest.mark.parametrize("width", [40, 60, 80, 99, 100, 101, 120, 200])
def test_root_help_reads_as_with_every_group_imported(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    fast = runner.invoke(cli, ["--help"], prog_name="kpctl", terminal_width=width)
    monkeypatch.setattr(cli, "__class__", _AllImported)
    slow = runner.invoke(cli, ["--help"], prog_name="kpctl", terminal_width=width)
    assert fast.exit_code == slow.exit_code == 0
    assert "Commands:" in fast.output and fast.output == slow.output


def test_root_help_imports_no_command_module() -> None:
    program = textwrap.dedent("""
        import contextlib, io, json, sys
        from kpctl.cli.main import cli
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main(["--help"], prog_name="kpctl", standalone_mode=False)
            except SystemExit:
                pass
        print(json.dumps(sorted(name for name in sys.modules if name.startswith("kpctl.cli."))))
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not [name for name in loaded if name in {m for m, _ in COMMAND_GROUPS.values()}], loaded


def test_a_group_still_runs_after_the_root_help_listed_it() -> None:
    result = CliRunner().invoke(cli, ["completion", "--help"], prog_name="kpctl")
    assert result.exit_code == 0 and "bash" in result.output


@pytest.mark.parametrize("columns", [None, "", "abc", "0", "-5", "1", "40", "51", "52", "79", "80", "99", "100",
                                     "101", "102", "300"])
@pytest.mark.parametrize("terminal", [None, 0, 50, 101, 120])
def test_help_width_is_the_one_click_works_out(columns: str | None, terminal: int | None,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import click.formatting

    monkeypatch.setattr(click.formatting, "FORCED_WIDTH", None)
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    def size_of(columns: int | None) -> object:
        def get_terminal_size(fd: int = 1) -> os.terminal_size:
            if columns is None:
                raise OSError("not a terminal")
            return os.terminal_size((columns, 24))
        return get_terminal_size

    monkeypatch.setattr(os, "get_terminal_size", size_of(terminal))
    widths = [main_module.HelpFormatter(max_width=max_width).width for max_width in (None, 60, 100)]
    # A terminal reporting 0 columns counts as none (shutil does so since Python 3.11; on 3.9 and
    # 3.10 click would then work out 50): kpctl's width is the same on every Python.
    monkeypatch.setattr(os, "get_terminal_size", size_of(terminal or None))
    assert widths == [click.HelpFormatter(max_width=max_width).width for max_width in (None, 60, 100)]
    assert main_module.HelpFormatter(width=33).width == 33


def test_help_width_follows_a_forced_width(monkeypatch: pytest.MonkeyPatch) -> None:
    import click.formatting

    monkeypatch.setattr(click.formatting, "FORCED_WIDTH", 61)
    assert main_module.HelpFormatter(max_width=100).width == 61 == click.HelpFormatter(max_width=100).width


def test_root_help_imports_no_shutil() -> None:
    # (cli.main: the program's main() runs it, then leaves with os._exit, before any print here)
    program = "import sys; sys.argv = ['kpctl', '--help']\nfrom kpctl.cli.main import cli\ntry:\n" \
              "    cli.main(prog_name='kpctl')\nexcept SystemExit:\n    pass\nprint('shutil' in sys.modules, file=sys.stderr)"
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=ROOT)
    # click 8.1 (the last release for Python 3.9) imports shutil in HelpFormatter() itself: then
    # kpctl cannot avoid it, and the check is that kpctl adds nothing of its own.
    clicks = subprocess.run([sys.executable, "-c", "import sys, click; click.HelpFormatter(width=80); "
                             "print('shutil' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == clicks.stdout.strip(), proc.stderr


def test_completion_loads_no_printer() -> None:
    program = textwrap.dedent("""
        import contextlib, io, sys
        from kpctl.cli.main import cli
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main(["completion", "bash"], prog_name="kpctl", standalone_mode=False)
            except SystemExit:
                pass
        print(sorted(m for m in ("kpctl.output.registry", "kpctl.output.listing", "json") if m in sys.modules),
              file=sys.stderr)
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_the_output_package_still_exports_its_names() -> None:
    import kpctl.output as output
    from kpctl.output import GENERIC_FORMATS, Column, Listing, OutputSpec, default_format, render
    from kpctl.output import listing, registry

    assert (Column, Listing, OutputSpec) == (listing.Column, listing.Listing, listing.OutputSpec)
    assert (GENERIC_FORMATS, default_format, render) == (registry.GENERIC_FORMATS, registry.default_format,
                                                         registry.render)
    assert sorted(output.__all__) == sorted(["Column", "Listing", "OutputSpec", "GENERIC_FORMATS", "default_format",
                                             "render"])
    with pytest.raises(AttributeError):
        output.nothing_here  # noqa: B018
