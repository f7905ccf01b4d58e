"""`kpctl vip`: address parsing and `vip list` on a snapshot (no kernel)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from kpctl.core.ipset_save import parse_save
from kpctl.core.vips import build_vips, parse_vip, validate_dev
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import RealServer, VirtualService
from kpctl.model.links import Link
from tests.cli_helpers import kpctl

IPSETS = """create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-CLUSTER-IP 10.254.0.1,tcp:443
add KUBE-CLUSTER-IP 10.254.0.2,udp:53
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536
add KUBE-LOOP-BACK 172.30.1.5,tcp:8080,172.30.1.5
"""
LINKS = [Link("lo", "loopback", "UP", ("127.0.0.1/8",)),
         Link("kube-ipvs0", "dummy", "DOWN", ("10.254.0.1/32", "10.254.0.2/32", "fd00::a/128"))]
SERVICES = (
    VirtualService(address="10.254.0.1", port=443, scheduler="rr", servers=(RealServer("172.30.1.5", 6443),)),
    VirtualService(address="10.254.0.2", port=53, protocol="udp", scheduler="rr"),
    VirtualService(address="10.254.0.2", port=53, protocol="tcp", scheduler="rr"),
    VirtualService(fwmark=7, protocol=None),
)


@pytest.mark.parametrize("text,expected", [
    ("10.254.0.1", "10.254.0.1"), ("10.254.0.1/32", "10.254.0.1"), ("fd00::a", "fd00::a"),
    ("fd00::a/128", "fd00::a"), ("[fd00::a]", "fd00::a"),
])
def test_parse_vip_accepts_host_addresses(text: str, expected: str) -> None:
    assert parse_vip(text) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("text", ["10.254.0.1/24", "fd00::a/64", "10.254.0.300", "kubernetes", "", "224.0.0.1", "0.0.0.0"])
def test_parse_vip_refuses_the_rest(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_vip(text)


@pytest.mark.parametrize("name", ["", "a" * 16, "eth/0", "two words", "x:y"])
def test_bad_device_names(name: str) -> None:
    with pytest.raises(InvalidInput):
        validate_dev(name)


def test_build_vips_joins_services_and_set_members() -> None:
    vips = {v.address: v for v in build_vips(LINKS, "kube-ipvs0", SERVICES, parse_save(IPSETS))}
    assert set(vips) == {"10.254.0.1", "10.254.0.2", "fd00::a"}
    assert vips["10.254.0.1"].services == ("10.254.0.1:443/tcp",)
    assert vips["10.254.0.1"].ipset_entries == ("KUBE-CLUSTER-IP 10.254.0.1,tcp:443",)
    assert vips["10.254.0.2"].services == ("10.254.0.2:53/udp", "10.254.0.2:53/tcp")
    assert vips["fd00::a"].services == () and vips["fd00::a"].prefixlen == 128


def test_build_vips_parses_each_address_once_not_per_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    # It compared every VIP with every service and member, two ipaddress objects per pair:
    # 827 s for `vip list` at 10,000 services.  Now each address is parsed once.
    n = 300
    links = [Link("kube-ipvs0", "dummy", "DOWN", tuple(f"10.100.{i // 256}.{i % 256}/32" for i in range(n)))]
    services = [VirtualService(address=f"10.100.{i // 256}.{i % 256}", port=80) for i in range(n)]
    ipsets = parse_save("create KUBE-CLUSTER-IP hash:ip,port family inet\n" + "".join(
        f"add KUBE-CLUSTER-IP 10.100.{i // 256}.{i % 256},tcp:80\n" for i in range(n)))
    calls = 0
    real = ipaddress.ip_address

    def counting(text: object) -> object:
        nonlocal calls
        calls += 1
        return real(text)  # type: ignore[arg-type]

    monkeypatch.setattr(ipaddress, "ip_address", counting)
    vips = build_vips(links, "kube-ipvs0", services, ipsets)
    assert calls <= 3 * n
    assert [v.services for v in vips[:2]] == [("10.100.0.0:80/tcp",), ("10.100.0.1:80/tcp",)]
    assert vips[-1].ipset_entries == ("KUBE-CLUSTER-IP 10.100.1.43,tcp:80",)


def write_snapshot(path: Path, **sections: object) -> str:
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, **sections}))
    return str(path)


def test_vip_list_on_snapshot(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "s.json", links=[link.to_dict() for link in LINKS], ipsets=IPSETS,
                          ipvs={"info": {"version": "1.2.1", "conn_table_size": 4096},
                                "services": [s.to_dict() for s in SERVICES]})
    outcome = kpctl("--snapshot", snap, "vip", "list", "-o", "plain")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines() == [
        "VIP\tSERVICES\tIPSET ENTRIES",
        "10.254.0.1/32\t10.254.0.1:443/tcp\tKUBE-CLUSTER-IP 10.254.0.1,tcp:443",
        "10.254.0.2/32\t10.254.0.2:53/udp, 10.254.0.2:53/tcp\tKUBE-CLUSTER-IP 10.254.0.2,udp:53",
        "fd00::a/128\t-\t-",
    ]
    data = json.loads(kpctl("--snapshot", snap, "vip", "list", "-o", "json").stdout)
    assert data[0] == {"address": "10.254.0.1", "prefixlen": 32, "dev": "kube-ipvs0",
                       "services": ["10.254.0.1:443/tcp"], "ipset_entries": ["KUBE-CLUSTER-IP 10.254.0.1,tcp:443"]}


def test_vip_list_snapshot_with_links_only(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "s.json", links=[link.to_dict() for link in LINKS])
    outcome = kpctl("--snapshot", snap, "vip", "list", "-o", "plain", "--no-headers")
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines()[0] == "10.254.0.1/32\t-\t-"


def test_vip_add_refuses_snapshot_and_bad_input(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path / "s.json", links=[])
    assert kpctl("--snapshot", snap, "vip", "add", "10.254.0.9").exit_code == 2
    outcome = kpctl("vip", "add", "10.254.0.9/16")
    assert outcome.exit_code == 2 and "10.254.0.9/16" in outcome.stderr
    assert kpctl("vip", "delete", "not-an-ip").exit_code == 2
    assert kpctl("vip", "add", "10.254.0.9", "--dev", "bad/name").exit_code == 2
