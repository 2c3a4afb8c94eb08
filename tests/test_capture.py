"""Sources with real files, a real video written by OpenCV and a real HTTP stream on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import logging
import math
import os
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge import capture as capture_module
from edge import image_file
from edge.capture import (
    CvCaptureSource,
    ImageSource,
    LiveSource,
    SourceError,
    VideoFileSource,
    classify_spec,
    open_source,
)
from edge.config import SourceConfig
from edge.image_file import read_image
from tests.conftest import ROOT


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose pixel data is a few bytes (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def _cfg(**kw: object) -> SourceConfig:
    return SourceConfig(**kw)  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "pages"
    d.mkdir()
    cv2.imwrite(str(d / "b_ok.png"), np.full((40, 50, 3), 200, np.uint8))
    cv2.imwrite(str(d / "a_ok.jpg"), np.full((30, 20), 90, np.uint8))
    (d / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (d / "d_empty.png").write_bytes(b"")
    (d / "e_bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    (d / "f_notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"junk")
    (d / "sub").mkdir()
    return d


def test_folder_is_sorted_by_name_and_bad_files_give_error_frames(folder: Path) -> None:
    src = open_source(str(folder), _cfg())
    assert isinstance(src, ImageSource) and src.is_images
    frames = list(src.frames())
    names = [Path(f.source).name for f in frames]
    # an image's name gets its event whatever is in the file; notes beside the photos are passed over
    assert names == ["a_ok.jpg", "b_ok.png", "c_corrupt.jpg", "d_empty.png", "e_bomb.png"]
    assert [Path(p).name for p in src.skipped_files] == ["f_notes.txt"]
    assert [f.index for f in frames] == list(range(5))
    ok = {Path(f.source).name: f for f in frames if f.error is None}
    assert set(ok) == {"a_ok.jpg", "b_ok.png"}
    assert ok["b_ok.png"].image.shape == (40, 50, 3)
    errors = {Path(f.source).name: f.error for f in frames if f.error is not None}
    assert errors["c_corrupt.jpg"].startswith("cannot decode image")
    assert errors["d_empty.png"].startswith("cannot decode image")
    assert errors["e_bomb.png"].startswith("image too large: 100000x100000 = 10000.0 MP")
    assert all(f.image is None for f in frames if f.error)


def test_too_large_is_refused_from_the_header_before_decoding(tmp_path: Path) -> None:
    real = tmp_path / "real.png"
    cv2.imwrite(str(real), np.zeros((300, 400), np.uint8))
    img, err = read_image(real, max_pixels=400 * 300)
    assert err is None and img.shape[:2] == (300, 400)
    img, err = read_image(real, max_pixels=400 * 300 - 1)
    assert img is None and "400x300" in err
    # The bomb's pixel data could never be decoded: only a header check can name its size.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(12_000, 10_000))
    img, err = read_image(bomb, max_pixels=40_000_000)
    assert img is None and err.startswith("image too large: 12000x10000 = 120.0 MP")


def test_a_limit_above_pillows_own_guard_is_the_one_applied(tmp_path: Path) -> None:
    # Pillow refuses to size anything above 2 x 89.5 MP; a source.max_pixels above that must still count.
    big = tmp_path / "big.png"
    big.write_bytes(_png_header_only(15_000, 15_000))  # 225 MP, header only
    img, err = read_image(big, max_pixels=300_000_000)
    assert img is None and err == "cannot decode image"  # allowed by size, then found to have no pixels
    img, err = read_image(big, max_pixels=200_000_000)
    assert img is None and err.startswith("image too large: 15000x15000 = 225.0 MP (source.max_pixels is 200 MP)")


def test_a_format_that_cannot_be_sized_first_is_never_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenCV decodes Radiance HDR, which Pillow cannot size: a small file could unpack to gigapixels before
    # any limit applied (OpenCV's own cap is 1 Gpx), so such a file is refused unread.
    hdr = tmp_path / "scan.hdr"
    assert cv2.imwrite(str(hdr), np.full((60, 80, 3), 0.5, np.float32))
    decoded = []
    monkeypatch.setattr(image_file.cv2, "imdecode", lambda *a: decoded.append(a) or None)
    assert read_image(hdr, max_pixels=10**9) == (None, "cannot decode image")
    assert decoded == []


def test_a_file_that_breaks_an_image_plugin_is_an_error_frame_and_the_rest_are_read(tmp_path: Path,
                                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    cv2.imwrite(str(pages / "a.png"), np.full((30, 40), 255, np.uint8))
    # a DDS texture in a pixel format Pillow's plug-in has not implemented: NotImplementedError, not OSError
    dds = (b"DDS " + struct.pack("<7I", 124, 0x100F, 48, 64, 192, 0, 0) + bytes(44)
           + struct.pack("<8I", 32, 0x1C, 0, 24, 0xFF0000, 0xFF00, 0xFF, 0) + struct.pack("<4I", 0x1000, 0, 0, 0)
           + bytes(4))
    (pages / "b.dds").write_bytes(dds + bytes(64 * 48 * 3))
    cv2.imwrite(str(pages / "c.png"), np.full((30, 40), 255, np.uint8))
    cv2.imwrite(str(pages / "d.png"), np.full((30, 40), 255, np.uint8))
    real = capture_module.read_image

    def breaks_on_d(path, max_pixels):  # anything else a decoder might raise
        if Path(path).name == "d.png":
            raise MemoryError
        return real(path, max_pixels)

    monkeypatch.setattr(capture_module, "read_image", breaks_on_d)
    frames = list(open_source(str(pages), _cfg()).frames())
    assert [(Path(f.source).name, f.error) for f in frames] == [
        ("a.png", None), ("b.dds", "cannot decode image"), ("c.png", None),
        ("d.png", "cannot decode image: MemoryError")]


def test_missing_file_and_transparent_png(tmp_path: Path) -> None:
    assert read_image(tmp_path / "nope.png", 10**6) == (None, "file not found")
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent black
    rgba[2:8, 4:6] = (0, 0, 0, 255)  # an opaque black stroke
    cv2.imwrite(str(tmp_path / "alpha.png"), rgba)
    img, err = read_image(tmp_path / "alpha.png", 10**6)
    assert err is None
    assert img[0, 0].tolist() == [255, 255, 255]  # transparent paper is white, not black
    assert img[5, 5].tolist() == [0, 0, 0]


@pytest.mark.parametrize("ext", ["png", "webp"])
def test_a_transparent_image_honours_its_exif_orientation_like_an_opaque_one(tmp_path: Path, ext: str) -> None:
    # A phone's or editor's transparent PNG/WebP stored on its side with an EXIF orientation tag was decoded
    # with IMREAD_UNCHANGED (to keep the alpha), which skips the orientation: the page came out rotated and
    # read as other numbers. It must come out as the same file without transparency does.
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)  # no symmetry: every orientation differs
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    rgb[3, 4], alpha[3, 4] = 255, 0  # one transparent pixel (an all-opaque alpha may be dropped): white paper
    kw = {"lossless": True} if ext == "webp" else {}
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        opaque, clear = tmp_path / f"o{orientation}.{ext}", tmp_path / f"a{orientation}.{ext}"
        Image.fromarray(rgb, "RGB").save(opaque, exif=exif.tobytes(), **kw)
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(clear, exif=exif.tobytes(), **kw)
        assert image_file.header_info(clear)[2]  # really read as a transparent image
        want, err = read_image(opaque, 10**6)
        assert err is None
        # the oracle: OpenCV's own loader, which applies the tag for IMREAD_COLOR
        np.testing.assert_array_equal(want, cv2.imread(str(opaque), cv2.IMREAD_COLOR))
        if orientation != 1:
            assert want.shape[:2] != rgb.shape[:2] or not np.array_equal(want, rgb[:, :, ::-1])
        got, err = read_image(clear, 10**6)
        assert err is None, orientation
        np.testing.assert_array_equal(got, want, err_msg=f"orientation {orientation}")


def test_single_missing_image_gives_an_error_frame_but_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    frames = list(open_source(str(tmp_path / "gone.jpg"), _cfg()).frames())
    assert len(frames) == 1 and frames[0].error == "file not found"
    with pytest.raises(SourceError, match="source not found"):
        open_source(str(tmp_path / "no_such_dir"), _cfg())
    with pytest.raises(SourceError, match="no files match"):
        open_source(str(tmp_path / "*.png"), _cfg())
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no files in folder"):
        open_source(str(tmp_path / "empty"), _cfg())


def test_glob_source(folder: Path) -> None:
    frames = list(open_source(str(folder / "*_ok.*"), _cfg()).frames())
    assert [Path(f.source).name for f in frames] == ["a_ok.jpg", "b_ok.png"]
    assert all(f.error is None for f in frames)


def _write_video(path: Path, n: int, size: tuple[int, int] = (64, 48), fps: float = 25.0, fourcc: str = "MJPG",
                 step: int = 4) -> None:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    assert w.isOpened()
    for i in range(n):
        # Frame number i as a gray level (steps of 4 survive JPEG): lets a test check order and completeness.
        w.write(np.full((size[1], size[0], 3), (step * i) % 256, np.uint8))
    w.release()


def _jpegs(n: int, step: int = 40) -> list[bytearray]:
    """Frame i as a 64x48 JPEG of gray level step * i: concatenated, a raw MJPEG stream as some cameras record."""
    return [bytearray(cv2.imencode(".jpg", np.full((48, 64, 3), step * i, np.uint8))[1].tobytes()) for i in range(n)]


def test_video_file_yields_every_frame_in_order(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    _write_video(video, 40)
    assert classify_spec(str(video)) == "video"
    src = open_source(str(video), _cfg())
    assert isinstance(src, VideoFileSource) and not src.live and not src.is_images
    frames = list(src.frames())
    src.close()
    assert [f.index for f in frames] == list(range(40))
    levels = [int(round(float(f.image.mean()) / 4)) for f in frames]
    assert levels == list(range(40))
    assert src.dropped == 0


def test_looping_video_starts_again_and_keeps_counting(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    _write_video(video, 10)
    src = open_source(str(video), _cfg(loop=True))
    it = src.frames()
    frames = [next(it) for _ in range(25)]
    src.close()
    assert [f.index for f in frames] == list(range(25))
    levels = [int(round(float(f.image.mean()) / 4)) for f in frames]
    assert levels == [i % 10 for i in range(25)]  # frame 10 is the first frame again
    assert src.loops == 2


def test_realtime_video_is_paced_at_its_own_rate_and_keeps_the_loop_turning(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    _write_video(video, 12, fps=10.0)
    src = VideoFileSource(str(video), 10**8, realtime=True)
    t0 = time.monotonic()
    got = list(src.frames(idle_timeout=0.02))
    elapsed = time.monotonic() - t0
    src.close()
    frames = [f for f in got if f is not None]
    assert [f.index for f in frames] == list(range(12))
    # 12 frames at 10 fps: at least 11 periods; a fast machine must not read it faster than real time.
    assert elapsed >= 1.0, elapsed
    assert got.count(None) >= 11  # the caller's loop got a turn while waiting (watchdog, signals)


def test_a_file_whose_first_frame_opencv_times_late_loops_on_without_a_pause(tmp_path: Path) -> None:
    # MPEG-2 in AVI (B-frames, as older cameras and tools write): OpenCV times the first frame one frame late,
    # 83 ms. Each pass began that much later than one frame after the last: under --realtime a pause at every
    # loop, in the stabiliser's clock a frame's time that was never in the file (a start further from 0, more).
    video = tmp_path / "camera.avi"
    _write_video(video, 12, fps=12.0, fourcc="mpg2", step=20)
    cap = cv2.VideoCapture(str(video))
    assert cap.read()[0] and cap.get(cv2.CAP_PROP_POS_MSEC) == pytest.approx(1000 / 12, abs=1)  # the premise
    cap.release()
    with VideoFileSource(str(video), 10**8, loop=True) as src:
        frames = []
        for f in src.frames():
            if f is not None:
                frames.append(f)
            if len(frames) == 36:
                break
    assert [round(float(f.image.mean()) / 20) for f in frames] == [i % 12 for i in range(36)]
    assert [f.media_s for f in frames] == pytest.approx([i / 12 for i in range(36)], abs=0.002)


def test_video_over_max_pixels_and_unreadable_video(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    _write_video(video, 3)
    with pytest.raises(SourceError, match="over source.max_pixels"):
        open_source(str(video), _cfg(max_pixels=64 * 48 - 1))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError, match="cannot open video"):
        open_source(str(bad), _cfg())


def test_unreachable_stream_fails_fast_without_retry() -> None:
    cfg = _cfg(read_timeout_s=2.0)
    t = time.monotonic()
    # a URL is a stream, not a camera ("cannot open camera http://..." sent users to look at a webcam)
    with pytest.raises(SourceError, match=r"^cannot open stream http://127\.0\.0\.1:9/none\.avi$"):
        open_source("http://127.0.0.1:9/none.avi", cfg, retry=False)
    assert time.monotonic() - t < 30  # bounded by the open timeout, not hanging


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_live_stream_drops_stale_frames_reports_outage_and_reconnects(tmp_path: Path) -> None:
    """A real HTTP stream through FFmpeg: a slow consumer gets the newest frames (drops counted); when the
    stream ends the source reports it once and reconnects; when the server is gone it keeps reporting."""
    _write_video(tmp_path / "cam.avi", 120)
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cam.avi"
    src = open_source(url, _cfg(reconnect_min_s=0.1, reconnect_max_s=0.2, read_timeout_s=2.0), retry=True)
    assert isinstance(src, CvCaptureSource) and src.live
    good, errors = [], []
    deadline = time.monotonic() + 20
    try:
        for frame in src.frames(idle_timeout=0.1):
            if time.monotonic() > deadline:
                break
            if frame is None:
                continue
            if frame.error:
                errors.append(frame)
                if len(errors) == 1:
                    continue
                break
            good.append(frame)
            time.sleep(0.03)  # a reader slower than the stream
            if errors and len(good) > 5 and src.reconnects >= 1:
                server.shutdown()
                server.server_close()
    finally:
        src.close()
        server.server_close()
    assert src.dropped > 0
    assert errors and errors[0].error == "camera disconnected"
    assert src.reconnects >= 1
    indices = [f.index for f in good]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)  # newest first, never repeated
    assert len(errors) >= 2  # the server went away: reported again while retrying


class _Camera(LiveSource):
    """The grabber's own logic with a device stand-in behind ``_open``/``_read`` (the adapter boundary):
    a device that opens every time but gives a frame only while ``working`` is set - a bad USB cable or a
    stalled stream, which no real device here can be made to do on demand."""

    def __init__(self, cfg: SourceConfig) -> None:
        self.opens: list[float] = []
        self.working = threading.Event()
        super().__init__("/dev/video-test", cfg, retry=True)

    def _open(self) -> object:
        self.opens.append(time.monotonic())
        return object()

    def _read(self, handle: object) -> np.ndarray | None:
        return np.zeros((48, 64, 3), np.uint8) if self.working.is_set() else None


def test_a_device_that_opens_but_gives_no_frames_is_one_outage_with_a_growing_backoff() -> None:
    # It once counted every successful open as "camera is back": the back-off went back to its minimum and
    # an error event went out every cycle (~120,000 a day to every sink) for as long as the fault lasted.
    cam = _Camera(_cfg(reconnect_min_s=0.05, reconnect_max_s=0.4))
    errors: list[str] = []
    good = 0
    t0 = time.monotonic()
    try:
        for frame in cam.frames(idle_timeout=0.05):
            if frame is not None and frame.error:
                errors.append(frame.error)
            elif frame is not None:
                good += 1
                if good == 3:
                    break
            elapsed = time.monotonic() - t0
            if elapsed > 3.0 and not cam.working.is_set():
                faulty_opens = len(cam.opens)
                gaps = np.diff(cam.opens)
                cam.working.set()
            if elapsed > 10.0:
                break
    finally:
        cam.close()
    assert errors == ["camera disconnected"]
    # the waits between opens doubled up to the maximum: 0.05, 0.1, 0.2, 0.4, 0.4 ... (each cycle also
    # spends 5 x 0.05 s on failed reads), so ~7 opens in 3 s instead of ~10 at a constant minimum
    assert gaps[-1] >= 0.4 + 0.2 and gaps[-1] > gaps[0] + 0.3
    assert faulty_opens <= 8
    assert good == 3 and cam.reconnects == 1


class _Snapshot(http.server.BaseHTTPRequestHandler):
    """A camera's snapshot URL (an ESP32-CAM's /capture): one JPEG per request, then the connection closes."""

    protocol_version = "HTTP/1.0"
    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))[1].tobytes()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.jpeg)))
        self.end_headers()
        self.wfile.write(self.jpeg)

    def log_message(self, *args: object) -> None:
        pass


def test_a_stream_that_keeps_dropping_right_after_it_comes_back_is_one_outage(tmp_path: Path) -> None:
    # A real stream through FFmpeg that ends after each picture and opens again at once: every cycle was an
    # error event and, once the picture came, the reading said again - two events a second to every sink
    # (MQTT and Home Assistant's error sensor too) for as long as it went on. Frames keep coming, so it is
    # one outage; once the camera really stays away as long as the longest reconnect wait, that is news.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Snapshot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/capture"
    src = open_source(url, _cfg(reconnect_min_s=0.05, reconnect_max_s=1.0, read_timeout_s=2.0), retry=True)
    errors: list[tuple[float, str]] = []
    good = 0
    t0 = time.monotonic()
    gone_at = math.inf
    try:
        for frame in src.frames(idle_timeout=0.05):
            now = time.monotonic() - t0
            if frame is not None and frame.error:
                errors.append((now, frame.error))
            elif frame is not None:
                good += 1
                last_good = now
            if now > 5.0 and gone_at == math.inf:
                gone_at = now
                server.shutdown()
                server.server_close()
            if (errors and errors[-1][0] > gone_at) or now > 15.0:
                break
    finally:
        src.close()
        server.server_close()
    flapping = [e for t, e in errors if t < gone_at]
    assert good >= 5 and src.reconnects >= 5  # it did come back, again and again
    assert flapping == ["camera disconnected"]  # the first loss only: nothing came back before it
    # the camera gone for good: reported once no frame came for the longest reconnect wait
    assert len(errors) == 2 and errors[1][0] - last_good >= 1.0 and errors[1][0] > gone_at, errors


def test_a_camera_lost_again_after_it_gave_frames_for_a_while_is_a_new_outage() -> None:
    # The flapping rule must not swallow real outages: a camera back and reading for longer than healthy_s,
    # then gone again (well within reconnect_max_s of its return), is news - the soak's camera faults.
    cam = _Camera(_cfg(reconnect_min_s=0.05, reconnect_max_s=30.0))
    cam.healthy_s = 0.3
    cam.working.set()
    errors: list[float] = []
    t0 = time.monotonic()
    phases = [(1.0, False), (1.5, True), (2.5, False), (3.0, True)]  # (from t, working): out, back 1 s, out
    try:
        for frame in cam.frames(idle_timeout=0.05):
            now = time.monotonic() - t0
            for at, working in phases:
                if now >= at:
                    (cam.working.set if working else cam.working.clear)()
            if frame is not None and frame.error:
                errors.append(now)
            if now > 4.0:
                break
    finally:
        cam.close()
    assert len(errors) == 2 and 1.0 <= errors[0] < 1.5 and 2.5 <= errors[1] < 3.0, errors
    assert cam.reconnects == 2


def test_no_frame_from_before_an_outage_is_handed_out_after_its_error() -> None:
    # The grabber's last frame waited in the slot while the error was posted; handed out after the error,
    # it "answered" the outage (the daemon said the reading again and the error flag cleared) although the
    # camera was gone. A consumer slower than the grabber's failure detection always saw it.
    cam = _Camera(_cfg(reconnect_min_s=5.0, reconnect_max_s=5.0))
    cam.working.set()
    seen: list[str] = []
    deadline = time.monotonic() + 10.0
    try:
        for frame in cam.frames(idle_timeout=0.05):
            if time.monotonic() > deadline or (frame is None and "error" in seen and len(seen) > 3):
                break
            if frame is None:
                continue
            seen.append("error" if frame.error else "frame")
            if len(seen) == 3:
                cam.working.clear()  # unplugged: every read fails from now on
                time.sleep(1.0)  # a slow read (a Pi on a busy frame) while the grabber notices
    finally:
        cam.close()
    assert seen[:3] == ["frame"] * 3 and seen[3:] == ["error"], seen
    assert cam.dropped >= 1


def test_a_damaged_stretch_in_a_video_file_is_passed_over_not_taken_for_its_end(tmp_path: Path) -> None:
    # A few kB of garbage a third of the way in: the decoder fails on one frame and goes on; the source
    # stopped there and the run ended with exit 0, two thirds of the file (and its readings) unread.
    data = bytearray((ROOT / "samples" / "sample.mp4").read_bytes())
    at = int(len(data) * 0.3)
    data[at:at + 4096] = bytes(4096)
    video = tmp_path / "damaged.mp4"
    video.write_bytes(bytes(data))
    whole = VideoFileSource(str(ROOT / "samples" / "sample.mp4"), 40_000_000)
    n_whole = sum(1 for _ in whole.frames())
    src = VideoFileSource(str(video), 40_000_000)
    frames = list(src.frames())
    assert all(f.error is None for f in frames) and not src.failed
    assert src.skipped >= 1 and len(frames) + src.skipped >= n_whole - 1
    assert len(frames) > 0.9 * n_whole


def test_a_file_read_to_its_end_past_undecodable_frames_is_not_called_damaged(tmp_path: Path,
                                                                              subprocess_env: dict) -> None:
    # Random bytes in the middle, or a third of the file zeroed: the decoder fails on some frames and reads the
    # rest to the end. OpenCV's position counts only the frames it decoded, so at the real end the container
    # still seemed to hold the undecodable ones: 300 futile reads, then a "video damaged: 300 frames in a row
    # cannot be decoded" error event and exit 1 for a file whose every readable frame had been read.
    data = (ROOT / "samples" / "sample.mp4").read_bytes()
    n = len(data)
    rand = bytearray(data)
    rand[n // 2:n // 2 + 8192] = np.random.default_rng(1).bytes(8192)
    zeros = bytearray(data)
    zeros[n // 3:2 * n // 3] = bytes(2 * n // 3 - n // 3)
    n_whole = sum(1 for _ in VideoFileSource(str(ROOT / "samples" / "sample.mp4"), 40_000_000).frames())
    for name, damaged in (("random.mp4", rand), ("zeroed.mp4", zeros)):
        video = tmp_path / name
        video.write_bytes(bytes(damaged))
        src = VideoFileSource(str(video), 40_000_000)
        frames = list(src.frames())
        assert src.skipped >= 1, name  # the damage is real: some frames cannot be decoded ...
        # ... and the rest are all read, to the end, with no error
        assert [f.error for f in frames if f.error] == [] and not src.failed, name
        assert len(frames) + src.skipped == n_whole, name
        # the whole daemon: no error event, exit 0 (the damaged stretch is a warning in the log)
        out = subprocess.run([sys.executable, "-m", "edge", "--source", str(video), "--sink", "stdout"], cwd=ROOT,
                             env=subprocess_env, capture_output=True, text=True, timeout=120)
        events = [json.loads(line) for line in out.stdout.splitlines()]
        assert out.returncode == 0, out.stderr[-2000:]
        assert events and not [e for e in events if "error" in e], events
        assert "skipping the damaged stretch" in out.stderr


def test_a_second_damaged_stretch_soon_after_the_first_does_not_end_the_file(tmp_path: Path) -> None:
    # MJPEG in AVI, frames 10-29 and 31-33 undecodable. The time rule of _frames_left took the 21 frames' time
    # from frame 9 to frame 30 for one frame's period: at frame 31 no time seemed left, and 34-39 were lost
    # with exit 0 and no word.
    video = tmp_path / "two_stretches.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 12, (64, 48))
    assert w.isOpened()
    for i in range(40):
        w.write(np.full((48, 64, 3), 6 * i, np.uint8))
    w.release()
    data = bytearray(video.read_bytes())
    bad = {*range(10, 30), 31, 32, 33}
    at, k = 0, 0
    while (soi := data.find(b"\xff\xd8\xff", at)) >= 0:
        sof = data.find(b"\xff\xc0", soi)
        if k in bad:
            for c in range(data[sof + 9]):
                data[sof + 10 + 3 * c + 2] = 5  # a quantisation table the picture does not have
        at, k = sof + 2, k + 1
    assert k == 40
    video.write_bytes(bytes(data))
    src = VideoFileSource(str(video), 10**8)
    frames = list(src.frames())
    assert [f.error for f in frames if f.error] == [] and not src.failed
    assert [round(float(f.image.mean()) / 6) for f in frames] == [*range(10), 30, *range(34, 40)]
    assert src.skipped == len(bad)


def test_a_video_with_fewer_frames_than_its_declared_rate_is_read_to_its_end_not_called_damaged(
        tmp_path: Path, subprocess_env: dict) -> None:
    # A webcam capture in Matroska: the track declares 120 fps, the camera delivered 12. Matroska stores no frame
    # count, so OpenCV's is duration x declared rate (400 for these 40 frames): at the real end the 360 frames
    # that never came were taken for a damaged stretch - 300 futile reads, then "video damaged" and exit 1.
    video = tmp_path / "webcam.mkv"
    _write_video(video, 40, fps=12, fourcc="FFV1")
    data = bytearray(video.read_bytes())
    at = data.find(b"\x23\xe3\x83\x84")  # the track's DefaultDuration (ns a frame), 4 bytes
    assert at > 0 and struct.unpack(">I", data[at + 4:at + 8]) == (1_000_000_000 // 12,)
    data[at + 4:at + 8] = struct.pack(">I", 1_000_000_000 // 120)
    video.write_bytes(bytes(data))
    src = VideoFileSource(str(video), 10**8)
    assert src.fps == 120 and int(src._cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 400  # the premise
    frames = list(src.frames())
    assert [f.error for f in frames if f.error] == [] and not src.failed and src.skipped == 0
    assert [int(round(float(f.image.mean()) / 4)) for f in frames] == list(range(40))
    out = subprocess.run([sys.executable, "-m", "edge", "--source", str(video), "--sink", "stdout"], cwd=ROOT,
                         env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "error" not in out.stdout and "damaged" not in out.stderr, (out.stdout, out.stderr[-2000:])


@pytest.mark.parametrize("kind", ["one_frame.mp4", "raw.mjpg"])
def test_looping_a_file_that_cannot_seek_back_starts_it_again(tmp_path: Path, kind: str,
                                                              subprocess_env: dict) -> None:
    # A seek back to the start says yes but leaves the decoder at the end of a file of one frame and of a raw
    # MJPEG stream (concatenated JPEGs, as some cameras record): --loop ended after one pass, exit 0, no word.
    video = tmp_path / kind
    n = 1 if kind.endswith(".mp4") else 5
    if kind.endswith(".mp4"):
        _write_video(video, n, fps=12, fourcc="mp4v", step=40)
    else:
        video.write_bytes(b"".join(_jpegs(n)))
    src = VideoFileSource(str(video), 10**8, loop=True)
    it = src.frames()
    frames = [next(it, None) for _ in range(3 * n + 1)]
    src.close()
    assert None not in frames and src.loops == 3
    assert [f.index for f in frames if f is not None] == list(range(3 * n + 1))
    levels = [round(float(f.image.mean()) / 40) for f in frames if f is not None]
    assert levels == [i % n for i in range(3 * n + 1)]
    # the daemon: every frame --max-frames asks for is read
    out = subprocess.run([sys.executable, "-m", "edge", "--source", str(video), "--loop", "--max-frames", "12",
                          "--sink", "stdout"], cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "no stable reading in 12 frame(s)" in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("kind", ["zeroed.mp4", "badq.mjpg"])
def test_a_video_of_which_no_frame_decodes_is_an_error_not_a_silent_success(tmp_path: Path, kind: str,
                                                                           subprocess_env: dict) -> None:
    # It opens (the container is whole) but not one frame decodes: an MP4 whose picture data is zeroed (a few
    # failed reads, fewer than the damaged-stretch limit) and a raw MJPEG stream whose pictures name a
    # quantisation table they do not have. Both ended the run with exit 0 and no event at all.
    video = tmp_path / kind
    if kind.endswith(".mp4"):
        _write_video(video, 20, fps=12, fourcc="mp4v", step=8)
        data = bytearray(video.read_bytes())
        mdat, moov = data.find(b"mdat"), data.find(b"moov")
        assert 0 < mdat < moov  # OpenCV writes the index after the pictures
        data[mdat + 4:moov - 4] = bytes(moov - 4 - mdat - 4)
    else:
        data = bytearray()
        for jpg in _jpegs(5):
            sof = jpg.find(b"\xff\xc0")
            for c in range(jpg[sof + 9]):
                jpg[sof + 10 + 3 * c + 2] = 5  # each component's quantisation table: one the file does not have
            data += jpg
    video.write_bytes(bytes(data))
    src = VideoFileSource(str(video), 10**8)
    frames = list(src.frames())
    assert [f.image for f in frames] == [None] and frames[0].error and src.failed
    out = subprocess.run([sys.executable, "-m", "edge", "--source", str(video), "--sink", "stdout"], cwd=ROOT,
                         env=subprocess_env, capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert [e["error"] for e in events] == ["cannot decode video: no frame could be decoded"], events
    assert "no stable reading" not in out.stderr  # the error event says why; not a hint about stabilisation


def test_a_camera_urls_password_stays_out_of_events_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    # It showed in every event (so in every sink, MQTT too), on the web page and in each retry's log line.
    from edge.config import Config, summary

    url = "rtsp://admin:S3cretCamPass@127.0.0.1:1/stream1"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(SourceError) as exc:
            open_source(url, _cfg(read_timeout_s=2), retry=False)
        assert str(exc.value) == "cannot open stream rtsp://admin:***@127.0.0.1:1/stream1"
        src = open_source(url, _cfg(read_timeout_s=2, reconnect_min_s=0.1), retry=True)
        try:
            frame = next(f for f in src.frames(idle_timeout=0.2) if f is not None)
        finally:
            src.close()
    assert frame.error == "cannot open stream" and frame.source == "rtsp://admin:***@127.0.0.1:1/stream1"
    assert src.name == frame.source
    assert not [r for r in caplog.records if "S3cretCamPass" in r.getMessage()]
    from edge.secrets import redact

    # an unencoded @ in the password must not leave its tail showing; URLs without one are left alone
    assert redact("rtsp://admin:p@ss@cam.lan/live") == "rtsp://admin:***@cam.lan/live"
    assert redact("http://cam.lan:8080/a@b") == "http://cam.lan:8080/a@b"
    cfg = Config()
    cfg.source.spec = url
    assert "S3cretCamPass" not in summary(cfg) and "rtsp://admin:***@127.0.0.1:1/stream1" in summary(cfg)


def test_a_file_that_may_not_be_read_says_so_and_the_rest_are_read(tmp_path: Path, subprocess_env: dict) -> None:
    # It was "cannot decode image", as for a corrupt file; the service user lacking the right is the cause.
    import os
    import shutil
    import subprocess
    import sys

    d = tmp_path / "pages"
    d.mkdir()
    cv2.imwrite(str(d / "a_locked.png"), np.full((40, 50, 3), 200, np.uint8))
    cv2.imwrite(str(d / "b_ok.png"), np.full((40, 50, 3), 200, np.uint8))
    (d / "a_locked.png").chmod(0)
    code = ("import sys; from edge.capture import open_source; from edge.config import SourceConfig\n"
            "for f in open_source(sys.argv[1], SourceConfig()).frames(): print(f.error)")
    cmd = [sys.executable, "-c", code, str(d)]
    if os.geteuid() == 0:  # root reads any file: drop the capabilities that let it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", *cmd]
    out = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["cannot read file: Permission denied", "None"]


#: what a folder of _linked_pages gives, frame by frame: (name, error)
LINKED_PAGES = [("a_ok.png", None), ("b_moved.png", "file not found"),
                ("c_loop.png", "cannot read file: Too many levels of symbolic links"),
                ("d_loop.png", "cannot read file: Too many levels of symbolic links")]


def _linked_pages(tmp_path: Path) -> Path:
    """A folder with a page, a link to a photo moved away and two links to each other."""
    d = tmp_path / "pages"
    d.mkdir()
    cv2.imwrite(str(d / "a_ok.png"), np.full((40, 50, 3), 200, np.uint8))
    (d / "b_moved.png").symlink_to(tmp_path / "gone.png")
    (d / "c_loop.png").symlink_to(d / "d_loop.png")
    (d / "d_loop.png").symlink_to(d / "c_loop.png")
    return d


def test_a_broken_link_or_a_link_loop_in_a_folder_is_an_error_frame_not_skipped(tmp_path: Path) -> None:
    d = _linked_pages(tmp_path)
    (d / "e_dirlink").symlink_to(tmp_path)  # a link to a folder is a folder: not read
    frames = list(open_source(str(d), _cfg()).frames())
    assert [(Path(f.source).name, f.error) for f in frames] == LINKED_PAGES


def test_a_glob_keeps_a_broken_link_or_a_link_loop_as_a_folder_does(tmp_path: Path) -> None:
    # The glob's files were the ones isfile() says are files: a photo moved away from under its link (or a
    # link loop) vanished from the run without a word, where the same folder gives it an error event.
    d = _linked_pages(tmp_path)
    (d / "e_dir.png").mkdir()  # a folder the glob matches is still not read
    frames = list(open_source(str(d / "*.png"), _cfg()).frames())
    assert [(Path(f.source).name, f.error) for f in frames] == LINKED_PAGES
    with pytest.raises(SourceError, match="no files match"):
        open_source(str(d / "e_*"), _cfg())


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_a_grey_png_whose_transparency_is_one_grey_value_has_white_paper(tmp_path: Path, dtype: type) -> None:
    # tRNS on a grey PNG (what optimisers make of a binary-alpha drawing): OpenCV leaves the key value in the
    # pixels, so the transparent paper stayed black and black ink on it was black on black (nothing read).
    from PIL import Image

    grey = np.zeros((10, 12), dtype)  # paper: 0, the transparent value
    grey[2:8, 5:7] = 1  # black ink (1, not the key)
    Image.fromarray(grey).save(tmp_path / "key.png", transparency=0)
    assert image_file.header_info(tmp_path / "key.png")[2]
    img, err = read_image(tmp_path / "key.png", 10**6)
    assert err is None and img.dtype == np.uint8
    assert img[0, 0].tolist() == [255, 255, 255]  # transparent paper is white
    assert img[4, 5].max() <= 1  # the ink stays black


# ------------------------------------------------------------------ a folder: what is an image, what is not


def test_a_folder_passes_over_files_that_are_not_images_and_reads_images_without_an_extension(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A folder of photos beside their labels.csv gave a "labels.csv: cannot decode image" error event (and
    # CSV row); samples/ did the same for its README.md, JSON files and video.
    d = tmp_path / "photos"
    d.mkdir()
    page = np.full((30, 40, 3), 220, np.uint8)
    page[10:20, 5:9] = 0
    cv2.imwrite(str(d / "b_page.png"), page)
    (d / "c_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut off")  # an image's name: its error event stays
    (d / "a_labels.csv").write_text("file,numbers\nb_page.png,1\n")
    (d / "README.md").write_text("# photos\n")
    (d / "sample.json").write_text("{}\n")
    _write_video(d / "d_clip.avi", 3)  # a real video: not an image of a folder of images
    ok, jpeg = cv2.imencode(".jpg", page)
    (d / "IMG_0001").write_bytes(jpeg.tobytes())  # a camera app's photo saved without an extension
    ok, png = cv2.imencode(".png", page)
    (d / "scan.dat").write_bytes(png.tobytes())  # an extension nobody listed, an image inside
    (d / "recording").write_bytes((ROOT / "samples" / "sample.mp4").read_bytes()[:4096])  # a video, no ext.
    (d / "notes").write_text("BM is where the pages go\n")  # "BM" starts a BMP too: not enough to be one
    with caplog.at_level(logging.INFO, logger="edge.capture"):
        src = open_source(str(d), _cfg())
    frames = list(src.frames())
    assert [(Path(f.source).name, f.error) for f in frames] == [
        ("IMG_0001", None), ("b_page.png", None), ("c_broken.jpg", "cannot decode image"), ("scan.dat", None)]
    np.testing.assert_array_equal(frames[3].image, page)
    assert np.abs(frames[0].image.astype(int) - page).max() < 40  # JPEG: near enough
    assert [Path(p).name for p in src.skipped_files] == [
        "README.md", "a_labels.csv", "d_clip.avi", "notes", "recording", "sample.json"]
    said = [r.getMessage() for r in caplog.records if "passed over" in r.getMessage()]
    assert said == [f"{d}: 4 images to read, 6 other files passed over (not images): README.md, a_labels.csv, "
                    "d_clip.avi, notes, recording, ... (1 more)"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "csv" in r.getMessage()]


def test_a_named_file_or_a_glob_is_read_as_named_and_a_folder_of_no_images_says_so(tmp_path: Path) -> None:
    d = tmp_path / "photos"
    d.mkdir()
    (d / "labels.csv").write_text("file,numbers\n")
    (d / "README.md").write_text("# photos\n")
    with pytest.raises(SourceError, match=r"^no images in folder .*photos \(2 other files: README.md, labels.csv\)$"):
        open_source(str(d), _cfg())
    cv2.imwrite(str(d / "page.png"), np.full((30, 40), 255, np.uint8))
    # a glob names its files itself: each gets its event, a non-image its error (today's behaviour)
    frames = list(open_source(str(d / "*"), _cfg()).frames())
    assert [(Path(f.source).name, f.error) for f in frames] == [
        ("README.md", "cannot decode image"), ("labels.csv", "cannot decode image"), ("page.png", None)]


def test_images_in_a_folder_whose_type_is_only_in_their_first_bytes_are_recognised() -> None:
    from edge.image_file import image_signature

    def encoded(ext: str, img: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(ext, img)
        assert ok, ext
        return buf.tobytes()

    img = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    for ext in (".jpg", ".png", ".bmp", ".tif", ".webp", ".ppm", ".pgm", ".jp2", ".ras", ".gif"):
        one = img[:, :, 0] if ext == ".pgm" else img
        if ext in (".jp2", ".gif") and not cv2.haveImageWriter(f"x{ext}"):
            continue
        assert image_signature(encoded(ext, one)[:32]), ext
    # a phone's HEIC or an AVIF (ISO media with a still image's brand) is a photo: read, so its event says
    # whether it could be decoded, never passed over without a word
    assert image_signature(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic") and image_signature(b"\0\0\0\x1cftypavif")
    for text in (b"file,numbers\n", b"# README\n", b"{}", b"BM is here\n", b"PNG is a format\n", b"P5x",
                 (ROOT / "samples" / "sample.mp4").read_bytes()[:32], b""):
        assert not image_signature(text[:32]), text


# ------------------------------------------------------------------ source.rotate / source.flip


def _upright_oracle(stored: np.ndarray, rotate: int, flip: str) -> np.ndarray:
    """What rotate (clockwise) then flip make of ``stored``, by numpy (not the cv2 routines under test)."""
    out = np.rot90(stored, -rotate // 90)  # np.rot90 turns counter-clockwise for positive k
    if flip == "horizontal":
        out = out[:, ::-1]
    elif flip == "vertical":
        out = out[::-1]
    return np.ascontiguousarray(out)


TURNS = [(r, f) for r in (0, 90, 180, 270) for f in ("none", "horizontal", "vertical")]


@pytest.mark.parametrize(("rotate", "flip"), TURNS)
def test_rotate_and_flip_turn_every_frame_of_images_and_videos(tmp_path: Path, rotate: int, flip: str) -> None:
    stored = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)  # no symmetry at all
    want = _upright_oracle(stored, rotate, flip)
    cfg = _cfg(rotate=rotate, flip=flip)
    cv2.imwrite(str(tmp_path / "page.png"), stored)
    for spec in (tmp_path / "page.png", tmp_path):  # a named image and a folder
        (frame,) = list(open_source(str(spec), cfg).frames())
        np.testing.assert_array_equal(frame.image, want)
    video = tmp_path / "clip.avi"  # lossless, so the turn is checked to the pixel
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10, (64, 48))
    for _ in range(3):
        w.write(stored)
    w.release()
    src = open_source(str(video), cfg)
    frames = list(src.frames())
    src.close()
    assert len(frames) == 3
    for frame in frames:
        np.testing.assert_array_equal(frame.image, want)


def test_a_camera_frame_is_turned_in_the_grabber_thread() -> None:
    stored = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    turned_in: list[str] = []

    class Sideways(_Camera):
        def _read(self, handle: object) -> np.ndarray | None:
            return stored.copy()

    cam = Sideways(_cfg(rotate=90, flip="vertical"))
    real = cam.turn
    cam.turn = lambda img: turned_in.append(threading.current_thread().name) or real(img)
    try:
        frame = next(f for f in cam.frames(idle_timeout=0.1) if f is not None)
    finally:
        cam.close()
    assert frame.error is None and frame.image.shape == (64, 48, 3)
    np.testing.assert_array_equal(frame.image, _upright_oracle(stored, 90, "vertical"))
    # the reader's thread never pays for the turn
    assert turned_in and set(turned_in) == {"grab:/dev/video-test"}


def test_a_sideways_mirrored_page_is_read_as_the_upright_one_with_boxes_in_turned_pixels(
        tmp_path: Path, subprocess_env: dict) -> None:
    """The whole daemon (a real process): a page stored turned a quarter left and mirrored, read with
    ``rotate: 90`` and ``flip: horizontal``, gives the upright page's event - the same numbers, the same boxes."""
    import json
    import subprocess
    import sys

    upright = cv2.imread(str(ROOT / "samples" / "page_blue.jpg"))
    stored = np.ascontiguousarray(np.rot90(upright[:, ::-1], 1))  # mirrored, then a quarter turn left
    d = tmp_path / "pages"
    d.mkdir()
    cv2.imwrite(str(d / "a_upright.png"), upright)
    cv2.imwrite(str(d / "b_sideways.png"), stored)
    config = tmp_path / "config.yaml"
    config.write_text("source:\n  rotate: 90\n  flip: horizontal\n")

    def events(*args: str) -> dict[str, dict]:
        out = subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=subprocess_env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return {Path(e["source"]).name: e for e in map(json.loads, out.stdout.splitlines())}

    plain = events("--source", str(d))
    turned = events("--config", str(config), "--source", str(d / "b_sideways.png"))

    def numbers(e: dict) -> list:
        return [(n["value"], n["box"], [dg["box"] for dg in n["digits"]]) for n in e["numbers"]]

    assert numbers(plain["a_upright.png"]) and numbers(plain["a_upright.png"])[0][0] == "42633"
    assert numbers(turned["b_sideways.png"]) == numbers(plain["a_upright.png"])
    assert numbers(plain["b_sideways.png"]) != numbers(plain["a_upright.png"])  # read as stored: not the page


