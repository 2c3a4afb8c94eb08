"""``window``: a live annotated view on a desktop (``cv2.imshow``).

Keys: ``q``/Esc quit (sets ``quit_requested``; the daemon polls it and stops cleanly), ``p`` pause/resume
the view (and sets ``paused``, which the daemon may honour), ``s`` save a snapshot PNG, ``d`` toggle the debug
view (thresholded mask and the 28x28 crops the model saw with their top-3). Closing the window quits too.
For images (``set_source``) each one stays on screen until a key is pressed, as the prior art's
``cv2.waitKey(0)`` did: any other key shows the next one, ``q`` ends the run; before, a folder flashed past
and the window closed with the run.
Nothing touches the GUI until the first frame, so importing this module needs no display.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.annotate import FpsMeter, annotate, put_label
from edge.sinks.base import DrawingSink, SinkOptions
from edge.types import Frame, FrameResult, Number

log = logging.getLogger(__name__)


def display_problem() -> str | None:
    """Why a window cannot be shown here, or None if it can.

    OpenCV's Qt back end aborts the whole process (no exception to catch) when it cannot reach an X server,
    so the daemon checks before it ever opens a window: DISPLAY set, and its X server answering.
    """
    if sys.platform != "linux":
        return None
    display = os.environ.get("DISPLAY", "")
    if not display:
        return "DISPLAY is not set"
    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY={display!r} is not a valid display name"
    try:
        if host in ("", "unix"):
            path = f"/tmp/.X11-unix/X{number}"
            for address in (path, "\0" + path):  # file socket, then Linux abstract socket
                with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(1.0)
                    s.connect(address)
                    return None
            return f"no X server answers on DISPLAY={display}"
        with socket.create_connection((host, 6000 + int(number)), timeout=1.0):
            return None
    except OSError:
        return f"no X server answers on DISPLAY={display}"


#: How often (ms) a held image checks whether its window was closed while it waits for a key.
HOLD_POLL_MS = 100

#: Largest window the sink opens by itself (a user may still resize it); larger frames are shown scaled.
MAX_WINDOW = (1600, 900)


def window_visible(title: str) -> bool:
    """False once the window ``title`` is gone, e.g. closed with the window manager's button."""
    try:
        return cv2.getWindowProperty(title, cv2.WND_PROP_VISIBLE) >= 1
    except cv2.error:
        # Qt destroys the window on the close button, and then asking about it raises (NULL guiReceiver)
        # instead of answering 0.
        return False


def window_size(width: int, height: int, limit: tuple[int, int] = MAX_WINDOW) -> tuple[int, int]:
    """The window size for an image of ``width`` x ``height``: its own, scaled down to fit ``limit``."""
    s = min(1.0, limit[0] / max(width, 1), limit[1] / max(height, 1))
    return max(1, round(width * s)), max(1, round(height * s))


