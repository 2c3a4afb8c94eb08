"""Raspberry Pi camera through picamera2 (apt ``python3-picamera2``; the venv needs ``--system-site-packages``).

Only the small ``lores`` YUV420 stream is used and only its Y plane: that is already the gray image the
reader wants, so no colour conversion runs on the Pi's CPU. The grabber/backoff logic is the shared one in
``edge.capture.LiveSource``; this module only knows how to open, read and close the camera.
"""

from __future__ import annotations

import logging
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
            cam = Picamera2()
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
        try:
            handle.stop()
            handle.close()
        except Exception:  # noqa: BLE001 - closing a vanished camera may fail; nothing left to do
            pass
