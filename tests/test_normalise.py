"""MNIST-convention normalisation: the training pipeline relies on to_mnist(MNIST image) ~ the same image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.normalise import MNIST_STROKE, batch_to_mnist, ink_from_gray, stroke_width, to_mnist
from tests.synth_pages import load_mnist


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _com(img: np.ndarray) -> tuple[float, float]:
    m = cv2.moments(img.astype(np.float32))
    return m["m10"] / m["m00"], m["m01"] / m["m00"]


def test_mnist_images_come_back_nearly_unchanged(mnist):
    x, _ = mnist
    diffs, corrs = [], []
    for img in x[:200]:
        out = to_mnist(img)
        diffs.append(np.abs(out.astype(float) - img.astype(float)).mean())
        corrs.append(np.corrcoef(out.ravel().astype(float), img.ravel().astype(float))[0, 1])
    assert np.median(diffs) < 12.0
    assert np.median(corrs) > 0.9
    assert np.percentile(corrs, 10) > 0.75
    # as bright as they were: the ink's grey levels are kept, not stretched or faded
    ratios = [to_mnist(img).astype(float).sum() / img.astype(float).sum() for img in x[:200]]
    assert 0.85 < np.median(ratios) < 1.15


def test_output_convention_fit_20_and_centre_of_mass(mnist):
    x, _ = mnist
    # A camera-sized crop: dark pen on paper, 3x larger, off-centre in a wide box.
    big = cv2.resize(x[7], (84, 84), interpolation=cv2.INTER_CUBIC)
    canvas = np.zeros((120, 200), np.uint8)
    canvas[10:94, 100:184] = big
    out = to_mnist(canvas)
    assert out.shape == (28, 28) and out.dtype == np.uint8
    ys, xs = np.nonzero(out > 25)
    assert max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) <= 23
    cx, cy = _com(out)
    assert abs(cx - 14) <= 1.0 and abs(cy - 14) <= 1.0
    # Grey levels are kept (anti-aliased edge), not a hard binary mask.
    assert len(np.unique(out)) > 20


def test_thin_stroke_is_thickened_towards_mnist_width():
    img = np.zeros((300, 200), np.float32)
    cv2.line(img, (100, 20), (100, 280), 1.0, 2)  # a hairline "1", far thinner than MNIST's relative width
    out = to_mnist(img)
    assert stroke_width(out.astype(np.float32) / 255.0) >= 1.5
    plain = to_mnist(img, target_stroke=None)
    assert (out > 128).sum() > (plain > 128).sum()


def test_thick_stroke_is_thinned_towards_mnist_width():
    img = np.zeros((200, 200), np.float32)
    cv2.circle(img, (100, 100), 70, 1.0, 30)  # a "0" in thick marker: a sixth of its height wide
    out, plain = to_mnist(img), to_mnist(img, target_stroke=None)
    assert stroke_width(out.astype(np.float32) / 255.0) < stroke_width(plain.astype(np.float32) / 255.0) - 0.5
    assert out.max() >= 250 and (out > 128).sum() > 40  # thinner, not erased


def test_without_stroke_fix_the_digit_is_still_fitted_and_centred(mnist):
    x, _ = mnist
    canvas = np.zeros((120, 200), np.uint8)
    canvas[10:94, 100:184] = cv2.resize(x[7], (84, 84), interpolation=cv2.INTER_CUBIC)
    out = to_mnist(canvas, target_stroke=None)
    ys, xs = np.nonzero(out > 25)
    assert 17 <= max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) <= 23
    cx, cy = _com(out)
    assert abs(cx - 14) <= 1.0 and abs(cy - 14) <= 1.0


def test_a_speck_and_a_hairline_are_normalised_without_error():
    speck = np.zeros((5, 5), np.float32)
    speck[2, 2] = 1.0
    hairline = np.ones((1, 200), np.float32)  # a fragment of a ruled line, one pixel tall
    for ink in (speck, hairline):
        for target in (MNIST_STROKE, None):
            out = to_mnist(ink, target)
            assert out.shape == (28, 28) and out.max() > 200


def test_empty_and_batch():
    assert not to_mnist(np.zeros((10, 10), np.uint8)).any()
    for empty in (np.zeros((0, 5), np.float32), np.zeros((4, 0), np.uint8)):  # a crop cut to nothing
        assert to_mnist(empty).shape == (28, 28) and not to_mnist(empty).any()
    b = batch_to_mnist([np.eye(30, dtype=np.float32), np.zeros((5, 5), np.float32)])
    assert b.shape == (2, 28, 28) and b[0].any() and not b[1].any()
    assert batch_to_mnist([]).shape == (0, 28, 28)


def test_ink_from_gray_polarity():
    gray = np.full((20, 20), 200, np.uint8)
    gray[5:15, 9:11] = 40
    ink = ink_from_gray(gray, dark_ink=True)
    assert ink[10, 10] > 0.9 and ink[0, 0] < 0.1
    inv = ink_from_gray(255 - gray, dark_ink=False)
    assert np.allclose(ink, inv, atol=1e-6)
    assert np.array_equal(ink_from_gray(gray), ink)  # pen on paper unless told otherwise


def test_ink_from_gray_stretches_contrast_and_keeps_grey_levels():
    # Pencil on grey paper: the stroke is the full ink, a pixel halfway between paper and stroke half of it.
    gray = np.full((20, 20), 200, np.uint8)
    gray[5:15, 9:11] = 150
    gray[5:15, 11] = 175
    ink = ink_from_gray(gray)
    assert ink[10, 10] == pytest.approx(1.0) and ink[10, 11] == pytest.approx(0.5, abs=0.02) and ink[0, 0] == 0.0
    # Black ink on paper that the camera saw as pure white is still ink.
    white = np.full((20, 20), 255, np.uint8)
    white[5:15, 9:11] = 0
    assert ink_from_gray(white)[10, 10] == pytest.approx(1.0)
    # A crop with nothing on it (uniform paper, whatever its shade) has no ink, and no NaN.
    for level in (0, 200, 255):
        blank = ink_from_gray(np.full((20, 20), level, np.uint8))
        assert np.isfinite(blank).all() and not blank.any()


def test_float_ink_a_hair_above_one_reads_as_0_to_1(mnist):
    # Resampling a 0..1 map can leave a peak at 1.0000001; read as 0..255 it was a blank digit.
    x, _ = mnist
    ink = cv2.resize(x[0].astype(np.float32) / 255.0, (40, 40), interpolation=cv2.INTER_AREA)
    ink[ink == ink.max()] = np.nextafter(np.float32(1.0), np.float32(2.0))
    out = to_mnist(ink)
    ref = to_mnist(np.clip(ink * 255.0 + 0.5, 0, 255).astype(np.uint8))
    assert out.max() > 200
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 2
    # A float map in 0..255 is still read as such.
    assert np.abs(to_mnist(ink * 255.0).astype(int) - out.astype(int)).max() <= 1


def test_max_pool_takes_each_blocks_largest_value():
    from edge.normalise import max_pool

    rng = np.random.default_rng(0)
    for h, w, f in [(10, 7, 3), (9, 9, 3), (100, 37, 4), (5, 5, 8), (11, 6, 2)]:
        a = rng.random((h + 3, w + 2)).astype(np.float32)[1:1 + h, 2:2 + w]  # a view, as crops are
        ph, pw = -(-h // f) * f, -(-w // f) * f
        want = np.pad(a, ((0, ph - h), (0, pw - w)), constant_values=-1.0)
        want = want.reshape(ph // f, f, pw // f, f).max(axis=(1, 3))
        assert np.array_equal(max_pool(a, f), want)
    assert max_pool(a, 1) is a


def _long_thin_line(h: int, w: int) -> np.ndarray:
    """A 1 px diagonal line corner to corner: the crop of a long thin stroke (a cable, a ruled diagonal)."""
    img = np.zeros((h, w), np.float32)
    cv2.line(img, (0, 0), (w - 1, h - 1), 1.0, 1, cv2.LINE_AA)
    return img


def test_a_large_thin_crop_is_pooled_before_its_stroke_is_fixed(monkeypatch):
    # The stroke fix dilates with a kernel that grows with the crop: for a 1 px line 750 px tall that is an
    # 87 px ellipse over the whole crop (half a second; a frame of twenty such lines took 20 s, past a Pi's
    # watchdog). Larger crops are max-pooled to at most MAX_FIX_SIDE first; smaller ones are left alone.
    import edge.normalise as nm

    seen: list[tuple[int, ...]] = []
    real = nm._fix_stroke

    def spy(a, scale, target):
        seen.append(a.shape)
        return real(a, scale, target)

    monkeypatch.setattr(nm, "_fix_stroke", spy)
    limit = getattr(nm, "MAX_FIX_SIDE", 256)
    big = _long_thin_line(750, 520)
    out = to_mnist(big)
    assert max(seen[-1]) <= limit, seen[-1]
    small = _long_thin_line(limit, 170)
    to_mnist(small)
    assert seen[-1] == small.shape  # at most MAX_FIX_SIDE: as it was
    to_mnist(_long_thin_line(900, 40))  # long and narrow: pooled by its long side
    assert max(seen[-1]) <= limit, seen[-1]
    # Pooling keeps the thin stroke's full ink and MNIST's width: the same 28x28 as the slow path's, near enough.
    monkeypatch.setattr(nm, "MAX_FIX_SIDE", 10_000, raising=False)
    slow = to_mnist(big)
    assert out.max() >= 250 and stroke_width(out.astype(np.float32) / 255.0) >= 1.5
    assert np.corrcoef(out.ravel().astype(float), slow.ravel().astype(float))[0, 1] > 0.9
    assert np.abs(out.astype(int) - slow.astype(int)).mean() < 12
