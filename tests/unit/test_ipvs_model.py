"""The IPVS model's values (kpctl.model.ipvs): NamedTuples that read and write their documents."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.model.ipvs import RealServer, ServiceKey, Stats, VirtualService

_COUNTS = st.integers(0, 2**64 - 1)
_SMALL = st.integers(0, 2**32 - 1)
_SERVERS = st.builds(lambda a, p, f, values, t, s: RealServer(a, p, "inet6" if ":" in a else "inet", f, *values, t,
                                                              *values[:2], s),
                     st.sampled_from(["10.0.0.1", "fd00::1"]), st.integers(0, 65535),
                     st.sampled_from(["masq", "route", "tunnel"]), st.tuples(*[_SMALL] * 6),
                     st.sampled_from(["ipip", "gue", "gre"]),
                     st.one_of(st.just(Stats()), st.builds(Stats, *[_COUNTS] * 10)))
_SERVICES = st.builds(lambda a, p, servers, s: VirtualService(address=a, port=p, scheduler="rr",
                                                              servers=tuple(servers), stats=s),
                      st.sampled_from(["10.96.0.1", "fd00::10"]), st.integers(0, 65535),
                      st.lists(_SERVERS, max_size=3), st.builds(Stats, *[_COUNTS] * 10))


@settings(max_examples=60)
@given(_SERVICES)
def test_a_service_reads_back_its_document(service: VirtualService) -> None:
    document = service.to_dict()
    assert list(document) == [*VirtualService._fields[:-2], "servers", "stats"]
    assert all(list(server) == [*RealServer._fields] for server in document["servers"])
    assert VirtualService.from_dict(document) == service


def test_a_document_without_counters_shares_the_zero_counters() -> None:
    one = RealServer.from_dict({"address": "10.0.0.1", "port": 80})
    other = RealServer.from_dict({"address": "10.0.0.2", "port": 80, "stats": {"conns": 0}})
    assert one.stats is other.stats and one.stats == Stats()
    assert RealServer.from_dict({"address": "10.0.0.1", "port": 80, "stats": {"inbytes": 7}}).stats.inbytes == 7


def test_a_document_missing_fields_takes_their_defaults_and_refuses_a_missing_address() -> None:
    server = RealServer.from_dict({"port": 80, "address": "10.0.0.1", "weight": 3, "unknown": 1,
                                   "stats": {"conns": "4", "inpkts": True, "other": 9}})
    assert server == RealServer("10.0.0.1", 80, weight=3, stats=Stats(conns=4, inpkts=1))
    assert type(server.stats.conns) is int
    for document in ({"port": 80}, {"address": "10.0.0.1"}):
        with pytest.raises(TypeError, match="address" if "port" in document else "port"):
            RealServer.from_dict(document)
    with pytest.raises(ValueError):
        Stats.from_dict({"conns": "many"})
    assert VirtualService.from_dict({"port": 53, "protocol": "udp"}) == VirtualService(protocol="udp", port=53)


def test_with_servers_keeps_every_other_field() -> None:
    service = VirtualService(address="10.96.0.1", port=443, scheduler="wrr", flags=1, timeout=30,
                             stats=Stats(conns=3), servers=(RealServer("10.0.0.1", 6443),))
    changed = service.with_servers((RealServer("10.0.0.2", 6443, weight=2),))
    assert changed == service._replace(servers=(RealServer("10.0.0.2", 6443, weight=2),))
    assert changed.key == service.key == ServiceKey("inet", "tcp", "10.96.0.1", 443, 0)


def test_model_values_are_immutable_and_hashable() -> None:
    server = RealServer("10.0.0.1", 80)
    with pytest.raises(AttributeError):
        server.weight = 3  # type: ignore[misc]
    assert len({server, RealServer("10.0.0.1", 80)}) == 1
    assert hash(VirtualService(servers=(server,))) == hash(VirtualService(servers=(RealServer("10.0.0.1", 80),)))
