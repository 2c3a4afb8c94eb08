"""Connected components of a binary ink mask (pure): labelling with OpenCV's per-label statistics, the
pixels of a set of labels, and whether ink runs along the frame's border (a page edge, a desk or a shadow
border, not a digit). Shared by the candidate search (:mod:`edge.segment`) and the ruling removal
(:mod:`edge.rulings`).
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.segment_params import SegmentParams


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a uint8 mask: (count incl. background, labels int32, stats).

    ``stats`` has OpenCV's layout (x, y, width, height, area per label, row 0 the background). Computed
    from the ink pixels only: OpenCV's own ``connectedComponentsWithStats`` spends over a millisecond on a
    640x360 frame's statistics, ten times its labelling, and is called three times a frame.
    """
    n, lab = cv2.connectedComponents(mask, connectivity=8, ltype=cv2.CV_32S)
    stats = np.zeros((n, 5), np.int32)
    if n <= 1:
        stats[0] = (0, 0, mask.shape[1], mask.shape[0], mask.size)
        return n, lab, stats
    pts = cv2.findNonZero(mask)  # far faster than np.nonzero on the int32 label image
    pts = pts.reshape(-1, 2)
    xs, ys = pts[:, 0], pts[:, 1]
    ids = lab[ys, xs]
    order = np.argsort(ids, kind="stable")
    ids, ys, xs = ids[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    which = ids[starts]
    x0 = np.minimum.reduceat(xs, starts)
    x1 = np.maximum.reduceat(xs, starts)
    y0 = np.minimum.reduceat(ys, starts)
    y1 = np.maximum.reduceat(ys, starts)
    area = np.diff(np.r_[starts, ids.size])
    stats[which, 0], stats[which, 1] = x0, y0
    stats[which, 2], stats[which, 3] = x1 - x0 + 1, y1 - y0 + 1
    stats[which, 4] = area
    stats[0] = (0, 0, mask.shape[1], mask.shape[0], mask.size - int(area.sum()))
    return n, lab, stats


def label_mask(lab: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """Bool mask of the pixels of ``lab`` that carry one of ``labels`` (most candidates have one)."""
    if len(labels) == 1:
        return lab == labels[0]
    return np.isin(lab, labels)


def hugs_border(lab: np.ndarray, labels: list[int], box: tuple[int, int, int, int], p: SegmentParams) -> bool:
    """True for page edges, table and shadow borders: ink that runs along the frame's edge.

    A digit in a tight crop may touch the edge with a stroke end; a page edge lies along it.
    """
    H, W = lab.shape
    x0, y0, x1, y1 = box
    edges = []
    if y0 <= 0:
        edges.append((lab[0, x0:x1], x1 - x0))
    if y1 >= H:
        edges.append((lab[H - 1, x0:x1], x1 - x0))
    if x0 <= 0:
        edges.append((lab[y0:y1, 0], y1 - y0))
    if x1 >= W:
        edges.append((lab[y0:y1, W - 1], y1 - y0))
    for line, extent in edges:
        contact = int(np.isin(line, labels).sum())
        if contact >= p.border_max_frac * max(extent, 1):
            return True
    return False


def component_hugs_border(lab: np.ndarray, stats: np.ndarray, label: int, p: SegmentParams) -> bool:
    """:func:`hugs_border` for one component, its box taken from ``stats`` (:func:`components`' layout)."""
    x, y, w, h = (int(v) for v in stats[label, :4])
    return hugs_border(lab, [label], (x, y, x + w, y + h), p)
