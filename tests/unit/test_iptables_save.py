"""iptables-save parser and writer: jc-style fixture pairs, round trips, clean errors.

The ``*.save`` files are real `iptables-save` / `iptables-legacy-save` / `ip6tables-nft-save`
output captured in a test namespace (handwritten-extensions.save: real nft output plus one
``-m ipvs`` rule the host kernel cannot load).  Regenerate the expected JSON after a
deliberate model change with ``KPCTL_REGEN_FIXTURES=1 pytest tests/unit/test_iptables_save.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kpctl.core.iptables_save import (
    format_rule,
    format_save,
    parse_save,
    quote,
    tokenize,
)
from kpctl.errors import InvalidInput

FIXTURES = Path(__file__).parent / "fixtures" / "iptables"
SHARED = Path(__file__).parents[1] / "fixtures"
SAVE_FILES = sorted(FIXTURES.glob("*.save"))


def _family_backend(path: Path) -> tuple[str, str]:
    return ("ipv6" if "ipv6" in path.name else "ipv4", "legacy" if "legacy" in path.name else "nft")


def _without_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_fixture_pairs_exist() -> None:
    assert len(SAVE_FILES) >= 5
    for path in SAVE_FILES:
        assert path.with_suffix(".json").exists() or os.environ.get("KPCTL_REGEN_FIXTURES"), path


@pytest.mark.parametrize("path", SAVE_FILES, ids=lambda p: p.stem)
def test_parse_matches_expected_json(path: Path) -> None:
    family, backend = _family_backend(path)
    document = parse_save(path.read_text(), family, backend).to_dict()
    expected_path = path.with_suffix(".json")
    if os.environ.get("KPCTL_REGEN_FIXTURES"):
        expected_path.write_text(json.dumps(document, indent=1) + "\n")
    assert document == json.loads(expected_path.read_text())


@pytest.mark.parametrize("path", SAVE_FILES, ids=lambda p: p.stem)
def test_format_save_reproduces_input_without_comments(path: Path) -> None:
    family, backend = _family_backend(path)
    text = path.read_text()
    ruleset = parse_save(text, family, backend)
    assert _without_comments(format_save(ruleset, counters="counters" in path.name)) == _without_comments(text)


@pytest.mark.parametrize("name", ["kube-ipvs-mode.rules", "kube-iptables-mode.rules"])
def test_shared_kube_rule_sets_round_trip(name: str) -> None:
    text = (SHARED / name).read_text()
    assert format_save(parse_save(text)) == text


@pytest.mark.parametrize("path", SAVE_FILES, ids=lambda p: p.stem)
def test_rule_text_is_the_original_line_and_format_rule_rebuilds_it(path: Path) -> None:
    family, backend = _family_backend(path)
    lines = [line.split("] ", 1)[-1] if line.startswith("[") else line
             for line in path.read_text().splitlines() if line.lstrip("[0123456789:] ").startswith("-A ")]
    ruleset = parse_save(path.read_text(), family, backend)
    rules = [r for t in ruleset.tables.values() for c in t.chains.values() for r in c.rules]
    assert [r.text for r in rules] == lines
    assert [format_rule(r) for r in rules] == lines


def test_counters_are_read_from_rule_prefix_and_chain_line() -> None:
    ruleset = parse_save((FIXTURES / "kube-ipvs-mode-legacy-counters.save").read_text(), backend="legacy")
    output = ruleset.chain("nat", "OUTPUT")
    assert output is not None and (output.packets, output.bytes) == (3, 114)
    first = output.rules[0]
    assert first.counters is not None and (first.counters.packets, first.counters.bytes) == (3, 114)
    assert first.jump == "KUBE-SERVICES"
    without = parse_save((FIXTURES / "kube-ipvs-mode-legacy.save").read_text(), backend="legacy")
    assert without.chain("nat", "OUTPUT").rules[0].counters is None  # type: ignore[union-attr]


def test_comment_with_semicolon_and_spaces_is_one_value() -> None:
    ruleset = parse_save((SHARED / "kube-iptables-mode.rules").read_text())
    services = ruleset.chain("nat", "KUBE-SERVICES")
    assert services is not None
    last = services.rules[-1]
    assert last.comment == "kubernetes service nodeports; NOTE: this must be the last rule in this chain"
    assert last.jump == "KUBE-NODEPORTS"
    assert last.matches[-1].addrtype is not None and last.matches[-1].addrtype.dst_type == ("LOCAL",)


def test_tokenize_handles_quotes_and_escapes() -> None:
    tokens = tokenize('-A X -m comment --comment "a \\"b\\" \\\'c\\\' d\\\\e" -j LOG --log-prefix "p: "')
    texts = [t.text for t in tokens]
    assert texts[5] == "a \"b\" 'c' d\\e"
    assert tokens[5].quoted and not tokens[4].quoted
    assert texts[-1] == "p: "


@pytest.mark.parametrize("value, string_option, expected", [
    ("simple", True, "simple"),
    ("kube-proxy_1", True, "kube-proxy_1"),
    ("default/kubernetes:https", True, '"default/kubernetes:https"'),
    ("with \"q\" and 's'", True, '"with \\"q\\" and \\\'s\\\'"'),
    ("0x4000/0x4000", False, "0x4000/0x4000"),
    ("a b", False, '"a b"'),
    ("", True, '""'),
    ("!", False, '"!"'),
    ("--looks-like-option", True, '"--looks-like-option"'),
])
def test_quote_follows_iptables_save(value: str, string_option: bool, expected: str) -> None:
    assert quote(value, string_option) == expected
    assert [t.text for t in tokenize(expected)] == [value]


def test_implicit_protocol_match_is_made_explicit() -> None:
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 80 -j ACCEPT\nCOMMIT\n"
    rule = parse_save(text).chain("filter", "INPUT").rules[0]  # type: ignore[union-attr]
    assert [m.module for m in rule.matches] == ["", "tcp"]
    assert rule.matches[1].dport is not None and rule.matches[1].dport.matches(80)
    assert format_rule(rule) == "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT"


def test_empty_input_is_an_empty_ruleset() -> None:
    ruleset = parse_save("")
    assert ruleset.tables == {} and ruleset.empty and format_save(ruleset) == ""


def test_header_only_tables_from_untouched_backend() -> None:
    text = "# Generated by iptables-save v1.8.9 on x\n*nat\nCOMMIT\n# Completed on x\n"
    ruleset = parse_save(text, backend="legacy")
    assert list(ruleset.tables) == ["nat"] and ruleset.empty


BAD_INPUTS = [
    ("-A INPUT -j ACCEPT\n", 1, "'-A' outside a table"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n", None, "no COMMIT"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A NOPE -j ACCEPT\nCOMMIT\n", 3, "'NOPE' is not declared"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.300/8 -j ACCEPT\nCOMMIT\n", 3, "10.0.0.300/8"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT bogus -j ACCEPT\nCOMMIT\n", 3, "'bogus'"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m tcp --dport 99999 -j ACCEPT\nCOMMIT\n", 3, "99999"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --dport 80 -j ACCEPT\nCOMMIT\n", 3, "--dport outside a match"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment \"open -j ACCEPT\nCOMMIT\n", 3, "unterminated"),
    ("*filter\n:INPUT\nCOMMIT\n", 2, "bad chain line"),
    ("*filter\n:INPUT MAYBE [0:0]\nCOMMIT\n", 2, "bad chain line"),
    ("*filter\n:KUBE-X ACCEPT [0:0]\nCOMMIT\n", 2, "user chain 'KUBE-X'"),
    # kube-proxy's `:NAME - [0:0]` declarations, read without splitting unless one is wrong
    ("*filter\n:INPUT - [0:0]\nCOMMIT\n", 2, "built-in chain 'INPUT' cannot have policy '-'"),
    ("*filter\n:KUBE-X - [0:0]\n:KUBE-Y - [0:0]\n:KUBE-X - [0:0]\nCOMMIT\n", 4, "'KUBE-X' declared twice"),
    (":KUBE-X - [0:0]\n", 1, "':KUBE-X' outside a table"),
    ("*filter\n:KUBE-\"X - [0:0]\nCOMMIT\n", 2, "bad chain line"),
    ("*filter\n:KUBE-X-IS-LONGER-THAN-29-CHARS - [0:0]\nCOMMIT\n", 2, "bad chain line"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT !\nCOMMIT\n", 3, "'!'"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -g ACCEPT\nCOMMIT\n", 3, "-g needs a user chain"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j ACCEPT\nCOMMIT\n*filter\nCOMMIT\n", 5, "twice"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m statistic --probability 0.5 -j ACCEPT\nCOMMIT\n", 3, "--mode"),
    ("*nat\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -j DNAT --to-destination 10.0.0.1:http\nCOMMIT\n", 3, "http"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s fd00::1/128 -j ACCEPT\nCOMMIT\n", 3, "not ipv4"),
    ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m set --match-set KUBE-CLUSTER-IP -j ACCEPT\nCOMMIT\n", 3, "NAME FLAGS"),
]


@pytest.mark.parametrize("text, lineno, fragment", BAD_INPUTS)
def test_malformed_input_is_invalid_input_naming_line_and_token(text: str, lineno: int | None,
                                                                fragment: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_save(text)
    message = str(caught.value)
    if lineno is not None:
        assert f"line {lineno}:" in message
    assert fragment in message
    assert "\n" not in message


def test_chain_declarations_in_any_spacing_and_after_rules() -> None:
    """kube-proxy's `:NAME - [0:0]` lines take a short path; other spellings, and a declaration
    after the table's first rule (a rule above it does not see the chain), take the long one."""
    text = ("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-X\t - [0:0]\n:KUBE-Y  -  [0:0]\n:KUBE-A - [0:0] \n"
            "-A INPUT -j KUBE-A\n-A INPUT -j KUBE-Z\n:KUBE-Z - [0:0]\n-A INPUT -j KUBE-Z\n-A KUBE-X -j KUBE-Y\nCOMMIT\n")
    chains = parse_save(text).tables["filter"].chains
    assert [(c.name, c.policy) for c in chains.values()] == [
        ("INPUT", "ACCEPT"), ("KUBE-X", None), ("KUBE-Y", None), ("KUBE-A", None), ("KUBE-Z", None)]
    assert [r.jump for r in chains["INPUT"].rules] == ["KUBE-A", None, "KUBE-Z"]
    assert [r.jump for r in chains["KUBE-X"].rules] == ["KUBE-Y"]


