"""The registry's table printer: columns as wide as their widest cell, nothing cut, titles on a line."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st

from kpctl.output.env import Environment
from kpctl.output.listing import Column, Listing, OutputSpec
from kpctl.output.registry import render
from kpctl.output.text import cell_width, escape_cell

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


_CELL = st.one_of(st.none(), st.integers(-5, 10**12), st.text(max_size=6),
                  st.sampled_from(["a\tb", "x\x1by", "new\nline", "é", "日本", "e\u0301", "\x7f", "\x9b"]))


@settings(max_examples=200)
@given(st.lists(st.fixed_dictionaries({"name": _CELL, "count": _CELL, "note": _CELL}), max_size=5),
       st.sampled_from(["plain", "table", "wide"]))
def test_every_cell_is_escaped_and_measured_on_its_own(rows: list[dict[str, object]], fmt: str) -> None:
    """Printers check a row's text at once; the result is the one of escaping and measuring each cell."""
    shown = [c for c in COLUMNS if fmt == "wide" or c.priority == 0]
    grid = [[c.header for c in shown]] + [[escape_cell(row[c.key]) for c in shown] for row in rows]
    if fmt == "plain":
        expected = "".join("\t".join(cells) + "\n" for cells in grid)
    else:
        widths = [max(cell_width(cells[i]) for cells in grid) for i in range(len(shown))]
        expected = "".join("  ".join(" " * (w - cell_width(cell)) + cell if c.justify == "right"
                                     else cell + " " * (w - cell_width(cell))
                                     for cell, w, c in zip(cells, widths, shown)).rstrip() + "\n" for cells in grid)
    assert _table(rows, fmt=fmt) == expected


def test_a_long_listing_is_written_in_pieces_that_make_the_whole_text() -> None:
    rows: list[dict[str, object]] = [{"name": f"n{i}", "count": i} for i in range(10_000)]
    for fmt in ("plain", "table"):
        writes: list[str] = []
        out = io.StringIO()
        out.write = writes.append  # type: ignore[method-assign,assignment]
        render(Listing(COLUMNS, rows, rows), OutputSpec(fmt), Environment(out, io.StringIO(), "never"))
        assert len(writes) == 3 and all(piece.endswith("\n") for piece in writes)
        lines = "".join(writes).splitlines()
        assert len(lines) == 10_001 and lines[-1].split() == ["n9999", "9999"]
    assert _table([], fmt="plain", no_headers=True) == ""
