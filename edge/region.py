"""Reading only part of the picture: ``source.region``.

A camera aimed at a sheet on a wall also sees the wall calendar beside it, a notice or a word written in
the margin, and a reader of numbers reads letters as digits (tools/bench_words.py measures how often).
Meter readers solve this by cutting the digits' region out of the picture before reading it; here the
region is ``[x, y, w, h]`` in fractions of the (turned) frame, so it stays right when the capture size
changes. Only that part is segmented, gated and read; boxes in events stay in the whole frame's pixels, and
the overlay, the window and the web page show the whole frame with the region outlined, so the camera can
still be aimed. Pure functions on arrays and results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from edge.types import Box, FrameResult, Number

#: the smallest side (px) a region is given on any frame, so the reader always has something to look at
MIN_SIDE = 2


def region_pixels(shape: Sequence[int], region: Sequence[float] | None) -> Box | None:
    """The region ``(x, y, w, h)`` (fractions of the frame) as a box in pixels of a frame of ``shape``;
    None when it is the whole frame (or no region is set).

    Edges are rounded to the nearest pixel and kept inside the frame; a region thinner than ``MIN_SIDE``
    pixels on a small frame is widened to that, towards the inside.
    """
    if region is None:
        return None
    fh, fw = int(shape[0]), int(shape[1])
    if fw < MIN_SIDE or fh < MIN_SIDE:
        return None
    fx, fy, rw, rh = (float(v) for v in region)

    def span(start: float, size: float, total: int) -> tuple[int, int]:
        a = min(max(0, round(start * total)), total - MIN_SIDE)
        b = min(total, max(a + MIN_SIDE, round((start + size) * total)))
        return a, b

    x0, x1 = span(fx, rw, fw)
    y0, y1 = span(fy, rh, fh)
    if (x0, y0, x1, y1) == (0, 0, fw, fh):
        return None
    return x0, y0, x1 - x0, y1 - y0


def cut(image: np.ndarray, box: Box | None) -> np.ndarray:
    """The part of ``image`` inside ``box`` (a view, no copy); the image itself when ``box`` is None."""
    if box is None:
        return image
    x, y, w, h = box
    return image[y:y + h, x:x + w]


def _moved(box: Box, dx: int, dy: int) -> Box:
    return int(box[0]) + dx, int(box[1]) + dy, int(box[2]), int(box[3])


def _moved_number(n: Number, dx: int, dy: int) -> Number:
    digits = tuple(dataclasses.replace(d, box=_moved(d.box, dx, dy)) for d in n.digits)
    return dataclasses.replace(n, box=_moved(n.box, dx, dy), digits=digits)


def to_frame(result: FrameResult, box: Box | None, shape: Sequence[int]) -> FrameResult:
    """A result read inside ``box`` of a frame of ``shape``, in the whole frame's pixels: a new result (the
    change gate hands out the same result again and again, so it is never changed in place)."""
    if box is None:
        return result
    x, y, w, h = box
    debug = dict(result.debug)
    mask = debug.get("mask")
    if isinstance(mask, np.ndarray) and mask.shape[:2] == (h, w):
        whole = np.zeros((int(shape[0]), int(shape[1]), *mask.shape[2:]), mask.dtype)
        whole[y:y + h, x:x + w] = mask
        debug["mask"] = whole
    crops = debug.get("crops")
    if isinstance(crops, list):
        debug["crops"] = [(_moved(item[0], x, y), *item[1:])
                          if isinstance(item, tuple) and item and isinstance(item[0], tuple) and len(item[0]) == 4
                          else item for item in crops]
    return dataclasses.replace(result, numbers=[_moved_number(n, x, y) for n in result.numbers], debug=debug,
                               timings=dict(result.timings), region=box)


def describe_region(region: Sequence[float] | None) -> str:
    """``"reading only x 25-75%, y 10-60% of the frame"`` or "" (for the start-up log line)."""
    if region is None:
        return ""
    x, y, w, h = (float(v) for v in region)
    return (f"reading only x {100 * x:g}-{100 * (x + w):g}%, y {100 * y:g}-{100 * (y + h):g}% of the frame")