def test_parse_save_leaves_the_cycle_collector_as_it_found_it() -> None:
    import gc

    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n"
    assert gc.isenabled()
    parse_save(text)
    assert gc.isenabled()
    gc.disable()
    try:
        parse_save(text)
        assert not gc.isenabled()
    finally:
        gc.enable()


def _shape_lines() -> list[str]:
    import itertools

    lines = [line for path in [*SAVE_FILES, *SHARED.glob("*.rules")] for line in path.read_text().splitlines()
             if line.startswith("-A ")]
    for src, dst, proto, comment, ports, statistic, target in itertools.product(
            ["", " ! -s 172.30.0.0/16", " -s 10.0.0.1", " -s 10.0.0.300"],
            ["", " -d 10.254.0.1/32", " ! -d 10.100.0.0/08", " -d 10.100.0.7/33", " ! -d 10.1.2.3/8"],
            ["", " -p tcp", " ! -p UDP", " -p 6"],
            ["", ' -m comment --comment "ns/svc:port cluster IP"', ' -m comment --comment ""'],
            ["", " -m tcp", " -m udp --dport 53", " -m sctp ! --sport 1:1024 --dport 80", " -m tcp --dport 70000",
             " -m tcp --dport 90:80"],
            ["", " -m statistic --mode random --probability 0.33333333349", " -m statistic --mode random "
             "--probability 2"],
            [" -j KUBE-SVC-X", " -j REJECT --reject-with icmp-port-unreachable", " -j DNAT --to-destination "
             "10.0.0.1:80", " -j DNAT --to-destination 10.0.0.300:80", " -j PREROUTING", " -j MARK --set-xmark 0x1/0x1"]):
        lines.append(f"-A KUBE-SERVICES{src}{dst}{proto}{comment}{ports}{statistic}{target}")
    return lines


