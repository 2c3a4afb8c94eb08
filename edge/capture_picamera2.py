"""Raspberry Pi camera through picamera2 (apt ``python3-picamera2``; the venv needs ``--system-site-packages``).

Only the small ``lores`` YUV420 stream is used and only its Y plane: that is already the gray image the
reader wants, so no colour conversion runs on the Pi's CPU. The grabber/backoff logic is the shared one in
``edge.capture.LiveSource``; this module only knows how to open, read and close the camera.

``source.rotate`` / ``source.flip`` are applied by ``LiveSource`` (cv2 on the Y plane, in the grabber thread),
as for every other source - not by libcamera's ``Transform(hflip, vflip)``: that cannot do the quarter turns
a camera mounted on its side needs, would make this source's turn differ from the others' in code that never
ran on hardware here, and saves only ~0.02 ms a frame at the 640x480 lores size.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import numpy as np

from edge.capture import LiveSource

log = logging.getLogger(__name__)


class Picamera2Source(LiveSource):
    def _open(self) -> Any:
        try:
            from picamera2 import Picamera2  # imported here: absent on every machine but a Pi
        except ImportError as exc:
            log.error("picamera2 is not installed (apt install python3-picamera2): %s", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - a broken install raises other things than ImportError
            # bookworm: apt's picamera2 is built for Debian's numpy 1.x; a numpy 2 in the venv gives
            # "ValueError: numpy.dtype size changed" on import (docs/raspberry-pi.md)
            log.error("picamera2 cannot be imported (%s: %s); on bookworm install the venv with \"numpy<2\" "
                      "(docs/raspberry-pi.md)", type(exc).__name__, exc)
            return None
        cam = None
        try:
            cam = _new_camera(Picamera2)
            w, h = self.cfg.picamera2_size
            # lores must be YUV420 and no larger than main; main keeps the sensor's full field of view.
            config = cam.create_video_configuration(
                main={"size": (max(w, 640), max(h, 480))}, lores={"size": (w, h), "format": "YUV420"},
                buffer_count=2, queue=False,  # queue=False: capture_array waits for a fresh frame
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:  # noqa: BLE001 - libcamera raises many types; all mean "no camera now"
            log.error("cannot start picamera2: %s", exc)
            if cam is not None:
                # An opened Picamera2 holds the camera until closed: every retry would find it busy.
                self._release(cam)
            return None
        self._size = cam.camera_configuration()["lores"]["size"]
        return cam

    def _read(self, handle: Any) -> np.ndarray | None:
        try:
            yuv = handle.capture_array("lores")
        except Exception as exc:  # noqa: BLE001 - a failed capture counts as a failed read
            log.debug("picamera2 capture failed: %s", exc)
            return None
        w, h = self._size
        # Rows are padded to the stride (array width); the first h rows of the first w columns are Y.
        return np.ascontiguousarray(yuv[:h, :w])

    def _release(self, handle: Any) -> None:
        # Each on its own: a stop() that fails on a vanished camera must not keep close() from freeing it.
        for call in (handle.stop, handle.close):
            with contextlib.suppress(Exception):  # closing a vanished camera may fail; nothing left to do
                call()


def _new_camera(cls: Any) -> Any:
    """``cls()``, but when the constructor fails, what it had set up is undone (``_forget_half_open``)."""
    cam = cls.__new__(cls)
    try:
        cam.__init__()
    except BaseException:
        _forget_half_open(cam)
        raise
    return cam


def _forget_half_open(cam: Any) -> None:
    """Undo what picamera2's constructor sets up before it acquires the camera: a notification pipe and the
    camera's entry in the shared camera manager. ``close()`` does nothing for a camera that never opened, so
    with the camera missing or busy each retry leaked a pipe (one every 30 s: 1,024 descriptors gone in
    8 hours, and with them the web page and MQTT) and left the manager holding the dead camera, so a camera
    that came back was not looked for again."""
    reader = getattr(cam, "notifymeread", None)
    if reader is not None:
        with contextlib.suppress(Exception):
            reader.close()  # closes notifyme_r with it
    else:
        _close_fd(getattr(cam, "notifyme_r", None))
    _close_fd(getattr(cam, "notifyme_w", None))
    manager, idx = getattr(cam, "_cm", None), getattr(cam, "camera_idx", None)
    cameras = getattr(manager, "cameras", None)
    if manager is not None and idx is not None and isinstance(cameras, dict) and cameras.get(idx) is cam:
        with contextlib.suppress(Exception):
            manager.cleanup(idx)  # the last camera gone: the manager starts afresh on the next open


def _close_fd(fd: Any) -> None:
    if isinstance(fd, int):
        with contextlib.suppress(OSError):
            os.close(fd)
