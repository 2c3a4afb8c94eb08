"""Training-side augmentation: box filling, low-resolution/binarised crops and the writing-style strokes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.normalise import to_mnist
from train import augment, styles


def _ring() -> np.ndarray:
    img = np.zeros((60, 40), np.float32)
    cv2.ellipse(img, (20, 30), (13, 24), 0, 0, 360, 1.0, 5, cv2.LINE_AA)
    return img


def _aspect(a: np.ndarray) -> float:
    ys, xs = np.nonzero(a > 0.25 * a.max())
    return (np.ptp(xs) + 1) / (np.ptp(ys) + 1)


def test_fill_box_stretches_towards_a_square_but_not_a_bar_into_a_block():
    rng = np.random.default_rng(0)
    ring = _ring()
    assert _aspect(ring) <= 0.6
    assert all(_aspect(augment.fill_box(ring, rng)) > 0.8 for _ in range(10))
    bar = np.zeros((60, 60), np.float32)
    bar[5:55, 28:32] = 1.0  # a plain 1, 4 px wide
    for _ in range(10):
        out = augment.fill_box(bar, rng)
        assert out.shape[1] <= round(2.5 * 4) and out.shape[0] == 50


def test_holes_counts_loops():
    assert augment.holes(_ring()) == 1
    eight = np.zeros((60, 40), np.float32)
    cv2.circle(eight, (20, 16), 10, 1.0, 4)
    cv2.circle(eight, (20, 42), 12, 1.0, 4)
    assert augment.holes(eight) == 2
    bar = np.zeros((30, 30), np.float32)
    bar[5:25, 14:17] = 1.0
    assert augment.holes(bar) == 0


def test_low_resolution_is_small_then_back_up_and_never_changes_the_loops(mnist_sample):
    x, _ = mnist_sample
    rng = np.random.default_rng(1)
    changed = 0
    for img in x[:120]:
        a = img.astype(np.float32) / 255.0
        out = augment.low_resolution(a, rng, binarise=1.0)
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
        assert augment.holes(out) == augment.holes(augment._ink_crop(a))
        changed += out.shape != augment._ink_crop(a).shape
    assert changed > 60  # most crops really went through the small size


def test_binarised_low_resolution_crop_is_hard_edged():
    rng = np.random.default_rng(2)
    ring = _ring()
    outs = [augment.low_resolution(ring, rng, binarise=1.0) for _ in range(30)]
    # the ones left at the small size (no cubic upsampling) are exactly binary
    small = [o for o in outs if max(o.shape) <= 16]
    assert small and all(set(np.unique(o)) <= {0.0, 1.0} for o in small)


def test_augment_digit_keeps_the_convention_with_all_damage_on(mnist_sample):
    x, _ = mnist_sample
    rng = np.random.default_rng(3)
    for img in x[:20]:
        out = augment.augment_digit(img, rng, damage=augment.Damage(lowres=1.0, fill=1.0))
        assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() > 80  # contrast damage: >= 0.55
        ys, xs = np.nonzero(out > 0.6 * out.max())  # above the photometric noise and background offset
        assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 24


def _of(x, y, digit, n=10):
    return x[np.nonzero(y == digit)[0][:n]]


@pytest.mark.parametrize("digit", sorted(styles.STYLES))
def test_styles_give_mnist_convention_digits(mnist_sample, digit):
    x, y = mnist_sample
    rng = np.random.default_rng(digit)
    for img in _of(x, y, digit):
        out = styles.STYLES[digit](img, rng)
        assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() > 200
        ys, xs = np.nonzero(out > 25)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 21  # refitted into 20x20 after the added stroke
        m = cv2.moments(out.astype(np.float32))
        assert abs(m["m10"] / m["m00"] - 14) <= 1 and abs(m["m01"] / m["m00"] - 14) <= 1
        # the digit's own strokes are still there: most of its ink is ink in the styled digit too
        assert (to_mnist(img) > 128).sum() > 0 and np.corrcoef(out.ravel(), to_mnist(img).ravel())[0, 1] > 0.3


def test_flagged_one_adds_ink_left_of_the_top(mnist_sample):
    x, y = mnist_sample
    rng = np.random.default_rng(5)
    wider = 0
    for img in _of(x, y, 1, 20):
        out = styles.flagged_one(img, rng)
        before, after = _aspect(to_mnist(img).astype(np.float32)), _aspect(out.astype(np.float32))
        wider += after > before + 0.05  # a slanted 1 may already be as wide as its flag
        ys, xs = np.nonzero(out[:12] > 100)
        assert np.ptp(xs) >= 4  # a flag, not just the stem
    assert wider >= 14


def test_hooked_nine_adds_a_hook_low_and_left():
    rng = np.random.default_rng(8)
    nine = np.zeros((28, 28), np.uint8)
    cv2.circle(nine, (14, 9), 5, 255, 2)
    cv2.line(nine, (19, 9), (18, 24), 255, 2)
    for _ in range(5):
        out = styles.hooked_nine(nine, rng)
        assert (out[18:, :12] > 100).sum() > (to_mnist(nine)[18:, :12] > 100).sum()


def test_add_styles_changes_only_styled_classes(mnist_sample):
    x, y = mnist_sample
    out = styles.add_styles(x, y, np.random.default_rng(7))
    changed = np.nonzero((out != x).any((1, 2)))[0]
    assert len(changed) > 20
    assert set(np.unique(y[changed])) <= set(styles.STYLES)
