"""The printer registry behind every `-o`."""

from __future__ import annotations

import itertools
from operator import itemgetter
from typing import Any, Callable, Iterable, Iterator, Sequence

from kpctl.output.env import Environment
from kpctl.output.listing import Column, Listing, OutputSpec
from kpctl.output.text import BOLD, ITALIC, cell_width, escape_cell, styled


def _visible_columns(listing: Listing, wide: bool) -> list[Column]:
    return [c for c in listing.columns if c.priority == 0 or wide]


def _cells(listing: Listing, columns: Sequence[Column]) -> Iterator[Sequence[str]]:
    """Each row's cells as text, control characters made visible (escape_cell), checked once
    per row: a cell with none, the usual case, is its text."""
    keys = [c.key for c in columns]
    pick = itemgetter(*keys) if len(keys) > 1 else lambda row: tuple(row[key] for key in keys)
    texts_only = True  # the rows so far held only texts: joined as they are (the first that does not, ends it)
    for row in listing.table_rows():
        try:
            values = pick(row)
        except KeyError:  # a row without some column's key: that cell is empty
            values = tuple(map(row.get, keys))
        if texts_only:
            try:
                joined = "".join(values)
            except TypeError:
                texts_only = False
        if not texts_only:
            values = [v if type(v) is str else "" if v is None else str(v) for v in values]
            joined = "".join(values)
        yield values if joined.isprintable() else [escape_cell(text) for text in values]


def print_plain(listing: Listing, spec: OutputSpec, env: Environment) -> None:
    columns = _visible_columns(listing, wide=False)
    header = [] if spec.no_headers else ["\t".join(c.header for c in columns)]
    _write_lines(itertools.chain(header, ("\t".join(cells) for cells in _cells(listing, columns))), env)


def _write_lines(lines: Iterable[str], env: Environment) -> None:
    """Each line with its newline, written 4,096 lines at a time: the text of a 110,000-row
    listing is never held whole (nor a second time, joined)."""
    lines = iter(lines)
    while chunk := list(itertools.islice(lines, 4096)):
        chunk.append("")
        env.stdout.write("\n".join(chunk))


def _print_table(listing: Listing, spec: OutputSpec, env: Environment, wide: bool) -> None:
    """Columns padded to their widest cell, two spaces apart, nothing cut (kubectl's tables).

    Built here rather than with rich's Table, which measured and rendered every cell through
    its layout engine (25 s for a 60,000-row IPVS table, 131 s for kube-proxy's 40,000 nft
    chains) and, without a terminal, shrank wide columns to an ellipsis at 200 characters.
    """
    columns = _visible_columns(listing, wide)
    grid = list(map(tuple, _cells(listing, columns)))  # kept until printed: tuples, a third smaller than lists
    header = [c.header for c in columns] if not spec.no_headers else None
    widths = [cell_width(c.header) if header else 0 for c in columns]
    ascii_only = all(map(str.isascii, map("".join, grid)))  # the usual case: len() is each cell's width
    if ascii_only:  # measured column by column, without a Python step per row (zip(*grid) took 1.7x as
        # long: it steps 110,000 row iterators for each column)
        widths = [max(width, max(map(len, map(itemgetter(at), grid)), default=0)) for at, width in enumerate(widths)]
    else:
        for cells in grid:
            widths = list(map(max, widths, _sizes(cells)))
    right = [c.justify == "right" for c in columns]
    # a row of ASCII text is padded by one str.format call: len() is its width
    padded = "  ".join(("{:>%d}" if r else "{:<%d}") % w for w, r in zip(widths, right)).format

    def line(cells: Sequence[str]) -> str:
        if "".join(cells).isascii():
            return padded(*cells).rstrip()  # type: ignore[no-any-return]
        return "  ".join(" " * (w - size) + cell if r else cell + " " * (w - size)
                         for cell, size, w, r in zip(cells, map(cell_width, cells), widths, right)).rstrip()

    out = []
    if listing.title:
        out.append(styled(listing.title, ITALIC, env.color))
    if header:
        out.append(styled(line(header), BOLD, env.color))
    rows = map(str.rstrip, itertools.starmap(padded, grid)) if ascii_only else map(line, grid)
    _write_lines(itertools.chain(out, rows), env)


def _sizes(cells: Sequence[str]) -> Iterator[int]:
    """The columns each cell takes; a row of ASCII text (the usual case) measured by len()."""
    return map(len, cells) if "".join(cells).isascii() else map(cell_width, cells)


def print_table(listing: Listing, spec: OutputSpec, env: Environment) -> None:
    _print_table(listing, spec, env, wide=False)


def print_wide(listing: Listing, spec: OutputSpec, env: Environment) -> None:
    _print_table(listing, spec, env, wide=True)


def print_json(listing: Listing, spec: OutputSpec, env: Environment) -> None:
    from kpctl.output.json_text import write_json  # not at import: `kpctl --help` needs no json

    # Written in slices: the text of a 110,000-rule node is 230 MB, which dumps() held twice
    # over; a write per piece (json.dump) costs a system call per line on a line-buffered stdout.
    write_json(listing.document(), env.stdout.write)
    env.stdout.write("\n")


def print_yaml(listing: Listing, spec: OutputSpec, env: Environment) -> None:
    from kpctl.output.yaml_text import write_yaml

    write_yaml(listing.document(), env.stdout.write)


Printer = Callable[[Listing, OutputSpec, Environment], None]

GENERIC_FORMATS: dict[str, Printer] = {
    "table": print_table,
    "wide": print_wide,
    "plain": print_plain,
    "json": print_json,
    "yaml": print_yaml,
}


def choices(extra: Sequence[str] = ()) -> list[str]:
    return list(GENERIC_FORMATS) + [name for name in extra if name not in GENERIC_FORMATS]


def default_format(env: Environment) -> str:
    return "table" if env.stdout_isatty else "plain"


def _print_extra(value: Any, env: Environment) -> None:
    if isinstance(value, str):
        env.stdout.write(value)
        return
    if isinstance(value, Iterator):  # lines, as they are made
        _write_lines(value, env)
        return
    from rich.console import Console

    Console(
        file=env.stdout,
        color_system="auto" if env.color else None,
        force_terminal=env.color,
        no_color=not env.color,
        width=None if env.stdout_isatty else 200,
        highlight=False,
    ).print(value)


def render(listing: Listing, spec: OutputSpec, env: Environment) -> None:
    """Print ``listing`` in the format ``spec`` names (resolved by the caller's choice list)."""
    if spec.format in listing.formats:
        _print_extra(listing.formats[spec.format](), env)
        return
    GENERIC_FORMATS[spec.format](listing, spec, env)
