"""Polarity of a frame (pure): dark ink on light paper, or light ink on a dark background. Two tests of the
strong local residuals - from a median background, and of thin structures (black-hat against top-hat) -
since shading gives residuals of both signs and ink of one. The segmentation's first step
(:func:`edge.segment.segment`) when ``segment.polarity`` is ``auto``.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Images shorter than this (px, shorter side: one digit's crop, MNIST's 28x28) have their polarity judged
#: by residuals from a median alone (``detect_dark_ink``).
THIN_POLARITY_MIN_PX = 100


def _dark_by_median_residuals(gray: np.ndarray) -> bool:
    """Dark ink gives strong local residuals (from a median background) of one sign; shading gives both."""
    h, w = gray.shape
    s = 128 / max(h, w)
    small = cv2.resize(gray, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    k = max(3, (max(small.shape) // 6) | 1)
    bg = cv2.medianBlur(small, k).astype(np.float32)
    r = small.astype(np.float32) - bg
    mad = float(np.median(np.abs(r))) + 1.0
    t = max(12.0, 4.0 * mad)
    dark = float(np.clip(-r - t, 0, None).sum())
    light = float(np.clip(r - t, 0, None).sum())
    return dark >= light


def _dark_by_thin_structures(gray: np.ndarray) -> bool:
    """Dark strokes answer a black-hat (closing minus the image), light ones a top-hat (the image minus
    its opening); a shadow's or a page's edge - a step, however dark on one side - answers neither."""
    h, w = gray.shape
    s = min(1.0, 256 / max(h, w))
    small = cv2.resize(gray, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    dark_r = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, k).astype(np.float32)
    light_r = cv2.morphologyEx(small, cv2.MORPH_TOPHAT, k).astype(np.float32)
    # Paper grain and sensor noise answer both alike: only what stands clearly above it counts.
    t = max(8.0, 2.0 * (float(np.median(dark_r)) + float(np.median(light_r))) + 4.0)
    return float(np.clip(dark_r - t, 0, None).sum()) >= float(np.clip(light_r - t, 0, None).sum())


def detect_dark_ink(gray: np.ndarray) -> bool:
    """True for dark ink on light paper (the usual case), False for light ink on a dark background.

    Two tests, and light ink only when both say so: residuals from a median background (robust on small
    or finely written pages, but a step answers on both of its sides: a shadow over most of a page of faint
    pencil once turned the polarity and lost every digit), and thin structures (a step answers neither
    way, but at 256 px the finest writing fades). In an image of one digit (shorter side under
    ``THIN_POLARITY_MIN_PX``) strokes and loops are as wide as any element: the first test alone decides.
    """
    if _dark_by_median_residuals(gray):
        return True
    return min(gray.shape[:2]) >= THIN_POLARITY_MIN_PX and _dark_by_thin_structures(gray)
