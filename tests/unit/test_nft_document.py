"""An `nft -j list ruleset` document read with its rules held as text (nft_document): what every
layout reads as, what is decoded when, and what a text that is not what it looks like does."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.backends.json_document import decode
from kpctl.backends.nft import parse_ruleset
from kpctl.core.nft_document import RUN, Objects, RuleText, entries, read_document
from kpctl.core.nft_json import TableIndex, items
from kpctl.errors import InvalidInput
from kpctl.model.document import OneLineItems
from kpctl.output.json_text import write_json
from tests.cli_helpers import kpctl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

names = st.sampled_from(["a", "b", "svc-1/tcp", 'q"uote', "back\\slash", "é", "kube-proxy"])
leaves = st.none() | st.booleans() | st.integers(-5, 70000) | st.sampled_from(["tcp", "10.0.0.1", "}}, {", "\n"])
exprs = st.lists(st.recursive(leaves, lambda inner: st.lists(inner, max_size=2)
                              | st.dictionaries(st.sampled_from(["match", "jump", "op", "set"]), inner, max_size=2),
                              max_leaves=6), max_size=3)


@st.composite
def rulesets(draw: Any) -> dict[str, Any]:
    objects: list[dict[str, Any]] = [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]
    for number in range(draw(st.integers(0, 12))):
        family, table, chain = draw(st.sampled_from(["ip", "ip6", "inet"])), draw(names), draw(names)
        kind = draw(st.sampled_from(["rule", "rule", "rule", "chain", "map", "table"]))
        if kind == "rule":
            body: dict[str, Any] = {"family": family, "table": table, "chain": chain, "handle": number,
                                    "expr": draw(exprs)}
            if draw(st.booleans()):
                body = dict(reversed(list(body.items())))  # keys not in nft's order
        else:
            body = {"family": family, "table" if kind != "table" else "name": table, "name": chain,
                    "handle": number, "elem": draw(exprs)}
        objects.append({kind: body})
    return {"nftables": objects}


def saved(document: dict[str, Any], ascii_only: bool = False) -> str:
    """The layout `snapshot save` writes: one object per line."""
    out = io.StringIO()
    write_json({"nftables": OneLineItems(document["nftables"])}, out.write, ensure_ascii=ascii_only)
    return out.getvalue()


def plain(document: Any) -> Any:
    """The document with every object decoded."""
    if isinstance(document, dict) and isinstance(document.get("nftables"), Objects):
        return {**document, "nftables": list(document["nftables"])}
    return document


def _read(text: str) -> Any:
    """The document in ``text``, which holds nothing else (as json.loads reads it), read as
    `nft -j`'s output is (backends.nft.parse_ruleset)."""
    return decode(text, lambda text, start: read_document(text, start, "test"))


@settings(max_examples=400, deadline=None)
@given(rulesets(), st.sampled_from(["saved", "compact", "indent", "ascii"]))
def test_every_layout_reads_as_json_reads_it(document: dict[str, Any], layout: str) -> None:
    text = {"saved": saved, "compact": json.dumps, "indent": lambda d: json.dumps(d, indent=2),
            "ascii": lambda d: saved(d, ascii_only=True)}[layout](document)
    value = _read(text)
    assert plain(value) == json.loads(text) == document
    assert list(items(value, "rule")) == [o["rule"] for o in document["nftables"] if "rule" in o]
    held = list(entries(value))
    if layout != "indent":  # every rule written as nft writes it is held as text, nothing else
        plain_names = lambda o: not any(  # noqa: E731
            "\\" in json.dumps(o["rule"][k], ensure_ascii=layout != "saved") for k in ("table", "chain"))
        assert [isinstance(e, RuleText) for e in held] == [
            "rule" in o and list(o["rule"])[:3] == ["family", "table", "chain"] and plain_names(o)
            for o in document["nftables"]]
    for family in ("ip", "ip6", "inet"):
        for table in ("a", "kube-proxy", 'q"uote'):
            index, whole = TableIndex(value, family, table), TableIndex(document, family, table)
            assert (index.chains, index.sets, dict(index.rules)) == (whole.chains, whole.sets, dict(whole.rules))


