"""Module logic of `kpctl modules check` on prepared /proc, /lib/modules and /boot trees."""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

import pytest

from kpctl.backends.modules import ModuleProbe
from kpctl.core import modules as core
from kpctl.errors import InvalidInput
from kpctl.model.modules import (
    AVAILABLE,
    BUILTIN,
    IMPOSSIBLE,
    LOADED,
    MISSING,
    NOT_READY,
    READY,
    UNKNOWN,
    IpsetTool,
)
from tests.cli_helpers import kpctl

GOOD_IPSET = IpsetTool(present=True, version="7.17", protocol=7)


def make_tree(root: Path, release: str, *, proc_modules: list[str] | None, builtin: list[str] = (),
              dep: list[str] = (), config: dict[str, str] | None = None, ip_vs_proc: bool = False,
              genl: bool = True) -> ModuleProbe:
    """A fake node: /proc, /lib/modules/RELEASE and /boot under ``root``."""
    proc = root / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/osrelease").write_text(release + "\n")
    if proc_modules is not None:
        (proc / "modules").write_text("".join(f"{m} 16384 0 - Live 0x0000000000000000\n" for m in proc_modules))
    if ip_vs_proc:
        (proc / "net").mkdir()
        (proc / "net/ip_vs").write_text("IP Virtual Server version 1.2.1 (size=4096)\n")
    moddir = root / "lib/modules" / release
    moddir.mkdir(parents=True)
    (moddir / "modules.builtin").write_text("".join(f"kernel/net/{m}.ko\n" for m in builtin))
    (moddir / "modules.dep").write_text("".join(f"kernel/net/netfilter/{m}: \n" for m in dep))
    (root / "boot").mkdir()
    if config is not None:
        (root / "boot" / f"config-{release}").write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    return ModuleProbe(proc=str(proc), lib_modules=str(root / "lib/modules"), boot=str(root / "boot"),
                       genl_probe=lambda: genl, ipset_probe=lambda: GOOD_IPSET)


def states(report: object) -> dict[str, str]:
    return {m.name: m.state for m in report.modules}  # type: ignore[attr-defined]


def assess(probe: ModuleProbe, schedulers: list[tuple[str, str]] = ()):  # type: ignore[assignment]
    facts = probe.facts()
    return core.assess(facts, core.required_modules(core.parse_kernel_version(facts.release), schedulers))


@pytest.mark.parametrize("release,conntrack", [
    ("4.14.0-1", "nf_conntrack_ipv4"),
    ("4.18.0-305.el8.x86_64", "nf_conntrack_ipv4"),
    ("4.19", "nf_conntrack"),
    ("5.4.0-150-generic", "nf_conntrack"),
    ("6.1.0-56-amd64", "nf_conntrack"),
])
def test_conntrack_module_name_follows_kernel_version(release: str, conntrack: str) -> None:
    names = [m.name for m in core.required_modules(core.parse_kernel_version(release))]
    assert names == ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", conntrack]


def test_scheduler_module_added_once() -> None:
    names = [m.name for m in core.required_modules((6, 1, 0), [("lc", "--scheduler"), ("rr", "x"), ("lc", "y")])]
    assert names == ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack", "ip_vs_lc"]


def test_unknown_scheduler_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="'fastest'"):
        core.required_modules((6, 1, 0), [("fastest", "--scheduler")])


def test_module_names_from_paths() -> None:
    assert core.module_name("kernel/net/netfilter/ipvs/ip_vs.ko.xz") == "ip_vs"
    assert core.module_name("kernel/drivers/hid/hid-generic.ko") == "hid_generic"
    assert core.parse_modules_dep("kernel/a/ip_vs_rr.ko.zst: kernel/a/ip_vs.ko.zst\n") == {"ip_vs_rr"}


def test_kernel_414_states_from_each_source(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "4.14.0-1", proc_modules=["ip_vs", "ip_vs_rr", "nf_defrag_ipv4"],
                      builtin=["netfilter/nf_conntrack_ipv4"], dep=["ipvs/ip_vs_wrr.ko.xz"])
    report = assess(probe)
    assert states(report) == {"ip_vs": LOADED, "ip_vs_rr": LOADED, "ip_vs_wrr": AVAILABLE,
                              "ip_vs_sh": MISSING, "nf_conntrack_ipv4": BUILTIN}
    assert report.verdict == NOT_READY
    assert core.modules_to_load(report) == ["ip_vs_wrr"]
    assert any("ip_vs_sh" in line for line in report.advice)


