"""Segmentation on synthetic pages whose digits and positions are known."""

from __future__ import annotations

import math
import sys

import cv2
import numpy as np
import pytest

from edge.components import components
from edge.polarity import _dark_by_median_residuals, detect_dark_ink
from edge.quantile import quantile
from edge.rulings import find_lines, is_ruled, ruling_angle
from edge.segment import segment
from edge.segment_params import SegmentParams
from tests.conftest import ROOT
from tests.synth_pages import compose, line_of_digits, load_mnist, paper


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _truth_boxes_match(seg, truth, tol=4):
    """How many digit boxes ``truth`` (x, y, w, h, source px) have exactly one candidate whose box matches
    within ``tol`` px (``2 * tol`` for the size)."""
    boxes = [seg.to_source(c.box) for c in seg.candidates]
    found = 0
    for x, y, w, h in truth:
        hits = [b for b in boxes
                if abs(b[0] - x) <= tol and abs(b[1] - y) <= tol
                and abs(b[2] - w) <= 2 * tol and abs(b[3] - h) <= 2 * tol]
        found += len(hits) == 1
    return found


def _boxes_match(seg, positions, inks, tol=4):
    """How many printed digits (top-left ``positions``, ink maps ``inks``) have exactly one matching
    candidate (:func:`_truth_boxes_match`)."""
    return _truth_boxes_match(seg, [(x, y, ink.shape[1], ink.shape[0])
                                    for (x, y), ink in zip(positions, inks, strict=False)], tol)


def test_line_of_digits_gives_one_candidate_each(mnist):
    x, y = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(6)], height=50, gap=25)
    seg = segment(compose(inks, pos, size))
    assert seg.dark_ink
    assert len(seg.candidates) == 6
    assert _boxes_match(seg, pos, inks) == 6


@pytest.mark.parametrize("seed", range(3))
def test_a_shadow_over_most_of_a_faint_pencil_page_does_not_turn_the_polarity(mnist, seed):
    x, _ = mnist
    inks, pos, _ = line_of_digits([x[i] for i in range(50, 56)], height=40, gap=20, margin=80)
    inks = [cv2.erode((i * 0.45).astype(np.float32), np.ones((2, 2), np.uint8)) for i in inks]  # faint, thin
    img = compose(inks, pos, (480, 640), seed=seed).astype(np.float32)
    yy, xx = np.mgrid[0:480, 0:640]
    img *= 1 - 0.55 / (1 + np.exp(-((xx - 0.8 * yy) - 180) / 6.0))  # a shadow over most of the frame
    img[:40] = 70 + np.random.default_rng(seed).normal(0, 3, (40, 640))  # the desk beyond the page
    img = np.clip(img, 0, 255).astype(np.uint8)
    # the shadow's edge alone makes the median residuals say "light ink"; the thin-structure test does not
    assert not _dark_by_median_residuals(img)
    assert detect_dark_ink(img)
    seg = segment(img)
    assert seg.dark_ink and _boxes_match(seg, pos, inks) == 6


def test_light_ink_on_dark_background_detected_and_segmented(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(10, 15)], height=50)
    img = compose(inks, pos, size, dark_ink=False)
    assert not detect_dark_ink(img)
    seg = segment(img)
    assert not seg.dark_ink
    assert _boxes_match(seg, pos, inks) == 5


