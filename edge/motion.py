"""A cheap change gate: read a frame only when the scene in front of the camera has changed.

A camera on a shelf looks at the same paper for hours; reading every frame re-reads the same digits. Like
deployed edge vision systems (Frigate runs its detector only where there is motion), each frame is first
reduced to a small thumbnail (the mean of 8x8 blocks at 720p) and compared with the thumbnail of the last
frame that was actually *read*. Only when enough thumbnail pixels changed by more than the noise does the
reader run; otherwise the previous :class:`~edge.types.FrameResult` is reused, and the stabiliser still
sees every frame.

Three rules keep this safe:

- **settle**: whenever a read gives different numbers than the read before, frames are read until
  ``settle_reads`` reads in a row gave the same numbers, so the result that is then reused is one the
  reader confirmed, not a single (possibly wrong) read; a reading that keeps flickering is simply read on
  every frame. A change in the picture is always read; if it still reads the same (the page only moved),
  that read is reused at once;
- **motion**: while the picture keeps changing from frame to frame, only every ``moving_read_every``-th
  frame is read - twice as far apart after each such read that gave the same numbers, up to
  ``moving_backoff`` times (a page carried across the view reads the same all the way) - and the frame
  where it comes to rest is read at once;
- **bounded staleness**: a read is forced at least every ``max_skip_frames`` frames and ``max_skip_s``
  seconds, so a change too small to see in the thumbnail is still picked up;
- **debug**: a frame is read whenever debug material is wanted but the reused result has none.

:class:`ChangeGate` is the pure decision (arrays and numbers in, a bool out); :class:`GatedReader` wraps a
:class:`~edge.reader.Reader` with it and keeps the reused result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.types import FrameResult

log = logging.getLogger(__name__)


@dataclass
class GateParams:
    """Parameters of the change gate (config section ``segment.gate:``)."""

    #: False: every frame is read (the gate is bypassed).
    enabled: bool = True
    #: Thumbnails are this many pixels on their longest side (8x8 blocks of a 1280x720 frame at 160).
    thumb_side: int = 160
    #: A thumbnail pixel has changed when it differs from the last read frame's by more than this many
    #: grey levels ...
    min_level: float = 6.0
    #: ... and by more than this many times the frame-to-frame noise (robust sigma of the difference).
    noise_k: float = 5.0
    #: The scene has changed when at least this many thumbnail pixels changed (one pen stroke added to a
    #: digit 60 px tall at 720p changes three or more).
    min_changed_px: int = 2
    #: After a change, frames are read until this many reads in a row gave the same numbers.
    settle_reads: int = 3
    #: While the view keeps changing from one frame to the next (paper sliding, a hand writing, a shaking
    #: camera), only every this many-th frame is read: a moving page reads no better, and the frame where
    #: it comes to rest is read at once.
    moving_read_every: int = 3
    #: ... and, while those reads keep giving the same numbers, twice as far apart after each, up to this
    #: many times ``moving_read_every`` (1: no backing off).
    moving_backoff: int = 4
    #: A frame is read at least every this many frames ...
    max_skip_frames: int = 45
    #: ... and at least every this many seconds, whatever the thumbnails say.
    max_skip_s: float = 3.0

    def __post_init__(self) -> None:
        if self.thumb_side < 8:
            raise ValueError("thumb_side must be >= 8")
        if self.min_level < 0 or self.noise_k < 0:
            raise ValueError("min_level and noise_k must be >= 0")
        if min(self.min_changed_px, self.settle_reads, self.moving_read_every, self.moving_backoff,
               self.max_skip_frames) < 1:
            raise ValueError("min_changed_px, settle_reads, moving_read_every, moving_backoff and "
                             "max_skip_frames must be >= 1")
        if self.max_skip_s <= 0:
            raise ValueError("max_skip_s must be > 0")


def thumbnail(gray: np.ndarray, side: int) -> np.ndarray:
    """Block-mean thumbnail (uint8) whose longest side is about ``side`` px.

    Halving with INTER_AREA has a fast path in OpenCV (0.03 ms at 720p, where one INTER_AREA resize by 8
    costs ten times that), and each halving averages 2x2 blocks, so sensor noise shrinks by 2 per step.
    """
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY)
    small = gray
    while max(small.shape[:2]) >= 2 * side and min(small.shape[:2]) >= 4:
        h, w = small.shape[:2]
        small = cv2.resize(small, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    if max(h, w) > side:
        s = side / max(h, w)
        small = cv2.resize(small, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return small


def _median_of_ints(values: np.ndarray, offset: int, bins: int) -> int:
    """Median of small non-negative ints (after adding ``offset``) by counting: no sort."""
    counts = np.bincount(values.ravel() + offset, minlength=bins)
    return int(np.searchsorted(np.cumsum(counts), (values.size + 1) // 2)) - offset


def changed_pixels(thumb: np.ndarray, ref: np.ndarray, p: GateParams) -> int:
    """How many thumbnail pixels differ from ``ref`` by more than the noise allows.

    The median difference is taken out first: a camera's auto exposure brightens or darkens the whole
    frame without changing what is written on the paper. What is left in a static scene is noise, whose
    robust sigma sets the level; a change touches a few pixels, not half of them.
    """
    # Nearly every frame of a still scene: nothing differs by even the minimum level (ten microseconds).
    if cv2.countNonZero(cv2.threshold(cv2.absdiff(thumb, ref), p.min_level, 255, cv2.THRESH_BINARY)[1]) \
            < p.min_changed_px:
        return 0
    diff = thumb.astype(np.int16) - ref.astype(np.int16)
    dev = np.abs(diff - _median_of_ints(diff, 255, 511))
    sigma = 1.4826 * _median_of_ints(dev, 0, 511)
    level = max(p.min_level, p.noise_k * sigma)
    return int(np.count_nonzero(dev > level))


class ChangeGate:
    """Decides, frame by frame, whether the reader has to run. Pure state machine: no I/O, no clock.

    Call ``should_read(gray, ts)`` for every frame; after every read, call ``read_done(signature)`` with
    what the reader found (any hashable: the tuple of number values).
    """

    def __init__(self, params: GateParams | None = None) -> None:
        self.params = params or GateParams()
        self._ref: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._since_read = 0
        self._last_read_ts: float | None = None
        self._last_sig: Hashable | None = None
        self._agree = 0
        #: how many reads in a row while moving gave the same numbers (sets the backed-off interval)
        self._moving_same = 0
        self._read_moving = False
        self.reads = 0
        self.skips = 0

    def reset(self) -> None:
        """Forget the reference: the next frame is read (new source, reloaded config)."""
        self._ref = None
        self._prev = None
        self._agree = 0
        self._last_sig = None
        self._moving_same = 0
        self._read_moving = False

    @property
    def settled(self) -> bool:
        """True once the last ``settle_reads`` reads agreed (reusing the last result is then safe)."""
        return self._agree >= self.params.settle_reads

    def should_read(self, gray: np.ndarray, ts: float) -> bool:
        p = self.params
        thumb = thumbnail(gray, p.thumb_side)
        prev, self._prev = self._prev, thumb
        if not p.enabled or self._ref is None or self._ref.shape != thumb.shape:
            return self._read(thumb, ts)
        due = (self._since_read + 1 >= p.max_skip_frames
               or (self._last_read_ts is not None and ts - self._last_read_ts >= p.max_skip_s))
        if changed_pixels(thumb, self._ref, p) >= p.min_changed_px:
            # The read this triggers decides whether the reading changed (and must settle again) or
            # only the picture did (the page moved and still reads the same).
            moving = prev is not None and changed_pixels(thumb, prev, p) >= p.min_changed_px
            if not moving or due or self._since_read + 1 >= self.moving_interval:
                return self._read(thumb, ts, moving)
        elif due or not self.settled:
            return self._read(thumb, ts)
        self._since_read += 1
        self.skips += 1
        return False

    @property
    def moving_interval(self) -> int:
        """Frames between reads while the picture moves: ``moving_read_every``, doubled after each moving
        read that gave the same numbers as the read before, at most ``moving_backoff`` times that."""
        p = self.params
        return p.moving_read_every * min(p.moving_backoff, 2 ** min(self._moving_same, 16))

    def _read(self, thumb: np.ndarray, ts: float, moving: bool = False) -> bool:
        self._read_moving = moving
        self._ref = thumb
        self._since_read = 0
        self._last_read_ts = ts
        self.reads += 1
        return True

    def read_done(self, signature: Hashable) -> None:
        """Tell the gate what the read just made of the frame."""
        same = bool(self._agree) and signature == self._last_sig
        self._agree = self._agree + 1 if same else 1
        # Backing off while moving needs moving reads that keep agreeing; anything else starts over.
        self._moving_same = self._moving_same + 1 if same and self._read_moving else 0
        self._last_sig = signature


#: the gate's signature of a frame too cluttered to read
CLUTTERED = ("<cluttered>",)


class GatedReader:
    """A :class:`~edge.reader.Reader` behind a :class:`ChangeGate`: ``read`` returns a fresh result when
    the scene changed (or a forced re-read is due) and the previous one otherwise.

    ``last_was_read`` says which it was; the reused result carries ``timings["gated"] = 1.0`` and only
    the gate's own cost in ``timings["gate"]``.
    """

    def __init__(self, reader: Any, params: GateParams | None = None) -> None:
        self.reader = reader
        self.gate = ChangeGate(params)
        self._last: FrameResult | None = None
        self.last_was_read = False

    def reset(self) -> None:
        self.gate.reset()
        self._last = None

    def read(self, image: np.ndarray, ts: float | None = None, debug: bool | None = None) -> FrameResult:
        t0 = time.perf_counter()
        ts = time.monotonic() if ts is None else ts
        if image is None or image.size == 0 or min(image.shape[:2]) < 2:
            return self.reader.read(image, debug=debug)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        read = self.gate.should_read(gray, ts)
        # A viewer that just switched the debug view on must get masks and crops, not an old result.
        if not read and debug and not (self._last is not None and self._last.debug):
            read = True
        gate_ms = (time.perf_counter() - t0) * 1e3
        if read or self._last is None:
            result = self.reader.read(gray, debug=debug)
            result.timings["gate"] = gate_ms
            # A cluttered read is its own kind of answer: it must not agree with an empty page's.
            self.gate.read_done(CLUTTERED if result.cluttered else tuple(n.value for n in result.numbers))
            self._last = result
            self.last_was_read = True
            return result
        self.last_was_read = False
        reused = FrameResult(numbers=list(self._last.numbers), timings={"gate": gate_ms, "gated": 1.0},
                             debug=self._last.debug, cluttered=self._last.cluttered)
        return reused