@settings(max_examples=400, deadline=None)
@given(rulesets(), st.data())
def test_a_damaged_text_reads_as_json_reads_it_or_fails(document: dict[str, Any], data: Any) -> None:
    """Never another value: what a whole decode refuses fails here too, now or when the damaged
    rule is read (a rule on a line of its own is not decoded before)."""
    text = saved(document)
    at = data.draw(st.integers(0, len(text) - 1))
    damaged = text[:at] + data.draw(st.sampled_from(["", ",", "}", "\n", '"', " ", "x", "\x0c"])) + text[at + 1:]
    try:
        expected = json.loads(damaged)
    except ValueError:
        expected = None
    try:
        got = plain(_read(damaged))
    except (ValueError, InvalidInput):
        got = None
    if got is not None:
        assert got == expected


def test_a_rule_on_its_own_line_is_decoded_only_when_read() -> None:
    good = {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 2, "expr": []}}
    text = ('{"nftables": [\n  {"chain": {"family": "ip", "table": "t", "name": "c", "handle": 1}},\n'
            '  {"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 3, "expr": [1,]}},\n'
            f'  {json.dumps(good)}\n]}}')
    value = _read(text)
    objects = value["nftables"]
    assert isinstance(objects, Objects) and len(objects) == 3
    assert TableIndex(value, "ip", "t").chains == {"c": {"family": "ip", "table": "t", "name": "c", "handle": 1}}
    assert objects[2] == good and objects[-1] == good
    for _again in range(2):
        with pytest.raises(InvalidInput, match=r"^test: nftables object #2 is not valid JSON: "):
            TableIndex(value, "ip", "t").rules["c"]
    with pytest.raises(InvalidInput, match="object #2"):
        list(objects)


def test_a_rule_is_checked_against_the_chain_it_was_filed_under() -> None:
    twice = '{"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 1, "chain": "d", "expr": []}}'
    fine = '{"rule": {"family": "ip", "table": "t", "chain": "d", "handle": 2, "expr": []}}'
    for lines, number in (([twice], 1), ([fine, twice, fine], 2)):  # alone, and in a run decoded together
        value = _read('{"nftables": [\n  ' + ',\n  '.join(lines) + '\n]}')
        assert [e.chain for e in entries(value)][number - 1] == "c"  # (the first "chain"; json keeps the last)
        with pytest.raises(InvalidInput, match=rf"object #{number} is not \{{\"rule\": \{{…\}}\}} of chain 'c'"):
            list(value["nftables"])
        with pytest.raises(InvalidInput, match=rf"object #{number} "):
            TableIndex(value, "ip", "t").rules["c"]


def test_two_objects_on_a_line_read_as_json_reads_them() -> None:
    rule = json.dumps({"rule": {"family": "ip", "table": "t", "chain": "c", "handle": 1, "expr": [{"jump": {"target": "d"}}]}})
    chain = json.dumps({"chain": {"family": "ip", "table": "t", "name": "c", "handle": 2}})
    for line in (f"{rule}, {rule}", f"{rule}, {chain}", f"{chain}, {rule}", f"{chain}, {chain}"):
        text = '{"nftables": [\n  ' + line + ',\n  ' + rule + '\n]}'
        value = _read(text)
        assert plain(value) == json.loads(text) and len(value["nftables"]) == 3
    for line in (f"{rule} {rule}", f"{rule} {chain}"):  # not JSON: refused when the rule is read
        text = '{"nftables": [\n  ' + line + '\n]}'
        with pytest.raises(ValueError):
            json.loads(text)
        with pytest.raises((ValueError, InvalidInput), match="extra data|Expecting"):
            plain(_read(text))


def test_runs_decode_as_one_at_a_time_does() -> None:
    rules = [{"rule": {"family": "ip", "table": "t", "chain": f"c{n % 7}", "handle": n, "expr": [n]}}
             for n in range(RUN * 2 + 3)]
    document = {"nftables": rules}
    value = _read(saved(document))
    objects = value["nftables"]
    assert all(isinstance(e, RuleText) for e in objects.entries)
    assert list(objects) == rules and objects[RUN - 2:RUN + 2] == rules[RUN - 2:RUN + 2] and objects == rules
    assert TableIndex(value, "ip", "t").rules["c3"] == [r["rule"] for r in rules if r["rule"]["chain"] == "c3"]


