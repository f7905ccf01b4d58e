"""The live IPVS backend used directly: decoding every attribute, and listing a large table fast."""

from __future__ import annotations

from collections.abc import Callable

from kpctl.backends.ipvs_netlink import IPVSNetlink
from kpctl.model.ipvs import (
    SVC_F_HASHED,
    SVC_F_PERSISTENT,
    RealServer,
    ServiceKey,
    VirtualService,
)
from tests.vm.ipvs_tables import build_with_ipvsadm, ok

Ipvsadm = Callable[..., str]


def test_table_reads_what_ipvsadm_wrote(ipvsadm: Ipvsadm) -> None:
    ipvsadm("-A", "-t", "10.254.0.2:80", "-s", "wlc", "-p", "600", "-M", "255.255.255.0")
    ipvsadm("-a", "-t", "10.254.0.2:80", "-r", "10.0.0.4", "-i", "--tun-type", "gue", "--tun-port", "6080",
            "--tun-remcsum", "-w", "0", "-x", "9", "-y", "1")
    ipvsadm("-A", "-f", "101", "-6", "-s", "lblcr", "-p", "3600", "-M", "96")
    with IPVSNetlink() as backend:
        table = backend.table()
        assert table.info.version == "1.2.1" and table.info.conn_table_size > 0
        by_key = {s.key: s for s in table.services}
        service = by_key[ServiceKey("inet", "tcp", "10.254.0.2", 80)]
        assert service.flags == SVC_F_PERSISTENT | SVC_F_HASHED
        assert (service.scheduler, service.timeout, service.netmask) == ("wlc", 600, 0xFFFFFF00)
        assert service.servers == (RealServer("10.0.0.4", 80, forward="tunnel", weight=0, upper_threshold=9,
                                              lower_threshold=1, tun_type="gue", tun_port=6080, tun_flags=2),)
        fwmark = by_key[ServiceKey("inet6", None, None, 0, 101)]
        assert (fwmark.scheduler, fwmark.timeout, fwmark.netmask) == ("lblcr", 3600, 96)
        assert backend.service(service.key) == service


def test_written_service_reads_back_identically(ipvsadm: Ipvsadm) -> None:
    wanted = VirtualService("inet6", "udp", "2001:db8::53", 53, scheduler="mh", flags=SVC_F_PERSISTENT | 0x0010,
                            timeout=77, netmask=112, pe_name="sip")
    server = RealServer("fd00::53", 5353, family="inet6", forward="masq", weight=65535, upper_threshold=2**31 - 1)
    with IPVSNetlink() as backend:
        backend.add_service(wanted)
        backend.add_server(wanted.key, server)
        got = backend.service(wanted.key)
    assert got.servers == (server,)
    assert got.with_servers(()) == wanted._replace(flags=wanted.flags | SVC_F_HASHED)
    # ipvsadm -S writes no thresholds (-x/-y): ipvsadm -Ln --thresholds shows them
    assert ipvsadm("-Sn") == ("-A -u [2001:db8::53]:53 -s mh -p 77 -M 112 --pe sip -b mh-port\n"
                              "-a -u [2001:db8::53]:53 -r [fd00::53]:5353 -m -w 65535\n")
    assert "2147483647" in ipvsadm("-Ln", "--thresholds")


def test_listing_a_large_table_is_complete_and_exact(ipvsadm: Ipvsadm) -> None:
    """4,000 servers come back from the multi-message dumps, in ipvsadm's order and format.

    Speed is measured by bench/ (ratios against ipvsadm in one VM boot), not asserted here.
    """
    services, servers = 1000, 4
    lines = []
    for i in range(services):
        vip = f"10.{100 + i // 250}.{i % 250}.1:443"
        lines.append(f"-A -t {vip} -s rr")
        lines += [f"-a -t {vip} -r 172.30.{i % 250}.{j + 1}:8443 -m -w {j}" for j in range(servers)]
    ipvsadm("-R", input="\n".join(lines) + "\n")
    reference = ipvsadm("-Ln")
    with IPVSNetlink() as backend:
        table = backend.table()
    assert len(table.services) == services
    assert sum(len(s.servers) for s in table.services) == services * servers
    assert ok("ipvs", "list", "-o", "ipvsadm").stdout == reference


def test_every_feature_table_round_trips_through_the_backend(ipvsadm: Ipvsadm) -> None:
    """Read the table ipvsadm built, flush, write it back with the backend alone: same -Sn."""
    from kpctl.core.ipvs_plan import rebuild

    build_with_ipvsadm()
    expected = ipvsadm("-Sn")
    with IPVSNetlink() as backend:
        table = backend.table()
        backend.flush()
        assert ipvsadm("-Sn") == ""
        backend.apply(rebuild(table.services))
    assert ipvsadm("-Sn") == expected
