"""``python -m edge.draw``: draw digits with the mouse and watch the model read them (an OpenCV window).

Keys: ``p`` predict (prints the reading on stdout and marks it on screen), ``c`` clear, ``s`` save a PNG of
the window, ``q``/Esc quit (closing the window quits too). The reading also updates live while you draw.

The canvas goes through the daemon's own ``Reader`` (segmentation, touching-digit search, numbers in reading
order), so several digits drawn side by side read as one number and two rows read as two numbers. The panel
on the right shows each digit's 28x28 crop - what the model saw - with its top-3 as confidence bars.

Everything that can be tested on arrays is a pure function here (``read_canvas``, ``render``,
``top3_bars``, ``format_prediction``) or GUI-free state (``Canvas``, ``DrawApp``); ``run`` is the thin
OpenCV loop around them.

    python -m edge.draw [--size 720x360] [--thickness 18] [--json] [--snapshot-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.annotate import FONT, WHITE, conf_colour, fit_scale
from edge.cli import OneLineParser
from edge.types import Box, Number, number_to_dict

log = logging.getLogger(__name__)

TITLE = "digits-edge: draw and predict"
DEFAULT_SIZE = (720, 360)
PANEL_WIDTH = 340
#: Re-read the canvas at most this often while drawing: live, yet never more work than the eye can use.
LIVE_INTERVAL_S = 0.15
#: Panel layout: per-digit rows (crop thumbnail at x=8, then the bars) start here, one every PANEL_ROW_H px.
PANEL_ROWS_TOP = 78
PANEL_ROW_H = 50
PANEL_ROW_GAP = 8
GREY = (150, 150, 150)
DIM = (90, 90, 90)
PANEL_BG = (40, 34, 30)
BAR_BG = (70, 62, 56)
HELP = "draw with the mouse   p predict   u undo   c clear   s save   q quit"
#: The reader sees every drawing redrawn at this canvas height with this pen (the default pen's proportion,
#: height / 20), whatever --size and --thickness: the camera-frame reader is not indifferent to either. On
#: the 720x360 canvas a 1-6 px pen's 0 read as "17 11" (its thin arcs taken for ruled lines) and a 100 px
#: pen's digits as nothing (the strokes taken for the paper's shading).
READ_HEIGHT = 360
READ_PEN = 18
#: The canvas is light ink on dark, always: the reader is told so instead of guessing it per frame. Its
#: guess took the black gaps of a canvas whose strokes are wide for its size for dark ink (480x360 or
#: 640x360 with the default pen, 200x100 with any), and then read nothing.
CANVAS_SETTINGS: dict[tuple[str, ...], str] = {("segment", "polarity"): "light"}


# ------------------------------------------------------------------------------------------ the canvas


class Canvas:
    """White ink on black (MNIST's polarity), drawn with round anti-aliased strokes.

    ``version`` counts changes so a reader knows when its reading is stale.
    """

    def __init__(self, width: int, height: int, thickness: int | None = None) -> None:
        self.ink = np.zeros((height, width), np.uint8)
        # About a tenth of a digit's height, as MNIST's pen; digits fill about 60% of the canvas height.
        self.thickness = int(thickness or max(3, round(height / 20)))
        self.version = 0
        self._last: tuple[int, int] | None = None
        #: every stroke as drawn (canvas px), pen-down point first: what the reader's copy is drawn from
        self.strokes: list[list[tuple[int, int]]] = []

    @property
    def size(self) -> tuple[int, int]:
        return self.ink.shape[1], self.ink.shape[0]

    @property
    def drawing(self) -> bool:
        return self._last is not None

    def contains(self, x: int, y: int) -> bool:
        w, h = self.size
        return 0 <= x < w and 0 <= y < h

    def press(self, x: int, y: int) -> None:
        self._last = (int(x), int(y))
        self.strokes.append([self._last])
        # A click alone leaves a dot, as a pen would.
        cv2.circle(self.ink, self._last, max(1, self.thickness // 2), 255, -1, cv2.LINE_AA)
        self.version += 1

    def drag(self, x: int, y: int) -> None:
        if self._last is None:
            self.press(x, y)
            return
        p = (int(x), int(y))
        cv2.line(self.ink, self._last, p, 255, self.thickness, cv2.LINE_AA)
        self._last = p
        self.strokes[-1].append(p)
        self.version += 1

    def release(self) -> None:
        self._last = None

    def stroke(self, points: Sequence[tuple[int, int]]) -> None:
        """One pen-down ... pen-up stroke through ``points`` (what a mouse drag does)."""
        if not points:
            return
        self.press(*points[0])
        for p in points[1:]:
            self.drag(*p)
        self.release()

    def clear(self) -> None:
        self.ink[:] = 0
        self._last = None
        self.strokes = []
        self.version += 1

    def undo(self) -> bool:
        """Take back the last stroke (the canvas is drawn again from the others); False when there is none."""
        if not self.strokes:
            return False
        kept = self.strokes[:-1]
        self.clear()
        for points in kept:
            self.stroke(points)
        self.version += 1
        return True

    def for_reader(self) -> tuple[np.ndarray, float]:
        """The strokes as the reader is given them, and the factor from those pixels to the canvas' own.

        Redrawn with its shorter side ``READ_HEIGHT`` px and a ``READ_PEN`` px pen, so the reading depends on what was drawn,
        not on the window's size or pen (which only change how the strokes look). The default 720x360
        canvas with its default pen is given as it is.
        """
        w, h = self.size
        k = READ_HEIGHT / min(w, h)  # a digit is at most as tall as the shorter side
        if k == 1.0 and self.thickness == READ_PEN:
            return self.ink, 1.0
        copy = Canvas(max(1, round(w * k)), max(1, round(h * k)), READ_PEN)
        for stroke in self.strokes:
            copy.stroke([(round(x * k), round(y * k)) for x, y in stroke])
        return copy.ink, 1.0 / k

    @property
    def empty(self) -> bool:
        return not self.ink.any()


# ------------------------------------------------------------------------------------------ reading


@dataclass
class Reading:
    """What the reader made of the canvas: numbers in reading order and the crops the model saw."""

    numbers: list[Number] = field(default_factory=list)
    #: (box, 28x28 crop, top-3) of every digit read, in reading order
    crops: list[tuple[Box, np.ndarray, tuple[tuple[int, float], ...]]] = field(default_factory=list)
    ms: float = 0.0

    @property
    def value(self) -> str:
        return " ".join(n.value for n in self.numbers)


def _scaled(box: Box, k: float) -> Box:
    x, y, w, h = box
    return (round(x * k), round(y * k), max(1, round(w * k)), max(1, round(h * k)))


def read_canvas(reader: Any, ink: np.ndarray, scale: float = 1.0) -> Reading:
    """Read the canvas like a camera frame (the daemon's Reader), keeping the crops for the panel.

    ``scale`` maps the pixels of ``ink`` to the canvas' (``Canvas.for_reader``): boxes are given in canvas px.
    """
    if not ink.any():
        return Reading()
    t0 = time.perf_counter()
    result = reader.read(ink, debug=True)
    ms = (time.perf_counter() - t0) * 1e3
    by_box = {tuple(box): crop for box, crop, _ in result.debug.get("crops", [])}
    crops = [(d.box, by_box.get(tuple(d.box), np.zeros((28, 28), np.uint8)), d.top3)
             for n in result.numbers for d in n.digits]
    numbers = list(result.numbers)
    if scale != 1.0:
        numbers = [replace(n, box=_scaled(n.box, scale),
                           digits=tuple(replace(d, box=_scaled(d.box, scale)) for d in n.digits))
                   for n in numbers]
        crops = [(_scaled(box, scale), crop, top3) for box, crop, top3 in crops]
    return Reading(numbers=numbers, crops=crops, ms=ms)


def format_prediction(reading: Reading) -> str:
    """The stdout line for ``p``: ``prediction: 17 (0.992) | 1: 1 99.6%, 7 0.3%, 4 0.0% | 7: ...``."""
    if not reading.numbers:
        return "prediction: none (no digit found)"
    conf = min(n.confidence for n in reading.numbers)
    parts = [f"prediction: {reading.value} ({conf:.3f})"]
    for n in reading.numbers:
        for d in n.digits:
            parts.append(f"{d.digit}: " + ", ".join(f"{k} {p * 100:.1f}%" for k, p in d.top3))
    return " | ".join(parts)


def prediction_json(reading: Reading) -> dict[str, Any]:
    return {"value": reading.value, "numbers": [number_to_dict(n, top3=True) for n in reading.numbers],
            "ms": round(reading.ms, 1)}


# ------------------------------------------------------------------------------------------ drawing


def top3_bars(top3: Sequence[tuple[int, float]], size: tuple[int, int]) -> np.ndarray:
    """Three horizontal confidence bars (best first) on a panel of exactly ``size`` (h, w), BGR.

    Each row: the digit, a bar whose filled length is its probability, the percentage. The best guess is
    coloured by confidence (green/orange/red, as the overlay), the runners-up grey.
    """
    h, w = size
    out = np.full((h, w, 3), PANEL_BG, np.uint8)
    row = h // 3
    if row < 6 or w < 60:
        return out
    scale = max(0.35, min(0.6, row / 30))
    label_w = int(cv2.getTextSize("0", FONT, scale, 1)[0][0]) + 8
    pct_w = int(cv2.getTextSize("100.0%", FONT, scale, 1)[0][0]) + 6
    bar_w = max(10, w - label_w - pct_w)
    for i, (digit, p) in enumerate(list(top3)[:3]):
        y0 = i * row
        bar_y0, bar_y1 = y0 + max(1, row // 6), y0 + row - max(1, row // 6)
        text_y = y0 + (row + int(22 * scale)) // 2
        colour = conf_colour(p) if i == 0 else GREY
        cv2.putText(out, str(digit), (2, text_y), FONT, scale, WHITE if i == 0 else GREY, 1, cv2.LINE_AA)
        cv2.rectangle(out, (label_w, bar_y0), (label_w + bar_w - 1, bar_y1), BAR_BG, -1)
        fill = int(round(bar_w * min(max(p, 0.0), 1.0)))
        if fill > 0:
            cv2.rectangle(out, (label_w, bar_y0), (label_w + fill - 1, bar_y1), colour, -1)
        cv2.putText(out, f"{p * 100:.1f}%", (label_w + bar_w + 4, text_y), FONT, scale, WHITE, 1, cv2.LINE_AA)
    return out


def render_panel(reading: Reading, size: tuple[int, int], state: str) -> np.ndarray:
    """The right-hand panel (h, w): the number read, then one row per digit: its crop and top-3 bars."""
    h, w = size
    panel = np.full((h, w, 3), PANEL_BG, np.uint8)
    value = reading.value or "-"
    vs = fit_scale(value, w - 16, 1.4, 2, smallest=0.5)
    colour = conf_colour(min(n.confidence for n in reading.numbers)) if reading.numbers else GREY
    cv2.putText(panel, value, (8, 44), FONT, vs, colour, 2, cv2.LINE_AA)
    info = state if not reading.numbers else f"{state}, {len(reading.crops)} digit(s), {reading.ms:.0f} ms"
    cv2.putText(panel, info, (8, 66), FONT, 0.45, GREY, 1, cv2.LINE_AA)
    top, row_h = PANEL_ROWS_TOP, PANEL_ROW_H
    rows = max(0, (h - top) // row_h)
    if not reading.crops:
        cv2.putText(panel, "draw a digit on the left" if state != "predicted" else "no digit found",
                    (8, top + 24), FONT, 0.5, GREY, 1, cv2.LINE_AA)
        return panel
    shown = reading.crops if len(reading.crops) <= rows else reading.crops[:max(0, rows - 1)]
    thumb = row_h - PANEL_ROW_GAP
    for i, (_box, crop, top3) in enumerate(shown):
        y = top + i * row_h
        img = cv2.resize(crop.astype(np.uint8).reshape(28, 28), (thumb, thumb), interpolation=cv2.INTER_NEAREST)
        panel[y:y + thumb, 8:8 + thumb] = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        cv2.rectangle(panel, (8, y), (8 + thumb - 1, y + thumb - 1), DIM, 1)
        panel[y:y + thumb, 16 + thumb:w - 4] = top3_bars(top3, (thumb, w - 20 - thumb))
    if len(shown) < len(reading.crops):
        cv2.putText(panel, f"+{len(reading.crops) - len(shown)} more", (8, top + len(shown) * row_h + 20),
                    FONT, 0.5, GREY, 1, cv2.LINE_AA)
    return panel


def render(ink: np.ndarray, reading: Reading, state: str, panel_width: int = PANEL_WIDTH) -> np.ndarray:
    """The whole window (BGR): the canvas with a help line, and the panel to its right.

    The help text is drawn on this copy only; the reader always sees the bare ink.
    """
    h, w = ink.shape
    left = cv2.cvtColor(ink, cv2.COLOR_GRAY2BGR)
    for n in reading.numbers:
        for d in n.digits:
            x, y, bw, bh = d.box
            cv2.rectangle(left, (x - 3, y - 3), (x + bw + 2, y + bh + 2), conf_colour(d.confidence), 1, cv2.LINE_AA)
    cv2.rectangle(left, (0, 0), (w - 1, h - 1), DIM, 1)  # where the canvas ends, on a dark screen
    scale = fit_scale(HELP, w - 12, 0.5, smallest=0.3)
    cv2.putText(left, HELP, (6, h - 8), FONT, scale, DIM, 1, cv2.LINE_AA)
    return np.hstack([left, render_panel(reading, (h, panel_width), state)])


# ------------------------------------------------------------------------------------------ the app


class LiveReader:
    """Reads the canvas in a worker thread, so the window keeps taking mouse events while the model works.

    Why a thread: OpenCV's Qt back end only handles events inside ``waitKey``; while the GUI thread reads
    (15 ms here, far more on a Raspberry Pi) the pending mouse moves are merged into one and a curve
    becomes a straight chord. The Reader (one TFLite interpreter, not thread-safe) is only ever used under
    ``lock``, by the worker or by an explicit ``read_now``.
    """

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.lock = threading.Lock()
        self._cv = threading.Condition()
        self._job: tuple[np.ndarray, float, int] | None = None
        self._result: tuple[int, Reading] | None = None
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="draw-reader", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._busy or self._job is not None

    def submit(self, ink: np.ndarray, version: int, scale: float = 1.0) -> None:
        with self._cv:
            self._job = (ink.copy(), scale, version)
            self._cv.notify()

    def take(self) -> tuple[int, Reading] | None:
        """The newest finished ``(canvas version, reading)``, once; None when there is none."""
        with self._cv:
            out, self._result = self._result, None
            return out

    def read_now(self, ink: np.ndarray, scale: float = 1.0) -> Reading:
        with self.lock:
            return read_canvas(self.reader, ink, scale)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._job is None and not self._stop:
                    self._cv.wait()
                if self._stop or self._job is None:  # the wait ends on a job or a stop: None only with a stop
                    return
                (ink, scale, version), self._job = self._job, None
                self._busy = True
            try:
                reading = self.read_now(ink, scale)
            except Exception:  # noqa: BLE001 - a failed live read must not end the drawing session
                log.exception("reading the canvas failed")
                reading = Reading()
            with self._cv:
                self._result = (version, reading)
                self._busy = False

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._thread.join(timeout=5)


class DrawApp:
    """The window's state and reactions, without the GUI (tests drive it with synthetic events).

    ``threaded=False`` reads on the caller's thread (deterministic, for tests); the window uses a
    ``LiveReader``.
    """

    QUIT = "quit"

    def __init__(self, reader: Any, size: tuple[int, int] = DEFAULT_SIZE, thickness: int | None = None,
                 json_out: bool = False, snapshot_dir: str | os.PathLike[str] = ".",
                 out: Any = None, live_interval: float = LIVE_INTERVAL_S, threaded: bool = False) -> None:
        self.reader = reader
        self.canvas = Canvas(size[0], size[1], thickness)
        self.reading = Reading()
        self.state = "live"
        self.json_out = json_out
        self.snapshot_dir = Path(snapshot_dir)
        self.out = out if out is not None else sys.stdout
        self.live_interval = live_interval
        self.live = LiveReader(reader) if threaded else None
        self._read_version = self.canvas.version  # the canvas version self.reading belongs to
        self._last_read = -1e9
        self._button = False
        self.dirty = True  # the window needs drawing again

    # -- input

    def on_mouse(self, event: int, x: int, y: int, flags: int, _param: Any = None) -> None:
        """OpenCV mouse callback: left button draws; leaving the canvas lifts the pen."""
        inside = self.canvas.contains(x, y)
        if event == cv2.EVENT_LBUTTONDOWN:
            self._button = True
            if inside:
                self.canvas.press(x, y)
        elif event == cv2.EVENT_MOUSEMOVE and (self._button or flags & cv2.EVENT_FLAG_LBUTTON):
            if inside:
                self.canvas.drag(x, y)
            else:
                self.canvas.release()
        elif event == cv2.EVENT_LBUTTONUP:
            self._button = False
            if inside and self.canvas.drawing:
                self.canvas.drag(x, y)
            self.canvas.release()
        else:
            return
        self.state = "live"
        self.dirty = True

    def handle_key(self, key: int) -> str | None:
        """React to a key code from ``cv2.waitKey`` (-1/255: none); returns ``QUIT`` to stop."""
        key &= 0xFF
        if key in (ord("q"), ord("Q"), 27):
            return self.QUIT
        if key == ord("p"):
            self.predict()
        elif key == ord("c"):
            self.canvas.clear()
            self.reading = Reading()
            self._read_version = self.canvas.version  # live results for the old drawing are dropped
            self.state = "live"
            self.dirty = True
        elif key == ord("u") and self.canvas.undo():
            self.state = "live"  # read again, live, without the stroke
            self.dirty = True
        elif key == ord("s"):
            self.save()
        return None

    # -- actions

    def predict(self) -> Reading:
        """Read the canvas now and print the result (one line, or one JSON object with ``--json``)."""
        version = self.canvas.version
        ink, scale = self.canvas.for_reader()
        self.reading = self.live.read_now(ink, scale) if self.live else read_canvas(self.reader, ink, scale)
        self._read_version = version
        self._last_read = time.monotonic()
        self.state = "predicted"
        self.dirty = True
        text = json.dumps(prediction_json(self.reading)) if self.json_out else format_prediction(self.reading)
        self.out.write(text + "\n")
        self.out.flush()
        return self.reading

    def tick(self, now: float) -> None:
        """Live update: re-read a changed canvas, at most every ``live_interval`` seconds."""
        if self.live is not None:
            got = self.live.take()
            if got is not None and got[0] > self._read_version:
                self._read_version, self.reading = got
                self.state = "live"
                self.dirty = True
        changed = self.canvas.version != self._read_version
        if not changed or now - self._last_read < self.live_interval:
            return
        self._last_read = now
        if self.live is None:
            self.reading = read_canvas(self.reader, *self.canvas.for_reader())
            self._read_version = self.canvas.version
            self.state = "live"
            self.dirty = True
        elif not self.live.busy:
            ink, scale = self.canvas.for_reader()
            self.live.submit(ink, self.canvas.version, scale)

    def frame(self) -> np.ndarray:
        self.dirty = False
        return render(self.canvas.ink, self.reading, self.state)

    def save(self) -> Path | None:
        target = self.snapshot_dir / time.strftime("draw-%Y%m%d-%H%M%S.png")
        n = 1
        while target.exists():
            target = self.snapshot_dir / time.strftime(f"draw-%Y%m%d-%H%M%S-{n}.png")
            n += 1
        try:
            self.snapshot_dir.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), render(self.canvas.ink, self.reading, self.state)):
                raise OSError("cannot encode PNG")
        except (OSError, cv2.error) as exc:
            log.error("cannot save %s: %s", target, exc)
            return None
        log.info("saved %s", target)
        return target

    def close(self) -> None:
        if self.live is not None:
            self.live.close()


def run(app: DrawApp, title: str = TITLE) -> int:
    """The OpenCV loop: show, poll keys and the mouse, pick up live readings. Returns the exit code."""
    from edge.sinks.window import window_visible

    # AUTOSIZE: window pixels are canvas pixels; GUI_NORMAL: no Qt toolbar taking mouse clicks.
    try:
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    except cv2.error:
        # opencv-python-headless (the Raspberry Pi install) has no GUI at all.
        print("error: this OpenCV build has no GUI (opencv-python-headless?); the draw window needs "
              "opencv-python", file=sys.stderr)
        return 1
    cv2.setMouseCallback(title, app.on_mouse)
    cv2.imshow(title, app.frame())
    log.info("window %r open (%dx%d canvas)", title, *app.canvas.size)
    code = 0
    # Ctrl-C as a flag, not KeyboardInterrupt: one that lands while OpenCV runs the mouse callback is raised
    # inside it, and OpenCV's C++ swallows it - the window stayed open, the app ran on (a pointer moving over
    # the window when Ctrl-C came, reproduced with xdotool).
    interrupted: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))
    try:
        while not interrupted:
            key = cv2.waitKey(15)
            if key != -1 and app.handle_key(key) == DrawApp.QUIT:
                break
            app.tick(time.monotonic())
            if not window_visible(title):
                break  # closed with the window manager's button
            if app.dirty:
                cv2.imshow(title, app.frame())
        if interrupted:
            code = 130  # as edge.predict and the daemon: a script can tell Ctrl-C from q
    except KeyboardInterrupt:
        code = 130
    finally:
        signal.signal(signal.SIGINT, previous)
        app.close()
        cv2.destroyAllWindows()
        cv2.waitKey(1)
    return code


# ------------------------------------------------------------------------------------------ command line


def make_canvas_reader(config: str | None = None, model: str | None = None) -> Any:
    """The daemon's Reader with its settings (``config.yaml`` by default), told the canvas' polarity."""
    from edge.predict import load_settings, make_reader

    return make_reader(load_settings(config, model, CANVAS_SETTINGS))


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or not (200 <= int(w) <= 4000 and 100 <= int(h) <= 3000):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT between 200x100 and 4000x3000, got {text!r}")
    return int(w), int(h)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m edge.draw",
                description="Draw digits with the mouse and see what the model reads. Keys: p predict "
                            "(prints the reading), u undo the last stroke, c clear, s save a PNG, q quit.")
    p.add_argument("--size", type=_size, default=DEFAULT_SIZE, metavar="WxH",
                   help=f"canvas size in pixels (default {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]})")
    p.add_argument("--thickness", type=int, default=None, metavar="PX",
                   help="pen width in pixels (default: canvas height / 20); only how strokes look: the "
                        "reader sees them at the default proportion")
    p.add_argument("--json", action="store_true", help="print each prediction as one JSON object")
    p.add_argument("--snapshot-dir", default=".", metavar="DIR", help="where s saves PNGs (default .)")
    p.add_argument("--title", default=TITLE, help="window title")
    p.add_argument("--config", metavar="FILE", help="reader settings (default: the project's config.yaml)")
    p.add_argument("--model", metavar="FILE", help="int8 TFLite model (overrides model.path)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return 130  # Ctrl-C while the model loads


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.thickness is not None and not 1 <= args.thickness <= 200:
        print("python -m edge.draw: error: --thickness must be 1..200", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")

    from edge.classify import ModelError
    from edge.config import ConfigError
    from edge.sinks.window import display_problem

    # OpenCV's Qt back end aborts the process when there is no X server: check first, say it in one line.
    problem = display_problem()
    if problem:
        print(f"error: the draw window needs a display ({problem})", file=sys.stderr)
        return 1
    try:
        reader = make_canvas_reader(args.config, args.model)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app = DrawApp(reader, args.size, args.thickness, args.json, args.snapshot_dir, threaded=True)
    return run(app, args.title)


if __name__ == "__main__":
    sys.exit(main())
