"""Which host names and addresses mean "this machine, by loopback" (one answer for the bind check and the
``Host`` header check, so the two cannot drift apart)."""

from __future__ import annotations

import ipaddress
import socket

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


def binds_to_loopback(host: str) -> bool:
    """For ``web.host``: a loopback address, or a loopback name that resolves here to loopback addresses only.
    A name is looked up where it is bound: one missing from /etc/hosts (``localhost.localdomain`` and the
    ``ip6-`` names are not in every image) goes to DNS, whose answer - a LAN address, 0.0.0.0 - would have
    served the page beyond loopback without a token. A name that does not resolve is not loopback."""
    if not is_loopback_name(host):
        return False
    host = host.strip()
    try:
        ipaddress.ip_address(host)
        return True  # an address, not a name
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)