def _shape_lines6() -> list[str]:
    """IPv6 rules as ip6tables-save writes them (every address with its prefix), and near misses."""
    import itertools

    lines = [line.partition("] ")[2] if line.startswith("[") else line
             for line in (FIXTURES / "ipv6-nft-counters.save").read_text().splitlines() if " -A " in f" {line}"]
    for src, dst, proto, ports, target in itertools.product(
            ["", " -s fd00:10:244::5/128", " ! -s fd00:10:244::/56", " -s ::1/128", " -s fd00:::1/128",
             " -s fd00::1/129", " -s fd00::1", " -s FD00::1/128", " -s 1:2:3:4:5:6:7:8:9/128", " -s ::/0"],
            ["", " -d fd00:10:96::a/128", " ! -d fd00:10:96::/112", " -d 2001:db8::1:0:0:1/128"],
            ["", " -p tcp", " -p ipv6-icmp"],
            ["", " -m tcp --dport 80", " -m udp ! --sport 53"],
            [" -j KUBE-SVC-X", " -j DNAT --to-destination [fd00:10:244::5]:8080",
             " -j DNAT --to-destination [fd00::5]", " -j DNAT --to-destination [fd00::zz]:80",
             " -j DNAT --to-destination [fd00:::5]:80", " -j REJECT --reject-with icmp6-port-unreachable"]):
        lines.append(f"-A KUBE-SERVICES{src}{dst}{proto}{ports}{target}")
    return lines


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_the_common_shape_reads_as_the_token_parser_does(family: str) -> None:
    from kpctl.core.iptables_save import _build_shaped, _shape, deferrable, parse_rule_body, tokenize

    chains = {"KUBE-SERVICES", "KUBE-SVC-X", "PREROUTING"}
    shared: dict[Any, Any] = {}
    taken = 0
    for line in _shape_lines() if family == "ipv4" else _shape_lines6():
        tokens = tokenize(line)
        body = line[len("-A " + tokens[1].text):]
        pieces = _shape(body, 0, family)
        try:
            expected: Any = parse_rule_body(tokens[2:], 1, tokens[1].text, chains, "nat", family)
        except InvalidInput:  # a bad value is never of the shape, or its target option is checked at build
            if pieces is not None:
                assert not deferrable(pieces), line  # (a deferred rule is never checked again)
                with pytest.raises(ValueError):
                    _build_shaped(pieces, lambda name: name in chains and name != "PREROUTING", shared)[1].validate()
            continue
        try:
            shaped = None if pieces is None else _build_shaped(pieces, lambda name: name in chains and name !=
                                                               "PREROUTING", shared)
        except ValueError:
            raise AssertionError(line) from None
        if shaped is not None:
            taken += 1
            assert shaped == expected, line
            assert [m.to_dict() for m in shaped[0]] == [m.to_dict() for m in expected[0]], line
    assert taken > (1000 if family == "ipv4" else 300)