class WindowSink(DrawingSink):
    name = "window"

    def __init__(self, options: SinkOptions | None = None, *, check_display: bool = True) -> None:
        problem = display_problem() if check_display else None
        if problem:
            raise ValueError(f"sink 'window' needs a display ({problem}); use overlay:PATH or --web instead")
        super().__init__()
        self.opts = options or SinkOptions()
        self.title = self.opts.window_name
        self.paused = False
        self.quit_requested = False
        self.wants_debug = False
        self.failures = 0
        self.snapshots: list[Path] = []
        self._shown: np.ndarray | None = None
        self._open = False
        self._closed = False
        self._fps = FpsMeter()
        self._sized_for: tuple[int, ...] | None = None
        self.source_is_images = False
        #: set by the daemon: a held image stops waiting for a key once it is set (SIGTERM, Ctrl-C)
        self.stop_event: threading.Event | None = None
        #: set by the daemon: called at every turn of a held image's wait, which may last hours; it pings the
        #: systemd watchdog when one is due (the loop that would ping waits in this call meanwhile)
        self.keepalive: Callable[[], None] | None = None

    def set_source(self, is_images: bool, fps: float | None = None) -> None:
        """The daemon says what it reads: images are held on screen until a key (:data:`HOLD_POLL_MS`)."""
        self.source_is_images = bool(is_images)

    def on_frame(self, frame: Frame, result: FrameResult, stable: list[Number] | None = None,
                 fps: float | None = None) -> None:
        if self._closed or self.failures:
            return
        self._pending = None
        measured = self._fps.tick(frame.mono)
        if not self.paused and frame.image is not None:
            self._shown = annotate(frame.image, result, self._stable if stable is None else stable,
                                   fps if fps is not None else measured, debug=self.wants_debug)
        if self._shown is None:
            return
        try:
            if not self._open:
                # GUI_NORMAL: no Qt toolbar and status bar, which would scale the frame down to make room.
                cv2.namedWindow(self.title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
                self._open = True
            shown = self._shown
            if shown.shape[:2] != self._sized_for:
                # Fit the window to what it shows: at first (Qt opens 400x300 otherwise) and when the
                # debug panel comes or goes, so the panel widens the window instead of shrinking the frame.
                self._sized_for = shown.shape[:2]
                cv2.resizeWindow(self.title, *window_size(shown.shape[1], shown.shape[0]))
            if self.paused:
                shown = shown.copy()
                put_label(shown, "PAUSED (p)", (4, shown.shape[0] - 6), (0, 200, 255), 0.6)
            cv2.imshow(self.title, shown)
            if self.source_is_images and frame.image is not None:
                self._hold(frame.source)
                return
            key = cv2.waitKey(1) & 0xFF
            if self._closed_by_user():
                return
        except cv2.error as exc:
            self.failures += 1
            log.error("window: cannot show frames (%s); window sink disabled", str(exc).strip().splitlines()[-1])
            return
        self.handle_key(key)

    def _closed_by_user(self) -> bool:
        if self._open and not window_visible(self.title):
            log.info("window closed; stopping")
            self.quit_requested = True
            return True
        return False

    def _hold(self, name: str) -> None:
        """Keep an image on screen until a key: q/Esc quits, s saves (and waits on), d and p toggle for the
        next image, any other key goes on to it."""
        log.info("showing %s: any key for the next image, q to quit", name)
        while not self._closed_by_user():
            if self.stop_event is not None and self.stop_event.is_set():
                return
            if self.keepalive is not None:
                self.keepalive()
            key = cv2.waitKey(HOLD_POLL_MS)
            if key == -1:
                continue
            key &= 0xFF
            self.handle_key(key)
            if key not in (ord("s"),):
                return

    def handle_key(self, key: int) -> None:
        """React to one key code (as from ``cv2.waitKey``); 255/-1 means no key."""
        if key in (ord("q"), 27):
            log.info("quit requested from the window")
            self.quit_requested = True
        elif key == ord("p"):
            self.paused = not self.paused
            log.info("window %s", "paused" if self.paused else "resumed")
        elif key == ord("d"):
            self.wants_debug = not self.wants_debug
            log.info("debug view %s", "on" if self.wants_debug else "off")
        elif key == ord("s"):
            self.save_snapshot()

    def save_snapshot(self) -> Path | None:
        if self._shown is None:
            return None
        folder = Path(self.opts.snapshot_dir)
        target = folder / time.strftime("snapshot-%Y%m%d-%H%M%S.png")
        n = 1
        while target.exists():
            target = folder / time.strftime(f"snapshot-%Y%m%d-%H%M%S-{n}.png")
            n += 1
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), self._shown):
                raise OSError("imwrite failed")
        except (OSError, cv2.error) as exc:
            log.error("cannot save snapshot %s: %s", target, exc)
            return None
        log.info("snapshot saved to %s", target)
        self.snapshots.append(target)
        return target

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False
