"""A malformed IPVS service row in a snapshot is a user's mistake: one line, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_helpers import kpctl

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-ipvs-node.json"


@pytest.mark.parametrize("services_shape", ["rows", "not-all-rows"])
@pytest.mark.parametrize("bad", [{"stats": {"conns": "x"}}, {"servers": [{"weight": []}]}, {"servers": ["not a server"]}])
def test_trace_on_a_malformed_ipvs_service_row_is_a_clean_error(
        tmp_path: Path, bad: dict[str, object], services_shape: str) -> None:
    data = json.loads(SEED.read_text())
    service = data["ipvs"]["services"][0]
    service.update(bad)
    if services_shape == "not-all-rows":  # the engine then builds every service up front
        data["ipvs"]["services"].append("not a row")
    snapshot = tmp_path / "bad.json"
    snapshot.write_text(json.dumps(data))
    out = kpctl("--snapshot", str(snapshot), "trace", f"{service['address']}:443")
    assert out.exception is None, repr(out.exception)
    assert out.exit_code == 2
    assert out.stderr.startswith("kpctl: error: ") and "bad ipvs services" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
