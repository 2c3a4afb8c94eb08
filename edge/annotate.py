"""Draw what the reader saw on a frame: boxes, digits, confidences, FPS, the stable readings, and a debug panel.

Pure functions (image in, new image out) shared by the overlay sink, the window and the web page.
The debug view keeps a fixed size for a given frame size, so a video writer can take it frame after frame.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from edge.types import Box, FrameResult, Number, overlap_area

log = logging.getLogger(__name__)

FONT = cv2.FONT_HERSHEY_SIMPLEX
# BGR
GREEN = (60, 200, 60)
ORANGE = (0, 165, 255)
RED = (40, 40, 230)
CYAN = (230, 200, 0)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
STABLE = (255, 120, 0)

#: confidence at or above which a reading is drawn green, and below which it is drawn red (between: orange).
HIGH_CONF = 0.9
LOW_CONF = 0.6


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A BGR uint8 copy of a gray or BGR image."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def conf_colour(conf: float) -> tuple[int, int, int]:
    if conf >= HIGH_CONF:
        return GREEN
    return ORANGE if conf >= LOW_CONF else RED


def text_scale(image_h: int) -> float:
    # Hershey glyphs are ~22 px high at scale 1; aim for ~1/40 of the frame so text reads at 480p and 1080p.
    return max(0.35, image_h / 40.0 / 22.0)


def fit_scale(text: str, width: int, scale: float, thickness: int = 1, smallest: float = 0.3) -> float:
    """The largest scale up to ``scale`` at which ``text`` fits in ``width`` pixels (never below ``smallest``)."""
    tw = cv2.getTextSize(text, FONT, scale, thickness)[0][0]
    return scale if tw <= width else max(smallest, scale * width / max(tw, 1))


def put_label(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int],
              scale: float, thickness: int = 1) -> None:
    """Text on a filled box so it stays readable on any background; ``org`` is the box's bottom-left."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    x, y = int(org[0]), int(org[1])
    h, w = img.shape[:2]
    x = min(max(0, x), max(0, w - tw - 2))
    y = min(max(th + base + 2, y), h - 1)
    cv2.rectangle(img, (x, y - th - base - 2), (x + tw + 2, y), colour, cv2.FILLED)
    cv2.putText(img, text, (x + 1, y - base), FONT, scale, BLACK, thickness, cv2.LINE_AA)


def _rect(img: np.ndarray, box: Box, colour: tuple[int, int, int], thickness: int) -> None:
    x, y, w, h = (int(v) for v in box)
    cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), colour, thickness, cv2.LINE_AA)


