"""Every refusal: the exit code of CLI.md, one line naming the bad value, the table unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.vm.ipvs_tables import blocked_module, ok, refused

Ipvsadm = Callable[..., str]

TABLE = (
    "-A -t 10.254.0.1:443 -s rr\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 1\n"
    "-A -f 100 -s wlc\n"
)


@pytest.fixture(autouse=True)
def some_table(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-R", input=TABLE)


@pytest.mark.parametrize(("args", "naming"), [
    (["ipvs", "add", "10.254.0.300:80"], "10.254.0.300"),
    (["ipvs", "add", "10.254.0.3:70000"], "70000"),
    (["ipvs", "add", "10.254.0.3:80/icmp"], "icmp"),
    (["ipvs", "add", "10.254.0.3"], "10.254.0.3"),
    (["ipvs", "add", "[fd00::1:80"], "[fd00::1:80"),
    (["ipvs", "add", "fwmark:0"], "fwmark:0"),
    (["ipvs", "add", "fwmark:5/ipv7"], "ipv7"),
    (["ipvs", "add", "10.254.0.3:80", "-s", "fastest"], "fastest"),
    (["ipvs", "add", "10.254.0.3:80", "-p", "abc"], "abc"),
    (["ipvs", "add", "10.254.0.3:80", "-p", "60", "-M", "255.255.300.0"], "255.255.300.0"),
    (["ipvs", "add", "[fd00::3]:80", "-p", "60", "-M", "129"], "129"),
    (["ipvs", "add", "10.254.0.3:80", "-s", "rr", "-b", "sh-port"], "sh-port"),
    (["ipvs", "add", "10.254.0.3:80", "-b", "nonsense"], "nonsense"),
    (["ipvs", "add", "10.254.0.3:80", "-p", "60", "--pe", "ftp"], "ftp"),
    (["ipvs", "add", "10.254.0.3:80", "--pe", "sip"], "sip"),
    (["ipvs", "add", "10.254.0.3:80", "--ops"], "10.254.0.3:80"),
    (["ipvs", "edit", "10.254.0.1:443", "-s", "fastest"], "fastest"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:6443", "-w", "70000"], "70000"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:6443", "-w", "-1"], "-1"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:6443", "-m", "-g"], "-m"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:6443", "-x", "many"], "many"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.999:6443"], "172.30.1.999"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:0x10"], "0x10"),
    (["ipvs", "add-server", "10.254.0.1:443", "[fd00::6]:6443", "-m"], "fd00::6"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6", "-i", "--tun-type", "vxlan"], "vxlan"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6", "-i", "--tun-type", "gue"], "gue"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6", "-i", "--tun-type", "gue", "--tun-port", "99999"], "99999"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6", "-i", "--tun-port", "6080"], "ipip"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6", "-m", "--tun-type", "gre"], "masq"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.6", "-i", "--tun-type", "gre", "--tun-csum",
      "--tun-nocsum"], "--tun-"),
    (["ipvs", "timeout", "900", "120"], "2"),
    (["ipvs", "timeout", "900", "x", "300"], "x"),
    (["ipvs", "zero", "10.254.0.1:notaport"], "notaport"),
    (["ipvs", "connections", "--client", "1.2.3"], "1.2.3"),
    (["ipvs", "daemon", "start", "master", "--mcast-group", "10.0.0.1"], "10.0.0.1"),
    (["ipvs", "list", "--stats", "--rate"], "--stats"),
])
def test_bad_input_exits_2_naming_the_value(args: list[str], naming: str) -> None:
    refused(2, *args, naming=naming)


def test_lower_threshold_above_upper_exits_2(ipvsadm: Ipvsadm) -> None:
    refused(2, "ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:6443", "-x", "5", "-y", "10")


@pytest.mark.parametrize(("args", "naming"), [
    (["ipvs", "add", "10.254.0.1:443"], "10.254.0.1:443"),
    (["ipvs", "add", "fwmark:100"], "fwmark:100"),
    (["ipvs", "add-server", "10.254.0.1:443", "172.30.1.5:6443", "-m"], "172.30.1.5:6443"),
])
def test_duplicate_add_exits_4(args: list[str], naming: str) -> None:
    refused(4, *args, naming=naming)


@pytest.mark.parametrize(("args", "naming"), [
    (["ipvs", "delete", "10.254.0.9:443"], "10.254.0.9:443"),
    (["ipvs", "delete", "10.254.0.1:443/udp"], "10.254.0.1:443/udp"),
    (["ipvs", "delete", "fwmark:100/ipv6"], "fwmark:100"),
    (["ipvs", "edit", "10.254.0.9:443", "-s", "rr"], "10.254.0.9:443"),
    (["ipvs", "delete-server", "10.254.0.1:443", "172.30.1.99:6443"], "172.30.1.99"),
    (["ipvs", "delete-server", "10.254.0.9:443", "172.30.1.5:6443"], "10.254.0.9:443"),
    (["ipvs", "edit-server", "10.254.0.1:443", "172.30.1.99:6443", "-w", "3"], "172.30.1.99"),
    (["ipvs", "add-server", "10.254.0.9:443", "172.30.1.5:6443"], "10.254.0.9:443"),
    (["ipvs", "zero", "10.254.0.9:443"], "10.254.0.9:443"),
    (["ipvs", "list", "10.254.0.9:443"], "10.254.0.9:443"),
    (["ipvs", "daemon", "stop", "backup"], "backup"),
])
def test_missing_object_exits_3(args: list[str], naming: str) -> None:
    refused(3, *args, naming=naming)


def test_missing_scheduler_module_exits_6_naming_it() -> None:
    with blocked_module("ip_vs_ovf"):
        outcome = refused(6, "ipvs", "add", "10.254.0.3:80", "-s", "ovf", naming="ovf")
    assert "ip_vs_ovf" in outcome.stderr


def test_edit_to_a_missing_scheduler_module_exits_6() -> None:
    with blocked_module("ip_vs_ovf"):
        refused(6, "ipvs", "edit", "10.254.0.1:443", "-s", "ovf", naming="ovf")


def test_writes_on_a_snapshot_exit_2(tmp_path: object) -> None:
    import json
    import pathlib

    snapshot = pathlib.Path(str(tmp_path)) / "node.json"
    snapshot.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "ipvs": {"services": []}}))
    refused(2, "--snapshot", str(snapshot), "ipvs", "add", "10.254.0.3:80", naming=str(snapshot))
    refused(2, "--snapshot", str(snapshot), "ipvs", "clear", naming=str(snapshot))


def run_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable,
                           "-m", "kpctl", *args], capture_output=True, check=False, text=True, env=env, cwd="/", timeout=300)


def test_not_root_exits_5_and_changes_nothing(ipvsadm: Ipvsadm) -> None:
    before = ipvsadm("-Sn")
    proc = run_as_nobody("ipvs", "add", "10.254.0.3:80", "-s", "rr")
    assert proc.returncode == 5, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kpctl: error: ") and "root" in lines[0]
    assert ipvsadm("-Sn") == before


def test_not_root_listing_exits_5() -> None:
    proc = run_as_nobody("ipvs", "list", "-o", "ipvsadm")
    assert proc.returncode == 5, (proc.stdout, proc.stderr)


def test_list_still_works_after_errors(ipvsadm: Ipvsadm) -> None:
    assert ok("ipvs", "save", "-n").stdout == ipvsadm("-Sn")
