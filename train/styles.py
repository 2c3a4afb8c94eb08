"""Writing conventions MNIST (American writers) lacks, added to its own digits.

European and Latin-American writers flag and underline their 1s, cross their 7s and hook their 9s; the
real photos (and every non-MNIST set) are full of them, and an MNIST-only model reads a flagged 1 as a 7 and
a hooked 9 as a 3. Each function adds one pen stroke (or bends one) to an MNIST digit of that class, drawn
anti-aliased at 4x with MNIST's stroke width, and refits the result with ``edge.normalise.to_mnist`` in one
area downsampling, so the styled digits are exactly as sharp as MNIST's own (a blurrier styled class would
teach the model to read blur, not shape); the result then goes through the usual augmentation.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.normalise import to_mnist

SCALE = 4  # draw at 4x, then area-downsample once: anti-aliased strokes like MNIST's
PAD = 8


def _canvas(img: np.ndarray) -> np.ndarray:
    a = np.zeros((28 + 2 * PAD, 28 + 2 * PAD), np.float32)
    a[PAD:PAD + 28, PAD:PAD + 28] = img.astype(np.float32) / 255.0
    return cv2.resize(a, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_LINEAR)


def _finish(big: np.ndarray) -> np.ndarray:
    return to_mnist(np.clip(big, 0, 1))  # the added stroke changes the box: refit to 20x20


def _stroke(big: np.ndarray, pts: list[tuple[float, float]], rng: np.random.Generator, width: float) -> None:
    p = np.array([[x * SCALE * 16, y * SCALE * 16] for x, y in pts], np.int32)
    cv2.polylines(big, [p], False, 1.0, max(1, int(round(SCALE * width))), cv2.LINE_AA, shift=4)


def _width(img: np.ndarray) -> float:
    """The digit's own stroke width (2*area/perimeter at half ink), so the added stroke matches it."""
    from edge.normalise import stroke_width

    w = stroke_width(img.astype(np.float32) / 255.0)
    return float(np.clip(w if w > 0 else 2.3, 1.5, 3.5))


def _ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img > 60)
    return int(xs.min()) + PAD, int(ys.min()) + PAD, int(xs.max()) + PAD, int(ys.max()) + PAD


def _x_at_row(img: np.ndarray, row: int) -> float:
    xs = np.nonzero(img[min(max(row - PAD, 0), 27)] > 60)[0]
    return float(xs.mean()) + PAD if len(xs) else float(img.shape[1] / 2 + PAD)


def _curve(p0, p1, bulge: float, n: int = 8) -> list[tuple[float, float]]:
    """Points on a gentle arc from p0 to p1, bulging ``bulge`` (fraction of the length) to the left of travel."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    nx, ny = dy, -dx  # left normal (image coordinates)
    t = np.linspace(0, 1, n)
    b = bulge * 4 * t * (1 - t)
    return [(x0 + dx * s + nx * c, y0 + dy * s + ny * c) for s, c in zip(t, b, strict=True)]


def flagged_one(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 with a flag (an up-stroke) from its top down to the left, and sometimes a base."""
    x0, y0, x1, y1 = _ink_box(img)
    h = y1 - y0
    tx = _x_at_row(img, y0 + 1)
    w = _width(img)
    big = _canvas(img)
    length = h * rng.uniform(0.25, 0.65)
    ang = np.deg2rad(rng.uniform(30, 60))  # below the horizontal: a 7's bar is level
    end = (tx - length * np.cos(ang), y0 + length * np.sin(ang))
    _stroke(big, _curve((tx, y0 + 0.5), end, rng.uniform(-0.12, 0.12)), rng, w * rng.uniform(0.8, 1.1))
    if rng.random() < 0.3:
        bx = _x_at_row(img, y1 - 1)
        half = h * rng.uniform(0.18, 0.32)
        _stroke(big, [(bx - half, y1 + 0.5), (bx + half, y1 + 0.5)], rng, w * rng.uniform(0.8, 1.1))
    return _finish(big)


def crossed_seven(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with a short bar across its stem."""
    x0, y0, x1, y1 = _ink_box(img)
    row = int(y0 + (y1 - y0) * rng.uniform(0.4, 0.6))
    cx = _x_at_row(img, row)
    half = (x1 - x0) * rng.uniform(0.22, 0.4)
    tilt = rng.uniform(-1.5, 1.5)
    big = _canvas(img)
    _stroke(big, [(cx - half, row + tilt), (cx + half, row - tilt)], rng, _width(img) * rng.uniform(0.8, 1.1))
    return _finish(big)


def hooked_nine(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 9 whose stem bows to the right and whose tail curls back to the left at the bottom."""
    x0, y0, x1, y1 = _ink_box(img)
    w, h = x1 - x0, y1 - y0
    big = _canvas(img)
    if rng.random() < 0.6:
        # bow the lower part of the stem: rows below the loop shift right by a smooth bump
        H = big.shape[0]
        ys = np.arange(H, dtype=np.float32) / SCALE
        start = y0 + h * rng.uniform(0.45, 0.6)
        t = np.clip((ys - start) / max(y1 - start, 1.0), 0, 1)
        shift = (h * rng.uniform(0.08, 0.3) * np.sin(np.pi * t) * SCALE).astype(np.float32)
        gx, gy = np.meshgrid(np.arange(H, dtype=np.float32), np.arange(H, dtype=np.float32))
        big = cv2.remap(big, gx - shift[:, None], gy, cv2.INTER_LINEAR, borderValue=0)
    bx = _x_at_row(img, y1 - 1)
    reach = max(w, h * 0.5) * rng.uniform(0.35, 0.9)
    lift = h * rng.uniform(0.0, 0.35)
    pts = [(bx, y1 - 0.5), (bx - reach * 0.4, y1 + h * 0.05), (bx - reach * 0.8, y1 - lift * 0.5),
           (bx - reach, y1 - lift)]
    _stroke(big, pts, rng, _width(img) * rng.uniform(0.8, 1.1))
    return _finish(big)


STYLES = {1: flagged_one, 7: crossed_seven, 9: hooked_nine}
#: share of each class's digits given the style in an epoch
RATE = {1: 0.2, 7: 0.3, 9: 0.2}


def add_styles(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``x`` where a share of the 1s, 7s and 9s carry those conventions."""
    out = x.copy()
    for digit, fn in STYLES.items():
        idx = np.nonzero(y == digit)[0]
        for i in idx[rng.random(len(idx)) < RATE[digit]]:
            if (x[i] > 60).any():  # a digit too faint to locate keeps its own shape
                out[i] = fn(x[i], rng)
    return out
