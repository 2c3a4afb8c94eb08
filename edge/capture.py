"""Sources behind one interface: ``open_source(spec, cfg) -> Source``; ``Source.frames()`` yields ``Frame``.

Three behaviours, chosen from the spec:

- still images (an image file, a folder of images sorted by name, a glob): one Frame per file, in order.
  A file that cannot be read (missing, empty, not an image, corrupt, or over ``max_pixels``) gives a Frame
  with ``error`` set and the rest are still read. The size is read from the header (Pillow parses only the
  header on open) *before* decoding, so a decompression bomb never allocates its pixels. In a folder, files
  that are plainly not images are passed over (see ``_list_images``); a named file or a glob is read as named.
- video files: every frame in order, none dropped (offline processing wants them all).
- live sources (camera index, /dev/videoN, rtsp://, http(s)://, picamera2): a grabber thread keeps only the
  newest frame; frames the consumer did not take in time are dropped and counted, never queued, so latency
  stays bounded when the reader is slower than the camera. When the camera disappears the source yields one
  error Frame and reconnects with exponential backoff (``retry=True``), or ends (``retry=False``, used for
  ``--max-frames`` runs that must fail with exit 1 rather than wait forever).

Every frame of every source is turned by ``source.rotate`` / ``source.flip`` (``make_turn``) where it is
made, before anything else sees it: boxes in events are in the turned picture's pixels.
"""

from __future__ import annotations

import glob
import logging
import math
import os
import stat
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge import paths as fs
from edge.image_file import image_signature, read_image
from edge.secrets import redact
from edge.turn import describe_turn, turn_from
from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({
    ".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm",
    ".pnm", ".pxm", ".jp2", ".gif", ".sr", ".ras", ".avif",
})
#: containers that store no frame count (OpenCV estimates one from the duration: ``VideoFileSource._lead``)
COUNTLESS_EXTS = frozenset({".mkv", ".webm"})
VIDEO_EXTS = frozenset({
    ".mp4", ".m4v", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts",
    ".3gp", ".ogv", ".h264", ".h265", ".mjpg", ".mjpeg",
})
#: Files in a folder passed over without being opened: plainly not images (notes, labels, data, videos).
NOT_IMAGE_EXTS = VIDEO_EXTS | frozenset({
    ".csv", ".tsv", ".txt", ".md", ".rst", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg",
    ".conf", ".xml", ".html", ".htm", ".log", ".pdf", ".doc", ".docx", ".odt", ".rtf", ".xls", ".xlsx",
    ".ods", ".py", ".sh", ".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".mp3", ".wav",
    ".flac", ".ogg", ".oga", ".m4a", ".aac", ".db", ".sqlite", ".npy", ".npz", ".pkl", ".tflite",
    ".keras", ".h5",
})
_GLOB_CHARS = frozenset("*?[")
#: Linux's character-device major number for video4linux (every /dev/videoN and its /dev/v4l/ links).
V4L_MAJOR = 81


class SourceError(Exception):
    """The source cannot be opened at all (``str(err)`` is the one-line message)."""


