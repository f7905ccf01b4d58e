"""The issue-7 options on the real commands, on the seed snapshot: `ipvs list --watch`,
`--services` on ipvs list / vip list / trace / doctor, and their bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_helpers import kpctl

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed-ipvs-node.json")
FIXTURE = str(Path(__file__).parent / "fixtures" / "k8s" / "services.json")


def seed(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return kpctl("--snapshot", SEED, *args, input=input)


def test_watch_repeats_the_listing_count_times() -> None:
    once = seed("ipvs", "list", "-o", "plain").stdout
    out = seed("ipvs", "list", "--watch", "0.1", "--count", "3", "-o", "plain")
    assert out.exit_code == 0, out.stderr
    assert out.stdout == once * 3


def test_watch_default_interval_and_json_stream() -> None:
    out = seed("ipvs", "list", "10.254.0.1:443", "--watch", "--count", "1", "-o", "json")
    assert out.exit_code == 0
    assert json.loads(out.stdout)["services"][0]["port"] == 443


def test_bad_watch_interval_is_usage_error() -> None:
    out = seed("ipvs", "list", "--watch", "0", "-o", "plain")
    assert out.exit_code == 2 and "'0'" in out.stderr and out.stdout == ""


def test_ipvs_list_with_services_file_and_stdin() -> None:
    from_file = seed("ipvs", "list", "--services", FIXTURE, "-o", "plain")
    from_stdin = seed("ipvs", "list", "--services", "-", "-o", "plain", input=Path(FIXTURE).read_text())
    assert from_file.exit_code == 0 and from_file.stdout == from_stdin.stdout
    assert "kube-system/kube-dns:dns\trr\t\t172.30.78.2:53\tkube-system/coredns-5d78c9869d-x7k2p" in from_file.stdout


def test_compat_formats_ignore_the_names() -> None:
    plain = seed("ipvs", "list", "-o", "ipvsadm").stdout
    assert seed("ipvs", "list", "--services", FIXTURE, "-o", "ipvsadm").stdout == plain


def test_services_and_kubectl_exclude_each_other() -> None:
    out = seed("ipvs", "list", "--services", FIXTURE, "--kubectl")
    assert out.exit_code == 2 and "exclude" in out.stderr


def test_missing_services_file_is_not_found() -> None:
    out = seed("vip", "list", "--services", "/nonexistent/svc.json")
    assert out.exit_code == 3 and "/nonexistent/svc.json" in out.stderr


def test_vip_list_and_trace_name_the_service() -> None:
    vips = seed("vip", "list", "--services", FIXTURE, "-o", "json")
    assert vips.exit_code == 0
    assert json.loads(vips.stdout)[0]["k8s_services"] == ["default/kubernetes:https"]
    traced = seed("trace", "10.254.0.2:53/udp", "--services", FIXTURE, "-o", "plain")
    assert traced.exit_code == 0
    assert traced.stdout.startswith("k8s: 10.254.0.2:53/udp is kube-system/kube-dns:dns\n")


def test_doctor_runs_the_k8s_checks_with_services() -> None:
    out = seed("doctor", "--services", FIXTURE, "-o", "json")
    assert out.exit_code == 1  # the seed node lacks an endpoint and the cart service
    report = json.loads(out.stdout)
    assert "k8s-endpoint-missing" in report["checks"] and "vip-missing" in report["checks"]
    assert {f["check"] for f in report["findings"]} == {"k8s-endpoint-missing", "k8s-service-missing"}
    only = seed("doctor", "--services", FIXTURE, "--check", "k8s-server-stale", "-o", "json")
    assert only.exit_code == 0 and json.loads(only.stdout)["checks"] == ["k8s-server-stale"]


def test_doctor_k8s_check_without_services_is_usage_error() -> None:
    out = seed("doctor", "--check", "k8s-server-stale")
    assert out.exit_code == 2 and "--services" in out.stderr


def test_doctor_list_checks_with_services_lists_the_k8s_checks() -> None:
    out = seed("doctor", "--list-checks", "--services", FIXTURE, "-o", "plain", "--no-headers")
    ids = [line.split("\t")[0] for line in out.stdout.splitlines()]
    assert ids[-4:] == ["k8s-server-stale", "k8s-endpoint-missing", "k8s-service-missing", "k8s-weight0-ready"]


def test_watch_on_a_terminal_ends_with_130_on_ctrl_c() -> None:
    """The real program on a pseudo-terminal: a rich Live table, then SIGINT (Ctrl-C)."""
    import os
    import pty
    import select
    import signal
    import subprocess
    import sys
    import time

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "160", "LINES": "40"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "kpctl"), "--snapshot", SEED, "ipvs", "list",
                             "--rate", "--watch", "0.2"], stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True,
                            # as on a terminal: a shell's background job (a CI runner's, say) ignores SIGINT
                            # and its children inherit that
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while b"Every 0.2s: kpctl ipvs list --rate" not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            seen += os.read(master, 65536)
    os.killpg(proc.pid, signal.SIGINT)
    # Keep reading while it exits: a full pseudo-terminal would block its last writes (seen on a
    # loaded CI machine, where frames piled up between the marker and the signal).
    deadline = time.monotonic() + 60
    while True:
        try:
            if not select.select([master], [], [], 0.2)[0]:
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                continue
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    status = proc.wait(timeout=5)
    os.close(master)
    text = seen.decode(errors="replace")
    assert status == 130
    assert "Every 0.2s: kpctl ipvs list --rate" in text and "10.254.0.1:443/tcp" in text
    assert "Traceback" not in text and "error" not in text
    assert text.rstrip().endswith("\x1b[?25h")  # rich gave the cursor back