def test_rules_with_counters_read_as_the_token_parser_reads_them() -> None:
    """iptables-save -c: "[PACKETS:BYTES] -A …" lines of the common shape take the same path as
    those without (the counters taken off first), and read as the token parser reads them."""
    from kpctl.core.iptables_save import parse_rule_body, split_counters, tokenize
    from kpctl.model.iptables import Rule

    chains = {"KUBE-SERVICES", "KUBE-SVC-X"}
    lines, expected = [], []
    for number, line in enumerate(_shape_lines()):
        counted = f"[{number}:{number * 100}] {line}"
        counters, tokens, text = split_counters(tokenize(counted), counted)
        if tokens[1].text != "KUBE-SERVICES":  # (the fixtures' rules of other chains)
            continue
        try:
            parts = parse_rule_body(tokens[2:], 1, "KUBE-SERVICES", chains, "nat", "ipv4")
        except InvalidInput:
            continue
        lines.append(counted)
        expected.append(Rule("KUBE-SERVICES", len(lines), text, *parts, counters))
    text = "\n".join(["*nat", ":PREROUTING ACCEPT [7:420]", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-X - [0:0]", *lines,
                      "COMMIT", ""])
    rules = parse_save(text).chain("nat", "KUBE-SERVICES").rules  # type: ignore[union-attr]
    assert len(rules) == len(expected) > 1000
    assert sum(rule.unbuilt is not None for rule in rules) > 1000  # (read by the common shape's path)
    for rule, want in zip(rules, expected):
        assert (rule.text, rule.counters) == (want.text, want.counters) and rule == want, want.text
    for bad in ("[x:1] -A KUBE-SERVICES -j KUBE-SVC-X", "[1:2]-A KUBE-SERVICES -j KUBE-SVC-X"):
        with pytest.raises(InvalidInput, match="line 5"):
            parse_save(text.replace(lines[0], bad))


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_deferred_rule_answers_from_its_pieces_as_its_built_parts_do(family: str) -> None:
    from kpctl.core.iptables_save import ShapedParts, _shape, deferrable, parse_rule_body, rule_texts, tokenize
    from kpctl.core.iptables_view import describe_action
    from kpctl.model.cached import cached_view
    from kpctl.model.iptables import Match, Rule

    chains = {"KUBE-SERVICES", "KUBE-SVC-X", "PREROUTING"}
    parts = ShapedParts(lambda name: name in chains and name != "PREROUTING")
    views = [name for name, value in vars(Match).items() if isinstance(value, cached_view)]
    assert {"dport", "statistic", "recent", "src", "comment", "builtins"} <= set(views)
    compared = 0
    for line in _shape_lines() if family == "ipv4" else _shape_lines6():
        tokens = tokenize(line)
        pieces = _shape(line[len("-A " + tokens[1].text):], 0, family)
        try:
            built = Rule(tokens[1].text, 1, line, *parse_rule_body(tokens[2:], 1, tokens[1].text, chains, "nat", family))
        except InvalidInput:
            continue
        if pieces is not None and deferrable(pieces):
            name = pieces[13]
            deferred = Rule.deferred(built.chain, 1, line, name, name if parts.is_chain(name) else None, pieces[6], parts,
                                     pieces)
            assert rule_texts(deferred, {}) == rule_texts(built, {}), line
            assert (deferred.jump, deferred.comment, deferred.goto, describe_action(deferred)) == (
                built.jump, built.comment, built.goto, describe_action(built)), line
            assert deferred.unbuilt is not None  # answered without building the parts
            for rule in (deferred, built):  # only a view of Match, on either kind of rule
                for other in ("nonsense", "option", "module"):
                    with pytest.raises(AttributeError):
                        rule.first(other)
            # each view of the matches from the one match that can have it, the target alone
            assert {view: deferred.first(view) for view in views} == {view: built.first(view) for view in views}, line
            assert deferred.builtins() == built.builtins() and deferred.target == built.target, line
            assert deferred.unbuilt is not None and deferred.target is parts.target(pieces)
            assert deferred == built and deferred.unbuilt is None
            assert deferred.target is parts.target(pieces)  # the whole build holds the target built alone
            compared += 1
    assert compared > (1000 if family == "ipv4" else 300)