def test_kernel_419_needs_nf_conntrack_not_ipv4(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "4.19.0", proc_modules=["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"])
    report = assess(probe)
    assert "nf_conntrack_ipv4" not in states(report)
    assert report.verdict == READY


def test_builtin_via_modules_builtin_exact_name(tmp_path: Path) -> None:
    # kube-proxy's substring match took ip_vs_sh.ko for ip_vs; an exact name match must not.
    probe = make_tree(tmp_path, "5.10.0", proc_modules=[], builtin=["netfilter/ipvs/ip_vs_sh"], genl=False)
    assert states(assess(probe))["ip_vs"] == MISSING
    assert states(assess(probe))["ip_vs_sh"] == BUILTIN


def test_builtin_via_boot_config_without_module_support(tmp_path: Path) -> None:
    config = {"CONFIG_IP_VS": "y", "CONFIG_IP_VS_RR": "y", "CONFIG_IP_VS_WRR": "y", "CONFIG_IP_VS_SH": "y",
              "CONFIG_NF_CONNTRACK": "y"}
    probe = make_tree(tmp_path, "6.1.0", proc_modules=None, config=config, ip_vs_proc=True)
    report = assess(probe)
    assert not report.modules_supported
    assert set(states(report).values()) == {BUILTIN}
    assert report.verdict == READY
    assert any("/boot/config-6.1.0" in m.evidence for m in report.modules)


def test_no_module_support_and_no_ipvs_is_impossible(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "6.18.0", proc_modules=None, genl=False)
    report = assess(probe)
    assert states(report)["ip_vs"] == MISSING
    assert states(report)["ip_vs_rr"] == UNKNOWN
    assert report.verdict == IMPOSSIBLE


def test_no_module_support_ipvs_seen_by_genetlink(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "6.1.0", proc_modules=None, config={"CONFIG_IP_VS_RR": "m"})
    report = assess(probe)
    assert states(report)["ip_vs"] == BUILTIN
    assert states(report)["ip_vs_rr"] == MISSING  # =m is useless without module support
    assert report.verdict == NOT_READY


def test_module_in_neither_place_with_modules_is_impossible_only_for_ip_vs(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "6.1.0", proc_modules=["nf_conntrack"], dep=["ipvs/ip_vs_rr.ko"], genl=False)
    assert assess(probe).verdict == IMPOSSIBLE


def test_old_or_absent_ipset_is_not_ready(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "4.19.0", proc_modules=["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"])
    probe.ipset_probe = lambda: core.parse_ipset_version("ipset v5.4, protocol version: 5")
    assert assess(probe).verdict == NOT_READY
    probe.ipset_probe = lambda: IpsetTool(present=False, error="no ipset program in PATH")
    assert assess(probe).verdict == NOT_READY


def test_parse_ipset_version() -> None:
    tool = core.parse_ipset_version("ipset v7.17, protocol version: 7\n")
    assert (tool.present, tool.version, tool.protocol) == (True, "7.17", 7)


def test_scheduler_from_kube_proxy_config() -> None:
    text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  scheduler: lc\n"
    assert core.scheduler_from_config(text) == "lc"
    assert core.scheduler_from_config("kind: KubeProxyConfiguration\nipvs:\n  scheduler: \"\"\n") is None
    with pytest.raises(InvalidInput, match="KubeletConfiguration"):
        core.scheduler_from_config("kind: KubeletConfiguration\n")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        core.scheduler_from_config("ipvs: [\n")


# --- the command, on prepared trees -----------------------------------------------------------

