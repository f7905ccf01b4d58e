"""`kpctl ipvs …` against an in-memory backend: output formats, exit codes, and bad input.

Bad input must exit 2 with one line naming the value and must not even open the backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kpctl.core.ipvs_conn import parse_ip_vs_conn
from kpctl.model.ipvs import Connection, RealServer, ServiceKey, SyncDaemon, Timeouts
from tests.cli_helpers import kpctl
from tests.unit.ipvs_fakes import FakeIPVS, fixture_text, install, load_table


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIPVS:
    backend = FakeIPVS(load_table("node_table.json"))
    backend.opened = install(monkeypatch, backend)  # type: ignore[attr-defined]
    return backend


def _one_line_error(outcome: Any, code: int, *named: str) -> str:
    assert outcome.exit_code == code, (outcome.exit_code, outcome.stderr, outcome.exception)
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("kpctl: error: ")
    for value in named:
        assert value in lines[0], lines[0]
    return lines[0]


# --- list ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, fixture", [
    ([], "default"), (["--stats"], "stats"), (["--rate"], "rate"), (["--thresholds"], "thresholds"),
    (["--persistent-conn"], "persistent-conn"), (["--tun-info"], "tun-info"), (["--stats", "--exact"], "stats-exact"),
    (["-n", "--rate", "-X"], "rate-exact"),
])
def test_list_ipvsadm_output_is_byte_identical(fake: FakeIPVS, flags: list[str], fixture: str) -> None:
    outcome = kpctl("ipvs", "list", *flags, "-o", "ipvsadm")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == fixture_text(f"node_table.{fixture}.txt")


def test_list_save_format(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "list", "-o", "save").stdout == fixture_text("node_table.save.txt")
    assert kpctl("ipvs", "save", "-n").stdout == fixture_text("node_table.save.txt")


def test_list_one_service(fake: FakeIPVS) -> None:
    outcome = kpctl("ipvs", "list", "10.254.0.2:53/UDP", "-o", "ipvsadm")
    assert outcome.stdout.splitlines()[2] == "UDP  10.254.0.2:53 rr ops"
    assert not outcome.stdout.startswith("IP Virtual Server")
    plain = kpctl("ipvs", "list", "10.254.0.2:53/udp", "-o", "plain", "--no-headers").stdout.splitlines()
    assert len(plain) == 2 and all(line.startswith("10.254.0.2:53/udp\trr\tops\t172.30.2.") for line in plain)


def test_list_missing_service_is_not_found(fake: FakeIPVS) -> None:
    _one_line_error(kpctl("ipvs", "list", "10.9.9.9:80"), 3, "10.9.9.9:80/tcp")


def test_list_plain_columns_and_rows(fake: FakeIPVS) -> None:
    lines = kpctl("ipvs", "list", "-o", "plain").stdout.splitlines()
    assert lines[0].split("\t") == ["SERVICE", "SCHEDULER", "FLAGS", "SERVER", "FORWARD", "WEIGHT", "ACTIVE",
                                    "INACTIVE"]
    assert "10.254.0.1:443/tcp\trr\t\t172.30.1.5:6443\tmasq\t1\t12\t3" in lines
    assert ("192.168.10.10:30080/tcp\tsh\tpersistent 600s, /24, pe sip, sh-fallback,sh-port\t"
            "192.168.10.21:30080\troute\t5\t0\t0") in lines
    assert "10.254.0.4:3868/sctp\twlc\tflag-3\t\t\t\t\t" in lines  # a service without servers keeps a row
    stats = kpctl("ipvs", "list", "--stats", "-o", "plain").stdout.splitlines()
    assert stats[0].endswith("CONNS\tINPKTS\tOUTPKTS\tINBYTES\tOUTBYTES")


def test_list_wide_table_shows_stats_columns(fake: FakeIPVS) -> None:
    out = kpctl("ipvs", "list", "-o", "wide").stdout
    assert "OUTBYTES" in out and "98765T" in out and "…" not in out
    exact = kpctl("ipvs", "list", "--stats", "--exact", "-o", "plain").stdout
    assert "98765432109876543" in exact
    assert "OUTBYTES" not in kpctl("ipvs", "list", "-o", "table").stdout


def test_list_json_carries_every_field(fake: FakeIPVS) -> None:
    data = json.loads(kpctl("ipvs", "list", "-o", "json").stdout)
    assert data["info"] == {"version": "1.2.1", "conn_table_size": 4096}
    first = next(s for s in data["services"] if s["address"] == "10.254.0.1")
    server = next(x for x in first["servers"] if x["address"] == "172.30.1.5")
    assert server["stats"]["outbytes"] == 98765432109876543
    assert server["stats"]["inbps"] == 1000000000
    assert {"upper_threshold", "tun_type", "tun_port", "tun_flags", "persistent_conns"} <= server.keys()
    assert first["stats"]["outbytes"] == 100000000000000
    yaml_out = kpctl("ipvs", "list", "-o", "yaml").stdout
    assert "outbytes: 98765432109876543" in yaml_out


@pytest.mark.parametrize("args, named", [
    (["--stats", "--rate"], ("--stats", "--rate")),
    (["--thresholds", "--tun-info"], ("--thresholds", "--tun-info")),
    (["10.0.0.1"], ("10.0.0.1",)),
    (["-o", "xml"], ("xml",)),
])
def test_list_bad_input(fake: FakeIPVS, args: list[str], named: tuple[str, ...]) -> None:
    _one_line_error(kpctl("ipvs", "list", *args), 2, *named)
    assert fake.opened == []  # type: ignore[attr-defined]


def test_list_and_save_from_snapshot(tmp_path: Path) -> None:
    table = load_table("node_table.json")
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "ipvs": table.to_dict()}))
    outcome = kpctl("--snapshot", str(snap), "ipvs", "list", "-o", "ipvsadm", "--tun-info")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == fixture_text("node_table.tun-info.txt")
    assert kpctl("--snapshot", str(snap), "ipvs", "save").stdout == fixture_text("node_table.save.txt")
    refused = kpctl("--snapshot", str(snap), "ipvs", "add", "10.1.1.1:80")
    _one_line_error(refused, 2, "snapshot")


# --- add / edit / delete ---------------------------------------------------------------------

def test_add_service_with_every_option(fake: FakeIPVS) -> None:
    outcome = kpctl("ipvs", "add", "10.1.1.1:80", "-s", "sh", "-p", "600", "-M", "255.255.255.0", "-b",
                    "sh-port,sh-fallback", "--pe", "sip")
    assert outcome.exit_code == 0, outcome.stderr
    assert fake.calls[-1].describe() == "-A -t 10.1.1.1:80 -s sh -p 600 -M 255.255.255.0 --pe sip -b sh-fallback,sh-port"
    assert fake.closed


def test_add_defaults_like_ipvsadm(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "add", "[fd00::9]:53/udp", "--ops", "-p").exit_code == 0
    assert fake.calls[-1].describe() == "-A -u [fd00::9]:53 -s wlc -p 300 -o"
    assert kpctl("ipvs", "add", "fwmark:7/ipv6").exit_code == 0
    assert fake.calls[-1].describe() == "-A -f 7 -6 -s wlc"


def test_add_duplicate_is_already_exists(fake: FakeIPVS) -> None:
    _one_line_error(kpctl("ipvs", "add", "10.254.0.1:443"), 4, "10.254.0.1:443/tcp")


@pytest.mark.parametrize("args, named", [
    (["10.1.1.1"], ("10.1.1.1",)),
    (["10.1.1.1:99999"], ("99999",)),
    (["10.1.1.1:80/icmp"], ("icmp",)),
    (["10.1.1.1:80", "-s", "fastest"], ("fastest",)),
    (["10.1.1.1:80", "-p", "0"], ("'0'",)),
    (["10.1.1.1:80", "-p", "abc"], ("abc",)),
    (["10.1.1.1:80", "-p", "10", "-M", "255.0.0.300"], ("255.0.0.300",)),
    (["[fd00::1]:80", "-p", "10", "-M", "200"], ("200",)),
    (["10.1.1.1:80", "-b", "sh-port"], ("sh-port", "wlc")),
    (["10.1.1.1:80", "-s", "mh", "-b", "sh-port"], ("sh-port",)),
    (["10.1.1.1:80", "-b", "flag-4"], ("flag-4",)),
    (["10.1.1.1:80", "--ops"], ("--ops", "10.1.1.1:80/tcp")),
    (["10.1.1.1:80", "--pe", "sip"], ("--pe sip", "-p")),
    (["10.1.1.1:80", "--pe", "http"], ("http",)),
    (["10.1.1.1:0"], ("port 0", "-p")),
    (["fwmark:0"], ("'0'",)),
])
def test_add_bad_input_changes_nothing(fake: FakeIPVS, args: list[str], named: tuple[str, ...]) -> None:
    _one_line_error(kpctl("ipvs", "add", *args), 2, *named)
    assert fake.opened == [] and fake.calls == []  # type: ignore[attr-defined]


def test_edit_keeps_options_not_given(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "edit", "192.168.10.10:30080", "-p", "900").exit_code == 0
    assert fake.calls[-1].describe() == "-E -t 192.168.10.10:30080 -s sh -p 900 -M 255.255.255.0 --pe sip -b sh-fallback,sh-port"
    assert kpctl("ipvs", "edit", "192.168.10.10:30080", "-s", "rr").exit_code == 0
    assert fake.calls[-1].describe() == "-E -t 192.168.10.10:30080 -s rr -p 900 -M 255.255.255.0 --pe sip"


def test_edit_missing_service_is_not_found(fake: FakeIPVS) -> None:
    _one_line_error(kpctl("ipvs", "edit", "10.9.9.9:80", "-s", "rr"), 3, "10.9.9.9:80")
    assert fake.calls == []


def test_edit_bad_scheduler_never_opens(fake: FakeIPVS) -> None:
    _one_line_error(kpctl("ipvs", "edit", "10.254.0.1:443", "-s", "zz"), 2, "zz")
    assert fake.opened == []  # type: ignore[attr-defined]


def test_delete(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "delete", "10.254.0.2:53/udp").exit_code == 0
    assert ServiceKey("inet", "udp", "10.254.0.2", 53) not in fake.state
    _one_line_error(kpctl("ipvs", "delete", "10.254.0.2:53/udp"), 3, "10.254.0.2:53/udp")
    _one_line_error(kpctl("ipvs", "delete", "10.254.0.2"), 2, "10.254.0.2")


# --- servers ---------------------------------------------------------------------------------

def test_add_server_variants(fake: FakeIPVS) -> None:
    cases = [
        (["10.254.0.1:443", "172.30.9.9:6443", "-m", "-w", "5", "-x", "100", "-y", "10"],
         "-a -t 10.254.0.1:443 -r 172.30.9.9:6443 -m -w 5 -x 100 -y 10"),
        (["10.254.0.1:443", "172.30.9.8:6443"], "-a -t 10.254.0.1:443 -r 172.30.9.8:443 -g -w 1"),
        (["10.254.0.1:443", "172.30.9.7", "-i", "--tun-type", "gue", "--tun-port", "6080", "--tun-csum"],
         "-a -t 10.254.0.1:443 -r 172.30.9.7:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum"),
        (["10.254.0.1:443", "fd00::7", "-i", "--tun-type", "gre", "--tun-nocsum"],
         "-a -t 10.254.0.1:443 -r [fd00::7]:443 -i -w 1 --tun-type gre --tun-nocsum"),
        (["fwmark:100", "10.0.0.8:8080", "-g", "-w", "0"], "-a -f 100 -r 10.0.0.8:8080 -g -w 0"),
    ]
    for args, rule in cases:
        outcome = kpctl("ipvs", "add-server", *args)
        assert outcome.exit_code == 0, (args, outcome.stderr)
        assert fake.calls[-1].describe() == rule


@pytest.mark.parametrize("args, named", [
    (["10.254.0.1:443", "172.30.9.9:6443", "-w", "65536"], ("65536",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-w", "-1"], ("-1",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-w", "heavy"], ("heavy",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-x", "2147483648"], ("2147483648",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-m", "-x", "5", "-y", "10"], ("lower threshold 10", "upper threshold 5")),
    (["10.254.0.1:443", "172.30.9.9:6443", "-m", "-y", "1"], ("lower threshold 1", "upper threshold 0")),
    (["10.254.0.1:443", "172.30.9.9:6443", "-m", "-g"], ("-m", "-g")),
    (["10.254.0.1:443", "172.30.9.9:6443", "-m", "--tun-type", "gre"], ("tunnel",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-i", "--tun-type", "gue"], ("--tun-port",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-i", "--tun-type", "vxlan"], ("vxlan",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-i", "--tun-type", "gue", "--tun-port", "0"], ("'0'",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-i", "--tun-port", "6080"], ("--tun-port", "ipip")),
    (["10.254.0.1:443", "172.30.9.9:6443", "-i", "--tun-type", "gre", "--tun-remcsum"], ("--tun-remcsum",)),
    (["10.254.0.1:443", "172.30.9.9:6443", "-i", "--tun-type", "gue", "--tun-port", "1", "--tun-csum",
      "--tun-nocsum"], ("--tun-nocsum", "--tun-csum")),
    (["10.254.0.1:443", "fd00::9", "-m"], ("fd00::9",)),
    (["10.254.0.1:443", "172.30.9"], ("172.30.9",)),
    (["10.254.0.1", "172.30.9.9"], ("10.254.0.1",)),
])
def test_add_server_bad_input_changes_nothing(fake: FakeIPVS, args: list[str], named: tuple[str, ...]) -> None:
    _one_line_error(kpctl("ipvs", "add-server", *args), 2, *named)
    assert fake.opened == [] and fake.calls == []  # type: ignore[attr-defined]


def test_add_server_exit_codes(fake: FakeIPVS) -> None:
    _one_line_error(kpctl("ipvs", "add-server", "10.254.0.1:443", "172.30.1.5:6443", "-m"), 4, "172.30.1.5:6443")
    _one_line_error(kpctl("ipvs", "add-server", "10.9.9.9:443", "172.30.1.5", "-m"), 3, "10.9.9.9:443")


def test_edit_server_keeps_forward_and_changes_weight(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "edit-server", "10.254.0.1:443", "172.30.1.5:6443", "-w", "0").exit_code == 0
    assert fake.calls[-1].describe() == "-e -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 0"
    assert kpctl("ipvs", "edit-server", "192.168.10.10:30080", "192.168.10.22", "--tun-csum").exit_code == 0
    assert fake.calls[-1].describe() == ("-e -t 192.168.10.10:30080 -r 192.168.10.22:30080 -i -w 3 "
                                         "--tun-type gue --tun-port 6080 --tun-csum")
    _one_line_error(kpctl("ipvs", "edit-server", "10.254.0.1:443", "172.30.1.99:6443", "-w", "2"), 3, "172.30.1.99")
    # a route server lives on the service's port whatever port the user names (ipvsadm -e does the same)
    assert kpctl("ipvs", "edit-server", "192.168.10.10:30080", "192.168.10.21:8080", "-w", "9").exit_code == 0
    assert fake.calls[-1].describe() == "-e -t 192.168.10.10:30080 -r 192.168.10.21:30080 -g -w 9 -x 1000 -y 100"


def test_delete_server(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "delete-server", "10.254.0.1:443", "172.30.1.5:6443").exit_code == 0
    assert fake.calls[-1].describe() == "-d -t 10.254.0.1:443 -r 172.30.1.5:6443"
    _one_line_error(kpctl("ipvs", "delete-server", "10.254.0.1:443", "172.30.1.5:6443"), 3, "172.30.1.5:6443")
    _one_line_error(kpctl("ipvs", "delete-server", "10.254.0.1:443", "172.30.1.5:x"), 2, "'x'")


# --- clear, zero, timeout, daemon ---------------------------------------------------------------

def test_clear_and_zero(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "zero", "10.254.0.1:443").exit_code == 0
    assert fake.calls[-1].describe() == "-Z -t 10.254.0.1:443"
    assert kpctl("ipvs", "zero").exit_code == 0 and fake.calls[-1].describe() == "-Z"
    _one_line_error(kpctl("ipvs", "zero", "10.254.0.1"), 2, "10.254.0.1")
    assert kpctl("ipvs", "clear").exit_code == 0
    assert fake.state == {}


def test_timeout_show_and_set(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "timeout", "-o", "ipvsadm").stdout == "Timeout (tcp tcpfin udp): 900 120 300\n"
    assert json.loads(kpctl("ipvs", "timeout", "-o", "json").stdout) == {"tcp": 900, "tcp_fin": 120, "udp": 300}
    assert kpctl("ipvs", "timeout", "3600", "0", "60").exit_code == 0
    assert fake.timeouts_value == Timeouts(3600, 0, 60)


@pytest.mark.parametrize("values, named", [
    (["1", "2"], ("3 values",)), (["1", "2", "x"], ("'x'",)), (["1", "2", "2678401"], ("2678401",)),
    (["-1", "2", "3"], ("-1",)),
])
def test_timeout_bad_input(fake: FakeIPVS, values: list[str], named: tuple[str, ...]) -> None:
    _one_line_error(kpctl("ipvs", "timeout", "--", *values), 2, *named)
    assert fake.opened == []  # type: ignore[attr-defined]


def test_daemon_start_list_stop(fake: FakeIPVS) -> None:
    assert kpctl("ipvs", "daemon", "start", "master", "--mcast-interface", "eth1", "--syncid", "7",
                 "--mcast-group", "224.0.0.81", "--mcast-port", "8848", "--mcast-ttl", "2",
                 "--sync-maxlen", "1400").exit_code == 0
    assert fake.daemon_list == [SyncDaemon("master", "eth1", 7, 1400, "224.0.0.81", 8848, 2)]
    assert kpctl("ipvs", "daemon", "list", "-o", "ipvsadm").stdout == (
        "master sync daemon (mcast=eth1, syncid=7, maxlen=1400, group=224.0.0.81, port=8848, ttl=2)\n")
    assert kpctl("ipvs", "daemon", "stop", "master").exit_code == 0
    assert fake.daemon_list == []


@pytest.mark.parametrize("args, named", [
    (["start", "primary"], ("primary",)),
    (["start", "master", "--syncid", "256"], ("256",)),
    (["start", "master", "--mcast-group", "10.0.0.1"], ("10.0.0.1",)),
    (["start", "master", "--mcast-port", "0"], ("'0'",)),
    (["start", "master", "--mcast-ttl", "300"], ("300",)),
    (["start", "master", "--sync-maxlen", "65508"], ("65508",)),
    (["stop", "both"], ("both",)),
])
def test_daemon_bad_input(fake: FakeIPVS, args: list[str], named: tuple[str, ...]) -> None:
    _one_line_error(kpctl("ipvs", "daemon", *args), 2, *named)
    assert fake.opened == []  # type: ignore[attr-defined]


# --- connections -------------------------------------------------------------------------------

def _conns() -> list[Connection]:
    return [
        Connection("TCP", "172.30.1.9", 40000, "10.254.0.1", 443, "172.30.1.5", 6443, "ESTABLISHED", 899),
        Connection("UDP", "172.30.1.10", 5353, "10.254.0.2", 53, "172.30.2.3", 53, "UDP", 61),
        Connection("TCP", "fd00::99", 40001, "fd00::10", 443, "fd00:1::5", 8443, "FIN_WAIT", 7),
    ]


def test_connections_ipvsadm_format_and_filters(fake: FakeIPVS) -> None:
    fake.conns = _conns()
    out = kpctl("ipvs", "connections", "-o", "ipvsadm").stdout
    assert out.splitlines() == [
        "IPVS connection entries",
        "pro expire state       source             virtual            destination",
        "TCP 14:59  ESTABLISHED 172.30.1.9:40000   10.254.0.1:443     172.30.1.5:6443",
        "UDP 01:01  UDP         172.30.1.10:5353   10.254.0.2:53      172.30.2.3:53",
        "TCP 00:07  FIN_WAIT    [fd00::99]:40001   [fd00::10]:443     [fd00:1::5]:8443",
    ]
    only = kpctl("ipvs", "connections", "10.254.0.2:53/udp", "-o", "json").stdout
    assert [c["client_address"] for c in json.loads(only)] == ["172.30.1.10"]
    by_server = json.loads(kpctl("ipvs", "connections", "--server", "[fd00:1::5]:8443", "-o", "json").stdout)
    assert [c["client_port"] for c in by_server] == [40001]
    by_client = json.loads(kpctl("ipvs", "connections", "--client", "172.30.1.9", "-o", "json").stdout)
    assert [c["virtual_port"] for c in by_client] == [443]


def test_connections_filters_match_addresses_however_each_side_spells_them(fake: FakeIPVS) -> None:
    # the kernel writes IPv6 addresses uncompressed (read as inet_ntop writes them); a filter may be
    # given in any spelling
    def v6(last: str) -> str:
        return "fd00:0001:" + "0000:" * 5 + last if last == "0005" else "fd00:" + "0000:" * 6 + last

    fake.conns = parse_ip_vs_conn(f"TCP {v6('0099')} 0001 {v6('0010')} 01BB {v6('0005')} 20FB FIN_WAIT 7\n"
                                  f"TCP {v6('0098')} 0002 {v6('0010')} 0050 {v6('0005')} 20FB FIN_WAIT 7\n")
    for args, ports in ((["[FD00:0::10]:443"], [1]), (["--server", "[fd00:1:0::5]:8443"], [1, 2]),
                        (["--client", "fd00::0099"], [1]), (["--server", "fd00:1::5", "--client", "FD00::98"], [2])):
        found = json.loads(kpctl("ipvs", "connections", *args, "-o", "json").stdout)
        assert [c["client_port"] for c in found] == ports, args


def test_connections_sharing_parts_of_their_lines_each_get_their_own(fake: FakeIPVS) -> None:
    # the text before and after the client is shared between connections: each line still its own
    fake.conns = [Connection("TCP", "10.0.0.1", 1, "10.254.0.1", 443, "10.0.0.2", 8443, "ESTABLISHED", 899),
                  Connection("TCP", "10.0.0.3", 2, "10.254.0.1", 443, "10.0.0.2", 8443, "TIME_WAIT", 899),
                  Connection("UDP", "10.0.0.1", 3, "10.254.0.1", 443, "10.0.0.9", 8443, "ESTABLISHED", 899),
                  Connection("TCP", "10.0.0.4", 4, "10.254.0.1", 80, "10.0.0.2", 8443, "ESTABLISHED", 898),
                  Connection("TCP", "10.0.0.5", 5, "10.254.0.1", 443, "10.0.0.2", 8080, "ESTABLISHED", 899)]
    expected = [f"{c.protocol:<3} {c.expires // 60:02d}:{c.expires % 60:02d}  {c.state:<11} "
                f"{c.client_address + ':' + str(c.client_port):<18} "
                f"{c.virtual_address + ':' + str(c.virtual_port):<18} {c.server_address}:{c.server_port}"
                for c in fake.conns]
    assert kpctl("ipvs", "connections", "-o", "ipvsadm").stdout.splitlines()[2:] == expected
    text = kpctl("ipvs", "connections", "-o", "json").stdout
    assert text.splitlines()[1:-1] == [f"  {json.dumps(c.to_dict())}," for c in fake.conns[:-1]] + [
        f"  {json.dumps(fake.conns[-1].to_dict())}"]  # one connection a line
    assert json.loads(text) == [c.to_dict() for c in fake.conns]


@pytest.mark.parametrize("args, named", [
    (["10.254.0.1"], ("10.254.0.1",)), (["--server", "nohost"], ("nohost",)),
    (["--client", "1.2.3.4:99999"], ("99999",)), (["fwmark:1"], ("fwmark:1",)),
])
def test_connections_bad_input(fake: FakeIPVS, args: list[str], named: tuple[str, ...]) -> None:
    _one_line_error(kpctl("ipvs", "connections", *args), 2, *named)
    assert fake.opened == []  # type: ignore[attr-defined]


# --- restore ----------------------------------------------------------------------------------

def test_restore_from_file_and_stdin(fake: FakeIPVS, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.write_text("-A -t 10.1.1.1:80 -s rr\n-a -t 10.1.1.1:80 -r 10.2.2.2 -m\n")
    assert kpctl("ipvs", "restore", str(rules)).exit_code == 0
    assert ServiceKey("inet", "tcp", "10.1.1.1", 80) in fake.state
    outcome = kpctl("ipvs", "restore", "--flush", input=fixture_text("node_table.save.txt"))
    assert outcome.exit_code == 0, outcome.stderr
    assert kpctl("ipvs", "save").stdout == fixture_text("node_table.save.txt")


def test_restore_dry_run_prints_plan_and_changes_nothing(fake: FakeIPVS) -> None:
    outcome = kpctl("ipvs", "restore", "--dry-run", "--flush", input="-A -t 10.1.1.1:80 -s rr\n")
    assert outcome.stdout == "-C\n-A -t 10.1.1.1:80 -s rr\n"
    assert fake.calls == []


def test_restore_bad_line_changes_nothing(fake: FakeIPVS) -> None:
    text = "-A -t 10.1.1.1:80 -s rr\n-a -t 10.1.1.1:80 -r 10.2.2.2 -w 70000\n"
    _one_line_error(kpctl("ipvs", "restore", input=text), 2, "line 2", "70000")
    assert fake.opened == [] and fake.calls == []  # type: ignore[attr-defined]


def test_restore_conflict_is_reported_before_any_change(fake: FakeIPVS) -> None:
    text = "-A -t 10.1.1.1:80 -s rr\n-A -t 10.254.0.1:443 -s rr\n"
    _one_line_error(kpctl("ipvs", "restore", input=text), 4, "line 2", "10.254.0.1:443/tcp")
    assert fake.calls == []


def test_restore_kernel_failure_rolls_back(fake: FakeIPVS) -> None:
    before = kpctl("ipvs", "save").stdout
    fake.fail_at = 2
    text = "-A -t 10.1.1.1:80 -s rr\n-a -t 10.1.1.1:80 -r 10.2.2.2 -m\n-D -t 10.254.0.1:443\n"
    _one_line_error(kpctl("ipvs", "restore", input=text), 1, "injected failure")
    fake.fail_at = None
    assert kpctl("ipvs", "save").stdout == before


def test_restore_missing_file(fake: FakeIPVS) -> None:
    _one_line_error(kpctl("ipvs", "restore", "/nonexistent/rules"), 2, "/nonexistent/rules")


def test_every_ipvs_command_has_help_with_an_example() -> None:
    from kpctl.cli.ipvs import ipvs

    def walk(group: Any, path: list[str]) -> list[list[str]]:
        found = []
        for name, command in group.commands.items():
            found.append(path + [name])
            if hasattr(command, "commands"):
                found.extend(walk(command, path + [name]))
        return found

    for path in walk(ipvs, []):
        outcome = kpctl("ipvs", *path, "--help")
        assert outcome.exit_code == 0
        if path[-1] != "daemon":
            assert "kpctl ipvs" in outcome.stdout, path


def test_server_with_unknown_forward_not_accepted() -> None:
    from kpctl.core.ipvs_options import parse_server_options
    from kpctl.errors import InvalidInput

    with pytest.raises(InvalidInput, match="'bypass'"):
        parse_server_options(forward="bypass")
    assert RealServer("1.1.1.1", 1).forward == "masq"
