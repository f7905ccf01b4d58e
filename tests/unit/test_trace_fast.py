"""The trace's fast path over iptables rules gives exactly what the full parse gives.

kpctl/core/iptables_quick.py reads common kube-proxy rule lines without the full parser, and
kpctl/core/trace/quick.py judges a miss from that reading.  Here: every line it accepts is one
the full parser accepts, with the same text; its miss reasons are judge_rule's, word for word;
and whole traces (every step, every format) equal those over fully parsed rule sets.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpctl.backends.snapshot import load_snapshot
from kpctl.core import iptables_quick
from kpctl.core.iptables_quick import QuickRule, ipv4_network, recognize
from kpctl.core.iptables_save import LazyChains, parse_save
from kpctl.core.snapshot_view import NodeView, _inert
from kpctl.core.trace import netfilter
from kpctl.core.trace.engine import trace
from kpctl.core.trace.quick import quick_miss
from kpctl.core.trace.request import build_packet, parse_origin
from kpctl.errors import InvalidInput
from kpctl.model.snapshot import NodeSnapshot
from kpctl.model.trace import Packet
from kpctl.output.trace import format_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "tests" / "fixtures"
PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PACKETS = [
    Packet("172.30.1.5", 40000, "10.254.0.1", 443, "tcp", iif="cni0"),
    Packet("10.0.0.11", 43210, "10.100.0.7", 80, "tcp"),
    Packet("10.0.0.11", 43210, "10.100.0.7", 80, "tcp", oif="eth0"),
    Packet("192.168.1.9", 53, "10.96.0.10", 53, "udp", iif="eth0"),
    Packet("127.0.0.1", 1, "127.0.0.1", 30080, "sctp", iif="lo", oif="lo"),
    Packet("10.1.2.3", 65535, "10.1.2.0", 0, "udplite", iif="veth1"),
    Packet("fd00::5", 40000, "fd00::10", 443, "tcp", "inet6", iif="eth0"),
]


def _doc(line: str, chain: str) -> str:
    declared = [":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
                ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-SVC-X - [0:0]"]
    if not any(d.startswith(f":{chain} ") for d in declared):
        declared.append(f":{chain} - [0:0]")
    return "\n".join(["*nat", *declared, line, "COMMIT", ""])


def _env() -> Any:
    return netfilter._Env(NodeView(NodeSnapshot(1, {})), "PREROUTING", "nat", "PREROUTING")


def _fields(rule: QuickRule | None) -> tuple[object, ...] | None:
    return None if rule is None else tuple(getattr(rule, name) for name in QuickRule.__slots__)


def check_line(line: str) -> bool:
    """If the fast reader takes ``line``, the full parser does too and judges alike. → taken?"""
    quick = recognize(1, 6, line, "ipv4")
    shaped = iptables_quick._shaped(1, 6, line)
    if shaped is not None:  # the one-regex reading of the common shape reads as the token reading
        assert _fields(shaped) == _fields(quick) == _fields(iptables_quick._tokens_read(1, 6, line)), line
    if quick is None:
        return False
    chain = line.split("-A ", 1)[1].split()[0]
    ruleset = parse_save(_doc(line, chain))  # must not raise
    (rule,) = ruleset.tables["nat"].chains[chain].rules
    assert quick.text == rule.text and quick.number == rule.number and quick.line == line
    for packet in PACKETS:
        judgement = netfilter.judge_rule(rule, packet, netfilter.ConnState(packet), _env())
        reason = quick_miss(quick, packet)
        if reason is None:
            assert judgement.chance == 1.0, (line, packet, judgement)
        else:
            assert (judgement.chance, judgement.reason, judgement.note) == (0.0, reason, None), (line, packet)
    return True


# ---------------------------------------------------------------- single lines

ADDRESSES = ["10.254.0.1", "10.254.0.1/32", "10.254.0.0/16", "10.100.0.7/31", "0.0.0.0/0", "10.1.2.3/24",
             "127.0.0.0/8", "172.30.0.0/16", "10.0.0.1/08", "010.0.0.1", "256.1.1.1", "10.0.0.1/33", "1.2.3",
             "10.0.0.0/255.0.0.0", "fd00::10", "fd00::/8", "10.0.0.1/", "10.0.0.1/3a", "١.2.3.4"]
networks = st.builds(lambda n, p: f"{ipaddress.IPv4Address(n)}/{p}", st.integers(0, 2**32 - 1), st.integers(0, 32))
address = st.sampled_from(ADDRESSES) | networks
bang = st.sampled_from(["", "! "])
words = st.sampled_from(["tcp", "udp", "sctp", "TCP", "6", "17", "all", "icmp", "0", "udplite", "eth0", "eth+",
                         "lo", "cni0", "veth1", "-x", "!", "a b", "", "KUBE-SVC-X"])
ports = st.sampled_from(["80", "443", "53", "0", "65535", "65536", "30000:32767", "443:80", "80,443", ":80", "80:",
                         "080", "+80", "8_0", "-1", "99999"]) | st.integers(0, 70000).map(str)
comment_text = st.text(alphabet=st.sampled_from(list('ab /:-_."\\!\t\'é')), max_size=12)
fragment = st.one_of(
    st.builds(lambda b, o, a: f"{b}{o} {a}", bang, st.sampled_from(["-s", "-d", "--source", "-d"]), address),
    st.builds(lambda b, o, w: f"{b}{o} {w}", bang, st.sampled_from(["-p", "-i", "-o", "--protocol"]), words),
    st.builds(lambda t: f'-m comment --comment "{t}"', comment_text),
    st.builds(lambda t: f"-m comment --comment {t}", comment_text),
    st.builds(lambda m, opts: " ".join([f"-m {m}", *opts]), st.sampled_from(["tcp", "udp", "sctp", "multiport"]),
              st.lists(st.builds(lambda b, o, p: f"{b}{o} {p}", bang,
                                 st.sampled_from(["--dport", "--sport", "--dports", "--syn"]), ports), max_size=3)),
    st.sampled_from(["-m addrtype --dst-type LOCAL", "-m statistic --mode random --probability 0.5",
                     "-m mark --mark 0x4000/0x4000", "-f", "! -f", "-m comment", "--dport 80", "-c 1 2", "!",
                     "80", "-m", "-j", '"', "\\", "-m tcp --dport 80 81"]),
)
target = st.sampled_from(["", " -j KUBE-SVC-X", " -j REJECT --reject-with icmp-port-unreachable", " -j ACCEPT",
                          " -j DNAT --to-destination 10.1.1.1:80", " -j DNAT --to-destination x", " -g KUBE-SVC-X",
                          " -g ACCEPT", " -j MARK --set-xmark 0x4000/0x4000", " -j REJECT --reject-with",
                          " -j REJECT --reject-with a b", " -j", " -j !", " -j KUBE-SVC-X extra", " -j RETURN"])
separator = st.sampled_from([" ", " ", " ", " ", "  ", "\t"])


@PROFILE
@given(st.sampled_from(["", "[1:2] ", "[x:2] ", "[3:4]"]), st.lists(fragment, max_size=6), target, separator)
def test_generated_lines_fast_reading_agrees_with_the_full_parser(counters: str, parts: list[str], tail: str,
                                                                  sep: str) -> None:
    line = (counters + sep.join(["-A KUBE-SERVICES", *parts]) + tail).strip()
    if recognize(1, 6, line, "ipv4") is None:
        return
    try:
        check_line(line)
    except InvalidInput as exc:  # pragma: no cover - a failure explains itself
        pytest.fail(f"fast reader took a line the parser refuses: {line!r}: {exc}")


builtin = st.builds(lambda b, o, v: f"{b}{o} {v}", bang, st.sampled_from(["-s", "-d"]), networks) | st.builds(
    lambda b, o, v: f"{b}{o} {v}", bang, st.sampled_from(["-p", "-i", "-o"]),
    st.sampled_from(["tcp", "udp", "sctp", "TCP", "6", "all", "eth0", "eth+", "cni0", "lo", "veth1"]))
port_module = st.builds(
    lambda m, opts: " ".join([f"-m {m}", *opts]), st.sampled_from(["tcp", "udp", "sctp"]),
    st.lists(st.builds(lambda b, o, p: f"{b}{o} {p}", bang, st.sampled_from(["--dport", "--sport"]),
                       st.sampled_from(["80", "443", "53", "0", "65535", "1:1024", "30000:32767"])),
             max_size=2, unique_by=lambda x: x.split()[-2]))
kube_comment = st.builds(lambda t: f'-m comment --comment "{t}"', st.text(alphabet="ab /:-_.!'é", max_size=12))


@PROFILE
@given(st.lists(builtin, max_size=3, unique_by=lambda x: x.split()[-2]),
       st.lists(kube_comment | port_module, max_size=3), target, st.integers(0, 40), fragment)
def test_near_kube_proxy_lines_fast_reading_agrees(builtins: list[str], modules: list[str], tail: str,
                                                   at: int, junk: str) -> None:
    line = " ".join(["-A KUBE-SERVICES", *builtins, *modules]) + tail
    check_line(line)
    words = line.split(" ")
    at = at % (len(words) + 1)
    check_line(" ".join(words[:at] + [junk] + words[at:]))  # one stray piece anywhere


def test_kube_proxy_lines_are_read_fast_and_agree() -> None:
    lines = [
        '-A KUBE-SERVICES -d 10.96.0.10/32 -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" '
        "-m udp --dport 53 -j KUBE-SVC-X",
        '-A KUBE-SERVICES -d 10.254.0.50/32 -p tcp -m comment --comment "default/no-endpoints:http has no '
        'endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable',
        '-A KUBE-SVC-X ! -s 172.30.0.0/16 -d 10.254.0.1/32 -p tcp -m comment --comment "x" -m tcp --dport 443 '
        "-j KUBE-MARK-MASQ",
        '-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j KUBE-EXT-X',
        "[12:345] -A KUBE-SERVICES -d 10.100.0.7/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X",
        "-A KUBE-SERVICES -i eth+ -o cni0 -p sctp -m sctp ! --sport 1:1024 -j ACCEPT",
        '-A KUBE-SERVICES -d 10.100.0.7/32 -m comment --comment "" -j KUBE-SVC-X',
        "-A KUBE-SERVICES -d 10.100.0.7 -p tcp",
    ]
    for line in lines:
        assert check_line(line.replace("KUBE-NODEPORTS", "KUBE-SERVICES")), line


@pytest.mark.parametrize("line", [
    "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",  # a module it does not read
    '-A KUBE-SERVICES -m comment --comment "x" -d 10.0.0.1/32 -j ACCEPT',  # a built-in after a module
    "-A KUBE-SERVICES -d 10.0.0.1/32  -j ACCEPT",  # two spaces
    '-A KUBE-SERVICES -m comment --comment "a\\"b" -j ACCEPT',  # an escape
    "-A KUBE-SERVICES -d fd00::1 -j ACCEPT",  # not IPv4
    "-A KUBE-SERVICES -p tcp --dport 80 -j ACCEPT",  # implicit -m tcp
    "-A KUBE-SERVICES -g KUBE-SVC-X",
    "--append KUBE-SERVICES -j ACCEPT",
])
def test_lines_outside_the_fast_grammar_are_left_to_the_full_parser(line: str) -> None:
    assert recognize(1, 1, line, "ipv4") is None


def test_ipv6_rule_sets_are_always_parsed_in_full() -> None:
    assert recognize(1, 1, "-A KUBE-SERVICES -j ACCEPT", "ipv6") is None


@pytest.mark.parametrize("text", ADDRESSES + ["0.0.0.0", "255.255.255.255/32", "10.9.8.7/0", "1.2.3.4/7"])
def test_ipv4_networks_read_as_ipaddress_reads_them(text: str) -> None:
    found = ipv4_network(text, False)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        assert found is None
        return
    if found is None:
        assert network.version == 6 or text.split("/")[-1].startswith("0") or "/" in text and "." in text.split("/")[1]
        return
    assert network.version == 4
    assert found[:2] == (int(network.network_address), int(network.netmask)) and found[3] == str(network)
    if "/" not in text:
        assert iptables_quick.ipv4_int(text) == int(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", ["10.0.0.1/32", "10.0.0.01", "1.2.3", "fd00::1", "256.0.0.1", " 1.2.3.4", "١.2.3.4"])
def test_ipv4_int_takes_only_what_ipaddress_reads_as_ipv4(text: str) -> None:
    assert iptables_quick.ipv4_int(text) is None


def _rule_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith(("-A", "["))]


def _iptables_texts() -> list[str]:
    texts = [path.read_text() for path in FIXTURES.glob("*.rules")]
    for path in EXAMPLES.glob("*.json"):
        for backends in (json.loads(path.read_text()).get("iptables") or {}).values():
            texts.extend(text for text in (backends or {}).values() if text)
    return texts


def test_every_fixture_and_example_rule_line_agrees() -> None:
    taken = [line for text in _iptables_texts() for line in _rule_lines(text) if check_line(line)]
    assert any("KUBE-SERVICES" in line for line in taken)


# ---------------------------------------------------------------- whole traces


def _full_view(snapshot: NodeSnapshot) -> NodeView:
    """A view whose rule sets are parsed in full up front (no lazy chains, no fast path)."""
    view = NodeView(snapshot)
    rulesets = {}
    for family, backends in (snapshot.section("iptables", {}) or {}).items():
        found = [parse_save(text, family=family, backend=backend)
                 for backend in ("nft", "legacy") if (text := (backends or {}).get(backend))]
        rulesets[family] = tuple(r for r in found if not _inert(r))
    view.__dict__["rulesets"] = rulesets
    return view


def _outcome(view: NodeView, service: str, origin: str, sport: int | None = None) -> tuple[str, ...]:
    try:
        start = parse_origin(origin)
        result = trace(view, build_packet(view, service, start, sport), str(start), service)
    except InvalidInput as exc:
        return ("error", str(exc))
    return (json.dumps(result.to_dict(), sort_keys=True), format_text(result), format_text(result, wide=True))


def _services(snapshot: NodeSnapshot) -> list[str]:
    found = {"10.254.0.1:443", "10.254.0.2:53/udp", "10.100.0.7:80", "203.0.113.1:80", "[fd00::10]:443"}
    for backends in (snapshot.section("iptables", {}) or {}).values():
        for text in (backends or {}).values():
            for line in _rule_lines(text or ""):
                words = line.split()
                if "-d" in words and "--dport" in words:
                    address = words[words.index("-d") + 1].split("/")[0]
                    proto = words[words.index("-p") + 1] if "-p" in words else "tcp"
                    found.add(f"{address}:{words[words.index('--dport') + 1]}/{proto}")
    for row in (snapshot.section("ipvs", {}) or {}).get("services", ()):
        if row.get("address") and ":" not in row["address"]:
            found.add(f"{row['address']}:{row.get('port', 0)}/{row.get('protocol', 'tcp')}")
    return sorted(found)


ORIGINS = ["node", "pod:172.30.1.5", "external:203.0.113.9", "pod:172.30.22.5"]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.json")))
def test_example_traces_equal_those_over_fully_parsed_rules(name: str) -> None:
    snapshot = load_snapshot(str(EXAMPLES / name))
    fast_view, full_view = NodeView(snapshot), _full_view(snapshot)
    for service in _services(snapshot):
        for origin in ORIGINS:
            fast = _outcome(fast_view, service, origin)
            assert fast == _outcome(full_view, service, origin), (name, service, origin)


def _gen_snapshot() -> Any:
    spec = importlib.util.spec_from_file_location("gen_snapshot", ROOT / "bench" / "gen_snapshot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def grown() -> NodeSnapshot:
    snap, _ = _gen_snapshot().iptables_node(60, 3)
    return NodeSnapshot(1, {k: v for k, v in snap.items() if k not in ("format", "version")})


def test_generated_node_traces_equal_those_over_fully_parsed_rules(grown: NodeSnapshot) -> None:
    vip = _gen_snapshot().vip
    fast_view, full_view = NodeView(grown), _full_view(grown)
    for service in [f"{vip(0)}:80", f"{vip(31)}:80", f"{vip(59)}:80", f"{vip(59)}:81", f"{vip(60)}:80",
                    f"{vip(7)}:80/udp", "10.254.199.160:8080"]:
        for origin in ORIGINS:
            for sport in (None, 80):
                fast = _outcome(fast_view, service, origin, sport)
                assert fast == _outcome(full_view, service, origin, sport), (service, origin, sport)


def test_rule_walk_limit_cuts_the_fast_walk_at_the_same_rule(grown: NodeSnapshot,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    vip = _gen_snapshot().vip
    for limit in (1, 5, 30, 61, 62, 70):
        monkeypatch.setattr(netfilter, "MAX_RULE_VISITS", limit)
        for service in (f"{vip(59)}:80", f"{vip(3)}:80"):
            assert _outcome(NodeView(grown), service, "node") == _outcome(_full_view(grown), service, "node")


def test_a_malformed_rule_fails_the_fast_walk_as_the_full_parse_does(grown: NodeSnapshot) -> None:
    vip = _gen_snapshot().vip
    sections = dict(grown.sections)
    v4 = dict(sections["iptables"]["ipv4"])
    key = "nft" if v4.get("nft") else "legacy"
    bad = f"-d {vip(40)}/32 -p tcp"
    assert bad in v4[key]
    v4[key] = v4[key].replace(bad, f"-d {vip(40)}/33 -p tcp", 1)
    sections["iptables"] = {**sections["iptables"], "ipv4": v4}
    broken = NodeSnapshot(1, sections)
    with pytest.raises(InvalidInput) as full:
        parse_save(v4[key])
    # the traced service's rule comes before the bad one: the fast walk still reads the whole chain
    assert _outcome(NodeView(broken), f"{vip(3)}:80", "node") == ("error", str(full.value))


def test_walk_rules_keep_the_lazy_chain_and_full_rules_in_step() -> None:
    text = (FIXTURES / "kube-iptables-mode.rules").read_text()
    chains = parse_save(text, lazy=True).tables["nat"].chains
    assert isinstance(chains, LazyChains)
    full = parse_save(text).tables["nat"].chains
    for name in full:
        walked = chains.walk_rules(name)
        assert len(walked) == len(full[name].rules)
        for index, rule in enumerate(full[name].rules):
            assert chains.full_rule(name, index) == rule
        assert chains[name] == full[name]


def test_every_combination_of_the_common_shape_reads_alike() -> None:
    import itertools

    taken = 0
    for counters, src, dst, proto, comment, ports, target in itertools.product(
            ["", "[7:9] "], ["", " ! -s 172.30.0.0/16", " -s 10.0.0.1"],
            ["", " -d 10.254.0.1/32", " ! -d 10.100.0.0/08", " -d 10.100.0.7/33"],
            ["", " -p tcp", " ! -p UDP", " -p 6"], ["", ' -m comment --comment "ns/svc:port cluster IP"',
                                                    ' -m comment --comment ""'],
            ["", " -m tcp", " -m udp --dport 53", " -m sctp ! --sport 1:1024 --dport 80", " -m tcp --dport 70000",
             " -m tcp --dport 90:80"],
            [" -j KUBE-SVC-X", " -j REJECT --reject-with icmp-port-unreachable", " -j DROP --reject-with x"]):
        line = f"{counters}-A KUBE-SERVICES{src}{dst}{proto}{comment}{ports}{target}"
        taken += check_line(line)
        assert (iptables_quick._shaped(1, 6, line) is None) == (recognize(1, 6, line, "ipv4") is None), line
    assert taken > 1000
