"""`kpctl ipset restore` against the real kernel and ipset(8): the sets ipset builds from the same
file, and where the file fails, the line ipset names and the kernel as it was before; large
files, and copying a large set that a file edits."""

from __future__ import annotations

import re

import pytest

from kpctl.backends import ipset_netlink
from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in

pytestmark = pytest.mark.netns

START = "create keep hash:ip\nadd keep 1.1.1.1\ncreate full hash:ip,port maxelem 3\nadd full 10.0.0.1,tcp:80\n"
BODIES = [  # (the body, the line it fails at, the line ipset(8) names: None where ipset reads it otherwise)
    # new sets of kube-proxy's shapes, with -exist lines and a del
    ("create a hash:ip,port\nadd a 10.0.0.1,tcp:80\nadd a 10.0.0.2,udp:53\nadd a 10.0.0.2,udp:53 -exist\n"
     "del a 10.0.0.1,tcp:80\ncreate b hash:ip\nadd b 10.1.1.1\ncreate c hash:net\nadd c 10.2.0.0/16\n"
     "add c 10.3.3.3\ncreate d hash:ip,port,ip\nadd d 10.0.0.1,tcp:80,10.0.0.1\ncreate e hash:ip,port,net\n"
     "add e 10.0.0.1,sctp:9,10.4.0.0/15\nadd e 10.0.0.1,udplite:0,10.9.9.9\ncreate f bitmap:port range 0-65535\n"
     "add f 30080\nadd f 0\n", None, None),
    # a member added twice: the kernel refuses the second
    ("create a hash:ip,port\nadd a 10.0.0.1,tcp:80\nadd a 10.0.0.2,tcp:80\nadd a 10.0.0.1,tcp:80\n", 4, 4),
    # deleting a member that is not there
    ("create a hash:ip\nadd a 10.0.0.1\ndel a 10.0.0.2\n", 3, 3),
    # maxelem reached in a set the file creates
    ("create m hash:ip maxelem 2\nadd m 10.0.0.1\nadd m 10.0.0.2\nadd m 10.0.0.3\n", 4, 4),
    # replacing an existing set: flush, then adds; then a failing line of another set (ipset takes
    # the -exist of a line for the whole file)
    ("create full hash:ip,port maxelem 3 -exist\nflush full\nadd full 10.0.0.2,tcp:80\nadd full 10.0.0.3,tcp:80\n"
     "add keep 2.2.2.2\nadd keep 1.1.1.1\n", 6, None),
    # a bad element between good ones (ipset names no line for it)
    ("create a hash:ip,port\nadd a 10.0.0.1,tcp:80\nadd a 10.0.0.1,tcp:99999\nadd a 10.0.0.2,tcp:80\n", 3, None),
]


def _normal(text: str) -> list[str]:
    return sorted(re.sub(r" initval 0x[0-9a-f]+", "", line) for line in text.splitlines())


def _outcome(ns: str, body: str) -> tuple[int, str, list[str]]:
    run_in(ns, "ipset", "destroy")
    run_in(ns, "ipset", "restore", input=START)
    result = kpctl("--netns", ns, "ipset", "restore", input=body)
    return result.exit_code, result.stderr, _normal(run_in(ns, "ipset", "save").stdout)


@pytest.mark.parametrize(("body", "failing", "ipset_line"), BODIES)
def test_a_restore_builds_what_ipset_builds_or_changes_nothing(netns: str, body: str, failing: int | None,
                                                               ipset_line: int | None) -> None:
    code, stderr, ours = _outcome(netns, body)
    run_in(netns, "ipset", "destroy")
    run_in(netns, "ipset", "restore", input=START)
    before = _normal(run_in(netns, "ipset", "save").stdout)
    if failing is None:
        assert code == 0
        # ipset(8) takes -exist only before the command (ipset -exist restore), not on a line
        run_in(netns, "ipset", "-exist", "restore", input=body)
        assert ours == _normal(run_in(netns, "ipset", "save").stdout)
        return
    assert code != 0
    assert stderr.startswith(f"kpctl: error: line {failing}: ") and stderr.count("\n") == 1
    assert ours == before  # all or nothing
    if ipset_line is not None:
        theirs = run_in(netns, "ipset", "restore", input=body, check=False)
        assert theirs.returncode != 0 and f"Error in line {ipset_line}:" in theirs.stderr


def test_a_kernel_refusal_names_the_line_and_element(netns: str) -> None:
    code, stderr, _ = _outcome(netns, BODIES[1][0])
    assert code == 4
    assert "line 4" in stderr and "'10.0.0.1,tcp:80' is already in set 'a'" in stderr


def test_a_large_restore_builds_what_ipset_builds(netns_factory) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = netns_factory(), netns_factory()
    lines = ["create big hash:ip,port family inet hashsize 65536 maxelem 131072"]
    lines += [f"add big 10.{i >> 16}.{(i >> 8) & 255}.{i & 255},{('tcp', 'udp')[i % 2]}:{i % 65536}"
              for i in range(60_000)]
    text = "\n".join(lines) + "\n"
    assert kpctl("--netns", ours, "ipset", "restore", input=text).exit_code == 0
    run_in(theirs, "ipset", "restore", input=text)
    assert _normal(run_in(ours, "ipset", "save").stdout) == _normal(run_in(theirs, "ipset", "save").stdout)


@pytest.mark.parametrize("options", ["", " timeout 600"])
def test_editing_a_large_set_copies_it_whole(netns_factory, options: str,  # type: ignore[no-untyped-def]
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ours, generic, theirs = netns_factory(), netns_factory(), netns_factory()
    start = [f"create big hash:ip,port maxelem 131072{options}"]
    start += [f"add big 10.{i >> 16}.{(i >> 8) & 255}.{i & 255},"
              + (f"icmp:{i % 16}/0" if i % 3 == 2 else f"{('tcp', 'udp')[i % 3]}:{i % 256}") for i in range(5_000)]
    body = "add big 10.200.0.1,tcp:80\ndel big 10.0.0.3,tcp:3\n"
    for ns in (ours, generic, theirs):
        run_in(ns, "ipset", "restore", input="\n".join(start) + "\n")
    assert kpctl("--netns", ours, "ipset", "restore", input=body).exit_code == 0
    monkeypatch.setattr(ipset_netlink, "readd_members", lambda *args: None)
    assert kpctl("--netns", generic, "ipset", "restore", input=body).exit_code == 0
    run_in(theirs, "ipset", "restore", input=body)

    def members(ns: str) -> list[str]:  # remaining timeouts tick: compare without them
        return sorted(re.sub(r" timeout \d+", "", line) for line in run_in(ns, "ipset", "save").stdout.splitlines()
                      if line.startswith("add "))

    assert members(ours) == members(generic) == members(theirs)
    assert len(members(ours)) == 5_000
