"""Augmentation for camera crops that keeps MNIST's convention.

Each digit is warped (rotation, shear, scale, aspect, shift), optionally elastically distorted and made
thinner or thicker, then put back into the convention with ``edge.normalise.to_mnist`` (20x20 fit, centre
of mass, stroke brought towards MNIST's, exactly as the device does), then given photometric damage
(blur, noise, contrast, background offset) of the kind a camera crop keeps after normalisation.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.normalise import to_mnist

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


def augment_digit(img_u8: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """One augmented 28x28 uint8 digit from an MNIST 28x28 uint8 digit."""
    x = img_u8.astype(np.float32) / 255.0
    if rng.random() < 0.3 * strength:
        x = _thickness(x, rng)
    x = _affine(x, rng) if rng.random() < 0.9 * strength else x
    if rng.random() < 0.35 * strength:
        x = _elastic(x, rng)
    x = to_mnist(x).astype(np.float32) / 255.0
    x = photometric(x, rng) if rng.random() < strength else x
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


def augment_batch(x: np.ndarray, rng: np.random.Generator, p: float = 0.85) -> np.ndarray:
    """Augment a fraction ``p`` of a uint8 [N,28,28] batch; the rest stay clean MNIST."""
    out = x.copy()
    for i in np.nonzero(rng.random(len(x)) < p)[0]:
        out[i] = augment_digit(x[i], rng)
    return out
