"""A fast quantile (pure; np.percentile's linear answer at a fraction of its fixed cost), for the ink and
stroke levels measured by the segmentation, the ruling removal and the reader.
"""

from __future__ import annotations

import numpy as np


def quantile(a: np.ndarray, q: float) -> float:
    """The ``q`` quantile (0..1) of ``a`` - np.percentile's default (linear) answer, at a fraction of its
    fixed cost: it is taken for every candidate and crop of every frame."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    n = flat.size
    if n == 0:
        raise ValueError("quantile of an empty array")
    pos = min(max(q, 0.0), 1.0) * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    part = np.partition(flat, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))
