"""State shared by every command: global options, output environment, backends."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import click

from kpctl.output.env import Environment

if TYPE_CHECKING:
    from kpctl.output.listing import Listing, OutputSpec


@dataclass
class AppContext:
    """The global options of one kpctl run and the snapshot they name, shared by every command."""

    netns: str | None = None
    snapshot_path: str | None = None
    verbose: int = 0
    debug: bool = False
    env: Environment = field(default_factory=Environment)
    _snapshot: Any = None
    _kept: list[Any] = field(default_factory=list)

    def snapshot(self) -> Any:
        """The loaded NodeSnapshot when --snapshot was given, else None (loaded once)."""
        if self.snapshot_path is None:
            return None
        if self._snapshot is None:
            from kpctl.backends.snapshot import load_snapshot

            self._snapshot = load_snapshot(self.snapshot_path)
        return self._snapshot

    def require_live(self, what: str, why: str = "changes the kernel") -> None:
        """Commands that change (or must ask) the kernel refuse to run against a snapshot."""
        if self.snapshot_path is not None:
            from kpctl.errors import InvalidInput

            raise InvalidInput(f"{what} {why} and cannot run on --snapshot {self.snapshot_path}")

    def keep(self, *objects: Any) -> None:
        """Leave what a one-shot command read and built (parsed rules, a node's view, its listing) to
        the end of the process: the program leaves with os._exit (kpctl.cli.main.main), so they are
        never freed object by object (~0.1 s for the 110,000 rules of a 10,000-service iptables
        node).  Not for what a loop builds again and again (``--watch``)."""
        self._kept.extend(objects)

    def render(self, listing: Listing, spec: OutputSpec) -> None:
        from kpctl.output import registry

        registry.render(listing, spec, self.env)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def output_options(*extra_formats: str, default: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add ``-o/--output`` (generic printers plus ``extra_formats``) and ``--no-headers``.

    The command receives ``output: OutputSpec``.  Without ``-o`` the format is ``default``
    if given, else table on a TTY and plain otherwise.
    """

    # The printers are imported by the first command that prints (not by every command's context).
    from kpctl.output import registry
    from kpctl.output.listing import OutputSpec

    names: Sequence[str] = registry.choices(extra_formats)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @click.option(
            "-o",
            "--output",
            "output_format",
            type=click.Choice(names, case_sensitive=False),
            default=None,
            help="Output format: " + ", ".join(names) + ".",
        )
        @click.option("--no-headers", is_flag=True, help="Omit header rows in table, wide and plain output.")
        @functools.wraps(func)
        def wrapper(*args: Any, output_format: str | None, no_headers: bool, **kwargs: Any) -> Any:
            app = click.get_current_context().find_object(AppContext) or AppContext()
            fmt = (output_format or default or registry.default_format(app.env)).lower()
            return func(*args, output=OutputSpec(fmt, no_headers), **kwargs)

        return wrapper

    return decorator
