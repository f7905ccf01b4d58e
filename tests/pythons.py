"""The CPython versions kpctl declares (pyproject.toml classifiers) and where they are on this machine.

One place for both scripts/test.sh (which runs the unit tier on each) and the tests that run
kpctl.pyz on each.  A declared version that cannot be found is an error, never a skip: a
supported Python nobody tested is exactly what this is here to prevent.

    python tests/pythons.py        # prints "3.9 /path/to/python3.9" per declared version; exit 1 if one is missing
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_CLASSIFIER = re.compile(r'"Programming Language :: Python :: (3\.\d+)"')


def declared_versions() -> list[str]:
    """The 3.X versions pyproject.toml's classifiers name, oldest first."""
    found = _CLASSIFIER.findall((ROOT / "pyproject.toml").read_text())
    return sorted(set(found), key=lambda v: tuple(int(p) for p in v.split(".")))


def _candidates(version: str) -> list[str]:
    # pyenv's own install tree first (its shims on PATH may point at another version or none),
    # then whatever PATH offers.
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(pyenv, "versions", f"{version}.*", "bin", f"python{version}")), reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path:
        found.append(on_path)
    return found


def _reports(python: str, version: str) -> bool:
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def find(version: str) -> str | None:
    """The path of a working python{version}, or None."""
    for python in _candidates(version):
        if _reports(python, version):
            return python
    return None


def interpreters() -> dict[str, str | None]:
    """Every declared version with its interpreter (None: not on this machine)."""
    return {version: find(version) for version in declared_versions()}


def main() -> int:
    missing = []
    for version, python in interpreters().items():
        if python is None:
            missing.append(version)
        else:
            print(version, python)
    for version in missing:
        print(f"pythons: Python {version} is declared supported (pyproject.toml) but not found "
              f"(looked in $PYENV_ROOT/versions/{version}.*/bin and PATH)", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
