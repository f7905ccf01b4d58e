"""`ipset save` format: fixture pairs (real `ipset save` output + expected model JSON),
byte-identical re-formatting, and restore-file parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kpctl.core.ipset_save import (
    format_create,
    format_save,
    parse_create,
    parse_restore,
    parse_save,
)
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSet

FIXTURES = Path(__file__).parent / "fixtures" / "ipset"
PAIRS = sorted(p.stem for p in FIXTURES.glob("*.save"))


def test_there_are_fixture_pairs() -> None:
    assert {"all-types", "kube-proxy"} <= set(PAIRS)
    for stem in PAIRS:
        assert (FIXTURES / f"{stem}.json").exists(), stem


@pytest.mark.parametrize("stem", PAIRS)
def test_save_text_parses_to_the_expected_model(stem: str) -> None:
    sets = parse_save((FIXTURES / f"{stem}.save").read_text())
    expected = json.loads((FIXTURES / f"{stem}.json").read_text())
    assert [s.to_dict() for s in sets] == expected
    assert [IPSet.from_dict(d) for d in expected] == sets


@pytest.mark.parametrize("stem", PAIRS)
def test_save_text_is_reformatted_byte_for_byte(stem: str) -> None:
    text = (FIXTURES / f"{stem}.save").read_text()
    assert format_save(parse_save(text)) == text


def test_kube_proxy_sets_are_all_there() -> None:
    sets = {s.name: s for s in parse_save((FIXTURES / "kube-proxy.save").read_text())}
    assert sets["KUBE-CLUSTER-IP"].type == "hash:ip,port"
    assert sets["KUBE-LOOP-BACK"].type == "hash:ip,port,ip"
    assert sets["KUBE-NODE-PORT-TCP"].range == "0-65535" and sets["KUBE-NODE-PORT-TCP"].family is None
    assert sets["KUBE-6-CLUSTER-IP"].family == "inet6"
    assert {m.raw for m in sets["KUBE-CLUSTER-IP"].members} == {
        "10.254.0.1,tcp:443", "10.254.0.2,udp:53", "10.254.0.2,tcp:53", "10.254.0.2,tcp:9153",
        "10.254.199.160,tcp:8080"}
    assert sets["KUBE-CLUSTER-IP"].entries == 5


def test_headers_print_in_ipsets_order() -> None:
    header = parse_create("s", "hash:ip", ["initval", "0x1", "bucketsize", "4", "skbinfo", "comment", "counters",
                                           "timeout", "3", "netmask", "24", "maxelem", "10", "hashsize", "64",
                                           "family", "inet"])
    assert format_create(header) == ("create s hash:ip family inet hashsize 64 maxelem 10 netmask 24 timeout 3 "
                                     "counters comment skbinfo bucketsize 4 initval 0x00000001")
    assert format_create(parse_create("p", "bitmap:port", ["range", "80-90", "timeout", "5"])) == \
        "create p bitmap:port range 80-90 timeout 5"
    assert format_create(parse_create("l", "list:set", ["size", "8"])) == "create l list:set size 8"


@pytest.mark.parametrize(("line", "named"), [
    ("create s hash:nope", "hash:nope"),
    ("create s hash:ip family inet7", "inet7"),
    ("create s hash:ip hashsize x", "'x'"),
    ("create s hash:ip hashsize", "needs a value"),
    ("create s hash:ip wings 3", "wings"),
    ("create s bitmap:port", "range"),
    ("create s bitmap:port range 90-80", "90-80"),
    ("create s bitmap:ip range 10.0.0.0/33", "10.0.0.0/33"),
    ("create s hash:ip range 1-2", "range"),
    ("create s bitmap:ip family inet6 range 10.0.0.0/24", "inet6"),
    ("create " + "x" * 32 + " hash:ip", "x" * 32),
    ("create s", "NAME TYPE"),
])
def test_bad_create_lines(line: str, named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_restore(line)
    assert named in str(caught.value)
    assert str(caught.value).startswith("line 1:")


def test_restore_file_commands_and_flags() -> None:
    text = """# a comment

create a hash:ip family inet -exist
-N b hash:net
add a 10.0.0.1 -exist
-A b 10.0.0.0/8
del a 10.0.0.1
add ext 10.0.0.5,tcp:80
flush a
flush
destroy b
rename a c
swap c ext
-X
"""
    commands = parse_restore(text)
    assert [(c.command, c.lineno, c.name, c.exist) for c in commands] == [
        ("create", 3, "a", True), ("create", 4, "b", False), ("add", 5, "a", True), ("add", 6, "b", False),
        ("del", 7, "a", False), ("add", 8, "ext", False), ("flush", 9, "a", False), ("flush", 10, "", False),
        ("destroy", 11, "b", False), ("rename", 12, "a", False), ("swap", 13, "c", False),
        ("destroy", 14, "", False)]
    assert commands[2].entry is not None and commands[2].entry.raw == "10.0.0.1"
    # a set not created in the file: the entry is checked later against the kernel's header
    assert commands[5].entry is None and commands[5].name2 == "10.0.0.5,tcp:80"
    assert commands[10].name2 == "ext"


def test_restore_errors_name_the_line_and_value() -> None:
    with pytest.raises(InvalidInput, match=r"^line 3: .*'10\.0\.0\.300'"):
        parse_restore("create a hash:ip\nadd a 10.0.0.1\nadd a 10.0.0.300\n")
    with pytest.raises(InvalidInput, match=r"^line 2: unknown command 'ad'"):
        parse_restore("create a hash:ip\nad a 10.0.0.1\n")
    with pytest.raises(InvalidInput, match=r"^line 2: .*comment support"):
        parse_restore('create a hash:ip\nadd a 10.0.0.1 comment "x"\n')


def test_parse_save_refuses_what_save_never_writes() -> None:
    with pytest.raises(InvalidInput, match="line 1: add to set 'a' before its create line"):
        parse_save("add a 10.0.0.1\n")
    with pytest.raises(InvalidInput, match="line 2: flush"):
        parse_save("create a hash:ip\nflush a\n")
    with pytest.raises(InvalidInput, match="created twice"):
        parse_save("create a hash:ip\ncreate a hash:ip\n")
    assert parse_save("") == []
