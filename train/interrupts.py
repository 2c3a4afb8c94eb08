"""Ctrl-C and SIGTERM in the desktop tools (train, convert, evaluate).

The exception a signal raises lands wherever the main thread is, and that is often inside TensorFlow, whose
C++ code hands back another exception in its place (a ``SystemError``, a ``TypeError`` from tf.data) and
prints a traceback of its own: exit 1 and a traceback for a plain Ctrl-C, about one run in three of
convert's interrupt test. Two ways out, both here:

- a tool that can say in advance what an interruption leaves (convert: its temp files, removed) gives
  :func:`install` an ``exit_line``: the handler then removes the :func:`track`-ed files, prints that line and
  exits at once with 128 + the signal, so no exception ever passes through TensorFlow;
- otherwise the handler raises (KeyboardInterrupt, or :class:`Terminated` for SIGTERM) after recording the
  signal, and the tool asks :func:`signalled` what an exception it did not expect stands for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

_received: list[int] = []
_exit_line: Callable[[int], str] | None = None
_temps: set[Path] = set()


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt so that temp files are removed on the way out (Python's default
    for SIGTERM ends the process on the spot)."""


def word(signum: int) -> str:
    return "terminated" if signum == signal.SIGTERM else "interrupted"


def _on_signal(signum: int, frame: object) -> None:
    _received.append(signum)
    if _exit_line is None:
        raise KeyboardInterrupt if signum == signal.SIGINT else Terminated
    for path in list(_temps):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
    print(_exit_line(signum), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # At once: TensorFlow's threads, torn down by the interpreter's shutdown mid-work, now and then
    # aborted the process (exit 134).
    os._exit(128 + signum)


def install(exit_line: Callable[[int], str] | None = None) -> None:
    """Handle SIGINT and SIGTERM: exit at once with ``exit_line(signum)`` when given (see the module), else
    raise KeyboardInterrupt / :class:`Terminated`, recording which signal came. Called again, it changes the
    line (convert's once its model is in place)."""
    global _exit_line
    _exit_line = exit_line
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def track(path: Path) -> None:
    """Remove ``path`` if a signal ends the process (with an ``exit_line``) before :func:`untrack`."""
    _temps.add(path)


def untrack(path: Path) -> None:
    _temps.discard(path)


def signalled(exc: BaseException) -> int | None:
    """The signal behind ``exc`` - the first one received, whatever TensorFlow made of its exception - or
    None when no signal came and ``exc`` is an error of its own."""
    if _received:
        return _received[0]
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(exc, Terminated):
        return signal.SIGTERM
    return None