def test_read_all_parses_every_chain_of_a_lazy_read() -> None:
    from kpctl.core.iptables_save import read_all

    text = "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-X - [0:0]\n-A INPUT -j KUBE-X\n-A KUBE-X -s 10.0.0.300 -j DROP\nCOMMIT\n"
    lazy = parse_save(text, lazy=True)
    with pytest.raises(InvalidInput, match="line 5"):
        read_all(lazy)
    fine = parse_save(text.replace(".300", ".3"), lazy=True)
    assert read_all(fine) == parse_save(text.replace(".300", ".3"))


def test_a_subset_of_lazy_chains_lists_its_names_reads_against_all_and_saves_as_read() -> None:
    from kpctl.core.iptables_save import LazyChains
    from kpctl.model.iptables import Chain

    text = ("*filter\n:INPUT ACCEPT [0:0]\n:KUBE-A - [0:0]\n:KUBE-B - [0:0]\n:OTHER - [0:0]\n"
            "-A INPUT -j KUBE-A\n-A INPUT -j OTHER\n-A KUBE-A -j KUBE-B\n-A KUBE-B  -s 10.0.0.1/32 -j ACCEPT\n"
            "-A OTHER -p tcp --dport\nCOMMIT\n")
    chains = parse_save(text, lazy=True).tables["filter"].chains
    assert isinstance(chains, LazyChains)
    chain = chains["INPUT"]
    only = Chain(chain.name, chain.policy, chain.packets, chain.bytes, chain.rules[:1])
    view = chains.subset(["INPUT", "KUBE-A", "KUBE-B"], {"INPUT": only})
    assert list(view) == ["INPUT", "KUBE-A", "KUBE-B"] and len(view) == 3
    assert "OTHER" not in view and view.get("OTHER") is None and "OTHER" in chains
    with pytest.raises(KeyError):
        view["OTHER"]
    # KUBE-B is not read: its line is printed as written (two blanks kept), OTHER's bad rule not at all
    assert view.save_lines() == [":INPUT ACCEPT [0:0]", ":KUBE-A - [0:0]", ":KUBE-B - [0:0]",
                                 "-A INPUT -j KUBE-A", "-A KUBE-A -j KUBE-B", "-A KUBE-B  -s 10.0.0.1/32 -j ACCEPT"]
    assert view["INPUT"] is only and view["KUBE-A"].rules[0].jump == "KUBE-B"  # a jump: read against every chain
    view.read_all()  # the listed chains only: OTHER's bad rule is not read
    with pytest.raises(InvalidInput):
        chains.read_all()


