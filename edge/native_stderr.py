"""Keep the native libraries' start-up notices out of the user's stderr.

TensorFlow 2.21 and LiteRT write a few notices straight to file descriptor 2 from C++ - the absl "before
InitializeLog" warning, oneDNN's "custom operations are on", the converter's quantisation settings and
"Created TensorFlow Lite XNNPACK delegate" - whatever ``TF_CPP_MIN_LOG_LEVEL`` says (tensorflow issue
#79029). They come before a command's own progress lines and look like errors. Python's ``logging`` and
``warnings`` cannot reach them; only the descriptor can be caught.

``without_notices()`` points descriptor 2 at a temporary file for the duration of a block and then writes
back everything except the lines it knows to be these notices, so a real error (an import failure, a
traceback, a warning) still reaches the user, in its order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
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

# One block at a time: nested or concurrent redirections would hand descriptor 2 back in the wrong order.
_lock = threading.RLock()
_depth = 0


def is_notice(line: bytes) -> bool:
    """Whether one stderr line (without its newline) is a known start-up notice."""
    return any(p.fullmatch(line.rstrip(b"\r")) for p in NOTICES)


def keep_lines(data: bytes) -> bytes:
    """``data`` without its notice lines (every other byte kept, in order)."""
    return b"".join(ln for ln in data.splitlines(keepends=True) if not is_notice(ln.rstrip(b"\n")))


@contextlib.contextmanager
def without_notices() -> Iterator[None]:
    """Run a block with descriptor 2 caught; afterwards write back all but the notices (also when the
    block raises). Runs the block unfiltered when there is no temporary folder to write to (a hardened
    service without PrivateTmp) or no descriptor 2 to duplicate."""
    global _depth
    with _lock, contextlib.ExitStack() as stack:
        if _depth:
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        try:
            tmp = stack.enter_context(tempfile.TemporaryFile())
            saved = os.dup(2)
        except OSError as exc:
            log.debug("stderr notices not filtered: %s", exc)
            yield
            return
        _flush()
        os.dup2(tmp.fileno(), 2)
        _depth = 1
        try:
            yield
        finally:
            _depth = 0
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            rest = keep_lines(tmp.read())
            if rest:
                _write_all(rest)


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(2, view)
        except OSError:
            return  # stderr is gone (closed pipe): nothing left to tell it
        view = view[n:]
