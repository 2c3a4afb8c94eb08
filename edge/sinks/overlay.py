"""``overlay:PATH``: the annotated view saved to disk.

Stream sources (camera, video file, RTSP) give a video at PATH through ``cv2.VideoWriter`` (every processed
frame, so the video shows what the daemon saw), in segments of ``overlay_segment_s`` seconds of video rotated
like log files (PATH, then PATH.1.mp4 .. PATH.N.mp4, newest first): an MP4 gets its index only when it is
closed, so one file for a months-long run would grow without end and be lost whole to a crash. Image
sources (a file, a folder, a glob) give a folder PATH with one annotated JPEG per input; a stream's images
(``overlay_mode: images`` on a camera: one a frame) keep only as many frames as its video segments would.
``SinkOptions.overlay_mode`` forces either; "auto" follows the source the daemon reads (``set_source``), which
knows what it opened: a guess from a frame's file name went wrong for names capture reads as images but the
guess did not (``.jpe``, ``.gif``, no extension, ``what?.jpg``) and put a folder of pages into one video.

A full disk: ``cv2.VideoWriter.write`` reports nothing, and an MP4 whose index (written at close) did not fit is
unplayable, frames from before the disk filled included. So free space is checked before every frame; below a
margin the segment is closed early, frames are dropped (counted, logged once per outage) and a new segment begins
when space returns. A small reserve file next to the video is given up to close the segment when something else
filled the disk at once.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from pathlib import Path

import cv2
import numpy as np

from edge.annotate import FpsMeter, annotate
from edge.sinks.base import DrawingSink, SinkOptions
from edge.types import Frame, FrameResult, Number

log = logging.getLogger(__name__)

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".m4v"}


#: never let free space drop below this while a segment is open (its index and FFmpeg's buffer must still fit)
MIN_FREE_BYTES = 1 << 20
#: what the reserve file holds back for closing a segment: FFmpeg's unwritten buffer (256 KiB) and the index
RESERVE_BYTES = 1 << 20
#: the index grows by about this much per frame (sample size, chunk offset, time entries), with room to spare
INDEX_BYTES_PER_FRAME = 32


def is_image_source(source: str) -> bool:
    """Whether a frame's ``source`` names still images, for a caller that never said (``set_source``).

    Asks capture, which opens the sources: its own extension list, a file's header, a glob."""
    from edge.capture import classify_spec

    return classify_spec(source) == "images"


def choose_mode(mode: str, source: str, source_is_images: bool | None = None) -> str:
    if mode in ("video", "images"):
        return mode
    if source_is_images is not None:
        return "images" if source_is_images else "video"
    return "images" if is_image_source(source) else "video"


def image_name(frame: Frame) -> str:
    """``000012_page1.jpg``: the index keeps inputs in order and apart even if two share a file name."""
    return indexed_name(frame.index, frame.source)


def indexed_name(index: int, source: str) -> str:
    """The image name of frame ``index`` of ``source`` (see :func:`image_name`)."""
    stem = re.sub(r"[^\w.-]+", "_", Path(source).stem)[:80] or "frame"
    return f"{index:06d}_{stem}.jpg"


#: the names :func:`indexed_name` gives: the only files the images of a stream ever delete from the folder
IMAGE_NAME = re.compile(r"\d{6,}_[\w.-]*\.jpg")


