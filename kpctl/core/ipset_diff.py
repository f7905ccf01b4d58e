"""Declarative ipsets: the sets of an ``ipset save`` file against the kernel's, as changes and operations.

Members are compared by what identifies them plus the options the user sets (comment,
nomatch, skbinfo…), never by what the kernel changes by itself (remaining timeout, counters),
so unchanged members are not touched and keep their counters and timeouts.  A set whose header
the kernel would not accept as the same set (type, family or an option other than hashsize and
initval) is rebuilt aside under a temporary name and swapped in (``ipset swap`` keeps iptables
rules pointing at the name).

The operations are :class:`kpctl.core.ipset_save.RestoreCommand` lines (the restore file's
model), in the order they run: an ``ipset restore`` input that does the same.  Everything is
keyed by name and member key (no scan per member), so a set of 100,000 members with a 1% change
yields only that 1%.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kpctl.core.ipset_entry import format_entry_options
from kpctl.core.ipset_save import RestoreCommand, format_header
from kpctl.model.ipset import IPSet, IPSetEntry


def compatible(a: IPSet, b: IPSet) -> bool:
    """Whether the kernel swaps the two sets (same type and family)."""
    return a.type == b.type and a.family == b.family


def same_set(kernel: IPSet, wanted: IPSet) -> bool:
    """What the kernel accepts for ``create -exist`` on an existing set (its same_set check):
    type, family and every option but hashsize (which the kernel grows) and initval."""
    if not compatible(kernel, wanted):
        return False
    bits = 128 if kernel.family == "inet6" else 32

    def options(s: IPSet) -> tuple[object, ...]:
        maxelem = (s.maxelem or 65536) if s.type.startswith("hash:") else None
        size = (s.size or 8) if s.type == "list:set" else None
        netmask = None if s.netmask in (None, bits) else s.netmask
        return (maxelem, size, netmask, s.bitmask, s.markmask, s.range, s.timeout, s.counters, s.comment,
                s.skbinfo)

    return options(kernel) == options(wanted)


def member_key(entry: IPSetEntry) -> str:
    """The element and the options the user chose; not the remaining timeout nor the counters."""
    return entry.raw + format_entry_options(entry, runtime=False)


@dataclass(frozen=True)
class SetChange:
    """One row of an ipset diff."""

    action: str  # create|rebuild|add|delete|destroy
    set: str
    member: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "set": self.set, "member": self.member, "detail": self.detail}


@dataclass(frozen=True)
class SetPlan:
    """``stage`` builds new sets and rebuilt ones aside; ``commit`` changes live sets in place and
    swaps the rebuilt ones in (both undoable); ``finish`` destroys what is no longer wanted."""

    changes: tuple[SetChange, ...]
    stage: tuple[RestoreCommand, ...]
    commit: tuple[RestoreCommand, ...]
    finish: tuple[RestoreCommand, ...]

    @property
    def operations(self) -> tuple[RestoreCommand, ...]:
        return self.stage + self.commit + self.finish

    def to_dict(self) -> dict[str, Any]:
        return {"equal": not self.changes, "changes": [change.to_dict() for change in self.changes],
                "operations": [op.describe() for op in self.operations]}


def _lists_last(sets: Sequence[IPSet]) -> list[IPSet]:
    """list:set members must exist before the list is filled."""
    return sorted(sets, key=lambda s: s.type == "list:set")


def plan_sets(kernel: Sequence[IPSet], desired: Sequence[IPSet], temp_name: Callable[[int], str]) -> SetPlan:
    """What turns the ``kernel`` sets (with members) into ``desired``; ``temp_name(n)`` names the n-th set built aside."""
    current = {ipset.name: ipset for ipset in kernel}
    changes: list[SetChange] = []
    stage: list[RestoreCommand] = []
    commit: list[RestoreCommand] = []
    finish: list[RestoreCommand] = []
    wanted = {ipset.name for ipset in desired}
    rebuilt = 0

    def build(name: str, ipset: IPSet) -> None:
        stage.append(RestoreCommand("create", 0, name, ipset=replace(ipset, name=name, members=())))
        stage.extend(RestoreCommand("add", 0, name, entry=member) for member in ipset.members)

    for ipset in _lists_last(desired):
        old = current.get(ipset.name)
        if old is None:
            changes.append(SetChange("create", ipset.name, detail=f"{ipset.type} {format_header(ipset)}".strip()))
            build(ipset.name, ipset)
            changes.extend(SetChange("add", ipset.name, member_key(m)) for m in ipset.members)
        elif not same_set(old, ipset):
            rebuilt += 1
            temp = temp_name(rebuilt)
            changes.append(SetChange("rebuild", ipset.name, detail=f"{old.type} {format_header(old)} -> "
                                     f"{ipset.type} {format_header(ipset)}"))
            build(temp, ipset)
            if compatible(old, ipset):
                commit.append(RestoreCommand("swap", 0, temp, name2=ipset.name))
                finish.append(RestoreCommand("destroy", 0, temp))
            else:  # the kernel swaps only sets of one type and family: the old one goes first
                finish.append(RestoreCommand("destroy", 0, ipset.name))
                finish.append(RestoreCommand("rename", 0, temp, name2=ipset.name))
        else:
            present = {member_key(m): m for m in old.members}
            for member in ipset.members:
                if present.pop(member_key(member), None) is None:
                    changes.append(SetChange("add", ipset.name, member_key(member)))
                    commit.append(RestoreCommand("add", 0, ipset.name, entry=member))
            for key, member in present.items():
                changes.append(SetChange("delete", ipset.name, key))
                commit.append(RestoreCommand("del", 0, ipset.name, entry=member))
    for ipset in sorted(kernel, key=lambda s: s.type != "list:set"):  # lists first: they hold the others
        if ipset.name not in wanted:
            changes.append(SetChange("destroy", ipset.name, detail=f"{len(ipset.members)} members"))
            finish.append(RestoreCommand("destroy", 0, ipset.name))
    return SetPlan(tuple(changes), tuple(stage), tuple(commit), tuple(finish))
