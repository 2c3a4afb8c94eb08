"""Video files in the codecs phones and cameras write, made with PyAV (FFmpeg's encoders), for the tests.

OpenCV's wheel decodes H.264, HEVC, AV1 and VP9 but writes none of them; PyAV's wheel brings FFmpeg's
encoders (x264, x265, SVT-AV1, libvpx). ``times_s`` gives each frame its own time, as a phone's
variable-rate video does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

#: the bundled sample video (its truth beside it, sample.json)
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "sample.mp4"
#: timestamps in milliseconds: fine enough for any frame time a test gives
_MS = Fraction(1, 1000)


def sample_frames(path: Path, n: int | None = None) -> list[np.ndarray]:
    """The first ``n`` (all) BGR frames of a video file, as OpenCV decodes them."""
    cap = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    while n is None or len(frames) < n:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


def sample_then_erased(after: int) -> list[np.ndarray]:
    """The sample's first 40 frames, then ``after`` frames (its next 8 in turn) in which "1530" is painted out
    with the paper above it: a number erased at frame 40, for the stabiliser's timing tests."""
    truth = json.loads((SAMPLE.parent / "sample.json").read_text())["per_frame"]
    frames = sample_frames(SAMPLE, 48)
    out = frames[:40]
    for k in range(after):
        i = 40 + k % 8
        f = frames[i].copy()
        for n in truth[i]["numbers"]:
            if n["value"] == "1530":
                x, y, w, h = n["box"]
                f[y - 4:y + h + 4, x - 4:x + w + 4] = f[y - 12:y - 4, x:x + w].mean(axis=(0, 1))
        out.append(f)
    return out


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 12.0, codec: str = "libx264",
                pix_fmt: str = "yuv420p", times_s: Sequence[float] | None = None, audio: bool = False) -> Path:
    """Encode BGR ``frames`` into ``path`` (the container from its extension) with FFmpeg's ``codec``.

    ``times_s``: each frame's own time (a variable rate); else one every 1/``fps``. ``audio``: a silent
    AAC track beside the picture, as a phone records (a second stream the reader must pass over).
    """
    import av  # a test tool (pyproject's dev extra), not a device dependency

    h, w = frames[0].shape[:2]
    times = list(times_s) if times_s is not None else [i / fps for i in range(len(frames))]
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=round(fps))
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        video.codec_context.time_base = _MS
        if codec == "libsvtav1":
            video.options = {"preset": "12"}  # the fastest: the tests need the format, not the quality
        sound = out.add_stream("aac", rate=44100) if audio else None
        for img, t in zip(frames, times, strict=True):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), _MS
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            n = round(44100 * (times[-1] + 1 / fps))
            silence = av.AudioFrame.from_ndarray(np.zeros((1, n), np.float32), format="fltp", layout="mono")
            silence.sample_rate, silence.pts = 44100, 0
            out.mux(sound.encode(silence))
            out.mux(sound.encode(None))
    return path
