"""The wheel: its files (package, entry point, the three completion scripts) and an install
outside the dev venv (`pipx install` when pipx is there) that runs `kpctl --version`.

The project is copied to a temporary directory first, so building leaves no build/ or
*.egg-info in the work tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import kpctl

ROOT = Path(__file__).resolve().parents[2]
COMPLETIONS = {
    "share/bash-completion/completions/kpctl.bash": "kpctl.bash",
    "share/zsh/site-functions/_kpctl": "_kpctl",
    "share/fish/vendor_completions.d/kpctl.fish": "kpctl.fish",
}


def _run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "kpctl", source / "kpctl", ignore=ignore)
    shutil.copytree(ROOT / "completions", source / "completions")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source))
    (built,) = out.glob("kpctl-*.whl")
    return built


def test_wheel_contains_package_entry_point_and_completions(wheel: Path) -> None:
    assert wheel.name == f"kpctl-{kpctl.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        data = f"kpctl-{kpctl.__version__}.data/data/"
        for installed, checked_in in COMPLETIONS.items():
            assert data + installed in names, f"the wheel lacks {installed}"
            assert archive.read(data + installed).decode() == (ROOT / "completions" / checked_in).read_text()
        for module in ("kpctl/cli/main.py", "kpctl/cli/completion.py", "kpctl/backends/ipvs_netlink.py"):
            assert module in names
        entry_points = archive.read(f"kpctl-{kpctl.__version__}.dist-info/entry_points.txt").decode()
    assert "kpctl = kpctl.cli.main:main" in entry_points
    assert not any("tests/" in name for name in names)


def test_pipx_install_runs_kpctl_version(wheel: Path, tmp_path: Path) -> None:
    pipx = shutil.which("pipx")
    if pipx is None:
        pytest.skip("pipx is not installed (apt-get install pipx); the wheel test above still ran")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "PIPX_HOME": str(tmp_path / "pipx"),
           "PIPX_BIN_DIR": str(tmp_path / "bin")}
    _run(pipx, "install", str(wheel), env=env)
    assert _run(str(tmp_path / "bin" / "kpctl"), "--version").strip() == f"kpctl {kpctl.__version__}"
    installed = tmp_path / "pipx" / "venvs" / "kpctl"
    for path in COMPLETIONS:
        assert (installed / path).is_file(), f"pipx's venv lacks {path}"
    script = _run(str(tmp_path / "bin" / "kpctl"), "completion", "bash")
    assert script == (ROOT / "completions" / "kpctl.bash").read_text()
