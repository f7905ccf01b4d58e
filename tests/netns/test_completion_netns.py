"""Completion's live ipset lookup against the real kernel, inside a fresh namespace.

`kpctl --netns NS ipset list <TAB>` offers the sets ipset(8) created in NS (and only those);
as a non-root user, or with KPCTL_COMPLETE_LIVE=0, it offers nothing and prints nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns.conftest import run_in

pytestmark = pytest.mark.netns

KPCTL = str(Path(sys.executable).parent / "kpctl")


def complete(line: str, **env: str) -> subprocess.CompletedProcess[str]:
    """What bash would get for LINE, from a real kpctl process (as the completion script runs it)."""
    full = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "_KPCTL_COMPLETE": "bash_complete", "COMP_LINE": line,
            "COMP_POINT": str(len(line)), "COMP_WORDS": line, "COMP_CWORD": "0",
            "KPCTL_COMPLETE_BUDGET": "60", **env}  # a loaded CI machine must not turn this flaky
    return subprocess.run([KPCTL], env=full, capture_output=True, text=True, timeout=60, check=False)


def test_live_ipset_names_in_the_namespace(netns: str) -> None:
    run_in(netns, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
    run_in(netns, "ipset", "create", "KUBE-LOOP-BACK", "hash:ip,port,ip")
    run_in(netns, "ipset", "create", "other", "hash:net")
    out = complete(f"kpctl --netns {netns} ipset list KUBE-")
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.splitlines() == ["plain,KUBE-CLUSTER-IP", "plain,KUBE-LOOP-BACK"]
    out = complete(f"kpctl --netns {netns} ipset swap KUBE-CLUSTER-IP o")
    assert out.stdout.splitlines() == ["plain,other"]


def test_live_lookup_switched_off(netns: str) -> None:
    run_in(netns, "ipset", "create", "KUBE-X", "hash:ip")
    out = complete(f"kpctl --netns {netns} ipset list ", KPCTL_COMPLETE_LIVE="0")
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "", "")


def test_no_ipvs_on_this_kernel_offers_nothing_quietly(netns: str) -> None:
    # the host kernel has no IPVS: the lookup fails inside kpctl and the TAB stays silent
    out = complete(f"kpctl --netns {netns} ipvs delete ")
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "", "")


def test_unknown_namespace_offers_nothing_quietly() -> None:
    out = complete("kpctl --netns kpctl-test-does-not-exist ipset list ")
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "", "")