@pytest.fixture
def fake_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A 6.1 node where ip_vs is loaded and the rest sits in /lib/modules; modprobe is a script
    that appends to the fake /proc/modules, as the kernel would."""

    def build(proc_modules: list[str] | None = ("ip_vs",)):  # type: ignore[assignment]
        probe = make_tree(tmp_path, "6.1.0-56-amd64", proc_modules=list(proc_modules) if proc_modules is not None else None,
                          dep=["ipvs/ip_vs_rr.ko.xz", "ipvs/ip_vs_wrr.ko.xz", "ipvs/ip_vs_sh.ko.xz",
                               "ipvs/ip_vs_lc.ko.xz", "nf_conntrack.ko.xz"])
        script = tmp_path / "fake-modprobe"
        script.write_text(f"#!/bin/sh\nshift\nprintf '%s 1 0 - Live 0x0\\n' \"$1\" >> {tmp_path}/proc/modules\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
        factory = functools.partial(ModuleProbe, proc=probe.proc, lib_modules=probe.lib_modules, boot=probe.boot,
                                    genl_probe=lambda: True, ipset_probe=lambda: GOOD_IPSET,
                                    modprobe_command=str(script))
        monkeypatch.setattr("kpctl.backends.modules.ModuleProbe", factory)
        monkeypatch.setattr(os, "geteuid", lambda: 0)
        return tmp_path

    return build


def test_cli_check_reports_available_and_exits_1(fake_node) -> None:  # type: ignore[no-untyped-def]
    fake_node()
    outcome = kpctl("modules", "check", "-o", "plain")
    assert outcome.exit_code == 1
    lines = [line.split("\t") for line in outcome.stdout.splitlines()]
    assert ["module", "ip_vs", "loaded"] == lines[1][:3]
    assert ["module", "ip_vs_rr", "available"] == lines[2][:3]
    verdict = next(line for line in lines if line[0] == "verdict")
    assert verdict == ["verdict", "ipvs-mode", "not-ready", "not loaded: ip_vs_rr ip_vs_wrr ip_vs_sh nf_conntrack"]
    assert any(line[0] == "advice" and "--load" in line[3] for line in lines)


def test_cli_load_runs_modprobe_and_reports_change(fake_node) -> None:  # type: ignore[no-untyped-def]
    root = fake_node()
    outcome = kpctl("modules", "check", "--load", "--scheduler", "lc", "-o", "json")
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    import json

    report = json.loads(outcome.stdout)
    assert report["verdict"] == "ready"
    changed = {m["name"]: m["changed"] for m in report["modules"]}
    assert changed["ip_vs"] == ""
    assert changed["ip_vs_lc"] == "loaded by --load"
    loaded = (root / "proc/modules").read_text()
    assert "ip_vs_lc" in loaded and "nf_conntrack" in loaded


def test_cli_config_scheduler(fake_node, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fake_node()
    config = tmp_path / "kube-proxy.yaml"
    config.write_text("kind: KubeProxyConfiguration\nipvs:\n  scheduler: wlc\n")
    outcome = kpctl("modules", "check", "--config", str(config), "-o", "json")
    assert '"ip_vs_wlc"' in outcome.stdout
    assert outcome.exit_code == 1  # ip_vs_wlc has no module file in this tree


def test_cli_without_module_support_exits_6(fake_node, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    fake_node(proc_modules=None)
    import kpctl.backends.modules as backend

    monkeypatch.setattr(backend, "ModuleProbe", functools.partial(backend.ModuleProbe, genl_probe=lambda: False))
    outcome = kpctl("modules", "check", "-o", "plain")
    assert outcome.exit_code == 6
    assert "unsupported" in outcome.stdout and "impossible" in outcome.stdout


def test_cli_bad_scheduler_is_usage_error(fake_node) -> None:  # type: ignore[no-untyped-def]
    fake_node()
    outcome = kpctl("modules", "check", "--scheduler", "nope")
    assert outcome.exit_code == 2
    assert "'nope'" in outcome.stderr


def test_cli_load_needs_root(fake_node, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    root = fake_node()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    before = (root / "proc/modules").read_text()
    outcome = kpctl("modules", "check", "--load")
    assert outcome.exit_code == 5
    assert (root / "proc/modules").read_text() == before


def test_ipvs_genetlink_silent_while_loaded_is_not_ready(tmp_path: Path) -> None:
    probe = make_tree(tmp_path, "6.1.0", proc_modules=["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"],
                      genl=False)
    report = assess(probe)
    assert report.verdict == NOT_READY
    assert any("generic netlink" in line for line in report.advice)


def test_cli_refuses_snapshot(tmp_path: Path) -> None:
    snap = tmp_path / "s.json"
    snap.write_text('{"format": "kpctl-snapshot", "version": 1}')
    outcome = kpctl("--snapshot", str(snap), "modules", "check")
    assert outcome.exit_code == 2 and "running kernel" in outcome.stderr
