"""kpctl.cli.watch (repeat / live view, changed-cell marks, Ctrl-C = 130) and
kpctl.output.progress (nothing unless stderr is a TTY and the work outlasts the delay)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kpctl.cli.context import AppContext
from kpctl.cli.watch import (
    CHANGED_STYLE,
    NEW_STYLE,
    build_table,
    changed_cells,
    parse_interval,
    watch_listing,
)
from kpctl.errors import InvalidInput
from kpctl.output.env import Environment
from kpctl.output.listing import Column, Listing, OutputSpec
from kpctl.output.progress import progress

COLUMNS = [Column("SERVICE", "service"), Column("SERVER", "server"), Column("ACTIVE", "active", justify="right"),
           Column("CPS", "cps", justify="right")]


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def listing(*rows: tuple[str, str, int, int]) -> Listing:
    dicts = [{"service": s, "server": r, "active": a, "cps": c} for s, r, a, c in rows]
    return Listing(columns=COLUMNS, rows=dicts, data=dicts)


def refreshes(*listings: Listing) -> Iterator[Listing]:
    yield from listings


def app_with(stdout: io.StringIO, stderr: io.StringIO | None = None) -> AppContext:
    app = AppContext()
    app.env = Environment(stdout=stdout, stderr=stderr or io.StringIO(), color_mode="never")
    return app


def test_not_a_tty_repeats_plain_lines() -> None:
    out = io.StringIO()
    frames = refreshes(listing(("10.0.0.1:80/tcp", "10.1.0.1:80", 1, 0)),
                       listing(("10.0.0.1:80/tcp", "10.1.0.1:80", 2, 5)))
    sleeps: list[float] = []
    status = watch_listing(app_with(out), lambda: next(frames), OutputSpec("table"), 2.0, count=2,
                           sleep=sleeps.append)
    assert status == 0
    assert out.getvalue() == ("SERVICE\tSERVER\tACTIVE\tCPS\n10.0.0.1:80/tcp\t10.1.0.1:80\t1\t0\n"
                              "SERVICE\tSERVER\tACTIVE\tCPS\n10.0.0.1:80/tcp\t10.1.0.1:80\t2\t5\n")
    assert len(sleeps) == 1 and 0 < sleeps[0] <= 2.0


def test_json_is_repeated_as_json() -> None:
    out = io.StringIO()
    frames = refreshes(listing(("a", "b", 1, 1)), listing(("a", "b", 1, 2)))
    watch_listing(app_with(out), lambda: next(frames), OutputSpec("json"), 0.1, count=2, sleep=lambda s: None)
    assert out.getvalue().count('"service": "a"') == 2


def test_ctrl_c_ends_quietly_with_130() -> None:
    out = io.StringIO()
    calls = {"n": 0}

    def fetch() -> Listing:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return listing(("a", "b", 1, 1))

    assert watch_listing(app_with(out), fetch, OutputSpec("plain"), 0.1, sleep=lambda s: None) == 130
    assert out.getvalue().count("\n") == 2  # the first refresh, nothing after


def test_ctrl_c_in_the_live_view_restores_the_terminal() -> None:
    out = TTY()

    def fetch() -> Listing:
        raise KeyboardInterrupt

    assert watch_listing(app_with(out), fetch, OutputSpec("table"), 0.1, sleep=lambda s: None) == 130
    assert "\x1b[?25h" in out.getvalue()  # the cursor is shown again


def test_changed_cells_marks_changes_and_new_rows() -> None:
    before = listing(("s1", "r1", 1, 0), ("s1", "r2", 4, 0))
    after = listing(("s1", "r1", 1, 3), ("s1", "r2", 5, 0), ("s2", "r9", 0, 0))
    previous = {("s1", "r1"): before.rows[0], ("s1", "r2"): before.rows[1]}
    assert changed_cells(after, None, ("service", "server")) == [set(), set(), set()]
    assert changed_cells(after, previous, ("service", "server")) == [{"cps"}, {"active"}, None]


def test_live_table_styles_changed_cells() -> None:
    after = listing(("s1", "r1", 1, 3), ("s2", "r9", 0, 0))
    table = build_table(after, [{"cps"}, None], wide=False, no_headers=False, title="t")
    cps, active = table.columns[3], table.columns[2]
    assert next(iter(cps.cells)).style == CHANGED_STYLE
    assert next(iter(active.cells)).style == ""
    assert all(list(c.cells)[1].style == NEW_STYLE for c in table.columns)


def test_live_view_on_a_tty_draws_in_place() -> None:
    out = TTY()
    frames = refreshes(listing(("10.0.0.1:80/tcp", "10.1.0.1:80", 1, 0)),
                       listing(("10.0.0.1:80/tcp", "10.1.0.1:80", 7, 0)))
    status = watch_listing(app_with(out), lambda: next(frames), OutputSpec("table"), 0.1, count=2,
                           title="kpctl ipvs list --rate", sleep=lambda s: None)
    text = out.getvalue()
    assert status == 0
    assert "Every 0.1s: kpctl ipvs list --rate" in text
    assert "\x1b[?25l" in text and "\x1b[?25h" in text  # rich Live hid and restored the cursor
    assert "7" in text  # the second refresh was drawn


def test_live_view_makes_a_listings_rows_once_a_refresh() -> None:
    made: list[int] = []

    def fetch() -> Listing:
        def rows() -> list[dict[str, Any]]:  # (as ipvs list's: made each time they are asked for)
            made.append(1)
            return [{"service": "10.0.0.1:80/tcp", "server": "10.1.0.1:80", "active": len(made), "cps": 0}]
        return Listing(columns=COLUMNS, rows=rows, data=None)

    assert watch_listing(app_with(TTY()), fetch, OutputSpec("table"), 0.1, count=2, sleep=lambda s: None) == 0
    assert len(made) == 2


@pytest.mark.parametrize("text", ["0", "-1", "abc", "100000"])
def test_bad_interval_names_the_value(text: str) -> None:
    with pytest.raises(InvalidInput, match=repr(text)):
        parse_interval(text)


def test_interval_accepts_fractions() -> None:
    assert parse_interval("0.5") == 0.5


def test_progress_draws_nothing_off_a_tty() -> None:
    err = io.StringIO()
    env = Environment(stdout=io.StringIO(), stderr=err, color_mode="never")
    with progress(env, "restoring", total=3, delay=0.0) as step:
        time.sleep(0.2)
        step()
    assert err.getvalue() == ""


def test_progress_draws_nothing_for_quick_work() -> None:
    err = TTY()
    env = Environment(stdout=io.StringIO(), stderr=err, color_mode="never")
    with progress(env, "restoring", total=3, delay=5.0) as step:
        step(3)
    assert err.getvalue() == ""


def test_progress_bar_after_the_delay_on_a_tty() -> None:
    err = TTY()
    env = Environment(stdout=io.StringIO(), stderr=err, color_mode="never")
    with progress(env, "applying IPVS rules", total=4, delay=0.05) as step:
        step(2)
        time.sleep(0.5)
        step()
    text = err.getvalue()
    assert "applying IPVS rules" in text
    assert "/4" in text


def test_spinner_without_total() -> None:
    err = TTY()
    env = Environment(stdout=io.StringIO(), stderr=err, color_mode="never")
    with progress(env, "reading the IPVS table", delay=0.05):
        time.sleep(0.4)
    assert "reading the IPVS table" in err.getvalue()
