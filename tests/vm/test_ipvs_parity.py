"""kpctl against ipvsadm on the real IPVS kernel: each writes, the other reads, byte for byte."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.vm.ipvs_tables import FEATURES, VIEWS, build_with_ipvsadm, ok

Ipvsadm = Callable[..., str]


@pytest.fixture
def feature_table(ipvsadm: Ipvsadm) -> str:
    """The every-feature table built by ipvsadm; returns its `ipvsadm -Sn`."""
    build_with_ipvsadm()
    saved = ipvsadm("-Sn")
    assert saved.count("\n") == len(FEATURES)
    return saved


def test_list_o_ipvsadm_equals_ipvsadm_ln_in_every_view(feature_table: str, ipvsadm: Ipvsadm) -> None:
    mismatches = []
    for ipvsadm_flags, kpctl_flags in VIEWS:
        expected = ipvsadm("-Ln", *ipvsadm_flags)
        got = ok("ipvs", "list", "-n", "-o", "ipvsadm", *kpctl_flags).stdout
        if got != expected:
            mismatches.append(f"--- ipvsadm -Ln {' '.join(ipvsadm_flags)}\n{expected}--- kpctl\n{got}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize(("service", "ipvsadm_service"), [
    ("10.254.0.2:80", ["-t", "10.254.0.2:80"]),
    ("[2001:db8::10]:443", ["-t", "[2001:db8::10]:443"]),
    ("10.254.0.10:53/udp", ["-u", "10.254.0.10:53"]),
    ("10.254.0.20:3868/sctp", ["--sctp-service", "10.254.0.20:3868"]),
    ("fwmark:101/ipv6", ["-f", "101", "-6"]),
])
def test_list_one_service_equals_ipvsadm(feature_table: str, ipvsadm: Ipvsadm, service: str,
                                         ipvsadm_service: list[str]) -> None:
    for ipvsadm_flags, kpctl_flags in (([], []), (["--tun-info"], ["--tun-info"]), (["--thresholds"], ["--thresholds"])):
        expected = ipvsadm("-Ln", *ipvsadm_service, *ipvsadm_flags)
        assert ok("ipvs", "list", service, "-o", "ipvsadm", *kpctl_flags).stdout == expected


def test_save_equals_ipvsadm_sn(feature_table: str) -> None:
    assert ok("ipvs", "save", "-n").stdout == feature_table
    assert ok("ipvs", "list", "-o", "save").stdout == feature_table


def test_json_carries_every_field_read_from_the_kernel(feature_table: str) -> None:
    import json

    services = {(s["address"], s["port"], s["fwmark"]): s for s in json.loads(ok("ipvs", "list", "-o", "json").stdout)["services"]}
    persistent = services[("10.254.0.2", 80, 0)]
    assert (persistent["scheduler"], persistent["timeout"], persistent["netmask"]) == ("wlc", 600, 0xFFFFFF00)
    servers = {(d["address"], d["port"]): d for d in persistent["servers"]}
    assert (servers[("10.0.0.4", 80)]["tun_type"], servers[("10.0.0.4", 80)]["tun_port"]) == ("gue", 6080)
    assert servers[("fd00::9", 80)]["family"] == "inet6"
    assert services[("2001:db8::10", 443, 0)]["netmask"] == 64
    assert services[(None, 0, 101)]["family"] == "inet6" and services[(None, 0, 101)]["netmask"] == 96
    assert services[("10.254.0.30", 5060, 0)]["pe_name"] == "sip"
    heavy = {(d["address"]): d for d in services[("10.254.0.1", 443, 0)]["servers"]}
    assert (heavy["172.30.1.6"]["weight"], heavy["172.30.1.6"]["upper_threshold"],
            heavy["172.30.1.6"]["lower_threshold"]) == (65535, 1000, 100)
    assert heavy["172.30.1.7"]["weight"] == 0
    assert set(heavy["172.30.1.5"]["stats"]) == {"conns", "inpkts", "outpkts", "inbytes", "outbytes",
                                                 "cps", "inpps", "outpps", "inbps", "outbps"}


def test_the_default_view_reads_every_server_from_proc_net_ip_vs_as_netlink_reads_it(
        feature_table: str, ipvsadm: Ipvsadm, monkeypatch: pytest.MonkeyPatch) -> None:
    from operator import attrgetter

    from kpctl.backends import ipvs_dump
    from kpctl.backends.ipvs_netlink import IPVSNetlink
    from kpctl.core.ipvsadm_list import server_address

    # a fwmark of both families, which /proc/net/ip_vs names alike: those two from netlink
    ipvsadm("-A", "-f", "100", "-6", "-s", "rr")
    ipvsadm("-a", "-f", "100", "-6", "-r", "fd00::30", "-g", "-w", "2")
    fields = attrgetter("address", "port", "family", "forward", "weight", "active_conns", "inactive_conns")
    with IPVSNetlink() as backend:
        full = backend.table()
        asked: list[bytes] = []
        servers = ipvs_dump.DumpReader.servers
        monkeypatch.setattr(ipvs_dump.DumpReader, "servers",
                            lambda reader, raw_key, af: asked.append(raw_key) or servers(reader, raw_key, af))
        default = backend.default_view_table()
    assert [s._replace(servers=()) for s in default.services] == [s._replace(servers=()) for s in full.services]
    for got, want in zip(default.services, full.services):
        assert [(fields(d), server_address(d)) for d in got.servers] == \
            [(fields(d), server_address(d)) for d in want.servers], want.key
    assert len(asked) == 2  # GET_DEST only for fwmark 100's two services; every other service's from the text
    assert ok("ipvs", "list", "-n", "-o", "ipvsadm").stdout == ipvsadm("-Ln")


def test_kpctl_builds_the_same_table_ipvsadm_builds(ipvsadm: Ipvsadm) -> None:
    build_with_ipvsadm()
    expected = ipvsadm("-Sn")
    ipvsadm("-C")
    for _, kpctl_args in FEATURES:
        ok(*kpctl_args)
    assert ipvsadm("-Sn") == expected


def test_kpctl_restores_an_ipvsadm_save_and_ipvsadm_restores_a_kpctl_save(feature_table: str, ipvsadm: Ipvsadm) -> None:
    ipvsadm("-C")
    ok("ipvs", "restore", input=feature_table)
    assert ipvsadm("-Sn") == feature_table
    saved_by_kpctl = ok("ipvs", "save", "-n").stdout
    ipvsadm("-C")
    ipvsadm("-R", input=saved_by_kpctl)
    assert ipvsadm("-Sn") == feature_table


def test_restore_from_a_file_with_flush_replaces_the_table(feature_table: str, ipvsadm: Ipvsadm, tmp_path: object) -> None:
    import pathlib

    rules = pathlib.Path(str(tmp_path)) / "ipvs.rules"
    rules.write_text(feature_table, encoding="ascii")
    ipvsadm("-C")
    ipvsadm("-A", "-t", "10.99.0.1:80", "-s", "rr")
    ipvsadm("-a", "-t", "10.99.0.1:80", "-r", "10.99.1.1:80", "-m")
    ok("ipvs", "restore", str(rules), "--flush")
    assert ipvsadm("-Sn") == feature_table


def test_restore_dry_run_changes_nothing(feature_table: str, ipvsadm: Ipvsadm) -> None:
    ipvsadm("-C")
    out = ok("ipvs", "restore", "--dry-run", input=feature_table).stdout
    assert ipvsadm("-Sn") == ""
    assert out.count("\n") == len(FEATURES)
    assert "-A -t 10.254.0.1:443 -s rr" in out
