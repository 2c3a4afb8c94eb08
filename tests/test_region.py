"""source.region: only part of the frame is read, boxes stay in the whole frame's pixels."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge.annotate import annotate
from edge.config import load_config
from edge.daemon import Daemon
from edge.region import cut, describe_region, region_pixels, to_frame
from edge.types import Digit, FrameResult, Number

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "digits_int8.tflite"
PAGE = ROOT / "samples" / "page_blue.jpg"  # 640x480: 42633 57 / 243 / 0049 85773 / 4571
SAMPLE = ROOT / "samples" / "sample.mp4"


@pytest.mark.parametrize(("region", "shape", "box"), [
    (None, (480, 640), None),
    ((0.0, 0.0, 1.0, 1.0), (480, 640), None),  # the whole frame is no region
    ((0.5, 0.0, 0.5, 1.0), (480, 640), (320, 0, 320, 480)),
    ((0.25, 0.1, 0.5, 0.5), (480, 640, 3), (160, 48, 320, 240)),
    # the same fractions on another capture size cover the same part of the picture
    ((0.25, 0.1, 0.5, 0.5), (720, 1280), (320, 72, 640, 360)),
    # edges rounded to the nearest pixel
    ((1 / 3, 0.0, 1 / 3, 1.0), (480, 640), (213, 0, 214, 480)),
    # a sliver on a small frame is widened to two pixels, inside the frame
    ((0.999, 0.999, 0.001, 0.001), (10, 10), (8, 8, 2, 2)),
    ((0.0, 0.0, 0.001, 0.001), (10, 10), (0, 0, 2, 2)),
    # a frame too small to cut is read whole
    ((0.5, 0.5, 0.5, 0.5), (1, 10), None),
])
def test_region_pixels(region, shape, box) -> None:  # noqa: ANN001
    assert region_pixels(shape, region) == box


def test_cut_is_a_view_of_the_region() -> None:
    img = np.arange(48 * 64, dtype=np.int32).reshape(48, 64)
    part = cut(img, (10, 20, 5, 7))
    assert part.shape == (7, 5) and part[0, 0] == img[20, 10] and part[-1, -1] == img[26, 14]
    assert np.shares_memory(part, img)
    assert cut(img, None) is img


def _result(debug: bool = False) -> FrameResult:
    d1 = Digit(4, 0.99, (3, 5, 10, 20), ((4, 0.99),))
    d2 = Digit(7, 0.98, (15, 6, 9, 19), ((7, 0.98),))
    n = Number("47", 0.97, (3, 5, 21, 21), (d1, d2))
    dbg = {}
    if debug:
        mask = np.zeros((40, 60), np.uint8)
        mask[5:25, 3:13] = 255
        dbg = {"mask": mask, "crops": [((3, 5, 10, 20), np.zeros((28, 28), np.uint8), ((4, 0.99),))]}
    return FrameResult(numbers=[n], timings={"segment": 1.0}, debug=dbg)


def test_to_frame_moves_every_box_and_leaves_the_read_result_alone() -> None:
    read = _result(debug=True)
    whole = to_frame(read, (100, 50, 60, 40), (480, 640))
    (n,) = whole.numbers
    assert (n.value, n.box) == ("47", (103, 55, 21, 21))
    assert [d.box for d in n.digits] == [(103, 55, 10, 20), (115, 56, 9, 19)]
    assert [d.digit for d in n.digits] == [4, 7] and n.digits[0].top3 == ((4, 0.99),)
    assert whole.region == (100, 50, 60, 40) and whole.timings == {"segment": 1.0}
    mask = whole.debug["mask"]
    assert mask.shape == (480, 640) and mask.sum() == read.debug["mask"].sum()
    assert mask[55:75, 103:113].all() and not mask[:55].any() and not mask[:, :103].any()
    assert whole.debug["crops"][0][0] == (103, 55, 10, 20)
    # the change gate hands the same result out again: it must come back unmoved
    assert read.numbers[0].box == (3, 5, 21, 21) and read.region is None
    assert read.debug["mask"].shape == (40, 60) and read.debug["crops"][0][0] == (3, 5, 10, 20)
    assert to_frame(read, None, (480, 640)) is read


def test_the_overlay_dims_what_is_not_read_and_outlines_the_region() -> None:
    grey = np.full((120, 160, 3), 200, np.uint8)
    res = to_frame(FrameResult(numbers=[]), (40, 30, 80, 60), grey.shape)
    out = annotate(grey, res)
    assert (out[100, 10] == 100).all() and (out[10, 150] == 100).all()  # outside: half as bright
    assert (out[60, 80] == 200).all()  # inside: as captured
    assert tuple(out[60, 39]) != (100, 100, 100) and tuple(out[60, 39]) != (200, 200, 200)  # the outline
    plain = annotate(grey, FrameResult(numbers=[]))
    assert (plain[100, 10] == 200).all()
    assert grey[100, 10, 0] == 200  # the frame itself is not touched


def test_describe_region() -> None:
    assert describe_region(None) == ""
    assert describe_region((0.25, 0.1, 0.5, 0.5)) == "reading only x 25-75%, y 10-60% of the frame"


def _events(env: dict, *args: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_an_image_is_read_only_inside_the_region_with_boxes_in_its_own_pixels(tmp_path: Path,
                                                                             subprocess_env: dict) -> None:
    """A real process on a real page: the lower right of the page holds 85773 alone."""
    (plain,) = _events(subprocess_env, "--source", str(PAGE))
    config = tmp_path / "config.yaml"
    config.write_text("source:\n  region: [0.55, 0.55, 0.45, 0.45]\n")
    (part,) = _events(subprocess_env, "--config", str(config), "--source", str(PAGE))
    assert [n["value"] for n in plain["numbers"]] == ["42633", "57", "243", "0049", "85773", "4571"]
    assert [n["value"] for n in part["numbers"]] == ["85773"]
    want = next(n for n in plain["numbers"] if n["value"] == "85773")
    got = part["numbers"][0]
    # The same digits found in the same place of the page (the region is segmented on its own, so an edge
    # may move by a pixel); in the region's own pixels they would be 352 px to the left, 264 up.
    for a, b in zip([want["box"]] + [d["box"] for d in want["digits"]],
                    [got["box"]] + [d["box"] for d in got["digits"]], strict=True):
        assert max(abs(u - v) for u, v in zip(a, b, strict=True)) <= 2, (a, b)


def test_the_region_flag_reads_as_the_config_key_does_and_all_clears_it(tmp_path: Path,
                                                                         subprocess_env: dict) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("source:\n  region: [0.55, 0.55, 0.45, 0.45]\n")
    (by_key,) = _events(subprocess_env, "--config", str(config), "--source", str(PAGE))
    # as the web page prints it, or plain; the flag wins over the file, and "all" is the whole frame again
    (by_flag,) = _events(subprocess_env, "--source", str(PAGE), "--region", "[0.55, 0.55, 0.45, 0.45]")
    (plain,) = _events(subprocess_env, "--source", str(PAGE), "--region", "0.55,0.55,0.45,0.45")
    (cleared,) = _events(subprocess_env, "--config", str(config), "--source", str(PAGE), "--region", "all")
    (whole,) = _events(subprocess_env, "--source", str(PAGE))
    assert [n["value"] for n in by_key["numbers"]] == ["85773"]
    assert by_flag["numbers"] == by_key["numbers"] == plain["numbers"]
    assert cleared["numbers"] == whole["numbers"] and len(whole["numbers"]) == 6


@pytest.mark.parametrize(("value", "line"), [
    ("0.5,0.5,0.5", "python -m edge: error: argument --region: expected X,Y,W,H, four fractions of the frame "
                    "(e.g. 0.1,0.2,0.5,0.3), or all; got '0.5,0.5,0.5' (see --help)"),
    ("a,b,c,d", "python -m edge: error: argument --region: expected X,Y,W,H, four fractions of the frame "
                "(e.g. 0.1,0.2,0.5,0.3), or all; got 'a,b,c,d' (see --help)"),
    ("0.5,0.5,0.6,0.2", "command line: source.region: the region ends outside the frame: x + w = 1.1, "
                        "y + h = 0.7 (each at most 1)"),
])
def test_a_bad_region_flag_is_one_line_naming_it(value: str, line: str, subprocess_env: dict) -> None:
    out = subprocess.run([sys.executable, "-m", "edge", "--region", value, "--source", str(PAGE)], cwd=ROOT,
                         env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip() == line


def test_a_stream_reads_and_gates_only_its_region(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The sample video through the daemon with the change gate on: every number published lies inside the
    region (the right half), the left half's numbers never appear, and the start-up log says so."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"source:\n  spec: {SAMPLE}\n  region: [0.5, 0, 0.5, 1]\nmodel:\n  path: {MODEL}\n"
                   f"sinks:\n  outputs: ['file:{tmp_path / 'e.jsonl'}']\nservice:\n  persist_state: false\n")
    with caplog.at_level(logging.INFO, logger="edge.daemon"):
        assert Daemon(load_config(cfg), max_frames=120).run() == 0
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    numbers = [n for e in events for n in e.get("numbers", [])]
    assert "0385" in {n["value"] for n in numbers}  # right half: read
    assert not {"4721", "4728", "96"} & {n["value"] for n in numbers}  # left half: not
    width = 640  # the sample's frames
    assert all(n["box"][0] >= width // 2 for n in numbers), numbers
    assert "reading only x 50-100%, y 0-100% of the frame" in caplog.text


def test_a_reload_that_only_moves_the_region_keeps_the_source_open(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    cfg = tmp_path / "config.yaml"
    base = f"source:\n  spec: {SAMPLE}\nmodel:\n  path: {MODEL}\nsinks:\n  outputs: []\n" \
           "service:\n  persist_state: false\n"
    cfg.write_text(base)
    d = Daemon(load_config(cfg), max_frames=1)
    d._setup()
    try:
        before, gate = d.source, d.gate
        gate.gate.should_read(np.zeros((48, 64), np.uint8), 0.0)  # the gate now holds a reference picture
        assert gate.gate._ref is not None
        cfg.write_text(base.replace("  spec:", "  region: [0, 0.5, 1, 0.5]\n  spec:"))
        with caplog.at_level(logging.INFO, logger="edge.daemon"):
            assert d._apply(load_config(cfg)) is True
        assert d.source is before and d.gate is gate and d.cfg.source.region == (0, 0.5, 1, 0.5)
        assert gate.gate._ref is None  # the old region's picture is not compared with the new one
        assert "reading only x 0-100%, y 50-100% of the frame" in caplog.text
        assert d._apply(load_config(cfg)) is False
    finally:
        d._teardown()


def test_a_moved_region_does_not_publish_the_numbers_it_no_longer_reads(tmp_path: Path) -> None:
    """The sample video read in its top half (4721, 0385), then the region is moved to the bottom half (96,
    1530) by a reload: the next reading is the bottom half's alone. The stabiliser kept the top half's
    numbers until they timed out (2 s), so the first event after the reload said 96 1530 4721 0385 -
    numbers from a part of the frame that is no longer read."""
    cfg = tmp_path / "config.yaml"
    out = tmp_path / "e.jsonl"
    base = (f"source:\n  spec: {SAMPLE}\n  region: [0, 0, 1, 0.45]\nmodel:\n  path: {MODEL}\n"
            f"sinks:\n  outputs: ['file:{out}']\nservice:\n  persist_state: false\n")
    cfg.write_text(base)
    d = Daemon(load_config(cfg), max_frames=40)
    d._setup()
    try:
        frames = d.source.frames()
        for _ in range(20):
            d._on_frame(next(frames))
        assert [[n["value"] for n in json.loads(line)["numbers"]] for line in out.read_text().splitlines()] \
            == [["4721", "0385"]]
        cfg.write_text(base.replace("[0, 0, 1, 0.45]", "[0, 0.45, 1, 0.55]"))
        assert d._apply(load_config(cfg)) is True
        for _ in range(20):
            d._on_frame(next(frames))
    finally:
        d._teardown()
    published = [[n["value"] for n in json.loads(line)["numbers"]] for line in out.read_text().splitlines()]
    assert published == [["4721", "0385"], ["96", "1530"]], published
