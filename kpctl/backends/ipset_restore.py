"""`ipset restore`, all or nothing.

1. Validate: the whole file is parsed (kpctl.core.ipset_save.parse_restore) and simulated
   against the kernel's set headers; any error names its line and nothing has been touched.
2. Stage: every set the file changes is built aside in a temporary set (``kpctl-XXXXXX-N``):
   a copy of the kernel's set when the file edits it, an empty one when it flushes or creates
   it.  A kernel refusal here (element already added, set full, type unsupported…) destroys
   the temporaries: the kernel is exactly as before.
3. Commit: temporaries are swapped with the sets they replace (``ipset swap`` keeps iptables
   references and list:set memberships pointing at the same name) or renamed to new names;
   a failure swaps/renames back.  Then the old contents and the sets the file destroyed go.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from kpctl.backends.ipset_netlink import CMD_ADD, CMD_DEL, IPSetNetlink, entry_data
from kpctl.core.ipset_diff import compatible, same_set
from kpctl.core.ipset_entry import tokenize
from kpctl.core.ipset_entry import parse_member
from kpctl.core.ipset_save import RestoreCommand
from kpctl.errors import AlreadyExists, InvalidInput, KernelError, KpctlError, NotFound
from kpctl.model.ipset import IPSet


@dataclass
class _Slot:
    header: IPSet  # named as the set will be called after the restore
    origin: str | None  # the kernel set whose contents it starts from
    temp: str | None = None


@dataclass
class _Stage:
    """Operations on temporary sets, in order (phase 2)."""

    kind: str  # create|copy|add|del|flush|destroy
    temp: str
    header: IPSet | None = None
    origin: str = ""
    items: list[bytes] = field(default_factory=list)  # add/del: each member's IPSET_ATTR_DATA nest
    elements: dict[int, str] = field(default_factory=dict)  # line -> element, for errors
    exist: bool = False


@dataclass
class RestoreSummary:
    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "replaced": self.replaced, "destroyed": self.destroyed}


class _Planner:
    def __init__(self, kernel: dict[str, IPSet], external_refs: dict[str, int],
                 lists: dict[str, list[str]]) -> None:
        self.kernel = kernel
        self.external_refs = external_refs
        self.lists = lists  # list:set name -> member set names, as the file leaves them so far
        self.slots = {name: _Slot(header, name) for name, header in kernel.items()}
        self.stages: list[_Stage] = []
        self.token = secrets.token_hex(3)
        self.count = 0
        self.physical: set[str] = set()

    def _temp_name(self) -> str:
        self.count += 1
        return f"kpctl-{self.token}-{self.count}"

    def _slot(self, name: str) -> _Slot:
        if name not in self.slots:
            raise NotFound(f"set {name!r} does not exist")
        return self.slots[name]

    def materialize(self, name: str, copy: bool = True) -> str:
        slot = self._slot(name)
        if slot.temp is None:
            # A set new to the kernel is built under its own name: renaming it at commit would
            # fail once a staged list:set references it, and destroying it undoes it.
            direct = slot.origin is None and name not in self.kernel and name not in self.physical
            slot.temp = name if direct else self._temp_name()
            self.physical.add(slot.temp)
            self.stages.append(_Stage("create", slot.temp, header=replace(slot.header, name=slot.temp)))
            if copy and slot.origin is not None:
                self.stages.append(_Stage("copy", slot.temp, origin=slot.origin))
        return slot.temp

    def _check_free(self, name: str, action: str) -> None:
        slot = self.slots[name]
        if slot.origin is not None and self.external_refs.get(slot.origin, 0) > 0:
            raise KernelError(f"set {slot.origin!r} is in use by a kernel component (an iptables rule?); cannot {action} it")
        users = [owner for owner, members in self.lists.items() if name in members]
        if users:
            raise KernelError(f"set {name!r} is a member of list:set {users[0]!r}; cannot {action} it")

    def apply(self, command: RestoreCommand, exist_all: bool) -> None:
        exist = command.exist or exist_all
        kind, name = command.command, command.name
        if kind == "create":
            assert command.ipset is not None
            if name in self.slots:
                if exist and same_set(self.slots[name].header, command.ipset):
                    return
                if exist:
                    raise AlreadyExists(f"set {name!r} already exists with a different type or options")
                raise AlreadyExists(f"set {name!r} already exists; use --exist")
            self.slots[name] = _Slot(command.ipset, None)
            if command.ipset.type == "list:set":
                self.lists[name] = []
            self.materialize(name, copy=False)
        elif kind in ("add", "del"):
            slot = self._slot(name)
            entry = command.entry
            if entry is None:  # a line of a set only the kernel had
                entry = parse_member(slot.header, tokenize(command.name2))
            if slot.header.type == "list:set" and entry.name is not None:
                members = self.lists.setdefault(name, [])
                if kind == "add" and entry.name not in members:
                    members.append(entry.name)
                elif kind == "del" and entry.name in members:
                    members.remove(entry.name)
                entry = replace(entry, name=self._member_ref(entry.name))
            last = self.stages[-1] if slot.temp is not None else None  # (stages exist once a temporary does)
            if last is None or not (last.temp == slot.temp and last.kind == kind and last.exist == exist):
                last = _Stage(kind, self.materialize(name), exist=exist)
                self.stages.append(last)
            last.items.append(entry_data(slot.header, entry, command.lineno))
            last.elements[command.lineno] = entry.raw
        elif kind == "flush":
            for target in [name] if name else list(self.slots):
                slot = self._slot(target)
                if target in self.lists:
                    self.lists[target] = []
                if slot.temp is None:
                    self.materialize(target, copy=False)
                else:
                    self.stages.append(_Stage("flush", slot.temp))
        elif kind == "destroy":
            for target in [name] if name else list(self.slots):
                self._slot(target)
                self._check_free(target, "destroy")
                slot = self.slots.pop(target)
                self.lists.pop(target, None)
                if slot.temp is not None:
                    self.stages.append(_Stage("destroy", slot.temp))
        elif kind == "rename":
            self._slot(name)
            if command.name2 in self.slots:
                raise AlreadyExists(f"set {command.name2!r} already exists")
            self._check_free(name, "rename")
            slot = self.slots.pop(name)
            slot.header = replace(slot.header, name=command.name2)
            self.slots[command.name2] = slot
            if name in self.lists:
                self.lists[command.name2] = self.lists.pop(name)
        elif kind == "swap":
            first, second = self._slot(name), self._slot(command.name2)
            if not compatible(first.header, second.header):
                raise InvalidInput(f"sets {name!r} and {command.name2!r} cannot be swapped: their type or family differ")
            self.slots[name], self.slots[command.name2] = second, first
            first_list, second_list = self.lists.pop(name, None), self.lists.pop(command.name2, None)
            if second_list is not None:
                self.lists[name] = second_list
            if first_list is not None:
                self.lists[command.name2] = first_list
            second.header, first.header = replace(second.header, name=name), replace(first.header, name=command.name2)

    def _member_ref(self, member: str) -> str:
        """The kernel name a list:set member must be added under while staging."""
        slot = self._slot(member)
        if slot.origin == member and member in self.kernel:
            return member  # kept by index through the commit's swap
        return self.materialize(member)

    def finish(self) -> None:
        for name, slot in self.slots.items():
            if slot.temp is None and slot.origin != name:
                self.materialize(name)


def plan_restore(nl: IPSetNetlink, commands: list[RestoreCommand], exist_all: bool) -> _Planner:
    """Validate ``commands`` against the kernel's headers (no changes) and plan the staging."""
    kernel = {s.name: s for s in nl.list_sets(header_only=True)}
    lists: dict[str, list[str]] = {}
    for ipset in kernel.values():
        if ipset.type == "list:set":
            lists[ipset.name] = [m.name or "" for m in nl.list_sets(ipset.name)[0].members]
    list_refs = Counter(member for members in lists.values() for member in members)
    external = {name: (s.references or 0) - list_refs[name] for name, s in kernel.items()}
    planner = _Planner(kernel, external, lists)
    for command in commands:
        try:
            planner.apply(command, exist_all)
        except KpctlError as exc:
            raise type(exc)(f"line {command.lineno}: {exc.message}", exc.hint) from None
    planner.finish()
    return planner


