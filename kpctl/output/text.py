"""Helpers shared by printers: make user data safe to show."""

from __future__ import annotations

import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_cell(value: Any) -> str:
    """Render a cell; control characters (from comments, names) become visible escapes."""
    if value is None:
        return ""
    text = str(value)
    if text.isprintable():  # the common case, and none of the characters escaped below is printable
        return text
    return _CONTROL.sub(lambda m: "\\x%02x" % ord(m.group()), text).replace("\n", "\\n").replace("\t", "\\t")
