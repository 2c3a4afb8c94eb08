"""Bring one digit crop to MNIST's convention: the classifier's input.

MNIST digits are white ink on black, anti-aliased (grey levels kept), fitted into a 20x20 box by the longest
side, then placed in 28x28 so that the centre of mass sits at the centre. Camera crops only read well when
they match that, including the stroke thickness: a thin pen seen from afar shrinks to a hairline at 20 px.
All functions here are pure: arrays in, arrays out.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Mean stroke width of MNIST digits, in pixels of the 28x28 image (2*area/perimeter of the ink at 50%, measured on the test set).
MNIST_STROKE = 2.3
BOX = 20
SIZE = 28


#: A float ink map whose peak is above this is read as 0..255 rather than 0..1.
FLOAT_INK_MAX = 1.5

#: Crops longer than this (px, cropped to their ink) are max-pooled by a whole factor to at most this before
#: their stroke is fixed. The fix dilates with a kernel that grows with the crop, so its cost grows with the
#: fourth power of the crop's size: a long thin line 750 px tall (a refined 720p frame) cost half a second,
#: and a frame of twenty such lines 20 s - 75 s on a Pi, past the daemon's watchdog. Max-pooling keeps a thin
#: stroke's full ink (an area average would fade it), and the 20x20 box is sampled from far fewer pixels.
MAX_FIX_SIDE = 256


def ink_from_gray(gray: np.ndarray, dark_ink: bool = True) -> np.ndarray:
    """Turn a gray crop into an ink map (float32 0..1, ink high), stretching its contrast.

    ``dark_ink`` is the usual pen on paper; set it False for light ink on a dark background.
    """
    g = gray.astype(np.float32)
    if dark_ink:
        g = 255.0 - g
    lo, hi = np.percentile(g, 5), float(g.max())
    if hi - lo < 1e-3:
        return np.zeros_like(g)
    return np.clip((g - lo) / (hi - lo), 0.0, 1.0)


def stroke_width(ink: np.ndarray, level: float = 0.5) -> float:
    """Estimate stroke width as 2*area/perimeter of the ink above ``level`` (0 when there is none)."""
    mask = (ink >= level * float(ink.max() or 1.0)).astype(np.uint8)
    area = float(cv2.countNonZero(mask))
    if area == 0:
        return 0.0
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    if perimeter <= 0:
        return 0.0
    return 2.0 * area / perimeter


def ink_bbox(ink: np.ndarray, level: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, of the pixels above ``level``; None when there are none."""
    # OpenCV's bounding box of a mask: a tenth of np.nonzero's cost, and it is taken twice per crop.
    x, y, w, h = cv2.boundingRect((ink > level).view(np.uint8))
    if w == 0:
        return None
    return x, y, x + w, y + h


def to_mnist(ink: np.ndarray, target_stroke: float | None = MNIST_STROKE) -> np.ndarray:
    """Normalise an ink map (ink high; uint8 0..255 or float 0..1) to a 28x28 uint8 MNIST-style image.

    Steps: crop to the ink's bounding box; adjust the stroke so that, once scaled, it is about
    ``target_stroke`` px wide (None skips this); fit into 20x20 by the longest side keeping grey levels;
    paste into 28x28 with the centre of mass at the centre. An empty input gives an all-black image.
    """
    a = ink.astype(np.float32)
    # Integer ink is 0..255. Float ink is 0..1, but resampling can leave a peak a hair above 1.0: only a
    # float map clearly beyond 1 is taken as 0..255 (read as 0..255, a 1.0000001 peak left a blank image).
    if ink.dtype.kind in "ui" or (a.size and a.max() > FLOAT_INK_MAX):
        a = a / 255.0
    a = np.minimum(a, 1.0)
    box = ink_bbox(a, 0.1)
    if box is None:
        return np.zeros((SIZE, SIZE), np.uint8)
    x0, y0, x1, y1 = box
    a = a[y0:y1, x0:x1]
    h, w = a.shape
    scale = BOX / max(h, w)
    if target_stroke is not None:
        if max(h, w) > MAX_FIX_SIDE:
            a = max_pool(a, -(-max(h, w) // MAX_FIX_SIDE))
            h, w = a.shape
            scale = BOX / max(h, w)
        a = _fix_stroke(a, scale, target_stroke)
        box = ink_bbox(a, 0.1)
        if box is not None:
            x0, y0, x1, y1 = box
            a = a[y0:y1, x0:x1]
            h, w = a.shape
            scale = BOX / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(a, (nw, nh), interpolation=interp)
    return _centre_by_mass(small)


def max_pool(a: np.ndarray, f: int) -> np.ndarray:
    """``a`` shrunk by the whole factor ``f``: each output pixel the largest of its f x f block (the blocks
    at the far edges may be smaller)."""
    if f <= 1:
        return a
    # A rectangle's dilation is separable in OpenCV; anchored at its corner, pixel (y, x) holds the block's
    # maximum (numpy's max over a reshaped array costs ten times as much).
    return cv2.dilate(a, np.ones((f, f), np.uint8), anchor=(0, 0))[::f, ::f]


def _fix_stroke(a: np.ndarray, scale: float, target: float) -> np.ndarray:
    """Dilate or erode (grey morphology) so the stroke, after scaling, is close to ``target`` px."""
    width = stroke_width(a)
    if width <= 0:
        return a
    want_src = target / scale  # desired stroke width in source pixels
    delta = want_src - width
    k = int(round(abs(delta)))
    if k < 1 or abs(delta) < 0.25 * want_src:
        return a
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 1, k + 1)) if k > 1 else np.ones((2, 2), np.uint8)
    if delta > 0:
        pad = k + 1
        a = cv2.copyMakeBorder(a, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        return cv2.dilate(a, kernel)
    # Thinning a stroke must never erase it: keep the erosion only if most of the ink survives.
    eroded = cv2.erode(a, kernel)
    if eroded.max() >= 0.5 * a.max() and np.count_nonzero(eroded > 0.5) >= 0.25 * np.count_nonzero(a > 0.5):
        return eroded
    return a


def _centre_by_mass(small: np.ndarray) -> np.ndarray:
    h, w = small.shape
    m = cv2.moments(small)
    if m["m00"] > 1e-6:
        cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    else:
        cx, cy = w / 2.0, h / 2.0
    # Translate so the centre of mass lands on the image centre (14, 14) with sub-pixel accuracy.
    # Whole-pixel shift as MNIST did: a sub-pixel one would blur the strokes.
    # MNIST puts the centre of mass at pixel index 14 (measured: 14.01, 13.98 on the test set).
    tx, ty = round(SIZE / 2.0 - cx), round(SIZE / 2.0 - cy)
    mat = np.array([[1, 0, tx], [0, 1, ty]], np.float32)
    out = cv2.warpAffine(small, mat, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def batch_to_mnist(inks: list[np.ndarray], target_stroke: float | None = MNIST_STROKE) -> np.ndarray:
    """Normalise several ink maps into one (N, 28, 28) uint8 batch."""
    if not inks:
        return np.zeros((0, SIZE, SIZE), np.uint8)
    return np.stack([to_mnist(i, target_stroke) for i in inks])
