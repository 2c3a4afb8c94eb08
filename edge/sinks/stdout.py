"""``stdout``: one JSON object per line, flushed per line (pipes and ``jq`` see each event at once)."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import TextIO

from edge.sinks.base import Sink
from edge.types import Event, Frame, FrameResult

log = logging.getLogger(__name__)


def event_json(event: Event) -> str:
    """The event as one line of JSON (DESIGN.md, "The event"), without the newline.

    A source path that is not valid UTF-8 (a Latin-1 file name) holds lone surrogates: they are written as the
    JSON escape \\udcXX (what json.loads gives back). Left raw, the strict stdout of a UTF-8 locale refused the
    event (lost, exit 1), and a C locale's wrote bytes that are not UTF-8 (a line ``jq`` cannot parse).
    """
    return json.dumps(event.to_dict(), ensure_ascii=False, separators=(", ", ": ")).encode(
        "utf-8", "backslashreplace").decode("utf-8")


class StdoutSink(Sink):
    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._broken = False
        self.failures = 0

    @property
    def stream(self) -> TextIO | None:
        # Looked up per write so a test harness or a redirect installed after start is honoured. None (typeshed
        # says never) when Python has no stdout.
        return self._stream if self._stream is not None else sys.stdout

    def emit(self, event: Event, frame: Frame | None = None, result: FrameResult | None = None) -> None:
        if self._broken:
            self.failures += 1
            return
        stream = self.stream
        if stream is None:
            # Started with stdout closed (`>&-`): Python then has no sys.stdout at all.
            self._broken = True
            self.failures += 1
            log.error("stdout is closed; no events on stdout")
            return
        try:
            stream.write(event_json(event) + "\n")
            stream.flush()
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): other sinks still matter, so stop writing, don't die.
            self._broken = True
            self.failures += 1
            log.error("stdout closed by the reader; no more events on stdout")
        except (OSError, ValueError) as exc:
            self.failures += 1
            log.error("cannot write event to stdout: %s", exc)

    def close(self) -> None:
        stream = self.stream
        if self._broken or stream is None:
            return
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
