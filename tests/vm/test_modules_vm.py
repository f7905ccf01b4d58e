"""`kpctl modules check` on the VM's real kernel: modules really get loaded by --load."""

from __future__ import annotations

import json
import os

from tests.cli_helpers import kpctl
from tests.vm.nodes import sh


def loaded_modules() -> set[str]:
    with open("/proc/modules", encoding="ascii") as handle:
        return {line.split()[0] for line in handle}


def test_check_reports_the_real_kernel() -> None:
    outcome = kpctl("modules", "check", "-o", "json")
    report = json.loads(outcome.stdout)
    assert report["kernel"] == os.uname().release
    assert report["modules_supported"] is True
    states = {m["name"]: m["state"] for m in report["modules"]}
    # Debian's 6.1: everything is a module; vm-tests.sh loaded the required set.
    assert states == {"ip_vs": "loaded", "ip_vs_rr": "loaded", "ip_vs_wrr": "loaded", "ip_vs_sh": "loaded",
                      "nf_conntrack": "loaded"}
    assert report["ipvs_genetlink"] is True and report["proc_net_ip_vs"] is True
    ipset_version = sh("ipset", "version").stdout
    assert report["ipset"]["version"] in ipset_version
    assert f"protocol version: {report['ipset']['protocol']}" in ipset_version
    assert report["verdict"] == "ready" and outcome.exit_code == 0


def test_load_really_loads_an_available_scheduler() -> None:
    sh("modprobe", "-r", "ip_vs_lc", check=False)
    assert "ip_vs_lc" not in loaded_modules()

    before = kpctl("modules", "check", "--scheduler", "lc", "-o", "json")
    assert before.exit_code == 1
    states = {m["name"]: m["state"] for m in json.loads(before.stdout)["modules"]}
    assert states["ip_vs_lc"] == "available"
    assert "ip_vs_lc" not in loaded_modules()  # checking alone changes nothing

    after = kpctl("modules", "check", "--load", "--scheduler", "lc", "-o", "json")
    assert after.exit_code == 0, after.stdout + after.stderr
    modules = {m["name"]: m for m in json.loads(after.stdout)["modules"]}
    assert modules["ip_vs_lc"]["state"] == "loaded"
    assert modules["ip_vs_lc"]["changed"] == "loaded by --load"
    assert modules["ip_vs"]["changed"] == ""  # already loaded: untouched
    assert "ip_vs_lc" in loaded_modules()


def test_config_file_scheduler_is_required(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sh("modprobe", "-r", "ip_vs_sed", check=False)
    config = tmp_path / "kube-proxy.yaml"
    config.write_text("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
                      "mode: ipvs\nipvs:\n  scheduler: sed\n")
    outcome = kpctl("modules", "check", "--config", str(config), "--load", "-o", "plain")
    assert outcome.exit_code == 0, outcome.stdout + outcome.stderr
    assert "module\tip_vs_sed\tloaded\tsed scheduler" in outcome.stdout
    assert "ip_vs_sed" in loaded_modules()
