"""Mouse strokes for handwritten digits, as a person would draw them on the draw-and-predict canvas.

Each digit is a list of strokes (pen down ... pen up); each stroke a list of points in a unit box
(x right, y down, 0..1). ``layout`` places digits side by side in canvas pixels; the same paths feed the
pure canvas tests and the xdotool ones, so both draw what a user would.
"""

from __future__ import annotations

import math

Point = tuple[float, float]
Stroke = list[Point]


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> Stroke:
    """Points along an ellipse from angle a0 to a1 (degrees, 0 = right, 90 = down)."""
    return [(cx + rx * math.cos(math.radians(a0 + (a1 - a0) * i / n)),
             cy + ry * math.sin(math.radians(a0 + (a1 - a0) * i / n))) for i in range(n + 1)]


DIGITS: dict[str, list[Stroke]] = {
    "0": [_arc(0.5, 0.5, 0.36, 0.47, -90, 270, 32)],
    "1": [[(0.32, 0.2), (0.55, 0.03), (0.55, 0.97)]],
    "2": [_arc(0.5, 0.3, 0.34, 0.27, 200, 380, 14)[:-3]
          + [(0.78, 0.45), (0.5, 0.7), (0.15, 0.97), (0.88, 0.97)]],
    "3": [_arc(0.48, 0.27, 0.32, 0.24, 200, 450, 16) + _arc(0.48, 0.73, 0.36, 0.25, -90, 160, 16)],
    "4": [[(0.6, 0.03), (0.12, 0.66), (0.9, 0.66)], [(0.66, 0.3), (0.66, 0.97)]],
    "5": [[(0.82, 0.04), (0.25, 0.04), (0.2, 0.45)] + _arc(0.5, 0.68, 0.36, 0.29, -140, 150, 18)],
    "6": [[(0.7, 0.03), (0.4, 0.3), (0.2, 0.62)] + _arc(0.5, 0.7, 0.3, 0.27, 180, 540, 24)],
    "7": [[(0.12, 0.05), (0.88, 0.05), (0.42, 0.97)]],
    "8": [_arc(0.5, 0.26, 0.27, 0.23, 90, 450, 20) + _arc(0.5, 0.72, 0.34, 0.25, -90, 270, 24)],
    "9": [_arc(0.5, 0.3, 0.3, 0.27, 0, 360, 24) + [(0.8, 0.3), (0.75, 0.65), (0.6, 0.97)]],
}


def layout(value: str, origin: tuple[int, int], height: int, gap: float = 0.35,
           width: float = 0.62) -> list[list[tuple[int, int]]]:
    """Strokes of ``value`` written left to right, ``height`` px tall, in canvas pixels (ints)."""
    x0, y0 = origin
    w = width * height
    out = []
    for k, ch in enumerate(value):
        left = x0 + k * (w + gap * height)
        for stroke in DIGITS[ch]:
            out.append([(round(left + px * w), round(y0 + py * height)) for px, py in stroke])
    return out
