"""kpctl's YAML writer: PyYAML's text for every scalar that fits its line, and always YAML that
reads back equal."""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.model.document import OneLineItems
from kpctl.output.yaml_text import write_yaml
from tests.unit.shapes import placed, same_shapes, servers_and_misfits, services_and_misfits


def dumps(value: Any) -> str:
    parts: list[str] = []
    write_yaml(value, parts.append)
    return "".join(parts)


def pyyaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False)


# Short texts from an alphabet full of YAML's special characters, so every style is chosen (a
# line feed makes PyYAML write a multi-line scalar: that is the other test's).
SHORT = st.text(st.sampled_from(list("aZ09 -:#?'\"!&*|>%@`,[]{}.~_=<+/\\\té\x85\u2028\U0001f600")), max_size=4)
# Long texts of words: PyYAML folds them past column 80 (plain, single- and double-quoted ones,
# the last at escapes too), and so must kpctl.
FOLDED = st.one_of(st.text(st.sampled_from(list("ab  :'#-x")), min_size=60, max_size=160),
                   st.text(st.sampled_from(list("ab  :'#-\"\\xé\t\u2208")), min_size=60, max_size=160))
WORDS = st.sampled_from(["yes", "No", "on", "null", "~", "true", "1.2", "0x1F", "1_000", "12:30", "2001-12-14",
                         "=", "<<", ".inf", "-.5", "+1", "1e5", "10.0.0.1", "10.0.0.1:80", "", "---", "...", "- a",
                         "a: b", "a #b", "a#b", "?x", "? x", ":x", "-x", "fd00::1", "[fd00::1]:80", "x:"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), SHORT, WORDS, FOLDED)
KEYS = st.one_of(st.text(st.sampled_from(list("ab_9 :-'#")), min_size=1, max_size=6), WORDS.filter(bool),
                 st.integers(-5, 5), st.booleans())


def tree(leaves: Any, keys: Any) -> Any:
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(tree(SCALARS, KEYS))
def test_same_text_as_pyyaml_where_scalars_fit_their_line(value: Any) -> None:
    assert dumps(value) == pyyaml(value)