def _destroy_quietly(nl: IPSetNetlink, names: list[str], types: dict[str, str]) -> None:
    for name in sorted(names, key=lambda n: types.get(n) != "list:set"):
        try:
            nl.flush(name)
            nl.destroy(name)
        except KpctlError:
            pass


def execute_restore(nl: IPSetNetlink, planner: _Planner) -> RestoreSummary:
    temps: list[str] = []
    types: dict[str, str] = {}
    headers: dict[str, IPSet] = {}
    try:
        for stage in planner.stages:
            _stage(nl, stage, temps, types, headers)
    except KpctlError as exc:
        _destroy_quietly(nl, temps, types)
        lineno = getattr(exc, "lineno", 0)
        if lineno and not exc.message.startswith("line "):
            exc.message = f"line {lineno}: {exc.message}"
        raise _rename_temps(exc, planner) from None
    try:
        return _commit(nl, planner, temps, types)
    except KpctlError as exc:
        raise _rename_temps(exc, planner) from None


def _rename_temps(exc: KpctlError, planner: _Planner) -> KpctlError:
    """Say the user's set names in messages, not our temporaries'."""
    for name, slot in planner.slots.items():
        if slot.temp:
            exc.message = exc.message.replace(repr(slot.temp), repr(name))
    exc.args = (exc.message,)
    return exc


