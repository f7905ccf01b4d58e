"""`kpctl snapshot save` and the NodeView a trace reads from a snapshot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kpctl.backends import collect
from kpctl.backends.snapshot import load_snapshot
from kpctl.core.snapshot_view import NodeView
from kpctl.model.snapshot import NodeSnapshot
from tests.cli_helpers import kpctl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["seed-ipvs-node.json", "iptables-node.json", "nftables-node.json",
                                  "userspace-node.json"])
def test_examples_load_and_parse(name: str) -> None:
    view = NodeView(load_snapshot(str(EXAMPLES / name)))
    assert view.links and view.routes["local"] and view.routes["main"]
    assert view.rulesets or view.nftables


def test_seed_view_matches_the_article() -> None:
    view = NodeView(load_snapshot(str(EXAMPLES / "seed-ipvs-node.json")))
    keys = {str(s.key) for s in view.ipvs_services}
    assert keys == {"10.254.0.1:443/tcp", "10.254.0.2:53/udp", "10.254.0.2:53/tcp", "10.254.0.2:9153/tcp",
                    "10.254.199.160:8080/tcp"}
    members = {m.raw for m in view.ipsets["KUBE-CLUSTER-IP"].members}
    assert members == {"10.254.0.2,udp:53", "10.254.0.1,tcp:443", "10.254.0.2,tcp:9153",
                       "10.254.199.160,tcp:8080", "10.254.0.2,tcp:53"}
    assert view.local_addresses["10.254.199.160"] == "kube-ipvs0" and view.is_local("10.254.0.2")
    assert view.lookup("172.30.78.4").dev == "flannel.1"
    assert view.section("cluster_cidr") == "172.30.0.0/16"


def test_routing_longest_prefix_and_local_first() -> None:
    view = NodeView(NodeSnapshot(1, {"routes": {
        "local": [{"type": "local", "dst": "10.0.0.5", "dev": "eth0"}],
        "main": [{"dst": "default", "gateway": "10.0.0.1", "dev": "eth0"},
                 {"dst": "10.0.0.0/8", "dev": "eth1"}, {"dst": "10.1.0.0/16", "dev": "eth2"},
                 {"type": "blackhole", "dst": "10.9.0.0/16"}]}}))
    assert view.lookup("10.0.0.5").kind == "local"
    assert view.lookup("10.1.2.3").dev == "eth2"
    assert view.lookup("10.2.2.3").dev == "eth1"
    assert view.lookup("8.8.8.8").dev == "eth0"
    assert view.lookup("10.9.1.1").kind == "blackhole"


def test_resave_of_a_snapshot_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "copy.json"
    result = kpctl("--snapshot", str(EXAMPLES / "seed-ipvs-node.json"), "snapshot", "save", str(out))
    assert result.exit_code == 0, result.stderr
    assert json.loads(out.read_text()) == json.loads((EXAMPLES / "seed-ipvs-node.json").read_text())


def test_collect_tolerates_missing_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_run(argv: list[str]) -> str:
        if argv[0] == "ipset":
            raise FileNotFoundError("ipset not found")
        if argv[0] == "nft":
            raise RuntimeError("nft -j list ruleset: Operation not permitted")
        if argv[:3] == ["ip", "-j", "-d"]:
            return json.dumps([{"ifname": "lo", "ifindex": 1, "operstate": "UNKNOWN", "flags": ["LOOPBACK", "UP"],
                                "addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]},
                               {"ifname": "kube-ipvs0", "ifindex": 5, "operstate": "DOWN",
                                "linkinfo": {"info_kind": "dummy"},
                                "addr_info": [{"local": "10.254.0.1", "prefixlen": 32}]}])
        if argv[:2] == ["ip", "-j"] or argv[:3] == ["ip", "-j", "-6"]:
            return "[]"
        raise AssertionError(argv)

    def no_ipvs(app: Any, connections: bool, absent: Any) -> Any:
        from kpctl.errors import KernelFeatureMissing

        raise KernelFeatureMissing("IPVS is not available in this kernel")

    monkeypatch.setattr(collect, "_run", fake_run)
    monkeypatch.setattr(collect, "_ipvs", no_ipvs)
    monkeypatch.setattr(collect, "_modules", lambda: ["nf_conntrack"])
    monkeypatch.setattr(collect, "_iptables", lambda: {"ipv4": {"nft": "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
                                                                 "legacy": None}, "ipv6": {"nft": None, "legacy": None}})
    snap = collect.collect_snapshot(app=None)
    absent = snap.section("absent")
    assert set(absent) == {"ipvs", "ipsets", "nftables"}
    assert "IPVS" in absent["ipvs"] and "not permitted" in absent["nftables"]
    assert snap.section("links")[1] == {"name": "kube-ipvs0", "index": 5, "kind": "dummy", "state": "DOWN",
                                        "operstate": "DOWN", "flags": [], "addresses": ["10.254.0.1/32"]}
    assert snap.section("links")[0]["state"] == "UP" and snap.section("links")[0]["operstate"] == "UNKNOWN"
    view = NodeView(snap)
    assert view.is_local("10.254.0.1") and view.ipvs_services == () and view.ipsets == {}
    document = snap.to_dict()
    assert document["format"] == "kpctl-snapshot" and document["version"] == 1
    json.dumps(document)  # serialisable


def test_snapshot_save_help_has_an_example() -> None:
    result = kpctl("snapshot", "save", "--help")
    assert result.exit_code == 0 and "kpctl snapshot save" in result.stdout


def test_resave_writes_each_nftables_object_on_its_line(tmp_path: Path) -> None:
    out = tmp_path / "copy.json"
    source = EXAMPLES / "nftables-node.json"
    assert kpctl("--snapshot", str(source), "snapshot", "save", str(out)).exit_code == 0
    written = out.read_text()
    assert json.loads(written) == json.loads(source.read_text())
    lines = {line.strip().rstrip(",") for line in written.splitlines()}
    objects = json.loads(written)["nftables"]["nftables"]
    assert len(objects) > 10 and all(json.dumps(item, ensure_ascii=False) in lines for item in objects)
    assert written.startswith('{\n  "format": "kpctl-snapshot",\n')  # the rest stays indented


class _TableOnly:
    """A live IPVS backend whose connection table cannot be read."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def table(self) -> Any:
        from kpctl.model.ipvs import IPVSInfo, IPVSTable, VirtualService

        return IPVSTable(IPVSInfo("1.2.1", 4096), (VirtualService("inet", "tcp", "10.254.0.1", 443),))

    def timeouts(self) -> Any:
        from kpctl.model.ipvs import Timeouts

        return Timeouts()

    def connection_text(self) -> str:
        from kpctl.errors import PermissionDenied

        if self.text is None:
            raise PermissionDenied("cannot read /proc/net/ip_vs_conn")
        return self.text

    def close(self) -> None:
        pass


@pytest.mark.parametrize("text", [None, "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires\n"])
def test_ipvs_connections_are_recorded_or_said_absent(monkeypatch: pytest.MonkeyPatch, text: str | None) -> None:
    import kpctl.backends.ipvs

    monkeypatch.setattr(kpctl.backends.ipvs, "open_ipvs", lambda app: _TableOnly(text))
    saved = collect.collect_snapshot(app=None, only=("ipvs",), connections=True)
    assert saved.section("ipvs")["services"][0]["address"] == "10.254.0.1"
    if text is None:  # the table is kept, and why the connections are not said
        assert "connections" not in saved.section("ipvs")
        assert saved.section("absent")["ipvs connections"].startswith("cannot read /proc/net/ip_vs_conn")
        assert list(saved.section("absent")) == ["ipvs connections"]
    else:
        assert saved.section("ipvs")["connections"] == text and saved.section("absent") is None
    assert "connections" not in collect.collect_snapshot(app=None, only=("ipvs",)).section("ipvs")  # (trace's)
