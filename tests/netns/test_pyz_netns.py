"""kpctl.pyz (scripts/build-pyz.sh) on every declared Python, and the Containerfile/DaemonSet recipes.

The archive is built once, copied into a fresh directory and run with ``python3.X -I`` (no
site-packages, no user site, no PYTHONPATH): snapshot reads must be byte-equal to the installed
tool's, and as root inside a namespace this test creates, an ipset and an iptables read must
see what ipset/iptables wrote.  A declared Python missing from the machine fails (tests/pythons.py).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests import pythons
from tests.netns.conftest import run, run_in

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed-ipvs-node.json")
INSTALLED = str(Path(sys.executable).parent / "kpctl")
SNAPSHOT_READS = [
    ["--snapshot", SEED, "trace", "10.254.0.1:443"],
    ["--snapshot", SEED, "ipvs", "list", "-o", "ipvsadm"],
    ["--snapshot", SEED, "ipvs", "list", "-o", "json"],
    ["--snapshot", SEED, "ipset", "list", "-o", "plain"],
    ["--snapshot", SEED, "doctor"],
]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    built = tmp_path_factory.mktemp("build") / "kpctl.pyz"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "build-pyz.sh"), str(built)], capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fresh = tmp_path_factory.mktemp("fresh")  # nothing of the checkout next to it
    shutil.copy(built, fresh / "kpctl.pyz")
    yield fresh / "kpctl.pyz"


def _declared() -> list[str]:
    return pythons.declared_versions()


def _python(version: str) -> str:
    python = pythons.find(version)
    assert python is not None, f"Python {version} is declared supported but not on this machine"
    return python


def _run_pyz(python: str, pyz: Path, *args: str, ns: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [python, "-I", str(pyz), *args]
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    # A clean environment: nothing from this venv may leak into the archive's imports.
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=pyz.parent, env=env)


@pytest.mark.parametrize("version", _declared())
def test_pyz_snapshot_reads_equal_the_installed_tool(pyz: Path, version: str) -> None:
    python = _python(version)
    for args in SNAPSHOT_READS:
        want = subprocess.run([INSTALLED, *args], capture_output=True, text=True, timeout=120)
        got = _run_pyz(python, pyz, *args)
        assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr), args


@pytest.mark.parametrize("version", _declared())
def test_pyz_reads_ipset_and_iptables_in_a_namespace(pyz: Path, version: str, netns: str) -> None:
    python = _python(version)
    run_in(netns, "ipset", "create", "KPCTL-PYZ", "hash:ip,port")
    run_in(netns, "ipset", "add", "KPCTL-PYZ", "10.254.0.1,tcp:443")
    run_in(netns, "iptables", "-t", "nat", "-N", "KPCTL-PYZ")
    run_in(netns, "iptables", "-t", "nat", "-A", "KPCTL-PYZ", "-d", "10.254.0.1/32", "-j", "RETURN")
    sets = _run_pyz(python, pyz, "ipset", "list", "KPCTL-PYZ", "-o", "json", ns=netns)
    assert sets.returncode == 0, sets.stderr
    assert "10.254.0.1,tcp:443" in sets.stdout
    rules = _run_pyz(python, pyz, "iptables", "list", "--table", "nat", "--chain", "KPCTL-PYZ", "-o", "save",
                     ns=netns)
    assert rules.returncode == 0, rules.stderr
    assert "-A KPCTL-PYZ -d 10.254.0.1/32 -j RETURN" in rules.stdout


def test_pyz_runs_through_its_shebang_as_completion_scripts_call_it(pyz: Path, tmp_path: Path) -> None:
    # Completion scripts run `kpctl`: the archive installed under that name must answer them.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(pyz, bin_dir / "kpctl")
    (bin_dir / "kpctl").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "_KPCTL_COMPLETE": "bash_complete", "COMP_WORDS": "kpctl ip",
           "COMP_CWORD": "1"}
    proc = subprocess.run(["kpctl"], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "plain,ipvs" in proc.stdout and "plain,ipset" in proc.stdout


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_containerfile_packages_exist_and_its_steps_run(pyz: Path, tmp_path: Path) -> None:
    steps = _instructions((ROOT / "Containerfile").read_text())
    assert steps[0][0] == "FROM" and re.search(r"debian:\d+-slim$", steps[0][1])
    root = tmp_path / "image"  # the image's file system, as far as the steps write to it
    (root / "usr/local/bin").mkdir(parents=True)
    apt_packages: list[str] = []
    for word, rest in steps[1:]:
        if word == "COPY":
            src, dst = rest.split()
            assert src == "dist/kpctl.pyz", "the image installs the single-file build"
            shutil.copy(pyz, root / dst.lstrip("/"))
        elif word == "RUN" and "apt-get install" in rest:
            install = rest.split("apt-get install", 1)[1].split("&&")[0]
            apt_packages += [w for w in shlex.split(install) if not w.startswith("-")]
        elif word == "RUN":
            script = re.sub(r"(?<![\w.])/(usr/local|etc)/", lambda m: f"{root}/{m.group(1)}/", rest)
            env = {"PATH": f"{root}/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
            proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120, env=env)
            assert proc.returncode == 0, f"RUN {rest}\n{proc.stderr}"
    assert {"python3", "iproute2", "ipset", "iptables", "nftables", "ipvsadm", "conntrack", "kmod"} <= set(apt_packages)
    for package in apt_packages:
        assert run("apt-cache", "show", package, check=False).returncode == 0, f"no Debian package {package}"
    assert (root / "etc/bash_completion.d/kpctl").read_text() == (ROOT / "completions" / "kpctl.bash").read_text()


def test_daemonset_is_a_valid_kubernetes_object_running_a_real_kpctl_command(pyz: Path, netns: str,
                                                                             tmp_path: Path) -> None:
    ds = yaml.safe_load((ROOT / "deploy" / "snapshot-daemonset.yaml").read_text())
    assert (ds["apiVersion"], ds["kind"]) == ("apps/v1", "DaemonSet")
    spec = ds["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is True
    (container,) = pod["containers"]
    assert set(container) <= {"name", "image", "env", "command", "args", "securityContext", "resources",
                              "volumeMounts"}
    caps = container["securityContext"].get("capabilities", {}).get("add", [])
    assert "NET_ADMIN" in caps or container["securityContext"].get("privileged") is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    (mount,) = container["volumeMounts"]
    assert volumes[mount["name"]]["hostPath"]["path"] == mount["mountPath"]
    # Run the container's script once (no sleep loop) with the pyz as kpctl, in a namespace.
    script = container["command"][-1]
    assert "kpctl snapshot save" in script
    once = script.replace("while true; do", "").replace("sleep 600", "").replace("done", "")
    once = once.replace(mount["mountPath"], str(tmp_path))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy(pyz, bin_dir / "kpctl")
    (bin_dir / "kpctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_NAME": "node-1"}
    proc = subprocess.run(["ip", "netns", "exec", netns, "sh", "-c", once], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    saved = tmp_path / "node-1.json"
    assert '"format": "kpctl-snapshot"' in saved.read_text()
