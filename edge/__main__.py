"""``python -m edge``: see :mod:`edge.cli`."""

from __future__ import annotations

import signal
import sys

from edge.cli import main

if __name__ == "__main__":
    code = main()
    # The run is over; the interpreter's shutdown puts SIGHUP back to its default action (kill) but leaves an
    # ignored one ignored: a reload sent now must not turn a finished run's exit code into "killed by HUP".
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.exit(code)
