"""kpctl changes the kernel's table; ipvsadm reads it back.  Restore is all or nothing."""

from __future__ import annotations

from collections.abc import Callable

from tests.vm.ipvs_tables import blocked_module, ok, refused

Ipvsadm = Callable[..., str]


def test_add_edit_delete_service_and_servers_seen_by_ipvsadm(ipvsadm: Ipvsadm) -> None:
    ok("ipvs", "add", "10.254.0.1:443", "-s", "rr")
    ok("ipvs", "add-server", "10.254.0.1:443", "172.30.1.5:6443", "-m", "-w", "3")
    ok("ipvs", "add-server", "10.254.0.1:443", "172.30.1.6:6443", "-m")
    assert ipvsadm("-Sn") == (
        "-A -t 10.254.0.1:443 -s rr\n"
        "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 3\n"
        "-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 1\n")
    ok("ipvs", "edit", "10.254.0.1:443", "-s", "wrr", "-p", "900")
    ok("ipvs", "edit-server", "10.254.0.1:443", "172.30.1.5:6443", "-w", "0", "-x", "50", "-y", "5")
    assert ipvsadm("-Sn") == (
        "-A -t 10.254.0.1:443 -s wrr -p 900\n"
        "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 0\n"
        "-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 1\n")
    thresholds = ipvsadm("-Ln", "--thresholds")  # -S has no thresholds; the listing has
    (row,) = [line.split() for line in thresholds.splitlines() if "172.30.1.5:6443" in line]
    assert row[2:4] == ["50", "5"], thresholds
    ok("ipvs", "delete-server", "10.254.0.1:443", "172.30.1.6:6443")
    assert "172.30.1.6" not in ipvsadm("-Sn")
    ok("ipvs", "delete", "10.254.0.1:443")
    assert ipvsadm("-Sn") == ""


def test_edit_keeps_what_is_not_given_and_drops_persistence_only_when_asked(ipvsadm: Ipvsadm) -> None:
    ok("ipvs", "add", "[2001:db8::10]:443", "-s", "sh", "-b", "sh-port", "-p", "120", "-M", "64")
    ok("ipvs", "add-server", "[2001:db8::10]:443", "[fd00::1]", "-i", "--tun-type", "gue", "--tun-port", "6080")
    ok("ipvs", "edit-server", "[2001:db8::10]:443", "[fd00::1]", "--tun-csum")
    saved = ipvsadm("-Sn")
    assert "-r [fd00::1]:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum" in saved
    ok("ipvs", "edit", "[2001:db8::10]:443", "-M", "48")
    assert ipvsadm("-Sn").splitlines()[0] == "-A -t [2001:db8::10]:443 -s sh -p 120 -M 48 -b sh-port"


def test_udp_sctp_and_fwmark_services(ipvsadm: Ipvsadm) -> None:
    ok("ipvs", "add", "10.254.0.10:53/UDP", "-s", "rr", "--ops")
    ok("ipvs", "add", "10.254.0.20:3868/sctp")
    ok("ipvs", "add", "fwmark:7/ipv6", "-s", "mh", "-b", "mh-port")
    ok("ipvs", "add-server", "fwmark:7/ipv6", "[fd00::7]", "-w", "65535")
    assert ipvsadm("-Sn") == (
        "-A -u 10.254.0.10:53 -s rr -o\n"
        "-A --sctp-service 10.254.0.20:3868 -s wlc\n"
        "-A -f 7 -6 -s mh -b mh-port\n"
        "-a -f 7 -6 -r [fd00::7]:0 -g -w 65535\n")