def test_a_chain_read_once_is_not_kept_and_a_kept_one_is_what_once_gives() -> None:
    text = ("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-A - [0:0]\n:KUBE-SEP-A - [0:0]\n"
            "-A KUBE-SVC-A -j KUBE-SEP-A\n-A KUBE-SEP-A -p tcp -j DNAT --to-destination 10.1.0.1:80\nCOMMIT\n")
    chains = parse_save(text, lazy=True).tables["nat"].chains
    first, again = chains.once("KUBE-SEP-A"), chains.once("KUBE-SEP-A")
    assert first is not None and again is not None and first is not again  # parsed each time, kept by no one
    assert first == again == parse_save(text).tables["nat"].chains["KUBE-SEP-A"]
    kept = chains["KUBE-SEP-A"]
    assert chains.once("KUBE-SEP-A") is kept and chains["KUBE-SEP-A"] is kept
    assert chains.once("KUBE-NONE") is None
    view = chains.subset(["KUBE-SVC-A"], {})
    assert view.once("KUBE-SEP-A") is None and view.once("KUBE-SVC-A") == chains["KUBE-SVC-A"]
    bad = parse_save(text.replace("10.1.0.1:80", "10.1.0.300:80"), lazy=True).tables["nat"].chains
    for read in (bad.once, bad.__getitem__):  # a bad rule fails its chain's read either way, every time
        with pytest.raises(InvalidInput, match="line 6"):
            read("KUBE-SEP-A")
