"""The change gate (edge/motion.py): pure decisions on arrays, then the gated reader on real frames."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edge.motion import ChangeGate, GatedReader, GateParams, changed_pixels, thumbnail
from edge.numbers import NumbersParams
from edge.stabilise import StabiliseParams, Stabiliser
from edge.types import Digit, FrameResult, Number
from tests.synth_pages import ROOT_MODEL, compose, line_of_digits, load_mnist

FPS = 15.0


def _page(seed: int = 0) -> np.ndarray:
    """A 1280x720 gray page with some structure (a gradient and a few dark blobs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:720, 0:1280].astype(np.float32)
    page = 220.0 - 30.0 * xx / 1280.0
    for _ in range(6):
        cx, cy = rng.integers(100, 1180), rng.integers(100, 620)
        page[cy - 20:cy + 20, cx - 12:cx + 12] = 40.0
    return page


def _frame(page: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    return np.clip(page + rng.normal(0, sigma, page.shape), 0, 255).astype(np.uint8)


def test_thumbnail_is_the_block_mean():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (720, 1280), dtype=np.uint8)
    th = thumbnail(img, 160)
    assert th.shape == (90, 160) and th.dtype == np.uint8
    blocks = img.reshape(90, 8, 160, 8).mean(axis=(1, 3))
    assert np.abs(th.astype(np.float64) - blocks).max() <= 1.5  # three halvings, each rounding to a whole level
    # Odd sizes end at the requested longest side too.
    assert max(thumbnail(img[:701, :1111], 160).shape) == 160
    assert thumbnail(img[:50, :60], 160).shape == (50, 60)


def test_sensor_noise_and_exposure_are_no_change_but_a_stroke_is():
    p = GateParams()
    rng = np.random.default_rng(1)
    page = _page()
    ref = thumbnail(_frame(page, rng, 8.0), p.thumb_side)
    assert changed_pixels(thumbnail(_frame(page, rng, 8.0), p.thumb_side), ref, p) < p.min_changed_px
    # Auto exposure: the whole frame 20 levels brighter.
    assert changed_pixels(thumbnail(_frame(page + 20, rng, 8.0), p.thumb_side), ref, p) < p.min_changed_px
    # One pen stroke, 6 px wide and 30 px long, added to the page.
    stroked = page.copy()
    stroked[300:306, 600:630] = 40.0
    assert changed_pixels(thumbnail(_frame(stroked, rng, 8.0), p.thumb_side), ref, p) >= p.min_changed_px


def _run_gate(gate: ChangeGate, frames: list[np.ndarray], signatures: list[object] | None = None) -> list[bool]:
    out = []
    for i, f in enumerate(frames):
        read = gate.should_read(f, i / FPS)
        if read:
            gate.read_done(signatures[i] if signatures else "same")
        out.append(read)
    return out


def test_static_scene_is_read_until_settled_then_at_the_forced_interval():
    p = GateParams(settle_reads=3, max_skip_frames=10, max_skip_s=100.0)
    rng = np.random.default_rng(2)
    page = _page()
    reads = _run_gate(ChangeGate(p), [_frame(page, rng) for _ in range(40)])
    # Three reads to settle, then one read every 10 frames, never more than 9 skipped in a row.
    assert reads[:3] == [True, True, True]
    idx = [i for i, r in enumerate(reads) if r]
    assert idx == [0, 1, 2, 12, 22, 32]


def test_forced_read_after_max_skip_seconds():
    p = GateParams(settle_reads=1, max_skip_frames=1000, max_skip_s=1.0)
    rng = np.random.default_rng(3)
    page = _page()
    gate = ChangeGate(p)
    times = [0.0, 0.3, 0.6, 0.9, 1.05, 1.2, 1.5, 2.1]
    reads = []
    for t in times:
        r = gate.should_read(_frame(page, rng), t)
        if r:
            gate.read_done("same")
        reads.append(r)
    assert reads == [True, False, False, False, True, False, False, True]


def test_a_change_is_read_at_once_and_settled_again():
    p = GateParams(settle_reads=2, max_skip_frames=100, max_skip_s=100.0)
    rng = np.random.default_rng(4)
    page, moved = _page(), _page()
    moved[400:440, 300:340] = 40.0  # a new mark on the paper
    frames = [_frame(page, rng) for _ in range(10)] + [_frame(moved, rng) for _ in range(10)]
    # The new mark changes the reading: read at once, then until two reads agree.
    reads = _run_gate(ChangeGate(p), frames, ["A"] * 10 + ["B"] * 10)
    assert [i for i, r in enumerate(reads) if r] == [0, 1, 10, 11]
    # A change of the picture that reads the same (the page shifted): that one read is reused.
    reads = _run_gate(ChangeGate(p), frames, ["A"] * 20)
    assert [i for i, r in enumerate(reads) if r] == [0, 1, 10]


