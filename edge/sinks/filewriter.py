"""Append whole lines to a file that rotates by size, survives a full disk, and fsyncs by policy.

Shared by the ``file:`` (JSON lines) and ``csv:`` sinks. Each line goes out in one ``os.write`` on an
``O_APPEND`` descriptor, so it is in the OS at once (no user-space buffer to lose or to flush); when a write
fails part-way (disk full), the file is truncated back to its last whole line, so readers never see a torn
line. Rotation is ``logging.handlers.RotatingFileHandler.doRollover`` (PATH -> PATH.1 -> ... -> PATH.N).
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from edge.sinks.base import Sink
from edge.types import Frame, FrameResult, Number

log = logging.getLogger(__name__)


#: How much of a torn tail is read at a time, from the end back, looking for its last whole line.
TAIL_SCAN = 1 << 20


#: The longest torn line cut off (a line of ours is well under it); past it the tail is not ours.
MAX_TORN_LINE = 64 * 1024


def cut_torn_tail(fd: int, path: Path) -> int:
    """Truncate an open file after its last newline when what follows it is a torn line of text; returns
    the bytes cut, or -1 when the tail was left alone (it is not a torn line: the caller starts a new line).

    A power cut while a line was being written leaves it torn (or, on ext4, the file's end filled with zero
    bytes). Appended to, the next line would be glued to it and both lost to a reader; cut, the file holds
    whole lines again. The tail is read back ``TAIL_SCAN`` bytes at a time until a newline is found (a long
    run of zeros must not cost the whole lines before it). Only text - printable UTF-8 up to
    ``MAX_TORN_LINE`` bytes, then zeros - is cut: a sink pointed at a file that is not ours (a video, a
    binary) must not lose bytes to this."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep, end, text_end = 0, size, None
    while end > 0:
        start = max(0, end - TAIL_SCAN)
        chunk = os.pread(fd, end - start, start)
        at = chunk.rfind(b"\n")
        if text_end is None:
            stripped = chunk[at + 1:].rstrip(b"\0")
            if stripped:
                text_end = start + at + 1 + len(stripped)
        if at >= 0:
            keep = start + at + 1
            break
        end = start
    text_end = keep if text_end is None else text_end
    torn = os.pread(fd, min(text_end - keep, MAX_TORN_LINE + 1), keep) if text_end > keep else b""
    if text_end - keep > MAX_TORN_LINE or not _is_text(torn):
        log.warning("%s does not end with a line break and its end is not a torn line of text: left as it "
                    "is, new lines start on a line of their own (is it the file you meant?)", path)
        return -1
    os.ftruncate(fd, keep)
    log.warning("%s ended in a torn line (a power cut while it was written?): cut its last %d byte(s)",
                path, size - keep)
    return size - keep


