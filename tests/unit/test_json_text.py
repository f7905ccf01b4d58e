"""kpctl's indented JSON printer writes exactly what json.dumps(indent=2) writes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.model.document import OneLineItems
from kpctl.output.json_text import write_json
from tests.unit.shapes import placed, same_shapes, servers_and_misfits, services_and_misfits

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
KEYS = st.one_of(st.text(max_size=6), st.integers(-3, 3), st.booleans(), st.none(), st.floats(-2, 2))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=5),
    st.lists(inner, max_size=3).map(tuple)), max_leaves=40)


def text(value: Any, ensure_ascii: bool = True) -> str:
    parts: list[str] = []
    write_json(value, parts.append, ensure_ascii)
    return "".join(parts)


@settings(max_examples=400)
@given(VALUES, st.booleans())
def test_equals_the_standard_library_with_indent(value: Any, ensure_ascii: bool) -> None:
    assert text(value, ensure_ascii) == json.dumps(value, indent=2, ensure_ascii=ensure_ascii)


def test_non_ascii_text_kept_or_escaped_as_asked() -> None:
    document = {"é": ["ü", {"ключ": "значение"}], "x": "\u2028"}
    assert text(document, False) == json.dumps(document, indent=2, ensure_ascii=False)
    assert "ключ" in text(document, False) and "ключ" not in text(document)


def test_shapes_of_a_listing() -> None:
    document = {"info": {"version": "1.2.1", "conn_table_size": 4096}, "services": [
        {"address": "10.0.0.1", "port": 80, "flags": [], "servers": [
            {"address": "10.1.0.1", "weight": 1, "stats": {"conns": 3}}, {"address": "é\n", "stats": {}}],
         "pe_name": "", "stats": {"conns": 0}}, [], {}, [[1, [2, {}]], "x"]]}
    assert text(document) == json.dumps(document, indent=2)
    assert text({1: "a", "1": "b"}) == json.dumps({1: "a", "1": "b"}, indent=2)  # both keys kept, in order
    assert text([]) == "[]" and text({}) == "{}" and text("x") == '"x"' and text(None) == "null"


def test_written_in_slices_of_whole_pieces(monkeypatch: Any) -> None:
    import kpctl.output.text as module

    monkeypatch.setattr(module, "SLICE", 3)
    document = {"a": [{"b": [1, {"c": 2}]}, {"d": []}], "e": {"f": {"g": "h"}}}
    written: list[str] = []
    write_json(document, written.append)
    assert len(written) > 2 and "".join(written) == json.dumps(document, indent=2)


def _one_line(value: Any, marks: list[str]) -> Any:
    """``value`` with every list of containers wrapped in OneLineItems (the texts its
    items should take go to ``marks``); the wrapped document and the plain one."""
    if isinstance(value, dict):
        return {k: _one_line(v, marks) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (dict, list, tuple)) for v in value):
        marks.extend(json.dumps(v) for v in value)
        return OneLineItems(value)
    if isinstance(value, (list, tuple)):
        return [_one_line(v, marks) for v in value]
    return value


@settings(max_examples=300)
@given(VALUES)
def test_a_one_line_value_is_json_dumps_of_it_on_its_line_and_the_document_reads_back(value: Any) -> None:
    marks: list[str] = []
    wrapped = _one_line(value, marks)
    written = text(wrapped)
    assert json.dumps(json.loads(written)) == json.dumps(json.loads(json.dumps(value)))  # (NaN != NaN)
    lines = [line.strip().rstrip(",") for line in written.splitlines()]
    for mark in marks:
        assert mark in lines


def test_one_line_items_are_each_on_their_line_across_the_batches_written() -> None:
    items = [{"rule": {"handle": n, "expr": [{"jump": {"target": f"c{n}"}}], "comment": "é"}} for n in range(600)]
    for ensure_ascii in (True, False):
        lines = ",\n      ".join(json.dumps(item, ensure_ascii=ensure_ascii) for item in items)
        # the items as they are, or each made when written from what stands for it
        for held in (OneLineItems(items), OneLineItems(range(600), document=items.__getitem__)):
            written = text({"nftables": {"nftables": held, "n": []}, "k": OneLineItems([], document=str)}, ensure_ascii)
            assert written == ('{\n  "nftables": {\n    "nftables": [\n      ' + lines
                               + '\n    ],\n    "n": []\n  },\n  "k": []\n}')


RECORD_VALUES = st.one_of(SCALARS, st.sampled_from(["%s", "%", "a\nb", "é", '"', "}, {"]),
                          st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=2), SCALARS, max_size=2))


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["protocol", "%s", "é", "a\nb", '"', "100%", "x"]), min_size=1, max_size=4, unique=True)
       .flatmap(lambda fields: st.tuples(st.just(tuple(fields)), st.lists(st.lists(
           RECORD_VALUES, min_size=len(fields), max_size=len(fields)).map(tuple), min_size=1, max_size=600))),
       st.booleans())
def test_records_are_their_fields_dicts_one_a_line(case: Any, ensure_ascii: bool) -> None:
    # tuples named by fields (the connections of a busy node): written as the dicts they stand for,
    # across batches, whatever their values (a container among them is written as the dict is)
    fields, records = case
    dicts = [dict(zip(fields, record)) for record in records]
    lines = ",\n    ".join(json.dumps(item, ensure_ascii=ensure_ascii) for item in dicts)
    written = text({"connections": OneLineItems(records, fields=fields)}, ensure_ascii)
    assert written == '{\n  "connections": [\n    ' + lines + '\n  ]\n}'
    assert list(OneLineItems(records, fields=fields)) == dicts  # what YAML writes


def test_records_across_batches_with_a_misfit_batch() -> None:
    fields = ("protocol", "client_address", "expires", "pe%s")
    records = [("TCP", f"10.0.{n // 256}.{n % 256}", n, "é" if n % 7 else "%s\n") for n in range(700)]
    records[600] = ("UDP", ["a list"], None, {"k": 1.5})  # its batch is written dict by dict
    for ensure_ascii in (True, False):
        lines = ",\n  ".join(json.dumps(dict(zip(fields, r)), ensure_ascii=ensure_ascii) for r in records)
        assert text(OneLineItems(records, fields=fields), ensure_ascii) == "[\n  " + lines + "\n]"


SHAPE_KEYS = st.one_of(st.text(max_size=4), st.sampled_from(["%s", "%", "100%d", "é", "a\nb", '"', "["]))
SHAPE_SCALARS = st.one_of(SCALARS, st.sampled_from(["[", "{", "[1]", "a\n[x", "{}", ""]))


@settings(max_examples=300)
@given(same_shapes(SHAPE_KEYS, SHAPE_SCALARS), st.booleans(), st.integers(0, 2))
def test_dicts_of_one_shape_are_written_as_json_writes_them(dicts: Any, ensure_ascii: bool, where: int) -> None:
    value = placed(dicts, where)
    assert text(value, ensure_ascii) == json.dumps(value, indent=2, ensure_ascii=ensure_ascii)


def test_servers_and_every_kind_of_misfit(monkeypatch: Any) -> None:
    import kpctl.output.json_text as module

    # fitting servers, then each kind of misfit, then fitting ones again: the second copy of the list
    # is written CHUNK items per call once the first has made the plans, a chunk with a misfit item
    # by item
    servers = servers_and_misfits()
    many = servers[:3] * 30 + servers + servers[:3] * 30
    for chunk in (1, 2, 5, module.CHUNK):
        monkeypatch.setattr(module, "CHUNK", chunk)
        for where in range(3):
            value = placed(servers_and_misfits(), where)
            assert text(value) == json.dumps(value, indent=2), (chunk, where)
        assert text([many, many, servers]) == json.dumps([many, many, servers], indent=2), chunk
        services = placed(services_and_misfits(), chunk % 3)
        assert text(services) == json.dumps(services, indent=2), chunk


def test_keys_that_are_one_key_to_a_dict_and_two_to_json() -> None:
    value = [{**first, 2: 0, 3: 0, 4: 0} for first in ({1: "a"}, {True: "b"}, {1.0: "c"}, {1: {2: 3}}, {True: {False: 3}})]
    value = (value + [{"1": {"2": 3}, "2": 0, "3": 0, "4": 0}]) * 2
    assert text(value) == json.dumps(value, indent=2)


# Lists of dicts of scalars and empty containers (an ipset's members, a service's endpoints): each
# chunk of them is written by one C call; a value of one dict may look like the seam between two.
FLAT_VALUES = st.one_of(SCALARS, st.sampled_from(["}", "{", "},\n  {", '"}, {"', "a\n{", "", "{}"]),
                        st.just({}), st.just([]))
# ... and now and then a dict that is not flat (a nested value) or empty, which takes its chunk item by item
FLAT_DICTS = st.lists(st.one_of(st.dictionaries(KEYS, FLAT_VALUES, min_size=4, max_size=7),
                                st.sampled_from([{}, {"k": {"a": 1}}, {"k": [1], "l": 2}])), min_size=1, max_size=70)


@settings(max_examples=300)
@given(FLAT_DICTS, st.integers(0, 3), st.booleans())
def test_lists_of_flat_dicts_are_written_as_json_writes_them(dicts: Any, where: int, ensure_ascii: bool) -> None:
    dicts = [{"first": 1, "of": 2, "four": 3, "keys": 4}, *dicts]  # (a list whose first item has PLANNED keys)
    value = dicts if where < 3 else [*dicts[:-1], [dicts[-1]]]  # (3: one item not a dict, last)
    value = placed(value, where) if where < 3 else value
    assert text(value, ensure_ascii) == json.dumps(value, indent=2, ensure_ascii=ensure_ascii)
