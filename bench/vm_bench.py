"""VM-side benchmarks (run inside the VM by bench/vm.sh): IPVS list and restore vs ipvsadm.

Order: empty-table start-up, restore 10k × 5 (kpctl ipvs restore vs ipvsadm -R, each timed run
into an empty table in a fresh network namespace), list at 10k × 5, then list at 1k × 5, then
apply of the 10k × 5 table with 1% of its services changed, then (proc) reads of the 10k × 5 table
from /proc/net/ip_vs beside `ipvsadm -Ln` and `kpctl ipvs list -o ipvsadm`, then (conns) the
connection table with CONNS entries, `kpctl ipvs connections` beside `ipvsadm -Lnc`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import HEADER, compare

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv-bench" / "bin"  # a wheel install of this checkout (bench/install.sh)
# (or its copy in the VM's memory, and the interpreter's: bench/vm_local.sh)
PY = os.environ.get("BENCH_PY") or str(BIN / "python")
KPCTL = os.environ.get("BENCH_KPCTL") or str(BIN / "kpctl")
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
HEAVY_RUNS = int(os.environ.get("BENCH_HEAVY_RUNS", "3"))
CLEAR = ["ipvsadm", "-C"]
FRESH_NS_LINK = "/tmp/kpctl-bench-netns"  # -> the newest of kpctl-bench-1, -2, … (made by FRESH_NS)
FRESH_NS = ["sh", "-c", "n=$(( $(cat /tmp/kpctl-bench-netns.n 2>/dev/null || echo 0) + 1 )); "
            "echo $n > /tmp/kpctl-bench-netns.n; ip netns add kpctl-bench-$n && "
            # lo up: until a namespace has a local route its routing tables do not exist, and IPVS refuses
            # every real server (EINVAL: it asks them for the address's type)
            "ip -n kpctl-bench-$n link set lo up && "
            f"ln -sfn /run/netns/kpctl-bench-$n {FRESH_NS_LINK}"]
BIG = int(os.environ.get("BENCH_IPVS_BIG", "10000"))  # services (× 5 servers) of the big table
SMALL = int(os.environ.get("BENCH_IPVS_SMALL", "1000"))
FLOOR = os.environ.get("BENCH_FLOOR", "1") != "0"  # also time `python -c pass` against ipvsadm -Ln
CONNS = int(os.environ.get("BENCH_CONNS", "50000"))  # IPVS connections made for the conns section


def load(path: str) -> None:
    subprocess.run(CLEAR, check=True)
    with open(path, "rb") as handle:
        subprocess.run(["ipvsadm", "-R"], stdin=handle, check=True)


def lists(label: str, runs: int, warmup: bool, floor: bool = False, target: float = 1.5) -> None:
    compare(f"ipvs list {label} -o plain / ipvsadm -Ln", [KPCTL, "ipvs", "list", "-o", "plain"],
            ["ipvsadm", "-Ln"], runs, target=target, warmup=warmup)
    compare(f"ipvs list {label} -o ipvsadm / ipvsadm -Ln", [KPCTL, "ipvs", "list", "-o", "ipvsadm"],
            ["ipvsadm", "-Ln"], runs, target=target, warmup=warmup)
    if floor and FLOOR:  # what a Python program pays before its first line: the bound of small tables
        compare(f"python -c pass / ipvsadm -Ln {label}", [PY, "-c", "pass"], ["ipvsadm", "-Ln"], runs,
                note="(informational: the interpreter's start)", warmup=warmup)


def main() -> None:
    only = set(sys.argv[1:]) or {"startup", "restore", "list", "apply", "proc", "conns"}
    where = "copies in the VM's memory" if os.environ.get("BENCH_KPCTL") else "the host's 9p root"
    print(f"vm: {os.uname().release}, {os.cpu_count()} cpus, {RUNS} runs ({HEAVY_RUNS} for 10k); "
          f"the interpreter, kpctl and ipvsadm run from {where}")
    print(HEADER)
    with tempfile.TemporaryDirectory(prefix="kpctl-bench.") as tmp:
        big, small = os.path.join(tmp, "10k.ipvs"), os.path.join(tmp, "1k.ipvs")
        for path, count in ((big, str(BIG)), (small, str(SMALL))):
            with open(path, "w") as out:
                subprocess.run([PY, str(ROOT / "bench" / "gen_ipvs.py"), count, "5"], stdout=out, check=True)
        subprocess.run(CLEAR, check=True)
        if "startup" in only:
            compare("ipvs list, empty table / python -c 'import pyroute2'", [KPCTL, "ipvs", "list", "-o", "plain"],
                    [PY, "-c", "import pyroute2"], RUNS, target=1.3)
            compare("ipvs list, empty table / ipvsadm -Ln", [KPCTL, "ipvs", "list", "-o", "plain"],
                    ["ipvsadm", "-Ln"], RUNS, note="(informational)")
        if "restore" in only:
            # Every timed restore fills an empty table in a network namespace of its own. Not `ipvsadm -C`
            # between runs: the kernel keeps the deleted servers on its trash list for a minute or two and
            # every add scans that list, which cost either tool minutes. The namespaces are left behind
            # (destroying one frees 60,000 entries in the background while the next run is timed).
            enter = ["nsenter", f"--net={FRESH_NS_LINK}"]
            compare(f"ipvs restore {BIG // 1000}k × 5 / ipvsadm -R", [*enter, KPCTL, "ipvs", "restore"],
                    [*enter, "ipvsadm", "-R"], HEAVY_RUNS, reset=FRESH_NS, stdin=big, target=1.0, warmup=False)
        if "list" in only:
            load(big)
            lists(f"{BIG // 1000}k × 5", HEAVY_RUNS, False, target=1.0)  # issue 11: the big table at most 1.0x
            load(small)
            lists(f"{SMALL // 1000}k × 5" if SMALL >= 1000 else f"{SMALL} × 5", RUNS, True, floor=True)
        if "apply" in only:
            apply_change(big, tmp)
        if "proc" in only:
            load(big)
            proc_read(f"{BIG // 1000}k × 5")
        if "conns" in only:
            connections(tmp)
        subprocess.run(CLEAR, check=True)


# The whole table in one read of /proc/net/ip_vs (hex addresses; per service protocol, address, port,
# scheduler, "ops", persistence; per server address, port, forwarding method, weight, active and
# inactive connections: no scheduler flags, persistence engine, thresholds, tunnels or counters),
# against the one GET_SERVICE and 10,000 GET_DEST dumps of `ipvsadm -Ln` and kpctl.
_PROC_SPLIT = ("import sys; lines = open('/proc/net/ip_vs').read().splitlines(); "
               "sys.stdout.write(f'{len(lines)}\\n')")


def proc_read(label: str) -> None:
    compare(f"cat /proc/net/ip_vs {label} / ipvsadm -Ln", ["cat", "/proc/net/ip_vs"], ["ipvsadm", "-Ln"],
            HEAVY_RUNS, note="(informational: the kernel's text of the table)")
    compare(f"python: read + split /proc/net/ip_vs {label} / ipvsadm -Ln", [PY, "-c", _PROC_SPLIT],
            ["ipvsadm", "-Ln"], HEAVY_RUNS, note="(informational)")
    compare(f"ipvs list {label} -o ipvsadm / ipvsadm -Ln", [KPCTL, "ipvs", "list", "-o", "ipvsadm"],
            ["ipvsadm", "-Ln"], HEAVY_RUNS, target=1.0, warmup=False)


def apply_change(big: str, tmp: str) -> None:
    """`kpctl ipvs apply` of the big table with 1% of its services changed, in a fresh namespace.

    Between runs the table is put back by `kpctl ipvs apply` of the base file (untimed; it changes
    only what the timed run changed).  The reference is `ipvsadm -Sn`: reading the table, which an
    apply cannot avoid.  The operations reaching the kernel are counted from `--dry-run`.
    """
    changed, undo = os.path.join(tmp, "changed.ipvs"), os.path.join(tmp, "undo.ipvs")
    subprocess.run([PY, str(ROOT / "bench" / "gen_ipvs_change.py"), big, "1", changed, undo], check=True)
    subprocess.run(FRESH_NS, check=True)
    enter = ["nsenter", f"--net={FRESH_NS_LINK}"]
    with open(big, "rb") as handle:
        subprocess.run([*enter, "ipvsadm", "-R"], stdin=handle, check=True)
    planned = subprocess.run([*enter, KPCTL, "ipvs", "apply", "--dry-run", changed], capture_output=True,
                             text=True, check=True).stdout.splitlines()
    print(f"  apply {BIG // 1000}k × 5, 1% changed: {len(planned)} operations to the kernel "
          f"({sum(1 for line in open(big))} lines in the file)", flush=True)
    compare(f"ipvs apply {BIG // 1000}k × 5, 1% changed / ipvsadm -Sn", [*enter, KPCTL, "ipvs", "apply", changed],
            [*enter, "ipvsadm", "-Sn"], HEAVY_RUNS, reset=[*enter, KPCTL, "ipvs", "apply", big],
            note="(informational: the read an apply needs)", warmup=False)


# UDP datagrams from this node to 1,000 UDP services on one VIP (bound on a dummy link, as
# kube-ipvs0 holds a ClusterIP), each from a port of its own: IPVS makes a connection for each
# (kept for the UDP timeout, 5 minutes), masqueraded to real servers behind the same dummy.
_SEND = """
import socket, sys
count, vip = int(sys.argv[1]), sys.argv[2]
for n in range(count):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("10.99.%d.%d" % (n // 50000, 1 + n // 250 % 200), 0))
    sock.sendto(b"x", (vip, 1000 + n % 1000))
    sock.close()
"""


def connections(tmp: str) -> None:
    rules = os.path.join(tmp, "udp.ipvs")
    with open(rules, "w") as out:
        for port in range(1000, 2000):
            out.write(f"-A -u 10.100.0.1:{port} -s rr\n")
            out.writelines(f"-a -u 10.100.0.1:{port} -r 172.31.{j}.{port % 250 + 1}:8080 -m -w 1\n" for j in range(5))
    load(rules)
    subprocess.run(["ipvsadm", "--set", "0", "0", "3600"], check=True)  # UDP connections kept an hour: the runs outlast 5 minutes
    batch = ["link add kpctl-conns type dummy", "link set kpctl-conns up", "addr add 10.100.0.1/32 dev kpctl-conns",
             "route add 172.31.0.0/16 dev kpctl-conns"]  # the clients' addresses, then, and the servers' route
    batch += [f"addr add 10.99.{n // 200}.{1 + n % 200}/32 dev kpctl-conns" for n in range(2 * 200)]
    subprocess.run(["ip", "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True)
    subprocess.run([PY, "-c", _SEND, str(CONNS), "10.100.0.1"], check=True)
    made = sum(1 for line in open("/proc/net/ip_vs_conn")) - 1
    print(f"  conns: {made} IPVS connections from {CONNS} datagrams", flush=True)
    label = f"{made // 1000}k"
    compare(f"ipvs connections {label} -o ipvsadm / ipvsadm -Lnc", [KPCTL, "ipvs", "connections", "-o", "ipvsadm"],
            ["ipvsadm", "-Lnc"], HEAVY_RUNS, target=2.0, warmup=False)
    compare(f"ipvs connections {label} --server X / ipvsadm -Lnc", [KPCTL, "ipvs", "connections", "--server",
            "172.31.0.1:8080", "-o", "plain"], ["ipvsadm", "-Lnc"], HEAVY_RUNS, note="(informational)", warmup=False)
    left = sum(1 for line in open("/proc/net/ip_vs_conn")) - 1
    print(f"  conns: {left} of them left after the runs", flush=True)
    subprocess.run(["ip", "link", "del", "kpctl-conns"], check=True)
    subprocess.run(["ipvsadm", "--set", "0", "0", "300"], check=True)


if __name__ == "__main__":
    main()
