"""The `-o` printers: one registry, resolved once from flags; commands never format by hand.

A read command builds a :class:`Listing` (columns, rows, the JSON document, and any
family-specific text formats such as ``ipvsadm`` or ``save``) and hands it to
:func:`render`.  rich is imported only by the table/tree printers.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Column", "Listing", "OutputSpec", "GENERIC_FORMATS", "default_format", "render"]

_HOMES = {"Column": "listing", "Listing": "listing", "OutputSpec": "listing",
          "GENERIC_FORMATS": "registry", "default_format": "registry", "render": "registry"}


def __getattr__(name: str) -> Any:
    # Re-exported on first use: importing kpctl.output.env (every command's context) need not
    # load the printers.
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"kpctl.output.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'kpctl.output' has no attribute {name!r}")
