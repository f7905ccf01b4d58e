"""Host-side benchmarks (run by bench/run.sh inside a network namespace made by `unshare -n`).

start-up, ipset restore/list of a 100,000-member set, trace on 10k-service snapshots, and the
live iptables listings a snapshot cannot hold: a 10k-service node's rules with counters, and as
IPv6 (a dual-stack node's other half).
Every line: kpctl median, reference median (same run, alternating), ratio, peak RSS of each.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import HEADER, compare

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv-bench" / "bin"  # a wheel install of this checkout (bench/install.sh)
PY = str(BIN / "python")
KPCTL = str(BIN / "kpctl")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SET = "KPCTL-BENCH"


def gen(*args: str, stdout: str | None = None) -> str:
    import subprocess
    out = subprocess.run([PY, *args], check=True, capture_output=True, text=True).stdout
    if stdout:
        Path(stdout).write_text(out)
    return out.strip()


def startup() -> None:
    snap = str(ROOT / "examples" / "iptables-node.json")
    n = RUNS * 3
    compare("start-up: kpctl --help / python -c pass", [KPCTL, "--help"], [PY, "-c", "pass"], n,
            note="(informational)")
    compare("start-up: kpctl --help / import click", [KPCTL, "--help"], [PY, "-c", "import click"], n, target=1.3)
    compare("start-up: completion bash / import click", [KPCTL, "completion", "bash"],
            [PY, "-c", "import click"], n, target=1.3)
    compare("start-up: --snapshot (small) trace / import click",
            [KPCTL, "--snapshot", snap, "trace", "10.254.0.1:443"], [PY, "-c", "import click"], n, target=1.3)
    compare("start-up: --snapshot (small) ipvs list / import click",
            [KPCTL, "--snapshot", str(ROOT / "examples" / "seed-ipvs-node.json"), "ipvs", "list", "-o", "plain"],
            [PY, "-c", "import click"], n, target=1.3)
    compare("start-up: python -c 'import pyroute2' / pass", [PY, "-c", "import pyroute2"], [PY, "-c", "pass"], n,
            note="(informational: the netlink floor)")


def startup_pythons() -> None:
    """The start-up lines on every other declared Python (.venv-3.X, from scripts/setup.sh --pythons),
    and of the single-file build (dist/kpctl.pyz, scripts/build-pyz.sh) where it is built."""
    seed = str(ROOT / "examples" / "seed-ipvs-node.json")
    pyz = ROOT / "dist" / "kpctl.pyz"
    n = RUNS * 3
    for venv in sorted(ROOT.glob(".venv-3.*"), key=lambda p: int(p.name.rsplit(".", 1)[1])):
        version, py, kp = venv.name[len(".venv-"):], str(venv / "bin" / "python"), str(venv / "bin" / "kpctl")
        click = [py, "-c", "import click"]
        compare(f"start-up {version}: kpctl --help / import click", [kp, "--help"], click, n)
        compare(f"start-up {version}: --snapshot (seed) trace / import click",
                [kp, "--snapshot", seed, "trace", "10.254.0.1:443"], click, n)
        if pyz.exists():
            compare(f"start-up {version}: python -I kpctl.pyz --help / import click",
                    [py, "-I", str(pyz), "--help"], click, n, note="(single file)")


def ipset(tmp: str) -> None:
    restore = os.path.join(tmp, "set.restore")
    gen(str(ROOT / "bench" / "gen_ipset.py"), "100000", SET, stdout=restore)
    destroy = ["sh", "-c", f"ipset destroy {SET} 2>/dev/null; true"]
    compare("ipset restore 100k hash:ip,port", [KPCTL, "ipset", "restore"], ["ipset", "restore"], RUNS,
            reset=destroy, stdin=restore, target=1.0)
    import subprocess
    subprocess.run(destroy, check=True)
    subprocess.run(["ipset", "restore", "-f", restore], check=True)
    compare("ipset list 100k -o ipset / ipset list", [KPCTL, "ipset", "list", SET, "-o", "ipset"],
            ["ipset", "list", SET], RUNS, note="(no target in issue 6)")
    compare("ipset list 100k -o plain / ipset list", [KPCTL, "ipset", "list", SET, "-o", "plain"],
            ["ipset", "list", SET], RUNS, note="(no target in issue 6)")
    subprocess.run(destroy, check=True)


def trace(tmp: str) -> None:
    ipt, rules = os.path.join(tmp, "ipt.json"), os.path.join(tmp, "ipt.rules")
    ipvs = os.path.join(tmp, "ipvs.json")
    target = gen(str(ROOT / "bench" / "gen_snapshot.py"), "iptables", "10000", "3", ipt, rules)
    gen(str(ROOT / "bench" / "gen_snapshot.py"), "ipvs", "10000", "3", ipvs)
    floor = ["iptables-restore", "--test", rules]
    r = compare("trace iptables-mode 10k svc × 3 (110k rules)", [KPCTL, "--snapshot", ipt, "trace", target], floor,
                RUNS, note="target: ≤ 1 s absolute")
    print(f"    → kpctl trace {sorted(r.kpctl)[len(r.kpctl) // 2]:.2f} s: "
          f"{'met' if sorted(r.kpctl)[len(r.kpctl) // 2] <= 1.0 else 'NOT met'} (≤ 1 s)")
    r = compare("trace ipvs-mode 10k svc × 3", [KPCTL, "--snapshot", ipvs, "trace", target], floor, RUNS,
                note="target: ≤ 1 s absolute; ref = the iptables-mode rules")
    print(f"    → kpctl trace {sorted(r.kpctl)[len(r.kpctl) // 2]:.2f} s: "
          f"{'met' if sorted(r.kpctl)[len(r.kpctl) // 2] <= 1.0 else 'NOT met'} (≤ 1 s)")


def _counted(rules: str) -> str:
    """The rules with counters, as `iptables-save -c` writes them."""
    return "".join(f"[{n}:{n * 60}] {line}\n" if line.startswith("-A ") else f"{line}\n"
                   for n, line in enumerate(rules.splitlines()))


def _as_ipv6(rules: str) -> str:
    """The rules with each IPv4 address an IPv6 one (fd00::/96 + the address), as ip6tables-save
    writes them: every -s/-d with its prefix, a DNAT destination in brackets, ICMPv6 rejects,
    recent's mask an IPv6 one."""
    import re
    import socket

    def v6(address: str) -> str:
        return socket.inet_ntop(socket.AF_INET6, bytes.fromhex("fd00" + "00" * 10) + socket.inet_aton(address))

    def one(found: re.Match[str]) -> str:
        address, prefix, port = found.groups()
        if port is not None:
            return f"[{v6(address)}]:{port}"
        return f"{v6(address)}/{96 + int(prefix if prefix is not None else 32)}"

    rules = rules.replace("--reject-with icmp-port-unreachable", "--reject-with icmp6-port-unreachable").replace(
        "--mask 255.255.255.255", "--mask " + ":".join(["ffff"] * 8))  # (recent's whole-address mask)
    return re.sub(r"(?<![\d.])(\d+\.\d+\.\d+\.\d+)(?:/(\d+)|:(\d+))?", one, rules)


