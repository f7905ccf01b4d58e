"""The `kpctl` program (kpctl.cli.main:main): the run's output, errors and exit status as
``cli.main`` gives them, the output flushed whole, although the process leaves with os._exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpctl.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Buffered as the program usually is, so that what it leaves unflushed would be lost.
BUFFERED = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}


def _program(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kpctl", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=BUFFERED)


@pytest.mark.parametrize("args", [
    ["--snapshot", str(EXAMPLES / "iptables-node.json"), "iptables", "list", "-o", "json"],
    ["--snapshot", str(EXAMPLES / "nftables-node.json"), "nft", "list", "-o", "tree"],
    ["--snapshot", str(EXAMPLES / "seed-ipvs-node.json"), "ipvs", "list", "-o", "ipvsadm"],
])
def test_the_program_writes_what_the_command_line_gives(args: list[str]) -> None:
    expected = CliRunner().invoke(cli, args, prog_name="kpctl")
    ran = _program(*args)
    assert expected.exit_code == ran.returncode == 0 and ran.stderr == ""
    assert ran.stdout == expected.output and len(ran.stdout) > 500


def test_a_big_output_to_a_file_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    args = [sys.executable, "-m", "kpctl", "--snapshot", str(EXAMPLES / "nftables-node.json"), "nft", "list", "-o", "json"]
    with out.open("w") as handle:
        ran = subprocess.run(args, stdout=handle, stderr=subprocess.PIPE, text=True, timeout=120, cwd=ROOT,
                             env=BUFFERED)
    assert ran.returncode == 0 and ran.stderr == ""
    document = json.loads(out.read_text())
    assert document["nftables"] and out.read_text().endswith("}\n")


@pytest.mark.parametrize(("args", "status", "says"), [
    (["--snapshot", "/nonexistent/node.json", "ipvs", "list"], 3, "not found"),
    (["--snapshot", str(EXAMPLES / "seed-ipvs-node.json"), "trace", "10.0.0.300:80"], 2, "kpctl: error:"),
    (["ipvs", "lisst"], 2, "No such command"),
])
def test_errors_keep_their_exit_status_and_one_line(args: list[str], status: int, says: str) -> None:
    ran = _program(*args)
    assert ran.returncode == status and ran.stdout == ""
    assert len(ran.stderr.splitlines()) == 1 and says in ran.stderr


def test_an_exit_with_a_message_prints_it_and_is_status_1() -> None:
    program = ("import sys; import kpctl.cli.main as m\n"
               "m.cli.main = lambda **kw: sys.exit('stopped here')\n"
               "print('before', end='')\n"
               "m.main()\n")
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=BUFFERED)
    assert (ran.returncode, ran.stdout, ran.stderr) == (1, "before", "stopped here\n")


def test_a_reader_that_leaves_early_is_not_an_error() -> None:
    """`kpctl … | head -1` under `set -o pipefail`: exit status 0, no traceback (click alone said 1)."""
    args = [sys.executable, "-m", "kpctl", "--snapshot", str(EXAMPLES / "iptables-node.json"), "iptables", "list",
            "-o", "json"]  # 150 KB: more than a pipe holds, so the program writes on after the reader left
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=BUFFERED)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == "{\n"
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0 and proc.stderr.read() == ""