class Source(ABC):
    """A stream of Frames. ``kind`` is "images", "video" or "camera"; ``live`` sources may drop frames."""

    kind: str = "camera"
    live: bool = False

    def __init__(self, name: str, turn: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.name = name
        #: frames grabbed but replaced by a newer one before the consumer took them
        self.dropped = 0
        #: the stream ended because the source failed (not by reaching its natural end)
        self.failed = False
        #: ``source.rotate``/``source.flip`` (``make_turn``), applied to each picture where it is made
        self.turn = turn

    def _turned(self, img: np.ndarray) -> np.ndarray:
        return img if self.turn is None else self.turn(img)

    @property
    def is_images(self) -> bool:
        return self.kind == "images"

    @abstractmethod
    def frames(self, idle_timeout: float | None = None) -> Iterator[Frame | None]:
        """Yield Frames until the source ends. With ``idle_timeout`` a live source yields None when no frame
        arrived for that long, so the caller's loop keeps turning (watchdog, signals) while a camera is away.
        """

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release the device or file; idempotent."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ still images


class ImageSource(Source):
    kind = "images"
    live = False

    def __init__(self, name: str, paths: list[str], max_pixels: int,
                 turn: Callable[[np.ndarray], np.ndarray] | None = None, skipped: list[str] | None = None) -> None:
        super().__init__(name, turn)
        self.paths = paths
        self.max_pixels = max_pixels
        #: files of a folder passed over as plainly not images (``_list_images``)
        self.skipped_files = skipped or []

    def frames(self, idle_timeout: float | None = None) -> Iterator[Frame | None]:
        for i, path in enumerate(self.paths):
            # "captured" when we start reading it: latency then includes the decode
            ts, mono = time.time(), time.monotonic()
            try:
                img, err = read_image(path, self.max_pixels)
                if img is not None:
                    img = self._turned(img)
            except Exception as exc:  # noqa: BLE001 - one odd file must not end the run before the others
                log.debug("%s: decoding failed", path, exc_info=True)
                img, err = None, f"cannot decode image: {type(exc).__name__}"
            if err:
                log.warning("%s: %s", path, err)
            yield Frame(image=img, source=path, index=i, ts=ts, error=err, mono=mono)


#: Undecodable frames in a row a video file may have before the rest of it is given up (with an error).
MAX_BAD_VIDEO_FRAMES = 300


class VideoFileSource(Source):
    """Every frame of a video file, in order.

    ``realtime`` paces frames at the file's own rate (as a camera would deliver them) instead of as fast as
    the reader goes; ``loop`` starts again at the end (a recorded scene standing in for a camera, for
    demos, aiming tests and soaks). Frame indices keep counting across loops.
    """

    kind = "video"
    live = False

    def __init__(self, path: str, max_pixels: int, loop: bool = False, realtime: bool = False,
                 turn: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        super().__init__(path, turn)
        self.path = path
        self.loop = loop
        self.realtime = realtime
        self.loops = 0
        #: frames that could not be decoded and were passed over (a damaged stretch of the file)
        self.skipped = 0
        #: the file's own time (ms) of the last frame decoded in this pass and how long after the one before it
        #: came (None, 0: none yet), for ``_frames_left``
        self._last_ms: float | None = None
        self._last_period_ms = 0.0
        #: the file's own time of the last frame given (s, counting on across loops) and where this pass began
        self._media_s: float | None = None
        self._pass_start_s = 0.0
        #: OpenCV's time (ms) of this pass's first frame: not always 0 (a B-frame AVI's is one frame late)
        self._pass_first_ms = 0.0
        #: frames' worth of time before the first frame that OpenCV's estimated count includes (``_frames_left``)
        self._lead_frames: int | None = None
        self._cap: cv2.VideoCapture | None = cv2.VideoCapture(path)
        if not self._cap.isOpened():
            self._cap.release()
            if Path(path).suffix.lower() in VIDEO_EXTS or not Path(path).is_file():
                raise SourceError(f"cannot open video {path}")
            # README.md, labels.csv: "cannot open video" sent the user looking for a broken video
            raise SourceError(f"{path} is not an image or a video OpenCV can open")
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w * h > max_pixels:
            self._cap.release()
            raise SourceError(f"video {path} is {w}x{h}, over source.max_pixels ({max_pixels / 1e6:g} MP)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        # a raw MJPEG or H.264 stream has no count: OpenCV says -2^63
        log.info("video %s: %dx%d, %.1f fps, %s%s%s", path, w, h, self.fps,
                 f"{count} frames" if count > 0 else "frame count unknown", ", looping" if loop else "",
                 ", paced in real time" if realtime else "")

    def _frames_left(self, undecoded: int = 0) -> int:
        """Frames the container says are still to come (0 when it does not say). ``undecoded``: reads in this
        pass that failed on a damaged frame - each used up its frame, but OpenCV's position counts only the
        frames it decoded, so without them the end of a file with a damaged stretch looked like more damage
        (300 futile reads, then "video damaged" and exit 1 for a file read to its end)."""
        if self._cap is None:
            return 0
        total = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) - (self._lead_frames or 0)
        if total <= 0:
            return 0
        pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) + undecoded
        # The position stops one short of the count at the end of some files: that is the end too.
        by_count = max(0, total - 1 - pos)
        if self.fps <= 0 or self._last_ms is None:
            return by_count
        # Where the container stores no count (Matroska, WebM, MPEG-TS) OpenCV makes one of duration x declared
        # rate: a webcam that delivered fewer frames than it declared (12 of "60" a second) promised frames that
        # never come - futile reads, then "video damaged" and exit 1 for a whole file. Its duration holds
        # whatever the count says: no time left after the last frame decoded is the end.
        left_ms = total * 1000.0 / self.fps - self._last_ms - self._last_period_ms
        return min(by_count, max(0, round(left_ms * self.fps / 1000.0)))

    def _rewind(self, reopen: bool = False) -> bool:
        """Back to the first frame; reopening (``reopen``) is the fallback for containers that cannot seek."""
        if self._cap is None:
            return False
        if self._media_s is not None and self._last_ms is not None:
            # the next pass starts one frame after this one's last (set once: a reopen after a seek follows)
            step = self._last_period_ms / 1000.0 if self._last_period_ms > 0 else self._nominal_period()
            self._pass_start_s = self._media_s + step
        self._last_ms, self._last_period_ms = None, 0.0
        if not reopen and self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            return True
        self._cap.release()
        self._cap = cv2.VideoCapture(self.path)
        return self._cap.isOpened()

    def _lead(self) -> int:
        """Frames' worth of time before the first frame, when the frame count OpenCV gives counts them.

        Matroska and WebM store no frame count: OpenCV makes one of the file's duration x rate, and a cut of a
        longer recording (``ffmpeg -ss 60 -c copy``) keeps its timestamps, so the duration runs from 0 and
        the count promised 720 frames more than a 12-frame file at 12 fps holds: 300 futile reads, then
        "video damaged" and exit 1. The first frame's time (CAP_PROP_PTS, in frames) is that lead; in MP4
        the count is the file's own and stays as it is.
        """
        prop = getattr(cv2, "CAP_PROP_PTS", None)  # OpenCV 4.8 on; Debian bookworm's 4.6 has none
        if self._cap is None or prop is None or Path(self.path).suffix.lower() not in COUNTLESS_EXTS:
            return 0
        pts = self._cap.get(prop)
        total = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        return int(pts) if math.isfinite(pts) and 0 < pts < total else 0

    def _nominal_period(self) -> float:
        return 1.0 / self.fps if self.fps > 0 else 0.0

    def _media_time(self, ms: float) -> float | None:
        """The file's own time of the frame just decoded (``ms``: OpenCV's position in this pass), in seconds
        from the file's first frame and counting on across loops; None when neither the file's times nor its
        rate say. A phone's video has a variable rate: each frame's own time, not frame number / average
        rate, is when it was taken."""
        # Counted from the pass's first frame: the time OpenCV gives that one (a B-frame AVI's first frame
        # one frame late, 83 ms) was added again at every loop, a pause each time under --realtime.
        media = self._pass_start_s + (ms - self._pass_first_ms) / 1000.0
        if self._media_s is not None and media <= self._media_s:
            # no usable time in this container (a raw stream says 0, or repeats itself): one frame on
            if not self._nominal_period():
                return None
            media = self._media_s + self._nominal_period()
        return media

    def frames(self, idle_timeout: float | None = None) -> Iterator[Frame | None]:
        index = 0
        paced = self.realtime
        #: time.monotonic() at the file's time 0 when paced; moved on when the reader falls behind
        anchor: float | None = None
        in_this_pass = 0
        bad = 0
        undecoded = 0  # failed reads in this pass, each of them one frame of the file passed over
        just_rewound = False  # the last thing done was seeking back to the start
        while self._cap is not None:
            ok, img = self._cap.read()
            rewound, just_rewound = just_rewound, False
            if not ok or img is None:
                if rewound:
                    # Nothing after seeking back to the start: a seek that says yes but leaves the decoder at the
                    # end (a raw MJPEG stream, a file of one frame) ended the loop after one pass. Opening the
                    # file again starts it for real; a file that then gives nothing ends below.
                    if not self._rewind(reopen=True):
                        return
                    continue
                if self._frames_left(undecoded) and bad < MAX_BAD_VIDEO_FRAMES:
                    # A damaged stretch, not the end: the decoder moves past a frame it cannot decode, and
                    # the rest of the file is still there (stopping here lost every later reading).
                    if bad == 0:
                        log.warning("%s: frame %d cannot be decoded, skipping the damaged stretch", self.path,
                                    int(self._cap.get(cv2.CAP_PROP_POS_FRAMES)) + undecoded)
                    bad += 1
                    undecoded += 1
                    self.skipped += 1
                    continue
                if bad and self._frames_left(undecoded):
                    self.failed = True
                    yield Frame(image=None, source=self.name, index=index, ts=time.time(),
                                error=f"video damaged: {bad} frames in a row cannot be decoded, "
                                      f"{self._frames_left(undecoded)} frames not read")
                    return
                if index == 0:
                    # Opened, but not one frame decodes (a damaged file, a stream the decoder refuses): the run
                    # ended with exit 0 and no event, as if the file had been read.
                    self.failed = True
                    yield Frame(image=None, source=self.name, index=0, ts=time.time(),
                                error="cannot decode video: no frame could be decoded")
                    return
                if not self.loop or in_this_pass == 0 or not self._rewind():
                    return
                self.loops += 1
                in_this_pass = undecoded = 0
                just_rewound = True
                continue
            ms = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
            if self._last_ms is not None:
                # Over a damaged stretch the time since the last frame decoded is that many frames' worth: taken
                # for one, it ended the file early at a second stretch soon after (its later frames lost, exit 0).
                self._last_period_ms = (ms - self._last_ms) / (1 + bad)
            else:  # the pass's first frame
                self._pass_first_ms = ms
                if self._lead_frames is None:
                    self._lead_frames = self._lead()
            self._last_ms = ms
            media = self._media_time(ms)
            self._media_s = media if media is not None else self._media_s
            bad = 0
            in_this_pass += 1
            if paced and media is not None:
                if anchor is None:
                    anchor = time.monotonic() - media
                # Sleep in idle_timeout slices so the caller's loop still turns (signals, watchdog).
                while (wait := anchor + media - time.monotonic()) > 0:
                    if idle_timeout is not None and wait > idle_timeout:
                        time.sleep(idle_timeout)
                        yield None
                    else:
                        time.sleep(wait)
                # A slow reader does not make the video run fast afterwards to catch up.
                anchor = max(anchor, time.monotonic() - media)
            yield Frame(image=self._turned(img), source=self.name, index=index, ts=time.time(), media_s=media)
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# ------------------------------------------------------------------------------------------ live sources


#: While a live source stays unavailable at the longest back-off, its retries are logged at INFO this often
#: (seconds), at DEBUG in between.
RETRY_SAID_EVERY_S = 600.0


class LiveSource(Source):
    """A device or stream read by a grabber thread that keeps only the newest frame.

    Subclasses provide ``_open() -> handle | None``, ``_read(handle) -> image | None`` and ``_release``.
    """

    kind = "camera"
    live = True
    #: consecutive failed reads before the device counts as gone (a single failed read happens on USB hiccups)
    max_read_failures = 5
    #: seconds of frames after an outage before the source counts as back: one that fails again sooner is
    #: still in the outage already reported (a flapping stream)
    healthy_s = 5.0

    def __init__(self, name: str, cfg: Any, retry: bool = True) -> None:
        # An RTSP camera's URL carries its password: what is opened is the spec, what is shown (events, the
        # web page, MQTT, logs) is the name with the password hidden.
        super().__init__(redact(name), turn_from(cfg))
        self.spec = name
        self.cfg = cfg
        #: what the user calls it in messages: a URL is a stream (a webcam, /dev/videoN, picamera2 a camera)
        self.what = "stream" if "://" in name else "camera"
        self.retry = retry
        self.connected = False
        self.reconnects = 0
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        # error frames never get overwritten by newer frames: each outage is reported
        self._errors: deque[Frame] = deque(maxlen=8)
        self._finished = False
        self._stop = threading.Event()
        self._index = 0
        self._thread: threading.Thread | None = None
        #: monotonic time the grabber entered a driver call that has not returned yet (None: not in one)
        self._in_driver_since: float | None = None

    def stuck_for(self) -> float:
        """Seconds the grabber has been inside one driver call (open or read); 0 when it is not in one.

        Reads return within their own timeouts and opens fail, so a call that does not return for far
        longer is a stuck driver (a Pi camera's capture can wait for ever): nothing in this process can free
        it, a restart of the process can."""
        since = self._in_driver_since
        return 0.0 if since is None else time.monotonic() - since

    def _driver(self, call: Any, *args: Any) -> Any:
        self._in_driver_since = time.monotonic()
        try:
            return call(*args)
        finally:
            self._in_driver_since = None

    def start(self) -> LiveSource:
        handle = None
        if not self.retry:
            # Fail fast and synchronously: the caller turns this into exit code 1.
            handle = self._driver(self._open)
            if handle is None:
                raise SourceError(f"cannot open {self.what} {self.name}")
            self.connected = True
        self._thread = threading.Thread(target=self._run, args=(handle,), name=f"grab:{self.name}", daemon=True)
        self._thread.start()
        return self

    @abstractmethod
    def _open(self) -> Any: ...

    @abstractmethod
    def _read(self, handle: Any) -> np.ndarray | None: ...

    def _release(self, handle: Any) -> None:  # noqa: B027 - optional
        pass

    def _post(self, frame: Frame, error: bool = False) -> None:
        with self._cond:
            if error:
                self._errors.append(frame)
                if self._slot is not None:
                    # Taken before the outage: handed out after the error it would "answer" it, and a
                    # camera that is gone would look fine (the error flag cleared by an old reading).
                    self._slot = None
                    self.dropped += 1
            else:
                if self._slot is not None:
                    self.dropped += 1
                self._slot = frame
            self._cond.notify_all()

    def _post_error(self, message: str) -> None:
        log.warning("%s: %s", self.name, message)
        self._post(Frame(image=None, source=self.name, index=self._index, ts=time.time(), error=message), True)

    def _run(self, handle: Any) -> None:
        backoff = float(self.cfg.reconnect_min_s)
        outage_reported = False
        failures = 0
        attempts, last_said = 0, -math.inf  # failed opens in this outage; when the last INFO line said so
        # A stream that came back after an outage but gave frames for less than ``healthy_s`` before failing
        # again (junk between a stream's parts, a snapshot URL that closes after each picture, a stream that
        # stalls after a frame) never really came back: it is still the outage already reported. An error
        # event and the reading said again at every cycle were two events a second to every sink, the error
        # sensor flipping for as long as it lasted. Such a relapse is reported only once no frame has come
        # for reconnect_max_s.
        flap_s = float(self.cfg.reconnect_max_s)
        back_at: float | None = None  # the first frame after the last outage (None: there was none)
        last_frame_at = -math.inf
        relapse_at: float | None = None  # a relapse not reported (yet)
        relapses, relapse_said = 0, -math.inf  # since the last INFO line about them

        def outage(message: str) -> None:
            nonlocal outage_reported, relapse_at, relapses, relapse_said
            if outage_reported:
                return
            now = time.monotonic()
            flapping = back_at is not None and last_frame_at - back_at < self.healthy_s
            if self.retry and (relapse_at is not None or flapping):
                if relapse_at is None:
                    relapse_at = last_frame_at
                    relapses += 1
                    if now - relapse_said >= RETRY_SAID_EVERY_S:
                        log.info("%s: %s lost again %.1f s after coming back (%d time(s) since this was last "
                                 "said); reported if no frame comes for %.0f s", self.name, self.what,
                                 now - (back_at or now), relapses, flap_s)
                        relapses, relapse_said = 0, now
                if now - relapse_at < flap_s:
                    return
            self._post_error(message)
            outage_reported, relapse_at = True, None

        try:
            while not self._stop.is_set():
                if handle is None:
                    handle = self._driver(self._open)
                    if handle is None:
                        outage(f"cannot open {self.what}")
                        if not self.retry:
                            self.failed = True
                            return
                        attempts += 1
                        now = time.monotonic()
                        if backoff < float(self.cfg.reconnect_max_s):
                            log.info("%s: retrying in %.1f s", self.name, backoff)
                        elif now - last_said >= RETRY_SAID_EVERY_S:
                            # An unplugged camera is retried every 30 s for as long as it is away: a line
                            # each time was 2,880 a day in the journal, saying nothing new.
                            log.info("%s: still not available after %d attempt(s); retrying every %.1f s "
                                     "(said again every %.0f min)", self.name, attempts, backoff,
                                     RETRY_SAID_EVERY_S / 60)
                            last_said = now
                        else:
                            log.debug("%s: retrying in %.1f s", self.name, backoff)
                        if self._stop.wait(backoff):
                            return
                        backoff = min(backoff * 2.0, float(self.cfg.reconnect_max_s))
                        continue
                    self.connected, failures = True, 0
                img = self._driver(self._read, handle)
                if img is None:
                    failures += 1
                    if failures < self.max_read_failures:
                        self._stop.wait(0.05)
                        continue
                    self._release(handle)
                    handle, self.connected = None, False
                    # A device that opens but gives no frame (a bad cable, a stalled stream) is one outage:
                    # one error event, and the back-off keeps growing until a frame really arrives.
                    outage("camera disconnected")
                    if not self.retry:
                        self.failed = True
                        return
                    if self._stop.wait(backoff):
                        return
                    backoff = min(backoff * 2.0, float(self.cfg.reconnect_max_s))
                    continue
                last_frame_at = time.monotonic()
                if outage_reported or relapse_at is not None:
                    self.reconnects += 1
                    if outage_reported:
                        log.info("%s: %s is back", self.name, self.what)
                    outage_reported, relapse_at = False, None
                    attempts, last_said = 0, -math.inf
                    back_at = last_frame_at
                failures = 0
                backoff = float(self.cfg.reconnect_min_s)
                # turned here, in the grabber's thread: the reader's thread never pays for it
                self._post(Frame(image=self._turned(img), source=self.name, index=self._index, ts=time.time()))
                self._index += 1
        except Exception as exc:  # noqa: BLE001 - a crashed grabber must end the stream, not hang the daemon
            log.exception("%s: grabber failed", self.name)
            self._post_error(f"capture failed: {exc}")
            self.failed = True
        finally:
            if handle is not None:
                self._release(handle)
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def frames(self, idle_timeout: float | None = None) -> Iterator[Frame | None]:
        if self._thread is None:
            self.start()
        wait = idle_timeout if idle_timeout is not None else 0.5
        while True:
            with self._cond:
                if self._slot is None and not self._errors and not self._finished:
                    self._cond.wait(wait)
                if self._errors:
                    item: Frame | None = self._errors.popleft()
                elif self._slot is not None:
                    item, self._slot = self._slot, None
                elif self._finished:
                    return
                else:
                    item = None
            if item is not None or idle_timeout is not None:
                yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # A read blocked in the driver returns within its own timeout; do not hang shutdown on it.
            self._thread.join(timeout=2.0)


class CvCaptureSource(LiveSource):
    """Camera index, /dev/videoN or a network stream through ``cv2.VideoCapture``."""

    def _open(self) -> Any:
        spec = self.spec
        timeout_ms = int(self.cfg.read_timeout_s * 1000)
        if spec.isdigit():
            cap = cv2.VideoCapture(int(spec))
        elif spec.startswith("/dev/"):
            cap = cv2.VideoCapture(spec, cv2.CAP_V4L2)
        else:
            # FFmpeg otherwise waits forever on a dead RTSP/HTTP peer; these bound open and read.
            cap = cv2.VideoCapture(spec, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms,
            ])
        if not cap.isOpened():
            cap.release()
            return None
        # Drivers keep several buffers; 1 means a read returns a recent picture, not one from a second ago.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if self.cfg.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
        if self.cfg.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
        if self.cfg.fps:
            cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if w * h > self.cfg.max_pixels:
            log.error("%s delivers %dx%d, over source.max_pixels", self.name, w, h)
            cap.release()
            return None
        log.info("opened %s: %dx%d @ %.1f fps", self.name, w, h, cap.get(cv2.CAP_PROP_FPS))
        return cap

    def _read(self, handle: Any) -> np.ndarray | None:
        ok, img = handle.read()
        return img if ok and img is not None else None

    def _release(self, handle: Any) -> None:
        handle.release()


