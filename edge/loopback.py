"""Which host names and addresses mean "this machine, by loopback" (one answer for the bind check and the
``Host`` header check, so the two cannot drift apart)."""

from __future__ import annotations

import ipaddress

#: The names Debian's /etc/hosts and systemd-resolved give the loopback addresses.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback_name(host: str) -> bool:
    """True for a loopback address (``127.0.0.1``, ``127.1.2.3``, ``::1``) or one of ``LOOPBACK_NAMES``,
    in any case. Anything else - another name, an address of the machine's network - is not."""
    host = host.strip().lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
