"""The `-o` printers: one registry, resolved once from flags; commands never format by hand.

A read command builds a :class:`Listing` (columns, rows, the JSON document, and any
family-specific text formats such as ``ipvsadm`` or ``save``) and hands it to
:func:`render`.  rich is imported only by the table/tree printers.
"""

from __future__ import annotations

from kpctl.output.listing import Column, Listing, OutputSpec
from kpctl.output.registry import GENERIC_FORMATS, default_format, render

__all__ = ["Column", "Listing", "OutputSpec", "GENERIC_FORMATS", "default_format", "render"]
