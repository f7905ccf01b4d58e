"""`kpctl ipset diff|apply` against the real kernel in a throwaway namespace, checked with ipset(8)."""

from __future__ import annotations

import re

from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in

BEFORE = (
    "create A hash:ip family inet hashsize 1024 maxelem 65536 timeout 3600 counters\n"
    "add A 10.0.0.1 timeout 3000 packets 7 bytes 700\n"
    "add A 10.0.0.2 timeout 3000 packets 9 bytes 900\n"
    "create B hash:ip,port family inet hashsize 1024 maxelem 65536\n"
    "add B 10.0.0.1,tcp:80\n"
    "create C hash:net family inet hashsize 1024 maxelem 65536\n"
    "add C 10.0.0.0/8\n"
)
# A: 10.0.0.2 goes, 10.0.0.3 comes, 10.0.0.1 stays (the file's timeout and counters do not matter);
# B: maxelem changes (rebuilt and swapped); C: gone; D: new.
DESIRED = (
    "create A hash:ip family inet hashsize 1024 maxelem 65536 timeout 3600 counters\n"
    "add A 10.0.0.1 timeout 100 packets 0 bytes 0\n"
    "add A 10.0.0.3 timeout 200\n"
    "create B hash:ip,port family inet hashsize 1024 maxelem 1000\n"
    "add B 10.0.0.1,tcp:80\n"
    "add B 10.0.0.2,udp:53\n"
    "create D bitmap:port range 0-65535\n"
    "add D 30080\n"
)


def _save(ns: str) -> str:
    return run_in(ns, "ipset", "save").stdout


def _member(ns: str, name: str, element: str) -> str:
    lines = [line for line in _save(ns).splitlines() if line.startswith(f"add {name} {element} ")]
    assert len(lines) == 1, _save(ns)
    return lines[0]


def _without_runtime(text: str) -> str:
    """ipset save text without what the kernel changes by itself (initval, remaining timeouts)."""
    text = re.sub(r" initval 0x[0-9a-f]+| bucketsize \d+", "", text)
    return re.sub(r" timeout \d+", " timeout N", text)


def test_apply_keeps_unchanged_members_counters_and_timeouts(netns: str) -> None:
    run_in(netns, "ipset", "restore", input=BEFORE)
    diff = kpctl("--netns", netns, "ipset", "diff", "-", input=DESIRED)
    assert diff.exit_code == 1
    rows = {tuple(line.split("\t")[:3]) for line in diff.stdout.splitlines()[1:]}
    assert {("add", "A", "10.0.0.3"), ("delete", "A", "10.0.0.2"), ("rebuild", "B", ""), ("destroy", "C", ""),
            ("create", "D", ""), ("add", "D", "30080")} <= rows
    assert ("add", "A", "10.0.0.1") not in rows and ("delete", "A", "10.0.0.1") not in rows

    outcome = kpctl("--netns", netns, "ipset", "apply", "-", input=DESIRED)
    assert outcome.exit_code == 0, outcome.stderr
    kept = _member(netns, "A", "10.0.0.1")
    assert "packets 7 bytes 700" in kept  # not re-added: the kernel's counters survive
    assert int(re.search(r"timeout (\d+)", kept).group(1)) > 2000  # nor its timeout (the file said 100)
    assert "timeout 200" in _member(netns, "A", "10.0.0.3") or "timeout 19" in _member(netns, "A", "10.0.0.3")
    saved = _save(netns)
    assert "10.0.0.2 " not in saved.split("create B")[0]
    assert "create B hash:ip,port family inet hashsize 1024 maxelem 1000" in saved
    assert "create C " not in saved and "add D 30080" in saved
    assert not any(name.startswith("kpctl-") for name in run_in(netns, "ipset", "list", "-n").stdout.split())
    again = kpctl("--netns", netns, "ipset", "diff", "-", input=DESIRED)
    assert again.exit_code == 0 and again.stdout.splitlines()[1:] == []


