"""What the daemon is doing right now, shared with readers on other threads (web page, systemd STATUS=).

The processing loop writes (``frame_done``, ``add_event``, ``set_state``); any thread reads an immutable
``StatusSnapshot``. One lock, held only to swap references: the loop never waits on a slow HTTP client.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from edge.types import Event, Frame, FrameResult, Number


@dataclass(frozen=True)
class StatusSnapshot:
    #: "starting", "running", "waiting" (live source away), "stopping", "stopped"
    state: str
    healthy: bool
    #: why not healthy (or "ok")
    reason: str
    source: str
    model: str
    runtime: str
    num_threads: int
    started: float
    frames: int
    fps: float
    #: wall-clock time of the newest processed frame (None before the first)
    last_frame_ts: float | None
    frame: Frame | None
    result: FrameResult | None
    #: the current stable readings (stream sources) or the last image's numbers
    stable: tuple[Number, ...]
    #: newest last, as event dicts (the JSON of DESIGN.md)
    events: tuple[dict[str, Any], ...] = field(default=())
    #: seconds since the newest frame was processed, on the monotonic clock (None before the first)
    last_frame_age_s: float | None = None
    #: seconds since start, on the monotonic clock (a wall-clock step must not make it jump or go negative)
    uptime_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no images) for ``/api/readings`` and the like."""
        return {
            "state": self.state, "healthy": self.healthy, "reason": self.reason, "source": self.source,
            "model": self.model, "runtime": self.runtime, "num_threads": self.num_threads,
            "uptime_s": round(self.uptime_s, 1), "frames": self.frames, "fps": round(self.fps, 2),
            "last_frame_ts": self.last_frame_ts,
            "stable": [n.value for n in self.stable],
            "events": list(self.events),
        }


class Status:
    def __init__(self, stale_after_s: float = 10.0, recent_events: int = 50) -> None:
        self.stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque(maxlen=recent_events)
        self._state, self._reason = "starting", "starting up"
        self._source, self._model, self._runtime, self._threads = "", "", "", 0
        self._started = time.time()
        self._started_mono = time.monotonic()
        self._frames = 0
        self._fps = 0.0
        self._last_mono: float | None = None
        self._last_ts: float | None = None
        self._frame: Frame | None = None
        self._result: FrameResult | None = None
        self._stable: tuple[Number, ...] = ()

    def set_recent_events(self, n: int) -> None:
        """Keep the last ``n`` events from now on (a reload); the newest of those already kept stay."""
        with self._lock:
            if self._events.maxlen != n:
                self._events = deque(self._events, maxlen=n)

    def set_info(self, source: str, model: str = "", runtime: str = "", num_threads: int = 0) -> None:
        with self._lock:
            self._source, self._model, self._runtime, self._threads = source, model, runtime, num_threads

    def set_state(self, state: str, reason: str = "ok") -> None:
        with self._lock:
            self._state, self._reason = state, reason

    def frame_done(self, frame: Frame, result: FrameResult | None, stable: list[Number] | None = None) -> None:
        """Record a processed frame; fps is an exponential average over processing times."""
        now = time.monotonic()
        with self._lock:
            if self._last_mono is not None:
                dt = now - self._last_mono
                if dt > 0:
                    inst = 1.0 / dt
                    self._fps = inst if self._fps == 0.0 else 0.9 * self._fps + 0.1 * inst
            self._last_mono = now
            self._last_ts = frame.ts
            self._frames += 1
            self._frame, self._result = frame, result
            if stable is not None:
                self._stable = tuple(stable)
            if self._state in ("starting", "waiting"):
                self._state, self._reason = "running", "ok"

    def set_stable(self, numbers: list[Number]) -> None:
        """Show readings that did not come from a frame (restored from the state file at start)."""
        with self._lock:
            self._stable = tuple(numbers)

    def add_event(self, event: Event) -> None:
        with self._lock:
            self._events.append(event.to_dict())

    def health(self) -> tuple[bool, str]:
        with self._lock:
            return self._health_locked()

    def _health_locked(self) -> tuple[bool, str]:
        if self._state != "running":
            return False, self._reason if self._reason != "ok" else self._state
        if self._last_mono is None:
            return False, "no frame yet"
        age = time.monotonic() - self._last_mono
        if age > self.stale_after_s:
            return False, f"no frame for {age:.0f} s"
        return True, "ok"

    def snapshot(self) -> StatusSnapshot:
        with self._lock:
            healthy, reason = self._health_locked()
            age = None if self._last_mono is None else time.monotonic() - self._last_mono
            # while frames flow, the smoothed rate; else 0: a camera gone for an hour is not still at the rate
            # it had when it went (the page showed "no frame for 3600 s" next to "12.0 fps")
            return StatusSnapshot(
                state=self._state, healthy=healthy, reason=reason, source=self._source, model=self._model,
                runtime=self._runtime, num_threads=self._threads, started=self._started, frames=self._frames,
                fps=self._fps if healthy else 0.0, last_frame_ts=self._last_ts, frame=self._frame,
                result=self._result,
                stable=self._stable, events=tuple(self._events),
                last_frame_age_s=age,
                uptime_s=time.monotonic() - self._started_mono,
            )

    def systemd_status(self) -> str:
        """One short line for ``STATUS=``: what ``systemctl status`` shows."""
        s = self.snapshot()
        if not s.healthy:
            return f"{s.state}: {s.reason}"
        last = ", ".join(n.value for n in s.stable) or "none"
        when = ""
        if s.events:
            ts = s.events[-1].get("ts")
            if isinstance(ts, str):
                try:
                    when = " at " + datetime.fromisoformat(ts).strftime("%H:%M:%S")
                except ValueError:
                    when = ""
        return f"{s.fps:.1f} fps, {s.frames} frames, reading: {last}{when}"
