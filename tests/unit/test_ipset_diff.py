"""`kpctl ipset diff|apply` planning (pure): members by key, headers by the kernel's same-set rule.

The kernel side (counters and timeouts kept, swaps, rollback) is in tests/netns/test_ipset_apply_netns.py.
"""

from __future__ import annotations

from kpctl.core.ipset_diff import member_key, plan_sets
from kpctl.core.ipset_save import format_save, parse_save
from tests.cli_helpers import kpctl

KERNEL = (
    "create A hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 counters bucketsize 12 initval 0x1\n"
    "add A 10.0.0.1 timeout 500 packets 3 bytes 300\n"
    "add A 10.0.0.2 timeout 500 packets 0 bytes 0\n"
    "create L list:set size 8\n"
    "add L A\n"
)


def _plan(desired: str) -> list[str]:
    plan = plan_sets(parse_save(KERNEL), parse_save(desired), lambda n: f"tmp-{n}")
    return [op.describe() for op in plan.operations]


def test_runtime_values_are_not_part_of_a_members_key() -> None:
    first, second = parse_save("create A hash:ip timeout 600 counters\nadd A 10.0.0.1 timeout 5 packets 1 bytes 2\n"
                                "create B hash:ip timeout 600 counters\nadd B 10.0.0.1 timeout 9\n")
    assert member_key(first.members[0]) == member_key(second.members[0]) == "10.0.0.1"


def test_the_same_sets_plan_nothing() -> None:
    assert _plan(KERNEL.replace("timeout 500 packets 3 bytes 300", "timeout 1")) == []


def test_members_change_in_place_when_the_header_is_the_same_set() -> None:
    desired = KERNEL.replace("hashsize 1024", "hashsize 4096").replace("add A 10.0.0.2 timeout 500 packets 0 bytes 0\n",
                                                                         "add A 10.0.0.3 timeout 60\n")
    assert _plan(desired) == ["add A 10.0.0.3 timeout 60", "del A 10.0.0.2"]


def test_a_changed_comment_replaces_the_member() -> None:
    plan = plan_sets(parse_save("create C hash:ip comment\nadd C 10.0.0.1 comment \"a\"\n"),
                     parse_save("create C hash:ip comment\nadd C 10.0.0.1 comment \"b\"\n"), str)
    assert [op.describe() for op in plan.operations] == ['add C 10.0.0.1 comment "b"', "del C 10.0.0.1"]


def test_an_option_change_rebuilds_aside_and_swaps() -> None:
    desired = KERNEL.replace("maxelem 65536", "maxelem 100")
    assert _plan(desired) == [
        "create tmp-1 hash:ip family inet hashsize 1024 maxelem 100 timeout 600 counters bucketsize 12 initval 0x00000001",
        "add tmp-1 10.0.0.1 timeout 500 packets 3 bytes 300",
        "add tmp-1 10.0.0.2 timeout 500 packets 0 bytes 0",
        "swap tmp-1 A",
        "destroy tmp-1",
    ]


def test_a_type_change_cannot_swap_so_the_old_set_is_destroyed_last() -> None:
    desired = KERNEL.replace("hash:ip family inet hashsize 1024 maxelem 65536 timeout 600 counters bucketsize 12 initval 0x1",
                             "hash:net family inet").replace(" timeout 500 packets 3 bytes 300", "").replace(
                                 " timeout 500 packets 0 bytes 0", "")
    ops = _plan(desired)
    assert ops[-2:] == ["destroy A", "rename tmp-1 A"]


def test_new_list_sets_are_filled_after_the_sets_they_hold_and_destroyed_before_them() -> None:
    desired = "create M list:set size 8\nadd M N\ncreate N hash:ip family inet\nadd N 10.1.1.1\n"
    ops = _plan(desired)
    assert ops.index("create N hash:ip family inet") < ops.index("create M list:set size 8")
    assert ops[-2:] == ["destroy L", "destroy A"]


def test_diff_on_a_snapshot_exit_codes(tmp_path: object) -> None:
    saved = kpctl("--snapshot", "examples/seed-ipvs-node.json", "ipset", "save").stdout
    same = kpctl("--snapshot", "examples/seed-ipvs-node.json", "ipset", "diff", "-", input=saved)
    assert same.exit_code == 0, same.stderr
    other = kpctl("--snapshot", "examples/seed-ipvs-node.json", "ipset", "diff", "-", "-o", "json",
                  input=format_save(parse_save(saved)[1:]))
    assert other.exit_code == 1 and '"action": "destroy"' in other.stdout


def test_bad_input_is_exit_2() -> None:
    outcome = kpctl("--snapshot", "examples/seed-ipvs-node.json", "ipset", "diff", "-", input="create X hash:nope\n")
    assert outcome.exit_code == 2 and outcome.stderr.startswith("kpctl: error: line 1:")