def _same_place(a: Box, b: Box) -> bool:
    inter = overlap_area(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return union > 0 and inter / union >= 0.5


def annotate(image: np.ndarray, result: FrameResult | None, stable: Sequence[Number] | None = None,
             fps: float | None = None, debug: bool = False) -> np.ndarray:
    """Return a BGR copy of ``image`` with the frame's readings drawn on it.

    Digit boxes are thin and coloured by confidence with the digit and its confidence; number boxes are
    thicker with the value; numbers that are part of the stable set are outlined in blue. The stable values
    are listed top left, FPS top right. Outside ``source.region`` (``result.region``) the frame is dimmed.
    With ``debug`` the debug panel (mask, crops, top-3) is put to the right, so the output is
    ``(H, W + W // 2)``.
    """
    out = to_bgr(image)
    h, w = out.shape[:2]
    scale = text_scale(h)
    thick = max(1, round(h / 360))
    numbers = list(result.numbers) if result is not None else []
    stable = list(stable or [])
    if result is not None and result.region is not None:
        # What lies outside source.region is not read: shown at half brightness, the region outlined.
        x, y, rw, rh = result.region
        inside = out[y:y + rh, x:x + rw].copy()
        out >>= 1
        out[y:y + rh, x:x + rw] = inside
        _rect(out, (x - 1, y - 1, rw + 2, rh + 2), CYAN, thick)

    for number in numbers:
        is_stable = any(s.value == number.value and _same_place(s.box, number.box) for s in stable)
        c = STABLE if is_stable else conf_colour(number.confidence)
        x, y, bw, bh = number.box
        pad = max(2, bh // 10)
        for d in number.digits:
            _rect(out, d.box, conf_colour(d.confidence), max(1, thick - 1))
        _rect(out, (x - pad, y - pad, bw + 2 * pad, bh + 2 * pad), c, thick + 1)
        put_label(out, f"{number.value} ({number.confidence:.2f})", (x - pad, y - pad - 1), c, scale, thick)
        # Per-digit confidence under each digit (tilted lines too), scaled to the digit's width.
        for d in number.digits:
            text = f"{d.confidence:.2f}".removeprefix("0")  # ".98", or "1.00" when rounding up
            ds = fit_scale(text, max(d.box[2], 20), scale * 0.8)
            th = cv2.getTextSize(text, FONT, ds, 1)[0][1]
            put_label(out, text, (d.box[0], d.box[1] + d.box[3] + th + 4), conf_colour(d.confidence), ds)

    line_h = int(30 * scale) + 4
    if stable:
        for i, s in enumerate(stable):
            put_label(out, f"stable: {s.value}", (4, (i + 1) * line_h + 2), STABLE, scale, thick)
    else:
        put_label(out, "stable: -", (4, line_h + 2), WHITE, scale, thick)
    if fps is not None:
        label = f"{fps:.1f} FPS"
        tw = cv2.getTextSize(label, FONT, scale, thick)[0][0]
        put_label(out, label, (w - tw - 8, line_h + 2), WHITE, scale, thick)

    if debug:
        panel = debug_panel(result, (h, w // 2))
        out = np.hstack([out, panel])
    return out


def crop_items(result: FrameResult | None) -> list[tuple[np.ndarray, Box | None, tuple[tuple[int, float], ...]]]:
    """The 28x28 crops of ``result.debug["crops"]`` as ``(crop, box, top3)``, whatever shape the reader used.

    Accepted: a ``[N, 28, 28]`` array (with optional ``debug["boxes"]``), or a list whose items are arrays,
    ``(box, crop)`` / ``(crop, box)`` / ``(crop, box, top3)`` tuples, or dicts with ``crop``/``image``,
    ``box`` and ``top3``. A crop without its own top-3 takes the one of the digit read at the same box.
    """
    if result is None:
        return []
    raw = result.debug.get("crops")
    if raw is None:
        return []
    boxes = list(result.debug.get("boxes") or [])
    items: list[tuple[np.ndarray, Box | None, tuple[tuple[int, float], ...]]] = []
    for i, item in enumerate(raw):
        crop: Any = None
        box: Any = boxes[i] if i < len(boxes) else None
        top3: Any = ()
        if isinstance(item, np.ndarray):
            crop = item
        elif isinstance(item, dict):
            crop = item.get("crop", item.get("image"))
            box = item.get("box", box)
            top3 = item.get("top3", ())
        elif isinstance(item, (tuple, list)):
            for part in item:
                if isinstance(part, np.ndarray) and part.ndim >= 2:
                    crop = part
                elif isinstance(part, (tuple, list)) and len(part) == 4 and all(
                        isinstance(v, (int, np.integer)) for v in part):
                    box = tuple(int(v) for v in part)
                elif isinstance(part, (tuple, list)):
                    top3 = part
        if crop is None:
            continue
        if box is not None:
            box = tuple(int(v) for v in box)
            if not top3:
                top3 = next((d.top3 for n in result.numbers for d in n.digits if tuple(d.box) == box), ())
        items.append((np.asarray(crop), box, tuple(top3)))
    return items


def reading_order(items: list[tuple[np.ndarray, Box | None, tuple[tuple[int, float], ...]]],
                  result: FrameResult | None) -> list[tuple[np.ndarray, Box | None, tuple[tuple[int, float], ...]]]:
    """Crops of digits read in the numbers' reading order, then the rejected ones top to bottom.

    The reader keeps crops in segmentation order; on screen a person matches crop k to digit k.
    """
    rank = {tuple(d.box): k for k, d in enumerate(d for n in (result.numbers if result else []) for d in n.digits)}

    def key(item: tuple[np.ndarray, Box | None, tuple[tuple[int, float], ...]]) -> tuple[int, int, int]:
        box = item[1]
        if box is None:
            return (len(rank) + 1, 0, 0)
        k = rank.get(tuple(box))
        return (k, 0, 0) if k is not None else (len(rank), box[1], box[0])

    return sorted(items, key=key)  # stable: crops without a box keep their order, last


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``img`` to fit inside ``size`` (h, w) keeping its aspect, centred on black."""
    th, tw = size
    canvas = np.zeros((th, tw, 3), np.uint8)
    if img.size == 0 or th <= 0 or tw <= 0:
        return canvas
    h, w = img.shape[:2]
    s = min(th / h, tw / w)
    nh, nw = max(1, int(h * s)), max(1, int(w * s))
    small = cv2.resize(to_bgr(img), (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_NEAREST)
    y, x = (th - nh) // 2, (tw - nw) // 2
    canvas[y:y + nh, x:x + nw] = small
    return canvas


def top3_lines(top3: Sequence[tuple[int, float]]) -> tuple[str, str]:
    """``("4 98%", "7:1 N:0")``: the model's best guess and its two runners-up, in percent ("N" = not a digit)."""
    def name(d: int) -> str:
        return "N" if d == 10 else str(d)

    if not top3:
        return "?", ""
    d, p = top3[0]
    return f"{name(d)} {p * 100:.0f}%", " ".join(f"{name(d)}:{p * 100:.0f}" for d, p in top3[1:3])


def debug_panel(result: FrameResult | None, size: tuple[int, int]) -> np.ndarray:
    """A BGR panel of exactly ``size`` (h, w): the binary mask on top, the model's crops with top-3 below."""
    ph, pw = size
    panel = np.zeros((ph, pw, 3), np.uint8)
    if ph < 8 or pw < 8:
        return panel
    mask = result.debug.get("mask") if result is not None else None
    mask_h = ph * 2 // 5
    if isinstance(mask, np.ndarray) and mask.size:
        panel[:mask_h] = _fit(mask.astype(np.uint8), (mask_h, pw))
    scale = max(0.4, text_scale(ph) * 0.6)
    put_label(panel, "mask", (2, 16), WHITE, scale)

    items = reading_order(crop_items(result), result)
    area_y, area_h = mask_h + 2, ph - mask_h - 2
    if not items or area_h < 20:
        put_label(panel, "no crops", (2, mask_h + 20), WHITE, scale)
        return panel
    # Each cell: the crop enlarged (nearest neighbour, to show the pixels the model saw) over a top-3 line.
    line_px = int(22 * scale) + 4
    label_h = 2 * line_px + 2  # top-1 on the first line, the runners-up on the second
    best = None
    for cols in range(1, len(items) + 1):
        rows = -(-len(items) // cols)
        cell = min(pw // cols, area_h // rows - label_h)
        if cell >= 8 and (best is None or cell > best[1]):
            best = (cols, cell)
    if best is None:
        put_label(panel, f"{len(items)} crops", (2, mask_h + 20), WHITE, scale)
        return panel
    cols, cell = best
    cell_w = pw // cols
    for i, (crop, _box, top3) in enumerate(items):
        r, c = divmod(i, cols)
        x0, y0 = c * cell_w, area_y + r * (cell + label_h)
        if y0 + cell + label_h > ph:
            break
        side = max(4, cell - 4)  # a small gap between neighbouring crops
        img = cv2.resize(crop.astype(np.uint8).squeeze(), (side, side), interpolation=cv2.INTER_NEAREST)
        panel[y0:y0 + side, x0:x0 + side] = to_bgr(img)
        cv2.rectangle(panel, (x0, y0), (x0 + side - 1, y0 + side - 1), (90, 90, 90), 1)
        lines = top3_lines(top3)
        for k, (text, colour) in enumerate(zip(lines, (WHITE, (170, 170, 170)), strict=True)):
            ts = fit_scale(text, cell_w - 4, scale, smallest=0.25)
            cv2.putText(panel, text, (x0 + 1, y0 + cell + (k + 1) * line_px), FONT, ts, colour, 1, cv2.LINE_AA)
    return panel


class FpsMeter:
    """Frames per second from monotonic frame times (``Frame.mono``: a wall-clock step must not show as a
    stall), smoothed (EMA) so the number on screen does not dance."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self._last: float | None = None
        self.fps: float | None = None

    def tick(self, ts: float) -> float | None:
        if self._last is not None and ts > self._last:
            inst = 1.0 / (ts - self._last)
            self.fps = inst if self.fps is None else (1 - self.alpha) * self.fps + self.alpha * inst
        self._last = ts
        return self.fps
