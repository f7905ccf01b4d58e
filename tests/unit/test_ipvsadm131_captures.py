"""Outputs captured from the real ipvsadm 1.31 in the VM (Debian 12, kernel 6.1), byte for byte.

fixtures/ipvs/ipvsadm131.rules.txt was loaded with `ipvsadm -R`; the other ipvsadm131.* files are
what `ipvsadm -Ln [view]`, `-Sn`, `-Ln -t SERVICE`, `-L --timeout` and `-L --daemon` printed then.
kpctl reads the same rules and must print the same bytes (counters are all zero there).
"""

from __future__ import annotations

import pytest

from kpctl.cli.ipvs_views import daemon_line, timeouts_listing
from kpctl.core.ipvs_plan import apply_to_state, plan_restore, state_of
from kpctl.core.ipvs_save import parse_restore
from kpctl.core.ipvsadm_list import format_save
from kpctl.core.ipvsadm_list import format_ipvsadm
from kpctl.model.ipvs import IPVSInfo, IPVSTable, ServiceKey, SyncDaemon, Timeouts
from tests.unit.ipvs_fakes import fixture_text, table_of


def _table() -> IPVSTable:
    empty = IPVSTable(IPVSInfo("1.2.1", 4096))
    state = state_of(empty)
    for op in plan_restore(empty, parse_restore(fixture_text("ipvsadm131.rules.txt"))):
        apply_to_state(state, op)
    return table_of(state, empty)


@pytest.mark.parametrize("capture, view, exact", [
    ("default", "default", False), ("stats", "stats", False), ("rate", "rate", False),
    ("thresholds", "thresholds", False), ("persistent-conn", "persistent-conn", False),
    ("tun-info", "tun-info", False), ("exact", "stats", True),
])
def test_listing_views_equal_real_ipvsadm(capture: str, view: str, exact: bool) -> None:
    assert format_ipvsadm(_table(), view, exact) == fixture_text(f"ipvsadm131.{capture}.txt")


def test_one_service_equals_real_ipvsadm() -> None:
    only = ServiceKey("inet", "tcp", "192.168.10.10", 30080)
    assert format_ipvsadm(_table(), "default", False, only) == fixture_text("ipvsadm131.one.txt")


def test_save_equals_real_ipvsadm_and_restores_to_itself() -> None:
    saved = fixture_text("ipvsadm131.save.txt")
    assert format_save(_table()) == saved
    empty = IPVSTable(IPVSInfo("1.2.1", 4096))
    state = state_of(empty)
    for op in plan_restore(empty, parse_restore(saved)):
        apply_to_state(state, op)
    assert format_save(table_of(state, empty)) == saved


def test_timeout_and_daemon_lines_equal_real_ipvsadm() -> None:
    assert timeouts_listing(Timeouts(900, 120, 300)).formats["ipvsadm"]() == fixture_text("ipvsadm131.timeout.txt")
    daemon = SyncDaemon("master", "lo", 7, 1472, "224.0.0.81", 8848, 1)
    assert daemon_line(daemon) == fixture_text("ipvsadm131.daemon.txt")


def test_connections_equal_real_ipvsadm_lnc() -> None:
    """/proc/net/ip_vs_conn and `ipvsadm -Lnc` captured in the same second in the VM."""
    from kpctl.cli.ipvs_views import connections_listing
    from kpctl.core.ipvs_conn import parse_ip_vs_conn

    conns = parse_ip_vs_conn(fixture_text("ipvsadm131.ip_vs_conn.txt"))
    lines = connections_listing(conns).formats["ipvsadm"]()  # (written as they are made)
    assert "".join(line + "\n" for line in lines) == fixture_text("ipvsadm131.conn.txt")
