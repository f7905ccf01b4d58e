"""The netns tier's scaffold: namespaces are isolated, cleaned up, and `--netns` really enters them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.cli_helpers import kpctl
from tests.netns.conftest import _create, _delete, netns_inode, run, run_in


def test_fixture_gives_a_separate_namespace_with_loopback_up(netns: str) -> None:
    assert os.path.exists(f"/run/netns/{netns}")
    assert netns_inode(netns) != os.stat("/proc/self/ns/net").st_ino
    links = run_in(netns, "ip", "-o", "link", "show").stdout.splitlines()
    assert len(links) == 1 and ": lo:" in links[0] and "UP" in links[0]


def test_ipset_created_inside_is_invisible_outside(netns: str) -> None:
    set_name = "kpctl-scaffold-" + netns[-8:]
    run_in(netns, "ipset", "create", set_name, "hash:ip")
    run_in(netns, "ipset", "add", set_name, "10.254.0.1")
    inside = run_in(netns, "ipset", "list", "-n").stdout.split()
    outside = run("ipset", "list", "-n").stdout.split()
    assert set_name in inside
    assert set_name not in outside


def test_two_namespaces_do_not_share_ipsets(netns_factory) -> None:  # type: ignore[no-untyped-def]
    first, second = netns_factory(), netns_factory()
    run_in(first, "ipset", "create", "KUBE-CLUSTER-IP", "hash:ip,port")
    assert "KUBE-CLUSTER-IP" in run_in(first, "ipset", "list", "-n").stdout.split()
    assert "KUBE-CLUSTER-IP" not in run_in(second, "ipset", "list", "-n").stdout.split()


def test_namespace_is_deleted_afterwards() -> None:
    name = _create()
    assert os.path.exists(f"/run/netns/{name}")
    _delete(name)
    assert not os.path.exists(f"/run/netns/{name}")
    assert name not in run("ip", "netns", "list").stdout


def test_kpctl_netns_option_enters_the_namespace_in_process(netns: str) -> None:
    # The root group's callback enters the namespace before the subcommand runs;
    # tests/conftest.py brings the pytest process back afterwards.
    outcome = kpctl("--netns", netns, "ipvs", "--help")
    assert outcome.exit_code == 0, outcome.stderr
    assert os.stat("/proc/self/ns/net").st_ino == netns_inode(netns)


def test_enter_netns_applies_to_the_process_and_its_children(netns: str) -> None:
    set_name = "kpctl-child-" + netns[-8:]
    run_in(netns, "ipset", "create", set_name, "hash:net")
    program = textwrap.dedent(f"""
        import os, subprocess
        from kpctl.backends.netns import enter_netns
        enter_netns({netns!r})
        print(os.stat("/proc/self/ns/net").st_ino)
        print(subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True, check=True).stdout.strip())
    """)
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    inode, *set_names = proc.stdout.split()
    assert int(inode) == netns_inode(netns)
    assert set_name in set_names


def test_kpctl_netns_reads_state_inside_the_namespace(netns_factory) -> None:  # type: ignore[no-untyped-def]
    # Two namespaces, a set in each: `kpctl --netns` must list the one it was pointed at only.
    first, second = netns_factory(), netns_factory()
    run_in(first, "ipset", "create", "kpctl-first", "hash:ip")
    run_in(second, "ipset", "create", "kpctl-second", "hash:ip")
    for ns, mine, other in ((first, "kpctl-first", "kpctl-second"), (second, "kpctl-second", "kpctl-first")):
        outcome = kpctl("--netns", ns, "ipset", "list", "--names", "-o", "plain", "--no-headers")
        assert outcome.exit_code == 0, outcome.stderr
        assert outcome.stdout.split() == [mine], (ns, outcome.stdout)
        assert other not in outcome.stdout


def test_kpctl_netns_unknown_namespace_is_not_found() -> None:
    outcome = kpctl("--netns", "kpctl-test-does-not-exist", "ipvs", "list")
    assert outcome.exit_code == 3
    assert "kpctl-test-does-not-exist" in outcome.stderr
