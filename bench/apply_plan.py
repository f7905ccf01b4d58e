"""Host-side cost of `kpctl ipvs apply` at scale: read the desired file, plan against the current table.

Usage: python bench/apply_plan.py [SERVICES] [SERVERS] [PERCENT]     (default 10000 5 1)

The current table is the generated one (read through the same reader, as if from the kernel); the
desired one has PERCENT of its services changed (bench/gen_ipvs_change.py).  Prints the number of
operations the plan sends to the kernel (only the change), and the median time of each step.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gen_ipvs_change import change  # noqa: E402

from kpctl.core.ipvs_save import parse_restore  # noqa: E402
from kpctl.core.ipvs_diff import plan_apply, read_desired  # noqa: E402


def main() -> None:
    services = sys.argv[1] if len(sys.argv) > 1 else "10000"
    servers = sys.argv[2] if len(sys.argv) > 2 else "5"
    percent = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
    base = subprocess.run([sys.executable, str(HERE / "gen_ipvs.py"), services, servers],
                          capture_output=True, text=True, check=True).stdout
    changed, _undo = change(base, percent)
    current = read_desired(base)
    reads: list[float] = []
    plans: list[float] = []
    parses: list[float] = []
    for _ in range(5):
        started = time.perf_counter()
        parse_restore(changed)  # what `kpctl ipvs restore` pays to read the same file: the yardstick
        parses.append(time.perf_counter() - started)
        started = time.perf_counter()
        desired = read_desired(changed)
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        plan = plan_apply(current, desired)
        plans.append(time.perf_counter() - started)
    same = plan_apply(current, current)
    print(f"{services} services × {servers} servers, {percent}% of the services changed")
    print(f"  operations to the kernel: {len(plan.operations)} (changes: {len(plan.changes)}); "
          f"for the unchanged table: {len(same.operations)}")
    print(f"  read desired file: {statistics.median(reads) * 1000:.0f} ms; "
          f"plan: {statistics.median(plans) * 1000:.0f} ms; "
          f"restore's reader on the same file: {statistics.median(parses) * 1000:.0f} ms (medians of 5)")


if __name__ == "__main__":
    main()