def test_rebuild_swaps_a_set_an_iptables_rule_uses(netns: str) -> None:
    run_in(netns, "ipset", "restore", input=BEFORE)
    run_in(netns, "iptables", "-A", "INPUT", "-m", "set", "--match-set", "B", "dst,dst", "-j", "ACCEPT")
    desired = DESIRED.replace("create D bitmap:port range 0-65535\nadd D 30080\n", "") + \
        "create C hash:net family inet hashsize 1024 maxelem 65536\nadd C 10.0.0.0/8\n"
    outcome = kpctl("--netns", netns, "ipset", "apply", "-", input=desired)
    assert outcome.exit_code == 0, outcome.stderr
    assert "add B 10.0.0.2,udp:53" in _save(netns)
    assert "--match-set B dst,dst" in run_in(netns, "iptables", "-S", "INPUT").stdout


def test_destroying_a_set_in_use_is_refused_before_any_change(netns: str) -> None:
    run_in(netns, "ipset", "restore", input=BEFORE)
    run_in(netns, "iptables", "-A", "INPUT", "-m", "set", "--match-set", "C", "src", "-j", "ACCEPT")
    before = _save(netns)
    outcome = kpctl("--netns", netns, "ipset", "apply", "-", input=DESIRED)
    assert outcome.exit_code == 1 and "'C'" in outcome.stderr and "in use" in outcome.stderr
    assert _without_runtime(_save(netns)) == _without_runtime(before)


def test_bad_input_is_exit_2_and_changes_nothing(netns: str) -> None:
    run_in(netns, "ipset", "restore", input=BEFORE)
    before = _save(netns)
    for bad in (DESIRED + "add A 10.0.0.300\n", DESIRED + "add E 10.0.0.1\n", "create A hash:bogus\n",
                DESIRED + "del A 10.0.0.1\n", DESIRED + "create A hash:ip\n"):
        outcome = kpctl("--netns", netns, "ipset", "apply", "-", input=bad)
        assert outcome.exit_code == 2, (bad, outcome.stderr)
        assert outcome.stderr.startswith("kpctl: error: line ") and outcome.stderr.count("\n") == 1
    assert _without_runtime(_save(netns)) == _without_runtime(before)


def test_a_kernel_refusal_part_way_undoes_the_changes(netns: str) -> None:
    before_text = BEFORE + "create F hash:ip family inet hashsize 1024 maxelem 2\nadd F 10.1.0.1\n"
    run_in(netns, "ipset", "restore", input=before_text)
    before = _save(netns)
    # A changes in place first; then F meets its maxelem: the kernel refuses the third member
    desired = before_text.replace("add A 10.0.0.2 timeout 3000 packets 9 bytes 900\n", "add A 10.0.0.5\n") + \
        "add F 10.1.0.2\nadd F 10.1.0.3\n"
    outcome = kpctl("--netns", netns, "ipset", "apply", "-", input=desired)
    assert outcome.exit_code != 0 and outcome.stderr.startswith("kpctl: error:"), outcome.stderr
    after = _save(netns)
    assert _without_runtime(after) == _without_runtime(before)
    assert "packets 9 bytes 900" in _member(netns, "A", "10.0.0.2")  # re-added as it was


def test_dry_run_prints_restore_lines_and_changes_nothing(netns: str) -> None:
    run_in(netns, "ipset", "restore", input=BEFORE)
    before = _save(netns)
    outcome = kpctl("--netns", netns, "ipset", "apply", "--dry-run", "-", input=DESIRED)
    assert outcome.exit_code == 0
    assert "add A 10.0.0.3 timeout 200\n" in outcome.stdout and "del A 10.0.0.2\n" in outcome.stdout
    assert "destroy C\n" in outcome.stdout and re.search(r"swap kpctl-\w+-1 B\n", outcome.stdout)
    assert _save(netns) == before or _without_runtime(_save(netns)) == _without_runtime(before)
