"""The 11th class, "not a digit": crops a segmenter produces that are not one digit.

Kinds: two or three touching digits seen as one crop, a wrong cut straddling two digits, stroke
fragments, specks and blobs, ruled/squared-paper line pieces and crossings, and printed symbols and
letters that do not look like digits. Every sample goes through ``edge.normalise.to_mnist`` like a real
crop. Digit-like shapes (a lone vertical bar, O, S, Z, l, ...) are deliberately left out so the class never
steals real digits.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.normalise import to_mnist

from .augment import photometric

NOT_A_DIGIT = 10
_SYMBOLS = list("xkmwAKMWXHNREF#%&@*=+-<>?!") + ["ab", "ok", "mm", "kg", "cm", "No"]
_FONTS = (cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX,
          cv2.FONT_HERSHEY_SCRIPT_COMPLEX)


def _row(digits: list[np.ndarray], rng: np.random.Generator,
         mixed: bool = False) -> tuple[np.ndarray, list[int]]:
    """Place digits side by side with small gaps or overlaps; return canvas and digit x-centres.

    ``mixed``: as people write them rather than as MNIST's boxes set them: each digit at its own size
    (60-100% of the height, standing on a common baseline give or take a few pixels) and overlapping its
    neighbour by up to 45% of the narrower one - a small 5 against a tall 7, two 0s run into each other.
    """
    crops = []
    for d in digits:
        if mixed:
            s = float(rng.uniform(0.6, 1.0))
            side = max(8, round(28 * s))
            d = cv2.resize(d, (side, side), interpolation=cv2.INTER_AREA)
        xs = np.nonzero(d.max(0) > 20)[0]
        crops.append(d[:, xs.min():xs.max() + 1] if len(xs) else d)
    width = sum(c.shape[1] for c in crops) + 40
    canvas = np.zeros((28, width), np.float32)
    x = 4
    centres = []
    for k, c in enumerate(crops):
        w = c.shape[1]
        if mixed:
            top = 28 - c.shape[0] + int(rng.integers(-2, 3))
            y0, y1 = max(0, top), min(28, top + c.shape[0])
            region = canvas[y0:y1, x:x + w]
            src = c[y0 - top:y1 - top].astype(np.float32) / 255.0
        else:
            dy = int(rng.integers(-2, 3))
            region = canvas[max(0, dy):28 + min(0, dy), x:x + w]
            src = c[max(0, -dy):28 - max(0, dy)].astype(np.float32) / 255.0
        np.maximum(region, src[: region.shape[0], : region.shape[1]], out=region)
        centres.append(x + w // 2)
        if mixed and k + 1 < len(crops):
            over = int(0.45 * min(w, crops[k + 1].shape[1]))
            x += w + int(rng.integers(-max(1, over), 3))
        else:
            x += w + int(rng.integers(-max(1, w // 4), 3))
    return canvas[:, : x + 4], centres


def touching(x: np.ndarray, rng: np.random.Generator, mixed: bool = False) -> np.ndarray:
    n = 2 if rng.random() < 0.75 else 3
    canvas, _ = _row([x[i] for i in rng.integers(0, len(x), n)], rng, mixed)
    return to_mnist(canvas)


def straddle(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A window that covers the right part of one digit and the left part of the next (a bad cut)."""
    canvas, centres = _row([x[i] for i in rng.integers(0, len(x), 2)], rng)
    a, b = centres
    # Centred on the join so each digit contributes about half: never mostly one digit.
    span = int(rng.uniform(0.9, 1.1) * (b - a))
    start = int(a + rng.uniform(-0.1, 0.12) * (b - a))
    return to_mnist(canvas[:, start:start + max(4, span)])