def test_clear_empties_the_table(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-A", "-t", "10.254.0.1:443")
    ipvsadm("-A", "-f", "3")
    ok("ipvs", "clear")
    assert ipvsadm("-Sn") == ""


BEFORE_ROLLBACK = (
    "-A -t 10.254.0.1:443 -s rr\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 1\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n"
    "-A -u 10.254.0.10:53 -s wrr -p 300\n"
    "-a -u 10.254.0.10:53 -r 172.30.1.8:53 -m -w 1\n"
)

# Every kind of change first, then a service whose scheduler module the kernel cannot load.
FAILING_RESTORE = (
    "-A -t 10.254.0.2:80 -s wlc\n"
    "-a -t 10.254.0.2:80 -r 172.30.2.1:8080 -m -w 4\n"
    "-E -t 10.254.0.1:443 -s wrr -p 60\n"
    "-e -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 9\n"
    "-d -t 10.254.0.1:443 -r 172.30.1.6:6443\n"
    "-D -u 10.254.0.10:53\n"
    "-A -t 10.254.0.3:80 -s ovf\n"
    "-a -t 10.254.0.3:80 -r 172.30.3.1:80 -m\n"
)


def test_restore_rolls_back_everything_when_the_kernel_refuses_a_line(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-R", input=BEFORE_ROLLBACK)
    before = ipvsadm("-Sn")
    with blocked_module("ip_vs_ovf"):
        outcome = refused(6, "ipvs", "restore", naming="ovf", input=FAILING_RESTORE)
        # the refusal happened part way, in the kernel: the earlier lines had been applied
        assert "scheduler" in outcome.stderr
    assert ipvsadm("-Sn") == before


FAILING_FLUSH_RESTORE = (
    "-A -t 10.254.0.1:443 -s lc\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.7:6443 -m -w 4\n"
    "-A -u 10.254.0.11:53 -s rr\n"
    "-A -t 10.254.0.3:80 -s ovf\n"
)


def test_restore_with_flush_rolls_back_to_the_old_table(ipvsadm: Ipvsadm) -> None:
    from tests.cli_helpers import kpctl

    ipvsadm("-R", input=BEFORE_ROLLBACK)
    before = ipvsadm("-Sn")
    with blocked_module("ip_vs_ovf"):
        outcome = kpctl("ipvs", "restore", "--flush", input=FAILING_FLUSH_RESTORE)
    assert outcome.exit_code == 6, outcome.stderr
    assert ipvsadm("-Sn") == before


def test_restore_refuses_a_duplicate_before_touching_the_kernel(ipvsadm: Ipvsadm) -> None:
    from tests.cli_helpers import kpctl

    ipvsadm("-R", input=BEFORE_ROLLBACK)
    before = ipvsadm("-Sn")
    rules = "-A -t 10.254.0.2:80 -s wlc\n-A -t 10.254.0.1:443 -s rr\n"
    outcome = kpctl("ipvs", "restore", input=rules)
    assert outcome.exit_code == 4 and "10.254.0.1:443" in outcome.stderr and "line 2" in outcome.stderr
    assert ipvsadm("-Sn") == before


def test_restore_rolls_back_after_a_concurrent_change_makes_the_kernel_refuse(ipvsadm: Ipvsadm) -> None:
    """A writer racing kpctl: the plan was fine when checked, the kernel says EEXIST part way."""
    from kpctl.backends import ipvs_netlink
    from tests.cli_helpers import kpctl

    ipvsadm("-R", input=BEFORE_ROLLBACK)
    before = ipvsadm("-Sn")
    original = ipvs_netlink.IPVSNetlink.add_server
    calls = {"n": 0}

    def racing_add_server(self: ipvs_netlink.IPVSNetlink, key: object, server: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # someone else adds the very server kpctl is about to add
            ipvsadm("-a", "-t", "10.254.0.2:80", "-r", "172.30.2.2:8080", "-m")
        original(self, key, server)  # type: ignore[arg-type]

    rules = ("-A -t 10.254.0.2:80 -s wlc\n"
             "-a -t 10.254.0.2:80 -r 172.30.2.1:8080 -m\n"
             "-a -t 10.254.0.2:80 -r 172.30.2.2:8080 -m\n"
             "-E -t 10.254.0.1:443 -s lc\n")
    ipvs_netlink.IPVSNetlink.add_server = racing_add_server  # type: ignore[method-assign]
    try:
        outcome = kpctl("ipvs", "restore", input=rules)
    finally:
        ipvs_netlink.IPVSNetlink.add_server = original  # type: ignore[method-assign]
    assert outcome.exit_code == 4, outcome.stderr
    assert "172.30.2.2:8080" in outcome.stderr
    assert ipvsadm("-Sn") == before
