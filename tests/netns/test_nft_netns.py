"""`kpctl nft list` against the host kernel's nftables, inside namespaces the tests create.

The reference is nft itself: what kpctl saves must pass `nft -c -f`, and once loaded into a
fresh namespace `nft -j list ruleset` must list exactly what the original namespace lists.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.cli_helpers import kpctl
from tests.netns.conftest import run_in

ROOT = Path(__file__).parents[2]
KUBE_PROXY = ROOT / "examples" / "sources" / "nftables.nft"
EXTRA = ROOT / "tests" / "fixtures" / "nft-extra.nft"
MARKS = ROOT / "tests" / "fixtures" / "nft-marks.nft"
LAYOUT = ROOT / "tests" / "fixtures" / "nft-layout.nft"


def _objects(ns: str) -> list[str]:
    """`nft -j list ruleset` of NS without handles (allocation order) and with elements sorted
    (nft lists hash-set elements in hash order), one JSON text per object, in listing order."""
    document = json.loads(run_in(ns, "nft", "-j", "list", "ruleset").stdout)
    out = []
    for item in document["nftables"]:
        (kind, body), = item.items()
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if isinstance(body.get("elem"), list):
            body["elem"] = sorted(body["elem"], key=json.dumps)
        out.append(json.dumps({kind: body}, sort_keys=True))
    return out


def _load(ns: str, *files: Path) -> None:
    for path in files:
        run_in(ns, "nft", "-f", str(path))


def test_save_is_accepted_by_nft_and_reloads_to_the_same_ruleset(netns_factory: Callable[[], str]) -> None:
    source, check, target = netns_factory(), netns_factory(), netns_factory()
    _load(source, KUBE_PROXY, EXTRA)
    out = kpctl("--netns", source, "nft", "list", "-o", "save")
    assert out.exit_code == 0, out.stderr
    assert "table ip kube-proxy {" in out.stdout and "table inet node-firewall {" in out.stdout
    run_in(check, "nft", "-c", "-f", "-", input=out.stdout)  # the check the issue names
    assert run_in(check, "nft", "list", "ruleset").stdout.strip() == ""  # -c changed nothing
    run_in(target, "nft", "-f", "-", input=out.stdout)
    assert _objects(target) == _objects(source)


@pytest.mark.parametrize("fixture", [MARKS, LAYOUT], ids=["marks", "layout"])
def test_save_is_nft_list_ruleset_text(netns: str, fixture: Path) -> None:
    """`-o save` is the text nft itself lists, line for line: marks as 0x00004000, standard
    priorities by name (dstnat, filter + 10), elements per line as nft lays them out by key
    type, a set's declaration in nft's order, default bursts and rejects left out, iif/iifname
    without `meta`, named sets never quoted."""
    _load(netns, fixture)
    out = kpctl("--netns", netns, "nft", "list", "-o", "save")
    assert out.exit_code == 0, out.stderr
    assert out.stdout == run_in(netns, "nft", "list", "ruleset").stdout


@pytest.mark.parametrize("fixture", [KUBE_PROXY, EXTRA], ids=["kube-proxy", "hand-written"])
def test_save_is_nft_text_but_what_its_json_leaves_out(netns: str, fixture: Path) -> None:
    """kube-proxy's own table, and a hand-written one: nft's text but for what `nft -j` (1.0.6)
    does not carry, table and chain comments and the dynamic flag of kube-proxy's affinity sets."""
    _load(netns, fixture)
    listed = run_in(netns, "nft", "list", "ruleset").stdout
    wanted = re.sub(r"(table [^\n]*\{\n)\tcomment .*\n", r"\1", listed)  # a table's comment, its first line
    wanted = re.sub(r"(chain [^\n]*\{\n)\t\tcomment .*\n", r"\1", wanted)
    wanted = wanted.replace("\t\tflags dynamic,timeout\n", "")  # (timeout alone: implied by the set's timeout)
    assert wanted.count("\n") > 40 and "priority dstnat;" in wanted
    out = kpctl("--netns", netns, "nft", "list", "-o", "save")
    assert out.exit_code == 0, out.stderr
    assert out.stdout == wanted


def test_save_of_one_table_reloads_alone(netns_factory: Callable[[], str]) -> None:
    source, target = netns_factory(), netns_factory()
    _load(source, KUBE_PROXY, EXTRA)
    out = kpctl("--netns", source, "nft", "list", "--table", "node-firewall", "-o", "save")
    assert out.exit_code == 0, out.stderr
    assert "kube-proxy" not in out.stdout
    run_in(target, "nft", "-f", "-", input=out.stdout)
    assert _objects(target) == [o for o in _objects(source) if '"node-firewall"' in o]


def test_json_is_what_nft_lists(netns: str) -> None:
    _load(netns, KUBE_PROXY)
    out = kpctl("--netns", netns, "nft", "list", "-o", "json")
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(run_in(netns, "nft", "-j", "list", "ruleset").stdout)


def test_empty_namespace_lists_nothing(netns: str) -> None:
    out = kpctl("--netns", netns, "nft", "list", "-o", "plain", "--no-headers")
    assert (out.exit_code, out.stdout, out.stderr) == (0, "", "")
    assert kpctl("--netns", netns, "nft", "list", "-o", "save").stdout == ""


def test_snapshot_carries_nftables_and_every_read_gives_the_same(netns: str, tmp_path: Path) -> None:
    _load(netns, KUBE_PROXY, EXTRA)
    path = tmp_path / "node.json"
    saved = kpctl("--netns", netns, "snapshot", "save", str(path))
    assert saved.exit_code == 0, saved.stderr
    section = json.loads(path.read_text())["nftables"]
    assert section == json.loads(run_in(netns, "nft", "-j", "list", "ruleset").stdout)
    for fmt in ("plain", "tree", "json", "save"):
        for extra in ((), ("--table", "kube-proxy"), ("--chain", "services")):
            live = kpctl("--netns", netns, "nft", "list", *extra, "-o", fmt)
            offline = kpctl("--snapshot", str(path), "nft", "list", *extra, "-o", fmt)
            assert live.exit_code == offline.exit_code == 0, (fmt, extra, live.stderr, offline.stderr)
            assert live.stdout == offline.stdout, (fmt, extra)


def test_generated_kube_proxy_table_at_1k_services_passes_nft_check(netns: str, tmp_path: Path) -> None:
    """bench/gen_snapshot.py nftables: its JSON is what nft itself lists for the rules it writes."""
    snapshot, rules = tmp_path / "nft1k.json", tmp_path / "nft1k.nft"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_snapshot.py"), "nftables", "1000", "3",
                    str(snapshot), str(rules)], check=True, capture_output=True, timeout=300)
    run_in(netns, "nft", "-c", "-f", str(rules))
    run_in(netns, "nft", "-f", str(rules))
    generated: Any = json.loads(snapshot.read_text())["nftables"]
    wanted = []
    for item in generated["nftables"]:
        (kind, body), = item.items()
        if kind != "metainfo":
            body = {k: v for k, v in body.items() if k != "handle"}
            if isinstance(body.get("elem"), list):
                body["elem"] = sorted(body["elem"], key=json.dumps)
            wanted.append(json.dumps({kind: body}, sort_keys=True))
    assert sorted(_objects(netns)) == sorted(wanted)
    assert len(wanted) > 11_000