def test_a_moving_page_is_read_every_few_frames_and_where_it_comes_to_rest():
    p = GateParams(settle_reads=1, moving_read_every=3, max_skip_frames=100, max_skip_s=100.0)
    rng = np.random.default_rng(9)
    base = _page()
    frames = [_frame(base, rng) for _ in range(5)]
    for k in range(1, 10):  # slides 12 px a frame for 9 frames, then rests
        frames.append(_frame(np.roll(base, 12 * k, axis=1), rng))
    frames += [_frame(np.roll(base, 108, axis=1), rng) for _ in range(5)]
    # Without backing off: every 3rd moving frame, and the frame at rest.
    flat = GateParams(settle_reads=1, moving_read_every=3, moving_backoff=1, max_skip_frames=100, max_skip_s=100.0)
    reads = _run_gate(ChangeGate(flat), frames)
    assert [i for i, r in enumerate(reads) if r] == [0, 5, 8, 11, 14]
    # Backing off: the moving read at 5 gave the same numbers, so the next comes 6 frames later.
    reads = _run_gate(ChangeGate(p), frames)
    assert [i for i, r in enumerate(reads) if r] == [0, 5, 11, 14]
    # Moving reads that keep changing (a hand writing) are never backed off.
    values = [str(i) if 5 <= i < 14 else "x" for i in range(len(frames))]
    reads = _run_gate(ChangeGate(p), frames, values)
    assert [i for i, r in enumerate(reads) if r][:5] == [0, 5, 8, 11, 14]


def test_reads_that_disagree_keep_the_gate_reading():
    p = GateParams(settle_reads=3, max_skip_frames=100, max_skip_s=100.0)
    rng = np.random.default_rng(5)
    page = _page()
    frames = [_frame(page, rng) for _ in range(12)]
    # A weak digit read 3 / 9 / 3 / 9 ...: nothing is confirmed, so nothing is reused.
    flicker = ["3" if i % 2 else "9" for i in range(12)]
    assert all(_run_gate(ChangeGate(p), frames, flicker))
    # Once the reads agree the gate may skip.
    steady = flicker[:6] + ["3"] * 6
    reads = _run_gate(ChangeGate(p), frames, steady)
    assert reads[:8] == [True] * 8 and not any(reads[8:])


def test_disabled_gate_reads_every_frame():
    rng = np.random.default_rng(6)
    page = _page()
    assert all(_run_gate(ChangeGate(GateParams(enabled=False)), [_frame(page, rng) for _ in range(20)]))


@pytest.mark.parametrize("bad", [{"thumb_side": 4}, {"min_changed_px": 0}, {"settle_reads": 0},
                                 {"max_skip_frames": 0}, {"max_skip_s": 0.0}, {"min_level": -1.0}])
def test_impossible_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        GateParams(**bad)


class _CountingReader:
    """Stands in for edge.reader.Reader: one number whose value the test sets, and a count of reads."""

    def __init__(self) -> None:
        self.value = "12"
        self.calls = 0

    def read(self, image: np.ndarray, debug: bool | None = None) -> FrameResult:
        self.calls += 1
        digits = tuple(Digit(int(c), 0.99, (10 + 30 * i, 10, 20, 40)) for i, c in enumerate(self.value))
        res = FrameResult([Number(self.value, 0.98, (10, 10, 30 * len(self.value), 40), digits)],
                          timings={"segment": 1.0})
        if debug:
            res.debug = {"mask": np.zeros(image.shape[:2], np.uint8), "crops": []}
        return res


def _ten_still_frames(inner: Any, seed: int) -> tuple[GatedReader, list[FrameResult], np.ndarray,
                                                      np.random.Generator]:
    """A gate that settles after two reads, over ten frames of one still page; the page and the noise
    generator are returned for the frames a test adds."""
    rng = np.random.default_rng(seed)
    page = _page()
    gr = GatedReader(inner, GateParams(settle_reads=2, max_skip_frames=50, max_skip_s=100.0))
    return gr, [gr.read(_frame(page, rng), ts=i / FPS) for i in range(10)], page, rng


