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


def _ink_extent(a: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(a > 0.05)
    return int(np.ptp(ys)) + 1, int(np.ptp(xs)) + 1


def test_clip_edges_cuts_the_outer_strokes_but_never_a_whole_stroke():
    rng = np.random.default_rng(0)
    ring = _ring()  # a 5 px stroke with an anti-aliased rim: at most 60% of 6 px cut from an edge
    most = 0.6 * 6
    h, w = _ink_extent(ring)
    cut_rows, cut_cols = [], []
    for _ in range(60):
        out = augment.clip_edges(ring, rng)
        oh, ow = _ink_extent(out)
        cut_rows.append(h - oh)
        cut_cols.append(w - ow)
        assert augment.holes(out) == 1  # the loop stays closed
    # Top and/or bottom nearly always, a side now and then, never more than 60% of the stroke per edge.
    assert min(cut_rows) >= 1 and max(cut_rows) <= 2 * (most + 1)
    assert 0 < sum(c > 0 for c in cut_cols) < 30 and max(cut_cols) <= most + 1
    # A 7's bar, 3 px thick, keeps ink in its row whatever is cut from the top.
    seven = np.zeros((50, 40), np.float32)
    seven[5:8, 5:35] = 1.0
    cv2.line(seven, (34, 7), (14, 45), 1.0, 3)
    for _ in range(30):
        out = augment.clip_edges(seven, rng)
        # At most 60% of the 3 px bar: whole rows of it or a dimmed row left, never less than 1.2 px of ink
        # (the bar's right end, where the stem joins it, holds more); a side cut shortens it by little.
        assert out.shape[1] >= 30 - 3
        assert out[:3, 2:20].sum(axis=0).min() >= 1.2 - 1e-5


def test_clip_edges_shortens_a_plain_one_by_a_stroke_width_at_most():
    rng = np.random.default_rng(1)
    one = np.zeros((60, 30), np.float32)
    one[5:55, 13:17] = 1.0  # 4 px wide, 50 tall: its tip and foot lie on the top and bottom edges
    for _ in range(30):
        h, w = _ink_extent(augment.clip_edges(one, rng))
        assert h >= 50 - 2 * (0.6 * 4 + 1) and w >= 4 - (0.6 * 4 + 1)


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


def test_pen_stroke_redraws_with_pens_thinner_and_thicker_than_mnists(mnist_sample):
    from edge.normalise import stroke_width

    x, _ = mnist_sample
    rng = np.random.default_rng(4)
    rel = []
    for img in x[:60]:
        a = img.astype(np.float32) / 255.0
        out = augment.pen_stroke(a, rng)
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() == pytest.approx(1.0)
        if out is a:
            continue  # a pen too thin for this digit: left as it was
        assert 20 <= out.shape[0] <= 48
        rel.append(stroke_width(out) / out.shape[0])
    assert len(rel) > 40
    # MNIST's stroke is about 0.115 of the digit's height; the pens go well below and above it
    assert min(rel) < 0.09 and max(rel) > 0.13


def test_augment_digit_keeps_the_convention_with_all_damage_on(mnist_sample):
    x, _ = mnist_sample
    rng = np.random.default_rng(3)
    for img in x[:20]:
        out = augment.augment_digit(img, rng, damage=augment.Damage(lowres=1.0, fill=1.0, pen=1.0, clip=1.0))
        assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() > 80  # contrast damage: >= 0.55
        ys, xs = np.nonzero(out > 0.6 * out.max())  # above the photometric noise and background offset
        assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 24


def _of(x, y, digit, n=10):
    return x[np.nonzero(y == digit)[0][:n]]


def assert_mnist_convention(out: np.ndarray) -> None:
    """A styled digit is still an MNIST-style image: uint8 28x28, refitted into 20x20 after the added stroke,
    centre of mass at the centre."""
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() > 200
    ys, xs = np.nonzero(out > 25)
    assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 21
    m = cv2.moments(out.astype(np.float32))
    assert abs(m["m10"] / m["m00"] - 14) <= 1 and abs(m["m01"] / m["m00"] - 14) <= 1


@pytest.mark.parametrize("digit", sorted(styles.STYLES))
def test_styles_give_mnist_convention_digits(mnist_sample, digit):
    x, y = mnist_sample
    rng = np.random.default_rng(digit)
    for img in _of(x, y, digit):
        out = styles.STYLES[digit](img, rng)
        assert_mnist_convention(out)
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


# ---- the extra writing conventions (``styles.EXTRA``, ``python -m train --extra-styles``)


def _closed_four() -> np.ndarray:
    """A 4 drawn with a diagonal from the stem's top, a bar, and a full-height stem on the right."""
    img = np.zeros((28, 28), np.uint8)
    cv2.line(img, (17, 4), (7, 17), 255, 2, cv2.LINE_AA)
    cv2.line(img, (7, 17), (22, 17), 255, 2, cv2.LINE_AA)
    cv2.line(img, (17, 4), (17, 24), 255, 2, cv2.LINE_AA)
    return img


def _nine() -> np.ndarray:
    img = np.zeros((28, 28), np.uint8)
    cv2.circle(img, (13, 9), 5, 255, 2, cv2.LINE_AA)
    cv2.line(img, (18, 9), (17, 24), 255, 2, cv2.LINE_AA)
    return img


def _rows(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Ink (> 100) of the rows between fractions ``lo`` and ``hi`` of the digit's height."""
    ys = np.nonzero((a > 100).any(1))[0]
    y0, y1 = ys.min(), ys.max() + 1
    return a[int(y0 + lo * (y1 - y0)):int(y0 + hi * (y1 - y0))] > 100


@pytest.mark.parametrize("name", sorted(styles.EXTRA))
def test_extra_styles_keep_the_mnist_convention_and_change_the_digit(mnist_sample, name):
    x, y = mnist_sample
    digit, fn, _ = styles.EXTRA[name]
    rng = np.random.default_rng(11)
    changed = 0
    for img in _of(x, y, digit):
        out = fn(img, rng)
        assert_mnist_convention(out)
        ref = to_mnist(img)
        if digit != 1:  # a long flag on a thin 1 moves its stem across the box when refitted
            # still the same digit underneath (rho9 mirrors it)
            assert max(np.corrcoef(out.ravel(), r.ravel())[0, 1] for r in (ref, ref[:, ::-1])) > 0.2
        changed += np.abs(out.astype(int) - ref).sum() > 20 * 255
    assert changed >= 6  # short4 leaves 4s without a clear stem above the bar alone; the others always draw


def test_short_stem_four_opens_the_top_of_the_stem_and_keeps_the_left_stroke():
    rng = np.random.default_rng(0)
    four = _closed_four()
    ref = to_mnist(four)
    for _ in range(5):
        out = styles.short_stem_four(four, rng)
        for a, opened in ((ref, False), (out, True)):
            stem = np.nonzero(_rows(a, 0.85, 1.0))[1].mean()  # the foot of the stem
            top = np.nonzero(_rows(a, 0.0, 0.2))[1]
            assert len(top)  # something (the diagonal) still reaches the top
            assert (top.max() < stem - 2) == opened  # ... but no longer the stem
        n, _ = cv2.connectedComponents((out > 100).astype(np.uint8))
        assert n - 1 == 1  # still one stroke


def test_short_stem_four_leaves_a_digit_without_a_bar_alone():
    bar = np.zeros((28, 28), np.uint8)
    bar[4:24, 13:16] = 255
    assert np.array_equal(styles.short_stem_four(bar, np.random.default_rng(0)), to_mnist(bar))


def test_curled_nine_ends_in_a_bowl_to_the_left():
    rng = np.random.default_rng(1)
    nine = _nine()
    for _ in range(5):
        out = styles.curled_nine(nine, rng)
        low = _rows(out, 0.75, 1.0)
        xs = np.nonzero(low.any(0))[0]
        assert np.ptp(xs) >= 7  # a bowl, not the stem's foot
        ref_xs = np.nonzero(_rows(to_mnist(nine), 0.75, 1.0).any(0))[0]
        assert np.ptp(ref_xs) < 6


def test_rho_nine_puts_the_stem_left_of_the_loop():
    rng = np.random.default_rng(2)
    nine = _nine()
    for _ in range(5):
        out = styles.rho_nine(nine, rng)
        top_x = np.nonzero(_rows(out, 0.0, 0.4))[1].mean()
        foot_x = np.nonzero(_rows(out, 0.8, 1.0))[1].mean()
        assert foot_x < top_x - 3
        ref = to_mnist(nine)
        assert np.nonzero(_rows(ref, 0.8, 1.0))[1].mean() > np.nonzero(_rows(ref, 0.0, 0.4))[1].mean()


def test_long_flag_one_reaches_far_down_the_left_side(mnist_sample):
    x, y = mnist_sample
    rng = np.random.default_rng(3)
    far = 0
    for img in _of(x, y, 1, 20):
        out = styles.long_flag_one(img, rng)
        mid = _rows(out, 0.25, 0.5)
        xs = np.nonzero(mid.any(0))[0]
        far += np.ptp(xs) >= 6  # the flag is still beside the stem a quarter of the way down
    assert far >= 15


def test_low_crossed_seven_crosses_the_stem_in_its_lower_half(mnist_sample):
    x, y = mnist_sample
    rng = np.random.default_rng(4)
    for img in _of(x, y, 7):
        out = styles.low_crossed_seven(img, rng)
        before = max(styles._longest_run(r) for r in to_mnist(img)[14:24])
        after = max(styles._longest_run(r) for r in out[14:24])
        assert after >= max(before + 3, 8)


def test_parse_extra():
    assert styles.parse_extra("") == {}
    assert styles.parse_extra("short4, curl9=0.05") == {"short4": styles.EXTRA["short4"][2], "curl9": 0.05}
    with pytest.raises(ValueError, match="unknown style"):
        styles.parse_extra("open9")
    with pytest.raises(ValueError, match="0..1"):
        styles.parse_extra("rho9=2")


def test_add_styles_without_extras_is_unchanged_and_extras_touch_only_their_classes(mnist_sample):
    x, y = mnist_sample
    plain = styles.add_styles(x, y, np.random.default_rng(7))
    assert np.array_equal(plain, styles.add_styles(x, y, np.random.default_rng(7), {}))
    extra = styles.add_styles(x, y, np.random.default_rng(7), {name: 1.0 for name in styles.EXTRA})
    changed = np.nonzero((extra != plain).any((1, 2)))[0]
    assert set(np.unique(y[changed])) <= {1, 4, 7, 9}
    assert {1, 4, 7, 9} <= set(np.unique(y[changed]))


def test_train_rejects_an_unknown_extra_style():
    from train.train import parse_args

    assert parse_args(["--extra-styles", "short4=0.2"]).extra_styles == "short4=0.2"
    with pytest.raises(SystemExit):
        parse_args(["--extra-styles", "nope"])


@pytest.mark.parametrize("flag", ["--touching-mixed", "--clip", "--pen", "--fill", "--lowres", "--binarise",
                                  "--augment"])
@pytest.mark.parametrize("bad", ["1.5", "-0.1"])
def test_a_share_outside_zero_to_one_is_a_usage_error(flag, bad, capsys):
    from train.train import parse_args

    with pytest.raises(SystemExit) as exc:
        parse_args([flag, bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} is a share and must be between 0 and 1" in err and "Traceback" not in err
