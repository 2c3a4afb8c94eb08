"""Keep the native libraries' start-up notices out of the user's stderr.

TensorFlow 2.21 and LiteRT write a few notices straight to file descriptor 2 from C++ - the absl "before
InitializeLog" warning, oneDNN's "custom operations are on", the converter's quantisation settings and
"Created TensorFlow Lite XNNPACK delegate" - whatever ``TF_CPP_MIN_LOG_LEVEL`` says (tensorflow issue
#79029). They come before a command's own progress lines and look like errors. Python's ``logging`` and
``warnings`` cannot reach them; only the descriptor can be caught.

``without_notices()`` points descriptor 2 at a pipe for the duration of a block; a small filter process
passes on at once everything except the lines it knows to be these notices, so a real error (an import
failure, a traceback, a warning) still reaches the user, in its order - also when the process dies inside
the block (a native library's abort or crash, faulthandler's traceback), which a file written back only at
the block's end lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

#: Lines (bytes, without their newline) that are start-up notices and nothing else.
NOTICES = (
    re.compile(rb"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(rb"I\d{4} [\d:. ]+\d+ port\.cc:\d+\] oneDNN custom operations are on\b.*"),
    re.compile(rb"fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, "
               rb"output_inference_type: \w+"),
    re.compile(rb"INFO: Created TensorFlow Lite XNNPACK delegate for CPU\."),
)

#: The filter: lines from stdin to stdout as they come, but the notices (the patterns are its arguments). It
#: outlives a parent that dies in the block (it ends at the pipe's end), so it ignores the signals sent to
#: the whole group (Ctrl-C, systemd's stop) and leaves when everything has been passed on.
_FILTER = r"""
import os, re, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
pats = [re.compile(a.encode("latin-1")) for a in sys.argv[1:]]
def put(data):
    while data:
        try:
            data = data[os.write(1, data):]
        except OSError:
            return
buf = b""
while True:
    chunk = os.read(0, 65536)
    buf += chunk
    *lines, buf = buf.split(b"\n")
    out = b"".join(ln + b"\n" for ln in lines if not any(p.fullmatch(ln.rstrip(b"\r")) for p in pats))
    if not chunk:
        out += b"" if any(p.fullmatch(buf.rstrip(b"\r")) for p in pats) else buf
    put(out)
    if not chunk:
        break
"""
#: How long the end of a block waits for the filter to pass on the rest (another process that inherited the
#: pipe as its stderr may keep it open).
_FILTER_WAIT_S = 10.0

# One block at a time: nested or concurrent redirections would hand descriptor 2 back in the wrong order.
_lock = threading.RLock()
_depth = 0


@contextlib.contextmanager
def without_notices() -> Iterator[None]:
    """Run a block with descriptor 2 going through the notice filter (restored also when the block raises).
    Runs the block unfiltered when the filter cannot be started or there is no descriptor 2 to duplicate."""
    global _depth
    with _lock:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        try:
            saved = os.dup(2)
        except OSError as exc:
            log.debug("stderr notices not filtered: %s", exc)
            yield
            return
        try:
            r, w = os.pipe()
            try:
                child = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", _FILTER, *(p.pattern.decode("latin-1") for p in NOTICES)],
                    stdin=r, stdout=saved, stderr=subprocess.DEVNULL, close_fds=True)
            finally:
                os.close(r)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            with contextlib.suppress(UnboundLocalError, OSError):
                os.close(w)
            os.close(saved)
            log.debug("stderr notices not filtered: %s", exc)
            yield
            return
        _flush()
        os.dup2(w, 2)
        os.close(w)
        _depth = 1
        try:
            yield
        finally:
            _depth = 0
            _flush()
            os.dup2(saved, 2)  # the pipe's last writer gone: the filter passes on the rest and ends
            os.close(saved)
            try:
                child.wait(timeout=_FILTER_WAIT_S)
            except subprocess.TimeoutExpired:
                log.debug("stderr filter still running (its pipe is held by another process)")


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
