"""How a Trace prints: a rich tree (TTY), plain text (pipes), JSON/YAML (every step).

The tree and text show the rules that mattered; runs of rules that did not match are
folded into one line ("… 12 rules did not match") unless ``-o wide``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kpctl.model.trace import Disposition, Outcome, Trace, TraceStep
from kpctl.output.listing import Column, Listing
from kpctl.output.text import escape_cell

FOLD_AFTER = 3
_STYLE = {Disposition.DELIVERED: "bold green", Disposition.TO_LOCAL_STACK: "bold yellow",
          Disposition.EXITS_NODE: "bold yellow"}


def _pct(value: float | None) -> str:
    if value is None:
        return "?"
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _where(step: TraceStep) -> str:
    if step.stage in ("iptables", "nftables") and step.chain:
        number = f" #{step.rule_number}" if step.rule_number else ""
        return f"{step.table} {step.chain}{number}"
    return step.stage


def step_line(step: TraceStep) -> str:
    """One line per step: where, the rule, matched or not and why, what it did."""
    parts = [f"{step.hook:<11} {_where(step)}"]
    if step.rule and step.stage != "ipvs":
        parts.append(step.rule)
    if step.stage == "ipvs" and step.rule:
        parts.append(f"service {step.rule}")
    if step.matched is False:
        parts.append(f"✗ {step.reason}")
    elif step.action:
        parts.append(f"→ {step.action}")
        if step.reason and step.stage not in ("iptables", "nftables") or (step.reason and step.matched):
            parts.append(f"({step.reason})")
    else:
        parts.append(step.reason)
    if step.changed and step.before is not None and step.after is not None:
        parts.append(f"[{step.before} ⇒ {step.after}]")
    return "  ".join(escape_cell(p) for p in parts)


def _folded(steps: Iterable[TraceStep], wide: bool) -> list[tuple[str, int, str, bool]]:
    """(hook, depth, text, dim) lines, with runs of non-matching rules folded."""
    out: list[tuple[str, int, str, bool]] = []
    run: list[TraceStep] = []

    def flush() -> None:
        if len(run) > FOLD_AFTER and not wide:
            first = run[0]
            out.append((first.hook, first.depth,
                        f"{first.hook:<11} … {len(run)} rules in {first.table} {first.chain} did not match", True))
        else:
            out.extend((s.hook, s.depth, step_line(s), True) for s in run)
        run.clear()

    for step in steps:
        if step.matched is False:
            if run and (run[-1].chain != step.chain):
                flush()
            run.append(step)
            continue
        flush()
        if step.matched is None and step.action and step.action.startswith("return to") and not wide:
            continue
        out.append((step.hook, step.depth, step_line(step), False))
    flush()
    return out


def _outcome_title(index: int, outcome: Outcome, count: int) -> str:
    chance = f"{_pct(outcome.probability)}" + ("" if not outcome.chance_note else f" ({outcome.chance_note})")
    target = f" → {outcome.server}" if outcome.server else ""
    head = f"branch {index}/{count}: {chance}" if count > 1 else f"chance {chance}"
    return f"{head}: {outcome.disposition.value}{target}"


def _outcome_summary(outcome: Outcome) -> list[str]:
    lines = [outcome.reason]
    if outcome.final is not None:
        lines.append(f"arrives as {outcome.final}")
    if outcome.disposition is Disposition.DELIVERED:
        lines.append("source masqueraded: " + ("yes (the server sees the node's address)" if outcome.masqueraded
                                               else "no (the server sees the client's address)"))
    return lines


def format_text(trace: Trace, wide: bool = False) -> str:
    mode = "no kube-proxy state found" if trace.mode == "none" else f"kube-proxy {trace.mode} mode"
    lines = [f"trace {trace.service} from {trace.origin} ({mode})",
             f"packet {trace.packet}" + (f" in via {trace.packet.iif}" if trace.packet.iif else "")]
    for _, depth, text, _ in _folded(trace.steps, wide):
        lines.append("  " + "  " * depth + text)
    for index, outcome in enumerate(trace.outcomes, 1):
        lines.append(_outcome_title(index, outcome, len(trace.outcomes)))
        for _, depth, text, _ in _folded(outcome.steps, wide):
            lines.append("    " + "  " * depth + text)
        lines.extend("    = " + escape_cell(text) for text in _outcome_summary(outcome))
    for note in trace.notes:
        lines.append(f"note: {escape_cell(note)}")
    lines.append(f"disposition: {trace.disposition.value}")
    return "\n".join(lines) + "\n"


def render_tree(trace: Trace, wide: bool = False) -> Any:
    from rich.text import Text
    from rich.tree import Tree

    style = _STYLE.get(trace.disposition, "bold red")
    root = Tree(Text.assemble((f"trace {trace.service}", "bold"), f" from {trace.origin}  ",
                              (trace.disposition.value, style), f"  ({trace.mode} mode)"))
    root.add(Text(f"packet {trace.packet}" + (f" in via {trace.packet.iif}" if trace.packet.iif else "")))

    def grow(parent: Any, steps: tuple[TraceStep, ...]) -> None:
        hook_node, hook_name = parent, None
        for hook, depth, text, dim in _folded(steps, wide):
            if hook != hook_name:
                hook_node, hook_name = parent.add(Text(hook, style="bold cyan")), hook
            body = text[len(hook):].strip() if text.startswith(hook) else text
            hook_node.add(Text("  " * depth + body, style="dim" if dim else ""))

    grow(root, trace.steps)
    for index, outcome in enumerate(trace.outcomes, 1):
        branch = root.add(Text(_outcome_title(index, outcome, len(trace.outcomes)),
                               style=_STYLE.get(outcome.disposition, "bold red")))
        grow(branch, outcome.steps)
        for text in _outcome_summary(outcome):
            branch.add(Text("= " + escape_cell(text), style="italic"))
    for note in trace.notes:
        root.add(Text(f"note: {escape_cell(note)}", style="yellow"))
    return root


def trace_listing(trace: Trace) -> Listing:
    rows = [{"branch": i, "chance": _pct(o.probability), "disposition": o.disposition.value,
             "server": o.server or "", "masqueraded": "yes" if o.masqueraded else "no", "reason": o.reason}
            for i, o in enumerate(trace.outcomes, 1)]
    columns = [Column("BRANCH", "branch"), Column("CHANCE", "chance", justify="right"),
               Column("DISPOSITION", "disposition"), Column("SERVER", "server"),
               Column("MASQUERADED", "masqueraded"), Column("REASON", "reason", priority=1)]
    return Listing(columns, rows, trace.to_dict(), formats={
        "tree": lambda: render_tree(trace),
        "table": lambda: render_tree(trace),
        "wide": lambda: render_tree(trace, wide=True),
        "plain": lambda: format_text(trace),
    })
