"""Big JSON documents: the members of an object written over several lines, decoded when first read
(json_document.decode_object), and snapshots read so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.backends.json_document import Deferred, decode_object
from kpctl.backends.snapshot import load_snapshot
from kpctl.errors import InvalidInput
from tests.cli_helpers import kpctl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Bad(Exception):
    pass


def _bad(exc: ValueError) -> Exception:
    return Bad(exc.lineno if isinstance(exc, json.JSONDecodeError) else str(exc))


values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                      max_leaves=12)
documents = st.dictionaries(st.text(max_size=6), values, max_size=5)


@settings(max_examples=1500, deadline=None)
@given(documents, st.sampled_from([2, None, 4, "\t", 0]))
def test_any_object_reads_as_json_reads_it(document: dict[str, Any], indent: Any) -> None:
    text = json.dumps(document, indent=indent)
    decoded = decode_object(text, _bad)
    assert dict(decoded) == document and list(decoded) == list(document)
    assert all(decoded[key] == value for key, value in document.items())
    if isinstance(decoded, Deferred):  # only at indent=2, with a member of several lines
        assert indent == 2 and any(isinstance(v, (dict, list)) and "\n" in json.dumps(v, indent=2)
                                   for v in document.values())


def test_members_of_several_lines_are_decoded_only_when_read() -> None:
    text = ('{\n  "a": 1,\n  "empty": null,\n  "big": [\n    1,\n    2,,\n    3\n  ],\n  "one": [1, 2],\n'
            '  "more": {\n    "x": [\n      1\n    ]\n  }\n}\n')  # bad only inside "big"
    decoded = decode_object(text, _bad)
    assert isinstance(decoded, Deferred)
    assert list(decoded) == ["a", "empty", "big", "one", "more"] and "big" in decoded and "nothing" not in decoded
    assert decoded.is_null("empty") and not decoded.is_null("big") and not decoded.is_null("nothing")
    assert decoded["a"] == 1 and decoded["one"] == [1, 2] and decoded["more"] == {"x": [1]}
    for _again in range(2):
        with pytest.raises(Bad) as error:
            decoded["big"]
        assert error.value.args == (6,)  # the line in the whole text


@pytest.mark.parametrize("text", [
    '{\n  "a": 1,\n  "b": [\n    1\n  ]\n}',  # deferred
    '{\n  "a": {\n    "x": 1\n  },\n  "b": [\n    1\n  ],\n  "c": 3\n}',  # two deferred
    '{"a": 1, "b": [\n  1\n  ]\n}',  # the member is not on a line of its own
    '{\n  "a": [\n    1\n  ],\n  "b": 2\n}',  # a scalar last
    '{\n  "a": {\n    "x": 1\n  },\n  "b": {\n    "y": 2\n  }\n}',
    '{\n  "a": {\n    "x": 1\n  }, "b": {\n    "y": 2\n  }\n}',  # two members on one line: no deferral
    '{\r\n  "a": 1,\r\n  "b": [\r\n    1\r\n  ]\r\n}',
    '{\n  "a\\": ": 1,\n  "b\\": ": [\n    1\n  ]\n}',
    '{\n  "b": 0,\n  "b": [\n    1\n  ]\n}',  # a repeated key: the last one counts, as for json
    '{\n  "b": [\n    1\n  ],\n  "b": 0\n}',
    '{\n  "a": {\n  "x": 1\n  },\n  "b": 2\n}',  # a nested member indented as the top's
    '{\n  "a": {\n  "x": [\n    1\n  ]\n  },\n  "b": 2\n}',
])
def test_layouts_read_as_json_reads_them(text: str) -> None:
    decoded = decode_object(text, _bad)
    assert dict(decoded) == json.loads(text)


def test_the_rest_is_decoded_with_the_member_that_leaves_it_small() -> None:
    small = '  "small": [\n    1\n  ],\n'
    big = '  "big": [\n' + "".join(f"    {i},\n" for i in range(200)) + "    200\n  ]\n"
    decoded = decode_object("{\n" + small + big + "}\n", _bad)
    assert isinstance(decoded, Deferred) and decoded["small"] == [1] and decoded._text is not None
    assert decoded["big"] == list(range(201)) and decoded._text is None and decoded.is_null("small") is False


def test_a_layout_that_hides_a_member_fails_when_it_is_read() -> None:
    text = '{\n  "a": 1,\n  "b": [\n    1\n    ], "c": [2\n  ]\n}'  # "c" shares a line of the value of "b"
    decoded = decode_object(text, _bad)
    assert decoded["a"] == 1
    with pytest.raises(Bad, match="member 'b' does not end on its closing line"):
        decoded["b"]


def test_a_saved_snapshot_reads_as_its_source(tmp_path: Path) -> None:
    out = tmp_path / "node.json"
    source = EXAMPLES / "nftables-node.json"
    assert kpctl("--snapshot", str(source), "snapshot", "save", str(out)).exit_code == 0
    loaded = load_snapshot(str(out))
    assert isinstance(loaded.sections, Deferred)
    assert dict(loaded.sections) == json.loads(source.read_text())
    again = tmp_path / "again.json"
    assert kpctl("--snapshot", str(out), "snapshot", "save", str(again)).exit_code == 0
    assert again.read_text() == out.read_text()


def test_commands_that_do_not_read_a_section_run_without_it(tmp_path: Path) -> None:
    out = tmp_path / "node.json"
    assert kpctl("--snapshot", str(EXAMPLES / "nftables-node.json"), "snapshot", "save", str(out)).exit_code == 0
    text = out.read_text()
    broken = tmp_path / "broken.json"  # a rule of the ruleset cut short
    cut = text.index('{"rule": ')
    broken.write_text(text[:cut] + '{"rule": {"family": "ip",' + text[cut:].split("\n", 1)[1])
    listed = kpctl("--snapshot", str(broken), "vip", "list")
    assert listed.exit_code == 0 and listed.stdout == kpctl("--snapshot", str(out), "vip", "list").stdout
    result = kpctl("--snapshot", str(broken), "nft", "list")
    with pytest.raises(json.JSONDecodeError) as whole:  # what decoding it whole says
        json.loads(broken.read_text())
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"kpctl: error: snapshot {str(broken)!r} is not valid JSON: line {whole.value.lineno}: {whole.value.msg}"]


def test_a_bad_snapshot_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "format": "kpctl-snapshot",\n  "version": 1,\n  "kernel": ,\n  "ipvs": [\n  ]\n}\n')
    with pytest.raises(InvalidInput, match="is not valid JSON: line 4: Expecting value"):
        load_snapshot(str(path))


def test_a_snapshot_that_is_not_text_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "binary.json"
    path.write_bytes(b'{\n  "format": "\xd0\x00"\n}\n')
    result = kpctl("--snapshot", str(path), "vip", "list")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"kpctl: error: snapshot {str(path)!r} is not UTF-8 text: byte 15: invalid continuation byte"]
