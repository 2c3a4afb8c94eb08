"""The speed bench (python -m edge.bench) and the accuracy bench (tools/bench_scenes.py), run for real."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge import bench
from edge.host import cpu_description
from edge.types import Digit, Number
from tests.conftest import sample_clip

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "digits_int8.tflite"
sys.path.insert(0, str(ROOT / "tools"))
import bench_scenes  # noqa: E402
import scenegen  # noqa: E402

needs_model = pytest.mark.skipif(not MODEL.is_file(), reason="models/digits_int8.tflite not built yet")
MNIST_DIR = Path(os.environ.get("MNIST_DIR", scenegen.DEFAULT_MNIST_DIR))
needs_mnist = pytest.mark.skipif(not any(MNIST_DIR.glob("t10k-images*")), reason="MNIST test files not available")


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    """A few frames of the bundled sample, shrunk: a real video file through OpenCV's writer and reader."""
    return sample_clip(tmp_path_factory.mktemp("bench") / "tiny.mp4", 6, 10, (480, 360))


@needs_model
def test_bench_json_has_every_stage(tiny_video):
    r = _run("-m", "edge.bench", "--video", str(tiny_video), "--frames", "4", "--no-prior-art", "--no-pi4", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["video"]["size"] == [480, 360] and out["video"]["frames"] == 4
    for stage in bench.STAGES:
        assert out["pipeline_ms"][stage] >= 0.0
    assert out["pipeline_ms"]["segment"] > 0.0 and out["pipeline_ms"]["infer"] > 0.0
    assert out["floor_ms"]["decode"] > 0.0 and out["floor_ms"]["gray"] >= 0.0
    # The floor is part of the pipeline's work, so the pipeline can only cost more.
    assert out["full_over_floor"] > 1.0
    assert out["video"]["digits_per_frame"] > 0
    assert out["cpu"] == cpu_description()
    assert out["prior_art"] == {"skipped": "--no-prior-art"}
    assert out["pi4_estimate"] == {"skipped": "--no-pi4"}
    # The gated run on the same video: every frame accounted for, read or reused.
    g = out["gated"]
    assert g["frames"] == 6 and g["frames_read"] + g["frames_reused"] == g["frames"] and g["frames_read"] >= 1
    assert g["pipeline_ms"]["total"] > 0 and g["floor_ms"]["total"] > 0 and g["gated_over_floor"] > 0
    # Five gated passes by default, the median one reported.
    runs = g["gated_over_floor_runs"]
    assert len(runs) == bench.GATE_REPEATS and runs == sorted(runs)
    assert g["gated_over_floor"] == pytest.approx(runs[len(runs) // 2], abs=1e-3)
    r = _run("-m", "edge.bench", "--video", str(tiny_video), "--frames", "2", "--no-prior-art", "--no-pi4",
             "--no-gate", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["gated"] == {"skipped": "--no-gate"}


def test_bench_gate_repeats_below_one_is_a_usage_error():
    r = _run("-m", "edge.bench", "--gate-repeats", "0")
    assert r.returncode == 2
    assert "--gate-repeats" in r.stderr and "Traceback" not in r.stderr


@needs_model
def test_bench_table_names_all_stages(tiny_video):
    r = _run("-m", "edge.bench", "--video", str(tiny_video), "--frames", "3", "--no-prior-art")
    assert r.returncode == 0, r.stderr
    for word in ("decode", "grayscale", "segment", "normalise", "infer", "assemble", "pipeline / floor",
                 "gated", "Raspberry Pi 4", "cpu: " + cpu_description()):
        assert word in r.stdout


@needs_model
def test_bench_missing_video_is_one_line_error(tmp_path):
    r = _run("-m", "edge.bench", "--video", str(tmp_path / "nope.mp4"), "--no-prior-art")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nope.mp4" in r.stderr and "Traceback" not in r.stderr


def test_bench_missing_model_is_one_line_error(tiny_video, tmp_path):
    r = _run("-m", "edge.bench", "--video", str(tiny_video), "--model", str(tmp_path / "none.tflite"),
             "--no-prior-art")
    assert r.returncode == 2
    assert "none.tflite" in r.stderr and "Traceback" not in r.stderr


@needs_mnist
def test_generated_bench_video_is_720p_with_ten_digits(tmp_path):
    info = bench.make_video(tmp_path / "b.avi", frames=3, mnist_dir=str(MNIST_DIR), codec="mjpg")
    frames = bench.read_frames(tmp_path / "b.avi", 10)
    assert len(frames) == 3 and frames[0].shape == (720, 1280, 3)
    assert sum(len(v) for v in info["values"]) == 10


@needs_model
@needs_mnist
def test_gated_run_follows_the_slide_and_the_rewritten_digit(tmp_path):
    """The gated bench video: the reader skips most frames, yet the stable reading follows the sliding
    page and publishes the rewritten digit within the stabiliser's change streak (+1 frame for the gate)."""
    info = bench.make_gated_video(tmp_path / "g.avi", mnist_dir=str(MNIST_DIR))
    fps = info["fps"]
    assert len(info["expected"]) == round(sum(bench.GATED_SCHEDULE) * fps)
    frames = bench.read_frames(tmp_path / "g.avi", 10_000)
    assert len(frames) == len(info["expected"]) and frames[0].shape == (720, 1280, 3)
    reader, _ = bench.make_reader(str(MODEL), 1)
    g = bench.run_gated(tmp_path / "g.avi", reader, fps, info)
    assert g["frames_read"] + g["frames_reused"] == g["frames"] == len(frames)
    assert g["frames_read"] < g["frames"] / 4
    from edge.stabilise import StabiliseParams

    assert g["rewrite_lag_frames"] is not None and g["rewrite_lag_frames"] <= StabiliseParams().change_streak + 1
    moved = g["slide_followed_px"]
    assert moved is not None and all(abs(m - s) <= 4 for m, s in zip(moved, bench.GATED_SLIDE_PX, strict=True))
    assert g["stable_right_pct"] >= 90.0


def test_bench_video_falls_back_to_the_sample_without_mnist(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    info = bench.make_video(tmp_path / "b.mp4", frames=2, size=(320, 240), mnist_dir=str(empty))
    assert "upscaled" in info["generated"]
    assert bench.read_frames(tmp_path / "b.mp4", 5)[0].shape == (240, 320, 3)


def test_pi4_estimate_scales_by_the_sysbench_ratio():
    est = bench.pi4_estimate(2.0, 10.0, bench.PI4_SYSBENCH_EPS * 4, 3.0)
    assert est["factor"] == 4.0 and est["floor_ms"] == 8.0 and est["pipeline_ms"] == 40.0
    assert est["gated_ms"] == 12.0
    assert "skipped" in bench.pi4_estimate(2.0, 10.0, None)


@pytest.mark.slow
@pytest.mark.desktop
@needs_model
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow not installed")
def test_bench_prior_art_comparison(tiny_video):
    r = _run("-m", "edge.bench", "--video", str(tiny_video), "--frames", "2", "--prior-frames", "1", "--no-pi4", "--json",
             timeout=300)
    assert r.returncode == 0, r.stderr
    pa = json.loads(r.stdout)["prior_art"]
    assert "skipped" not in pa, pa
    assert pa["predict_ms_per_crop"] > 0 and pa["speedup_classify"] > 0 and pa["speedup_frame"] > 0


# ------------------------------------------------------------------------------------------ accuracy


def _number(value: str, boxes: list[tuple[int, int, int, int]]) -> Number:
    digits = tuple(Digit(int(c), 0.99, b) for c, b in zip(value, boxes, strict=True))
    return Number(value, 0.99, scenegen.union_box(boxes), digits)


@needs_mnist
def test_score_counts_right_wrong_and_extra_digits():
    gen = scenegen.SceneGenerator(mnist_dir=MNIST_DIR)
    sc = gen.scene("clean", 3)
    perfect = [_number(n.value, [d.box for d in n.digits]) for n in sc.numbers]
    s = bench_scenes.score(sc, perfect)
    assert s.all_right and s.digits_right == s.digits and s.extra == 0 and s.numbers_right == s.numbers
    # One digit misread: the image is wrong, one digit and one number are lost.
    first = sc.numbers[0]
    wrong = str((first.digits[0].digit + 1) % 10) + first.value[1:]
    misread = [_number(wrong, [d.box for d in first.digits])] + perfect[1:]
    s = bench_scenes.score(sc, misread)
    assert not s.all_right and s.digits_right == s.digits - 1 and s.numbers_right == s.numbers - 1
    assert s.confusions == [(first.digits[0].digit, int(wrong[0]))] and s.missed == 0
    # A number not read at all: its digits are missed, not misread.
    s = bench_scenes.score(sc, perfect[1:])
    assert s.missed == len(first.digits) and not s.confusions and not s.all_right
    # A speck read as a digit far from any truth digit is an extra.
    speck = _number("1", [(1, 1, 5, 8)])
    s = bench_scenes.score(sc, perfect + [speck])
    assert s.extra == 1 and not s.all_right and s.digits_right == s.digits
    assert bench_scenes.causes(s) == ("extra",)
    # Every digit right, but the first number read as two: a grouping failure, nothing else.
    assert len(first.value) >= 2, "scene 3 should start with a number of several digits"
    halves = [_number(first.value[:1], [first.digits[0].box]),
              _number(first.value[1:], [d.box for d in first.digits[1:]])]
    s = bench_scenes.score(sc, halves + perfect[1:])
    assert bench_scenes.causes(s) == ("grouping",) and s.digits_right == s.digits
    assert bench_scenes.causes(bench_scenes.score(sc, perfect)) == ()
    assert bench_scenes.causes(bench_scenes.score(sc, misread)) == ("misread",)
    tally = bench_scenes.Tally()
    for read in (perfect, misread, misread, perfect[1:] + [speck]):
        tally.add(bench_scenes.score(sc, read), 1.0)
    m = tally.summary()
    assert m["failed_images_by_cause"] == {"misread": 2, "missed+extra": 1}
    assert m["failed_images_only"] == {"misread": 2, "missed": 0, "extra": 0, "grouping": 0}


@needs_model
@needs_mnist
def test_bench_scenes_runs_and_writes_json(tmp_path):
    out = tmp_path / "acc.json"
    r = _run(str(ROOT / "tools" / "bench_scenes.py"), "--n", "2", "--conditions", "clean,ruled", "--json", str(out),
             "--mnist-dir", str(MNIST_DIR))
    assert r.returncode == 0, r.stderr
    assert "clean" in r.stdout and "ruled" in r.stdout and "ALL" in r.stdout
    res = json.loads(out.read_text())["runs"]["0"]
    assert set(res["conditions"]) == {"clean", "ruled"}
    assert res["all"]["images"] == 4 and 0.0 <= res["all"]["digits_right_pct"] <= 100.0


def test_bench_scenes_unknown_condition_is_usage_error():
    r = _run(str(ROOT / "tools" / "bench_scenes.py"), "--conditions", "clean,foggy")
    assert r.returncode == 2 and "foggy" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--frames", "abc"], "argument --frames: invalid int value: 'abc'"),
    (["--codec", "h264"], "argument --codec: invalid choice: 'h264'"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
])
def test_bench_bad_arguments_are_one_line(args, fragment):
    # argparse's own error() printed the seven-line usage before the error
    r = _run("-m", "edge.bench", *args, timeout=60)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and fragment in lines[0], r.stderr
