"""`kpctl services` as a Listing: one row per (service address, endpoint); json/yaml the report."""

from __future__ import annotations

from typing import Any

from kpctl.output.listing import Column, Listing


def _percent(chance: float) -> str:
    return f"{chance * 100:.1f}%"


def _rows(service: Any, with_drift: bool) -> list[dict[str, Any]]:
    common = {"service": service.address_text, "mode": service.mode, "kind": service.kind,
              "name": service.name or "-", "policy": service.policy or "-",
              "affinity": f"{service.affinity}s" if service.affinity else "-",
              "scheduler": service.scheduler or "random", "masquerade": service.masquerade or "-",
              "verdict": service.verdict}
    rows = [{**common, "endpoint": f"{'[' + e.address + ']' if ':' in e.address else e.address}:{e.port}",
             "chance": _percent(e.chance), "drift": e.drift or "-"} for e in service.endpoints]
    if not service.endpoints:
        rows.append({**common, "endpoint": "-", "chance": service.verdict, "drift": "-"})
    if with_drift:
        rows += [{**common, "endpoint": text, "chance": "-", "drift": "missing"} for text in service.missing]
    return rows


def services_listing(report: Any) -> Listing:
    with_drift = report.k8s_source is not None
    columns = [Column("SERVICE", "service"), Column("MODE", "mode"), Column("KIND", "kind"),
               Column("NAME", "name"), Column("POLICY", "policy"), Column("AFFINITY", "affinity", 1),
               Column("SCHEDULER", "scheduler", 1), Column("MASQUERADE", "masquerade", 1),
               Column("ENDPOINT", "endpoint"), Column("CHANCE", "chance", justify="right")]
    if with_drift:
        columns.append(Column("DRIFT", "drift"))
    title = f"mode {report.modes.get('active')} ({report.modes.get('reason')})"
    # each made only for the output that reads it (10,000 services: the other is 20-40 MiB)
    return Listing(columns=columns, rows=lambda: [row for service in report.services for row in _rows(service, with_drift)],
                   data=report.to_dict, title=title)
