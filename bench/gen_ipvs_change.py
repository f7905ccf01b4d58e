"""A changed copy of an `ipvsadm -Sn` rules file, and the ipvsadm -R lines that undo the change.

Usage: python bench/gen_ipvs_change.py BASE.rules PERCENT CHANGED.rules UNDO.rules

PERCENT of the services change, spread over the table: half of them get another weight on their
first server, a quarter lose their last server, a quarter get one more server.  UNDO.rules
(for ipvsadm -R) puts the table back, so a timed `kpctl ipvs apply CHANGED.rules` can be repeated.
"""

from __future__ import annotations

import sys


def change(base: str, percent: float) -> tuple[str, str]:
    lines = base.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("-A ")]
    count = max(1, round(len(starts) * percent / 100))
    step = max(1, len(starts) // count)
    chosen = starts[::step][:count]
    replaced: dict[int, str] = {}
    dropped: set[int] = set()
    added: dict[int, str] = {}
    undo: list[str] = []
    for n, start in enumerate(chosen):
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("-A ")), len(lines))
        kind = "weight" if n % 4 < 2 else ("drop" if n % 4 == 2 else "add")
        if kind == "weight" and end > start + 1:
            old = lines[start + 1]
            replaced[start + 1] = old.rsplit(" -w ", 1)[0] + " -w 7"
            undo.append(old.replace("-a ", "-e ", 1))
        elif kind == "drop" and end > start + 1:
            dropped.add(end - 1)
            undo.append(lines[end - 1])
        else:
            service = lines[start].split()[2]
            new = f"-a -t {service} -r 192.168.{n >> 8 & 255}.{n & 255}:8080 -m -w 1"
            added[end - 1] = new
            undo.append(f"-d -t {service} -r 192.168.{n >> 8 & 255}.{n & 255}:8080")
    out: list[str] = []
    for i, line in enumerate(lines):
        if i not in dropped:
            out.append(replaced.get(i, line))
        if i in added:
            out.append(added[i])
    return "\n".join(out) + "\n", "\n".join(undo) + "\n"


def main() -> None:
    base_path, percent, changed_path, undo_path = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(base_path) as handle:
        changed, undo = change(handle.read(), percent)
    with open(changed_path, "w") as out:
        out.write(changed)
    with open(undo_path, "w") as out:
        out.write(undo)


if __name__ == "__main__":
    main()
