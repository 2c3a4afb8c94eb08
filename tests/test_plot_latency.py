"""tools/plot_latency.py: per-frame latency of the edge pipeline, measured on a real video with the real
model, written as a histogram PNG (and re-plotted from saved samples without measuring again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import bench
from tests.conftest import sample_clip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import plot_latency  # noqa: E402


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "tools" / "plot_latency.py"), *args], capture_output=True,
                          text=True, timeout=180, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    """Eight frames of the bundled sample: shorter than the run, so the tool must loop it."""
    return sample_clip(tmp_path_factory.mktemp("latency") / "short.mp4", 8, 12)


def test_stats_are_the_usual_percentiles() -> None:
    s = plot_latency.stats([float(v) for v in range(1, 101)])
    assert s["n"] == 100 and s["mean"] == 50.5 and s["min"] == 1.0 and s["max"] == 100.0
    assert s["p50"] == pytest.approx(50.5) and s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)


@pytest.mark.slow
def test_measures_every_frame_and_writes_the_histogram(short_video, tmp_path) -> None:
    pytest.importorskip("matplotlib")  # a desktop extra; tools/py310_tests.sh runs without it
    png, samples = tmp_path / "lat.png", tmp_path / "samples.json"
    r = _run("--video", str(short_video), "--frames", "20", "--out", str(png), "--samples-out", str(samples),
             "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    total = out["ms"]["total"]
    assert total["n"] == 20  # 8-frame video looped
    assert 0 < total["min"] <= total["p50"] <= total["p90"] <= total["p99"] <= total["max"]
    for stage in bench.STAGES:
        assert out["ms"][stage]["n"] == 20
    # Per frame the stages add up to at most the frame's total (decode + read, plus the loop itself).
    saved = json.loads(samples.read_text())["samples"]
    parts = np.sum([saved[s] for s in bench.STAGES], axis=0)
    assert np.all(parts <= np.asarray(saved["total"]) + 0.05)
    assert out["meta"]["size"] == [640, 480] and out["meta"]["digits_per_frame"] > 10  # the sample's 14
    img = cv2.imread(str(png))
    assert img is not None and img.shape[1] > img.shape[0] > 300
    # The histogram's bars are drawn (matplotlib's blue #4c72b0, BGR order here).
    assert (np.abs(img.astype(int) - np.array([176, 114, 76])).sum(axis=2) < 30).sum() > 500
    assert out["png"] == str(png)

    # Re-plot the saved samples: nothing measured, so no model is needed.
    png2 = tmp_path / "again.png"
    r = _run("--from", str(samples), "--out", str(png2), "--model", str(tmp_path / "no-model.tflite"))
    assert r.returncode == 0, r.stderr
    assert f"{total['p50']:.2f}" in r.stdout and cv2.imread(str(png2)).shape == img.shape


def test_missing_video_is_one_line_exit_2(tmp_path) -> None:
    r = _run("--video", str(tmp_path / "none.mp4"), "--no-plot")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == f"error: video not found: {tmp_path / 'none.mp4'}"
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--frames", "x"], "argument --frames: invalid int value: 'x'"),
    (["--frames", "0"], "--frames and --threads must be at least 1"),
])
def test_bad_usage_is_one_line(args, message) -> None:
    r = _run(*args)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [f"python tools/plot_latency.py: error: {message} (see --help)"]


@pytest.mark.parametrize("flag", ["--out", "--samples-out"])
def test_output_under_a_file_is_refused_before_measuring(tmp_path, flag) -> None:
    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "x"
    # a missing model would fail the measuring: the path check must come first
    r = _run(flag, str(target), "--model", str(tmp_path / "no-model.tflite"), "--frames", "2")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"python tools/plot_latency.py: error: {flag} {target}: cannot be created: {tmp_path / 'afile'} is a file "
        "(see --help)"]


@pytest.mark.parametrize(("content", "message"), [
    ('{"meta": {}, "samples": {"total": []}}', "no per-frame times in it"),
    ('{"meta": {}, "samples": {}}', "no per-frame times in it"),
    ("[]", "not a --samples-out file"),
    ('{"meta": {}, "samples": {"total": ["x"]}}', "samples.total is not a list of times"),
    ('{"meta": {"video": "v"}, "samples": {"total": [1.0, 2.0]}}', "meta lacks size, runtime"),
])
def test_unusable_saved_samples_are_one_line(tmp_path, content, message) -> None:
    saved = tmp_path / "samples.json"
    saved.write_text(content)
    r = _run("--from", str(saved), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {saved}: {message}")
    assert not (tmp_path / "x.png").exists()


def test_replot_writes_the_png_through_a_temp_file(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    meta = {"video": "v", "size": [640, 480], "runtime": "ai_edge_litert", "threads": 1, "digits_per_frame": 3.0,
            "machine": "m", "date": "2024-01-01 00:00"}
    rng = np.random.default_rng(0)
    samples = {"total": list(rng.uniform(5, 9, 40)), "infer": list(rng.uniform(1, 2, 40))}
    saved = tmp_path / "s.json"
    saved.write_text(json.dumps({"meta": meta, "samples": samples}))
    png = tmp_path / "out" / "lat.png"
    r = _run("--from", str(saved), "--out", str(png))
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(png)) is not None
    assert sorted(p.name for p in png.parent.iterdir()) == ["lat.png"]
