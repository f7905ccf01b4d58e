"""`kpctl ipset …` on a snapshot (no kernel): views, formats, exit codes, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpctl.core.ipset_save import parse_save
from tests.cli_helpers import kpctl

FIXTURES = Path(__file__).parent / "fixtures" / "ipset"
TEXT = (FIXTURES / "kube-proxy.save").read_text()


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    path = tmp_path / "node.json"
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "ipsets": TEXT}))
    return str(path)


def test_save_and_list_o_save_reproduce_the_text(snapshot: str) -> None:
    assert kpctl("--snapshot", snapshot, "ipset", "save").stdout == TEXT
    assert kpctl("--snapshot", snapshot, "ipset", "list", "-o", "save").stdout == TEXT
    one = kpctl("--snapshot", snapshot, "ipset", "save", "KUBE-LOOP-BACK").stdout
    assert one.splitlines()[0].startswith("create KUBE-LOOP-BACK hash:ip,port,ip ")
    assert len(one.splitlines()) == 3


def test_list_json_has_every_header_field_and_member(snapshot: str) -> None:
    outcome = kpctl("--snapshot", snapshot, "ipset", "list", "KUBE-CLUSTER-IP", "-o", "json")
    assert outcome.exit_code == 0, outcome.stderr
    document = json.loads(outcome.stdout)
    (cluster,) = document["sets"]
    assert cluster["type"] == "hash:ip,port" and cluster["hashsize"] == 1024 and cluster["maxelem"] == 65536
    assert cluster["bucketsize"] == 12 and isinstance(cluster["initval"], int)
    assert cluster["header"].startswith("family inet hashsize 1024 maxelem 65536")
    assert len(cluster["members"]) == 5
    assert {"raw": "10.254.0.1,tcp:443", "ip": "10.254.0.1", "proto": "tcp", "port": 443}.items() <= \
        next(m for m in cluster["members"] if m["raw"] == "10.254.0.1,tcp:443").items()


def test_list_yaml_and_plain(snapshot: str) -> None:
    yaml_out = kpctl("--snapshot", snapshot, "ipset", "list", "KUBE-NODE-PORT-TCP", "-o", "yaml").stdout
    assert "range: 0-65535" in yaml_out and "raw: '30080'" in yaml_out
    plain = kpctl("--snapshot", snapshot, "ipset", "list", "KUBE-CLUSTER-IP", "-o", "plain").stdout.splitlines()
    assert plain[0].split("\t") == ["SET", "MEMBER", "TIMEOUT", "COMMENT"]
    assert "KUBE-CLUSTER-IP\t10.254.0.1,tcp:443\t\t" in plain
    assert len(plain) == 6


def test_terse_names_and_ipset_view(snapshot: str) -> None:
    terse = kpctl("--snapshot", snapshot, "ipset", "list", "--terse", "-o", "plain", "--no-headers").stdout
    rows = [line.split("\t") for line in terse.splitlines()]
    assert ["KUBE-CLUSTER-IP", "hash:ip,port", "inet", "5", ""] in rows
    names = kpctl("--snapshot", snapshot, "ipset", "list", "--names", "-o", "plain", "--no-headers").stdout.split()
    assert names == [s.name for s in parse_save(TEXT)]
    view = kpctl("--snapshot", snapshot, "ipset", "list", "KUBE-IPVS-IPS", "-o", "ipset").stdout
    assert view.startswith("Name: KUBE-IPVS-IPS\nType: hash:ip\n")
    assert "Number of entries: 3\nMembers:\n" in view
    terse_json = json.loads(kpctl("--snapshot", snapshot, "ipset", "list", "-t", "-o", "json").stdout)
    assert all("members" not in s for s in terse_json["sets"])


def test_find_on_snapshot(snapshot: str) -> None:
    outcome = kpctl("--snapshot", snapshot, "ipset", "find", "10.254.0.2:53/udp", "-o", "json")
    assert outcome.exit_code == 0
    matches = json.loads(outcome.stdout)["matches"]
    assert sorted((m["set"], m["member"]) for m in matches) == [
        ("KUBE-CLUSTER-IP", "10.254.0.2,udp:53"), ("KUBE-IPVS-IPS", "10.254.0.2")]
    assert kpctl("--snapshot", snapshot, "ipset", "find", "8.8.8.8").exit_code == 1
    bad = kpctl("--snapshot", snapshot, "ipset", "find", "8.8.8:80")
    assert bad.exit_code == 2 and "'8.8.8'" in bad.stderr


def test_missing_set_is_exit_3(snapshot: str) -> None:
    outcome = kpctl("--snapshot", snapshot, "ipset", "list", "NOPE")
    assert outcome.exit_code == 3 and "'NOPE'" in outcome.stderr


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("args", [["list"], ["save"], ["list", "-o", "json"], ["find", "10.96.0.1"]])
def test_a_snapshot_without_ipsets_is_exit_3_like_any_missing_section(tmp_path: Path, args: list[str]) -> None:
    # the bundled iptables-mode node has "ipsets": null (kube-proxy's iptables mode makes no sets)
    outcome = kpctl("--snapshot", str(EXAMPLES / "iptables-node.json"), "ipset", *args)
    assert (outcome.exit_code, outcome.stdout) == (3, "")
    assert outcome.stderr.strip().endswith("has no ipsets section"), outcome.stderr
    # left out, or null with the reason `snapshot save` recorded
    for doc in ({}, {"ipsets": None, "absent": {"ipsets": "ipset not found"}}):
        path = tmp_path / "node.json"
        path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, **doc}))
        outcome = kpctl("--snapshot", str(path), "ipset", *args)
        assert (outcome.exit_code, outcome.stdout, len(outcome.stderr.splitlines())) == (3, "", 1), outcome.stderr
        assert ("(ipset not found)" in outcome.stderr) == ("absent" in doc)
    path.write_text(json.dumps({"format": "kpctl-snapshot", "version": 1, "ipsets": ["not", "text"]}))
    assert kpctl("--snapshot", str(path), "ipset", *args).exit_code == 2


@pytest.mark.parametrize("args", [
    ["create", "x", "hash:ip"], ["add", "KUBE-CLUSTER-IP", "10.0.0.1,tcp:80"], ["delete", "a", "1.2.3.4"],
    ["flush"], ["destroy", "x"], ["rename", "a", "b"], ["swap", "a", "b"], ["restore", "-"], ["test", "a", "1.1.1.1"],
])
def test_writes_refuse_a_snapshot(snapshot: str, args: list[str]) -> None:
    outcome = kpctl("--snapshot", snapshot, "ipset", *args, input="")
    assert outcome.exit_code == 2, outcome.stderr
    assert "snapshot" in outcome.stderr
    # and for the reason that holds: test changes nothing, it asks the kernel
    assert ("changes the kernel" in outcome.stderr) == (args[0] != "test"), outcome.stderr


@pytest.mark.parametrize(("args", "named"), [
    (["create", "x", "hash:nope"], "hash:nope"),
    (["create", "x", "bitmap:port"], "range"),
    (["create", "x" * 40, "hash:ip"], "x" * 40),
    (["create", "x", "hash:ip", "--hashsize", "big"], "'big'"),
    (["create", "x", "hash:ip", "--family", "inet5"], "inet5"),
    (["list", "bad name"], "bad name"),
])
def test_bad_input_is_exit_2_before_any_kernel_call(args: list[str], named: str) -> None:
    outcome = kpctl("ipset", *args)
    assert outcome.exit_code == 2, (outcome.stdout, outcome.stderr)
    assert named in outcome.stderr
    assert outcome.stderr.count("\n") == 1


def test_restore_parse_errors_are_exit_2_before_any_kernel_call(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("create a hash:ip\nadd a 10.0.0.1\nadd a 10.0.0.x\n")
    outcome = kpctl("ipset", "restore", str(path))
    assert outcome.exit_code == 2 and "line 3" in outcome.stderr and "10.0.0.x" in outcome.stderr
    assert kpctl("ipset", "restore", str(tmp_path / "missing.txt")).exit_code == 3


def test_every_ipset_command_has_help_with_an_example() -> None:
    for command in ["list", "create", "add", "delete", "test", "flush", "destroy", "rename", "swap", "save",
                    "restore", "find"]:
        outcome = kpctl("ipset", command, "--help")
        assert outcome.exit_code == 0 and "Example" in outcome.stdout, command
