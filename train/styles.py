"""Writing conventions MNIST (American writers) lacks, added to its own digits.

European and Latin-American writers flag and underline their 1s, cross their 7s and hook their 9s; the
real photos (and every non-MNIST set) are full of them, and an MNIST-only model reads a flagged 1 as a 7 and
a hooked 9 as a 3. Each function adds one pen stroke, drawn anti-aliased at 4x with MNIST's stroke width, to
an MNIST digit of that class; the result goes through the usual augmentation and normalisation.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.normalise import to_mnist

SCALE = 4  # draw at 4x, then area-downsample: anti-aliased strokes like MNIST's
PAD = 8


def _canvas(img: np.ndarray) -> np.ndarray:
    a = np.zeros((28 + 2 * PAD, 28 + 2 * PAD), np.float32)
    a[PAD:PAD + 28, PAD:PAD + 28] = img.astype(np.float32) / 255.0
    return cv2.resize(a, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_LINEAR)


def _finish(big: np.ndarray) -> np.ndarray:
    small = cv2.resize(big, None, fx=1 / SCALE, fy=1 / SCALE, interpolation=cv2.INTER_AREA)
    return to_mnist(np.clip(small, 0, 1), None)  # the added stroke changes the box: refit to 20x20


def _stroke(big: np.ndarray, pts: list[tuple[float, float]], rng: np.random.Generator) -> None:
    width = int(round(SCALE * rng.uniform(1.8, 2.8)))
    p = np.array([[x * SCALE, y * SCALE] for x, y in pts], np.int32)
    cv2.polylines(big, [p], False, 1.0, width, cv2.LINE_AA)


def _ink_box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img > 60)
    return int(xs.min()) + PAD, int(ys.min()) + PAD, int(xs.max()) + PAD, int(ys.max()) + PAD


def _x_at_row(img: np.ndarray, row: int) -> float:
    xs = np.nonzero(img[row - PAD] > 60)[0]
    return float(xs.mean()) + PAD if len(xs) else float(img.shape[1] / 2 + PAD)


def flagged_one(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 with a flag from its top down to the left, and sometimes a base."""
    x0, y0, x1, y1 = _ink_box(img)
    h = y1 - y0
    tx = _x_at_row(img, y0)
    big = _canvas(img)
    length = h * rng.uniform(0.25, 0.5)
    ang = np.deg2rad(rng.uniform(20, 55))  # below the horizontal
    _stroke(big, [(tx, y0), (tx - length * np.cos(ang), y0 + length * np.sin(ang))], rng)
    if rng.random() < 0.35:
        bx = _x_at_row(img, y1)
        half = h * rng.uniform(0.18, 0.32)
        _stroke(big, [(bx - half, y1 + 0.5), (bx + half, y1 + 0.5)], rng)
    return _finish(big)


def crossed_seven(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with a short bar across its stem."""
    x0, y0, x1, y1 = _ink_box(img)
    row = int(y0 + (y1 - y0) * rng.uniform(0.45, 0.6))
    cx = _x_at_row(img, row)
    half = (x1 - x0) * rng.uniform(0.22, 0.38)
    tilt = rng.uniform(-1.5, 1.5)
    big = _canvas(img)
    _stroke(big, [(cx - half, row + tilt), (cx + half, row - tilt)], rng)
    return _finish(big)


def hooked_nine(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 9 whose tail curls back to the left at the bottom."""
    x0, y0, x1, y1 = _ink_box(img)
    w, h = x1 - x0, y1 - y0
    bx = _x_at_row(img, y1)
    reach = max(w, h * 0.5) * rng.uniform(0.35, 0.6)
    lift = h * rng.uniform(0.05, 0.25)
    pts = [(bx, y1), (bx - reach * 0.5, y1 + h * 0.06), (bx - reach, y1 - lift)]
    big = _canvas(img)
    _stroke(big, pts, rng)
    return _finish(big)


STYLES = {1: flagged_one, 7: crossed_seven, 9: hooked_nine}
#: share of each class's digits given the style in an epoch
RATE = {1: 0.3, 7: 0.2, 9: 0.12}


def add_styles(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``x`` where a share of the 1s, 7s and 9s carry those conventions."""
    out = x.copy()
    for digit, fn in STYLES.items():
        idx = np.nonzero(y == digit)[0]
        for i in idx[rng.random(len(idx)) < RATE[digit]]:
            if (x[i] > 60).any():  # a digit too faint to locate keeps its own shape
                out[i] = fn(x[i], rng)
    return out
