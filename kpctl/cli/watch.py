"""`--watch [SECONDS]`: show a listing again and again, like `watch ipvsadm -Ln --rate`.

On a terminal with ``-o table``/``wide`` a rich Live view redraws in place and highlights the
cells that changed since the previous refresh (new rows entirely); otherwise every refresh
prints the listing again in the chosen format (``plain`` for table/wide), so a pipe gets
lines it can ``awk``.  Ctrl-C ends the watch quietly with exit status 130.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from kpctl.cli.context import AppContext
from kpctl.errors import ExitStatus, InvalidInput
from kpctl.output.listing import Listing, OutputSpec
from kpctl.output.text import escape_cell

MIN_INTERVAL = 0.1
CHANGED_STYLE = "bold yellow reverse"
NEW_STYLE = "bold green"

RowKey = tuple[str, ...]


def parse_interval(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise InvalidInput(f"--watch {text!r}: not a number of seconds") from None
    if not MIN_INTERVAL <= seconds <= 86400:
        raise InvalidInput(f"--watch {text!r}: use {MIN_INTERVAL} to 86400 seconds")
    return seconds


def row_key(row: Mapping[str, Any], key_columns: Sequence[str]) -> RowKey:
    return tuple(escape_cell(row.get(k)) for k in key_columns)


def changed_cells(listing: Listing, previous: Mapping[RowKey, Mapping[str, Any]] | None,
                  key_columns: Sequence[str]) -> list[set[str] | None]:
    """Per row: the column keys whose value changed since ``previous``; None for a new row.
    On the first refresh (``previous`` None) nothing counts as changed."""
    marks: list[set[str] | None] = []
    for row in listing.table_rows():
        if previous is None:
            marks.append(set())
            continue
        before = previous.get(row_key(row, key_columns))
        if before is None:
            marks.append(None)
        else:
            marks.append({c.key for c in listing.columns if escape_cell(row.get(c.key)) != escape_cell(before.get(c.key))})
    return marks


def build_table(listing: Listing, marks: list[set[str] | None], wide: bool, no_headers: bool, title: str) -> Any:
    """The rich Table of one refresh, changed cells styled."""
    from rich.table import Table
    from rich.text import Text

    columns = [c for c in listing.columns if c.priority == 0 or wide]
    table = Table(title=title, title_justify="left", show_header=not no_headers, box=None, pad_edge=False,
                  header_style="bold")
    for column in columns:
        table.add_column(column.header, justify=column.justify, no_wrap=True)  # type: ignore[arg-type]
    for row, changed in zip(listing.table_rows(), marks):
        cells = []
        for column in columns:
            style = NEW_STYLE if changed is None else CHANGED_STYLE if column.key in changed else ""
            cells.append(Text(escape_cell(row.get(column.key)), style=style))
        table.add_row(*cells)
    return table


def watch_listing(app: AppContext, fetch: Callable[[], Listing], output: OutputSpec, interval: float,
                  count: int | None = None, title: str = "", key_columns: Sequence[str] = ("service", "server"),
                  sleep: Callable[[float], None] = time.sleep) -> int:
    """Refresh ``fetch()`` every ``interval`` seconds (``count`` times, or until Ctrl-C)."""
    gc.enable()  # main() pauses the cycle collector for one-shot reads; a watch runs for long
    live_view = app.env.stdout_isatty and output.format in ("table", "wide")
    shown = output if output.format not in ("table", "wide") or live_view else OutputSpec("plain", output.no_headers)
    try:
        if live_view:
            _live(app, fetch, shown, interval, count, title, key_columns, sleep)
        else:
            _repeat(app, fetch, shown, interval, count, sleep)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK


def _ticks(interval: float, count: int | None, sleep: Callable[[float], None]) -> Any:
    """Yield once per refresh, sleeping between refreshes so they stay ``interval`` apart."""
    done = 0
    next_at = time.monotonic()
    while count is None or done < count:
        yield done
        done += 1
        if count is not None and done >= count:
            return
        next_at += interval
        sleep(max(0.0, next_at - time.monotonic()))


def _repeat(app: AppContext, fetch: Callable[[], Listing], output: OutputSpec, interval: float,
            count: int | None, sleep: Callable[[float], None]) -> None:
    for _ in _ticks(interval, count, sleep):
        app.render(fetch(), output)
        app.env.stdout.flush()


def _live(app: AppContext, fetch: Callable[[], Listing], output: OutputSpec, interval: float, count: int | None,
          title: str, key_columns: Sequence[str], sleep: Callable[[float], None]) -> None:
    from rich.console import Console
    from rich.live import Live

    console = Console(file=app.env.stdout, force_terminal=True, no_color=not app.env.color, highlight=False)
    previous: dict[RowKey, Mapping[str, Any]] | None = None
    with Live(console=console, auto_refresh=False, transient=False) as live:
        for _ in _ticks(interval, count, sleep):
            listing = fetch()
            # its rows read three times below: made once (a listing may make them each time it is asked)
            listing = replace(listing, rows=list(listing.table_rows()))
            heading = f"Every {interval:g}s: {title}  {time.strftime('%H:%M:%S')}" if title else ""
            marks = changed_cells(listing, previous, key_columns)
            live.update(build_table(listing, marks, output.format == "wide", output.no_headers, heading),
                        refresh=True)
            previous = {row_key(row, key_columns): row for row in listing.table_rows()}
