"""`kpctl ipset restore` against the real kernel and ipset(8): the sets ipset builds from the same
file, and where the file fails, the line ipset names and the kernel as it was before; large
files, and copying a large set that a file edits."""

from __future__ import annotations

import re

import pytest

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


def _members(ns: str) -> list[str]:  # remaining timeouts tick: compare without them
    return sorted(re.sub(r" timeout \d+", "", line) for line in run_in(ns, "ipset", "save").stdout.splitlines()
                  if line.startswith("add "))


@pytest.mark.parametrize("options", ["", " timeout 600"])
def test_editing_a_large_set_copies_it_whole(netns_factory, options: str) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = netns_factory(), netns_factory()
    start = [f"create big hash:ip,port maxelem 131072{options}"]
    start += [f"add big 10.{i >> 16}.{(i >> 8) & 255}.{i & 255},"
              + (f"icmp:{i % 16}/0" if i % 3 == 2 else f"{('tcp', 'udp')[i % 3]}:{i % 256}") for i in range(5_000)]
    body = "add big 10.200.0.1,tcp:80\ndel big 10.0.0.3,tcp:3\n"
    for ns in (ours, theirs):
        run_in(ns, "ipset", "restore", input="\n".join(start) + "\n")
    assert kpctl("--netns", ours, "ipset", "restore", input=body).exit_code == 0
    run_in(theirs, "ipset", "restore", input=body)
    assert _members(ours) == _members(theirs)
    assert len(_members(ours)) == 5_000


# Sets whose members the kernel dumps with other attributes (IPv6 addresses, two addresses,
# interface names, MACs, set names, timeouts, counters, comments and skb info of several lengths,
# some members without them): copied for an edit, each set holds what ipset(8) makes of the edit.
_KINDS = {
    "ipv6 counters": ("create s hash:ip family inet6 counters",
                      [f"add s fd00::{i:x} packets {i} bytes {i * 60}" for i in range(1, 400)], "add s fd00::ffff\n"),
    "ip,port,net": ("create s hash:ip,port,net",
                    [f"add s 10.0.{i >> 8}.{i & 255},tcp:{i},10.{i % 200}.0.0/{8 + i % 17}" for i in range(400)],
                    "del s 10.0.0.1,tcp:1,10.1.0.0/9\n"),
    "net,iface comments": ("create s hash:net,iface comment",
                           [f"add s 10.{i}.0.0/16,{'physdev:' if i % 3 == 0 else ''}eth{i}{'+' if i % 5 == 0 else ''}"
                            + (f' comment "{"x" * (i % 7 + 1)}"' if i % 2 else "") for i in range(200)]
                           + [f"add s 10.{i}.0.0/16,eth{i} nomatch" for i in range(200, 240)],
                           "add s 10.250.0.0/16,veth0\n"),
    "ip skbinfo": ("create s hash:ip skbinfo",
                   [f"add s 10.0.{i >> 8}.{i & 255} skbmark 0x{i:x}/0xff skbprio 1:{i % 9}"
                    + (f" skbqueue {i % 4}" if i % 2 else "") for i in range(300)], "add s 10.1.0.1\n"),
    "net,port timeout": ("create s hash:net,port timeout 600",
                         [f"add s 10.{i % 250}.{i % 256}.0/{8 + i % 20},udp:{i}" + (" timeout 0" if i % 4 == 0 else "")
                          for i in range(300)], "del s 10.5.5.0/13,udp:5\n"),
    "bitmap:port": ("create s bitmap:port range 1000-3000 counters", [f"add s {1000 + i * 3}" for i in range(500)],
                    "add s 2999\n"),
    "bitmap:ip,mac": ("create s bitmap:ip,mac range 10.0.0.0/22",
                      [f"add s 10.0.{i >> 8}.{i & 255}" + (f",02:00:00:00:00:{i & 255:02x}" if i % 2 else "")
                       for i in range(400)], "add s 10.0.3.255\n"),
    "list:set": ("create a hash:ip\ncreate b hash:net\ncreate c hash:ip,port\ncreate s list:set",
                 ["add s a", "add s b"], "add s c\n"),
}


@pytest.mark.parametrize("kind", sorted(_KINDS))
def test_editing_a_set_copies_every_member_as_the_kernel_holds_it(netns_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
    create, members, body = _KINDS[kind]
    ours, theirs = netns_factory(), netns_factory()
    for ns in (ours, theirs):
        run_in(ns, "ipset", "restore", input=create + "\n" + "\n".join(members) + "\n")
    before = _members(ours)
    result = kpctl("--netns", ours, "ipset", "restore", input=body)
    assert result.exit_code == 0, result.stderr
    run_in(theirs, "ipset", "restore", input=body)
    assert _members(ours) == _members(theirs) != before