def fragment(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stroke fragment: a small part of a digit that is not digit-like on its own."""
    # Only digits whose parts do not look like another digit (a 4's or 8's half does).
    pool = np.nonzero(np.isin(y, [0, 2, 6]))[0]
    d = x[rng.choice(pool)].astype(np.float32) / 255.0
    ys, xs = np.nonzero(d > 0.1)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    w, h = x1 - x0, y1 - y0
    if rng.random() < 0.5:
        cut = int(w * rng.uniform(0.25, 0.45))
        part = d[y0:y1, x0:x0 + cut] if rng.random() < 0.5 else d[y0:y1, x1 - cut:x1]
    else:
        cut = int(h * rng.uniform(0.2, 0.35))
        part = d[y0:y0 + cut, x0:x1] if rng.random() < 0.5 else d[y1 - cut:y1, x0:x1]
    return to_mnist(part)


def blob(rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((40, 40), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        c = (int(rng.integers(10, 30)), int(rng.integers(10, 30)))
        axes = (int(rng.integers(2, 10)), int(rng.integers(2, 10)))
        cv2.ellipse(img, c, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    img = cv2.GaussianBlur(img, (0, 0), 1.0)
    return to_mnist(img, None)


def rule_piece(rng: np.random.Generator) -> np.ndarray:
    """Ruled- or squared-paper remains: a near-horizontal line, a crossing, a corner or a T."""
    img = np.zeros((60, 60), np.float32)
    t = int(rng.integers(1, 4))
    kind = rng.integers(0, 4)
    ang = np.deg2rad(rng.uniform(-15, 15))
    c, s = np.cos(ang), np.sin(ang)
    L = rng.uniform(20, 28)
    p0 = (int(30 - L * c), int(30 - L * s))
    p1 = (int(30 + L * c), int(30 + L * s))
    if kind == 0:
        cv2.line(img, p0, p1, 1.0, t)
    else:
        q0 = (int(30 + L * s), int(30 - L * c))
        q1 = (int(30 - L * s), int(30 + L * c))
        if kind == 1:  # crossing
            cv2.line(img, p0, p1, 1.0, t)
            cv2.line(img, q0, q1, 1.0, t)
        elif kind == 2:  # corner
            cv2.line(img, (30, 30), p1, 1.0, t)
            cv2.line(img, (30, 30), q1, 1.0, t)
        else:  # T
            cv2.line(img, p0, p1, 1.0, t)
            cv2.line(img, (30, 30), q1, 1.0, t)
    return to_mnist(img, None)


def symbol(rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((80, 140), np.uint8)
    text = _SYMBOLS[int(rng.integers(len(_SYMBOLS)))]
    font = _FONTS[int(rng.integers(len(_FONTS)))]
    cv2.putText(img, text, (10, 60), font, 1.6, 255, int(rng.integers(2, 6)), cv2.LINE_AA)
    return to_mnist(img)


def noise_texture(rng: np.random.Generator) -> np.ndarray:
    img = rng.random((24, 24)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.0))
    img = (img > np.quantile(img, rng.uniform(0.6, 0.85))).astype(np.float32)
    return to_mnist(img, None)


#: Share of the touching digits drawn ``mixed`` (see ``_row``) unless ``make_junk`` is told otherwise.
TOUCHING_MIXED = 0.0


def make_junk(n: int, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
              touching_mixed: float = TOUCHING_MIXED) -> np.ndarray:
    """``n`` not-a-digit crops, uint8 [n,28,28], from digits ``x`` (labels ``y``); ``touching_mixed`` of the
    touching digits at their own sizes and overlapping more (``_row``)."""
    makers = [
        (0.30, lambda: touching(x, rng, touching_mixed > 0 and rng.random() < touching_mixed)),
        (0.20, lambda: straddle(x, y, rng)),
        (0.12, lambda: fragment(x, y, rng)),
        (0.10, lambda: blob(rng)),
        (0.13, lambda: rule_piece(rng)),
        (0.10, lambda: symbol(rng)),
        (0.05, lambda: noise_texture(rng)),
    ]
    weights = np.array([w for w, _ in makers])
    picks = rng.choice(len(makers), n, p=weights / weights.sum())
    out = np.zeros((n, 28, 28), np.uint8)
    for i, k in enumerate(picks):
        img = makers[k][1]().astype(np.float32) / 255.0
        out[i] = np.clip(photometric(img, rng) * 255 + 0.5, 0, 255).astype(np.uint8)
    return out
