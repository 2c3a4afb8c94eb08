"""Which host names and addresses mean "this machine, by loopback" (one answer for the bind check and the
``Host`` header check, so the two cannot drift apart), and the address such a name is bound to.

A loopback name is never looked up: ``localhost.localdomain`` and the ``ip6-`` names are not in every
/etc/hosts, and missing there they go to DNS - which may answer a LAN address or 0.0.0.0 (the page served
to the network without a token), or not answer at all (10 s per nameserver, at every start and reload,
past the service's watchdog). The page is bound to the literal loopback address instead.
"""

from __future__ import annotations

import ipaddress

#: The names Debian's /etc/hosts and systemd-resolved give the loopback addresses, and the address each
#: is bound to.
LOOPBACK_NAMES = {"localhost": "127.0.0.1", "localhost.localdomain": "127.0.0.1",
                  "ip6-localhost": "::1", "ip6-loopback": "::1"}


def loopback_address(host: str) -> str | None:
    """The loopback address ``host`` stands for: the address itself (``127.0.0.1``, ``127.1.2.3``,
    ``::1``), the literal one for a name in ``LOOPBACK_NAMES`` (any case, with or without the final dot),
    None for anything else - another name, an address of the machine's network."""
    host = host.strip().lower()
    name = host[:-1] if host.endswith(".") else host
    if name in LOOPBACK_NAMES:
        return LOOPBACK_NAMES[name]
    try:
        return host if ipaddress.ip_address(host).is_loopback else None
    except ValueError:
        return None


def is_loopback_name(host: str) -> bool:
    """True for a loopback address or one of ``LOOPBACK_NAMES`` (see ``loopback_address``)."""
    return loopback_address(host) is not None