def _is_text(data: bytes) -> bool:
    """Printable UTF-8 (tabs and carriage returns allowed); a line torn in the middle of a character may
    end in part of one."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r" for ch in text)


def _mode(path: Path) -> int | None:
    """The file type bits of ``path`` (``os.stat``), None when there is nothing to look at."""
    try:
        return stat.S_IFMT(os.stat(path).st_mode)
    except OSError:
        return None


class LineWriter:
    """Append-only line file with size rotation, whole-line writes and an fsync policy.

    ``header`` (e.g. a CSV header line) is written first into every new or empty file.
    ``write`` returns False (and logs once per outage) instead of raising when the disk is full or the file
    cannot be written; the next call tries again.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_bytes: int = 0, backups: int = 0,
                 fsync: str = "interval", fsync_interval_s: float = 5.0, header: bytes | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if fsync not in ("event", "interval", "never"):
            raise ValueError(f"fsync policy must be event, interval or never, not {fsync!r}")
        self.path = Path(path)
        self.max_bytes = max(0, int(max_bytes))
        self.backups = max(0, int(backups))
        self.fsync_policy = fsync
        self.fsync_interval_s = float(fsync_interval_s)
        self.header = header
        self.failures = 0
        self.rotations = 0
        self._clock = clock
        self._fd: int | None = None
        #: the file ended in something that is not a torn line of ours: the next line starts a new one
        self._separate = False
        self._dirty = False
        self._last_fsync = clock()
        self._failing = False
        self._outage_failures = 0  # failures since writing last worked (the log line at recovery)
        self._closed = False
        # Only its rotation routine is used: delay=True means it never opens the file itself.
        self._rotator = RotatingFileHandler(self.path, maxBytes=self.max_bytes, backupCount=self.backups,
                                            encoding="utf-8", delay=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:
            # a full disk, or a FIFO nobody reads yet: retried on the next event. ENXIO from anything else
            # never goes away: a socket (/dev/stdout under systemd is the journal's) cannot be opened by name.
            mode = _mode(self.path)
            if not (exc.errno == errno.ENOSPC or (exc.errno == errno.ENXIO and mode == stat.S_IFIFO)):
                hint = " (a socket cannot be opened by name; use the stdout sink)" if mode == stat.S_IFSOCK else ""
                raise ValueError(f"cannot open {self.path}: {exc.strerror or exc}{hint}") from None
            self._fail(exc)

    def _open(self) -> int:
        if self._fd is not None and self._moved():
            # Deleted or renamed underneath (an operator, logrotate): as logging's WatchedFileHandler does,
            # start the file again at PATH instead of writing on into an invisible or renamed one.
            log.warning("%s was moved or deleted; starting it again", self.path)
            self._close_fd()
        if self._fd is None:
            if _mode(self.path) not in (None, stat.S_IFREG):
                # A FIFO, /dev/stdout, a terminal: nothing to cut, and opened for reading too a FIFO would
                # count this process as its reader - writes would then block the loop instead of failing.
                # Non-blocking for the open only: a FIFO nobody reads is a failed write (ENXIO), not a
                # loop hung in open() until the watchdog kills it.
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK)
                os.set_blocking(fd, True)
                self._fd = fd
                return self._fd
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except PermissionError:
                # a file the service may write but not read (mode 0220, a log owned by another user):
                # written to as before, only its tail cannot be looked at
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                return self._fd
            try:
                self._separate = cut_torn_tail(fd, self.path) < 0
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd

    def _moved(self) -> bool:
        assert self._fd is not None
        try:
            at_path = os.stat(self.path)
        except FileNotFoundError:
            return True
        mine = os.fstat(self._fd)
        return (at_path.st_dev, at_path.st_ino) != (mine.st_dev, mine.st_ino)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _rotate(self) -> None:
        self._sync(force=True)
        self._close_fd()
        if self.backups > 0:
            self._rotator.doRollover()
        else:
            # No backups wanted: start the file again rather than let it grow without bound.
            os.truncate(self.path, 0)
        self.rotations += 1
        log.info("rotated %s", self.path)

    def _write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def write(self, line: bytes) -> bool:
        """Append one line (``line`` must end with a newline). True if it reached the file."""
        if self._closed:
            raise ValueError(f"{self.path} is closed")
        size = -1
        try:
            fd = self._open()
            size = os.fstat(fd).st_size
            if self.max_bytes and size > 0 and size + len(line) > self.max_bytes:
                self._rotate()
                fd = self._open()
                size = os.fstat(fd).st_size
            data = line
            if size == 0 and self.header:
                data = self.header + line
            elif self._separate and size > 0:
                data = b"\n" + line  # the file's end was not ours to cut: our lines start on their own
            self._write_all(fd, data)
            self._separate = False
        except OSError as exc:
            self._undo_partial(size)
            self._fail(exc)
            return False
        self._dirty = True
        if self._failing:
            log.warning("%s: writing again after %d failed write(s)", self.path, self._outage_failures)
            self._failing, self._outage_failures = False, 0
        self._sync(force=self.fsync_policy == "event")
        return True

    def _undo_partial(self, size: int) -> None:
        # Cut a torn line off so the file stays whole lines; shrinking a file needs no free space.
        if self._fd is not None and size >= 0:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
        # Reopen next time: the file may have been removed or its directory remounted meanwhile.
        self._close_fd()

    def _fail(self, exc: OSError) -> None:
        self.failures += 1
        self._outage_failures += 1
        if not self._failing:
            what = "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
            log.error("%s: cannot write (%s); dropping output and retrying on the next event", self.path, what)
            self._failing = True
        else:
            log.debug("%s: still cannot write: %s", self.path, exc)

    def tick(self) -> None:
        """fsync lines left pending by the "interval" policy once the interval has passed, with no new line
        needed: called for every frame (the sinks' ``on_frame``). Without it the last event of a burst (a page
        rewritten twice in a few seconds, then still for a day) waited for the next event, hours later, and
        ``fsync_interval_s`` did not bound what a power cut loses (the kernel's own writeback, ~30 s, did)."""
        if self.fsync_policy == "interval" and not self._closed:
            self._sync()

    def _sync(self, force: bool = False) -> None:
        if not self._dirty or self._fd is None or self.fsync_policy == "never" and not force:
            return
        now = self._clock()
        if not force and now - self._last_fsync < self.fsync_interval_s:
            return
        self._last_fsync = now  # a failing fsync too is tried again only after the interval, not every frame
        try:
            os.fsync(self._fd)
            self._dirty = False
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
                # A pipe or a terminal (file:/dev/stdout, a FIFO) has nothing to sync: every line is already
                # with its reader. Counted as a failed write it made an ERROR line every 5 s and exit 1.
                self._dirty = False
                log.debug("%s cannot be synced (%s): nothing to sync", self.path, exc.strerror or exc)
                return
            self._fail(exc)

    def close(self) -> None:
        """fsync and close; idempotent."""
        if self._closed:
            return
        self._sync(force=True)
        self._close_fd()
        self._rotator.close()
        self._closed = True


class WriterSink(Sink):
    """A sink that writes lines through ``self.writer`` (a :class:`LineWriter`): the ``file:`` and ``csv:``
    sinks. Its failures are the writer's; every frame (and the daemon's idle turns) gives the writer its
    ``tick``, so ``fsync: interval`` also covers the last line of a burst, not only when a later line comes."""

    writer: LineWriter

    @property
    def failures(self) -> int:  # type: ignore[override]
        return self.writer.failures

    def on_frame(self, frame: Frame, result: FrameResult, stable: list[Number] | None = None,
                 fps: float | None = None) -> None:
        self.tick()

    def tick(self) -> None:
        self.writer.tick()

    def close(self) -> None:
        self.writer.close()