# ------------------------------------------------------------------ what a source that cannot be opened is


def test_a_file_that_is_neither_image_nor_video_says_so_and_a_broken_video_is_still_a_video(tmp_path: Path,
                                                                                         subprocess_env: dict) -> None:
    import subprocess
    import sys

    notes = tmp_path / "README.md"
    notes.write_text("# not a picture\n")
    with pytest.raises(SourceError) as exc:
        open_source(str(notes), _cfg())
    assert str(exc.value) == f"{notes} is not an image or a video OpenCV can open"
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(SourceError) as exc:
        open_source(str(bad), _cfg())
    assert str(exc.value) == f"cannot open video {bad}"
    # and so the command line says, one line each (exit 1); a URL is a stream, a device a camera
    for args, line in ((["--source", str(notes)], f"error: {notes} is not an image or a video OpenCV can open"),
                       (["--source", "http://127.0.0.1:9/cam.mjpg", "--max-frames", "1"],
                        "error: cannot open stream http://127.0.0.1:9/cam.mjpg"),
                       (["--source", "/dev/video99", "--max-frames", "1"], "error: cannot open camera /dev/video99"),
                       # the stable name of a USB camera (README: a replugged camera can come back as another
                       # /dev/videoN) is a camera too, opened by its link, not "source not found"
                       (["--source", "/dev/v4l/by-id/usb-Example_Cam-video-index0", "--max-frames", "1"],
                        "error: cannot open camera /dev/v4l/by-id/usb-Example_Cam-video-index0")):
        out = subprocess.run([sys.executable, "-m", "edge", *args], cwd=ROOT, env=subprocess_env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1 and out.stdout == ""
        assert [ln for ln in out.stderr.splitlines() if ln.startswith("error")] == [line], out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="video4linux major numbers are Linux's")
