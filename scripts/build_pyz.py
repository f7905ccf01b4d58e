"""Write kpctl.pyz: kpctl and its pure-Python dependencies in one zip application.

Run by scripts/build-pyz.sh with the interpreter of a build venv on the OLDEST declared Python,
where kpctl is installed: the dependency versions pip picked there support that Python and
every newer one (a newer venv may hold releases that dropped it), and the dependencies only
needed on old Pythons (typing_extensions for rich) are present.  Nothing is fetched here: every
file comes from the installed distributions' RECORDs, so the archive holds exactly what pip
installed.  Compiled extensions are left out (one archive serves 3.9-3.13); the only one
among the dependencies is PyYAML's optional libyaml binding, which yaml falls back from itself.

    python scripts/build_pyz.py SOURCE_TREE OUTPUT.pyz
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import zipapp
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT_DISTRIBUTION = "kpctl"
# Binary parts a dependency may ship that the pure-Python code does without.
OPTIONAL_BINARIES = {"PyYAML"}
MAIN = "from kpctl.cli.main import main\n\nmain()\n"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(root: str) -> list[metadata.Distribution]:
    """The installed distributions ``root`` needs at run time on this interpreter, root excluded."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        dist = metadata.distribution(todo.pop())
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an extra (kpctl[test]) or a marker this Python does not meet
            if _normal(req.name) not in seen:
                seen[_normal(req.name)] = metadata.distribution(req.name)
                todo.append(req.name)
    return sorted(seen.values(), key=lambda d: _normal(d.metadata["Name"]))


def copy_distribution(dist: metadata.Distribution, into: Path) -> int:
    """Copy the importable files of ``dist`` into ``into``; return how many."""
    name = dist.metadata["Name"]
    copied = 0
    for entry in dist.files or []:
        path = str(entry)
        if path.startswith("..") or ".dist-info/" in path or "__pycache__" in path or path.endswith(".pyc"):
            continue  # console scripts, metadata, byte code of this interpreter only
        if path.endswith((".so", ".pyd")):
            if name in OPTIONAL_BINARIES:
                continue
            raise SystemExit(f"build-pyz: {name} ships a compiled module ({path}); a pyz must be pure Python")
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dist.locate_file(entry), target)
        copied += 1
    return copied


def build(source: Path, output: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="kpctl-pyz.") as tmp:
        staging = Path(tmp)
        for dist in runtime_distributions(ROOT_DISTRIBUTION):
            count = copy_distribution(dist, staging)
            print(f"build-pyz: {dist.metadata['Name']} {dist.version}: {count} files")
        shutil.copytree(source / "kpctl", staging / "kpctl",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (staging / "__main__.py").write_text(MAIN)
        output.parent.mkdir(parents=True, exist_ok=True)
        # `#!/usr/bin/env python3`: whatever python3 the node has (3.9-3.13), so the archive also
        # runs as ./kpctl.pyz and completion scripts calling `kpctl` work through a symlink.
        zipapp.create_archive(staging, output, interpreter="/usr/bin/env python3", compressed=True)
    print(f"build-pyz: wrote {output} ({output.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build(Path(sys.argv[1]), Path(sys.argv[2]))
