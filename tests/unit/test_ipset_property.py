"""Property tests: save -> parse -> save is stable; malformed text gives InvalidInput only."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpctl.core.ipset_entry import parse_element
from kpctl.core.ipset_save import format_save, parse_restore, parse_save
from kpctl.errors import InvalidInput
from kpctl.model.ipset import IPSet, IPSetEntry

v4 = st.integers(min_value=1, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
v6 = st.integers(min_value=1, max_value=2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
protos = st.sampled_from(["tcp", "udp", "sctp", "udplite"])
ports = st.integers(min_value=0, max_value=65535)
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_.:-]{0,30}", fullmatch=True)


def _net(address: st.SearchStrategy[str], bits: int) -> st.SearchStrategy[str]:
    return st.tuples(address, st.integers(min_value=1, max_value=bits)).map(lambda t: f"{t[0]}/{t[1]}")


def _element(set_type: str, family: str) -> st.SearchStrategy[str]:
    ip = v6 if family == "inet6" else v4
    net = _net(ip, 128 if family == "inet6" else 32)
    port = st.tuples(protos, ports).map(lambda t: f"{t[0]}:{t[1]}")
    icmp = st.sampled_from(["ipv6-icmp:echo-request", "ipv6-icmp:1/4"] if family == "inet6"
                           else ["icmp:echo-request", "icmp:3/7", "icmp:200/1"])
    any_port = st.one_of(port, icmp)
    shapes = {
        "hash:ip": ip,
        "hash:net": net,
        "hash:ip,port": st.tuples(ip, any_port).map(",".join),
        "hash:net,port": st.tuples(net, port).map(",".join),
        "hash:ip,port,ip": st.tuples(ip, port, ip).map(",".join),
        "hash:ip,port,net": st.tuples(ip, port, net).map(",".join),
        "hash:net,iface": st.tuples(net, st.from_regex(r"(physdev:)?[a-z][a-z0-9]{0,14}", fullmatch=True)).map(",".join),
    }
    return shapes[set_type]


@st.composite
def ipsets(draw: st.DrawFn) -> IPSet:
    set_type = draw(st.sampled_from(["hash:ip", "hash:net", "hash:ip,port", "hash:net,port", "hash:ip,port,ip",
                                     "hash:ip,port,net", "hash:net,iface", "bitmap:port", "list:set"]))
    timeout = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=2147483)))
    counters, comment, skbinfo = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    header: dict[str, object] = {"timeout": timeout, "counters": counters, "comment": comment, "skbinfo": skbinfo}
    if set_type == "bitmap:port":
        header.update(family=None, range="0-65535")
        elements = st.integers(min_value=0, max_value=65535).map(str)
    elif set_type == "list:set":
        header.update(family=None, size=draw(st.integers(min_value=1, max_value=64)))
        elements = names
    else:
        family = draw(st.sampled_from(["inet", "inet6"]))
        header.update(family=family, hashsize=draw(st.sampled_from([64, 1024, 4096])),
                      maxelem=draw(st.integers(min_value=1, max_value=2**20)),
                      bucketsize=draw(st.integers(min_value=2, max_value=12)),
                      initval=draw(st.integers(min_value=0, max_value=2**32 - 1)))
        elements = _element(set_type, family)
    ipset = IPSet(name=draw(names), type=set_type, **header)  # type: ignore[arg-type]
    members: list[IPSetEntry] = []
    for text in draw(st.lists(elements, max_size=6)):
        entry = parse_element(set_type, ipset.family, text)
        extras: dict[str, object] = {}
        if timeout is not None:
            extras["timeout"] = draw(st.integers(min_value=0, max_value=2147483))
        if counters:
            extras["packets"] = draw(st.integers(min_value=0, max_value=2**64 - 1))
            extras["bytes"] = draw(st.integers(min_value=0, max_value=2**64 - 1))
        if comment and draw(st.booleans()):
            extras["comment"] = draw(st.text(st.characters(min_codepoint=32, max_codepoint=126, exclude_characters='"'),
                                             max_size=40))
        if skbinfo and draw(st.booleans()):
            extras["skbmark"] = draw(st.integers(min_value=0, max_value=2**32 - 1))
            extras["skbmarkmask"] = draw(st.sampled_from([0xFFFFFFFF, 0xFF]))
        if "net" in ipset.dimensions and draw(st.booleans()):
            extras["nomatch"] = True
        members.append(replace(entry, **extras))  # type: ignore[arg-type]
    return ipset.with_members(tuple(members))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ipsets(), max_size=4, unique_by=lambda s: s.name))
def test_format_parse_format_is_stable(sets: list[IPSet]) -> None:
    text = format_save(sets)
    parsed = parse_save(text)
    assert format_save(parsed) == text
    assert parse_save(format_save(parsed)) == parsed
    assert [s.name for s in parsed] == [s.name for s in sets]
    assert [len(s.members) for s in parsed] == [len(s.members) for s in sets]


def _only_invalid_input(text: str) -> None:
    try:
        parse_save(text)
    except InvalidInput as exc:
        assert str(exc) and "\n" not in str(exc)
    try:
        parse_restore(text)
    except InvalidInput as exc:
        assert str(exc)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_invalid_input_or_sets(text: str) -> None:
    _only_invalid_input(text)


SAMPLE = """create a hash:ip,port family inet hashsize 1024 maxelem 65536 timeout 30 counters comment skbinfo
add a 10.0.0.1,tcp:80 timeout 3 packets 1 bytes 2 comment "x y" skbmark 0x1/0xff skbprio 1:2 skbqueue 3
create b hash:net,iface family inet6
add b fd00::/64,physdev:eth0 nomatch
create c bitmap:port range 0-65535
add c 30080
create d list:set size 8
add d a
"""


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_save_text_gives_invalid_input_never_another_exception(data: st.DataObject) -> None:
    text = SAMPLE
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        position = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        action = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        char = data.draw(st.sampled_from(list(' ,:/-."x0123456789abcdef\n\t') + ["\x00", "é", "::", "/999"]))
        if action == "delete":
            text = text[:position] + text[position + 1:]
        elif action == "insert":
            text = text[:position] + char + text[position:]
        else:
            text = text[:position] + char + text[position + 1:]
    _only_invalid_input(text)