def test_only_json_blanks_separate_objects() -> None:
    """json.loads takes spaces, tabs and line breaks around a value, no other white space."""
    chain = json.dumps({"chain": {"family": "ip", "table": "t", "name": "c", "handle": 1}})
    for blank in ("\x0c", "\x0b", "\u2028", "\xa0"):
        for text in (blank + '{"nftables": []}', '{"nftables": [' + blank + chain + "]}",
                     '{"nftables": [\n  ' + chain + ",\n  " + chain + "\n" + blank + "]}"):
            with pytest.raises(ValueError):
                json.loads(text)
            with pytest.raises(ValueError):
                _read(text)
    with pytest.raises(Exception, match="printed no JSON: line 1: Extra data"):
        parse_ruleset('{"nftables": []}\x0c')


def test_nft_output_on_one_line_is_held_so_too() -> None:
    source = json.loads((EXAMPLES / "nftables-node.json").read_text())["nftables"]
    value = parse_ruleset(json.dumps(source) + "\n")
    held = list(entries(value))
    assert sum(isinstance(e, RuleText) for e in held) == sum("rule" in o for o in source["nftables"]) > 10
    assert plain(value) == source
    with pytest.raises(Exception, match="printed no JSON: line 1: Extra data"):
        parse_ruleset(json.dumps(source) + " {}")


def test_commands_read_every_layout_alike(tmp_path: Path) -> None:
    source = EXAMPLES / "nftables-node.json"
    saved_file, compact = tmp_path / "saved.json", tmp_path / "compact.json"
    assert kpctl("--snapshot", str(source), "snapshot", "save", str(saved_file)).exit_code == 0
    compact.write_text(json.dumps(json.loads(source.read_text())))
    assert '{"rule": {"family": "ip", "table": "kube-proxy"' in saved_file.read_text()
    for args in (["nft", "list", "-o", "json"], ["nft", "list", "-o", "yaml"], ["nft", "list", "-o", "save"],
                 ["nft", "list", "-o", "tree"], ["nft", "list", "-o", "wide"], ["nft", "list", "--chain", "services"],
                 ["services", "-o", "json"], ["doctor", "-o", "json"], ["trace", "10.96.0.10:53/udp", "-o", "json"],
                 ["snapshot", "save", "-"]):
        results = [kpctl("--snapshot", str(path), *args) for path in (saved_file, compact, source)]
        assert results[0].exit_code == 0 and results[0].stdout, args
        assert results[0] == results[1] == results[2], args
    listed = json.loads(kpctl("--snapshot", str(saved_file), "nft", "list", "-o", "json").stdout)
    assert listed == json.loads(source.read_text())["nftables"]


@settings(max_examples=300, deadline=None)
@given(rulesets(), st.sampled_from(["saved", "compact", "ascii"]), st.booleans())
def test_each_object_is_one_line_of_its_json(document: dict[str, Any], layout: str, ascii_only: bool) -> None:
    """What `snapshot save` and `nft list -o json` write of each object: a held rule its own text
    (decoded to check it, not encoded again), unless ASCII is asked and it is not."""
    text = {"saved": saved, "compact": json.dumps, "ascii": lambda d: saved(d, ascii_only=True)}[layout](document)
    objects = _read(text)["nftables"]
    encode = json.JSONEncoder(ensure_ascii=ascii_only).encode
    lines = list(objects.texts(encode, ascii_only))
    assert [json.loads(line) for line in lines] == document["nftables"]
    assert all("\n" not in line and (line.isascii() or not ascii_only) for line in lines)
    for entry, line in zip(objects.entries, lines):
        if isinstance(entry, RuleText) and (entry.text.isascii() or not ascii_only):
            assert line is entry.text


def test_a_damaged_rule_is_not_written_out(tmp_path: Path) -> None:
    snapshot = json.loads((EXAMPLES / "nftables-node.json").read_text())
    text = json.dumps(snapshot, indent=2).replace(
        '"nftables": [', '"nftables": [\n' + ' ' * 6 + '{"rule": {"family": "ip", "table": "kube-proxy", '
        '"chain": "services", "handle": 9, "expr": [1,]}},', 1)
    damaged = tmp_path / "damaged.json"
    damaged.write_text(text)
    for args in (["nft", "list", "-o", "json"], ["snapshot", "save", str(tmp_path / "out.json")]):
        result = kpctl("--snapshot", str(damaged), *args)
        assert (result.exit_code, result.stdout) == (2, ""), args
        assert "nftables object #1 is not valid JSON" in result.stderr, args
    assert not (tmp_path / "out.json").exists()
