"""`--services FILE|-` / `--kubectl`: Kubernetes names on `ipvs list`, `vip list`, `trace`, `doctor`.

:func:`k8s_options` adds both options and hands the command ``k8s`` (a
:class:`kpctl.core.k8s_names.K8sNames`, or None when neither was given).  The annotate_*
functions add ``K8S SERVICE`` (``namespace/name:port``) and ``POD`` columns to a command's
listing and the same fields to its json/yaml document; compatibility formats (``ipvsadm``,
``save``) stay byte-identical.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import click

from kpctl.output.listing import Column, Listing

SERVICES_HELP = ("Name VIPs (namespace/name:port) and real servers (pods) from the output of "
                 "`kubectl get svc,endpointslices -A -o json` saved in FILE (- reads stdin).")
KUBECTL_HELP = "Like --services, running `kubectl get svc,endpointslices -A -o json` itself."


def k8s_options(func: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--services", "k8s_services", metavar="FILE|-", help=SERVICES_HELP)
    @click.option("--kubectl", "k8s_kubectl", is_flag=True, help=KUBECTL_HELP)
    @functools.wraps(func)
    def wrapper(*args: Any, k8s_services: str | None, k8s_kubectl: bool, **kwargs: Any) -> Any:
        return func(*args, k8s=load_names(k8s_services, k8s_kubectl), **kwargs)

    return wrapper


def load_names(services: str | None, kubectl: bool) -> Any:
    if services is not None and kubectl:
        from kpctl.errors import InvalidInput

        raise InvalidInput("--services and --kubectl exclude each other")
    if services is not None:
        from kpctl.backends.kubectl import read_services_file

        return read_services_file(services)
    if kubectl:
        from kpctl.backends.kubectl import run_kubectl

        return run_kubectl()
    return None


def _insert_after(columns: Sequence[Column], key: str, new: Column) -> list[Column]:
    out = list(columns)
    where = next((i for i, c in enumerate(out) if c.key == key), len(out) - 1)
    out.insert(where + 1, new)
    return out


def ipvs_columns(columns: Sequence[Column]) -> list[Column]:
    """An `ipvs list` listing's columns with K8S SERVICE after SERVICE and POD after SERVER."""
    return _insert_after(_insert_after(columns, "service", Column("K8S SERVICE", "k8s_service")),
                         "server", Column("POD", "pod"))


def _server(text: str) -> tuple[str, int] | None:
    from kpctl.core.address import parse_server

    try:
        address, port, _ = parse_server(text, 0)
    except Exception:  # noqa: BLE001 - a row without a server (service with none) has nothing to name
        return None
    return address, port


def _key(text: str) -> Any:
    from kpctl.core.address import parse_service

    return parse_service(text)


def annotate_ipvs(listing: Listing, names: Any) -> Listing:
    """`ipvs list`: K8S SERVICE after SERVICE, POD after SERVER (the rows and the document each
    made only when a format reads them; -o plain writes them straight: ipvs_views.plain_text)."""
    if names is None:
        return listing

    def rows() -> list[dict[str, Any]]:
        labels: dict[Any, str] = {}  # a service's key -> its label (its servers' rows repeat it)
        out = []
        for row in listing.table_rows():  # (ipvs_views' rows: each names its service and server)
            key, server = row["service_key"], row["server_key"]
            label = labels.get(key)
            if label is None:
                label = labels[key] = names.label(key) or "-"
            pod = names.pod(key, *server) if server else ""
            out.append({**row, "k8s_service": label, "pod": pod or "-"})
        return out

    def document() -> Any:
        from kpctl.model.ipvs import ServiceKey

        data = listing.document()
        if not isinstance(data, Mapping) or not isinstance(data.get("services"), list):
            return data
        services = []
        for svc in data["services"]:
            key = ServiceKey(svc.get("family", "inet"), svc.get("protocol"), svc.get("address"),
                             svc.get("port", 0), svc.get("fwmark", 0))
            servers = [{**rs, "pod": names.pod(key, rs["address"], rs["port"]) or None}
                       for rs in svc.get("servers", ())]
            services.append({**svc, "k8s_service": names.label(key) or None, "servers": servers})
        return {**data, "services": services}

    return replace(listing, columns=ipvs_columns(listing.columns), rows=rows, data=document)