def test_a_device_that_is_not_a_camera_is_refused_and_a_file_under_dev_is_read_as_a_file(
        subprocess_env: dict) -> None:

    # /dev/null was taken for a camera that does not open, and a service retried it for ever.
    with pytest.raises(SourceError) as exc:
        open_source("/dev/null", _cfg())
    assert str(exc.value) == "/dev/null is not a video device (a camera is /dev/videoN)"
    out = subprocess.run([sys.executable, "-m", "edge", "--source", "/dev/null"], cwd=ROOT, env=subprocess_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and out.stdout == ""
    assert [ln for ln in out.stderr.splitlines() if ln.startswith("error")] == [
        "error: /dev/null is not a video device (a camera is /dev/videoN)"], out.stderr
    # A snapshot written to the /dev/shm RAM disk is an image, not a camera.
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        pytest.skip("no writable /dev/shm")
    snap = shm / f"digits-test-{os.getpid()}.jpg"
    snap.write_bytes((ROOT / "samples" / "page_blue.jpg").read_bytes())
    try:
        assert classify_spec(str(snap)) == "images"
        with open_source(str(snap), _cfg()) as src:
            frames = [f for f in src.frames() if f is not None]
        assert len(frames) == 1 and frames[0].error is None and frames[0].image.shape[:2] == (480, 640)
    finally:
        snap.unlink()


def test_a_snapshot_under_dev_shm_not_written_yet_is_a_missing_file_not_a_camera() -> None:
    # /dev/shm/snap.jpg before the first snapshot was taken for a camera: "cannot open camera", and a service
    # retried it for ever, never reading the file once it was there. A missing /dev/videoN is still a camera.
    spec = f"/dev/shm/digits-test-{os.getpid()}-not-yet.jpg"
    assert classify_spec(spec) == "images"
    with open_source(spec, _cfg()) as src:
        assert [f.error for f in src.frames() if f is not None] == ["file not found"]
    assert classify_spec(f"/dev/shm/digits-test-{os.getpid()}-not-yet.mp4") == "missing"
    for camera in ("/dev/video97", "/dev/v4l/by-id/usb-Cam_2.0-video-index0",
                   "/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0"):
        assert classify_spec(camera) == "camera", camera


class _Unplugged(_Camera):
    """A camera that is not there: every open fails."""

    def _open(self) -> object:
        self.opens.append(time.monotonic())
        return None


def test_an_unplugged_camera_says_it_is_retrying_only_while_the_back_off_grows(
        caplog: pytest.LogCaptureFixture) -> None:
    # Every retry was an INFO line: at the 30 s back-off, 2,880 a day in the journal while a camera stayed
    # unplugged. Now INFO while the back-off grows, then once at the longest one (and again every 10 min).
    cam = _Unplugged(_cfg(reconnect_min_s=0.01, reconnect_max_s=0.04))
    errors = []
    with caplog.at_level(logging.DEBUG, logger="edge.capture"):
        t0 = time.monotonic()
        try:
            for frame in cam.frames(idle_timeout=0.05):
                if frame is not None and frame.error:
                    errors.append(frame.error)
                if time.monotonic() - t0 > 1.0:
                    break
        finally:
            cam.close()
    said = [r for r in caplog.records if r.levelno >= logging.INFO and "retry" in r.getMessage()]
    quiet = [r for r in caplog.records if r.levelno == logging.DEBUG and "retrying in" in r.getMessage()]
    assert len(cam.opens) >= 15 and errors == ["cannot open camera"]
    assert [r.getMessage() for r in said[:2]] == ["/dev/video-test: retrying in 0.0 s"] * 2  # 0.01, 0.02
    assert len(said) == 3 and "still not available after 3 attempt(s)" in said[2].getMessage()
    assert len(quiet) >= len(cam.opens) - 4


def test_a_glob_through_a_link_loop_reads_each_image_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # ``**`` follows links to folders: a link back up the tree matched each photo once per level down to the
    # system's link limit (41 events for one photo here). Two names in one folder stay two inputs.
    d = tmp_path / "pages" / "a"
    d.mkdir(parents=True)
    page = np.full((40, 40), 255, np.uint8)
    cv2.imwrite(str(d / "x.png"), page)
    cv2.imwrite(str(tmp_path / "pages" / "y.png"), page)
    (d / "up").symlink_to("..")
    (d / "latest.png").symlink_to("x.png")
    spec = str(tmp_path / "pages" / "**" / "*.png")
    with caplog.at_level(logging.INFO, logger="edge.capture"):
        frames = list(open_source(spec, _cfg()).frames())
    assert [Path(f.source).relative_to(tmp_path).as_posix() for f in frames] == \
        ["pages/a/latest.png", "pages/a/x.png", "pages/y.png"]
    assert all(f.error is None for f in frames)
    assert "each is read once" in caplog.text


@pytest.mark.parametrize("pattern", ["**", "**/*"])
def test_a_glob_of_everything_through_a_link_loop_gives_no_error_for_the_folder_at_the_link_limit(
        tmp_path: Path, pattern: str) -> None:
    # pages/** lists folders too. Down a link back up the tree the last level (a/up/a/up/.../up, 40 links) is
    # one the system refuses to follow: isdir() is False, as for a link loop, so it was kept as an input and
    # read as one - an error event "Too many levels of symbolic links" for a folder, beside every photo.
    d = tmp_path / "pages" / "a"
    d.mkdir(parents=True)
    cv2.imwrite(str(d / "x.png"), np.full((40, 40), 255, np.uint8))
    (d / "up").symlink_to("..")
    (d / "loop.png").symlink_to("loop.png")  # a real loop with an image's name is still read (its error)
    frames = list(open_source(str(tmp_path / "pages" / pattern), _cfg()).frames())
    assert [(Path(f.source).relative_to(tmp_path).as_posix(), f.error is None) for f in frames] == \
        [("pages/a/loop.png", False), ("pages/a/x.png", True)]
