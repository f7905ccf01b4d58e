"""Progress on stderr for work that takes longer than a second, on a terminal only.

    with progress(app.env, "applying IPVS rules", total=len(plan)) as step:
        for op in plan:
            execute(op)
            step()

Nothing is drawn when stderr is not a TTY, nor for work that ends within ``delay`` seconds,
so pipes, scripts and tests see exactly the output they saw before.  With ``total=None`` a
spinner with the elapsed time stands in for the bar.  rich is imported only when a bar is
actually drawn.  The bar is transient: it is erased when the work ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from kpctl.output.env import Environment, _isatty

DELAY_SECONDS = 1.0


class _Bar:
    def __init__(self, env: Environment, description: str, total: int | None) -> None:
        self.env, self.description, self.total = env, description, total
        self.done = 0
        self._lock = threading.Lock()
        self._progress: Any = None
        self._task: Any = None
        self._closed = False

    def start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        with self._lock:
            if self._closed or self._progress is not None:
                return
            console = Console(file=self.env.stderr, force_terminal=True, no_color=not self.env.color)
            columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
            if self.total is not None:
                columns += [BarColumn(), MofNCompleteColumn()]
            columns.append(TimeElapsedColumn())
            self._progress = Progress(*columns, console=console, transient=True)
            self._task = self._progress.add_task(self.description, total=self.total, completed=self.done)
            self._progress.start()

    def step(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            if self._progress is not None:
                self._progress.update(self._task, completed=min(self.done, self.total or self.done))

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            if self._progress is not None:
                self._progress.stop()


@contextlib.contextmanager
def progress(env: Environment, description: str, total: int | None = None,
             delay: float = DELAY_SECONDS) -> Iterator[Callable[..., None]]:
    """Yield ``step(count=1)``; draw a bar on stderr if the block runs longer than ``delay``."""
    if not _isatty(env.stderr):
        yield lambda count=1: None
        return
    bar = _Bar(env, description, total)
    timer = threading.Timer(delay, bar.start)
    timer.daemon = True
    timer.start()
    try:
        yield bar.step
    finally:
        timer.cancel()
        bar.stop()