def annotate_vips(listing: Listing, names: Any) -> Listing:
    """`vip list`: K8S SERVICES after SERVICES (rows and document each made only when read)."""
    if names is None:
        return listing

    def rows() -> list[dict[str, Any]]:
        return [{**row, "k8s_services": ", ".join(names.labels_at(str(row["vip"]).split("/")[0])) or "-"}
                for row in listing.table_rows()]

    def document() -> Any:
        data = listing.document()
        if not isinstance(data, list):
            return data
        return [{**v, "k8s_services": names.labels_at(str(v.get("address", "")))} if isinstance(v, Mapping) else v
                for v in data]

    columns = _insert_after(listing.columns, "services", Column("K8S SERVICES", "k8s_services"))
    return replace(listing, columns=columns, rows=rows, data=document)


def annotate_trace(listing: Listing, names: Any, service: str) -> Listing:
    """`trace`: the Service's name and each delivered branch's pod, in every format."""
    if names is None:
        return listing
    key = _key(service)
    label = names.label(key) or "not a Service in the given JSON"
    pods: dict[str, str] = {}
    rows = []
    for row in listing.table_rows():
        server = _server(str(row.get("server") or ""))
        pod = names.pod(key, *server) if server else ""
        if pod:
            pods[str(row["server"])] = pod
        rows.append({**row, "pod": pod or "-"})
    header = f"k8s: {key} is {label}" + "".join(f"\nk8s: {srv} is pod {pod}" for srv, pod in pods.items())

    def with_header(produce: Callable[[], Any]) -> Callable[[], Any]:
        def text() -> Any:
            body = produce()
            if isinstance(body, str):
                return f"{header}\n{body}"
            from rich.console import Group
            from rich.text import Text

            return Group(Text(header), body)

        return text

    formats = {name: with_header(produce) for name, produce in listing.formats.items()}
    data = listing.document()
    if isinstance(data, Mapping):
        data = {**data, "k8s": {"service": names.label(key) or None, "pods": pods}}
    columns = _insert_after(listing.columns, "server", Column("POD", "pod"))
    return replace(listing, columns=columns, rows=rows, data=data, formats=formats)


# ---- doctor ----------------------------------------------------------------------------------

def split_check_ids(check_ids: Sequence[str], names: Any) -> tuple[list[str], list[str]]:
    """(doctor's own check ids, k8s check ids).  The k8s checks run when --services/--kubectl
    is given: all of them without --check, else the ones named."""
    from kpctl.core.k8s_names import K8S_CHECKS

    k8s_ids = [i for i in check_ids if i in K8S_CHECKS]
    if k8s_ids and names is None:
        from kpctl.errors import InvalidInput

        raise InvalidInput(f"check {k8s_ids[0]!r} compares with the API: give --services FILE or --kubectl")
    core_ids = [i for i in check_ids if i not in K8S_CHECKS]
    if names is not None and not check_ids:
        k8s_ids = list(K8S_CHECKS)
    return core_ids, k8s_ids


def k8s_checks() -> list[Any]:
    """The k8s checks as doctor.Check rows (for --list-checks): they compare the services of the
    active mode, whichever it is."""
    from kpctl.core.doctor import Check
    from kpctl.core.k8s_names import K8S_CHECKS
    from kpctl.model.doctor import ERROR, WARNING

    return [Check(cid, WARNING if cid == "k8s-weight0-ready" else ERROR, title, ("k8s",), lambda node: [])
            for cid, title in K8S_CHECKS.items()]


def with_k8s_findings(report: Any, node: Any, names: Any, k8s_ids: Sequence[str]) -> Any:
    """``report`` plus the findings of the k8s checks ``k8s_ids`` over the active mode's services:
    not applicable in a mode without them (none, userspace), skipped with a not-readable finding
    when that mode's state could not be read."""
    if names is None or not k8s_ids:
        return report
    import dataclasses

    from kpctl.core.services import READABLE, node_services
    from kpctl.core.services.k8s import k8s_findings
    from kpctl.model.doctor import INFO, Finding

    piece = report.mode  # (the NodeState piece a mode's services are read from is named as the mode)
    if piece not in READABLE:
        return dataclasses.replace(report, not_applicable=tuple(report.not_applicable) + tuple(k8s_ids))
    services = node_services(node, piece)
    if services is None:
        unreadable = Finding(
            "not-readable", INFO, piece, f"could not read {piece}: {node.unavailable[piece]}",
            "the checks that need it were skipped: " + ", ".join(k8s_ids),
            "fix the reason above (root, kernel support), or use a snapshot that has this section")
        return dataclasses.replace(report, findings=tuple(report.findings) + (unreadable,))
    found = k8s_findings(services, names, report.mode, k8s_ids)
    return dataclasses.replace(report, findings=tuple(report.findings) + tuple(found),
                               checks_run=tuple(report.checks_run) + tuple(k8s_ids))
