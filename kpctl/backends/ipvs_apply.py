"""`kpctl ipvs apply`: run an apply plan (kpctl.core.ipvs_diff) against a backend, then finish draining.

The plan's ``now`` part goes through the backend's all-or-nothing ``apply`` (rolled back on a
kernel error part way).  The deletes left for drained servers and services run afterwards, each
once its target has no active or inactive connections, or when the drain timeout has passed;
with ``wait`` the table is polled until none is left, else what is still busy stays at
weight 0 (a later apply deletes it once idle).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from kpctl.core.ipvs_diff import ApplyPlan, split_drained
from kpctl.core.ipvs_plan import Operation
from kpctl.errors import NotFound

POLL_SECONDS = 1.0


def apply_plan(backend: Any, plan: ApplyPlan, drain_timeout: float = 0.0, wait: bool = False,
               on_removed: Callable[[int], None] | None = None, poll: float = POLL_SECONDS,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> list[Operation]:
    """Apply ``plan``; return the deletes still waiting for connections to end (empty with ``wait``)."""
    if plan.now:
        backend.apply(plan.now)
    return finish_drain(backend, plan.after_drain, drain_timeout, wait, on_removed, poll, clock, sleep)


def finish_drain(backend: Any, pending: Sequence[Operation], drain_timeout: float, wait: bool,
                 on_removed: Callable[[int], None] | None = None, poll: float = POLL_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> list[Operation]:
    deadline = clock() + drain_timeout
    left = list(pending)
    while left:
        ready, left = split_drained(left, backend.table())
        if clock() >= deadline:  # the timeout passed: what is still busy goes too
            ready, left = ready + left, []
        for op in ready:
            try:
                backend.execute(op)
            except NotFound:  # removed by someone else meanwhile: the goal is reached
                pass
        if on_removed is not None and ready:
            on_removed(len(ready))
        if not left or not wait:
            break
        sleep(min(poll, max(0.0, deadline - clock())))
    return left
