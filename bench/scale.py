"""Every read command at 1,000 and 10,000 services: wall time, peak RSS, growth, reference reads.

    sudo unshare --net -- .venv/bin/python bench/scale.py [SERVICES_SMALL SERVICES_BIG]

(`bash bench/run.sh --scale` does exactly that after installing what it needs.)  For each mode
bench/gen_snapshot.py can write (every ``*_node`` generator there: ipvs, iptables, and nftables
once it has one), it generates a node of each size and times every read command on it with
``--snapshot``.  In the same run, the state is loaded into this (throwaway) network namespace
and the C tool's own read of it is timed: ``iptables-save``, ``ipset list``, ``nft -j list
ruleset`` (``ipvsadm -Ln`` needs IPVS, which only the VM has: bench/vm.sh).  Nothing outside the
namespace is touched; without root or a namespace the reference reads are left out.

Targets (issue 11): every command at the big size under 1 s and 200 MiB, growth (big/small wall)
at most 12, and within 2x of its reference read where one exists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from spawn import Spawner

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
LIMIT = os.environ.get("BENCH_TIMEOUT", "120")  # seconds per run: a command past it is reported, not waited for
KPCTL = os.environ.get("KPCTL") or str(next(p for p in (ROOT / ".venv-bench/bin/kpctl", ROOT / ".venv/bin/kpctl")
                                           if p.exists()))
ENDPOINTS = {"ipvs": 5, "iptables": 3}  # the sizes the issue measured; 3 for any other mode
CONNECTIONS_PER_SERVER = 4  # 200,000 IPVS connections at 10,000 services x 5 servers

_spec = importlib.util.spec_from_file_location("gen_snapshot", ROOT / "bench" / "gen_snapshot.py")
assert _spec and _spec.loader
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
MODES = tuple(name[:-len("_node")] for name in vars(gen) if name.endswith("_node") and callable(vars(gen)[name]))


def commands(service: str, pod: str, files: dict[str, str]) -> list[tuple[str, list[str], str | None]]:
    """(name, kpctl arguments, reference) for every read command; reference: a key of REFERENCES.
    ``files``: the node's own table as desired files (``rules``, ``json``, ``yaml``: see
    desired_files), what kubectl says of its services (``services``) and, of an IPVS node, a
    snapshot of its connections (``connections``)."""
    server = f"{pod}:8080"
    out: list[tuple[str, list[str], str | None]] = []
    for fmt in ("table", "wide", "plain", "json", "yaml", "ipvsadm", "save"):
        out.append((f"ipvs list -o {fmt}", ["ipvs", "list", "-o", fmt], None))
    out.append(("ipvs list --services", ["ipvs", "list", "--services", files["services"], "-o", "plain"], None))
    out.append(("ipvs list SERVICE", ["ipvs", "list", service, "-o", "plain"], None))
    for kind in ("rules", "json", "yaml"):
        out.append((f"ipvs diff ({kind} file)", ["ipvs", "diff", files[kind], "-o", "plain"], None))
    for fmt in ("plain", "json", "ipset", "save"):
        out.append((f"ipset list -o {fmt}", ["ipset", "list", "-o", fmt], "ipset"))
    out.append(("ipset find", ["ipset", "find", service, "-o", "plain"], "ipset"))
    for fmt in ("table", "wide", "plain", "json", "yaml", "save", "tree"):
        out.append((f"iptables list -o {fmt}", ["iptables", "list", "-o", fmt], "iptables"))
    for fmt in ("plain", "tree", "save"):
        out.append((f"iptables list --kube -o {fmt}", ["iptables", "list", "--kube", "-o", fmt], "iptables"))
    out.append(("iptables backends", ["iptables", "backends", "-o", "plain"], "iptables"))
    for fmt in ("table", "wide", "plain", "json", "yaml", "save", "tree"):
        out.append((f"nft list -o {fmt}", ["nft", "list", "-o", fmt], "nftables"))
    out += [
        ("services", ["services", "-o", "plain"], None),
        ("services -o json", ["services", "-o", "json"], None),
        ("services SERVICE", ["services", service, "-o", "plain"], None),
        ("services --services", ["services", "--services", files["services"], "-o", "plain"], None),
        ("vip list", ["vip", "list", "-o", "plain"], None),
        ("vip list --services", ["vip", "list", "--services", files["services"], "-o", "plain"], None),
        ("doctor", ["doctor", "-o", "json"], None),
        ("doctor --services", ["doctor", "--services", files["services"], "-o", "json"], None),
        ("trace (from node)", ["trace", service, "-o", "json"], None),
        ("trace (from pod)", ["trace", service, "--from", f"pod:{pod}", "-o", "json"], None),
        ("snapshot save", ["snapshot", "save", "-"], None),
    ]
    if "connections" in files:  # an IPVS node's connections: their own snapshot (the last --snapshot wins)
        out += [(f"ipvs connections {what}".rstrip(), ["--snapshot", files["connections"], "ipvs", "connections",
                                                       *args, "-o", fmt], None)
                for what, args, fmt in (("", [], "plain"), ("-o ipvsadm", [], "ipvsadm"), ("-o json", [], "json"),
                                        ("--server", ["--server", server], "plain"))]
    return out


def desired_files(snapshot: dict, snapshot_path: str, mode: str, size: int, tmp: str) -> dict[str, str]:
    """The node's IPVS table written as the desired files `ipvs diff` reads (`ipvs save -n`,
    `ipvs list -o json`, `-o yaml`; none where the node has no IPVS table: those diffs then say
    so), kubectl's JSON of its services and, of an IPVS node, a snapshot of its connections."""
    files = {}
    for kind, args in (("rules", ["ipvs", "save", "-n"]), ("json", ["ipvs", "list", "-o", "json"]),
                       ("yaml", ["ipvs", "list", "-o", "yaml"])):
        path = files[kind] = str(Path(tmp, f"{mode}-{size}-desired.{kind}"))
        with open(path, "wb") as out:
            if subprocess.run([KPCTL, "--snapshot", snapshot_path, *args], stdout=out, stderr=subprocess.DEVNULL,
                              check=False).returncode:
                os.unlink(path)
    files["services"] = str(Path(tmp, f"{mode}-{size}-kubectl.json"))
    Path(files["services"]).write_text(json.dumps(gen.kubectl_services(mode, size, ENDPOINTS.get(mode, 3))))
    if mode == "ipvs":
        files["connections"] = str(Path(tmp, f"{mode}-{size}-connections.json"))
        gen.write(gen.ipvs_connections(snapshot, CONNECTIONS_PER_SERVER), files["connections"])
    return files


