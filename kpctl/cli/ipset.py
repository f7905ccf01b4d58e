"""`kpctl ipset …`: the kernel's ipsets at ipset(8) parity, plus `find`.

Input is checked completely before the first kernel request; commands that change the
kernel refuse to run on --snapshot.  Backends are imported inside command bodies.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from kpctl.cli.context import AppContext, output_options, pass_app
from kpctl.output.listing import OutputSpec


@contextlib.contextmanager
def _reader(app: AppContext) -> Iterator[Any]:
    from kpctl.backends.ipset import open_ipset

    backend = open_ipset(app)
    try:
        yield backend
    finally:
        backend.close()


@contextlib.contextmanager
def _live(app: AppContext, what: str, why: str = "changes the kernel") -> Iterator[Any]:
    from kpctl.backends.ipset import open_live

    backend = open_live(app, what, why)
    try:
        yield backend
    finally:
        backend.close()


def _names(*names: str | None) -> None:
    from kpctl.core.ipset_entry import validate_set_name

    for name in names:
        if name is not None:
            validate_set_name(name)


@click.group()
def ipset() -> None:
    """Sets of addresses, ports and networks in the kernel (ipset's job).

    \b
    Examples:
      kpctl ipset list --names
      kpctl ipset test KUBE-CLUSTER-IP 10.254.0.1,tcp:443
    """


@ipset.command("list")
@click.argument("name", required=False)
@click.option("-t", "--terse", is_flag=True, help="Headers only, no members.")
@click.option("-n", "--names", "names_only", is_flag=True, help="Set names only.")
@output_options("save", "ipset")
@pass_app
def list_sets(app: AppContext, name: str | None, terse: bool, names_only: bool, output: OutputSpec) -> None:
    """List sets with all their members (ipset list).

    `-o save` prints what `ipset save` prints; `-o ipset` what `ipset list` prints.

    \b
    Examples:
      kpctl ipset list
      kpctl ipset list KUBE-CLUSTER-IP -o json
      kpctl ipset list --terse
      kpctl --snapshot node.json ipset list -o save
    """
    from kpctl.cli.ipset_views import names_listing, sets_listing

    _names(name)
    with _reader(app) as reader:
        if names_only:
            names = [name] if name and reader.list_sets(name, header_only=True) else reader.names()
            app.render(names_listing(names), output)
            return
        sets = reader.list_sets(name, header_only=terse)
    app.render(sets_listing(sets, terse, output.format), output)


@ipset.command("create")
@click.argument("name")
@click.argument("set_type", metavar="TYPE")
@click.option("--family", type=click.Choice(["inet", "inet6"]), help="Address family (hash types; default inet).")
@click.option("--hashsize", metavar="N", help="Initial hash size (power of two).")
@click.option("--maxelem", metavar="N", help="Maximum number of members.")
@click.option("--timeout", metavar="S", help="Default member timeout in seconds (enables per-member timeouts).")
@click.option("--counters", is_flag=True, help="Packet and byte counters per member.")
@click.option("--comment", is_flag=True, help="Comments on members.")
@click.option("--skbinfo", is_flag=True, help="skbmark/skbprio/skbqueue per member.")
@click.option("--range", "range_", metavar="A-B", help="Range of a bitmap type: IPs (A-B or NET/CIDR) or ports.")
@click.option("--netmask", metavar="CIDR", help="Store addresses masked to this prefix (hash:ip, bitmap:ip).")
@click.option("--bucketsize", metavar="N", help="Hash bucket size (2..12).")
@click.option("--size", metavar="N", help="list:set size.")
@click.option("--exist", is_flag=True, help="No error if an identical set exists.")
@pass_app
def create(app: AppContext, name: str, set_type: str, exist: bool, **options: Any) -> None:
    """Create a set (ipset create).

    \b
    Examples:
      kpctl ipset create KUBE-CLUSTER-IP hash:ip,port --comment
      kpctl ipset create KUBE-NODE-PORT-TCP bitmap:port --range 0-65535
      kpctl ipset create blocked hash:net --family inet6 --timeout 300 --counters
    """
    from kpctl.core.ipset_save import parse_create

    tokens: list[str] = []
    for key, value in options.items():
        if value is True:
            tokens.append(key)
        elif value not in (None, False):
            tokens += [key.rstrip("_"), str(value)]
    header = parse_create(name, set_type, tokens)
    with _live(app, "ipset create") as backend:
        backend.create(header, exist=exist)


def _entry_tokens(entry: str, timeout: str | None, comment: str | None, nomatch: bool) -> list[str]:
    from kpctl.core.ipset_entry import tokenize

    tokens = tokenize(entry)
    if timeout is not None:
        tokens += ["timeout", timeout]
    if comment is not None:
        tokens += ["comment", comment]
    return tokens + (["nomatch"] if nomatch else [])


def _parsed(backend: Any, name: str, tokens: list[str]) -> tuple[Any, Any]:
    from kpctl.core.ipset_entry import parse_member

    header = backend.header(name)
    return header, parse_member(header, tokens)


@ipset.command("add")
@click.argument("name")
@click.argument("entry")
@click.option("--timeout", metavar="S", help="Timeout of this member (set needs --timeout).")
@click.option("--comment", metavar="TEXT", help="Comment on this member (set needs --comment).")
@click.option("--nomatch", is_flag=True, help="Exception: packets matching this net do not match the set.")
@click.option("--exist", is_flag=True, help="No error if the member is there (its options are updated).")
@pass_app
def add(app: AppContext, name: str, entry: str, timeout: str | None, comment: str | None, nomatch: bool,
        exist: bool) -> None:
    """Add a member in ipset(8) syntax (ipset add).

    \b
    Examples:
      kpctl ipset add KUBE-CLUSTER-IP 10.254.0.1,tcp:443
      kpctl ipset add KUBE-LOOP-BACK 172.30.1.5,tcp:8080,172.30.1.5
      kpctl ipset add blocked 10.0.0.0/8 --timeout 60 --comment "lab"
    """
    _names(name)
    tokens = _entry_tokens(entry, timeout, comment, nomatch)
    with _live(app, "ipset add") as backend:
        header, parsed = _parsed(backend, name, tokens)
        backend.add(header, parsed, exist=exist)


@ipset.command("delete")
@click.argument("name")
@click.argument("entry")
@click.option("--exist", is_flag=True, help="No error if the member is not there.")
@pass_app
def delete(app: AppContext, name: str, entry: str, exist: bool) -> None:
    """Delete a member (ipset del).

    \b
    Example:
      kpctl ipset delete KUBE-CLUSTER-IP 10.254.0.1,tcp:443
    """
    _names(name)
    with _live(app, "ipset delete") as backend:
        header, parsed = _parsed(backend, name, _entry_tokens(entry, None, None, False))
        backend.delete(header, parsed, exist=exist)


@ipset.command("test")
@click.argument("name")
@click.argument("entry")
@pass_app
def test(app: AppContext, name: str, entry: str) -> int:
    """Is ENTRY a member of NAME? Exit 0 yes, 1 no (ipset test).

    \b
    Example:
      kpctl ipset test KUBE-CLUSTER-IP 10.254.0.1,tcp:443 && echo member
    """
    _names(name)
    # the kernel's answer (nets, ranges, nomatch) is not modelled for a snapshot; `ipset find` reads one
    with _live(app, "ipset test", "asks the kernel (ipset find reads a snapshot)") as backend:
        header, parsed = _parsed(backend, name, _entry_tokens(entry, None, None, False))
        member = backend.test(header, parsed)
    click.echo(f"{parsed.raw} is {'' if member else 'NOT '}in set {name}.")
    return 0 if member else 1


@ipset.command("flush")
@click.argument("name", required=False)
@pass_app
def flush(app: AppContext, name: str | None) -> None:
    """Remove all members of NAME, or of every set (ipset flush).

    \b
    Example:
      kpctl ipset flush KUBE-LOOP-BACK
    """
    _names(name)
    with _live(app, "ipset flush") as backend:
        backend.flush(name)


@ipset.command("destroy")
@click.argument("name", required=False)
@pass_app
def destroy(app: AppContext, name: str | None) -> None:
    """Destroy NAME, or every set not in use (ipset destroy).

    \b
    Example:
      kpctl ipset destroy test-set
    """
    _names(name)
    with _live(app, "ipset destroy") as backend:
        backend.destroy(name)


@ipset.command("rename")
@click.argument("old")
@click.argument("new")
@pass_app
def rename(app: AppContext, old: str, new: str) -> None:
    """Rename a set (ipset rename).

    \b
    Example:
      kpctl ipset rename blocked blocked-old
    """
    _names(old, new)
    with _live(app, "ipset rename") as backend:
        backend.rename(old, new)


@ipset.command("swap")
@click.argument("first", metavar="A")
@click.argument("second", metavar="B")
@pass_app
def swap(app: AppContext, first: str, second: str) -> None:
    """Exchange the contents of two sets of the same type (ipset swap).

    \b
    Example:
      kpctl ipset swap KUBE-CLUSTER-IP KUBE-CLUSTER-IP-new
    """
    _names(first, second)
    with _live(app, "ipset swap") as backend:
        backend.swap(first, second)


@ipset.command("save")
@click.argument("name", required=False)
@pass_app
def save(app: AppContext, name: str | None) -> None:
    """Print sets in ipset(8)'s save format, byte for byte as `ipset save` (ipset save).

    \b
    Examples:
      kpctl ipset save > ipsets.txt
      kpctl --snapshot node.json ipset save KUBE-CLUSTER-IP
    """
    from kpctl.core.ipset_save import format_save

    _names(name)
    with _reader(app) as reader:
        text = format_save(reader.list_sets(name))
    click.echo(text, nl=False)


@ipset.command("restore")
@click.argument("file", default="-", metavar="[FILE|-]")
@click.option("--exist", is_flag=True, help="Ignore create of identical existing sets and add of existing members.")
@pass_app
def restore(app: AppContext, file: str, exist: bool) -> None:
    """Apply a file in `ipset save` / `ipset restore` format, all or nothing.

    Everything is validated first; changed sets are built aside and swapped in, so a
    failing line leaves the kernel exactly as it was.

    \b
    Examples:
      kpctl ipset restore ipsets.txt
      kpctl ipset save | ssh node2 kpctl ipset restore --exist
    """
    from kpctl.backends.ipset_restore import execute_restore, plan_restore
    from kpctl.core.ipset_save import parse_restore

    commands = parse_restore(_read(file))
    with _live(app, "ipset restore") as backend:
        summary = execute_restore(backend, plan_restore(backend, commands, exist))
    if app.verbose:
        click.echo(f"created {len(summary.created)}, replaced {len(summary.replaced)}, "
                   f"destroyed {len(summary.destroyed)} sets", err=True)


def _read(file: str) -> str:
    from kpctl.errors import InvalidInput, NotFound

    if file == "-":
        return sys.stdin.read()
    try:
        with open(file, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise NotFound(f"file {file!r} not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {file!r}: {exc}") from None


@ipset.command("find")
@click.argument("target", metavar="ADDR[:PORT[/PROTO]]")
@output_options()
@pass_app
def find(app: AppContext, target: str, output: OutputSpec) -> int:
    """Every set and member that ADDR (and PORT) would match, in any dimension.

    Without /PROTO a port matches members of any protocol.  list:set sets show the member
    set they match through.  Exit 1 when nothing matches.

    \b
    Examples:
      kpctl ipset find 10.254.0.1:443/tcp
      kpctl ipset find 172.30.1.5
      kpctl --snapshot node.json ipset find [fd00::10]:80 -o json
    """
    from kpctl.cli.ipset_views import find_listing
    from kpctl.core.ipset_find import find_matches, parse_find_target

    address, port, proto = parse_find_target(target)
    with _reader(app) as reader:
        matches = find_matches(reader.list_sets(), address, port, proto)
    app.render(find_listing(matches), output)
    return 0 if matches else 1


def _register_apply() -> None:
    from kpctl.cli.ipset_apply import apply, diff  # declarative diff/apply live in their own module

    ipset.add_command(diff)
    ipset.add_command(apply)


_register_apply()
