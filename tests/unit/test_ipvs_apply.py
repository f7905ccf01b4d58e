"""`kpctl ipvs diff|apply` logic: the desired table reader, the plan, and the drain loop (in-memory backend).

The kernel side (real connections draining, ipvsadm -Sn equality, rollback) is in tests/vm/test_ipvs_apply.py.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import yaml

from kpctl.backends.ipvs_apply import apply_plan
from kpctl.core.ipvs_diff import plan_apply, read_desired
from kpctl.core.ipvs_plan import DeleteServer, DeleteService, EditServer, TableState
from kpctl.core.ipvsadm_list import format_save
from kpctl.errors import InvalidInput
from kpctl.model.ipvs import IPVSTable
from tests.cli_helpers import kpctl
from tests.unit.ipvs_fakes import FakeIPVS, install

RULES = (
    "-A -t 10.254.0.1:443 -s rr\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 1\n"
    "-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n"
    "-A -u 10.254.0.10:53 -s wrr -p 300\n"
    "-a -u 10.254.0.10:53 -r 172.30.1.8:53 -m -w 1\n"
)


def _with_conns(table: IPVSTable, server_address: str, conns: int) -> IPVSTable:
    services = []
    for service in table.services:
        servers = tuple(s._replace(active_conns=conns) if s.address == server_address else s for s in service.servers)
        services.append(service._replace(servers=servers))
    return replace(table, services=tuple(services))


def test_rules_json_and_yaml_read_to_the_same_table() -> None:
    table = read_desired(RULES)
    assert format_save(table) == RULES
    assert format_save(read_desired(json.dumps(table.to_dict()))) == RULES
    assert format_save(read_desired(yaml.safe_dump(table.to_dict()))) == RULES


def test_thresholds_survive_the_json_reader() -> None:
    table = read_desired(RULES.replace("-w 2", "-w 2 -x 100 -y 10"))
    again = read_desired(json.dumps(table.to_dict()))
    server = again.services[0].servers[1]
    assert (server.upper_threshold, server.lower_threshold) == (100, 10)


_BLANK_LEADS = ["", "\n\n", "   \n \r\n  \n"]  # what JSON takes before a document
_COMMENT_LEADS = ["# desired table\n", "   \n  # a comment\r\n  \n", "\n #\n#-A -t 1.2.3.4:80\n"]


@pytest.mark.parametrize("form, lead", [
    *((form, lead) for form in ("rules", "yaml") for lead in _BLANK_LEADS + _COMMENT_LEADS),
    *((form, lead) for form in ("json", "compact json") for lead in _BLANK_LEADS),
])
def test_the_first_line_not_blank_nor_a_comment_tells_the_format(form: str, lead: str) -> None:
    table = read_desired(RULES)
    text = {"rules": RULES, "json": json.dumps(table.to_dict(), indent=2), "yaml": yaml.safe_dump(table.to_dict()),
            "compact json": json.dumps(table.to_dict())}[form]
    assert format_save(read_desired(lead + text)) == RULES


@pytest.mark.parametrize("text, named", [
    ("-A -t 1.2.3.4:80 -s nosuch\n", "line 1"),
    ("-A -t 1.2.3.4:80\n-A -t 1.2.3.4:80\n", "line 2"),
    ("-a -t 1.2.3.4:80 -r 1.1.1.1:80 -m\n", "line 1"),
    ("-A -t 1.2.3.4:80\n-D -t 1.2.3.4:80\n", "line 2"),
    ('{"services": [{"address": "1.2.3.4", "port": 80, "scheduler": "bogus"}]}', "services[0]"),
    ('{"services": [{"address": "1.2.3.4", "port": 80}, {"address": "1.2.3.5", "port": 70000}]}', "services[1]"),
    ('{"services": [{"address": "1.2.3.4", "port": 80, "servers": [{"address": "1.1.1.1", "port": 80, "weight": -1}]}]}',
     "services[0].servers[0]"),
    ('{"services": 3}', "list of services"),
    ('{"format": "kpctl-snapshot", "ipvs": {"services": []}}', "list of services"),
    ("{broken", "JSON"),
])
def test_bad_desired_input_names_where(text: str, named: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_desired(text)
    assert named in caught.value.message


def test_equal_tables_plan_nothing_even_with_counters_and_connections() -> None:
    desired = read_desired(RULES)
    current = _with_conns(desired, "172.30.1.5", 7)
    plan = plan_apply(current, desired, drain=True)
    assert plan.changes == () and plan.operations == ()


def test_a_weight_change_is_one_edit_and_nothing_else_is_touched() -> None:
    current = read_desired(RULES)
    plan = plan_apply(current, read_desired(RULES.replace("6443 -m -w 2", "6443 -m -w 5")))
    assert [op.describe() for op in plan.operations] == ["-e -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 5"]
    assert [(c.action, c.detail) for c in plan.changes] == [("change", "weight 2 -> 5")]


def test_a_scheduler_change_edits_the_service_only() -> None:
    plan = plan_apply(read_desired(RULES), read_desired(RULES.replace("-s rr", "-s wrr")))
    assert [op.describe() for op in plan.operations] == ["-E -t 10.254.0.1:443 -s wrr"]


def test_removal_of_a_busy_server_drains_it_first_with_a_timeout() -> None:
    current = _with_conns(read_desired(RULES), "172.30.1.6", 3)
    desired = read_desired(RULES.replace("-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n", ""))
    plan = plan_apply(current, desired, drain=True)
    assert [(c.action, c.connections) for c in plan.changes] == [("drain", 3)]
    assert [op.describe() for op in plan.now] == ["-e -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 0"]
    assert [type(op) for op in plan.after_drain] == [DeleteServer]
    at_once = plan_apply(current, desired, drain=False)
    assert [op.describe() for op in at_once.now] == ["-d -t 10.254.0.1:443 -r 172.30.1.6:6443"]
    assert at_once.after_drain == ()


def test_a_draining_server_already_at_weight_zero_gets_no_new_write() -> None:
    current = _with_conns(read_desired(RULES.replace("6443 -m -w 2", "6443 -m -w 0")), "172.30.1.6", 3)
    desired = read_desired(RULES.replace("-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n", ""))
    plan = plan_apply(current, desired, drain=True)
    assert plan.now == () and len(plan.after_drain) == 1


def test_removal_of_a_busy_service_zeroes_its_servers_then_deletes_it() -> None:
    current = _with_conns(read_desired(RULES), "172.30.1.8", 1)
    desired = read_desired(RULES.split("-A -u")[0])
    plan = plan_apply(current, desired, drain=True)
    assert [type(op) for op in plan.now] == [EditServer] and plan.now[0].server.weight == 0
    assert [type(op) for op in plan.after_drain] == [DeleteService]


def test_apply_plan_deletes_drained_servers_when_their_connections_end() -> None:
    fake = FakeIPVS(_with_conns(read_desired(RULES), "172.30.1.6", 2))
    desired = read_desired(RULES.replace("-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n", ""))
    plan = plan_apply(fake.table(), desired, drain=True)
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:  # the connections end while the loop sleeps
        clock["now"] += 1
        fake.state = TableState(v._replace(servers=tuple(s._replace(active_conns=0) for s in v.servers))
                                for v in fake.state.values())

    left = apply_plan(fake, plan, drain_timeout=60, wait=True, clock=lambda: clock["now"], sleep=sleep)
    assert left == [] and format_save(fake.table()) == format_save(desired)
    assert [op.describe() for op in fake.calls] == ["-e -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 0",
                                                    "-d -t 10.254.0.1:443 -r 172.30.1.6:6443"]


def test_apply_plan_without_wait_leaves_busy_servers_and_the_timeout_removes_them_with_wait() -> None:
    fake = FakeIPVS(_with_conns(read_desired(RULES), "172.30.1.6", 2))
    desired = read_desired(RULES.replace("-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n", ""))
    left = apply_plan(fake, plan_apply(fake.table(), desired, drain=True), drain_timeout=60, wait=False)
    assert len(left) == 1 and "172.30.1.6" in format_save(fake.table())
    clock = {"now": 0.0}
    left = apply_plan(fake, plan_apply(fake.table(), desired, drain=True), drain_timeout=5, wait=True,
                      clock=lambda: clock["now"], sleep=lambda s: clock.__setitem__("now", clock["now"] + s))
    assert left == [] and format_save(fake.table()) == format_save(desired)


def test_diff_exit_codes_and_save_output(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    fake = FakeIPVS(read_desired(RULES))
    install(monkeypatch, fake)
    same = kpctl("ipvs", "diff", "-", input=RULES)
    assert same.exit_code == 0, same.stderr
    changed = kpctl("ipvs", "diff", "-", "-o", "save", input=RULES.replace("-w 1\n-a -t", "-w 4\n-a -t"))
    assert changed.exit_code == 1
    assert changed.stdout == "-e -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 4\n"
    document = json.loads(kpctl("ipvs", "diff", "-", "-o", "json", input=RULES.replace("-s rr", "-s lc")).stdout)
    assert document["equal"] is False and document["changes"][0]["detail"] == "scheduler rr -> lc"
    assert fake.calls == []


def test_apply_writes_only_the_change_and_a_second_apply_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeIPVS(read_desired(RULES))
    install(monkeypatch, fake)
    wanted = RULES.replace("-w 1\n-a -t", "-w 4\n-a -t")
    assert kpctl("ipvs", "apply", "-", input=wanted).exit_code == 0
    assert [op.describe() for op in fake.calls] == ["-e -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 4"]
    assert kpctl("ipvs", "apply", "-", input=wanted).exit_code == 0
    assert len(fake.calls) == 1 and format_save(fake.table()) == wanted


def test_apply_bad_input_is_exit_2_and_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeIPVS(read_desired(RULES))
    opened = install(monkeypatch, fake)
    outcome = kpctl("ipvs", "apply", "-", input=RULES + "-a -t 10.9.9.9:80 -r 1.1.1.1:80 -m\n")
    assert outcome.exit_code == 2 and outcome.stderr.startswith("kpctl: error: line 6:")
    assert fake.calls == [] and opened == []


def test_apply_rolls_back_when_the_kernel_refuses_part_way(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeIPVS(read_desired(RULES), fail_at=2)
    install(monkeypatch, fake)
    wanted = RULES.replace("-s rr", "-s lc").replace("-w 1\n-a -t", "-w 4\n-a -t").replace("wrr -p 300", "rr")
    outcome = kpctl("ipvs", "apply", "-", input=wanted)
    assert outcome.exit_code == 1 and "injected failure" in outcome.stderr
    assert format_save(fake.table()) == RULES


def test_dry_run_lists_the_deletes_after_the_drain(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeIPVS(_with_conns(read_desired(RULES), "172.30.1.6", 2))
    install(monkeypatch, fake)
    wanted = RULES.replace("-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 2\n", "")
    outcome = kpctl("ipvs", "apply", "-", "--dry-run", "--drain-timeout", "30", input=wanted)
    assert outcome.stdout == ("-e -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 0\n"
                              "# once drained (no connections, or --drain-timeout passed):\n"
                              "-d -t 10.254.0.1:443 -r 172.30.1.6:6443\n")
    assert fake.calls == []
