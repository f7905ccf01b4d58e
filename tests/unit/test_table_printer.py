"""The registry's table printer: columns as wide as their widest cell, nothing cut, titles on a line."""

from __future__ import annotations

import io

from kpctl.output.env import Environment
from kpctl.output.listing import Column, Listing, OutputSpec
from kpctl.output.registry import render
from kpctl.output.text import cell_width

COLUMNS = [Column("NAME", "name"), Column("COUNT", "count", justify="right"), Column("NOTE", "note", priority=1)]


def _table(rows: list[dict[str, object]], fmt: str = "table", title: str | None = None, color: str = "never",
           no_headers: bool = False) -> str:
    out = io.StringIO()
    render(Listing(COLUMNS, rows, rows, title=title), OutputSpec(fmt, no_headers), Environment(out, io.StringIO(), color))
    return out.getvalue()


def test_a_cell_longer_than_any_terminal_is_printed_whole() -> None:
    # rich's table cut this to "…" at 200 columns whenever stdout was not a terminal
    long = "-m comment --comment " + "x" * 300
    text = _table([{"name": long, "count": 1}])
    assert text == f"NAME{' ' * (len(long) - 4)}  COUNT\n{long}      1\n"


def test_columns_align_by_terminal_cells_for_wide_characters() -> None:
    text = _table([{"name": "日本", "count": 10}, {"name": "abcde", "count": 2}], fmt="wide")
    lines = text.splitlines()
    assert lines == ["NAME   COUNT  NOTE", "日本      10", "abcde      2"]  # no trailing blanks
    assert {cell_width(line) for line in lines} == {18, 12}


def test_title_stands_on_its_own_line_and_headers_can_go() -> None:
    title = "iptables mode (configured mode iptables); 15 checks: 0 error(s), 0 warning(s)"
    assert _table([], title=title) == f"{title}\nNAME  COUNT\n"
    assert _table([{"name": "a", "count": 3}], no_headers=True) == "a  3\n"  # headers out: cells decide
    assert _table([], no_headers=True) == ""


def test_colour_makes_the_header_bold_and_the_title_italic_only() -> None:
    text = _table([{"name": "a", "count": 3}], title="t", color="always")
    assert text == "\x1b[3mt\x1b[0m\n\x1b[1mNAME  COUNT\x1b[0m\na         3\n"


def test_cell_width_counts_combining_marks_as_nothing() -> None:
    assert cell_width("e\u0301") == 1 and cell_width("ＡＢ") == 4 and cell_width("ab") == 2
