"""Augmentation for camera crops that keeps MNIST's convention.

Each digit is warped (rotation, shear, scale, aspect, shift), optionally elastically distorted and made
thinner or thicker, sometimes stretched towards a square box (scanners that fill their frame) and sometimes
seen as a small 10-16 px crop, often hard-thresholded (low-resolution, binarised camera crops and scans),
then put back into the convention with ``edge.normalise.to_mnist`` (20x20 fit, centre
of mass, stroke brought towards MNIST's, exactly as the device does), then given photometric damage
(blur, noise, contrast, background offset) of the kind a camera crop keeps after normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.normalise import BOX, MNIST_STROKE, ink_bbox, stroke_width, to_mnist

PAD = 40  # work canvas: room for rotation and shear without clipping


def _affine(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    canvas = np.zeros((PAD, PAD), np.float32)
    o = (PAD - 28) // 2
    canvas[o:o + 28, o:o + 28] = img
    angle = rng.uniform(-15, 15)
    shear = rng.uniform(-0.3, 0.3)
    sx = rng.uniform(0.8, 1.15)
    sy = sx * rng.uniform(0.8, 1.2)
    c = PAD / 2.0
    rot = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    m = np.array([[sx, shear * sx, 0], [0, sy, 0]], np.float32)
    # compose: translate to centre, scale+shear, rotate, translate back
    t1 = np.array([[1, 0, -c], [0, 1, -c], [0, 0, 1]], np.float32)
    t2 = np.array([[1, 0, c], [0, 1, c], [0, 0, 1]], np.float32)
    full = np.vstack([rot, [0, 0, 1]]) @ t2 @ np.vstack([m, [0, 0, 1]]) @ t1
    return cv2.warpAffine(canvas, full[:2].astype(np.float32), (PAD, PAD), flags=cv2.INTER_LINEAR)


def _elastic(img: np.ndarray, rng: np.random.Generator, alpha: float = 6.0, sigma: float = 4.0) -> np.ndarray:
    h, w = img.shape
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma) * alpha
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + dx, gy + dy, cv2.INTER_LINEAR, borderValue=0)


def _thickness(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Work at 2x so a one-pixel change is a half-pixel change at 28x28.
    big = cv2.resize(img, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    k = int(rng.integers(1, 4))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 1, k + 1))
    big = cv2.dilate(big, kernel) if rng.random() < 0.6 else cv2.erode(big, kernel)
    return cv2.resize(big, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


def _ink_crop(img: np.ndarray) -> np.ndarray:
    box = ink_bbox(img, 0.05)
    if box is None:
        return img
    x0, y0, x1, y1 = box
    return img[y0:y1, x0:x1]


def fill_box(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch the digit towards a square box, as scanners that fill their frame do (Semeion fills 16x16)."""
    a = _ink_crop(img)
    h, w = a.shape
    side = max(h, w)
    k = rng.uniform(0.75, 1.0)  # how far towards the square
    # a lone bar (a plain 1) stretched to a square would be a block no scanner makes: at most 2.5x wider
    nw = min(round(w + k * (side - w)), round(2.5 * w))
    nh = min(round(h + k * (side - h)), round(2.5 * h))
    return cv2.resize(a, (max(1, nw), max(1, nh)), interpolation=cv2.INTER_LINEAR)


def _edge_stroke(view: np.ndarray) -> float:
    """Thickness (px) of the stroke along row 0 of ``view``: the shortest run of ink from that row inwards
    over the columns where row 0 holds ink (0 when none does) - at the top of a curve the runs beside the
    apex cut the stroke obliquely and are longer than it is thick."""
    ink = view > 0.5 * float(view.max() or 1.0)
    cols = np.flatnonzero(ink[0])
    if cols.size == 0:
        return 0.0
    # the first row without ink below row 0 in each of those columns
    runs = np.argmin(np.vstack([ink[:, cols], np.zeros((1, cols.size), bool)]), axis=0)
    return float(runs.min())


