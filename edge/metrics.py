"""Process counters and gauges, thread-safe, with a Prometheus text-format render (``/metrics``).

Deliberately tiny instead of prometheus_client: a handful of numbers, one lock, no registry globals, so a
test or a reloaded pipeline can make a fresh ``Metrics`` without clashing with the previous one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

PREFIX = "digits_"


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: str  # "counter" or "gauge"
    help: str


_SPECS = (
    _Spec("frames", "counter", "Frames processed (read, or passed by the change gate with the last reading)."),
    _Spec("reads", "counter", "Frames the reader actually ran on (the change gate skips unchanged ones)."),
    _Spec("frames_dropped", "counter", "Frames a live source replaced before they were processed."),
    _Spec("digits", "counter", "Digits read (before stabilisation; frames the change gate passes count none)."),
    _Spec("readings", "counter", "Reading events published (stable value appeared or changed, or an image read)."),
    _Spec("heartbeats", "counter", "Heartbeat events published."),
    _Spec("errors", "counter", "Error events (unreadable input, camera gone) and failed frames."),
    _Spec("cluttered_frames", "counter", "Frames too cluttered to read (segment.max_components, reader max_crops)."),
    _Spec("sink_failures", "counter", "Writes that a sink could not complete."),
    _Spec("reconnects", "counter", "Times a live source came back after an outage."),
    _Spec("mqtt_queue_depth", "gauge", "Messages waiting in the MQTT on-disk queue."),
    _Spec("fps", "gauge", "Frames processed per second (smoothed)."),
    _Spec("latency_ms", "gauge", "Capture-to-result time of the last frame, milliseconds."),
    _Spec("up", "gauge", "1 while frames flow, 0 when the source is away or stalled."),
)
NAMES = tuple(s.name for s in _SPECS)


class Metrics:
    """``inc(name, n)`` for counters, ``set(name, v)`` for gauges, ``snapshot()`` and ``render()`` to read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {s.name: 0.0 for s in _SPECS}
        self._kinds = {s.name: s.kind for s in _SPECS}

    def inc(self, name: str, n: float = 1) -> None:
        if self._kinds[name] != "counter":
            raise ValueError(f"{name} is a gauge; use set()")
        if n < 0:
            raise ValueError("counters only go up")
        with self._lock:
            self._values[name] += n

    def set(self, name: str, value: float) -> None:
        if self._kinds[name] != "gauge":
            raise ValueError(f"{name} is a counter; use inc()")
        with self._lock:
            self._values[name] = float(value)

    def get(self, name: str) -> float:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._values)

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        return render_prometheus(self.snapshot(), self._kinds)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def render_prometheus(values: dict[str, float], kinds: dict[str, str] | None = None) -> str:
    kinds = kinds or {s.name: s.kind for s in _SPECS}
    helps = {s.name: s.help for s in _SPECS}
    lines = []
    for name, value in values.items():
        kind = kinds.get(name, "gauge")
        metric = PREFIX + name + ("_total" if kind == "counter" else "")
        lines.append(f"# HELP {metric} {helps.get(name, name)}")
        lines.append(f"# TYPE {metric} {kind}")
        lines.append(f"{metric} {_fmt(value)}")
    return "\n".join(lines) + "\n"
