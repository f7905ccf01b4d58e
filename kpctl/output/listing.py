"""What commands hand to printers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class Column:
    """A table column. ``priority`` 0 shows in table/plain; 1 only in ``wide`` (kubectl's rule)."""

    header: str
    key: str
    priority: int = 0
    justify: str = "left"  # left|right (table printer only)


@dataclass(frozen=True)
class Listing:
    """A result ready for any printer.

    ``rows`` hold display values keyed by :attr:`Column.key`; ``data`` is the full
    machine-readable document for json/yaml (every field, raw numbers).  Either may be a
    function returning it, when building it costs (110,000 iptables rules, 60,000 IPVS
    servers: seconds that another format would spend for nothing); :meth:`table_rows` and
    :meth:`document` give them either way.
    ``formats`` maps extra format names (``ipvsadm``, ``save``, ``tree``…) to producers of
    text (printed as is), of an iterator of lines (each printed with its newline, as they come:
    a 110,000-rule tree), or of a renderable that rich prints.
    """

    columns: Sequence[Column]
    rows: Sequence[Mapping[str, Any]] | Callable[[], Sequence[Mapping[str, Any]]]
    data: Any
    formats: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    title: str | None = None

    def table_rows(self) -> Sequence[Mapping[str, Any]]:
        return self.rows() if callable(self.rows) else self.rows

    def document(self) -> Any:
        return self.data() if callable(self.data) else self.data


@dataclass(frozen=True)
class OutputSpec:
    """The `-o` format chosen and whether header rows are dropped (`--no-headers`)."""

    format: str
    no_headers: bool = False