class OverlaySink(DrawingSink):
    def __init__(self, path: str, options: SinkOptions | None = None) -> None:
        super().__init__()
        self.opts = options or SinkOptions()
        self.path = Path(path)
        self.name = f"overlay:{path}"
        self.wants_debug = bool(self.opts.overlay_debug)
        self.mode: str | None = None if self.opts.overlay_mode == "auto" else self.opts.overlay_mode
        self.failures = 0
        self.written = 0
        self._writer: cv2.VideoWriter | None = None
        self._segment_written = 0  # frames in the open segment
        self.segments_closed = 0
        self._size: tuple[int, int] | None = None  # (w, h) of the video
        self._fps = FpsMeter()
        self._closed = False
        self._failing = False
        #: set by the daemon from the source it opened; None = guess from the first frame's name
        self.source_is_images: bool | None = None
        self._source_rate: float | None = None  # a video file's own frame rate (set_source)
        self._low_space = False  # frames are being dropped for want of space
        self._reserved = False  # a reserve file was made (and is removed at close)
        #: images of a stream: frame indices below this have been pruned (None: no image of this run yet)
        self._pruned_below: int | None = None

    def set_source(self, is_images: bool, fps: float | None = None) -> None:
        """The daemon says what it reads (again after a reload changed the source): decides "auto" mode;
        ``fps``, a video file's own frame rate, is the overlay video's (``overlay_fps`` is for cameras and
        streams), so the annotated copy of a file plays as long as the file."""
        self.source_is_images = bool(is_images)
        self._pruned_below = None  # a new source counts its frames from 0 again
        rate = float(fps) if fps and 0 < fps <= 1000 else None
        if rate != self._source_rate:
            self._source_rate = rate
            if self._writer is not None:
                self._rotate()  # one video has one frame rate
        if self.opts.overlay_mode != "auto" or self.mode is None:
            return
        mode = "images" if is_images else "video"
        if mode != self.mode:
            if self._writer is not None:
                self._rotate()
            self.mode = None  # decided (and logged) again at the next frame

    @property
    def video_path(self) -> Path:
        # VideoWriter picks the container from the extension; without one it cannot write at all.
        return self.path if self.path.suffix.lower() in VIDEO_EXTS else self.path.with_name(self.path.name + ".mp4")

    def segment_path(self, age: int) -> Path:
        """The video being written (``age`` 0) or the ``age``-th newest finished segment (``out.3.mp4``)."""
        v = self.video_path
        return v if age == 0 else v.with_name(f"{v.stem}.{age}{v.suffix}")

    def _segment_frames(self) -> int:
        return max(1, round(self.opts.overlay_segment_s * self.rate)) if self.opts.overlay_segment_s else 0

    @property
    def rate(self) -> float:
        """Frames per second written into the video: the source file's own, else ``overlay_fps``."""
        return self._source_rate or float(self.opts.overlay_fps)

    def _rotate(self) -> None:
        """Close the segment (it becomes PATH.1.mp4, older ones move up by one, the oldest goes)."""
        assert self._writer is not None
        self._writer.release()
        self._writer, self._segment_written = None, 0
        self.segments_closed += 1
        self._shift()

    def _shift(self) -> None:
        keep = self.opts.overlay_backups
        try:
            if keep == 0:
                self.segment_path(0).unlink(missing_ok=True)
            for age in range(keep, 0, -1):
                older = self.segment_path(age - 1)
                if older.exists():
                    os.replace(older, self.segment_path(age))
        except OSError as exc:
            self._trouble("cannot rotate %s: %s", self.video_path, exc.strerror or exc)

    def on_frame(self, frame: Frame, result: FrameResult, stable: list[Number] | None = None,
                 fps: float | None = None) -> None:
        if self._closed or frame.image is None:
            return
        self._pending = None
        if self.mode is None:
            self.mode = choose_mode(self.opts.overlay_mode, frame.source, self.source_is_images)
            log.info("overlay: writing %s to %s", "a video" if self.mode == "video" else "annotated images",
                     self.video_path if self.mode == "video" else self.path)
        measured = self._fps.tick(frame.mono)
        is_video = self.mode == "video"
        img = annotate(frame.image, result, self._stable if stable is None else stable,
                       (fps if fps is not None else measured) if is_video else None, debug=self.wants_debug)
        if is_video:
            self._write_video(img)
        else:
            self._write_image(img, frame)

    def _trouble(self, msg: str, *args: object) -> None:
        self.failures += 1
        if not self._failing:
            log.error("overlay: " + msg, *args)
            self._failing = True

    def _write_image(self, img: np.ndarray, frame: Frame) -> None:
        target = self.path / image_name(frame)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if not ok:
                raise OSError(f"cannot encode {target.name}")
            tmp = target.with_name(target.name + ".tmp")
            # Write then rename: a reader (or a crash) never sees half an image.
            try:
                tmp.write_bytes(buf.tobytes())
                os.replace(tmp, target)
            except OSError:
                tmp.unlink(missing_ok=True)  # half an image on a full disk holds space the next one needs
                raise
        except OSError as exc:
            self._trouble("cannot write %s: %s", target, exc.strerror or exc)
            return
        self._failing = False
        self.written += 1
        cap = self._image_cap()
        if cap:
            self._prune_images(frame, cap)

    def _image_cap(self) -> int:
        """How many images of a stream the folder keeps (0: all). A camera is read for months, one image a frame
        (1.3 million a day at 15 frames/s, and nothing ever deleted them): like its video segments, the newest
        ``(overlay_backups + 1) x overlay_segment_s`` seconds of frames at the video's rate are kept. An image
        source's images (one per input) and ``overlay_segment_s: 0`` (one file, by choice) are never pruned."""
        if self.source_is_images is not False or not self.opts.overlay_segment_s:
            return 0
        return (self.opts.overlay_backups + 1) * self._segment_frames()

    def _prune_images(self, frame: Frame, cap: int) -> None:
        """Delete the images of frames ``cap`` or more before ``frame`` (by index: the frames a live source
        dropped have none), and at the first image of a run those earlier runs left beyond ``cap``."""
        if self._pruned_below is None:
            self._pruned_below = max(0, frame.index - cap + 1)
            self._trim_earlier_images(cap)
        for index in range(self._pruned_below, frame.index - cap + 1):
            with contextlib.suppress(OSError):
                (self.path / indexed_name(index, frame.source)).unlink(missing_ok=True)
        self._pruned_below = max(self._pruned_below, frame.index - cap + 1)

    def _trim_earlier_images(self, cap: int) -> None:
        """Earlier runs' images (a restart counts frames from 0 again, under other names): the newest ``cap``
        stay, so the folder never holds more than twice ``cap``."""
        found = []
        try:
            with os.scandir(self.path) as entries:
                for e in entries:
                    if IMAGE_NAME.fullmatch(e.name):
                        with contextlib.suppress(OSError):
                            found.append((e.stat(follow_symlinks=False).st_mtime_ns, e.name))
        except OSError:
            return
        found.sort()
        for _, name in found[:max(0, len(found) - cap)]:
            with contextlib.suppress(OSError):
                (self.path / name).unlink()

    @property
    def reserve_path(self) -> Path:
        v = self.video_path
        return v.with_name(f".{v.name}.reserve")

    def _reserve_size(self) -> int:
        frames = self._segment_frames() or max(self._segment_written, 6000)
        return RESERVE_BYTES + INDEX_BYTES_PER_FRAME * frames

    def _free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self.video_path.parent)
        except OSError:
            return None  # no folder yet: opening the writer says what is wrong
        return st.f_bavail * st.f_frsize

    def _margin(self) -> int:
        """Free space below which the open segment is closed: a few frames of it, at least MIN_FREE_BYTES."""
        per_frame = 0
        if self._writer is not None and self._segment_written:
            with contextlib.suppress(OSError):
                per_frame = self.video_path.stat().st_size // self._segment_written
        return max(MIN_FREE_BYTES, 4 * per_frame)

    def _make_reserve(self) -> OSError | None:
        """Hold back the space to close a segment, in case something else fills the disk between two frames."""
        size = self._reserve_size()
        path = self.reserve_path
        with contextlib.suppress(OSError):
            if path.stat().st_size >= size:
                return None
        try:
            self._reserved = True
            with open(path, "wb") as f:
                # Written, not sparse (truncate): the blocks must really be taken now.
                chunk = b"\0" * (1 << 16)
                for _ in range(0, size, len(chunk)):
                    f.write(chunk)
        except OSError as exc:
            self._drop_reserve()
            return exc
        return None

    def _drop_reserve(self) -> None:
        with contextlib.suppress(OSError):
            self.reserve_path.unlink(missing_ok=True)

    def _out_of_space(self, free: int) -> None:
        """Close the open segment while its index still fits, drop this frame and count it."""
        closed = self._writer is not None
        if closed:
            if free < self._reserve_size():
                self._drop_reserve()  # filled at once by something else: the reserve makes room to close
            self._rotate()
        self._low_space = True
        self._trouble("disk full: %s has %d KiB free; %sframes are dropped until space returns",
                      self.video_path.parent, free // 1024,
                      "the video segment is closed early (kept whole) and " if closed else "")

    def _write_video(self, img: np.ndarray) -> None:
        # VideoWriter.write reports nothing on a full disk, and the MP4 whose index does not fit at close is
        # lost whole: look before each frame instead.
        free = self._free_bytes()
        if free is not None:
            margin = self._margin()
            # Resuming needs room for the reserve and a new segment's start, so it does not flap at the margin.
            needed = margin + self._reserve_size() + MIN_FREE_BYTES if self._low_space else margin
            if free < needed:
                self._out_of_space(free)
                return
        if self._writer is None:
            h, w = img.shape[:2]
            target = self.video_path
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._trouble("cannot create %s: %s", target.parent, exc.strerror or exc)
                return
            failed = self._make_reserve()
            if failed is not None:
                if failed.errno in (errno.ENOSPC, errno.EDQUOT):
                    self._out_of_space(self._free_bytes() or 0)
                else:
                    self._trouble("cannot write %s: %s", self.reserve_path, failed.strerror or failed)
                return
            if self.written == 0 and self._segment_frames() and target.exists():
                # The previous run's last segment (a restart, a reload): kept as PATH.1.mp4, not overwritten.
                self._shift()
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*self.opts.overlay_codec[:4].ljust(4)),
                                     self.rate, (w, h))
            if not writer.isOpened():
                self._trouble("cannot open a %r video writer for %s", self.opts.overlay_codec, target)
                return
            self._writer, self._size = writer, (w, h)
        assert self._size is not None
        if (img.shape[1], img.shape[0]) != self._size:
            # A video has one size; a camera that changes resolution mid-run is scaled to the first one.
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(img)
        self._failing = self._low_space = False  # the next outage is logged again
        self.written += 1
        self._segment_written += 1
        if self._segment_written >= (self._segment_frames() or float("inf")):
            self._rotate()

    def close(self) -> None:
        if self._closed:
            return
        self._flush_pending()
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            log.info("overlay: %d frame(s) written to %s", self.written, self.video_path)
        if self._reserved:
            self._drop_reserve()
