"""kpctl.cli.k8s: the --services/--kubectl options and the annotated listings (seed snapshot +
the kubectl JSON fixture of its cluster)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kpctl.cli.k8s import annotate_ipvs, annotate_trace, annotate_vips, load_names
from kpctl.errors import InvalidInput, NotFound
from kpctl.output import registry
from kpctl.output.env import Environment
from kpctl.output.listing import Listing, OutputSpec

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "seed-ipvs-node.json"
FIXTURE = Path(__file__).parent / "fixtures" / "k8s" / "services.json"
NAMES = load_names(str(FIXTURE), False)


def render(listing: Listing, fmt: str) -> str:
    out = io.StringIO()
    registry.render(listing, OutputSpec(fmt), Environment(stdout=out, stderr=io.StringIO(), color_mode="never"))
    return out.getvalue()


def ipvs_listing() -> Listing:
    from kpctl.backends.ipvs_snapshot import IPVSSnapshot
    from kpctl.cli.ipvs_views import table_listing

    table = IPVSSnapshot(json.loads(SEED.read_text())["ipvs"], "seed").table()
    return table_listing(table, "default", False)


def test_ipvs_plain_gets_service_and_pod_columns() -> None:
    lines = render(annotate_ipvs(ipvs_listing(), NAMES), "plain").splitlines()
    assert lines[0].split("\t") == ["SERVICE", "K8S SERVICE", "SCHEDULER", "FLAGS", "SERVER", "POD", "FORWARD",
                                    "WEIGHT", "ACTIVE", "INACTIVE"]
    rows = {tuple(line.split("\t")[i] for i in (0, 1, 4, 5)) for line in lines[1:]}
    assert ("10.254.0.1:443/tcp", "default/kubernetes:https", "192.168.10.10:6443", "-") in rows
    assert ("10.254.0.2:53/udp", "kube-system/kube-dns:dns", "172.30.78.2:53",
            "kube-system/coredns-5d78c9869d-x7k2p") in rows
    assert ("10.254.199.160:8080/tcp", "shop/web:http", "172.30.22.4:8080", "shop/web-7c9f8d6b5-abcde") in rows


def test_ipvs_json_carries_the_names_and_compat_formats_do_not_change() -> None:
    plain_listing = ipvs_listing()
    annotated = annotate_ipvs(plain_listing, NAMES)
    doc = json.loads(render(annotated, "json"))
    web = next(s for s in doc["services"] if s["port"] == 8080)
    assert web["k8s_service"] == "shop/web:http"
    assert {s["pod"] for s in web["servers"]} == {"shop/web-7c9f8d6b5-abcde", "shop/web-7c9f8d6b5-fghij"}
    for fmt in ("ipvsadm", "save"):
        assert render(annotated, fmt) == render(plain_listing, fmt)


def test_without_names_nothing_changes() -> None:
    listing = ipvs_listing()
    assert annotate_ipvs(listing, None) is listing


def test_vip_listing() -> None:
    from kpctl.cli.vip import _listing
    from kpctl.model.links import Vip

    vips = (Vip("10.254.0.2", 32, "kube-ipvs0", ("10.254.0.2:53/udp",), ()),)
    listing = annotate_vips(_listing(vips), NAMES)
    lines = render(listing, "plain").splitlines()
    assert lines[0].split("\t") == ["VIP", "SERVICES", "K8S SERVICES", "IPSET ENTRIES"]
    assert lines[1].split("\t")[2] == ("kube-system/kube-dns:dns, kube-system/kube-dns:dns-tcp, "
                                       "kube-system/kube-dns:metrics")


def test_trace_listing_names_service_and_pods() -> None:
    from kpctl.backends.snapshot import load_snapshot
    from kpctl.core.snapshot_view import NodeView
    from kpctl.core.trace.engine import trace
    from kpctl.core.trace.request import build_packet, parse_origin
    from kpctl.output.trace import trace_listing

    view = NodeView(load_snapshot(str(SEED)))
    start = parse_origin("node")
    result = trace(view, build_packet(view, "10.254.199.160:8080", start, None), str(start), "10.254.199.160:8080")
    listing = annotate_trace(trace_listing(result), NAMES, "10.254.199.160:8080")
    text = render(listing, "plain")
    assert text.startswith("k8s: 10.254.199.160:8080/tcp is shop/web:http\n")
    assert "k8s: 172.30.22.4:8080 is pod shop/web-7c9f8d6b5-abcde" in text
    assert "shop/web:http" in render(listing, "tree")
    assert json.loads(render(listing, "json"))["k8s"]["service"] == "shop/web:http"


def test_options_exclude_each_other_and_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="exclude"):
        load_names(str(FIXTURE), True)
    with pytest.raises(NotFound, match="nope.json"):
        load_names(str(tmp_path / "nope.json"), False)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InvalidInput, match="bad.json"):
        load_names(str(bad), False)
    assert load_names(None, False) is None


def test_kubectl_missing_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(NotFound, match="kubectl is not installed"):
        load_names(None, True)


def test_kubectl_output_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text(f"#!/bin/sh\n[ \"$*\" = 'get services,endpointslices.discovery.k8s.io --all-namespaces -o json' ]"
                    f" || exit 9\nexec /bin/cat {FIXTURE}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    names = load_names(None, True)
    assert len(names.ports) == 7


def test_kubectl_failure_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text("#!/bin/sh\necho 'error: You must be logged in to the server (Unauthorized)' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(Exception, match="Unauthorized"):
        load_names(None, True)
