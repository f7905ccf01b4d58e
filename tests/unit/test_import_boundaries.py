"""The rooms of CONVENTIONS.md stay honest, and `kpctl --help` stays cheap.

- kpctl.core, kpctl.model and kpctl.backends never import click, rich or tabulate (anywhere in
  the module, also inside functions), nor kpctl.cli; core and model never import pyroute2.
- CLI modules do not import pyroute2 or rich at module top (only inside command bodies).
- Importing kpctl.cli.main, every registered command group, and printing `kpctl --help`
  load neither pyroute2 nor rich (checked in a fresh interpreter via sys.modules).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kpctl"
PRESENTATION = {"click", "rich", "tabulate"}


def _modules(*rooms: str) -> list[Path]:
    return sorted(p for room in rooms for p in (PACKAGE / room).rglob("*.py"))


def _imported_names(tree: ast.AST, module_path: Path, top_only: bool = False) -> set[str]:
    """Absolute dotted names imported by a module (relative imports resolved)."""
    # The package a relative import starts from: the module's folder (also for __init__.py).
    package_parts = list(module_path.relative_to(PACKAGE.parent).parts[:-1])
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if top_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package_parts[: len(package_parts) - (child.level - 1)]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                names.add(module)
                names.update(f"{module}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", _modules("core", "model", "backends"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_model_backends_never_import_presentation(path: Path) -> None:
    imported = _imported_names(_parse(path), path)
    offending = sorted(n for n in imported if _top(n) in PRESENTATION or n == "kpctl.cli" or n.startswith("kpctl.cli."))
    assert not offending, f"{path.relative_to(PACKAGE.parent)} imports {offending}"


@pytest.mark.parametrize("path", _modules("core", "model"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_and_model_never_import_pyroute2(path: Path) -> None:
    imported = _imported_names(_parse(path), path)
    assert not [n for n in imported if _top(n) == "pyroute2"], f"{path.relative_to(PACKAGE.parent)} imports pyroute2"


@pytest.mark.parametrize("path", _modules("cli"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_cli_modules_do_not_import_pyroute2_or_rich_at_module_top(path: Path) -> None:
    imported = _imported_names(_parse(path), path, top_only=True)
    offending = sorted(n for n in imported if _top(n) in {"pyroute2", "rich"})
    assert not offending, f"{path.relative_to(PACKAGE.parent)} imports {offending} at module top; import inside the command"


def test_the_walker_sees_imports_inside_functions() -> None:
    tree = ast.parse(textwrap.dedent("""
        import os
        def f():
            import click
            from rich.console import Console
    """))
    fake = PACKAGE / "core" / "fake.py"
    assert {"click", "rich.console", "os"} <= _imported_names(tree, fake)
    assert _imported_names(tree, fake, top_only=True) == {"os"}


def _loaded_after(code: str) -> dict[str, bool]:
    program = code + textwrap.dedent("""
        import json, sys
        print(json.dumps({name: name in sys.modules for name in ("pyroute2", "rich")}))
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_importing_the_cli_entry_point_loads_neither_pyroute2_nor_rich() -> None:
    assert _loaded_after("import kpctl.cli.main\n") == {"pyroute2": False, "rich": False}


def _command_groups() -> list[str]:
    from kpctl.cli.main import COMMAND_GROUPS

    return sorted(COMMAND_GROUPS)


@pytest.mark.parametrize("group", _command_groups())
def test_importing_a_command_group_loads_neither_pyroute2_nor_rich(group: str) -> None:
    code = textwrap.dedent(f"""
        import importlib
        from kpctl.cli.main import COMMAND_GROUPS
        module, attribute = COMMAND_GROUPS[{group!r}]
        getattr(importlib.import_module(module), attribute)
    """)
    assert _loaded_after(code) == {"pyroute2": False, "rich": False}


def test_root_help_loads_neither_pyroute2_nor_rich() -> None:
    code = textwrap.dedent("""
        import contextlib, io
        from kpctl.cli.main import cli
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main(["--help"], prog_name="kpctl", standalone_mode=False)
            except SystemExit:
                pass
    """)
    assert _loaded_after(code) == {"pyroute2": False, "rich": False}


MODE_MODELS = ("kpctl.model.ipvs", "kpctl.model.iptables", "kpctl.model.ipset", "kpctl.model.trace")


@pytest.mark.parametrize(("example", "command", "needed"), [
    ("nftables-node.json", "services", set()),
    ("iptables-node.json", "services", {"kpctl.model.iptables"}),
    ("seed-ipvs-node.json", "services", {"kpctl.model.ipvs", "kpctl.model.iptables", "kpctl.model.ipset",
                                         "kpctl.model.trace"}),
    ("nftables-node.json", "vip list", set()),
    ("iptables-node.json", "vip list", set()),
    ("nftables-node.json", "doctor", set()),
    ("iptables-node.json", "doctor", {"kpctl.model.iptables"}),
    ("nftables-node.json", "trace 10.96.0.10:53/udp", {"kpctl.model.trace"}),
])
def test_a_command_imports_only_the_models_of_the_modes_the_node_has(example: str, command: str,
                                                                      needed: set[str]) -> None:
    """Each model costs the start-up of every command its dataclasses (~1 ms a class on the host,
    ~60 times that in the TCG VM): on an nftables node, `services`, `doctor` and `trace` import
    none of the others."""
    program = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from kpctl.cli.main import cli
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main(["--snapshot", "examples/{example}", *{command.split()!r}], prog_name="kpctl")
            except SystemExit as exc:
                assert exc.code == 0, exc.code
        print(json.dumps(sorted(name for name in {MODE_MODELS!r} if name in sys.modules)))
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE.parent)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout.strip().splitlines()[-1])) == needed
