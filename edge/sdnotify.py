"""Minimal sd_notify(3) client: tell systemd we are ready, alive, reloading or stopping.

Written here rather than depending on python-systemd because that needs libsystemd headers to build and
the protocol is one datagram on a Unix socket.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

#: Only warn once about a broken socket: the watchdog pings every loop and a log line per frame would
#: flood the journal.
_warned = False


def _socket_address(raw: str) -> str | bytes:
    # A leading '@' means the Linux abstract namespace: the kernel wants a NUL byte there instead.
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``, ``"WATCHDOG=1"``, ``"STATUS=..."``) to systemd.

    Returns True when the datagram was sent, False when not running under systemd (``$NOTIFY_SOCKET``
    unset) or the socket is unusable. Never raises: a monitoring hiccup must not stop the daemon.
    """
    global _warned
    raw = os.environ.get("NOTIFY_SOCKET")
    if not raw:
        return False
    if not raw.startswith(("/", "@")):
        # systemd >= 254 also allows vsock:..., which a camera daemon on a Pi never sees.
        if not _warned:
            log.warning("NOTIFY_SOCKET=%r is not a Unix socket path; sd_notify disabled", raw)
            _warned = True
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_socket_address(raw))
            sock.sendall(state.encode())
        return True
    except OSError as exc:
        if not _warned:
            log.warning("sd_notify to %s failed: %s", raw, exc)
            _warned = True
        return False


def watchdog_interval() -> float | None:
    """Seconds within which systemd expects ``WATCHDOG=1``, or None when no watchdog applies to us.

    Mirrors sd_watchdog_enabled(3): ``$WATCHDOG_USEC`` set and, if ``$WATCHDOG_PID`` is set, equal to our
    pid (so a child process does not think the parent's watchdog is its own). Callers should ping at
    about half this interval.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    if value <= 0:
        return None
    return value / 1_000_000
