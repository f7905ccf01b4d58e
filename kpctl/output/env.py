"""Where output goes and whether it may be coloured (httpie's Environment, small)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import IO


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Environment:
    """The streams output goes to and the colour mode (tests replace the streams)."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    color_mode: str = "auto"  # auto|always|never

    @property
    def stdout_isatty(self) -> bool:
        return _isatty(self.stdout)

    @property
    def color(self) -> bool:
        if self.color_mode == "always":
            return True
        if self.color_mode == "never":
            return False
        if os.environ.get("NO_COLOR") is not None or os.environ.get("TERM") == "dumb":
            return False
        return self.stdout_isatty