def iptables(tmp: str) -> None:
    import subprocess

    ipt, rules = os.path.join(tmp, "ipt.json"), os.path.join(tmp, "ipt.rules")
    gen(str(ROOT / "bench" / "gen_snapshot.py"), "iptables", "10000", "3", ipt, rules)
    text = Path(rules).read_text()
    subprocess.run(["iptables-legacy-restore", "-c"], input=_counted(text), text=True, check=True)
    compare("iptables list --counters 110k rules / iptables-legacy-save -c",
            [KPCTL, "iptables", "list", "--family", "ipv4", "--backend", "legacy", "--counters", "-o", "plain"],
            ["iptables-legacy-save", "-c"], RUNS, note="(live; snapshots hold no counters)")
    subprocess.run(["ip6tables-legacy-restore"], input=_as_ipv6(text), text=True, check=True)
    compare("iptables list --family ipv6 110k rules / ip6tables-legacy-save",
            [KPCTL, "iptables", "list", "--family", "ipv6", "--backend", "legacy", "-o", "plain"],
            ["ip6tables-legacy-save"], RUNS, note="(live; a dual-stack node's IPv6 half)")


def main() -> None:
    only = set(sys.argv[1:]) or {"startup", "startup-pythons", "ipset", "trace", "iptables"}
    print(f"host: {os.uname().release}, {os.cpu_count()} cpus, {RUNS} runs; netns: {os.readlink('/proc/self/ns/net')}")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="kpctl-bench.") as tmp:
        if "startup" in only:
            startup()
        if "startup-pythons" in only:
            startup_pythons()
        if "ipset" in only:
            ipset(tmp)
        if "trace" in only:
            trace(tmp)
        if "iptables" in only:
            iptables(tmp)


if __name__ == "__main__":
    main()