def _interfaces() -> list[str]:
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]  # this process's namespace
    return [line.split(":", 1)[0].strip() for line in lines]


def load_state(snapshot: dict, tmp: str) -> dict[str, list[str]]:
    """Load the snapshot's sets and rules into this namespace; the reference read of each."""
    refs: dict[str, list[str]] = {}
    if os.geteuid() != 0 or _interfaces() != ["lo"]:
        print("  (reference reads need root in a network namespace of their own: unshare --net)", flush=True)
        return refs  # never load or flush anything in a namespace with real interfaces (the host's)

    def restore(name: str, cmd: list[str], text: str, read: list[str]) -> None:
        path = Path(tmp, name)
        path.write_text(text if text.endswith("\n") else text + "\n")
        with path.open("rb") as stdin:
            done = subprocess.run(cmd, stdin=stdin, capture_output=True, check=False)
        if done.returncode == 0:
            refs[name] = read
        else:
            print(f"  (no {name} reference: {' '.join(cmd)}: {done.stderr.decode()[-200:].strip()})", flush=True)

    clean = ("iptables-legacy -t nat -F 2>/dev/null; iptables-legacy -t filter -F 2>/dev/null; "
             "iptables-legacy -t nat -X 2>/dev/null; iptables-legacy -t filter -X 2>/dev/null; "
             "ipset destroy 2>/dev/null; nft flush ruleset 2>/dev/null; true")
    subprocess.run(["sh", "-c", clean], check=False)
    if snapshot.get("ipsets") and shutil.which("ipset"):
        restore("ipset", ["ipset", "restore", "-exist"], snapshot["ipsets"], ["ipset", "list"])
    rules = ((snapshot.get("iptables") or {}).get("ipv4") or {})
    text = rules.get("nft") or rules.get("legacy")
    # The reference is the faster backend's save: iptables-legacy-save (0.34 s for 110k rules here);
    # iptables-nft-save of the same rules takes ~10 s and is timed too, for information.
    if text and shutil.which("iptables-legacy-restore"):
        restore("iptables", ["iptables-legacy-restore"], text, ["iptables-legacy-save"])
    if text and shutil.which("iptables-nft-restore"):
        restore("iptables-nft" if "iptables" in refs else "iptables", ["iptables-nft-restore"], text,
                ["iptables-nft-save"])
    nft = snapshot.get("nftables")
    if nft and shutil.which("nft"):
        as_json = not isinstance(nft, str)
        if as_json:  # `nft -j list ruleset` lists maps before the chains their elements jump to:
            # `nft -j -f` adds objects in order, so chains go first (else ENOENT)
            order = {"metainfo": 0, "table": 1, "chain": 2, "set": 3, "map": 3}
            nft = {"nftables": sorted(nft.get("nftables", []), key=lambda o: order.get(next(iter(o)), 4))}
        restore("nftables", ["nft", "-j", "-f", "-"] if as_json else ["nft", "-f", "-"],
                json.dumps(nft) if as_json else nft, ["nft", "-j", "list", "ruleset"])
    return refs


SPAWNER: Spawner | None = None  # started first thing in main(), while this process is small (see spawn.py)


