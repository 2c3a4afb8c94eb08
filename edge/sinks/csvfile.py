"""``csv:PATH``: one row per number, for spreadsheets.

Columns: ts, source, frame, kind, value, confidence, x, y, w, h, error. An error event is one row with
``error`` filled; an event whose stable set became empty is one row with an empty ``value``. The header is
written once per file: appending to an existing file does not repeat it. Rotation, flush/fsync policy and
disk-full behaviour are those of ``file:`` (see ``edge.sinks.filewriter``).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import stat
from collections.abc import Iterable, Sequence

from edge.sinks.base import SinkOptions
from edge.sinks.filewriter import LineWriter, WriterSink
from edge.types import Event, Frame, FrameResult

log = logging.getLogger(__name__)

#: The header line is read up to this many characters: a long first line is not the header either way.
HEADER_READ_MAX = 4096

COLUMNS = ("ts", "source", "frame", "kind", "value", "confidence", "x", "y", "w", "h", "error")


def csv_lines(rows: Iterable[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    # "\n" not the csv default "\r\n": the files are read on Linux by tail, grep and pandas alike.
    csv.writer(buf, lineterminator="\n").writerows(rows)
    # A source path that is not valid UTF-8 (a Latin-1 file name) holds surrogates: written as \udcXX, not
    # an exception that loses the row.
    return buf.getvalue().encode("utf-8", "backslashreplace")


def event_rows(event: Event) -> list[list[object]]:
    head = [event.ts, event.source, event.frame]
    if event.error is not None:
        return [head + ["error", "", "", "", "", "", "", event.error]]
    if not event.numbers:
        return [head + [event.kind, "", "", "", "", "", "", ""]]
    return [head + [event.kind, n.value, round(float(n.confidence), 4), *(int(v) for v in n.box), ""]
            for n in event.numbers]


class CsvFileSink(WriterSink):
    def __init__(self, path: str, options: SinkOptions | None = None) -> None:
        opts = options or SinkOptions()
        self.name = f"csv:{path}"
        self.writer = LineWriter(path, max_bytes=opts.file_max_bytes, backups=opts.file_backups,
                                 fsync=opts.fsync, fsync_interval_s=opts.fsync_interval_s,
                                 header=csv_lines([COLUMNS]))
        self._check_header()

    def _check_header(self) -> None:
        # Only a regular file has a header to check: opening a FIFO to read blocks until something writes to
        # it, and a device such as /dev/zero or /dev/full is an endless line that filled the memory.
        try:
            if not stat.S_ISREG(os.stat(self.writer.path).st_mode):
                return
            with open(self.writer.path, encoding="utf-8", newline="", errors="replace") as f:
                first = f.readline(HEADER_READ_MAX)
        except OSError:
            return
        if first and first.rstrip("\r\n") != ",".join(COLUMNS):
            log.warning("%s: existing header %r differs from %r; appending anyway",
                        self.writer.path, first.strip(), ",".join(COLUMNS))

    def emit(self, event: Event, frame: Frame | None = None, result: FrameResult | None = None) -> None:
        # All rows of an event in one write: either the whole event is in the file or none of it.
        self.writer.write(csv_lines(event_rows(event)))
