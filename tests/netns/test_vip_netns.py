"""`kpctl vip` against the host kernel inside a throwaway namespace.

The host kernel has no dummy links, so here kube-ipvs0 cannot be created (exit 6); the
address handling is exercised on the namespace's own lo instead.  tests/vm covers the
dummy link itself.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in


def addresses(ns: str, dev: str) -> list[str]:
    data = json.loads(run_in(ns, "ip", "-j", "addr", "show", "dev", dev).stdout)
    return [f"{a['local']}/{a['prefixlen']}" for a in data[0]["addr_info"]]


def test_no_dummy_support_is_exit_6_and_changes_nothing(netns: str) -> None:
    before = run_in(netns, "ip", "-j", "link").stdout
    outcome = kpctl("--netns", netns, "vip", "add", "10.254.0.1")
    assert outcome.exit_code == 6, outcome.stderr
    assert "dummy" in outcome.stderr
    assert run_in(netns, "ip", "-j", "link").stdout == before


def test_add_list_delete_on_lo(netns: str) -> None:
    assert kpctl("--netns", netns, "vip", "add", "10.254.0.1", "--dev", "lo").exit_code == 0
    assert kpctl("--netns", netns, "vip", "add", "fd00::a", "--dev", "lo").exit_code == 0
    assert {"10.254.0.1/32", "fd00::a/128"} <= set(addresses(netns, "lo"))
    listed = kpctl("--netns", netns, "vip", "list", "--dev", "lo", "-o", "json")
    assert listed.exit_code == 0
    assert {v["address"] for v in json.loads(listed.stdout)} >= {"10.254.0.1", "fd00::a", "127.0.0.1"}

    again = kpctl("--netns", netns, "vip", "add", "10.254.0.1/32", "--dev", "lo")
    assert again.exit_code == 4 and "10.254.0.1" in again.stderr

    assert kpctl("--netns", netns, "vip", "delete", "10.254.0.1", "--dev", "lo").exit_code == 0
    assert "10.254.0.1/32" not in addresses(netns, "lo")
    missing = kpctl("--netns", netns, "vip", "delete", "10.254.0.1", "--dev", "lo")
    assert missing.exit_code == 3 and "10.254.0.1" in missing.stderr
    assert kpctl("--netns", netns, "vip", "delete", "10.254.0.1").exit_code == 3  # no kube-ipvs0


def test_list_reads_every_address_the_kernel_holds_as_ip_shows_it(netns: str) -> None:
    # kpctl's own rtnetlink dump (several replies of many messages) against iproute2's
    batch = [f"address add 10.96.{i >> 8}.{i & 255}/32 dev lo" for i in range(1500)]
    batch += [f"address add fd00::{i:x}/128 dev lo" for i in range(1, 501)] + ["address add 192.0.2.1/24 dev lo"]
    run_in(netns, "ip", "-batch", "-", input="\n".join(batch) + "\n")
    listed = kpctl("--netns", netns, "vip", "list", "--dev", "lo", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    shown = {a.split("/")[0] for a in addresses(netns, "lo")}
    assert len(shown) >= 2001  # (and lo's own)
    assert {v["address"] for v in json.loads(listed.stdout)} == shown
    assert kpctl("--netns", netns, "vip", "add", "192.0.2.1", "--dev", "lo").exit_code == 4  # bound, as /24
    assert kpctl("--netns", netns, "vip", "delete", "fd00::1f4", "--dev", "lo").exit_code == 0
    assert "fd00::1f4/128" not in addresses(netns, "lo") and "fd00::1f3/128" in addresses(netns, "lo")


def test_not_root_is_exit_5(netns: str) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to drop privileges"
    kpctl_bin = str(Path(sys.executable).parent / "kpctl")
    proc = run_in(netns, setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                  kpctl_bin, "vip", "add", "10.254.0.7", "--dev", "lo", check=False)
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.startswith("kpctl: error:")
    assert "10.254.0.7/32" not in addresses(netns, "lo")