def interleaved(runs: dict[str, tuple[list[str], Sequence[int]]]) -> dict[str, tuple[float, int] | str]:
    """Median wall (s) and max peak RSS (KiB; wait4 counts the reaped kpctl below `timeout`) of each
    command, or why not, over RUNS rounds that each run every command once, in turn: a host that
    slows down for a while slows every row alike, the reference reads too.  (Each command's runs
    back to back made rows that no change touched differ by half between two tables of one day.)"""
    assert SPAWNER is not None
    times: dict[str, list[float]] = {name: [] for name in runs}
    rss = dict.fromkeys(runs, 0)
    failed: dict[str, str] = {}
    for _ in range(RUNS):
        for name, (cmd, ok) in runs.items():
            if name in failed:
                continue
            try:
                elapsed, peak = SPAWNER.run_once(["timeout", LIMIT, *cmd], ok=ok)
            except RuntimeError as exc:  # exit 3: the mode's snapshot has no such section
                failed[name] = f"timed out after {LIMIT} s" if "exited 124" in str(exc) else "not in this mode's snapshot"
                continue
            times[name].append(elapsed)
            rss[name] = max(rss[name], peak)
    return {name: failed.get(name) or (statistics.median(times[name]), rss[name]) for name in runs}


REFERENCE, START = "(reference) ", "(start) kpctl --version"


def main() -> None:
    global SPAWNER
    SPAWNER = Spawner()
    sizes = [int(n) for n in sys.argv[1:3]] or [1000, 10000]
    small, big = sizes
    print(f"kpctl {KPCTL}; {RUNS} rounds, each running every command once (median wall, max peak RSS); "
          f"modes {', '.join(MODES)}")
    print(f"{'mode':<9} {'command':<30} {'ms@' + str(small):>7} {'MiB':>6} {'ms@' + str(big):>8} {'MiB':>6}"
          f" {'growth':>7} {'ref ms':>7} {'×ref':>5}  verdict")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            results: dict[int, dict[str, tuple[float, int] | str]] = {}
            refs: dict[str, float] = {}
            names: list[tuple[str, str | None]] = []
            for size in sizes:
                path = str(Path(tmp, f"{mode}-{size}.json"))
                snapshot, _rules = getattr(gen, f"{mode}_node")(size, ENDPOINTS.get(mode, 3))
                gen.write(snapshot, path)
                # the node's last service and its first pod (an nftables node's have addresses of their own)
                vip, pod = (gen.nft_vip, gen.nft_pod) if mode == "nftables" else (gen.vip, gen.pod)
                service = f"{vip(size - 1)}:80"
                SPAWNER.run_once([KPCTL, "--snapshot", path, "vip", "list"], ok=(0, 1, 3))  # warm page cache, .pyc
                files = desired_files(snapshot, path, mode, size, tmp)
                listed = commands(service, pod(0), files)
                names = [(name, ref) for name, _args, ref in listed]
                runs = {name: ([KPCTL, "--snapshot", path, *args], (0, 1)) for name, args, _ref in listed}
                if size == big:  # the reference reads and kpctl's own start, in the same rounds
                    runs.update({REFERENCE + ref: (read, (0,)) for ref, read in load_state(snapshot, tmp).items()})
                    runs[START] = ([KPCTL, "--version"], (0,))
                results[size] = interleaved(runs)
            refs = {name[len(REFERENCE):]: measured[0] for name, measured in results[big].items()
                    if name.startswith(REFERENCE) and not isinstance(measured, str)}
            for name, ref in names:
                a, b = results[small][name], results[big][name]
                if isinstance(a, str) or isinstance(b, str):
                    print(f"{mode:<9} {name:<30} ({a if isinstance(a, str) else b})", flush=True)
                    continue
                growth = b[0] / a[0]
                ref_ms = refs.get(ref or "")
                versus = b[0] / ref_ms if ref_ms else None
                ok = b[0] < 1 and b[1] < 200 * 1024 and growth <= 12 and (versus is None or versus <= 2)
                print(f"{mode:<9} {name:<30} {a[0] * 1000:6.0f} {a[1] / 1024:7.1f} {b[0] * 1000:7.0f}"
                      f" {b[1] / 1024:7.1f} {growth:7.1f}"
                      + (f" {ref_ms * 1000:7.0f} {versus:5.2f}" if versus is not None else f" {'-':>7} {'-':>5}")
                      + ("  met" if ok else "  NOT met"), flush=True)
            for ref, seconds in refs.items():
                print(f"{mode:<9} {REFERENCE + ref:<30} {'':>6} {'':>7} {seconds * 1000:7.0f}")
            started = results[big].get(START)
            if not isinstance(started, str) and started is not None:
                print(f"{mode:<9} {START:<30} {'':>6} {'':>7} {started[0] * 1000:7.0f} {started[1] / 1024:6.1f}")


if __name__ == "__main__":
    main()