# ------------------------------------------------------------------------------------------ open_source


def _folder_entry(path: Path) -> bool:
    """Whether a file found in a folder is read (it gets its event); False: passed over as not an image.

    By extension: an image's is read (a corrupt one gets its error event), a plainly-not-image one (.csv,
    .md, .json, a video ...) is passed over unopened. Any other - none, or one nobody listed (a camera app's
    ``IMG_0001``, ``scan.dat``) - is read when its first bytes are an image's. A file that cannot be
    opened to look is read too: its error event says why (the service user may not read it, a broken link).
    """
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        return True
    if ext in NOT_IMAGE_EXTS:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return True
    return image_signature(head)


def _list_images(folder: Path) -> tuple[list[str], list[str]]:
    """``(files to read, files passed over)`` in a folder, each sorted by name.

    Hidden files and subfolders are never looked at. A broken symbolic link (its photo moved or deleted) or
    a link loop with an image's name is read: is_file() is False for both, and they vanished without a word.
    """
    names = sorted(n for n in os.listdir(folder) if not n.startswith("."))
    files = [folder / n for n in names
             if (folder / n).is_file() or ((folder / n).is_symlink() and not (folder / n).is_dir())]
    read: list[str] = []
    skipped: list[str] = []
    for f in files:
        (read if _folder_entry(f) else skipped).append(str(f))
    return read, skipped


