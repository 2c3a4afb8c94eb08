"""Video files as phones and cameras write them: H.264, HEVC (8- and 10-bit), AV1, VP9, a sound track beside
the picture, and a variable frame rate. Made with FFmpeg's encoders (PyAV, ``tests/encoded_video.py``), read
by the reader as a user's file would be."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edge.capture import VideoFileSource, open_source
from edge.config import SourceConfig, load_config
from edge.daemon import Daemon
from tests.conftest import ROOT
from tests.encoded_video import SAMPLE, sample_frames, sample_then_erased, write_video

MODEL = ROOT / "models" / "digits_int8.tflite"

FORMATS = [
    # name, FFmpeg encoder, pixel format, a sound track too
    ("h264.mp4", "libx264", "yuv420p", False),
    ("hevc.mp4", "libx265", "yuv420p", False),
    ("hevc_10bit.mp4", "libx265", "yuv420p10le", False),
    ("av1.mkv", "libsvtav1", "yuv420p", False),
    ("vp9.webm", "libvpx-vp9", "yuv420p", False),
    ("h264_with_sound.mp4", "libx264", "yuv420p", True),
]


def _events(source: Path, subprocess_env: dict[str, str], *flags: str) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "edge", "--source", str(source), *flags], cwd=ROOT,
                         env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _readings(events: list[dict]) -> list[tuple[int, list[str]]]:
    return [(e["frame"], [n["value"] for n in e["numbers"]]) for e in events]


@pytest.fixture(scope="module")
def sample_readings() -> list[tuple[int, list[str]]]:
    return _readings(_events(SAMPLE, {**os.environ, "PYTHONPATH": str(ROOT)}))


@pytest.mark.parametrize(("name", "codec", "pix_fmt", "sound"), FORMATS, ids=[f[0] for f in FORMATS])
def test_a_phone_or_camera_video_format_reads_as_the_sample_does(
        tmp_path: Path, subprocess_env: dict[str, str], sample_readings: list, name: str, codec: str,
        pix_fmt: str, sound: bool) -> None:
    frames = sample_frames(SAMPLE)
    video = write_video(tmp_path / name, frames, fps=12.0, codec=codec, pix_fmt=pix_fmt, audio=sound)
    # every frame, in order, 8-bit whatever the file stores
    with VideoFileSource(str(video), 10**8) as src:
        got = [f for f in src.frames() if f is not None]
    assert [f.index for f in got] == list(range(len(frames)))
    assert all(f.error is None and f.image is not None and f.image.dtype == np.uint8 for f in got)
    assert got[0].image is not None and got[0].image.shape[:2] == frames[0].shape[:2]
    # the pictures are the sample's (lossy codecs: close, not equal), not another stream's
    diff = [float(np.abs(f.image.astype(np.int16) - s.astype(np.int16)).mean()) for f, s in zip(got, frames, strict=True)]
    assert max(diff) < 6.0, max(diff)
    # and the reader publishes what it publishes for the sample, at the same frames
    truth = [seg["values"] for seg in json.loads((ROOT / "samples" / "sample.json").read_text())["segments"]]
    readings = _readings(_events(video, subprocess_env))
    assert [values for _, values in readings] == truth
    assert readings == sample_readings


# A phone's video: frames come when the phone had time to take them. Here 10 frames 40 ms apart, then 10 frames
# 200 ms apart, twice over: an average of 8.3 frames a second that is never the rate of any frame.
VFR_TIMES = [0.0]
for _i in range(39):
    VFR_TIMES.append(VFR_TIMES[-1] + (0.04 if (_i // 10) % 2 == 0 else 0.2))


def test_a_variable_rate_video_gives_each_frame_its_own_time_and_is_paced_by_it(tmp_path: Path) -> None:
    video = write_video(tmp_path / "phone.mp4", sample_frames(SAMPLE, len(VFR_TIMES)), times_s=VFR_TIMES)
    with VideoFileSource(str(video), 10**8) as src:
        times = [f.media_s for f in src.frames() if f is not None]
    assert times == pytest.approx(VFR_TIMES, abs=0.002)
    # --realtime: each frame when the phone took it. At the average rate the 200 ms gaps were 120 ms.
    with VideoFileSource(str(video), 10**8, realtime=True) as src:
        given = [time.monotonic() for f in src.frames(idle_timeout=0.05) if f is not None]
    gaps = np.diff(given)
    long = [g for g, want in zip(gaps, np.diff(VFR_TIMES), strict=True) if want > 0.1]
    assert len(long) == 19 and min(long) >= 0.195, gaps
    assert given[-1] - given[0] >= VFR_TIMES[-1] - 0.01


def test_a_variable_rate_video_loops_on_in_its_own_time(tmp_path: Path) -> None:
    video = write_video(tmp_path / "phone.mp4", sample_frames(SAMPLE, 12), times_s=VFR_TIMES[:12])
    with VideoFileSource(str(video), 10**8, loop=True) as src:
        times = []
        for f in src.frames():
            if f is not None:
                times.append(f.media_s)
            if len(times) == 24:
                break
    # the second pass starts one frame after the first's last (the last gap of the file) and keeps its gaps
    step = VFR_TIMES[11] - VFR_TIMES[10]
    assert times == pytest.approx(VFR_TIMES[:12] + [VFR_TIMES[11] + step + t for t in VFR_TIMES[:12]], abs=0.002)


def test_the_stabiliser_counts_a_variable_rate_videos_seconds_in_the_videos_own_time(tmp_path: Path) -> None:
    # drop_after_s (2 s) of video time after "1530" is painted out. By frame number / average rate a video
    # slow before the erase and fast after it dropped the number after 17 frames, 0.7 s of its own time.
    times = [0.5 * i for i in range(40)] + [20.0 + k / 24 for k in range(200)]
    video = write_video(tmp_path / "erase.mp4", sample_then_erased(200), times_s=times, fps=8)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source:\n  spec: {video}\nmodel:\n  path: {MODEL}\n  num_threads: 1\n"
                   f"sinks:\n  outputs: [\"file:{tmp_path / 'e.jsonl'}\"]\nservice:\n  persist_state: false\n")
    assert Daemon(load_config(cfg)).run() == 0
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    gone = [e["frame"] for e in events if "1530" not in [n["value"] for n in e["numbers"]]]
    assert gone, [(e["frame"], [n["value"] for n in e["numbers"]]) for e in events]
    # erased from frame 40 (20.0 s); 2 s at 24 fps is 48 frames (the first missing read may come up to half a
    # second late, as in test_daemon's constant-rate twin: 6 frames at 12 fps there, 12 at 24 here)
    assert 40 + 48 <= gone[0] <= 40 + 48 + 12, gone


def test_open_source_takes_a_phone_video_by_its_extension(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.MOV", sample_frames(SAMPLE, 3), codec="libx264")
    src = open_source(str(video), SourceConfig())
    try:
        assert isinstance(src, VideoFileSource)
        assert len([f for f in src.frames() if f is not None]) == 3
    finally:
        src.close()


@pytest.mark.parametrize(("ext", "codec"), [(".mkv", "libx264"), (".webm", "libvpx-vp9")])
@pytest.mark.parametrize("start_s", [5.0, 60.0])
def test_a_cut_of_a_longer_recording_is_read_to_its_end_without_a_damaged_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, ext: str, codec: str, start_s: float) -> None:
    # Matroska and WebM store no frame count; OpenCV's estimate ran from time 0, so a cut that keeps its
    # timestamps promised start_s x 12 frames more: a false "damaged stretch", then 300 futile reads and
    # "video damaged" (exit 1) for a whole file.
    frames = sample_frames(SAMPLE, 12)
    video = write_video(tmp_path / f"cut{ext}", frames, codec=codec, times_s=[start_s + i / 12 for i in range(12)])
    with caplog.at_level(logging.WARNING, logger="edge.capture"), VideoFileSource(str(video), 10**8) as src:
        got = [f for f in src.frames() if f is not None]
    assert [(f.index, f.error) for f in got] == [(i, None) for i in range(12)]
    assert not src.failed and src.skipped == 0
    assert "damaged" not in caplog.text
    assert [f.media_s for f in got] == pytest.approx([i / 12 for i in range(12)], abs=0.002)
