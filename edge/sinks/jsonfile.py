"""``file:PATH``: JSON lines, rotated by size with N backups, whole lines even when the disk fills.

Flush policy: each line reaches the OS immediately (one ``write`` per line); ``SinkOptions.fsync`` decides
when it is forced to storage ("event", "interval" - the default, at most every ``fsync_interval_s`` seconds,
and a line left pending is fsynced at the first frame after the interval, not only with the next event - or
"never"); ``close()`` always fsyncs.
"""

from __future__ import annotations

import logging

from edge.sinks.base import Sink, SinkOptions
from edge.sinks.filewriter import LineWriter
from edge.sinks.stdout import event_json
from edge.types import Event, Frame, FrameResult, Number

log = logging.getLogger(__name__)


class JsonFileSink(Sink):
    def __init__(self, path: str, options: SinkOptions | None = None) -> None:
        opts = options or SinkOptions()
        self.name = f"file:{path}"
        self.writer = LineWriter(path, max_bytes=opts.file_max_bytes, backups=opts.file_backups,
                                 fsync=opts.fsync, fsync_interval_s=opts.fsync_interval_s)

    @property
    def failures(self) -> int:  # type: ignore[override]
        return self.writer.failures

    def emit(self, event: Event, frame: Frame | None = None, result: FrameResult | None = None) -> None:
        # A source path that is not valid UTF-8 (a Latin-1 file name) holds surrogates: written as the JSON
        # escape \udcXX (what json.loads gives back), not an exception that loses the event.
        self.writer.write((event_json(event) + "\n").encode("utf-8", "backslashreplace"))

    def on_frame(self, frame: Frame, result: FrameResult, stable: list[Number] | None = None,
                 fps: float | None = None) -> None:
        self.tick()

    def tick(self) -> None:
        """fsync: interval also for the last line of a burst, not only when a later line comes (every frame
        calls it; the daemon's idle turns, while a camera is away, could too)."""
        self.writer.tick()

    def close(self) -> None:
        self.writer.close()
