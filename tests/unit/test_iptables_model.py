"""Typed views of the iptables model: what the trace engine evaluates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kpctl.core.iptables_save import parse_save
from kpctl.model.iptables import (
    AddressMatch,
    InterfaceMatch,
    MarkMatch,
    Option,
    PortMatch,
    ProtocolMatch,
    Rule,
    Ruleset,
    Target,
    ipv6_host,
    parse_nat_range,
    parse_port_ranges,
)

SHARED = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def iptables_mode() -> Ruleset:
    return parse_save((SHARED / "kube-iptables-mode.rules").read_text())


@pytest.fixture(scope="module")
def ipvs_mode() -> Ruleset:
    return parse_save((SHARED / "kube-ipvs-mode.rules").read_text(), backend="legacy")


def _rules(ruleset: Ruleset, table: str, chain: str) -> tuple[Rule, ...]:
    found = ruleset.chain(table, chain)
    assert found is not None, chain
    return found.rules


def test_kube_services_cluster_ip_rule(iptables_mode: Ruleset) -> None:
    rule = _rules(iptables_mode, "nat", "KUBE-SERVICES")[0]
    assert rule.number == 1 and rule.chain == "KUBE-SERVICES"
    assert rule.dst is not None and rule.dst.matches("10.254.0.1") and not rule.dst.matches("10.254.0.2")
    assert rule.dst.prefix == 32 and not rule.dst.negated
    assert rule.protocol is not None and rule.protocol.matches("tcp") and not rule.protocol.matches("udp")
    tcp = rule.modules("tcp")[0]
    assert tcp.dport is not None and tcp.dport.matches(443) and not tcp.dport.matches(80)
    assert rule.comment == "default/kubernetes:https cluster IP"
    assert rule.jump == "KUBE-SVC-NPX46M4PTMTKRN6Y" and not rule.goto
    assert rule.target is not None and rule.target.is_chain and not rule.target.terminal


def test_masquerade_mark_rule_negates_pod_cidr(iptables_mode: Ruleset) -> None:
    rule = _rules(iptables_mode, "nat", "KUBE-SVC-NPX46M4PTMTKRN6Y")[0]
    assert rule.src == AddressMatch("172.30.0.0/16", negated=True)
    assert not rule.src.matches("172.30.4.4") and rule.src.matches("10.0.0.10")
    assert rule.jump == "KUBE-MARK-MASQ"


def test_statistic_and_recent_affinity(iptables_mode: Ruleset) -> None:
    rules = _rules(iptables_mode, "nat", "KUBE-SVC-WEBHTTP00000000000")
    recent = rules[1].modules("recent")[0].recent
    assert recent is not None
    assert (recent.name, recent.action, recent.seconds, recent.reap, recent.side) == (
        "KUBE-SEP-WEB1AAAAAAAAAAAA", "rcheck", 10800, True, "rsource")
    assert recent.mask == "255.255.255.255"
    stat = rules[4].modules("statistic")[0].statistic
    assert stat is not None and stat.mode == "random" and stat.probability == pytest.approx(1 / 3)
    assert rules[5].modules("statistic")[0].statistic.probability == 0.5  # type: ignore[union-attr]
    assert rules[6].modules("statistic") == () and rules[6].jump == "KUBE-SEP-WEB3CCCCCCCCCCCC"
    setter = _rules(iptables_mode, "nat", "KUBE-SEP-WEB1AAAAAAAAAAAA")[1]
    assert setter.modules("recent")[0].recent.action == "set"  # type: ignore[union-attr]


def test_dnat_target(iptables_mode: Ruleset) -> None:
    rule = _rules(iptables_mode, "nat", "KUBE-SEP-WEB1AAAAAAAAAAAA")[1]
    target = rule.target
    assert target is not None and target.name == "DNAT" and target.terminal and not target.is_chain
    dest = target.to_destination
    assert dest is not None and (dest.min_address, dest.max_address, dest.min_port, dest.max_port) == (
        "172.30.1.5", "172.30.1.5", 8080, 8080)


def test_reject_for_service_without_endpoints(iptables_mode: Ruleset) -> None:
    rule = _rules(iptables_mode, "filter", "KUBE-SERVICES")[0]
    assert rule.target is not None and rule.target.name == "REJECT"
    assert rule.target.reject_with == "icmp-port-unreachable"
    ext = _rules(iptables_mode, "filter", "KUBE-EXTERNAL-SERVICES")[0]
    assert ext.modules("addrtype")[0].addrtype.dst_type == ("LOCAL",)  # type: ignore[union-attr]


def test_ipvs_mode_set_matches_and_marks(ipvs_mode: Ruleset) -> None:
    services = _rules(ipvs_mode, "nat", "KUBE-SERVICES")
    masq = services[2]
    assert masq.src == AddressMatch("172.30.0.0/16", True)
    match_set = masq.modules("set")[0].match_set
    assert match_set is not None and (match_set.name, match_set.flags, match_set.negated) == (
        "KUBE-CLUSTER-IP", ("dst", "dst"), False)
    loop = _rules(ipvs_mode, "nat", "KUBE-POSTROUTING")[0]
    assert loop.modules("set")[0].match_set.flags == ("dst", "dst", "src")  # type: ignore[union-attr]
    assert loop.target is not None and loop.target.name == "MASQUERADE"
    ret = _rules(ipvs_mode, "nat", "KUBE-POSTROUTING")[1]
    mark = ret.modules("mark")[0].mark
    assert mark == MarkMatch(0x4000, 0x4000, negated=True)
    assert mark.matches(0x0) and not mark.matches(0x4000) and not mark.matches(0x4001)
    clear = _rules(ipvs_mode, "nat", "KUBE-POSTROUTING")[2].target
    assert clear is not None and clear.xmark == (0x4000, 0) and clear.apply_mark(0x4001) == 0x1
    final = _rules(ipvs_mode, "nat", "KUBE-POSTROUTING")[3].target
    assert final is not None and final.random_fully
    mark_masq = _rules(ipvs_mode, "nat", "KUBE-MARK-MASQ")[0].target
    assert mark_masq is not None and mark_masq.apply_mark(0x1) == 0x4001 and mark_masq.apply_mark(0x4000) == 0x4000
    external = services[4]
    assert external.modules("physdev")[0].physdev.is_in is False  # type: ignore[union-attr]
    addrtype = external.modules("addrtype")[0].addrtype
    assert addrtype is not None and addrtype.src_type == ("LOCAL",) and addrtype.src_negated


def test_ipvs_filter_conntrack_and_reject(ipvs_mode: Ruleset) -> None:
    rule = _rules(ipvs_mode, "filter", "KUBE-IPVS-FILTER")[-1]
    ct = rule.modules("conntrack")[0].conntrack
    assert ct is not None and ct.ctstate == ("NEW",) and not ct.ctstate_negated
    assert rule.modules("set")[0].match_set.flags == ("dst",)  # type: ignore[union-attr]
    firewall = _rules(ipvs_mode, "filter", "KUBE-FIREWALL")[1]
    ct2 = firewall.modules("conntrack")[0].conntrack
    assert ct2 is not None and ct2.ctstate == ("RELATED", "ESTABLISHED", "DNAT") and ct2.ctstate_negated


@pytest.mark.parametrize("option, xmark", [
    # (restore-style option, the --set-xmark value/mask iptables-save printed for it in a namespace)
    (Option("--or-mark", ("0x4000",)), (0x4000, 0x4000)),
    (Option("--and-mark", ("0xffffbfff",)), (0x0, 0x4000)),
    (Option("--set-mark", ("0x8000/0xc000",)), (0x8000, 0xC000)),
    (Option("--xor-mark", ("0x4000",)), (0x4000, 0x0)),
    (Option("--set-xmark", ("0x4000/0x4000",)), (0x4000, 0x4000)),
    (Option("--set-mark", ("0x1",)), (0x1, 0xFFFFFFFF)),
])
def test_mark_target_forms_normalise_like_the_kernel(option: Option, xmark: tuple[int, int]) -> None:
    assert Target("MARK", (option,)).xmark == xmark


def test_port_ranges_and_nat_ranges() -> None:
    assert parse_port_ranges("80,443,8000:8080") == ((80, 80), (443, 443), (8000, 8080))
    assert parse_port_ranges("1024:") == ((1024, 65535),)
    assert PortMatch(((30000, 32767),), negated=True).matches(80)
    with pytest.raises(ValueError):
        parse_port_ranges("90:80")
    for bad in ("notaport", "80:x", "+80", " 80", "8_0", "٨٠"):
        with pytest.raises(ValueError, match=rf"^bad port '{re.escape(bad)}'$"):
            parse_port_ranges(bad)
    assert parse_nat_range("[fd00::5]:8080").min_address == "fd00::5"
    r = parse_nat_range("10.0.0.1-10.0.0.3:8080-8090")
    assert (r.min_address, r.max_address, r.min_port, r.max_port) == ("10.0.0.1", "10.0.0.3", 8080, 8090)
    assert parse_nat_range(":9090").min_address is None and parse_nat_range(":9090").min_port == 9090
    assert parse_nat_range("fd00::1").max_address == "fd00::1"


@pytest.mark.parametrize("text, parsed", [
    ("10.1.0.8:8080", ("10.1.0.8", "10.1.0.8", 8080, 8080)),  # a DNAT of kube-proxy's: the short way
    ("10.1.0.8:", ("10.1.0.8", "10.1.0.8", None, None)),
    ("10.1.0.8", ("10.1.0.8", "10.1.0.8", None, None)),
    ("10.1.0.8:80-90", ("10.1.0.8", "10.1.0.8", 80, 90)),
    ("10.1.0.8-10.1.0.9:80", ("10.1.0.8", "10.1.0.9", 80, 80)),
    (":80", (None, None, 80, 80)),
])
def test_nat_range_of_an_address_and_port(text: str, parsed: tuple[object, ...]) -> None:
    assert tuple(parse_nat_range(text)) == parsed


@pytest.mark.parametrize("text", ["10.1.0.256:80", "10.1.0.8:http", "010.1.0.8:80", "10.1.0.8:80:90", "[]:80", "[]"])
def test_nat_range_rejects_a_bad_address_or_port(text: str) -> None:
    with pytest.raises(ValueError):
        parse_nat_range(text)


@pytest.mark.parametrize("address", [
    "fd00::5", "::", "::1", "FD00::A", "fd00:0:0:0:0:0:0:1", "::ffff:1.2.3.4", "fe80::1%eth0",  # taken
    "fd00:::5", "fd00::5::1", "12345::1", "fd00::g", "::ffff:1.2.3.256", "::ffff:01.2.3.4", "fd00::5%",  # not
])
def test_nat_range_takes_the_ipv6_addresses_ipaddress_takes(address: str) -> None:
    import ipaddress

    try:
        ipaddress.ip_address(address)
        valid = True
    except ValueError:
        valid = False
    text = f"[{address}]:80"
    if valid:
        assert parse_nat_range(text).min_address == address
    else:
        with pytest.raises(ValueError):
            parse_nat_range(text)


def test_an_ipv6_network_is_written_as_ipaddress_writes_it_and_a_bad_one_fails_at_parse() -> None:
    import ipaddress

    for text in ("fd00:10:244::/56", "fd00:10:244::1/56", "FD00::/8", "::/0", "fd00::1/127", "::ffff:1.2.3.0/120"):
        for _ in range(2):  # the second time from the cache
            assert AddressMatch(text).cidr == str(ipaddress.ip_network(text, strict=False)), text
    for bad in ("fd00::/129", "fd00:::/64", "fd00::/x"):
        with pytest.raises(ValueError):
            AddressMatch(bad)


def test_interface_wildcards_and_protocol_numbers() -> None:
    assert InterfaceMatch("veth+").matches("veth1234") and not InterfaceMatch("veth+").matches("eth0")
    assert InterfaceMatch("eth0", negated=True).matches("eth1")
    assert ProtocolMatch("6").matches("tcp") and ProtocolMatch("all").matches("sctp")
    assert not AddressMatch("10.0.0.0/8").matches("fd00::1")


def test_unknown_match_is_kept_verbatim() -> None:
    text = ("*filter\n:OUTPUT ACCEPT [0:0]\n"
            "-A OUTPUT -s 203.0.113.20/32 -m ipvs --vaddr 203.0.113.20/32 --vport 80 --vproto 6 -j DROP\nCOMMIT\n")
    rule = parse_save(text).chain("filter", "OUTPUT").rules[0]  # type: ignore[union-attr]
    unknown = rule.matches[1]
    assert unknown.module == "ipvs" and not unknown.known
    assert unknown.options == (Option("--vaddr", ("203.0.113.20/32",)), Option("--vport", ("80",)),
                               Option("--vproto", ("6",)))
    assert unknown.to_dict()["options"][0] == {"name": "--vaddr", "values": ["203.0.113.20/32"], "negated": False}


def test_to_dict_is_plain_json_data(iptables_mode: Ruleset) -> None:
    import json

    document = iptables_mode.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["family"] == "ipv4" and document["backend"] == "nft"
    nat = next(t for t in document["tables"] if t["name"] == "nat")
    chain = next(c for c in nat["chains"] if c["name"] == "KUBE-MARK-MASQ")
    assert chain["policy"] is None
    assert chain["rules"][0]["target"]["xmark"] == {"value": 0x4000, "mask": 0x4000}


@pytest.mark.parametrize("text", ["10.0.0.1", "10.0.0.7/8", "10.100.0.0/08", "0.0.0.0/0", "255.255.255.255/32",
                                  "172.30.1.2/255.255.0.0", "fd00::1/64", "::/0", "10.0.0.1/31"])
def test_address_cidr_is_what_ipaddress_prints(text: str) -> None:
    import ipaddress

    address = AddressMatch(text)
    network = ipaddress.ip_network(text, strict=False)
    assert (address.cidr, address.prefix, address.version) == (str(network), network.prefixlen, network.version)


@pytest.mark.parametrize("text", ["10.0.0.300", "10.0.0.1/33", "010.0.0.1", "fd00::1/129", "x"])
def test_a_bad_address_fails_when_built(text: str) -> None:
    with pytest.raises(ValueError):
        AddressMatch(text)


def test_an_ipv6_host_is_written_as_ipaddress_writes_its_network() -> None:
    import ipaddress
    import random
    import socket

    rng = random.Random(7)
    texts = ["fd00::1/128", "fd00:10:244::5", "::1/128", "::/128", "2001:db8:0:0:1:0:0:1/128", "FD00::A/128",
             "fd00:0:0:0:0:0:0:1/128", "1:0:0:2:0:0:0:3/128"]
    for _ in range(3000):
        words = [rng.choice([0, 0, 1, 0xFFFF, rng.randrange(65536)]) for _ in range(8)]
        texts.append(socket.inet_ntop(socket.AF_INET6, b"".join(w.to_bytes(2, "big") for w in words)) + "/128")
    taken = 0
    for text in texts:
        fast = ipv6_host(text)
        if fast is not None:
            taken += 1
            assert fast == str(ipaddress.ip_network(text, strict=False)), text
        assert AddressMatch(text).cidr == str(ipaddress.ip_network(text, strict=False)), text
    assert taken > 2500
    # what ipaddress writes otherwise (an IPv4 tail, differently before 3.13), other prefixes, not IPv6
    for other in ("::ffff:1.2.3.4/128", "::ffff:102:304/128", "::1.2.3.4", "fd00::/64", "fd00::1/127",
                  "fd00::1%eth0", "10.0.0.1/32", "fd00:::1/128", "fd00::1/"):
        assert ipv6_host(other) is None, other