def test_gated_reader_reuses_results_and_honours_debug():
    inner = _CountingReader()
    gr, results, page, rng = _ten_still_frames(inner, 7)
    assert inner.calls == 2
    assert all(r.numbers[0].value == "12" for r in results)
    assert results[5].timings.get("gated") == 1.0 and "segment" not in results[5].timings
    # The debug view switched on: the next frame is read with debug material, then reused with it.
    r = gr.read(_frame(page, rng), ts=1.0, debug=True)
    assert inner.calls == 3 and "mask" in r.debug and gr.last_was_read
    r = gr.read(_frame(page, rng), ts=1.1, debug=True)
    assert inner.calls == 3 and "mask" in r.debug and not gr.last_was_read


@pytest.mark.skipif(not ROOT_MODEL.is_file(), reason="models/digits_int8.tflite not built yet")
def test_changed_number_is_re_read_and_the_stable_reading_updates_within_the_bound():
    """Daemon-like loop on real frames: the gate skips a static page, a rewritten digit is read at once
    and the stabiliser publishes the new value within ``change_streak`` frames of the change."""
    from edge.classify import Classifier
    from edge.reader import Reader
    from tests.test_reader import digits_of

    x, y = load_mnist()
    clf = Classifier(ROOT_MODEL, num_threads=1)
    probs = clf.predict(x)
    ok = (probs.argmax(axis=1) == y) & (probs.max(axis=1) > 0.95)
    good = (x, {d: [int(i) for i in np.nonzero(ok & (y == d))[0]] for d in range(10)})

    def page(text: str) -> np.ndarray:
        inks, pos, _ = line_of_digits(digits_of(good, text, 3), height=60, gap=26, margin=300)
        return compose(inks, [(px + 200, py + 200) for px, py in pos], (720, 1280)).astype(np.float32)

    before, after = page("4721"), page("4727")
    rng = np.random.default_rng(8)
    frames = [_frame(before, rng, 3.0) for _ in range(45)] + [_frame(after, rng, 3.0) for _ in range(30)]
    change_at = 45
    params = GateParams(max_skip_frames=30, max_skip_s=100.0)
    gated = GatedReader(Reader(clf, numbers_params=NumbersParams()), params)
    sp = StabiliseParams()
    stab = Stabiliser(sp)
    published: list[tuple[int, list[str]]] = []
    read_frames = []
    for i, f in enumerate(frames):
        res = gated.read(f, ts=i / FPS)
        if gated.last_was_read:
            read_frames.append(i)
        changed = stab.update(res.numbers, i / FPS)
        if changed is not None:
            published.append((i, [n.value for n in changed]))
    # The static page: settled after a few reads, then only the forced re-reads until the change.
    before_change = [i for i in read_frames if i < change_at]
    assert len(before_change) <= params.settle_reads + 2
    assert published[0][1] == ["4721"]
    # The rewritten digit is read on the very frame it appears ...
    assert change_at in read_frames
    # ... and the new value is published within change_streak frames.
    updates = [(i, v) for i, v in published if v == ["4727"]]
    assert updates, published
    assert updates[0][0] - change_at <= sp.change_streak
    # Most frames were not read at all.
    assert len(read_frames) < len(frames) / 4


class _ClutteredReader(_CountingReader):
    """A frame too cluttered to read, every time (what edge.reader.Reader says of a page of print)."""

    def read(self, image: np.ndarray, debug: bool | None = None) -> FrameResult:
        self.calls += 1
        return FrameResult([], timings={"segment": 1.0}, cluttered=True)


def test_a_reused_cluttered_result_stays_cluttered():
    # The reused result dropped the flag, and a cluttered read agreed with an empty page's: once the gate
    # settled, still cluttered frames reached the stabiliser as "no numbers" and wiped the stable readings.
    inner = _ClutteredReader()
    _, results, _, _ = _ten_still_frames(inner, 3)
    assert inner.calls < 10  # the gate settles on a still cluttered view, as on any still view
    assert all(r.cluttered for r in results)
    # a cluttered read does not agree with an empty page's: the gate keeps reading after the change
    gate = ChangeGate(GateParams(settle_reads=2))
    gate.read_done(())
    from edge.motion import CLUTTERED

    gate.read_done(CLUTTERED)
    assert gate._agree == 1