def plain(value: Any) -> Any:
    """``value`` with plain dicts for SharedDicts (PyYAML's safe dumper takes no dict subclass) and lists
    for tuples (which it would write with an anchor wherever one appears twice)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return [plain(item) for item in value] if isinstance(value, (list, tuple)) else value


def made_when_written(value: Any) -> Any:
    """``value`` with each list a OneLineItems whose items' documents are made as they are written."""
    if isinstance(value, dict):
        return {key: made_when_written(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        items = [made_when_written(item) for item in value]
        return OneLineItems(range(len(items)), document=items.__getitem__)
    return value


@settings(max_examples=300, deadline=None)
@given(tree(SCALARS, KEYS))
def test_one_line_items_are_a_list_like_any_other(value: Any) -> None:
    """(What an iptables listing's rules are: made one at a time, written as a list.)"""
    assert dumps(made_when_written(value)) == pyyaml(plain(value))


LONG = st.text(max_size=120)  # anything, line breaks and long lines with spaces included


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(tree(st.one_of(SCALARS, LONG, st.floats()), st.one_of(KEYS, st.text(min_size=1, max_size=30))))
def test_always_reads_back_equal(value: Any) -> None:
    assert equal(yaml.safe_load(dumps(value)), value)


def test_an_ipvs_listing_and_a_folded_comment() -> None:
    document = {"info": {"version": "1.2.1", "conn_table_size": 4096}, "services": [
        {"family": "inet", "protocol": "tcp", "address": "10.254.0.1", "port": 443, "fwmark": 0, "pe_name": "",
         "servers": [{"address": "172.30.1.5", "port": 6443, "stats": {"conns": 0, "inbytes": 12}}],
         "flags": [], "timeout": 0.5}]}
    assert dumps(document) == pyyaml(document)
    rule = {"rules": [{"text": '-A INPUT -m comment --comment "kubernetes health check service ports" -j X' * 2}]}
    assert dumps(rule) == pyyaml(rule) and len(dumps(rule).splitlines()) > 2  # folded as PyYAML folds
    reason = {"reason": "dst 10.254.0.1 \u2208 10.254.0.1/32; protocol tcp is tcp; dport 443 matches 443"}
    assert dumps(reason) == pyyaml(reason) and len(dumps(reason).splitlines()) == 2
    lines = {"comment": "two\nlines " * 3}  # PyYAML writes it single-quoted over several lines
    assert yaml.safe_load(dumps(lines)) == lines and dumps(lines).count("\n") == 1


def test_written_in_slices(monkeypatch: Any) -> None:
    import kpctl.output.text as module

    monkeypatch.setattr(module, "SLICE", 2)
    document = {"a": [1, 2, {"b": "c"}], "d": {"e": [[]]}}
    written: list[str] = []
    write_yaml(document, written.append)
    assert len(written) > 2 and "".join(written) == pyyaml(document)


INT_KEYS = st.one_of(st.sampled_from(["conns", "%d", "100%", "a%%b", "%(x)s", "- x", "y: z", "Ünï"]),
                     st.integers(-5, 5), st.booleans(), st.none())


@settings(max_examples=300)
@given(st.lists(st.dictionaries(INT_KEYS, st.one_of(st.integers(), st.booleans()), min_size=1, max_size=5),
                min_size=1, max_size=4), st.integers(0, 2))
def test_mappings_of_ints_at_any_place_as_pyyaml(mappings: list[dict[Any, Any]], nesting: int) -> None:
    """Mappings whose values are all ints are written from a template per key set and place:
    keys that hold % or need quotes, in a list (``- `` lead), in a mapping, nested; bools stay bools."""
    value: Any = mappings
    for depth in range(nesting):
        value = {f"level{depth}": value, "n": depth}
    assert dumps(value) == pyyaml(value)
    assert dumps(mappings[0]) == pyyaml(mappings[0])


# string keys ("" aside: PyYAML writes it as a complex key, `? ''`, kpctl as `'': `; both read back)
SHAPE_KEYS = st.one_of(KEYS.filter(lambda key: isinstance(key, str) and key != ""),
                       st.sampled_from(["%s", "100%", "a%%b", "- x"]))


@settings(max_examples=300, deadline=None)
@given(same_shapes(SHAPE_KEYS, SCALARS), st.integers(0, 2))
def test_mappings_of_one_shape_as_pyyaml(dicts: Any, where: int) -> None:
    """Many mappings of one shape (keys, and which values are mappings of which keys; an IPVS
    listing's servers) are written from a template of it, which gives way to values that do not fit."""
    value = plain(placed(dicts, where))
    assert dumps(placed(dicts, where)) == pyyaml(value)


def test_servers_and_every_kind_of_misfit() -> None:
    for where in range(3):
        value = placed(servers_and_misfits(), where)
        assert dumps(value) == pyyaml(plain(value))


def test_services_with_their_servers_and_every_kind_of_misfit() -> None:
    for where in range(3):
        value = placed(services_and_misfits(), where)
        assert dumps(value) == pyyaml(plain(value))


def test_keys_that_are_one_key_to_a_dict_and_two_to_yaml() -> None:
    value = [{**first, 2: 0, 3: 0, 4: 0} for first in ({1: "a"}, {True: "b"}, {1.0: "c"}, {1: {2: 3}}, {True: {False: 3}})]
    value = plain((value + [{"1": {"2": 3}, "2": 0, "3": 0, "4": 0}]) * 2)  # copies, or PyYAML would write anchors
    assert dumps(value) == pyyaml(value)


def test_one_line_items_are_written_as_their_documents_are_made() -> None:
    """None held: the first text is written long before the last document is made (an nft
    ruleset's 120,000 objects, decoded a run at a time)."""
    made: list[int] = []
    first_write: list[int] = []

    def document(number: int) -> dict[str, Any]:
        made.append(number)
        return {"rule": {"handle": number, "expr": [{"jump": {"target": f"chain-{number}"}}]}}

    def write(text: str) -> None:
        if not first_write:
            first_write.append(len(made))

    items = OneLineItems(range(60000), document=document)
    write_yaml({"nftables": items}, write)
    assert len(made) == 60000 and first_write and first_write[0] < 60000 // 2
    assert dumps({"nftables": OneLineItems([], document=document)}) == "nftables: []\n" == pyyaml({"nftables": []})
    assert dumps(OneLineItems([])) == "[]\n" == pyyaml([])
