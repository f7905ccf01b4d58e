"""Numbers in what a user writes (ports, prefixes, protocols, ICMP types, marks, weights, ranges)
are refused with a one-line error when they are not numbers int() can read: digits that
str.isdigit() takes and int() does not ('²'), and runs of digits longer than int() converts
(4300).  Before, such text ended in a ValueError traceback."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.core import ipvs_save
from kpctl.core.address import ascii_number, parse_fwmark, parse_port
from kpctl.core.ipset_entry import parse_element
from kpctl.core.ipset_find import parse_find_target
from kpctl.core.ipset_save import parse_restore
from kpctl.errors import KpctlError

# pieces of numbers: ASCII digits, other Unicode digits, and runs too long for int()
numbers = st.one_of(
    st.integers(min_value=0, max_value=70000).map(str),
    st.sampled_from(["²", "1²", "٣", "٣٣", "０", "1" * 5000, "9" * 4301, "0" * 30 + "1", "-1", "-²", ""]),
)

READERS: list[tuple[str, Callable[[str], Any]]] = [
    ("prefix", lambda n: parse_element("hash:net", "inet", f"10.0.0.0/{n}")),
    ("protocol number", lambda n: parse_element("hash:ip,port", "inet", f"10.0.0.1,{n}:80")),
    ("port", lambda n: parse_element("hash:ip,port", "inet", f"10.0.0.1,tcp:{n}")),
    ("ICMP type", lambda n: parse_element("hash:ip,port", "inet", f"10.0.0.1,icmp:{n}/0")),
    ("ICMP code", lambda n: parse_element("hash:ip,port", "inet", f"10.0.0.1,icmp:0/{n}")),
    ("timeout", lambda n: parse_restore(f"create s hash:ip timeout 5\nadd s 10.0.0.1 timeout {n}\n")),
    ("bitmap range", lambda n: parse_restore(f"create s bitmap:port range 1-{n}\n")),
    ("find port", lambda n: parse_find_target(f"10.0.0.1:{n}")),
    ("find protocol", lambda n: parse_find_target(f"10.0.0.1:80/{n}")),
    ("ipvs fwmark", lambda n: ipvs_save.parse_rule_line(1, f"-A -f {n} -s rr")),
    ("ipvs fwmark as -S writes it", lambda n: ipvs_save.parse_rule_line(1, f"-A -f -{n} -s rr")),
    ("ipvs port", lambda n: ipvs_save.parse_rule_line(1, f"-A -t 10.0.0.1:{n} -s rr")),
    ("ipvs weight", lambda n: ipvs_save.parse_rule_line(1, f"-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w {n}")),
    ("ipvs timeout", lambda n: ipvs_save.parse_rule_line(1, f"-A -t 10.0.0.1:80 -s rr -p {n}")),
    ("port", lambda n: parse_port(n, "port")),
    ("fwmark", lambda n: parse_fwmark(n)),
]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(READERS), numbers)
def test_a_number_is_read_or_refused_in_one_line(reader: tuple[str, Callable[[str], Any]], text: str) -> None:
    try:
        reader[1](text)
    except KpctlError as exc:
        assert "\n" not in exc.message


@pytest.mark.parametrize(("text", "digits", "number"), [
    ("0", 20, 0), ("65535", 5, 65535), ("123456", 5, None), ("²", 20, None), ("٣", 20, None), ("", 20, None),
    ("1" * 21, 20, None), ("+1", 20, None), (" 1", 20, None), ("007", 3, 7),
])
def test_ascii_number(text: str, digits: int, number: int | None) -> None:
    assert ascii_number(text, digits) == number
