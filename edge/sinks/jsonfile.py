"""``file:PATH``: JSON lines, rotated by size with N backups, whole lines even when the disk fills.

Flush policy: each line reaches the OS immediately (one ``write`` per line); ``SinkOptions.fsync`` decides
when it is forced to storage ("event", "interval" - the default, at most every ``fsync_interval_s`` seconds,
and a line left pending is fsynced at the first frame after the interval, not only with the next event - or
"never"); ``close()`` always fsyncs.
"""

from __future__ import annotations

import logging

from edge.sinks.base import SinkOptions
from edge.sinks.filewriter import LineWriter, WriterSink
from edge.sinks.stdout import event_json
from edge.types import Event, Frame, FrameResult

log = logging.getLogger(__name__)


class JsonFileSink(WriterSink):
    def __init__(self, path: str, options: SinkOptions | None = None) -> None:
        opts = options or SinkOptions()
        self.name = f"file:{path}"
        self.writer = LineWriter(path, max_bytes=opts.file_max_bytes, backups=opts.file_backups,
                                 fsync=opts.fsync, fsync_interval_s=opts.fsync_interval_s)

    def emit(self, event: Event, frame: Frame | None = None, result: FrameResult | None = None) -> None:
        # event_json writes a non-UTF-8 source path's surrogates as \udcXX: always encodable
        self.writer.write((event_json(event) + "\n").encode("utf-8"))