def _stage(nl: IPSetNetlink, stage: _Stage, temps: list[str], types: dict[str, str], headers: dict[str, IPSet]) -> None:
    if stage.kind == "create":
        assert stage.header is not None
        nl.create(stage.header)
        temps.append(stage.temp)
        types[stage.temp] = stage.header.type
        headers[stage.temp] = stage.header
    elif stage.kind == "copy":
        nl.add_packed(headers[stage.temp], nl.member_data(stage.origin), exist=False)
    elif stage.kind in ("add", "del"):
        command = CMD_ADD if stage.kind == "add" else CMD_DEL
        nl.add_packed(headers[stage.temp], stage.items, exist=stage.exist, command=command,
                      element=stage.elements.get)
    elif stage.kind == "flush":
        nl.flush(stage.temp)
    elif stage.kind == "destroy":
        nl.flush(stage.temp)
        nl.destroy(stage.temp)
        temps.remove(stage.temp)


def _commit(nl: IPSetNetlink, planner: _Planner, temps: list[str], types: dict[str, str]) -> RestoreSummary:
    summary = RestoreSummary()
    undo: list[tuple[str, str, str]] = []
    old_contents: list[str] = []
    final_names = set(planner.slots)
    doomed = [name for name in planner.kernel if name not in final_names]
    try:
        for name, slot in planner.slots.items():
            if slot.temp is None:
                continue
            if slot.temp == name:
                summary.created.append(name)
                continue
            current = planner.kernel.get(name)
            if current is not None and compatible(current, slot.header):
                nl.swap(slot.temp, name)
                undo.append(("swap", slot.temp, name))
                old_contents.append(slot.temp)
                summary.replaced.append(name)
            elif current is None:
                nl.rename(slot.temp, name)
                undo.append(("rename", name, slot.temp))
                summary.created.append(name)
        for name, slot in planner.slots.items():
            current = planner.kernel.get(name)
            if slot.temp is not None and current is not None and not compatible(current, slot.header):
                nl.destroy(name)  # a set replaced by one of another type: no swap possible
                nl.rename(slot.temp, name)
                summary.replaced.append(name)
    except KpctlError:
        for action, a, b in reversed(undo):
            if action == "swap":
                nl.swap(a, b)
            else:
                nl.rename(a, b)
        _destroy_quietly(nl, temps, types)
        raise
    kinds = {**types, **{n: s.type for n, s in planner.kernel.items()}}
    _destroy_quietly(nl, old_contents, kinds)
    for name in sorted(doomed, key=lambda n: kinds.get(n) != "list:set"):
        nl.flush(name)
        nl.destroy(name)
        summary.destroyed.append(name)
    return summary
