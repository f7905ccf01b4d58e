"""kpctl.core.yaml_load reads a document as PyYAML's own safe loader does (the same value, or a
YAMLError where it raises one), with libyaml's parser and with PyYAML's pure-Python one."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpctl.core.yaml_load import safe_load


@pytest.fixture(params=["libyaml", "python"])
def parser(request: Any, monkeypatch: pytest.MonkeyPatch) -> type:
    """Which parser both readers use (safe_load chooses libyaml's where PyYAML has it)."""
    if request.param == "python":
        monkeypatch.setattr(yaml, "__with_libyaml__", False)
        return yaml.SafeLoader
    if not yaml.__with_libyaml__:
        pytest.fail("PyYAML without libyaml: the loader's fast parser is not tested")
    return yaml.CSafeLoader


def _equal(a: Any, b: Any, seen: set[tuple[int, int]]) -> bool:
    """a == b, for values that may hold themselves (``&r [*r]``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, dict)):
        if (id(a), id(b)) in seen:
            return True
        seen.add((id(a), id(b)))
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(_equal(a[key], b[key], seen) for key in a)
        return len(a) == len(b) and all(_equal(x, y, seen) for x, y in zip(a, b))
    return bool(a == b) or (a != a and b != b)  # (NaN)


def _same(text: str, loader: type) -> None:
    """The same value, or an error from both; safe_load's own slips (IndexError for ``!!int``
    of nothing) are errors here.  Sets and ordered maps are refused here on purpose."""
    try:
        expected: Any = yaml.load(text, Loader=loader)
    except Exception:
        with pytest.raises(yaml.YAMLError):
            safe_load(text)
        return
    try:
        value = safe_load(text)
    except yaml.YAMLError as exc:
        assert "is not read here" in str(exc) and ("!!set" in text or "!!omap" in text)
        return
    assert _equal(value, expected, set())


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.text(max_size=8),
                    st.floats(allow_nan=False), st.sampled_from(["0", "0x1f", "1_000", "1:20", "yes", "off", "~", "<<",
                                                                 "2026-12-06", "1e3", ".inf", "", " a", "a: b", "- x"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values, st.booleans())
def test_what_safe_dump_writes_reads_back_the_same(parser: type, value: Any, flow: bool) -> None:
    _same(yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True), parser)


_PIECES = ["a", "b", "1", "<<", ":", ": ", "- ", "-", "\n", "\n  ", "\n- ", "&x ", "*x", "&y ", "*y", "!!str ", "!!int ",
           "!!set ", "!!map ", "!!seq ", "!!binary ", "!!omap ", "{", "}", "[", "]", ", ", "'", '"', "#c", "---\n",
           "...\n", "? ", "|\n  t", ">\n  t", "!local ", "!!python/name:os.system "]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_any_text_reads_as_safe_load_reads_it(parser: type, text: str) -> None:
    _same(text, parser)


@pytest.mark.parametrize("text", [
    "", "# only a comment\n", "---\n", "a: 1\n---\nb: 2\n", "- &a {x: 1}\n- *a\n- *b\n",
    "base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  y: 3\n",
    "a: &a {x: 1}\nb: &b {x: 2, z: 3}\nc:\n  <<: [*a, *b]\n  w: 0\n",
    "c:\n  <<: 1\n", "- <<\n", "<<\n", "&r [*r]\n", "? [1, 2]\n: x\n", "!!set {a, b}\n", "!!omap [a: 1]\n", "!!int\n",
    "a: !!binary aGVsbG8=\n", "a: !!float 1\n", "a: !!str 1\n", "a: !!python/object:os.system {}\n",
    "a: 1\na: 2\n", "[1, 2\n", "\ta: 1\n",
    "&x : &x \n", "- &a 1\n- &a 2\n", "&a [&a 1]\n", "a: &a {b: &c 1}\nd: &c 2\n",  # anchors given twice
])
def test_the_corners_read_as_safe_load_reads_them(parser: type, text: str) -> None:
    _same(text, parser)


def test_an_alias_is_the_same_object_and_a_recursive_one_refers_to_itself(parser: type) -> None:
    value = safe_load("- &a [1]\n- *a\n")
    assert value[0] is value[1]
    looped = safe_load("&r [1, *r]\n")
    assert looped[1] is looped
