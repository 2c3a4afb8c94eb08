"""Synthetic paper pages with known digits, for the segmentation and reader tests.

Digits come from the MNIST fixture (real handwriting), are scaled up and printed as ink onto a page with
uneven light; everything returned is known exactly (positions, values), so tests can check the answers.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

FIXTURE = Path(__file__).parent / "fixtures" / "mnist_sample.npz"


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    d = np.load(FIXTURE)
    return d["x"], d["y"].astype(int)


def digit_ink(img28: np.ndarray, height: int) -> np.ndarray:
    """An MNIST digit as an ink map (float 0..1) cropped to its ink and scaled to ``height`` px tall."""
    ys, xs = np.nonzero(img28 > 30)
    crop = img28[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255.0
    s = height / crop.shape[0]
    w = max(1, round(crop.shape[1] * s))
    return np.clip(cv2.resize(crop, (w, height), interpolation=cv2.INTER_CUBIC), 0, 1)


def paper(h: int, w: int, shade: float = 0.35, seed: int = 0) -> np.ndarray:
    """Float paper brightness 0..255 with a diagonal light fall-off (``shade`` = darkest loss) and noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 1.0 - shade * (xx / w * 0.6 + yy / h * 0.4)
    rng = np.random.default_rng(seed)
    return 235.0 * light + rng.normal(0, 2.0, (h, w)).astype(np.float32)


def compose(inks: list[np.ndarray], positions: list[tuple[int, int]], size: tuple[int, int],
            dark_ink: bool = True, shade: float = 0.35, seed: int = 0) -> np.ndarray:
    """Print ink maps at (x, y) top-left positions onto a page; returns uint8 gray."""
    h, w = size
    page = paper(h, w, shade, seed)
    cover = np.zeros((h, w), np.float32)
    for ink, (x, y) in zip(inks, positions, strict=False):
        ih, iw = ink.shape
        cover[y:y + ih, x:x + iw] = np.maximum(cover[y:y + ih, x:x + iw], ink)
    # Light ink is chalk on a dark board: dark background, bright strokes, still unevenly lit.
    out = page * (1.0 - 0.85 * cover) if dark_ink else (255.0 - page) * 0.5 + cover * 170.0 * (page / 235.0)
    return np.clip(out, 0, 255).astype(np.uint8)


def line_of_digits(imgs: list[np.ndarray], height: int = 48, gap: int = 20, margin: int = 40,
                   tilt_deg: float = 0.0, size: tuple[int, int] | None = None, y0: int | None = None,
                   gaps: list[int] | None = None) -> tuple[list[np.ndarray], list[tuple[int, int]], tuple[int, int]]:
    """Lay digits out on one (optionally tilted) line; returns inks, top-left positions and page size."""
    inks = [digit_ink(im, height) for im in imgs]
    xs, x = [], margin
    for i, ink in enumerate(inks):
        xs.append(x)
        x += ink.shape[1] + (gaps[i] if gaps and i < len(gaps) else gap)
    total_w = x + margin
    t = math.tan(math.radians(tilt_deg))
    drop = int(abs(t) * total_w)
    if size is None:
        size = (height + 2 * margin + drop, total_w)
    base = y0 if y0 is not None else margin + (drop if t < 0 else 0)
    pos = [(xi, int(base + t * (xi + ink.shape[1] / 2) - ink.shape[0] / 2 + height / 2))
           for xi, ink in zip(xs, inks, strict=False)]
    return inks, pos, size

#: The shipped model; tests that need it skip while it has not been built.
ROOT_MODEL = Path(__file__).resolve().parents[1] / "models" / "digits_int8.tflite"


def printed_page(h: int = 480, w: int = 640) -> np.ndarray:
    """A page of small printed text (digits and letters): ~2,000 ink components, far more than any
    handwritten page - what the reader must skip as too cluttered (it once took 20 s and 3.8 GB)."""
    img = np.full((h, w), 235, np.uint8)
    rng = np.random.default_rng(5)
    for y in range(12, h, 11):
        line = "".join(rng.choice(list("0123456789 abcdefgh"), size=110))
        cv2.putText(img, line, (4, y), cv2.FONT_HERSHEY_PLAIN, 0.6, 30, 1, cv2.LINE_AA)
    return img
