"""Runs the timed commands of a benchmark whose own process grows big (bench/scale.py holds a
generated 10,000-service node while it times kpctl on it).

wait4's peak RSS of a child starts from its parent's peak: the child begins as the parent's
memory (forked, or sharing it until exec), and the kernel keeps that peak when the child execs.
Measured here: a Python parent that had touched 300 MiB, then `/bin/true` from it: 313 MiB; from
a fresh interpreter: 13 MiB.  So the children are started from this small process, which runs
timing.run_once for each command its parent sends (one JSON line each way)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import run_once  # noqa: E402


class Spawner:
    """A small process that runs commands for this one (start it before this one grows)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True)

    def run_once(self, cmd: Sequence[str], ok: Sequence[int] = (0,)) -> tuple[float, int]:
        """timing.run_once(cmd, ok=ok), run by the small process."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps([list(cmd), list(ok)]) + "\n")
        self._proc.stdin.flush()
        elapsed, rss, error = json.loads(self._proc.stdout.readline())
        if error is not None:
            raise RuntimeError(error)
        return elapsed, rss


def _serve() -> None:
    for line in sys.stdin:
        cmd, ok = json.loads(line)
        try:
            reply = [*run_once(cmd, ok=ok), None]
        except RuntimeError as exc:
            reply = [0.0, 0, str(exc)]
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    _serve()