def test_a_stroke_added_while_the_exposure_changes_is_still_a_change():
    # Auto exposure brightens the frame by 20 levels in the same frame as a pen stroke is added: the
    # brightening is taken out, the stroke is not hidden by it.
    p = GateParams()
    rng = np.random.default_rng(11)
    page = _page()
    ref = thumbnail(_frame(page, rng, 4.0), p.thumb_side)
    stroked = page.copy()
    stroked[300:306, 600:630] = 40.0
    assert changed_pixels(thumbnail(_frame(stroked + 20, rng, 4.0), p.thumb_side), ref, p) >= p.min_changed_px


def test_a_noisy_low_light_camera_is_no_change():
    # Sensor noise of 40 grey levels (a dark room, high gain): the threshold follows the noise.
    p = GateParams()
    rng = np.random.default_rng(12)
    page = _page()
    ref = thumbnail(_frame(page, rng, 40.0), p.thumb_side)
    assert all(changed_pixels(thumbnail(_frame(page, rng, 40.0), p.thumb_side), ref, p) < p.min_changed_px
               for _ in range(5))


def test_a_frame_of_another_size_is_read():
    # The camera came back at another resolution (or the file source moved to a smaller video).
    gate = ChangeGate(GateParams(settle_reads=1))
    rng = np.random.default_rng(13)
    page = _page()
    assert gate.should_read(_frame(page, rng), 0.0)
    gate.read_done("same")
    assert not gate.should_read(_frame(page, rng), 0.1)
    assert gate.should_read(_frame(page, rng)[:480, :640], 0.2)


def test_a_page_kept_moving_at_a_low_frame_rate_is_still_read_every_max_skip_s():
    # At one frame a second, a backed-off moving interval (up to 12 frames) would leave 12 s between reads.
    p = GateParams(settle_reads=1, moving_read_every=3, moving_backoff=4, max_skip_frames=100, max_skip_s=3.0)
    rng = np.random.default_rng(14)
    base = _page()
    frames = [_frame(base, rng) for _ in range(3)] + [_frame(np.roll(base, 12 * k, axis=1), rng) for k in range(1, 30)]
    gate = ChangeGate(p)
    reads = []
    for i, f in enumerate(frames):
        if gate.should_read(f, float(i)):
            gate.read_done("same")
            reads.append(i)
    assert max(b - a for a, b in zip(reads, reads[1:], strict=False)) <= 3, reads


def test_a_long_slide_backs_off_to_the_limit_and_not_before_it_moves():
    # A still page read (and agreeing) a few times, then slid for 60 frames, its reads agreeing all along:
    # read as it starts to move, then 6 frames later (twice moving_read_every), then every 12 (the limit,
    # moving_backoff times). The still reads before are no moving reads: they do not back off the first one.
    p = GateParams(settle_reads=3, moving_read_every=3, moving_backoff=4, max_skip_frames=100, max_skip_s=100.0)
    rng = np.random.default_rng(15)
    base = _page()
    still = [_frame(base, rng) for _ in range(30)]
    moving = [_frame(np.roll(base, 6 * k, axis=1), rng) for k in range(1, 60)]
    reads = _run_gate(ChangeGate(p), still + moving)
    idx = [i for i, r in enumerate(reads) if r and i >= 30]
    gaps = [b - a for a, b in zip(idx, idx[1:], strict=False)]
    assert idx[0] == 30 and gaps[:2] == [6, 12] and set(gaps[1:]) == {12}, idx


class _FlickeringReader(_CountingReader):
    """A weak digit read 3 and 9 by turns."""

    def read(self, image: np.ndarray, debug: bool | None = None) -> FrameResult:
        self.value = "13" if self.calls % 2 else "19"
        return super().read(image, debug)


def test_the_gated_reader_keeps_reading_a_page_whose_reading_flickers():
    inner = _FlickeringReader()
    _ten_still_frames(inner, 16)
    assert inner.calls == 10  # nothing confirmed, nothing reused
    inner = _CountingReader()
    _, results, _, _ = _ten_still_frames(inner, 16)
    assert inner.calls == 2 and "gate" in results[-1].timings


def test_an_empty_frame_goes_straight_to_the_reader():
    # The reader reports what is wrong with it; the gate has nothing to compare.
    inner = _CountingReader()
    gr = GatedReader(inner, GateParams())
    for image in (None, np.zeros((0, 0), np.uint8), np.zeros((1, 640), np.uint8)):
        assert gr.read(image, ts=0.0).numbers[0].value == "12"
    assert inner.calls == 3
