"""What commands hand to printers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence


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


class MadeRows(Sequence[dict[str, Any]]):
    """A listing's rows, made when read (``make``: an iterator of them): json and the text formats
    never read them, and plain output reads them once in order, so 100,000 rows are not kept."""

    def __init__(self, make: Callable[[], Iterator[dict[str, Any]]]) -> None:
        self._make = make
        self._rows: list[dict[str, Any]] | None = None

    def _all(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = list(self._make())
        return self._rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows) if self._rows is not None else self._make()

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())