def test_strong_shadow_does_not_become_ink(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(20, 24)], height=50, margin=60)
    img = compose(inks, pos, size).astype(np.float32)
    # A hard-edged shadow over the lower right quarter, digits partly inside it.
    h, w = img.shape
    img[h // 2:, w // 2:] *= 0.45
    seg = segment(img.astype(np.uint8))
    assert len(seg.candidates) == 4
    assert _boxes_match(seg, pos, inks) == 4


def test_blank_paper_has_no_candidates():
    img = np.clip(paper(300, 400, shade=0.5, seed=3), 0, 255).astype(np.uint8)
    seg = segment(img)
    assert seg.candidates == []
    assert seg.mask.mean() < 1.0


def test_jpeg_colour_blue_pen_on_yellow_paper(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(30, 34)], height=44)
    cover = np.zeros(size, np.float32)
    for ink, (px, py) in zip(inks, pos, strict=False):
        cover[py:py + ink.shape[0], px:px + ink.shape[1]] = np.maximum(
            cover[py:py + ink.shape[0], px:px + ink.shape[1]], ink)
    paper_bgr = np.array([80, 230, 240], np.float32)  # yellow
    pen_bgr = np.array([160, 40, 20], np.float32)  # blue ballpoint
    img = paper_bgr * (1 - cover[..., None]) + pen_bgr * cover[..., None]
    ok, buf = cv2.imencode(".jpg", img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 60])
    assert ok
    seg = segment(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert _boxes_match(seg, pos, inks) == 4


def test_ruled_lines_removed_and_digits_kept(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(40, 45)], height=50, margin=50)
    img = compose(inks, pos, size).astype(np.float32)
    h, w = img.shape
    # Dark rulings, one running right through the digits' lower half, slightly tilted.
    for y in (20, pos[0][1] + 38, h - 15):
        cv2.line(img, (0, y), (w - 1, y + 3), 90, 2)
    seg = segment(img.astype(np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(seg.mask)
    assert n > 1
    assert stats[1:, 2].max() < 0.3 * w, "a long horizontal component is left in the mask"
    assert len(seg.candidates) == 5
    assert _boxes_match(seg, pos, inks, tol=6) == 5


def _turned_rulings(img: np.ndarray, tilt_deg: float, pitch: int, through: int, grid: bool) -> None:
    """Thin rulings turned by ``tilt_deg`` (down to the right for positive), one through row ``through`` at
    x = 0; with ``grid`` the upright lines of squared paper too, turned alike."""
    h, w = img.shape
    t = math.tan(math.radians(tilt_deg))
    for c in range(through % pitch - pitch * (1 + int(abs(t) * w) // pitch), h + pitch, pitch):
        cv2.line(img, (0, c), (w - 1, round(c + t * (w - 1))), 150, 1, cv2.LINE_AA)
    if grid:
        for c in range(-pitch * (1 + int(abs(t) * h) // pitch), w + pitch, pitch):
            cv2.line(img, (c, 0), (round(c - t * (h - 1)), h - 1), 150, 1, cv2.LINE_AA)


@pytest.mark.parametrize("tilt", [-12.0, 8.0, 14.0])
@pytest.mark.parametrize("grid", [False, True])
def test_turned_ruled_and_squared_paper_rulings_removed(mnist, tilt, grid):
    # A page turned in front of the camera turns its rulings with the writing: the straight search misses
    # them, and a ruling through the digits would join a whole line of them into one component.
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(40, 46)], height=44, gap=26, margin=60,
                                     tilt_deg=tilt)
    img = compose(inks, pos, size, shade=0.2).astype(np.float32)
    h, w = img.shape
    # the ruling the digits sit on, through their lower part
    x0, y0 = pos[0][0], pos[0][1] + 36
    through = round(y0 - math.tan(math.radians(tilt)) * x0)
    _turned_rulings(img, tilt, 34, through, grid)
    seg = segment(img.astype(np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(seg.mask)
    assert stats[1:, 2].max() < 0.3 * w, "a long component (a ruling) is left in the mask"
    assert len(seg.candidates) == 6
    assert _boxes_match(seg, pos, inks, tol=6) == 6


@pytest.mark.parametrize("horizontal", [True, False])
def test_a_dashed_ruling_a_little_off_the_axis_is_found_with_wobble(horizontal):
    # What a faint ruling looks like once the page is turned level: dashes, and perspective leaves it
    # a degree or two off. The straight search needs unbroken runs; the turned page's search does not.
    mask = np.zeros((360, 640), np.uint8)
    cv2.line(mask, (0, 100), (639, 118), 255, 1)  # 1.6 degrees
    cv2.line(mask, (0, 250), (639, 236), 255, 1)
    yy, xx = np.mgrid[0:360, 0:640]
    mask[(xx % 9) < 3] = 0  # gaps of 3 px every 9
    if not horizontal:
        mask = np.ascontiguousarray(mask.T)
    straight, t0 = find_lines(mask, horizontal, SegmentParams())[:2]
    turned, t1 = find_lines(mask, horizontal, SegmentParams(), wobble=True)[:2]
    assert t0 == 0.0 and not straight.any()
    assert t1 > 0 and np.count_nonzero(turned & mask) >= 0.9 * np.count_nonzero(mask)


def test_a_desk_strip_along_the_frame_border_does_not_set_the_digit_size(mnist):
    # The page ends just inside the frame's right edge, a little aslant; the dark desk beyond is a strip
    # most of the frame tall, taller than any digit: it must not be taken for the size of the writing.
    x, _ = mnist
    inks, pos, _ = line_of_digits([x[i] for i in range(40, 45)], height=30, gap=14, margin=60)
    img = compose(inks, pos, (480, 640), shade=0.1).astype(np.float32)
    yy, xx = np.mgrid[0:480, 0:640]
    img[(xx > 610 + 0.04 * (yy - 240)) & (yy > 90)] = 70.0
    seg = segment(np.clip(img, 0, 255).astype(np.uint8))
    assert _boxes_match(seg, pos, inks) == 5


def test_ruled_pages_are_told_from_a_few_streaks():
    assert is_ruled([40.0, 70.0, 100.0, 130.0, 160.0])
    assert is_ruled([40.0, 70.5, 129.0, 160.0])  # a ruling missed (under a row of digits) is fine
    assert not is_ruled([40.0, 70.0, 100.0])  # too few to tell
    assert not is_ruled([577.0, 766.0, 947.0, 1010.0])  # a desk's grain: streaks at no common pitch
    assert not is_ruled([])
    # A squared page under perspective, as found (generated scene): the pitch runs from ~28 to ~33 px and
    # lines found in pieces sit a few px off - one 26 px gap is no reason to call the page unruled.
    assert is_ruled([44, 77, 103, 136, 168, 198, 198, 230, 230, 260, 288, 352, 414, 446, 476, 476])
    # ... but streaks whose gaps mostly fit no pitch are not a ruling.
    assert not is_ruled([40.0, 70.0, 100.0, 130.0, 171.0, 219.0, 262.0])


def test_a_faint_dashed_grid_on_a_level_page_is_removed(mnist):
    # A pale grey grid the threshold breaks into dashes: its unbroken lines mark the page as squared,
    # and the search with the gaps closed finds the dashed ones too, also through the digits.
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(40, 46)], height=44, gap=26, margin=110)
    img = compose(inks, pos, size, shade=0.0).astype(np.float32)
    h, w = img.shape
    grid = np.zeros((h, w), np.float32)
    for c in range(5, max(h, w), 30):
        grid[c:c + 1, :] = 1.0
        grid[:, c:c + 1] = 1.0
    yy, xx = np.mgrid[0:h, 0:w]
    dashed = ((xx + yy) % 8 < 2) & ((yy // 30) % 2 == 1)  # every other row of the grid is dashed
    grid[dashed] = 0.0
    img *= 1.0 - 0.3 * grid
    seg = segment(np.clip(img, 0, 255).astype(np.uint8))
    assert len(seg.candidates) == 6
    assert _boxes_match(seg, pos, inks, tol=6) == 6


def _squared_scene(mnist, seed: int):
    """A generated squared page (tools/scenegen.py) drawn with the fixture's digits."""
    if str(ROOT / "tools") not in sys.path:
        sys.path.insert(0, str(ROOT / "tools"))
    import scenegen

    x, y = mnist
    return scenegen.SceneGenerator(x, y).scene("squared", seed)


def test_a_squared_page_under_perspective_is_cleaned(mnist):
    # A generated squared page seen at an angle (tools/scenegen.py, fixture digits): the grid's pitch runs
    # from ~28 to ~33 px across the frame and lines found in pieces sit a few px off. Taken as squared,
    # its dashed lines are searched with the gaps closed and go, also where they touch the digits; taken
    # as unruled (the smallest gap was the pitch), 333 px of grid stayed joined to the digits.
    sc = _squared_scene(mnist, 23)
    seg = segment(sc.image)
    ink = seg.mask_at_source() > 0
    digits = np.zeros_like(ink)
    for number in sc.numbers:
        for dg in number.digits:
            bx, by, bw, bh = dg.box
            digits[max(0, by - 3):by + bh + 3, max(0, bx - 3):bx + bw + 3] = True
            assert ink[by:by + bh, bx:bx + bw].sum() > 0.05 * bw * bh  # the digit itself is still there
    assert int((ink & ~digits).sum()) == 0


@pytest.mark.parametrize("seed", [3, 26])
def test_digits_touching_a_squared_pages_lines_keep_their_strokes(mnist, seed):
    # On these generated squared pages a digit's stroke runs along a grid line for less than the line
    # search's run; taken out with the line, the digit broke (one digit per page lost its box). Over 150
    # such pages, 1,758 digit boxes found against 1,748 when only whole runs along a line were kept.
    sc = _squared_scene(mnist, seed)
    truth = [dg.box for number in sc.numbers for dg in number.digits]
    assert _truth_boxes_match(segment(sc.image), truth) == len(truth)


@pytest.mark.parametrize("tilt", [-14.0, -6.0, 3.0, 11.0])
@pytest.mark.parametrize("upright", [False, True])
def test_ruling_angle_is_measured(tilt, upright):
    img = np.zeros((360, 640), np.uint8)
    t = math.tan(math.radians(tilt))
    for c in range(-200, 840, 40):
        if upright:  # the margin or the grid's upright lines, turned with the page
            cv2.line(img, (c, 0), (round(c - t * 359), 359), 255, 1)
        else:
            cv2.line(img, (0, c), (639, round(c + t * 639)), 255, 1)
    # getRotationMatrix2D's angle that levels a line running down to the right is positive
    assert ruling_angle(img, SegmentParams()) == pytest.approx(tilt, abs=0.8)
    assert ruling_angle(np.zeros((360, 640), np.uint8), SegmentParams()) is None


def test_ruling_removal_can_be_switched_off(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(40, 45)], height=50, margin=50)
    img = compose(inks, pos, size).astype(np.float32)
    w = img.shape[1]
    cv2.line(img, (0, pos[0][1] + 38), (w - 1, pos[0][1] + 38), 90, 2)
    seg = segment(img.astype(np.uint8), SegmentParams(remove_lines=False))
    n, _, stats, _ = cv2.connectedComponentsWithStats(seg.mask)
    assert stats[1:, 2].max() > 0.9 * w


def test_specks_dropped(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(50, 53)], height=50, margin=60)
    img = compose(inks, pos, size)
    rng = np.random.default_rng(1)
    h, w = img.shape
    for _ in range(40):
        cx, cy = int(rng.integers(5, w - 5)), int(rng.integers(5, h - 5))
        cv2.circle(img, (cx, cy), int(rng.integers(1, 3)), 40, -1)
    seg = segment(img)
    assert len(seg.candidates) == 3
    assert _boxes_match(seg, pos, inks, tol=6) == 3


def test_broken_digit_pieces_are_merged():
    # A "5"-like glyph drawn as a body and a separate flag above it; and a "4" in two strokes.
    img = np.full((200, 300), 230, np.uint8)
    cv2.ellipse(img, (80, 120), (25, 25), 0, -100, 160, 20, 5)
    cv2.line(img, (62, 95), (62, 70), 20, 5)
    cv2.line(img, (68, 62), (105, 62), 20, 5)  # flag, 3 px above the stem: separate component
    cv2.line(img, (180, 60), (170, 120), 20, 5)
    cv2.line(img, (170, 120), (215, 120), 20, 5)
    cv2.line(img, (205, 60), (205, 110), 20, 5)  # the 4's upper stem, a separate stroke above the bar
    seg = segment(img)
    assert len(seg.candidates) == 2
    widths = sorted(c.box[2] for c in seg.candidates)
    assert widths[0] >= 45 and widths[1] >= 45
    assert all(len(c.labels) >= 2 for c in seg.candidates)


def test_page_edge_and_small_frames(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(60, 63)], height=40, margin=50)
    img = compose(inks, pos, size)
    img[:, :8] = 30  # the table beside the page, along the left edge
    seg = segment(img)
    assert len(seg.candidates) == 3
    # A tiny frame (a crop 60 px tall) is enlarged to the working size and still found.
    small = cv2.resize(img, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    seg2 = segment(small)
    assert seg2.scale > 1
    assert len(seg2.candidates) == 3
    for c in seg2.candidates:
        bx, by, bw, bh = seg2.to_source(c.box)
        assert bx >= 0 and bx + bw <= small.shape[1] and by + bh <= small.shape[0]


def test_small_writing_in_a_big_frame_is_segmented_again_finer(mnist):
    x, _ = mnist
    # 30 px digits in a 2000 px wide frame: 10 px in the 640 px first pass, too small to trust.
    inks, pos, size = line_of_digits([x[i] for i in range(70, 74)], height=30, gap=20, margin=40)
    page = np.full((1200, 2000), 0, np.uint8)
    img = compose(inks, [(px + 900, py + 500) for px, py in pos], page.shape)
    seg = segment(img)
    first = 640 / 2000
    assert seg.scale > 2 * first
    assert 24 <= seg.typical_height <= 44
    assert _boxes_match(seg, [(px + 900, py + 500) for px, py in pos], inks, tol=4) == 4
    # Large writing in the same frame needs no second pass.
    inks, pos, size = line_of_digits([x[i] for i in range(70, 74)], height=160, gap=60, margin=200)
    seg = segment(compose(inks, pos, (size[0], 2000)))
    assert seg.scale == pytest.approx(first)
    assert len(seg.candidates) == 4


def test_crop_from_the_source_frame_is_finer_and_maps_back(mnist):
    x, _ = mnist
    inks, pos, _ = line_of_digits([x[i] for i in range(80, 83)], height=90, gap=40, margin=80)
    img = compose(inks, pos, (600, 1500))
    p = SegmentParams(max_side=400, refine_below_px=1)
    seg = segment(img, p)
    assert seg.scale < 0.5 and len(seg.candidates) == 3
    for cand, (px, py), ink in zip(seg.candidates, pos, inks, strict=True):
        coarse = seg.crop(cand)
        fine = seg.crop(cand, min_px=10_000, target_px=80)
        assert coarse.scale == seg.scale and fine.scale > 2 * seg.scale
        assert fine.ink.shape[0] > 2 * coarse.ink.shape[0]
        # The fine crop's own ink, mapped back to the frame, is where the digit was printed.
        ys, xs = np.nonzero(fine.own)
        box = fine.to_source((int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1), img.shape)
        assert abs(box[0] - px) <= 3 and abs(box[1] - py) <= 3
        assert abs(box[2] - ink.shape[1]) <= 6 and abs(box[3] - ink.shape[0]) <= 6
        assert fine.ink.max() > 0.9 and fine.ink.min() >= 0.0


def test_a_one_written_on_a_faint_grid_line_is_kept():
    img = np.full((400, 600), 235, np.uint8)
    for v in range(10, 600, 30):
        cv2.line(img, (v, 0), (v, 399), 195, 1)
    for v in range(10, 400, 30):
        cv2.line(img, (0, v), (599, v), 195, 1)
    # A "1" drawn exactly along a vertical grid line, and a "7" beside it.
    cv2.line(img, (250, 160), (250, 230), 30, 4)
    cv2.line(img, (300, 160), (340, 160), 30, 4)
    cv2.line(img, (340, 160), (315, 230), 30, 4)
    seg = segment(img)
    boxes = sorted(seg.to_source(c.box) for c in seg.candidates)
    assert len(boxes) == 2, boxes
    one = boxes[0]
    assert abs(one[1] - 158) <= 4 and abs(one[3] - 74) <= 6, one
    # Without the darkness map the same stroke would be taken for the grid: checked on the mask itself.
    n, _, stats, _ = cv2.connectedComponentsWithStats(seg.mask)
    assert stats[1:, 3].max() < 100, "a grid line is left in the mask"


def test_a_desk_beside_the_page_does_not_set_the_digit_size(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(90, 94)], height=44, gap=24, margin=80)
    img = compose(inks, pos, (500, size[1]))
    img[:, :14] = 60  # a dark desk strip along the left edge: as tall as the frame, more ink than the digits
    seg = segment(img)
    assert seg.typical_height == pytest.approx(44 * seg.scale, rel=0.25)
    assert _boxes_match(seg, pos, inks, tol=4) == 4


def test_component_statistics_equal_opencvs():
    rng = np.random.default_rng(4)
    for density in (0.0, 0.02, 0.3):
        mask = ((rng.random((90, 130)) < density) * 255).astype(np.uint8)
        mask = cv2.dilate(mask, np.ones((2, 2), np.uint8))
        n, lab, stats = components(mask)
        n_cv, lab_cv, stats_cv, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        assert n == n_cv and np.array_equal(lab, lab_cv) and np.array_equal(stats, stats_cv)


def test_quantile_equals_numpys_percentile():
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 1001):
        a = rng.normal(size=n).astype(np.float32)
        for q in (0.0, 0.2, 0.5, 0.9, 0.995, 1.0):
            assert quantile(a, q) == pytest.approx(float(np.percentile(a, 100 * q)), abs=1e-6)
    with pytest.raises(ValueError):
        quantile(np.array([]), 0.5)


def _desk_below(img: np.ndarray, top: int, seed: int) -> np.ndarray:
    """The page ends at row ``top``; below it a darker desk with a wood grain (as tools/scenegen.py draws it)."""
    rng = np.random.default_rng(seed)
    h, w = img.shape
    grain = cv2.resize(rng.normal(0, 1, (h // 8, w // 64)).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    wood = 100 + grain * 8 + rng.normal(0, 3, (h, w))
    out = img.astype(np.float32)
    out[top:] = wood[top:]
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("seed", range(4))
def test_desk_grain_around_one_digit_does_not_set_the_ink_level(mnist, seed):
    x, _ = mnist
    inks, pos, _ = line_of_digits([x[5]], height=60, margin=60)
    img = _desk_below(compose(inks, pos, (480, 640), seed=seed), 260, seed)
    seg = segment(img)
    assert _boxes_match(seg, pos, inks) == 1
    assert len(seg.candidates) <= 10
    # the grain's faint streaks are many; against the median of them (the old reference) most were kept
    # (the test in grey levels, which drops this grain on its own, is off on both sides here, and the
    # relative floor is at 0.5, where it was when the strongest share was brought in)
    share = segment(img, SegmentParams(min_abs_contrast=0.0, min_rel_contrast=0.5))
    median_only = segment(img, SegmentParams(strongest_share=0.0, min_abs_contrast=0.0, min_rel_contrast=0.5))
    assert len(seg.candidates) <= len(share.candidates) <= 10
    assert len(median_only.candidates) >= 2 * len(share.candidates), \
        (len(share.candidates), len(median_only.candidates))


def test_a_digit_written_half_as_dark_as_its_neighbours_is_kept(mnist):
    # A lighter pen or a pencil digit among inked ones. The relative floor was at half the typical ink,
    # which dropped such a digit whenever its own peak fell a little short (four of these eight pages);
    # since the grey-level test and the strongest share keep desk grain out, the floor is at 0.3.
    x, _ = mnist
    kept, kept_before = [], []
    for seed in range(8):
        inks, pos, _ = line_of_digits([x[i] for i in range(10 + 5 * seed, 15 + 5 * seed)], height=48, gap=24,
                                      margin=60)
        inks[2] = inks[2] * 0.5
        img = compose(inks, pos, (480, 640), seed=seed)
        kept.append(_boxes_match(segment(img), pos, inks))
        kept_before.append(_boxes_match(segment(img, SegmentParams(min_rel_contrast=0.5)), pos, inks))
    assert kept == [5] * 8
    assert min(kept_before) == 4


def _shadow_and_desk(mnist, seed: int):
    """Five digits, the right ones in a shadow that halves the light; a dark wood desk below the page."""
    x, _ = mnist
    inks, pos, _ = line_of_digits([x[i] for i in range(40, 45)], height=48, gap=24, margin=60)
    img = compose(inks, pos, (480, 640), seed=seed).astype(np.float32)
    img[:, 300:] *= 0.5
    rng = np.random.default_rng(seed)
    grain = cv2.resize(rng.normal(0, 1, (60, 10)).astype(np.float32), (640, 480), interpolation=cv2.INTER_LINEAR)
    img[300:] = 55 + grain[300:] * 8 + rng.normal(0, 2, (180, 640))
    return np.clip(img, 0, 255).astype(np.uint8), inks, pos


def _on_desk(seg) -> int:
    return sum((c.box[1] + c.box[3] / 2) / seg.scale > 300 for c in seg.candidates)


@pytest.mark.parametrize("seed", range(3))
def test_a_dark_desks_grain_is_dropped_and_digits_in_a_shadow_are_kept(mnist, seed):
    img, inks, pos = _shadow_and_desk(mnist, seed)
    seg = segment(img)
    assert _boxes_match(seg, pos, inks) == 5
    assert _on_desk(seg) == 0


def test_without_the_grey_level_test_a_dark_desks_grain_passes_as_ink(mnist):
    # divided by the desk's own dark background, the grain looks like ink to the relative tests alone
    found = [_on_desk(segment(_shadow_and_desk(mnist, seed)[0], SegmentParams(min_abs_contrast=0.0)))
             for seed in range(3)]
    assert sum(found) >= 5, found


def test_pencil_digits_beside_a_marker_digit_are_all_kept(mnist):
    x, _ = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(30, 35)], height=48, gap=24)
    # one marker digit and four in pencil, as faint as the hysteresis lets through: the strongest digit
    # must not make the pencil ones look like grain
    inks = [ink * (1.0 if i == 0 else 0.5) for i, ink in enumerate(inks)]
    seg = segment(compose(inks, pos, size))
    assert _boxes_match(seg, pos, inks) == 5


@pytest.mark.parametrize("fade", [0.08, 0.1])
def test_a_pencil_digit_fading_after_its_first_third_is_found_whole(mnist, fade):
    # A pencil digit pressed hard only at its start: the rest falls below the frame's ink level and the
    # candidate was the short dark piece alone (18 of 48 px tall), which reads as another digit (the top
    # of a 0 as a 7). Grown through the fainter ink around it, the whole digit is the candidate.
    x, _ = mnist
    whole, alone = [], []
    for seed in range(6):
        inks, pos, _ = line_of_digits([x[i] for i in range(10 + 5 * seed, 15 + 5 * seed)], height=48, gap=24,
                                      margin=60)
        inks[2] = inks[2].copy()
        inks[2][inks[2].shape[0] // 3:] *= fade
        img = compose(inks, pos, (480, 640), seed=seed)
        whole.append(_boxes_match(segment(img), pos, inks))
        alone.append(_boxes_match(segment(img, SegmentParams(regrow_below=0)), pos, inks))
    assert whole == [5] * 6
    assert sum(alone) <= 6 * 4 + 1  # without the regrowth the faded digit is (nearly always) a piece


def test_a_short_piece_does_not_grow_through_a_neighbours_faint_rim():
    # A short stroke 10 px left of a blurred "2": the ink between them above half the frame's level is the 2's
    # rim (unlabelled), and grown through it the piece's box swallowed the 2 and its crop cut the 2's rim away.
    img = np.full((480, 640), 225, np.uint8)
    for i, ch in enumerate("3845"):
        cv2.putText(img, ch, (60 + 90 * i, 400), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 40, 7, cv2.LINE_AA)
    cv2.putText(img, "2", (300, 200), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 40, 7, cv2.LINE_AA)
    cv2.line(img, (290, 160), (290, 200), 40, 6, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), 2.5)
    img = np.clip(img + np.random.default_rng(0).normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    seg = segment(img)
    boxes = [c.box for c in seg.candidates if c.box[1] < 250]
    assert len(boxes) == 2
    (ax, _, aw, _), (bx, _, bw, _) = sorted(boxes)
    assert ax + aw <= bx  # side by side, not one inside the other


def test_regrowth_is_skipped_on_a_frame_of_many_short_pieces():
    from edge.segment import REGROW_MAX, Candidate, regrow_fragments

    H, W = 480, 640
    d = np.random.default_rng(1).random((H, W)).astype(np.float32) * 0.3
    lab = np.zeros((H, W), np.int32)
    cands = []
    for i in range(REGROW_MAX + 1):
        x, y = 4 + 9 * (i % 70), 100 + 120 * (i // 70)
        lab[y:y + 60, x] = i + 1
        cands.append(Candidate((x, y, 1, 60), (i + 1,)))
    before = lab.copy()
    assert regrow_fragments(cands, lab, np.zeros((H, W), np.uint8), d, 0.3, 100.0, SegmentParams()) == cands
    assert (lab == before).all()
