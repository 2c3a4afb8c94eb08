"""Ruled and squared paper (pure): find the long thin lines of a page's rulings in a binary mask - level and
upright, or turned by a measured angle - and remove them, keeping the pen strokes that cross them or lie
along them. The rulings step of the segmentation (:func:`edge.segment.segment`), run on the low-level mask
before the hysteresis and again along the page's angle when long components show a turned page.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from edge.components import component_hugs_border, components
from edge.quantile import quantile
from edge.segment_params import SegmentParams

#: Gaps along a turned ruling (or a ruling of a ruled page) up to this long (px) are closed before its runs
#: are measured.
BRIDGE_PX = 5
#: A page with at least this many lines of one orientation at a regular pitch is ruled (or squared) paper.
RULED_MIN_LINES = 4


#: Share of the gaps between found lines that must be a whole number of pitches for a ruled page.
RULED_FIT_SHARE = 0.85


def is_ruled(where: list[float]) -> bool:
    """True when lines at these positions (rows or columns) are the rulings of a page: at least
    ``RULED_MIN_LINES`` of them, nearly every gap between neighbours (``RULED_FIT_SHARE``) a whole number
    of one pitch (lines may be missed) to within 15% of it, and several gaps one pitch. The streaks of a
    desk's grain are not that regular.

    The pitch is the median of the gaps near the smallest one, not the smallest: under perspective the
    pitch changes across the frame, and a line found only in pieces sits a few pixels off, so the
    smallest gap is the extreme, not the rule; one such gap must not unmake a squared page."""
    if len(where) < RULED_MIN_LINES:
        return False
    gaps = np.diff(np.sort(np.asarray(where, np.float64)))
    gaps = gaps[gaps > 1.0]
    if gaps.size < RULED_MIN_LINES - 1:
        return False
    near = np.sort(gaps)
    pitch = float(np.median(near[near <= 1.4 * near[0]]))
    k = np.maximum(1.0, np.round(gaps / pitch))
    fits = np.abs(gaps / k - pitch) <= 0.15 * pitch
    return bool(np.count_nonzero(fits & (k == 1)) >= RULED_MIN_LINES - 2 and fits.mean() >= RULED_FIT_SHARE)


def find_lines(mask: np.ndarray, horizontal: bool, p: SegmentParams, wobble: bool = False,
               bridge: bool | None = None) -> tuple[np.ndarray, float, int, int, list[float]]:
    """Long thin lines of one orientation in ``mask``: (their pixels grown by a pixel each side, the
    thickest line's thickness, the shortest run a line is made of, the shortest line, where the lines lie
    across the page: the rows of level lines, the columns of upright ones) -
    thickness 0: none. ``wobble`` also finds lines a degree or two off the axis, ``bridge`` (default: as
    ``wobble``) lines broken into dashes (see below)."""
    h, w = mask.shape
    side = w if horizontal else h
    length = int(p.line_min_frac * side)
    run = max(15, side // 25)
    none: tuple[np.ndarray, float, int, int, list[float]] = (np.zeros_like(mask), 0.0, run, length, [])
    if length < 2 * run:
        return none
    ksize = (run, 1) if horizontal else (1, run)
    # A thin ruling a degree or two off level is a staircase of runs shorter than ``run``: thickened by a
    # pixel each side across it first, it holds one unbroken run; only its own pixels are kept. A faint one
    # turned and resampled breaks into dashes: gaps of a few pixels along it are closed too. (Only on a
    # turned page, where perspective leaves every ruling a little off the measured angle: on a level page
    # it also takes the near-level strokes of digits sitting on a ruling and the grain of a desk.)
    # a pixel each side across the line's direction
    across = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3) if horizontal else (3, 1))
    thick_mask = cv2.dilate(mask, across) if wobble else mask
    if wobble if bridge is None else bridge:
        along = (BRIDGE_PX, 1) if horizontal else (1, BRIDGE_PX)
        thick_mask = cv2.morphologyEx(thick_mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, along))
    runs: np.ndarray = cv2.morphologyEx(thick_mask, cv2.MORPH_OPEN,
                                        cv2.getStructuringElement(cv2.MORPH_RECT, ksize))
    runs &= mask
    if not runs.any():
        return none
    # A ruling is thin across; a desk beyond the page edge, a shadow or a filled area is not. Left in,
    # such a blob joins every ruling that touches it into one thick group that is no line at all.
    thick_px = max(8, min(h, w) // 30)
    thick_k = (1, thick_px) if horizontal else (thick_px, 1)
    blobs: np.ndarray = cv2.morphologyEx(runs, cv2.MORPH_OPEN,
                                         cv2.getStructuringElement(cv2.MORPH_RECT, thick_k))
    if blobs.any():
        runs &= ~blobs
    # Chain runs across small breaks and a pixel or two of tilt.
    chain_k = (run, 3) if horizontal else (3, run)
    # (A line a little off the axis is chained as the thickened band it makes, so that one row holds it.)
    base = cv2.dilate(runs, across) if wobble else runs
    chained = cv2.morphologyEx(base, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, chain_k))
    # A ruling at least ``length`` long puts a third of that into one row (column) of the chained mask:
    # a frame of digits only never gets that far, and is done here at the cost of one projection.
    proj = cv2.reduce(chained, 1 if horizontal else 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    if int(proj.max()) < 255 * length // 3:
        return none
    # Outer contours give every group's extent for a fraction of a labelling's cost; only the long ones
    # are then filled in to measure them.
    contours, _ = cv2.findContours(chained, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines = np.zeros_like(mask)
    thick: list[float] = []
    where: list[float] = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        long_side = bw if horizontal else bh
        if long_side < length:
            continue
        group = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(group, [c], -1, 255, cv2.FILLED, offset=(-x, -y))
        sel = (group > 0) & (runs[y:y + bh, x:x + bw] > 0)
        thickness = float(sel.sum()) / max(long_side, 1)
        if long_side >= p.line_min_aspect * max(thickness, 1.0):
            lines[y:y + bh, x:x + bw][sel] = 255
            thick.append(thickness)
            where.append(y + bh / 2.0 if horizontal else x + bw / 2.0)
    if not thick:
        return none
    # Anti-aliased edges of the line would stay as a dotted ghost line: take a pixel more each side.
    lines = cv2.dilate(lines, across) & mask
    return lines, max(thick), run, length, where


def _dark_on_line(lines: np.ndarray, d: np.ndarray, horizontal: bool, run: int, length: int,
                  p: SegmentParams) -> np.ndarray:
    """The pixels of ``lines`` that are a pen stroke lying along the line (uint8 0/255).

    Such a stroke (a 1 on a grid line) is no wider than the line plus a margin, but it is much darker than
    the line's own core, over a stroke's length (a few dark pixels are where the line meets a shadow's
    corner) - and shorter than a ruling (a dark part that long is the dark side of a shadow's edge). The
    core (75th percentile), not the faint anti-aliased rim, is the reference: a soft line such as a
    shadow's edge is darkest in the middle, and that middle is no pen stroke. "Much darker" is also a
    margin in absolute terms (``line_stroke_margin``): a faint grid line's darkness varies by more than
    half of itself with blotchy paper and JPEG, a pen stroke is far darker than any of it.
    """
    on = lines > 0
    if not on.any():
        return np.zeros_like(lines)
    level = quantile(d[on], 0.75)
    dark = ((d > max(p.line_stroke_ratio * level, level + p.line_stroke_margin)) & on).astype(np.uint8)
    nd, dlab, dst = components(dark)
    if nd <= 1:
        return np.zeros_like(lines)
    extent = dst[:, cv2.CC_STAT_WIDTH if horizontal else cv2.CC_STAT_HEIGHT]
    keep = (extent < length) & (extent >= run)
    keep[0] = False
    return keep[dlab].astype(np.uint8) * 255


#: A pen stroke lying along a ruling is kept from a length of the line search's run divided by this: the
#: back of a 6 or the stem of a 4 touches a grid line for less than a whole run, and taken out with the
#: line it broke the digit (a 6 read as 4).
ALONG_RUN_DIV = 2


def remove_rulings(mask: np.ndarray, p: SegmentParams, d: np.ndarray | None = None,
                   wobble: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Remove long thin horizontal and vertical lines, keeping the strokes that cross or touch them.

    Lines are found as short straight runs (so a slightly tilted or broken ruling still shows) chained
    into long, thin groups. A line pixel stays ink when the ink run across the line there is clearly longer
    than the line is thick (a stroke crosses it), or - given the darkness map ``d`` - when it is much
    darker than the line over a stroke's length (a stroke lies along it). Returns (cleaned mask, removed
    pixels).
    """
    found = {hz: find_lines(mask, hz, p, wobble) for hz in (True, False)}
    if not wobble:
        # A ruled or squared page (several lines found): its faint lines may be broken into dashes where
        # the threshold cuts through them, and the dashed stretches are missed; look again with the gaps
        # closed. (Not on every page: closing gaps turns a desk's grain into "lines".)
        for hz in (True, False):
            if is_ruled(found[hz][4]):
                found[hz] = find_lines(mask, hz, p, bridge=True)
    # Found with ``wobble``, a line also takes in the near-level bits of the strokes it meets: any piece
    # of it much darker than the line is kept, not only one as long as a stroke.
    along = {hz: (_dark_on_line(found[hz][0], d, hz, 3 if wobble else max(3, found[hz][2] // ALONG_RUN_DIV),
                                found[hz][3], p)
                  if d is not None and found[hz][1] > 0 else None) for hz in (True, False)}
    removed = np.zeros_like(mask)
    for horizontal in (True, False):
        lines, t = found[horizontal][:2]
        if t <= 0:
            continue
        # Where a horizontal and a vertical ruling meet (a grid, the corner of a shadow) each would
        # count as a stroke crossing the other and the crossing would stay: the other rulings are no
        # strokes - except where a stroke lies along them.
        other, other_along = found[not horizontal][0], along[not horizontal]
        if other.any():
            if other_along is not None:
                other = other & ~other_along
            strokes = mask & ~other
        else:
            strokes = mask
        across = int(np.ceil(t)) + 5
        kcross = (1, across) if horizontal else (across, 1)
        keep: np.ndarray = cv2.morphologyEx(strokes, cv2.MORPH_OPEN,
                                            cv2.getStructuringElement(cv2.MORPH_RECT, kcross))
        if along[horizontal] is not None:
            keep |= along[horizontal]
        removed |= lines & ~keep
    if not removed.any():
        return mask, removed
    return mask & ~removed, removed


#: Turned rulings, alone or with what they cross, fill at most this share of their component's box.
LINE_FILL = 0.25
#: Largest page turn (degrees) searched for rulings.
TILT_MAX_DEG = 25.0


def long_components(lab: np.ndarray, stats: np.ndarray, p: SegmentParams) -> tuple[int, ...]:
    """Labels of the components (``lab``, ``stats`` as :func:`components` gives them) that may hold rulings
    turned off the axis, alone, as a grid or with the digits they run through: at least ``line_min_frac``
    of the frame long and filling at most ``LINE_FILL`` of their box (a desk or a shadow beyond the page
    fills it), and not lying along the frame's border (the edge of a desk beyond a turned page is no
    ruling: taken out, the desk would break into pieces that pass as digits). A run of touching digits in
    a tight crop may pass too: :func:`ruling_angle` tells them apart."""
    H, W = lab.shape
    st = stats[1:]
    w, h = st[:, 2].astype(np.int64), st[:, 3].astype(np.int64)
    long = (w >= p.line_min_frac * W) | (h >= p.line_min_frac * H)
    return tuple(int(i) + 1 for i in np.flatnonzero(long & (st[:, 4] <= LINE_FILL * w * h))
                 if not component_hugs_border(lab, stats, int(i) + 1, p))


def ruling_angle(mask: np.ndarray, p: SegmentParams) -> float | None:
    """Angle (degrees, counter-clockwise positive as ``cv2.getRotationMatrix2D`` takes it) that turns the
    dominant straight lines of ``mask`` (bool or uint8) level or upright; None when there is none: no
    straight line holds half a ruling's shortest length of ink.

    A Hough transform at half resolution over +/- ``TILT_MAX_DEG`` around each axis: the pieces of a
    ruling between the digits it crosses still vote for one line, which a fit over the component would not
    (the digits pull it). The mask holds only the long components, so the votes are few.
    """
    m = mask.astype(np.uint8)
    h, w = m.shape
    small = cv2.resize(m, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    small = (small > 0).astype(np.uint8)
    best, angle = 0, None
    span = np.deg2rad(TILT_MAX_DEG)
    for horizontal in (True, False):
        side = small.shape[1] if horizontal else small.shape[0]
        votes = max(10, int(0.5 * p.line_min_frac * side))
        # theta is the normal's angle; for upright lines it wraps at 0: a line leaning either way
        ranges = [(np.pi / 2 - span, np.pi / 2 + span)] if horizontal else [(0.0, span), (np.pi - span, np.pi)]
        for lo, hi in ranges:
            found = cv2.HoughLinesWithAccumulator(small, 1, np.pi / 360, votes, min_theta=lo, max_theta=hi)
            if found is None or found.size == 0:
                continue
            _, theta, count = (float(v) for v in found.reshape(-1, 3)[0])
            if count > best:
                deg = np.rad2deg(theta)
                # theta is the normal's angle from the x axis: a level line has theta 90 degrees.
                tilt = deg - 90.0 if horizontal else (deg if deg < 90.0 else deg - 180.0)
                best, angle = int(count), float(tilt)
    return angle


def remove_tilted_rulings(cand: np.ndarray, d: np.ndarray, low: float, angle: float,
                          p: SegmentParams) -> np.ndarray:
    """:func:`remove_rulings` for a page turned by ``angle`` degrees (see :func:`ruling_angle`).

    The darkness map is turned so the rulings are level (in a canvas large enough to hold the whole frame)
    and thresholded at ``low`` there - a thresholded mask turned instead would break a thin ruling into
    dots - the straight search runs on it (digits written along the rulings are upright there too), and the
    pixels it removed are turned back and taken out of ``cand``.
    """
    h, w = cand.shape
    rad = np.deg2rad(abs(angle))
    cw = int(np.ceil(w * np.cos(rad) + h * np.sin(rad))) + 2
    ch = int(np.ceil(h * np.cos(rad) + w * np.sin(rad))) + 2
    rot = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    rot[0, 2] += (cw - w) / 2.0
    rot[1, 2] += (ch - h) / 2.0
    dt = cv2.warpAffine(d, rot, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=0)
    # OpenCV compares with a scalar; its stubs want an array on both sides
    turned = cv2.compare(dt, low, cv2.CMP_GT)  # type: ignore[call-overload]
    # Lengths are fractions of the frame, not of the larger canvas.
    scale = min(1.0, w / cw, h / ch)
    q = replace(p, line_min_frac=p.line_min_frac * scale)
    _, removed = remove_rulings(turned, q, dt, wobble=True)
    if not removed.any():
        return cand
    back = cv2.warpAffine(removed, rot, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
    # a scalar again (see above)
    return cv2.bitwise_and(cand, cv2.bitwise_not(cv2.compare(back, 128, cv2.CMP_GE)))  # type: ignore[call-overload]
