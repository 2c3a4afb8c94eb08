"""annotate(): draws on a copy, keeps size, shows what it claims, and a fixed-size debug panel."""

from __future__ import annotations

import numpy as np
import pytest

from edge.annotate import GREEN, RED, STABLE, FpsMeter, annotate, crop_items, debug_panel, top3_lines
from edge.types import Digit, FrameResult, Number


def number(value: str, x: int, y: int, conf: float) -> Number:
    digits = tuple(Digit(int(c), conf, (x + 45 * i, y, 40, 60), ((int(c), conf), (7, 0.05), (10, 0.01)))
                   for i, c in enumerate(value))
    return Number(value, conf, (x, y, 45 * len(value) - 5, 60), digits)


def colour_pixels(img: np.ndarray, colour: tuple[int, int, int], region: tuple[int, int, int, int]) -> int:
    x, y, w, h = region
    patch = img[y:y + h, x:x + w].astype(int)
    return int((np.abs(patch - np.array(colour)).sum(axis=2) < 30).sum())


@pytest.fixture
def scene() -> tuple[np.ndarray, FrameResult, Number, Number]:
    img = np.full((480, 640), 200, np.uint8)  # gray input: the output must be BGR anyway
    good, bad = number("4721", 100, 100, 0.98), number("3", 450, 300, 0.3)
    mask = np.zeros((480, 640), np.uint8)
    mask[100:160, 100:280] = 255
    crops = [np.full((28, 28), 40 * k, np.uint8) for k in range(5)]
    res = FrameResult([good, bad], {}, {"mask": mask, "crops": crops,
                                        "boxes": [d.box for n in (good, bad) for d in n.digits]})
    return img, res, good, bad


def test_draws_on_a_bgr_copy_of_the_same_size(scene) -> None:
    img, res, _, _ = scene
    before = img.copy()
    out = annotate(img, res, None, None)
    assert out.shape == (480, 640, 3) and out.dtype == np.uint8
    assert np.array_equal(img, before)  # input untouched
    assert (out != 200).any()


def test_boxes_are_coloured_by_confidence_and_stability(scene) -> None:
    img, res, good, bad = scene
    plain = annotate(img, res, None, None)
    # The confident number's frame is green, the doubtful one's red.
    assert colour_pixels(plain, GREEN, (90, 90, 200, 80)) > 100
    assert colour_pixels(plain, RED, (440, 290, 60, 80)) > 50
    assert colour_pixels(plain, RED, (90, 90, 200, 80)) == 0
    # Once it is stable, its frame turns to the stable colour.
    stable = annotate(img, res, [good], None)
    assert colour_pixels(stable, STABLE, (90, 90, 200, 80)) > 100
    assert colour_pixels(plain, STABLE, (90, 90, 200, 80)) == 0


def test_fps_and_stable_list_are_drawn(scene) -> None:
    img, res, good, _ = scene
    without = annotate(img, res, None, None)
    with_fps = annotate(img, res, None, 14.2)
    top_right = (slice(0, 40), slice(500, 640))
    assert np.array_equal(without[top_right], annotate(img, res, None, None)[top_right])
    assert not np.array_equal(without[top_right], with_fps[top_right])
    top_left = (slice(0, 60), slice(0, 200))
    assert not np.array_equal(without[top_left], annotate(img, res, [good], None)[top_left])


def test_debug_view_adds_a_panel_of_fixed_size(scene) -> None:
    img, res, _, _ = scene
    out = annotate(img, res, None, 10.0, debug=True)
    assert out.shape == (480, 640 + 320, 3)
    panel = out[:, 640:]
    assert (panel[: 480 * 2 // 5] == 255).any()  # the mask shows
    # Empty debug material: same size, still drawn.
    empty = annotate(img, FrameResult([]), None, None, debug=True)
    assert empty.shape == out.shape


@pytest.mark.parametrize("n", [0, 1, 7, 40])
def test_debug_panel_has_exactly_the_asked_size(n: int) -> None:
    res = FrameResult([], {}, {"crops": [np.full((28, 28), 250, np.uint8)] * n})  # 250: not the labels' white
    panel = debug_panel(res, (300, 200))
    assert panel.shape == (300, 200, 3)
    assert ((panel == 250).all(axis=2).sum() > 100) == (n > 0)


def test_crop_items_accepts_the_usual_shapes(scene) -> None:
    _, res, good, _ = scene
    items = crop_items(res)
    assert len(items) == 5
    assert items[0][1] == good.digits[0].box and items[0][2][0] == (4, 0.98)  # top-3 found by box
    arr = FrameResult([], {}, {"crops": np.zeros((3, 28, 28), np.uint8)})
    assert len(crop_items(arr)) == 3
    dicts = FrameResult([], {}, {"crops": [{"crop": np.zeros((28, 28)), "box": (1, 2, 3, 4), "top3": ((5, .9),)}]})
    assert crop_items(dicts)[0][1:] == ((1, 2, 3, 4), ((5, 0.9),))
    tuples = FrameResult([], {}, {"crops": [((1, 2, 3, 4), np.zeros((28, 28)))]})
    assert crop_items(tuples)[0][1] == (1, 2, 3, 4)
    # edge.reader's shape: (box, crop, top3)
    reader = FrameResult([], {}, {"crops": [((1, 2, 3, 4), np.zeros((28, 28)), ((3, 0.8), (5, 0.1), (10, 0.05)))]})
    assert crop_items(reader)[0][1:] == ((1, 2, 3, 4), ((3, 0.8), (5, 0.1), (10, 0.05)))


def test_top3_lines() -> None:
    assert top3_lines(((4, 0.981), (9, 0.012), (10, 0.004))) == ("4 98%", "9:1 N:0")
    assert top3_lines(()) == ("?", "")


def test_fps_meter_smooths_from_timestamps() -> None:
    m = FpsMeter(alpha=0.5)
    assert m.tick(0.0) is None
    assert m.tick(0.1) == pytest.approx(10.0)
    assert m.tick(0.3) == pytest.approx(7.5)
