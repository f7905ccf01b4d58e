"""Address text both sides of a comparison spell the same way."""

from __future__ import annotations

import ipaddress
from typing import Any


def canonical_address(address: Any) -> str:
    """IPv6 compressed as ipaddress prints it; dotted IPv4 as it is (it has one spelling, and
    ipaddress costs ~20 µs a call, which a 10,000-service node pays 70,000 times)."""
    text = str(address)
    if ":" not in text:
        return text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text