def _once_each(matches: Iterable[str]) -> list[str]:
    """A glob's matches, sorted, each file once however many linked folders lead to it.

    ``**`` follows links to folders: a link back up the tree (``photos/all -> ..``) matched every image
    below it once per level down to the system's link limit, forty events for one photo. Two names of one
    folder are one folder; two names in one folder (``latest.png -> 0042.png``) stay two inputs, as named.
    The shortest way to each is kept.
    """
    best: dict[tuple[str, str], str] = {}
    seen = 0
    for m in matches:
        if not os.path.isfile(m) and os.path.isdir(os.path.realpath(m)):
            # A folder at the end of ``**``'s way down a link back up the tree (a/up/a/up/.../up): the system
            # follows no more links there, so it looked like a link loop and was read, an error event for a
            # folder. Python's realpath resolves it one link at a time and finds the folder.
            continue
        seen += 1
        key = (os.path.realpath(os.path.dirname(m) or "."), os.path.basename(m))
        if key not in best or (len(m), m) < (len(best[key]), best[key]):
            best[key] = m
    if seen > len(best):
        log.info("%d of the glob's matches are files already matched through another link to their folder: "
                 "each is read once", seen - len(best))
    return sorted(best.values())


def _few(paths: list[str], n: int = 5) -> str:
    names = [Path(p).name for p in paths[:n]]
    return ", ".join(names) + (f", ... ({len(paths) - n} more)" if len(paths) > n else "")


