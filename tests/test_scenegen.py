"""The scene generator (tools/scenegen.py) and the bundled sample (samples/), on the real MNIST test files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import scenegen  # noqa: E402

MNIST_DIR = Path(os.environ.get("MNIST_DIR", scenegen.DEFAULT_MNIST_DIR))
needs_mnist = pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists()
                                 and not (MNIST_DIR / "t10k-images-idx3-ubyte").exists(),
                                 reason="MNIST test files not available")


@pytest.fixture(scope="module")
def gen() -> scenegen.SceneGenerator:
    return scenegen.SceneGenerator(mnist_dir=MNIST_DIR)


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def _all_digits(sc: scenegen.Scene) -> list[scenegen.DigitTruth]:
    return [d for n in sc.numbers for d in n.digits]


@needs_mnist
def test_same_seed_same_scene_and_other_seed_differs(gen):
    a = gen.scene("mixed", 3)
    b = gen.scene("mixed", 3)
    c = gen.scene("mixed", 4)
    assert np.array_equal(a.image, b.image)
    assert a.truth() == b.truth()
    assert not (a.image.shape == c.image.shape and np.array_equal(a.image, c.image))
    assert a.truth()["numbers"] != c.truth()["numbers"]


@needs_mnist
@pytest.mark.parametrize("condition", ["clean", "shadow", "pencil", "tilt", "small", "jpeg"])
def test_every_truth_box_contains_ink(gen, condition):
    for seed in range(2):
        sc = gen.scene(condition, seed)
        g = _gray(sc.image).astype(np.float32)
        # Paper around each box is the local reference: shadows and gradients change the global level.
        for d in _all_digits(sc):
            x, y, w, h = d.box
            assert w >= 1 and h >= 1
            assert x >= 0 and y >= 0 and x + w <= g.shape[1] and y + h <= g.shape[0]
            inside = g[y:y + h, x:x + w]
            ring = g[max(0, y - h // 2):y + h + h // 2, max(0, x - w):x + w + w]
            paper = np.percentile(ring, 90)
            assert inside.min() < paper - 25, (condition, seed, d)


@needs_mnist
def test_ink_outside_the_boxes_is_negligible(gen):
    # Tight and complete boxes: on plain paper, almost every dark pixel lies in some digit's box.
    for seed in range(3):
        sc = gen.scene("clean", seed)
        g = _gray(sc.image)
        dark = g < np.median(g) - 80
        covered = np.zeros_like(dark)
        for d in _all_digits(sc):
            x, y, w, h = d.box
            covered[max(0, y - 1):y + h + 1, max(0, x - 1):x + w + 1] = True
        assert dark.sum() > 100
        assert (dark & ~covered).sum() <= 0.01 * dark.sum()


@needs_mnist
def test_values_match_digits_and_reading_order(gen):
    for seed in range(4):
        sc = gen.scene("clean", seed)
        assert sc.numbers
        for n in sc.numbers:
            assert n.value == "".join(str(d.digit) for d in n.digits)
            xs = [d.box[0] for d in n.digits]
            assert xs == sorted(xs)  # left to right within a number
        # Lines top to bottom: a later number never starts clearly above an earlier one.
        for a, b in zip(sc.numbers, sc.numbers[1:], strict=False):
            same_line = abs((a.box[1] + a.box[3] / 2) - (b.box[1] + b.box[3] / 2)) < a.box[3] / 2
            assert (same_line and b.box[0] > a.box[0]) or b.box[1] > a.box[1] + a.box[3] / 2


@needs_mnist
def test_fixed_values_are_written(gen):
    values = [["4721", "007"], ["96"]]
    sc = gen.scene("tilt", 9, values=values)
    assert sc.values == ["4721", "007", "96"]


@needs_mnist
def test_conditions_differ_as_named(gen):
    seed = 5
    scenes = {c: gen.scene(c, seed) for c in scenegen.CONDITIONS}
    imgs = [s.image for s in scenes.values()]
    for i in range(len(imgs)):
        for j in range(i + 1, len(imgs)):
            assert not np.array_equal(imgs[i], imgs[j])

    def heights(c):
        return [d.box[3] for d in _all_digits(scenes[c])]

    assert max(heights("small")) <= 26 < np.median(heights("clean"))
    # Ruled paper shows blue lines: rows where blue clearly beats red.
    r = scenes["ruled"].image.astype(np.int16)
    assert ((r[..., 0] - r[..., 2]) > 25).any(axis=1).sum() > 5
    c = scenes["clean"].image.astype(np.int16)
    assert ((c[..., 0] - c[..., 2]) > 25).any(axis=1).sum() == 0
    # Blue pen ink is blue; pencil is lighter than pen.
    b = scenes["blue_pen"]
    ink = [b.image[y:y + h, x:x + w].reshape(-1, 3) for x, y, w, h in (d.box for d in _all_digits(b))]
    px = np.concatenate(ink).astype(np.int16)
    darkest = px[np.argsort(px.sum(axis=1))[: len(px) // 10]]
    assert (darkest[:, 0] - darkest[:, 2]).mean() > 40
    assert np.percentile(_gray(scenes["pencil"].image), 0.5) > np.percentile(_gray(c.astype(np.uint8)), 0.5) + 20
    # Blur softens edges, noise roughens flat paper.
    def sharp(img):
        return cv2.Laplacian(_gray(img), cv2.CV_32F).var()
    assert sharp(scenes["blur"].image) < sharp(scenes["clean"].image)
    assert np.std(cv2.Laplacian(_gray(scenes["noise"].image), cv2.CV_32F)) > \
        np.std(cv2.Laplacian(_gray(scenes["clean"].image), cv2.CV_32F))


@needs_mnist
def test_touching_digits_overlap(gen):
    overlaps = 0
    for seed in range(3):
        for n in gen.scene("touching", seed).numbers:
            for a, b in zip(n.digits, n.digits[1:], strict=False):
                overlaps += a.box[0] + a.box[2] > b.box[0]
    assert overlaps >= 3


@needs_mnist
def test_tilt_rotates_the_lines(gen):
    def slope(sc):
        worst = 0.0
        for n in sc.numbers:
            if len(n.digits) >= 3:
                a, b = n.digits[0].box, n.digits[-1].box
                dx = (b[0] + b[2] / 2) - (a[0] + a[2] / 2)
                dy = (b[1] + b[3]) - (a[1] + a[3])
                worst = max(worst, abs(np.degrees(np.arctan2(dy, dx))))
        return worst
    tilted = [slope(gen.scene("tilt", s)) for s in range(6)]
    assert max(tilted) > 5.0


@needs_mnist
def test_leading_zeros_occur(gen):
    values = [v for s in range(12) for v in gen.scene("clean", s).values]
    assert any(len(v) > 1 and v[0] == "0" for v in values)


def test_unknown_condition_is_an_error():
    with pytest.raises(ValueError, match="unknown condition"):
        scenegen.style_for("foggy", np.random.default_rng(0))


@needs_mnist
def test_cli_writes_image_and_truth(tmp_path):
    out = tmp_path / "s.png"
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "scenegen.py"), "--condition", "ruled", "--seed", "2",
                        "--out", str(out), "--mnist-dir", str(MNIST_DIR)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out))
    truth = json.loads(out.with_suffix(".json").read_text())
    assert img.shape == (480, 640, 3)
    assert truth["condition"] == "ruled" and truth["numbers"]
    assert r.stdout.split(":", 1)[1].split() == [n["value"] for n in truth["numbers"]]


def test_cli_bad_size_is_one_line_usage_error(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "scenegen.py"), "--size", "big",
                        "--out", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--size" in r.stderr


# ------------------------------------------------------------------------------------ the bundled sample

SAMPLES = ROOT / "samples"


def test_sample_video_opens_with_expected_frames():
    truth = json.loads((SAMPLES / "sample.json").read_text())
    cap = cv2.VideoCapture(str(SAMPLES / "sample.mp4"))
    assert cap.isOpened()
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    assert len(frames) == truth["frames"] == len(truth["per_frame"])
    assert frames[0].shape == (truth["size"][1], truth["size"][0], 3)
    assert (SAMPLES / "sample.mp4").stat().st_size < 1_000_000
    # The reading changes once: the point a stream reader must report.
    seg = truth["segments"]
    assert len(seg) == 2 and seg[0]["values"] != seg[1]["values"]
    # The truth boxes hold ink in the decoded (lossy) frames, before and after the change.
    for i in (0, truth["frames"] - 1):
        g = _gray(frames[i]).astype(np.float32)
        for n in truth["per_frame"][i]["numbers"]:
            for d in n["digits"]:
                x, y, w, h = d["box"]
                ring = g[max(0, y - h // 2):y + h + h // 2, max(0, x - w):x + w + w]
                assert g[y:y + h, x:x + w].min() < np.percentile(ring, 90) - 40
    # The camera moves: consecutive frames are not identical.
    assert not np.array_equal(frames[0], frames[5])


def test_sample_stills_match_their_truth():
    truth = json.loads((SAMPLES / "stills.json").read_text())
    assert len(truth) >= 3
    for name, t in truth.items():
        img = cv2.imread(str(SAMPLES / name))
        assert img is not None, name
        assert [img.shape[1], img.shape[0]] == t["size"]
        assert t["numbers"] and all(n["value"].isdigit() for n in t["numbers"])


# ---------------------------------------------------------------- words beside numbers (tools/bench_words.py)


@needs_mnist
def test_words_pages_are_repeatable_and_hold_only_words(gen):
    import bench_words

    a = bench_words.words_page(gen, "print", 7)
    np.testing.assert_array_equal(a, bench_words.words_page(gen, "print", 7))
    assert a.shape == (gen.size[1], gen.size[0], 3)
    assert not np.array_equal(a, bench_words.words_page(gen, "print", 8))
    assert not np.array_equal(a, bench_words.words_page(gen, "print_slanted", 7))
    # words were written: well over a few thousand pixels far darker than the paper around them
    g = _gray(a).astype(np.float32)
    paper = cv2.medianBlur(_gray(a), 31).astype(np.float32)
    assert np.count_nonzero(g < paper - 40) > 2000


@needs_mnist
@pytest.mark.parametrize("style", ["print", "print_bold", "print_slanted"])
def test_a_unit_word_is_written_after_each_line_and_nothing_else_changes(gen, style):
    import bench_words

    for seed in (1, 2):
        with_words, plain = bench_words.with_units(gen, style, seed)
        assert [n.value for n in with_words.numbers] == [n.value for n in plain.numbers]
        assert [d.box for n in with_words.numbers for d in n.digits] == \
            [d.box for n in plain.numbers for d in n.digits]
        changed = np.abs(_gray(with_words.image).astype(np.int16) - _gray(plain.image).astype(np.int16)) > 40
        assert changed.sum() > 200  # the words
        # ... every one of them to the right of the first digit of its line, none inside a digit's box
        leftmost = min(d.box[0] for n in plain.numbers for d in n.digits)
        ys, xs = np.nonzero(changed)
        assert xs.min() > leftmost
        for n in plain.numbers:
            for d in n.digits:
                x, y, w, h = d.box
                assert not changed[y + 2:y + h - 2, x + 2:x + w - 2].any()


@needs_mnist
def test_the_words_tally_counts_what_the_reader_read(gen):
    import bench_words

    from edge.classify import Classifier
    from edge.reader import Reader

    reader = Reader(Classifier(str(ROOT / "models" / "digits_int8.tflite")))
    out = bench_words.run(reader, gen, 2, seed=3)
    assert set(out) == set(bench_words.STYLES)
    for name, parts in out.items():
        words, units = parts["words"], parts["units"]
        assert words.pages == units.pages == 2
        want = sum(len(bench_words.with_units(gen, name, 300_000 + i)[1].numbers) for i in range(2))
        assert units.truth_numbers == want
        assert 0 <= units.numbers_right <= want and 0 < units.numbers_right_plain <= want
        assert units.false_numbers <= units.numbers and words.pages_with_numbers <= words.pages
    assert "print_slanted" in bench_words.table(out)
