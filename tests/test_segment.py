"""Segmentation on synthetic pages whose digits and positions are known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.segment import SegmentParams, detect_dark_ink, segment
from tests.synth_pages import compose, line_of_digits, load_mnist, paper


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


def _boxes_match(seg, positions, inks, tol=4):
    """How many printed digits have exactly one candidate whose (source) box matches within ``tol`` px."""
    boxes = [seg.to_source(c.box) for c in seg.candidates]
    found = 0
    for (x, y), ink in zip(positions, inks, strict=False):
        h, w = ink.shape
        hits = [b for b in boxes
                if abs(b[0] - x) <= tol and abs(b[1] - y) <= tol
                and abs(b[2] - w) <= 2 * tol and abs(b[3] - h) <= 2 * tol]
        found += len(hits) == 1
    return found


def test_line_of_digits_gives_one_candidate_each(mnist):
    x, y = mnist
    inks, pos, size = line_of_digits([x[i] for i in range(6)], height=50, gap=25)
    seg = segment(compose(inks, pos, size))
    assert seg.dark_ink
    assert len(seg.candidates) == 6
    assert _boxes_match(seg, pos, inks) == 6


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
