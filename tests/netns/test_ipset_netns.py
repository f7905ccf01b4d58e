"""`kpctl ipset` against the real kernel in a fresh namespace, cross-checked with ipset(8).

kpctl writes -> `ipset save` reads; `ipset` writes -> kpctl reads; `kpctl ipset save` and
`ipset save` compared byte for byte.  Never touches the host namespace's sets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli_helpers import kpctl
from tests.netns.conftest import run, run_in

pytestmark = pytest.mark.netns

FIXTURES = Path(__file__).parent.parent / "unit" / "fixtures" / "ipset"


def ipset_save(ns: str) -> str:
    return run_in(ns, "ipset", "save").stdout


def k(ns: str, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return kpctl("--netns", ns, "ipset", *args, input=input)


def permanent(text: str) -> str:
    """Member timeouts pinned to 0 (permanent) so two reads a second apart agree."""
    return "\n".join(re.sub(r" timeout \d+", " timeout 0", line) if line.startswith("add ") else line
                     for line in text.splitlines()) + "\n"


def test_ipset_writes_kpctl_reads_byte_for_byte(netns: str) -> None:
    text = permanent((FIXTURES / "all-types.save").read_text())
    run_in(netns, "ipset", "restore", input=text)
    reference = ipset_save(netns)
    assert k(netns, "save").stdout == reference
    assert k(netns, "list", "-o", "save").stdout == reference
    for name in ("a", "b", "d", "e", "g", "h", "j", "m", "bi", "c2"):
        assert k(netns, "save", name).stdout == run_in(netns, "ipset", "save", name).stdout
    document = json.loads(k(netns, "list", "-o", "json").stdout)
    kernel_names = run_in(netns, "ipset", "list", "-n").stdout.split()
    assert [s["name"] for s in document["sets"]] == kernel_names
    for listed in document["sets"]:
        terse = run_in(netns, "ipset", "list", "-t", listed["name"]).stdout
        entries = int(re.search(r"Number of entries: (\d+)", terse).group(1))  # type: ignore[union-attr]
        assert len(listed["members"]) == entries == listed["entries"]
        revision = int(re.search(r"Revision: (\d+)", terse).group(1))  # type: ignore[union-attr]
        assert listed["revision"] == revision
        assert "Header: " + listed["header"] + "\n" in terse
    names = k(netns, "list", "--names", "-o", "plain", "--no-headers").stdout.split()
    assert names == kernel_names


def test_kube_proxy_sets_round_trip(netns: str) -> None:
    text = (FIXTURES / "kube-proxy.save").read_text()
    assert k(netns, "restore", input=text).exit_code == 0
    # kpctl wrote, ipset reads: same sets, same headers (initval kept), same members
    assert sorted(ipset_save(netns).splitlines()) == sorted(text.splitlines())
    assert k(netns, "save").stdout == ipset_save(netns)
    found = json.loads(k(netns, "find", "10.254.0.2:53/udp", "-o", "json").stdout)["matches"]
    assert {(m["set"], m["member"]) for m in found} == {("KUBE-CLUSTER-IP", "10.254.0.2,udp:53"),
                                                        ("KUBE-IPVS-IPS", "10.254.0.2")}
    for member in ("10.254.0.2,udp:53", "10.254.0.2,tcp:53"):
        assert run_in(netns, "ipset", "test", "KUBE-CLUSTER-IP", member, check=False).returncode == 0


CREATES = [
    (["hash:ip"], "create s hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval "),
    (["hash:ip", "--family", "inet6", "--hashsize", "64", "--maxelem", "100", "--timeout", "30", "--counters",
      "--comment", "--bucketsize", "4"],
     "create s hash:ip family inet6 hashsize 64 maxelem 100 timeout 30 counters comment bucketsize 4 initval "),
    (["hash:ip,port", "--comment"], "create s hash:ip,port family inet hashsize 1024 maxelem 65536 comment bucketsize 12 initval "),
    (["hash:ip,port,ip"], "create s hash:ip,port,ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval "),
    (["hash:ip,port,net", "--family", "inet6"], "create s hash:ip,port,net family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval "),
    (["hash:net", "--skbinfo"], "create s hash:net family inet hashsize 1024 maxelem 65536 skbinfo bucketsize 12 initval "),
    (["hash:net,port", "--timeout", "0"], "create s hash:net,port family inet hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval "),
    (["hash:net,iface"], "create s hash:net,iface family inet hashsize 1024 maxelem 65536 bucketsize 12 initval "),
    (["hash:ip", "--netmask", "24"], "create s hash:ip family inet hashsize 1024 maxelem 65536 netmask 24 bucketsize 12 initval "),
    (["bitmap:port", "--range", "0-65535"], "create s bitmap:port range 0-65535\n"),
    (["bitmap:port", "--range", "30000-32767", "--timeout", "5", "--counters"], "create s bitmap:port range 30000-32767 timeout 5 counters\n"),
    (["bitmap:ip", "--range", "10.0.0.0/16", "--netmask", "24"], "create s bitmap:ip range 10.0.0.0-10.0.255.255 netmask 24\n"),
    (["bitmap:ip", "--range", "10.0.0.1-10.0.0.9", "--comment"], "create s bitmap:ip range 10.0.0.1-10.0.0.9 comment\n"),
    (["list:set", "--size", "4"], "create s list:set size 4\n"),
]


@pytest.mark.parametrize(("args", "expected"), CREATES, ids=[" ".join(a) for a, _ in CREATES])
def test_kpctl_creates_ipset_reads(netns: str, args: list[str], expected: str) -> None:
    outcome = k(netns, "create", "s", *args)
    assert outcome.exit_code == 0, outcome.stderr
    saved = ipset_save(netns)
    assert saved.startswith(expected)
    assert k(netns, "save").stdout == saved


MEMBERS = [
    ("hash:ip", [], ["10.0.0.1", "10.0.0.4/30", "10.1.0.1-10.1.0.3"], 8),
    ("hash:ip,port", ["--family", "inet6"], ["fd00::1,tcp:443", "fd00::1,udp:53", "fd00::2,ipv6-icmp:ping"], 3),
    ("hash:ip,port", [], ["10.254.0.1,tcp:443", "10.254.0.2,udp:53", "10.0.0.1,icmp:3/7", "10.0.0.1,sctp:9",
                          "10.0.0.1,tcp:80-82", "10.0.0.5,gre:0"], 8),
    ("hash:ip,port,ip", [], ["172.30.1.5,tcp:8080,172.30.1.5", "172.30.1.6,udp:53,172.30.1.6"], 2),
    ("hash:ip,port,net", [], ["10.0.0.1,tcp:80,10.0.0.0/8", "10.0.0.1,tcp:80,192.168.0.0/16"], 2),
    ("hash:net", [], ["10.0.0.0/8", "192.168.1.0/24", "10.9.9.9"], 3),
    ("hash:net,port", [], ["10.0.0.0/24,tcp:30000", "10.0.1.0/24,udp:53"], 2),
    ("hash:net,iface", [], ["10.0.0.0/8,eth0", "10.0.0.0/8,physdev:eth1", "10.0.0.0/8,veth wildcard", "10.0.0.0/8,eth+",
                            "0.0.0.0/0,eth2"], 5),
    ("bitmap:port", ["--range", "0-65535"], ["30080", "80-82"], 4),
    ("bitmap:ip", ["--range", "10.0.0.0/24"], ["10.0.0.3", "10.0.0.8/30"], 5),
    # the MAC may be left out (the kernel takes it from the address's first packet)
    ("bitmap:ip,mac", ["--range", "10.0.0.0/24"], ["10.0.0.3", "10.0.0.4,02:00:00:00:00:04"], 2),
]


@pytest.mark.parametrize(("set_type", "options", "entries", "count"), MEMBERS,
                         ids=[f"{t} {' '.join(o)}" for t, o, _, _ in MEMBERS])
def test_add_test_delete_cross_checked(netns: str, set_type: str, options: list[str], entries: list[str],
                                       count: int) -> None:
    assert k(netns, "create", "s", set_type, *options).exit_code == 0
    for entry in entries:
        outcome = k(netns, "add", "s", entry)
        assert outcome.exit_code == 0, outcome.stderr
    listed = run_in(netns, "ipset", "list", "-t", "s").stdout
    assert f"Number of entries: {count}\n" in listed
    assert k(netns, "save").stdout == ipset_save(netns)
    first = entries[0]
    assert run_in(netns, "ipset", "test", "s", first, check=False).returncode == 0
    assert k(netns, "test", "s", first).exit_code == 0
    # ipset writes, kpctl reads
    run_in(netns, "ipset", "del", "s", first)
    assert k(netns, "test", "s", first).exit_code == 1
    again = k(netns, "delete", "s", first)
    assert again.exit_code == 3 and "not in set" in again.stderr
    assert k(netns, "delete", "s", first, "--exist").exit_code == 0
    run_in(netns, "ipset", "add", "s", first)
    assert k(netns, "delete", "s", first).exit_code == 0
    assert run_in(netns, "ipset", "test", "s", first, check=False).returncode != 0


def test_entry_options_written_by_kpctl(netns: str) -> None:
    assert k(netns, "create", "s", "hash:net", "--timeout", "600", "--comment", "--counters").exit_code == 0
    assert k(netns, "add", "s", "10.0.0.0/8", "--timeout", "0", "--comment", "lab net").exit_code == 0
    assert k(netns, "add", "s", "10.1.0.0/16", "--nomatch", "--timeout", "0").exit_code == 0
    saved = ipset_save(netns)
    assert 'add s 10.0.0.0/8 timeout 0 packets 0 bytes 0 comment "lab net"\n' in saved
    assert "add s 10.1.0.0/16 timeout 0 nomatch packets 0 bytes 0\n" in saved
    exists = k(netns, "add", "s", "10.0.0.0/8", "--timeout", "0")
    assert exists.exit_code == 4 and "already in set" in exists.stderr
    assert k(netns, "add", "s", "10.0.0.0/8", "--timeout", "0", "--comment", "new", "--exist").exit_code == 0
    assert 'add s 10.0.0.0/8 timeout 0 packets 0 bytes 0 comment "new"\n' in ipset_save(netns)
    assert k(netns, "save").stdout == ipset_save(netns)


def test_flush_destroy_rename_swap_cross_checked(netns: str) -> None:
    run_in(netns, "ipset", "restore", input="create a hash:ip\nadd a 10.0.0.1\ncreate b hash:ip\nadd b 10.0.0.2\n"
                                             "create c hash:net\nadd c 10.0.0.0/8\n")
    assert k(netns, "swap", "a", "b").exit_code == 0
    assert run_in(netns, "ipset", "test", "a", "10.0.0.2", check=False).returncode == 0
    assert k(netns, "rename", "a", "x").exit_code == 0
    assert run_in(netns, "ipset", "list", "-n").stdout.split() == ["x", "b", "c"]
    assert k(netns, "flush", "x").exit_code == 0
    assert "Number of entries: 0" in run_in(netns, "ipset", "list", "-t", "x").stdout
    assert k(netns, "destroy", "x").exit_code == 0
    assert run_in(netns, "ipset", "list", "-n").stdout.split() == ["b", "c"]
    assert k(netns, "flush").exit_code == 0
    assert "add " not in ipset_save(netns)
    assert k(netns, "destroy").exit_code == 0
    assert ipset_save(netns) == ""


def test_bad_input_exit_codes_and_nothing_changes(netns: str) -> None:
    run_in(netns, "ipset", "restore", input="create a hash:ip,port comment\nadd a 10.0.0.1,tcp:80\n"
                                             "create b hash:ip\ncreate l list:set\nadd l b\n")
    before = ipset_save(netns)
    cases = [
        (["create", "a", "hash:ip,port"], 4, "'a'"),
        (["create", "n", "hash:wat"], 2, "hash:wat"),
        (["create", "n", "hash:mac"], 6, "hash:mac"),
        (["create", "n", "bitmap:ip"], 2, "range"),
        (["add", "a", "10.0.0.2"], 2, "'10.0.0.2'"),
        (["add", "a", "10.0.0.2,tcp:99999"], 2, "99999"),
        (["add", "a", "fd00::1,tcp:80"], 2, "fd00::1"),
        (["add", "a", "10.0.0.1,tcp:80"], 4, "10.0.0.1,tcp:80"),
        (["add", "a", "10.0.0.3,tcp:80", "--timeout", "5"], 2, "timeout"),
        (["add", "missing", "10.0.0.1"], 3, "'missing'"),
        (["add", "l", "missing"], 3, "missing"),
        (["delete", "a", "10.0.0.9,tcp:80"], 3, "10.0.0.9,tcp:80"),
        (["test", "a", "10.0.0.9,tcp:80"], 1, ""),
        (["test", "missing", "10.0.0.9"], 3, "'missing'"),
        (["swap", "a", "b"], 2, "'a'"),
        (["swap", "a", "missing"], 3, "'missing'"),
        (["rename", "a", "b"], 4, "'b'"),
        (["rename", "missing", "z"], 3, "'missing'"),
        (["destroy", "b"], 1, "'b'"),
        (["destroy", "missing"], 3, "'missing'"),
        (["flush", "missing"], 3, "'missing'"),
        (["list", "missing"], 3, "'missing'"),
    ]
    for args, code, named in cases:
        outcome = k(netns, *args)
        assert outcome.exit_code == code, (args, outcome.stdout, outcome.stderr)
        if code != 1 or named:
            assert named in outcome.stderr, (args, outcome.stderr)
            assert outcome.stderr.count("\n") == 1
        assert ipset_save(netns) == before, args


def test_not_root_is_exit_5(netns: str) -> None:
    kpctl_bin = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kpctl")
    proc = run_in(netns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                  kpctl_bin, "ipset", "list", check=False)
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.startswith("kpctl: error:")


def test_100000_members_listed_completely(netns: str) -> None:
    lines = ["create big hash:ip,port family inet hashsize 65536 maxelem 262144"]
    lines += [f"add big 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},{'tcp' if i % 2 else 'udp'}:{1 + i % 60000}"
              for i in range(100_000)]
    run_in(netns, "ipset", "restore", input="\n".join(lines) + "\n")
    assert "Number of entries: 100000" in run_in(netns, "ipset", "list", "-t", "big").stdout
    document = json.loads(k(netns, "list", "big", "-o", "json").stdout)
    members = document["sets"][0]["members"]
    assert len(members) == 100_000
    assert len({m["raw"] for m in members}) == 100_000
    assert k(netns, "save", "big").stdout == run_in(netns, "ipset", "save", "big").stdout
    assert k(netns, "test", "big", "10.1.134.159,tcp:40000").exit_code == (0 if (1 << 16 | 134 << 8 | 159) % 2 else 1)


def _restore_failing(netns: str, body: str, code: int, named: str) -> None:
    before = ipset_save(netns)
    outcome = k(netns, "restore", input=body)
    assert outcome.exit_code == code, outcome.stderr
    assert named in outcome.stderr
    assert ipset_save(netns) == before
    assert "kpctl-" not in run_in(netns, "ipset", "list", "-n").stdout


def test_restore_all_or_nothing(netns: str) -> None:
    run_in(netns, "ipset", "restore", input=(
        "create keep hash:ip\nadd keep 1.1.1.1\ncreate edit hash:ip,port comment\n"
        'add edit 10.0.0.1,tcp:80 comment "old"\ncreate full hash:ip maxelem 2\nadd full 10.0.0.1\n'
        "create l list:set\nadd l keep\n"))
    # a kernel refusal on the last line: everything before it (new sets, adds, flushes) is undone
    _restore_failing(netns, "create fresh hash:net\nadd fresh 10.0.0.0/8\nflush keep\nadd keep 2.2.2.2\n"
                            "add edit 10.0.0.2,udp:53\nadd l fresh\nadd edit 10.0.0.1,tcp:80\n",
                     4, "line 7")
    # maxelem reached in the middle of a batch
    _restore_failing(netns, "add edit 10.0.0.3,tcp:1\nadd full 10.0.0.2\nadd full 10.0.0.3\n", 1, "line 3")
    # unsupported set type, after other work
    _restore_failing(netns, "add keep 3.3.3.3\ncreate m hash:mac\n", 6, "hash:mac")
    # validation errors: nothing is even staged
    _restore_failing(netns, "add keep 3.3.3.3\nadd keep 3.3.3.x\n", 2, "line 2")
    _restore_failing(netns, "add nope 3.3.3.3\n", 3, "line 1")
    _restore_failing(netns, "create keep hash:ip\n", 4, "line 1")
    # -exist accepts only the same set, as the kernel does
    _restore_failing(netns, "create full hash:ip maxelem 3 -exist\n", 4, "different type or options")
    _restore_failing(netns, "create full hash:ip maxelem 2 counters -exist\n", 4, "line 1")
    _restore_failing(netns, "create keep hash:net -exist\n", 4, "line 1")
    before = ipset_save(netns)
    assert k(netns, "restore", input="create full hash:ip maxelem 2 hashsize 4096 -exist\n").exit_code == 0
    assert ipset_save(netns) == before
    _restore_failing(netns, "destroy keep\n", 1, "line 1")  # referenced by list:set l


def test_restore_applies_like_ipset_restore(netns_factory) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = netns_factory(), netns_factory()
    start = ("create keep hash:ip\nadd keep 1.1.1.1\ncreate edit hash:ip,port comment\n"
             'add edit 10.0.0.1,tcp:80 comment "old"\ncreate gone hash:net\nadd gone 10.0.0.0/8\n'
             "create l list:set\nadd l keep\ncreate ren hash:ip\nadd ren 5.5.5.5\n")
    body = ('add edit 10.0.0.2,udp:53 comment "new"\ndel edit 10.0.0.1,tcp:80\ncreate fresh hash:net family inet6\n'
            "add fresh fd00::/64\nflush gone\nadd gone 192.168.0.0/16\nadd l fresh\n"
            "create keep hash:ip -exist\nadd keep 1.1.1.1 -exist\nrename ren ren2\nadd ren2 6.6.6.6\n"
            "create tmp hash:ip\ndestroy tmp\n")
    for ns in (ours, theirs):
        run_in(ns, "ipset", "restore", input=start)
    outcome = k(ours, "restore", input=body)
    assert outcome.exit_code == 0, outcome.stderr
    run_in(theirs, "ipset", "restore", input=body)

    def normal(text: str) -> list[str]:
        return sorted(re.sub(r" initval 0x[0-9a-f]+", "", line) for line in text.splitlines())

    assert normal(ipset_save(ours)) == normal(ipset_save(theirs))
    assert "kpctl-" not in ipset_save(ours)
    # list:set order is part of the set's meaning
    assert [line for line in ipset_save(ours).splitlines() if line.startswith("add l ")] == \
        ["add l keep", "add l fresh"]


def test_restore_keeps_iptables_references(netns: str) -> None:
    run_in(netns, "ipset", "restore", input="create KUBE-CLUSTER-IP hash:ip,port\nadd KUBE-CLUSTER-IP 10.254.0.1,tcp:443\n")
    run_in(netns, "iptables", "-t", "filter", "-A", "INPUT", "-m", "set", "--match-set", "KUBE-CLUSTER-IP",
           "dst,dst", "-j", "ACCEPT")
    assert k(netns, "restore", input="flush KUBE-CLUSTER-IP\nadd KUBE-CLUSTER-IP 10.254.0.9,udp:53\n").exit_code == 0
    assert "add KUBE-CLUSTER-IP 10.254.0.9,udp:53\n" in ipset_save(netns)
    assert "References: 1" in run_in(netns, "ipset", "list", "-t", "KUBE-CLUSTER-IP").stdout
    assert "--match-set KUBE-CLUSTER-IP dst,dst" in run_in(netns, "iptables-save").stdout


def test_host_namespace_untouched_marker() -> None:
    # the tier's fixtures run everything inside namespaces; nothing we name leaks to the host
    host = run("ipset", "list", "-n", check=False).stdout.split()
    assert not any(name.startswith("kpctl-") for name in host)


def test_protocol_and_icmp_names_print_as_ipset_prints_them(netns: str) -> None:
    from kpctl.core.ipset_entry import ICMP_NAMES, ICMPV6_NAMES

    lines = ["create p hash:ip,port family inet hashsize 1024 maxelem 65536",
             "create q hash:ip,port family inet6 hashsize 1024 maxelem 65536"]
    lines += [f"add p 10.0.0.{n},{n}:0" for n in range(1, 256) if n not in (1, 6, 17, 58, 132, 136)]
    lines += [f"add p 10.0.1.1,icmp:{t}/{c}" for _, t, c in ICMP_NAMES] + ["add p 10.0.1.2,icmp:99/9"]
    lines += [f"add q fd00::1,icmpv6:{t}/{c}" for _, t, c in ICMPV6_NAMES] + ["add q fd00::2,icmpv6:99/9"]
    lines += [f"add p 10.0.2.{i},icmp:{name}" for i, (name, _, _) in enumerate(ICMP_NAMES)]
    run_in(netns, "ipset", "restore", "-exist", input="\n".join(lines) + "\n")
    saved = ipset_save(netns)
    assert saved.count("\n") > 280
    assert k(netns, "save").stdout == saved
    # and kpctl parses every element ipset printed
    assert k(netns, "restore", "--exist", input=saved).exit_code == 0
    assert ipset_save(netns) == saved


# Port names as ipset(8) reads them (getservbyname for the protocol: netbase's /etc/services), and
# those it refuses: ssh is no udp or sctp service there, a range is split at its first "-".
NAMED_PORTS = ["10.0.0.1,tcp:ssh", "10.0.0.2,ssh", "10.0.0.3,udp:domain", "10.0.0.4,tcp:ftp-ssh",
               "10.0.0.5,tcp:22-ssh", "10.0.0.6,tcp:www"]
UNNAMED_PORTS = ["10.0.0.7,udp:ssh", "10.0.0.8,sctp:ssh", "10.0.0.9,tcp:nosuch", "10.0.0.10,tcp:http-alt",
                 "10.0.0.11,gre:ssh", "10.0.0.12,tcp:SSH"]


def test_port_names_read_as_ipset_reads_them(netns: str) -> None:
    run_in(netns, "ipset", "create", "theirs", "hash:ip,port")
    assert k(netns, "create", "mine", "hash:ip,port").exit_code == 0
    for entry in NAMED_PORTS:
        run_in(netns, "ipset", "add", "theirs", entry)
        added = k(netns, "add", "mine", entry)
        assert added.exit_code == 0, (entry, added.stderr)
        assert k(netns, "test", "mine", entry).exit_code == 0
    members = [sorted(line for line in run_in(netns, "ipset", "save", name).stdout.splitlines() if line.startswith("add "))
               for name in ("theirs", "mine")]
    assert len(members[0]) == 7 and "add theirs 10.0.0.1,tcp:22" in members[0]
    assert [line.replace("theirs", "mine") for line in members[0]] == members[1]
    for entry in UNNAMED_PORTS:
        assert run_in(netns, "ipset", "add", "theirs", entry, check=False).returncode != 0, entry
        refused = k(netns, "add", "mine", entry)
        assert refused.exit_code == 2 and refused.stderr.count("\n") == 1, (entry, refused.stderr)
    assert sorted(line for line in run_in(netns, "ipset", "save", "mine").stdout.splitlines() if line.startswith("add ")) == members[1]
    # bitmap:port takes names (tcp's) and ranges of names too; and a restore file may carry them
    assert k(netns, "create", "ports", "bitmap:port", "--range", "0-1024").exit_code == 0
    assert k(netns, "add", "ports", "ftp-ssh").exit_code == 0
    restored = k(netns, "restore", input="add ports https\nadd mine 10.0.1.1,udp:ntp\n")
    assert restored.exit_code == 0, restored.stderr
    assert [line.split()[-1] for line in run_in(netns, "ipset", "save", "ports").stdout.splitlines()[1:]] == ["21", "22", "443"]
    assert run_in(netns, "ipset", "test", "mine", "10.0.1.1,udp:123", check=False).returncode == 0
