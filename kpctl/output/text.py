"""Helpers shared by printers: make user data safe to show."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable

BOLD, DIM, ITALIC, RESET = "\x1b[1m", "\x1b[2m", "\x1b[3m", "\x1b[0m"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_cell(value: Any) -> str:
    """Render a cell; control characters (from comments, names) become visible escapes."""
    if value is None:
        return ""
    text = str(value)
    if text.isprintable():  # the common case, and none of the characters escaped below is printable
        return text
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text).replace("\n", "\\n").replace("\t", "\\t")


def cell_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and full-width characters take two,
    combining marks none (what terminals and wcwidth(3) do)."""
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
               for ch in text)


def styled(text: str, code: str, color: bool) -> str:
    """``text`` in one SGR style (BOLD, DIM, ITALIC) when colour is on."""
    return f"{code}{text}{RESET}" if color else text


PLANNED = 4  # the fewest keys of a mapping a writer writes from a plan: a smaller one gains nothing from it


def second_meeting(shapes: dict[Any, Any], shape: Any, make: Callable[[], Any]) -> Any:
    """What a writer that has no plan for ``shape`` yet does: the first meeting is recorded
    (None: written as usual, nothing made for a shape met once), the second makes the plan
    (``make()``: a plan, or False for a shape that has none) and keeps it for the write."""
    if shape in shapes:
        plan = shapes[shape] = make()
        return plan
    shapes[shape] = None
    return None


def plan_values(value: dict[Any, Any], dicts: tuple[tuple[int, tuple[Any, ...]], ...]) -> list[Any] | None:
    """The values of ``value`` with, at each (place, keys) of ``dicts`` (a plan's dicts, from the
    last), the values of the dict there in its place; None when that value is not a plain dict
    with those keys.  What both writers fill a plan's template from."""
    row = list(value.values())
    for place, keys in dicts:  # from the last: the places before stay valid
        child = row[place]
        if type(child) is not dict or tuple(child) != keys:
            return None
        row[place:place + 1] = child.values()
    return row


SLICE = 1 << 20  # characters per write of a SliceWriter


class SliceWriter:
    """Pieces of a big output written a slice at a time: one system call per SLICE characters (not
    per line on a line-buffered stdout), and never the whole text in memory (230 MB of JSON for
    a 110,000-rule node).  A slice is its pieces joined by ``sep``, followed by ``end``."""

    __slots__ = ("parts", "size", "write", "sep", "end")

    def __init__(self, write: Callable[[str], Any], sep: str = "", end: str = "") -> None:
        self.parts: list[str] = []
        self.size = 0
        self.write, self.sep, self.end = write, sep, end

    def add(self, piece: str) -> None:
        self.parts.append(piece)
        self.size += len(piece)
        if self.size >= SLICE:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.write(self.sep.join(self.parts) + self.end)
            self.parts.clear()
            self.size = 0
