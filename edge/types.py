"""Plain data passed between pipeline stages.

Data flows one way: capture -> segment -> normalise -> classify -> numbers -> stabilise -> sinks.
Boxes are always ``(x, y, w, h)`` in source pixels (ints).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]


def overlap_area(a: Box, b: Box) -> int:
    """Pixels the boxes ``a`` and ``b`` share."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))

#: Index of the "not a digit" class in the model's output (classes 0..9 are the digits).
NOT_A_DIGIT = 10


@dataclass(frozen=True)
class Frame:
    """One captured picture.

    ``image`` is uint8, either gray (H, W) or BGR (H, W, 3). ``ts`` is wall-clock seconds (time.time()),
    for the event's timestamp; ``mono`` is time.monotonic() when the frame was made, for every interval
    (heartbeats, the change gate's timers, latency): a Pi without a real-time clock steps its wall clock
    when NTP first answers, and a step back once stopped heartbeats for as long as it had jumped.
    ``error`` is set (and ``image`` is None) when this input could not be read; the pipeline turns it into
    an error event and carries on.
    """

    image: np.ndarray | None
    source: str
    index: int
    ts: float
    error: str | None = None
    mono: float = field(default_factory=time.monotonic)
    #: a video file's own time of this frame (seconds from its first frame, on across loops; ``VideoFileSource``)
    media_s: float | None = None


@dataclass(frozen=True)
class Digit:
    digit: int
    confidence: float
    box: Box
    #: top-3 (digit, probability) pairs, best first; for debug views and `edge.predict`.
    top3: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class Number:
    value: str
    confidence: float
    box: Box
    digits: tuple[Digit, ...]


@dataclass
class FrameResult:
    """What the reader found in one frame, before stabilisation."""

    numbers: list[Number]
    #: per-stage wall times in milliseconds, e.g. {"segment": 1.2, "normalise": 0.3, "infer": 0.5, "assemble": 0.1}
    timings: dict[str, float] = field(default_factory=dict)
    #: debug material for overlays and the web page: the binary ink mask (uint8 0/255, same size as the
    #: frame) and the 28x28 crops the model saw with their boxes; filled only when asked for.
    debug: dict[str, Any] = field(default_factory=dict)
    #: the frame was too cluttered to read (``segment.max_components``, ``segment.reader.max_crops``): no
    #: numbers, and not an answer either - the stabiliser does not see it
    cluttered: bool = False
    #: the part of the frame that was read (``source.region``), in its pixels; None: the whole frame
    region: Box | None = None


@dataclass(frozen=True)
class Event:
    """One published JSON line (see DESIGN.md, "The event")."""

    ts: str
    source: str
    frame: int
    numbers: tuple[Number, ...] = ()
    latency_ms: float | None = None
    error: str | None = None
    #: "reading" (stable value appeared or changed), "heartbeat", or "error"
    kind: str = "reading"

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"ts": self.ts, "source": self.source, "frame": self.frame, "error": self.error}
        out: dict[str, Any] = {
            "ts": self.ts,
            "source": self.source,
            "frame": self.frame,
            "numbers": [number_to_dict(n) for n in self.numbers],
        }
        if self.latency_ms is not None:
            out["latency_ms"] = round(float(self.latency_ms), 2)
        if self.kind == "heartbeat":
            out["heartbeat"] = True
        return out


def number_to_dict(n: Number, top3: bool = False) -> dict[str, Any]:
    """A number as in the event JSON (DESIGN.md); ``top3`` adds each digit's runners-up (web debug view)."""
    digits = []
    for d in n.digits:
        dd: dict[str, Any] = {"digit": int(d.digit), "confidence": round(float(d.confidence), 4),
                              "box": [int(v) for v in d.box]}
        if top3:
            dd["top3"] = [[int(k), round(float(p), 4)] for k, p in d.top3]
        digits.append(dd)
    return {"value": n.value, "confidence": round(float(n.confidence), 4), "box": [int(v) for v in n.box],
            "digits": digits}
