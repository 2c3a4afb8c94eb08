"""Group read digits into text lines and numbers, in reading order, on a page tilted up to about 15 degrees.

The line direction is estimated from the digits themselves: each digit is linked to its nearest
neighbour to the right (within a cone around the horizontal), and the median link angle is the page's
tilt; a second pass does the same within a cone around that first answer, so a page tilted near the limit
is not measured short. Digit centres are then rotated upright, cut into lines where their vertical spacing jumps, and each
line is cut into numbers where a gap is clearly wider than that line's usual gap between digits.
Pure functions; boxes are ``(x, y, w, h)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from edge.types import Box, Digit, Number

log = logging.getLogger(__name__)


@dataclass
class NumbersParams:
    """Parameters of number assembly (config section ``numbers:``). Sizes are in digit heights."""

    #: Largest page tilt (degrees) the line direction may take; links steeper than this are ignored.
    max_tilt_deg: float = 20.0
    #: Two digits may be neighbours on a line when their centres are at most this many heights apart.
    link_distance: float = 4.0
    #: A new line starts where rotated centres are more than this many heights apart vertically.
    line_gap: float = 0.55
    #: Within a line, a gap splits numbers when it is this many times the line's median gap ...
    split_ratio: float = 2.2
    #: ... and at least this many digit heights wide (so tight writing with one wider gap stays together).
    split_min_gap: float = 0.6
    #: A gap wider than this many heights always splits (the only rule with one or two gaps to compare).
    split_abs_gap: float = 1.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_tilt_deg <= 45.0:
            raise ValueError("max_tilt_deg must be between 0 and 45")
        for name in ("link_distance", "line_gap", "split_ratio", "split_min_gap", "split_abs_gap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


def _centres(digits: list[Digit]) -> np.ndarray:
    return np.array([[d.box[0] + d.box[2] / 2.0, d.box[1] + d.box[3] / 2.0] for d in digits], np.float64)


#: Digits whose links are worked out together in ``estimate_tilt`` (memory ~ TILT_BLOCK x digits).
TILT_BLOCK = 256


def estimate_tilt(digits: list[Digit], p: NumbersParams | None = None) -> float:
    """Line direction in radians (positive = line goes down to the right in image coordinates).

    Two passes: the links within ``max_tilt_deg`` of the horizontal give a first direction, then the links
    within ``max_tilt_deg`` of that direction give the answer (at most ``max_tilt_deg``). On a page tilted
    near the limit, a digit's link to its neighbour is steeper than the limit about half the time (writing
    is not on a ruler), and the one pass took the next nearest digit instead, often on the line above: the
    tilt came out several degrees short and close lines ran into each other.
    """
    p = p or NumbersParams()
    if len(digits) < 2:
        return 0.0
    c = _centres(digits)
    hs = np.array([d.box[3] for d in digits], np.float64)
    h = float(np.median(hs))
    limit = math.radians(max(p.max_tilt_deg, 1.0))
    first = _link_direction(c, h, 0.0, limit, p)
    if first is None:
        return 0.0
    second = _link_direction(c, h, first, limit, p)
    return float(np.clip(first if second is None else second, -limit, limit))


def _link_direction(c: np.ndarray, h: float, centre: float, half: float, p: NumbersParams) -> float | None:
    """Weighted median direction of each digit's link to its nearest neighbour ahead within ``half`` of
    ``centre`` (radians) and ``link_distance`` heights; None when no digit has one."""
    # Each digit's nearest neighbour to the right within the cone, a block of digits against every
    # other at a time (row i: the links from digit i): all at once held n^2 arrays, 640 MB for 4,000 digits.
    angle_parts, weight_parts = [], []
    for start in range(0, len(c), TILT_BLOCK):
        d = c[None, :, :] - c[start:start + TILT_BLOCK, None, :]
        dist = np.hypot(d[..., 0], d[..., 1])
        ang = np.arctan2(d[..., 1], d[..., 0])
        ok = (d[..., 0] > 0) & (np.abs(ang - centre) <= half) & (dist <= p.link_distance * h)
        linked = np.flatnonzero(ok.any(axis=1))
        j = np.argmin(np.where(ok, dist, np.inf), axis=1)[linked]
        angle_parts.append(ang[linked, j])
        # Long links average out a digit's own shape, so they say more about the line than short ones.
        weight_parts.append(dist[linked, j])
    angles, weights = np.concatenate(angle_parts), np.concatenate(weight_parts)
    if not angles.size:
        return None
    order = np.argsort(angles)
    a, w = angles[order], weights[order]
    cum = np.cumsum(w)
    return float(a[np.searchsorted(cum, cum[-1] / 2.0)])


def group_lines(digits: list[Digit], p: NumbersParams | None = None, theta: float | None = None) -> list[list[Digit]]:
    """Digits -> text lines, top to bottom, each left to right along the (tilted) line.

    ``theta`` is the line direction if already estimated (``estimate_tilt``).
    """
    p = p or NumbersParams()
    if not digits:
        return []
    if theta is None:
        theta = estimate_tilt(digits, p)
    cos, sin = math.cos(theta), math.sin(theta)
    c = _centres(digits)
    along = c[:, 0] * cos + c[:, 1] * sin
    across = -c[:, 0] * sin + c[:, 1] * cos
    h = float(np.median([d.box[3] for d in digits]))
    order = np.argsort(across)
    lines: list[list[int]] = [[int(order[0])]]
    for prev, cur in zip(order[:-1], order[1:], strict=False):
        # Compare with the running line's mean, not the last digit: a long line's small wobble accumulates.
        mean = float(np.mean(across[lines[-1]]))
        if across[cur] - mean > p.line_gap * h and across[cur] - across[prev] > 0.25 * p.line_gap * h:
            lines.append([int(cur)])
        else:
            lines[-1].append(int(cur))
    return [[digits[i] for i in sorted(line, key=lambda i: along[i])] for line in lines]


def split_line(line: list[Digit], theta: float, p: NumbersParams | None = None) -> list[list[Digit]]:
    """One line (left to right) -> numbers, cut at gaps clearly wider than the line's usual gap."""
    p = p or NumbersParams()
    if len(line) < 2:
        return [line] if line else []
    cos, sin = math.cos(theta), math.sin(theta)
    h = float(np.median([d.box[3] for d in line]))
    gaps = []
    for a, b in zip(line[:-1], line[1:], strict=False):
        # Gap along the line between a's right edge and b's left edge (box extents projected).
        a_right = max((a.box[0] + a.box[2]) * cos + y * sin for y in (a.box[1], a.box[1] + a.box[3]))
        b_left = min(b.box[0] * cos + y * sin for y in (b.box[1], b.box[1] + b.box[3]))
        gaps.append(b_left - a_right)
    g = np.array(gaps)
    typical = float(np.median(g))
    if len(g) >= 3:
        # The median of many gaps is a within-number gap; a lower quartile is safer when half are splits.
        typical = float(np.percentile(g, 35))
    numbers, cur = [], [line[0]]
    for gap, d in zip(g, line[1:], strict=False):
        # A gap this wide splits whatever the line's other gaps are: in a short line of mostly separate
        # numbers ("03  2   3") the "usual" gap is itself a split.
        split = gap > p.split_abs_gap * h
        if len(g) >= 3:
            split = split or (gap > p.split_ratio * max(typical, 0.05 * h) and gap > p.split_min_gap * h)
        if split:
            numbers.append(cur)
            cur = [d]
        else:
            cur.append(d)
    numbers.append(cur)
    return numbers


def union_box(boxes: list[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def make_number(digits: list[Digit]) -> Number:
    """A :class:`Number` from its digits in order.

    ``confidence`` is the PRODUCT of the digits' confidences: the chance that every digit is right if the
    digit errors were independent, so a long number is trusted less than a single digit of equal quality.
    """
    conf = 1.0
    for d in digits:
        conf *= float(d.confidence)
    return Number(
        value="".join(str(int(d.digit)) for d in digits),
        confidence=conf,
        box=union_box([d.box for d in digits]),
        digits=tuple(digits),
    )


def assemble(digits: list[Digit], p: NumbersParams | None = None) -> list[Number]:
    """Digits (any order) -> numbers in reading order: lines top to bottom, left to right in a line."""
    p = p or NumbersParams()
    if not digits:
        return []
    theta = estimate_tilt(digits, p)
    out: list[Number] = []
    for line in group_lines(digits, p, theta):
        for group in split_line(line, theta, p):
            out.append(make_number(group))
    return out
