"""The doctor's address keys (packed bytes) stand for exactly what ipaddress objects did."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.core.doctor.base import address_key, address_of, is_loopback

_V4 = st.one_of(st.integers(0, 2**32 - 1), st.integers(0x7F000000, 0x7FFFFFFF)).map(ipaddress.IPv4Address)
_V6 = st.one_of(st.integers(0, 2**128 - 1), st.integers(0, 2**32), st.just(1),
                st.integers(0xFFFF7F000000, 0xFFFF7FFFFFFF)).map(ipaddress.IPv6Address)  # ::, ::1, ::ffff:127.x


@settings(max_examples=500)
@given(st.one_of(_V4, _V6), st.sampled_from(["", "/32", "/128", "/8"]))
def test_keys_compare_and_classify_as_ipaddress_does(ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                                                    suffix: str) -> None:
    key = address_key(str(ip) + suffix)
    assert key == ip.packed
    assert address_of(key) == ip and str(address_of(key)) == str(ip)
    assert is_loopback(key) == ip.is_loopback


def test_no_address_and_text_that_is_none() -> None:
    assert address_key(None) is None and address_key("") is None
    assert address_key("not-an-address") is None and address_key("10.0.0.256/32") is None
