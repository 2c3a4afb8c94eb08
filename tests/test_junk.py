"""The "not a digit" class's touching digits (train/junk.py), on arrays with known shapes."""

from __future__ import annotations

import numpy as np

from train.junk import _row, make_junk


def _bar(width: int) -> np.ndarray:
    """A 28x28 'digit': a solid bar ``width`` px wide from row 4 to row 23, centred."""
    d = np.zeros((28, 28), np.uint8)
    x0 = (28 - width) // 2
    d[4:24, x0:x0 + width] = 255
    return d


def _spans(canvas: np.ndarray) -> list[tuple[int, int]]:
    """Column runs of ink (start, end exclusive) of a canvas of bars that do not overlap in full."""
    cols = canvas.max(0) > 0.5
    edges = np.flatnonzero(np.diff(np.r_[0, cols.astype(np.int8), 0]))
    return list(zip(edges[::2], edges[1::2], strict=True))


def test_mixed_pairs_have_their_own_sizes_on_one_baseline():
    heights, bottoms = [], []
    for seed in range(200):
        canvas, centres = _row([_bar(6), _bar(6)], np.random.default_rng(seed), mixed=True)
        assert canvas.shape[0] == 28 and len(centres) == 2
        for c in centres:
            rows = np.flatnonzero(canvas[:, c] > 0.5)
            heights.append(len(rows))
            bottoms.append(rows[-1])
    # The bar is 20 rows at full size: drawn at 60-100% of it ...
    assert min(heights) <= 14 and max(heights) >= 19
    assert min(heights) >= 11
    # ... standing on the line of the digits' boxes, give or take the jitter (the bar ends 4 px above it).
    assert max(bottoms) - min(bottoms) <= 2 + 2 + 2


def _overlap(canvas: np.ndarray, centres: list[int]) -> tuple[float, float]:
    """(overlap in px, narrower width) of two bars of ``_bar(10)``: a bar is half as wide as it is tall
    at any scale, so each one's width is read from its height at its centre column."""
    widths = [len(np.flatnonzero(canvas[:, c] > 0.5)) / 2.0 for c in centres]
    union = int((canvas.max(0) > 0.5).sum())
    return max(0.0, sum(widths) - union), min(widths)


def test_mixed_pairs_overlap_more_than_plain_ones_but_never_most_of_a_digit():
    plain, mixed = [], []
    for seed in range(300):
        canvas, centres = _row([_bar(10), _bar(10)], np.random.default_rng(seed), mixed=False)
        plain.append(_overlap(canvas, centres)[0])
        canvas, centres = _row([_bar(10), _bar(10)], np.random.default_rng(seed), mixed=True)
        over, narrower = _overlap(canvas, centres)
        # up to 45% of the narrower digit, give or take the pixel that resampling a bar adds to its width
        assert over <= 0.45 * narrower + 1.5, (seed, over, narrower)
        mixed.append(over)
    assert max(plain) <= 10 // 4
    assert max(mixed) >= 10 // 4 + 1.5
    assert np.mean(mixed) > np.mean(plain)


def test_mixed_touching_digits_keep_mnist_convention():
    from train.junk import touching

    x = np.stack([_bar(w) for w in np.random.default_rng(3).integers(3, 12, 40)])
    rng = np.random.default_rng(4)
    for _ in range(40):
        img = touching(x, rng, mixed=True)
        assert img.shape == (28, 28) and img.dtype == np.uint8
        # fitted in 20x20 by the longest side, centre of mass at (14, 14) to within a pixel
        ys, xs = np.nonzero(img > 25)
        assert max(ys.max() - ys.min(), xs.max() - xs.min()) <= 21
        m = img.astype(np.float64)
        cy, cx = (m.sum(1) * np.arange(28)).sum() / m.sum(), (m.sum(0) * np.arange(28)).sum() / m.sum()
        assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0


def test_make_junk_with_mixed_touching_digits_gives_uint8_crops():
    x = np.stack([_bar(w) for w in np.random.default_rng(3).integers(3, 12, 40)])
    out = make_junk(60, x, np.zeros(40, np.int64), np.random.default_rng(4), touching_mixed=1.0)
    assert out.shape == (60, 28, 28) and out.dtype == np.uint8
    assert (out.reshape(60, -1).max(1) > 100).mean() > 0.9
