"""Alternating, median-of-N timing of commands with each child's own peak RSS (os.wait4).

Each measurement pairs kpctl with a reference command; the two are run alternately (kpctl,
reference, kpctl, reference, …) so load on the (shared) machine hits both alike.  A ``reset``
command (untimed) runs before every timed run, e.g. to empty the table a restore fills.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

Cmd = Sequence[str]
PROGRESS = bool(os.environ.get("BENCH_PROGRESS"))  # one stderr line per timed run


@dataclass
class Result:
    name: str
    kpctl: list[float] = field(default_factory=list)
    ref: list[float] = field(default_factory=list)
    kpctl_rss: int = 0  # KiB, max over runs
    ref_rss: int = 0
    target: float | None = None  # ratio kpctl/ref to meet (None: informational)
    note: str = ""

    @property
    def ratio(self) -> float:
        return statistics.median(self.kpctl) / statistics.median(self.ref)

    def row(self) -> str:
        k, r = statistics.median(self.kpctl), statistics.median(self.ref)
        if self.target is None:
            verdict = ""
        else:
            verdict = ("met" if self.ratio <= self.target else "NOT met") + f" (≤ {self.target:g}×)"
        return (f"{self.name:<52} {k * 1000:9.1f} {r * 1000:9.1f} {self.ratio:7.2f}×"
                f" {self.kpctl_rss / 1024:8.1f} {self.ref_rss / 1024:8.1f}  {verdict} {self.note}").rstrip()


HEADER = (f"{'benchmark (median of runs)':<52} {'kpctl ms':>9} {'ref ms':>9} {'ratio':>8}"
          f" {'kpctl MiB':>8} {'ref MiB':>8}  target")


def run_once(cmd: Cmd, stdin_path: str | None = None, ok: Sequence[int] = (0,)) -> tuple[float, int]:
    """Wall time (s) and peak RSS (KiB) of one run; output discarded; an exit status not in
    ``ok`` raises (`doctor` and `trace` answer 1 for a finding or a dropped packet)."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin_path:
            stdin.close()  # type: ignore[union-attr]
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return elapsed, usage.ru_maxrss


def compare(name: str, kpctl: Cmd, ref: Cmd, runs: int, *, reset: Cmd | None = None,
            stdin: str | None = None, ref_stdin: str | None = None, target: float | None = None,
            note: str = "", warmup: bool = True) -> Result:
    res = Result(name, target=target, note=note)
    plan = [(kpctl, stdin, res.kpctl, "kpctl_rss"), (ref, ref_stdin if ref_stdin else stdin, res.ref, "ref_rss")]
    if warmup:  # page cache, .pyc files
        for cmd, inp, _, _ in plan:
            if reset:
                subprocess.run(reset, check=True, stdout=subprocess.DEVNULL)
            run_once(cmd, inp)
    for i in range(runs):
        order = plan if i % 2 == 0 else plan[::-1]
        for cmd, inp, times, rss_attr in order:
            if reset:
                subprocess.run(reset, check=True, stdout=subprocess.DEVNULL)
            elapsed, rss = run_once(cmd, inp)
            if PROGRESS:
                print(f"  … {cmd[0].rsplit('/', 1)[-1]} {' '.join(cmd[1:3])}: {elapsed:.2f} s", file=sys.stderr, flush=True)
            times.append(elapsed)
            setattr(res, rss_attr, max(getattr(res, rss_attr), rss))
    print(res.row(), flush=True)
    return res
