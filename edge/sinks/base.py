"""The one interface every output sink implements, and the per-sink settings.

The daemon calls ``on_frame`` for every processed frame (the overlay video and the window need every frame),
``emit`` for every event (stable reading appeared/changed, heartbeat, error), and ``close`` once at the end.
A sink must never take the daemon down: I/O trouble is logged, counted in ``failures`` and retried later.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from edge.types import Event, Frame, FrameResult, Number

log = logging.getLogger(__name__)

FsyncPolicy = Literal["event", "interval", "never"]
OverlayMode = Literal["auto", "video", "images"]


@dataclass
class SinkOptions:
    """Per-sink settings; the config's ``sinks:`` section maps onto these fields one to one.

    Flush/fsync policy for ``file:`` and ``csv:``: every line is flushed to the OS at once (so ``tail -f``
    and a crash of this process lose nothing); ``fsync`` says when it is also forced to the storage:
    ``"event"`` after every event (safest, wears SD cards), ``"interval"`` (default) with the first event
    written after ``fsync_interval_s`` seconds have passed since the last fsync (bounds loss on power cut to
    that interval while events flow), ``"never"`` (leave it to the kernel). ``close()`` always fsyncs.
    """

    #: ``file:`` and ``csv:`` rotate when the file would exceed this many bytes (0 = never rotate).
    file_max_bytes: int = 10_000_000
    #: rotated files kept (PATH.1 .. PATH.N); with 0 the file is started afresh at the size limit.
    file_backups: int = 5
    fsync: FsyncPolicy = "interval"
    fsync_interval_s: float = 5.0
    #: ``overlay:`` "video" writes PATH as a video, "images" writes PATH/ as a folder of annotated images,
    #: "auto" decides from the first frame: a still-image source (file, folder, glob) gives images.
    overlay_mode: OverlayMode = "auto"
    overlay_fps: float = 10.0
    #: FourCC for cv2.VideoWriter; "mp4v" works with every OpenCV wheel (no H.264 licence needed).
    overlay_codec: str = "mp4v"
    #: also draw the debug panel (mask + 28x28 crops with top-3) into the overlay.
    overlay_debug: bool = False
    #: an overlay video is closed and a new one begun after this many seconds of video (0 = one file): an
    #: MP4 is playable only once closed, so a crash or power cut loses one segment, not the whole run.
    overlay_segment_s: float = 600.0
    #: finished segments kept (PATH.1.mp4 newest .. PATH.N.mp4 oldest); older ones are deleted.
    overlay_backups: int = 24
    window_name: str = "digits"
    #: where the window's ``s`` key saves snapshot PNGs.
    snapshot_dir: str = "."
    #: the validated ``mqtt:`` config section, passed through untouched for ``edge.sinks.mqtt.MqttSink``.
    mqtt: Any = None

    def __post_init__(self) -> None:
        if self.file_max_bytes < 0:
            raise ValueError(f"sinks.file_max_bytes must be >= 0 (0 = never rotate), got {self.file_max_bytes}")
        if self.file_backups < 0:
            raise ValueError(f"sinks.file_backups must be >= 0, got {self.file_backups}")
        if self.fsync not in ("event", "interval", "never"):
            raise ValueError(f"sinks.fsync must be one of event, interval, never; got {self.fsync!r}")
        if self.fsync_interval_s < 0:
            raise ValueError(f"sinks.fsync_interval_s must be >= 0, got {self.fsync_interval_s}")
        if self.overlay_mode not in ("auto", "video", "images"):
            raise ValueError(f"sinks.overlay_mode must be one of auto, video, images; got {self.overlay_mode!r}")
        if not 0 < self.overlay_fps <= 240:
            raise ValueError(f"sinks.overlay_fps must be in (0, 240], got {self.overlay_fps}")
        if self.overlay_segment_s < 0:
            raise ValueError(f"sinks.overlay_segment_s must be >= 0 (0 = one file), got {self.overlay_segment_s}")
        if self.overlay_backups < 0:
            raise ValueError(f"sinks.overlay_backups must be >= 0, got {self.overlay_backups}")
        if not (isinstance(self.overlay_codec, str) and len(self.overlay_codec) == 4):
            raise ValueError(f"sinks.overlay_codec must be a 4-character FourCC such as mp4v, got "
                             f"{self.overlay_codec!r}")

    @classmethod
    def from_any(cls, options: Any) -> SinkOptions:
        """Accept None, a SinkOptions, a dict or any object with matching attributes (e.g. a pydantic model)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if isinstance(options, dict):
            data = options
        elif hasattr(options, "model_dump"):
            data = options.model_dump()
        else:
            data = {k: getattr(options, k) for k in cls.__dataclass_fields__ if hasattr(options, k)}
        # The config section may hold more than these settings (e.g. the list of sink specs); the config
        # module validates keys, here only the ones that mean something to a sink are taken.
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class Sink(ABC):
    """An output. Subclasses implement ``emit`` and usually ``close``; ``on_frame`` is optional."""

    #: short name for logs and metrics, e.g. "stdout", "file:/var/log/digits/readings.jsonl"
    name: str = "sink"
    #: set by a sink that wants the daemon to stop (the window's ``q`` key); the daemon polls it.
    quit_requested: bool = False
    #: True when this sink draws the debug view, so the daemon asks the reader for ``FrameResult.debug``.
    wants_debug: bool = False
    #: how many writes failed (disk full, broker down ...); exported as a metric.
    failures: int = 0

    @abstractmethod
    def emit(self, event: Event, frame: Frame | None = None, result: FrameResult | None = None) -> None:
        """Publish one event. Must not raise on I/O trouble: log, count in ``failures``, carry on."""

    def on_frame(  # noqa: B027 - optional hook, no-op by default
        self, frame: Frame, result: FrameResult, stable: list[Number] | None = None, fps: float | None = None
    ) -> None:
        """Called for every processed frame (not only events).

        ``stable`` (the stabiliser's current set) and ``fps`` are optional: sinks that draw them fall back to
        the numbers of the last emitted event and to an FPS measured from ``frame.mono``.
        """

    def start(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Begin talking to the outside (a network sink connects). ``open_sink(..., start=False)`` builds a
        sink without starting it, so a reload can build the new set while the old one still runs."""

    def close(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Flush (and fsync) everything. Idempotent."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class DrawingSink(Sink):
    """A sink that draws frames (the overlay and the window): it remembers the numbers of the last event to
    draw as the stable set, and draws each event's own frame even for a caller that never calls
    ``on_frame`` (one frame late, or at close)."""

    def __init__(self) -> None:
        self._stable: list[Number] = []
        self._pending: tuple[Frame, FrameResult] | None = None

    def emit(self, event: Event, frame: Frame | None = None, result: FrameResult | None = None) -> None:
        if event.error is None:
            self._stable = list(event.numbers)
        # The daemon emits a frame's event before calling on_frame for it, which then drops the pending one.
        self._flush_pending()
        if frame is not None and result is not None and frame.image is not None:
            self._pending = (frame, result)

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.on_frame(*pending)