def _device_path(spec: str) -> bool:
    """A /dev/ path that is a device, or not there (a camera not plugged in yet is retried, not "not found").

    Files, folders and globs under /dev/ (snapshots in the /dev/shm RAM disk) are read as what they are, and
    so is a missing one named as an image or a video: a snapshot not written yet was a camera that never
    opens, retried for ever (no device name ends in one of their extensions).
    """
    if not spec.startswith("/dev/"):
        return False
    if (st := fs.stat_or_none(spec)) is not None:
        return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))
    return not (_GLOB_CHARS & set(spec) or Path(spec).suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)


def not_a_camera(spec: str) -> str | None:
    """Why the device ``spec`` can never be a camera (None when it may be one, or is not there yet).

    Only on Linux, where every video4linux device has one major number: /dev/null or a disk would otherwise
    be retried for ever as a camera that does not open.
    """
    if not sys.platform.startswith("linux") or not spec.startswith("/dev/"):
        return None
    try:
        st = os.stat(spec)
    except OSError:
        return None
    if not stat.S_ISCHR(st.st_mode):
        return f"{spec} is not a camera device"
    if os.major(st.st_rdev) != V4L_MAJOR:
        return f"{spec} is not a video device (a camera is /dev/videoN)"
    return None


def classify_spec(spec: str) -> str:
    """Which kind of source ``spec`` names: camera, picamera2, images, video or missing."""
    s = spec.strip()
    if s.isdigit() or _device_path(s) or "://" in s:
        return "camera"
    if s == "picamera2":
        return "picamera2"
    p = Path(s)
    # edge.paths, not pathlib: a name too long for the file system is missing like any other (an image's
    # gets its error event), not an OSError
    if fs.is_dir(s):
        return "images"
    if fs.is_file(s):
        ext = p.suffix.lower()
        if ext in IMAGE_EXTS:
            return "images"
        if ext in VIDEO_EXTS:
            return "video"
        return "images" if cv2.haveImageReader(s) else "video"
    if _GLOB_CHARS & set(s):
        return "images"
    # A named image that is missing still gets its error event (DESIGN: missing file -> event with error).
    return "images" if p.suffix.lower() in IMAGE_EXTS else "missing"


