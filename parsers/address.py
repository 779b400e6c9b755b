"""IP address text to canonical form: the one comparison both sides of a correlation agree on."""

import ipaddress
import re
from functools import lru_cache
from typing import Optional

# A dotted quad already in canonical form: octets 0-255 without leading zeros. Nearly every
# IPv4 address in a log is written so, and a spray brings a new one on every line: one regex
# match instead of the ipaddress module's parse (ten times slower) and no cache churn.
_CANONICAL_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}",
                             re.ASCII)  # ASCII digits only: "1٩٢.0.2.250" is not an address


def canonical_ip(text: str) -> Optional[str]:
    """Return the canonical form of an IP address, or None when ``text`` is not exactly one.

    IPv4 is dotted decimal with every octet checked (``010.1.1.1`` and ``256.1.1.1`` are not
    addresses, and no fragment of a longer number is accepted because the whole text must
    parse); ``::ffff:a.b.c.d`` is the IPv4 address it maps; IPv6 is compressed and lower-case.
    Only ASCII digits are digits. A zone index belongs only to an IPv6 link-local address
    (``fe80::1%eth0``, dropped): on any other address (``192.0.2.250%evil.example.com``,
    ``::ffff:192.0.2.250%x``) the text is not an address. Cached: log streams repeat their
    addresses.

    >>> canonical_ip("2001:DB8:0::1"), canonical_ip("::ffff:192.0.2.7"), canonical_ip("1.2.3.04")
    ('2001:db8::1', '192.0.2.7', None)
    >>> canonical_ip("fe80::1%eth0"), canonical_ip("192.0.2.250%eth0")
    ('fe80::1', None)
    """
    if _CANONICAL_IPV4.fullmatch(text):
        return text
    return _canonical_other(text)


@lru_cache(maxsize=65536)
def _canonical_other(text: str) -> Optional[str]:
    """IPv6 and anything unusual, through the ipaddress module (cached: such text repeats)."""
    if not text or len(text) > 45 or not text.isascii():
        return None
    address_text, percent, zone = text.partition("%")
    try:
        address = ipaddress.ip_address(address_text)
    except ValueError:
        return None
    if percent and not (zone and "%" not in zone and address.version == 6 and address.is_link_local):
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_loopback(canonical: str) -> bool:
    """True for 127.0.0.0/8 and ::1, given an address already in canonical form."""
    return canonical.startswith("127.") or canonical == "::1"