def clip_edges(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut the outer part of the strokes off at the ink box's top and/or bottom (now and then a side), as a
    scanner's box that the digit was stretched to fill does (USPS: nine digits in ten touch the top and the
    bottom of their 16x16 box, their outermost strokes cut flat) and a tight camera crop can. At most 60% of
    the thickness of the stroke along that edge, so no stroke disappears (a 7 keeps its bar); a cut that
    opens or closes a loop is undone."""
    a = orig = _ink_crop(img)
    if min(a.shape) < 6:
        return img
    typical = stroke_width(a)
    edges = (("top",), ("bottom",), ("top", "bottom"))[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
    if rng.random() < 0.15:
        edges = edges + (("left", "right")[int(rng.integers(2))],)
    a = a.copy()
    for edge in edges:
        # Whole pixels removed, the next one dimmed by the fraction left: a cut between pixels.
        view = {"top": a, "bottom": a[::-1], "left": a.T, "right": a.T[::-1]}[edge]
        # the stroke's run inwards, but never more than the digit's stroke width: a stem ending at the
        # edge (a 1's tip, a 7's bar end seen from the side) runs along the cut, not across it
        width = min(_edge_stroke(view), typical)
        if width <= 0:
            continue
        cut = rng.uniform(0.25, 0.6) * width
        whole, frac = int(cut), cut - int(cut)
        view[:whole] = 0.0
        view[whole] *= 1.0 - frac
    out = _ink_crop(a)
    return out if holes(out) == holes(orig) else img


def holes(a: np.ndarray) -> int:
    """Number of enclosed background regions (the loops of a 0, 6, 8, 9) of the ink above half its peak."""
    bg = np.pad((a < 0.5 * float(a.max() or 1.0)).astype(np.uint8), 1, constant_values=1)
    n, _ = cv2.connectedComponents(bg, connectivity=4)
    return n - 2  # minus the label 0 (ink) and the outer background


def low_resolution(img: np.ndarray, rng: np.random.Generator, binarise: float) -> np.ndarray:
    """The digit as a small, possibly binarised crop: fitted to 10-16 px (the reader's smallest digit is 10), thresholded with probability
    ``binarise`` at a random level, then brought back up either as the device does (to_mnist's own
    linear upsampling) or as a reader of low-resolution sets does (cubic upsampling and a light blur)."""
    a = orig = _ink_crop(img)
    h, w = a.shape
    n = int(rng.integers(10, 17))
    s = n / max(h, w)
    a = cv2.resize(a, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if rng.random() < binarise:
        t = rng.uniform(0.3, 0.65) * float(a.max() or 1.0)
        b = (a >= t).astype(np.float32)
        # a threshold that eats most of the stroke makes a different shape, not a binarised digit
        a = b if b.sum() >= 0.6 * (a >= 0.5 * float(a.max() or 1.0)).sum() else a
    if rng.random() < 0.5:
        up = int(rng.integers(2, 5))
        a = cv2.resize(a, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC)
        a = cv2.GaussianBlur(a, (0, 0), up * rng.uniform(0.0, 0.5) + 1e-3)
    a = np.clip(a, 0.0, 1.0)
    # a loop closed (or opened) by the low resolution makes another digit: keep the sharp one then
    return a if holes(a) == holes(orig) else orig


def pen_stroke(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The digit redrawn as a pen of another width draws it, seen at 20-48 px: the stroke thinned or
    thickened at 4x, then given a pen's hard edge (a steep ramp at a random level) and downsampled.
    MNIST's strokes vary in darkness; a thin pen keeps only their darker core, so a faint joint (a 9's
    loop, a 7's short flag) can open: the shapes a fine liner or a harsh threshold gives a camera crop."""
    a = _ink_crop(img)
    h, w = a.shape
    f = 4
    big = np.clip(cv2.resize(a, (w * f, h * f), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
    natural = MNIST_STROKE / BOX * h * f  # MNIST's stroke, for a digit this tall
    delta = rng.uniform(0.05, 0.14) * h * f - natural
    k = int(round(abs(delta)))
    if k >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 1, k + 1))
        big = cv2.dilate(big, kernel) if delta > 0 else cv2.erode(big, kernel)
    big = np.clip((big - rng.uniform(0.25, 0.5)) / 0.4, 0.0, 1.0)
    out_h = int(rng.integers(20, 49))
    small = cv2.resize(big, (max(1, round(w * out_h / h)), out_h), interpolation=cv2.INTER_AREA)
    top = float(small.max())
    # a pen too thin for the digit leaves specks, not a digit
    if top < 0.5 or (small > 0.5 * top).sum() < 0.3 * out_h:
        return img
    return np.clip(small / top, 0.0, 1.0)  # the reader stretches a crop's ink to full strength


def photometric(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, noise and contrast damage on a normalised 28x28 float image (0..1)."""
    if rng.random() < 0.25:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 0.9))
    if rng.random() < 0.3:
        x = x * rng.uniform(0.55, 1.0)
    if rng.random() < 0.2:
        x = x + rng.uniform(0.0, 0.12)
    if rng.random() < 0.25:
        x = x + rng.normal(0, rng.uniform(0.02, 0.08), x.shape).astype(np.float32)
    return np.clip(x, 0.0, 1.0)


@dataclass(frozen=True)
class Damage:
    """Probabilities of the scanner-like damage: a digit stretched towards a square box (``fill``), its outer
    strokes cut at the box's edge (``clip``), seen as a 10-16 px crop and brought back up (``lowres``), and
    the share of those crops hard-thresholded (``binarise``); redrawn with another pen (``pen``). Each field
    is a ``python -m train`` option of the same name, with these defaults; ``python -m convert`` calibrates
    with the settings the training summary records."""

    lowres: float = 0.3
    binarise: float = 0.5
    fill: float = 0.25
    pen: float = 0.0
    #: share of digits whose outermost strokes are cut at the box's edge (``clip_edges``)
    clip: float = 0.0


DEFAULT_DAMAGE = Damage()


def augment_digit(img_u8: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
                  damage: Damage = DEFAULT_DAMAGE) -> np.ndarray:
    """One augmented 28x28 uint8 digit from an MNIST 28x28 uint8 digit."""
    x = img_u8.astype(np.float32) / 255.0
    if rng.random() < 0.3 * strength:
        x = _thickness(x, rng)
    x = _affine(x, rng) if rng.random() < 0.9 * strength else x
    if rng.random() < 0.35 * strength:
        x = _elastic(x, rng)
    if rng.random() < damage.pen * strength:
        x = pen_stroke(x, rng)
    if rng.random() < damage.fill * strength:
        x = fill_box(x, rng)
    if damage.clip and rng.random() < damage.clip * strength:
        x = clip_edges(x, rng)
    if rng.random() < damage.lowres * strength:
        x = low_resolution(x, rng, damage.binarise)
    x = to_mnist(x).astype(np.float32) / 255.0
    x = photometric(x, rng) if rng.random() < strength else x
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def augment_batch(x: np.ndarray, rng: np.random.Generator, p: float = 0.85,
                  damage: Damage = DEFAULT_DAMAGE) -> np.ndarray:
    """Augment a fraction ``p`` of a uint8 [N,28,28] batch; the rest stay clean MNIST."""
    out = x.copy()
    for i in np.nonzero(rng.random(len(x)) < p)[0]:
        out[i] = augment_digit(x[i], rng, damage=damage)
    return out
