"""`kpctl ipset apply`: run a set plan (kpctl.core.ipset_diff) against the kernel, all or nothing.

1. Check: sets the plan destroys must not be in use by iptables (their kernel reference count
   beyond list:set memberships), so the last step cannot be refused half done.
2. Stage and commit: new sets and rebuilt ones are created and filled (rebuilt ones under a
   temporary name), members are added and deleted in place in the live sets, rebuilt sets are
   swapped in.  Each step records its undo before it runs; on a kernel refusal the undo steps
   run newest first (a batch refused part way is undone whole: deletes and adds of the undo
   use ``exist``), so the sets are as before.
3. Finish: the old contents of swapped sets and the sets no longer wanted are destroyed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from itertools import groupby

from kpctl.backends.ipset_netlink import CMD_ADD, CMD_DEL, IPSetNetlink
from kpctl.core.ipset_diff import SetPlan
from kpctl.core.ipset_save import RestoreCommand
from kpctl.errors import KernelError, KpctlError, NotFound
from kpctl.model.ipset import IPSet, IPSetEntry


def check_destroys(plan: SetPlan, kernel: Sequence[IPSet]) -> None:
    """Refuse (before any change) a plan that destroys a set an iptables rule still uses."""
    in_lists: dict[str, int] = {}
    for ipset in kernel:
        if ipset.type == "list:set":
            for member in ipset.members:
                in_lists[member.name or member.raw] = in_lists.get(member.name or member.raw, 0) + 1
    by_name = {ipset.name: ipset for ipset in kernel}
    for op in plan.finish:
        doomed = by_name.get(op.name) if op.command == "destroy" else None
        if doomed is not None and (doomed.references or 0) - in_lists.get(op.name, 0) > 0:
            raise KernelError(f"set {op.name!r} is in use by a kernel component (an iptables rule?); "
                              "cannot destroy or rebuild it with another type", "keep it in the file, or remove the rule first")


def execute_plan(nl: IPSetNetlink, plan: SetPlan, kernel: Sequence[IPSet]) -> None:
    headers = {ipset.name: ipset for ipset in kernel}
    undo: list[Callable[[], None]] = []
    try:
        for (command, name), group in groupby(plan.stage + plan.commit, key=lambda op: (op.command, op.name)):
            _run(nl, command, name, list(group), headers, undo)
    except KpctlError as exc:
        failed = 0
        for step in reversed(undo):
            try:
                step()
            except NotFound:
                pass  # the step it undoes never happened
            except KpctlError:
                failed += 1
        if failed:
            exc.message = f"{exc.message} (rollback incomplete: {failed} undo step(s) failed)"
            exc.args = (exc.message,)
        raise
    for op in plan.finish:
        if op.command == "rename":
            nl.rename(op.name, op.name2)
        else:
            nl.flush(op.name)
            nl.destroy(op.name)


def _run(nl: IPSetNetlink, command: str, name: str, ops: list[RestoreCommand], headers: dict[str, IPSet],
         undo: list[Callable[[], None]]) -> None:
    if command == "create":
        for op in ops:
            assert op.ipset is not None
            headers[op.name] = op.ipset
            undo.append(partial(_destroy, nl, op.name))
            nl.create(op.ipset)
    elif command in ("add", "del"):
        header = headers[name]
        entries: list[IPSetEntry] = [op.entry for op in ops if op.entry is not None]
        forward, backward = (CMD_ADD, CMD_DEL) if command == "add" else (CMD_DEL, CMD_ADD)
        # exist: the undo of a batch refused part way meets members it never changed
        undo.append(lambda: nl.add_many(header, entries, exist=True, command=backward))
        nl.add_many(header, entries, exist=False, command=forward)
    elif command == "swap":
        for op in ops:
            undo.append(partial(nl.swap, op.name, op.name2))
            nl.swap(op.name, op.name2)
    else:
        raise KernelError(f"unexpected set operation {command!r}")


def _destroy(nl: IPSetNetlink, name: str) -> None:
    nl.flush(name)
    nl.destroy(name)
