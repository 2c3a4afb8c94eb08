"""The picamera2 adapter's own logic (edge/capture_picamera2.py) against a stand-in ``picamera2`` module.

No Pi camera runs here (README, "what was not tested on hardware"). The stand-in has the calls the adapter
makes, with the shapes picamera2 documents: ``capture_array("lores")`` of a YUV420 stream is a
(h * 3 / 2, stride) uint8 array whose first h rows, first w columns are the Y plane; the rest of each row is
padding up to the stride. What is tested is ours: the stride handled, the camera closed when it fails to
start (an opened Picamera2 holds the camera: every retry would find it busy), the shared reconnect logic.
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from edge.capture import open_source
from edge.config import SourceConfig


class _FakeCamera:
    instances: list[_FakeCamera] = []
    fail_starts = 0  # how many start() calls fail before one works
    stride = 704  # a 640-wide lores plane padded to a 64-byte multiple, as libcamera does

    def __init__(self) -> None:
        self.closed = self.started = False
        self.size: tuple[int, int] | None = None
        _FakeCamera.instances.append(self)

    def create_video_configuration(self, main: dict, lores: dict, buffer_count: int, queue: bool) -> dict:
        assert lores["format"] == "YUV420" and main["size"][0] >= lores["size"][0]
        return {"lores": lores}

    def configure(self, config: dict) -> None:
        self.size = tuple(config["lores"]["size"])

    def start(self) -> None:
        if _FakeCamera.fail_starts > 0:
            _FakeCamera.fail_starts -= 1
            raise RuntimeError("Failed to start camera: Device or resource busy")
        self.started = True

    def camera_configuration(self) -> dict:
        return {"lores": {"size": self.size}}

    def capture_array(self, name: str) -> np.ndarray:
        assert name == "lores" and self.started and not self.closed
        w, h = self.size
        yuv = np.full((h * 3 // 2, self.stride), 255, np.uint8)  # padding and chroma: white
        yuv[:h, :w] = np.arange(w, dtype=np.uint8)[None, :] // 4  # Y: a left-to-right ramp, never 255
        yuv[h // 2:h, :w] //= 2  # its lower half darker: no two orientations of the picture look alike
        time.sleep(0.01)
        return yuv

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[_FakeCamera]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = _FakeCamera  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    _FakeCamera.instances, _FakeCamera.fail_starts = [], 0
    return _FakeCamera


def _first_frames(src, n: int, timeout: float = 10.0) -> tuple[list, list]:  # noqa: ANN001
    good, errors = [], []
    deadline = time.monotonic() + timeout
    for frame in src.frames(idle_timeout=0.05):
        if frame is not None:
            (errors if frame.error else good).append(frame)
        if len(good) >= n or time.monotonic() > deadline:
            break
    return good, errors


def test_gray_frames_are_the_y_plane_without_the_stride_padding(fake_picamera2: type[_FakeCamera]) -> None:
    src = open_source("picamera2", SourceConfig(picamera2_size=(640, 480)), retry=True)
    try:
        good, errors = _first_frames(src, 3)
    finally:
        src.close()
    assert not errors and len(good) == 3
    img = good[0].image
    assert img.shape == (480, 640) and img.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(img[0], np.arange(640, dtype=np.uint8) // 4)  # no padding column left
    assert fake_picamera2.instances[-1].closed  # close() releases the camera


def test_a_camera_that_fails_to_start_is_closed_and_retried(fake_picamera2: type[_FakeCamera]) -> None:
    fake_picamera2.fail_starts = 2
    src = open_source("picamera2", SourceConfig(picamera2_size=(320, 240), reconnect_min_s=0.05), retry=True)
    try:
        good, errors = _first_frames(src, 1)
    finally:
        src.close()
    cams = fake_picamera2.instances
    assert len(cams) == 3 and all(c.closed for c in cams[:2])  # each failed one released before the retry
    assert [e.error for e in errors] == ["cannot open camera"] and len(good) == 1
    assert good[0].image.shape == (240, 320)


def test_a_picamera2_built_for_another_numpy_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    # bookworm: apt's picamera2 is built for numpy 1.x; with numpy 2 in the venv its import raises ValueError,
    # which went past the ImportError handler and killed the grabber ("grabber failed", exit 1, a restart loop)
    from edge.capture import SourceError

    class Broken(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C "
                             "header, got 88 from PyObject")

    monkeypatch.setitem(sys.modules, "picamera2", Broken("picamera2"))
    with pytest.raises(SourceError, match="cannot open camera picamera2"):
        open_source("picamera2", SourceConfig(), retry=False)
    assert any("numpy<2" in r.getMessage() and "numpy.dtype size changed" in r.getMessage() for r in caplog.records)


class _Manager:
    """picamera2's CameraManager as far as its bookkeeping goes: cameras by index, ``cleanup(index)``."""

    def __init__(self) -> None:
        self.cameras: dict[int, object] = {}

    def add(self, index: int, camera: object) -> None:
        self.cameras[index] = camera

    def cleanup(self, index: int) -> None:
        del self.cameras[index]