def open_source(spec: str, cfg: Any, retry: bool = True) -> Source:
    """Open the source named by ``spec`` with the ``source:`` config section ``cfg``.

    ``retry`` (live sources): reconnect forever with backoff; False fails fast (SourceError) instead.
    Raises SourceError when the source cannot be opened at all.
    """
    try:
        return _open_source(spec, cfg, retry)
    except OSError as exc:
        # e.g. the service user may not look into a folder: a one-line error, not a traceback
        where = f" ({exc.filename})" if exc.filename and exc.filename != spec else ""
        raise SourceError(f"cannot open source {spec}: {exc.strerror or exc}{where}") from None


def _open_source(spec: str, cfg: Any, retry: bool) -> Source:
    kind = classify_spec(spec)
    if kind == "missing":
        raise SourceError(f"source not found: {spec}")
    turn = turn_from(cfg)
    if turn is not None:
        log.info("%s: every frame %s before it is read", redact(spec), describe_turn(cfg))
    if kind == "camera":
        if (why := not_a_camera(spec)) is not None:
            raise SourceError(why)
        return CvCaptureSource(spec, cfg, retry=retry).start()
    if kind == "picamera2":
        from edge.capture_picamera2 import Picamera2Source

        return Picamera2Source(spec, cfg, retry=retry).start()
    if kind == "video":
        return VideoFileSource(spec, cfg.max_pixels, loop=bool(getattr(cfg, "loop", False)),
                               realtime=bool(getattr(cfg, "realtime", False)), turn=turn)
    p = Path(spec)
    skipped: list[str] = []
    if fs.is_dir(spec):
        paths, skipped = _list_images(p)
        if not paths and not skipped:
            raise SourceError(f"no files in folder {spec}")
        if not paths:
            raise SourceError(f"no images in folder {spec} ({len(skipped)} other file"
                              f"{'s' if len(skipped) > 1 else ''}: {_few(skipped)})")
        if skipped:
            # one line at start, so a photo saved under an odd name is not missed without a word
            log.info("%s: %d image%s to read, %d other file%s passed over (not images): %s", spec, len(paths),
                     "s" if len(paths) > 1 else "", len(skipped), "s" if len(skipped) > 1 else "", _few(skipped))
    elif fs.exists(spec) or (p.suffix.lower() in IMAGE_EXTS and not (_GLOB_CHARS & set(spec))):
        paths = [spec]
    else:
        # A broken link or a link loop is kept, as in a folder (``_list_images``): isfile() is False for both,
        # and a photo moved away from under its link vanished from the run without a word.
        paths = _once_each(m for m in glob.glob(spec, recursive=True)
                           if os.path.isfile(m) or (os.path.islink(m) and not os.path.isdir(m)))
        if not paths:
            raise SourceError(f"no files match {spec}")
    return ImageSource(spec, paths, cfg.max_pixels, turn=turn, skipped=skipped)
