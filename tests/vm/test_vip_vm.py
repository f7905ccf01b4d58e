"""`kpctl vip` on the VM's kernel: kube-ipvs0 really becomes a DOWN dummy holding the VIPs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import kpctl
from tests.vm.nodes import ipvsadm, sh

DEV = "kube-ipvs0"


@pytest.fixture
def clean_dev() -> Iterator[None]:
    assert not os.path.exists(f"/sys/class/net/{DEV}"), "a previous test left kube-ipvs0 behind"
    yield
    sh("ip", "link", "delete", DEV, check=False)
    sh("ipset", "destroy", "KUBE-CLUSTER-IP", check=False)


def link_info() -> dict:  # type: ignore[type-arg]
    return json.loads(sh("ip", "-j", "-d", "addr", "show", "dev", DEV).stdout)[0]


def test_add_creates_down_dummy_with_host_addresses(clean_dev: None) -> None:
    assert kpctl("vip", "add", "10.254.0.1").exit_code == 0
    info = link_info()
    assert info["linkinfo"]["info_kind"] == "dummy"
    assert "UP" not in info["flags"] and info["operstate"] == "DOWN"
    assert [(a["local"], a["prefixlen"]) for a in info["addr_info"]] == [("10.254.0.1", 32)]
    # Down, yet the node owns the address: the kernel made the local route kube-proxy relies on.
    assert "local 10.254.0.1 dev kube-ipvs0" in sh("ip", "route", "show", "table", "local").stdout

    assert kpctl("vip", "add", "10.254.0.2/32").exit_code == 0
    assert kpctl("vip", "add", "fd00::a").exit_code == 0
    addrs = {(a["local"], a["prefixlen"]) for a in link_info()["addr_info"]}
    assert addrs == {("10.254.0.1", 32), ("10.254.0.2", 32), ("fd00::a", 128)}
    assert "UP" not in link_info()["flags"]

    again = kpctl("vip", "add", "10.254.0.1")
    assert again.exit_code == 4 and "10.254.0.1" in again.stderr
    bad = kpctl("vip", "add", "10.254.0.0/24")
    assert bad.exit_code == 2
    assert {(a["local"], a["prefixlen"]) for a in link_info()["addr_info"]} == addrs  # nothing changed


def test_snapshot_records_the_administrative_state(clean_dev: None, tmp_path: Path) -> None:
    # kube-ipvs0 is administratively DOWN (no IFF_UP), as `ip` and `vip add` leave it; lo is UP
    # though the kernel's operational state of a loopback is UNKNOWN
    assert kpctl("vip", "add", "10.254.0.1").exit_code == 0

    def saved_links() -> dict:  # type: ignore[type-arg]
        path = tmp_path / "node.json"
        assert kpctl("snapshot", "save", str(path)).exit_code == 0
        return {link["name"]: link for link in json.loads(path.read_text())["links"]}

    links = saved_links()
    assert (links[DEV]["state"], links[DEV]["addresses"]) == ("DOWN", ["10.254.0.1/32"])
    assert (links["lo"]["state"], links["lo"]["operstate"]) == ("UP", "UNKNOWN")
    sh("ip", "link", "set", DEV, "up")
    assert saved_links()[DEV]["state"] == "UP" and "UP" in link_info()["flags"]


def test_list_shows_services_and_set_members(clean_dev: None) -> None:
    for vip in ("10.254.0.1", "10.254.0.2"):
        assert kpctl("vip", "add", vip).exit_code == 0
    ipvsadm("-A", "-t", "10.254.0.1:443", "-s", "rr")
    ipvsadm("-A", "-u", "10.254.0.2:53", "-s", "rr")
    sh("ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
    sh("ipset", "add", "KUBE-CLUSTER-IP", "10.254.0.1,tcp:443")
    listed = kpctl("vip", "list", "-o", "json")
    assert listed.exit_code == 0, listed.stderr
    by_vip = {v["address"]: v for v in json.loads(listed.stdout)}
    assert by_vip["10.254.0.1"]["services"] == ["10.254.0.1:443/tcp"]
    assert by_vip["10.254.0.1"]["ipset_entries"] == ["KUBE-CLUSTER-IP 10.254.0.1,tcp:443"]
    assert by_vip["10.254.0.2"]["services"] == ["10.254.0.2:53/udp"]
    assert by_vip["10.254.0.2"]["ipset_entries"] == []


def test_delete_removes_address_and_keeps_link(clean_dev: None) -> None:
    assert kpctl("vip", "add", "10.254.0.1").exit_code == 0
    assert kpctl("vip", "add", "10.254.0.2").exit_code == 0
    assert kpctl("vip", "delete", "10.254.0.1").exit_code == 0
    assert [a["local"] for a in link_info()["addr_info"]] == ["10.254.0.2"]
    missing = kpctl("vip", "delete", "10.254.0.1")
    assert missing.exit_code == 3 and "10.254.0.1" in missing.stderr
    assert kpctl("vip", "delete", "10.254.0.2").exit_code == 0
    assert link_info()["addr_info"] == []  # the link stays, as kube-proxy leaves it