class _AbsentCamera:
    """Fails the way picamera2's constructor does with no camera (or a busy one): after it has opened its
    notification pipe and registered with the manager, and before anything close() would undo."""

    _cm = _Manager()
    constructed = 0

    def __init__(self) -> None:
        import os

        self.notifyme_r, self.notifyme_w = os.pipe2(os.O_NONBLOCK)
        self.notifymeread = os.fdopen(self.notifyme_r, "rb")
        self.is_open = False
        self.camera_idx = 0
        self._cm.add(0, self)
        _AbsentCamera.constructed += 1
        raise RuntimeError("Failed to acquire camera: Device or resource busy")

    def close(self) -> None:  # picamera2: nothing to do for a camera that never opened
        if not self.is_open:
            return


def test_retries_without_a_camera_leak_no_descriptor_and_forget_the_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    module = types.ModuleType("picamera2")
    module.Picamera2 = _AbsentCamera  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    _AbsentCamera._cm, _AbsentCamera.constructed = _Manager(), 0
    fds = len(os.listdir("/proc/self/fd"))
    src = open_source("picamera2", SourceConfig(reconnect_min_s=0.01, reconnect_max_s=0.01), retry=True)
    try:
        deadline = time.monotonic() + 10
        while _AbsentCamera.constructed < 40 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        src.close()
    assert _AbsentCamera.constructed >= 40
    assert len(os.listdir("/proc/self/fd")) <= fds + 1  # the grabber may hold none; 40 pipes would be 80
    assert _AbsentCamera._cm.cameras == {}


@pytest.mark.parametrize(("rotate", "flip"), [(90, "none"), (180, "horizontal"), (270, "vertical")])
def test_a_camera_mounted_sideways_gives_turned_frames(fake_picamera2: type[_FakeCamera], rotate: int,
                                                       flip: str) -> None:
    # One code path for every source (cv2.rotate/cv2.flip on the Y plane in the grabber thread), not
    # libcamera's hflip/vflip: it cannot do the quarter turns a sideways mount needs, and ours is tested here
    src = open_source("picamera2", SourceConfig(picamera2_size=(320, 240), rotate=rotate, flip=flip), retry=True)
    try:
        good, errors = _first_frames(src, 1)
    finally:
        src.close()
    assert not errors and good
    y = np.tile(np.arange(320, dtype=np.uint8)[None, :] // 4, (240, 1))  # the stand-in's Y plane, as stored
    y[120:] //= 2  # ... with its lower half darker: a ramp alone is the same upside down
    want = np.rot90(y, -rotate // 90)
    want = want[:, ::-1] if flip == "horizontal" else want[::-1] if flip == "vertical" else want
    assert good[0].image.shape == want.shape
    np.testing.assert_array_equal(good[0].image, want)
