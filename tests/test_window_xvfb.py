"""The live preview (``python -m edge --source samples/sample.mp4 --sink window``) on a real X server:
the overlay's boxes sit on the digits, ``d`` widens the window with the debug panel (mask and the 28x28
crops), ``p`` freezes the view, ``s`` saves a snapshot, ``q`` quits with exit 0. A real daemon process
reads the real video with the real model; screenshots are kept in .test-artifacts/ (window_*.png).
"""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.annotate import GREEN, STABLE, reading_order
from edge.sinks.window import window_size
from edge.types import Digit, FrameResult, Number
from tests.xvfb import ARTIFACTS, App, Xvfb, screen_fixture, wait_for

screen = pytest.fixture(scope="module")(screen_fixture)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "sample.mp4"
TRUTH = json.loads((ROOT / "samples" / "sample.json").read_text())
W, H = TRUTH["size"]
PAUSED_LABEL = (0, 200, 255)  # edge/sinks/window.py draws "PAUSED (p)" on this colour


def colour_count(img: np.ndarray, colour: tuple[int, int, int], tol: int = 60) -> int:
    return int((np.abs(img.astype(int) - np.array(colour)).sum(axis=2) < tol).sum())


def number_regions(margin: int = 14) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Where each number of the first segment is over the whole video (it drifts with the hand), padded."""
    regions: dict[int, list[int]] = {}
    for f in TRUTH["per_frame"]:
        for i, n in enumerate(f["numbers"]):
            x, y, w, h = n["box"]
            r = regions.setdefault(i, [x, y, x + w, y + h])
            r[:] = [min(r[0], x), min(r[1], y), max(r[2], x + w), max(r[3], y + h)]
    values = TRUTH["segments"][0]["values"]
    return [(values[i], (max(0, r[0] - margin), max(0, r[1] - margin - 20), r[2] + margin, r[3] + margin))
            for i, r in sorted(regions.items())]


def test_window_fits_the_frame_up_to_a_screen() -> None:
    assert window_size(640, 480) == (640, 480)
    assert window_size(960, 480) == (960, 480)  # with the debug panel: wider, same scale
    assert window_size(1920, 1080) == (1600, 900)
    assert window_size(2880, 1080) == (1600, 600)  # keeps the aspect


def test_debug_crops_are_shown_in_reading_order() -> None:
    """The reader keeps crops in segmentation order; the panel shows digit k's crop k-th."""
    boxes = [(300, 10, 20, 30), (10, 10, 20, 30), (10, 100, 20, 30), (200, 200, 5, 5)]
    digits = {b: Digit(i, 0.9, b) for i, b in enumerate(boxes[:3])}
    numbers = [Number("1", 0.9, boxes[1], (digits[boxes[1]],)), Number("0", 0.9, boxes[0], (digits[boxes[0]],)),
               Number("2", 0.9, boxes[2], (digits[boxes[2]],))]
    crops = [(np.full((28, 28), k, np.uint8), b, ()) for k, b in enumerate(boxes)]
    ordered = reading_order(list(reversed(crops)), FrameResult(numbers))
    assert [item[1] for item in ordered] == [boxes[1], boxes[0], boxes[2], boxes[3]]  # rejected speck last


@pytest.mark.slow
def test_live_preview_overlay_debug_pause_snapshot_quit(screen: Xvfb, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    # loop + realtime: the video stands in for a camera for as long as the test looks at it.
    cfg.write_text(f"source:\n  loop: true\n  realtime: true\nmodel:\n  path: {ROOT / 'models/digits_int8.tflite'}\n"
                   f"  num_threads: 1\nsinks:\n  snapshot_dir: {tmp_path / 'snaps'}\n"
                   "service:\n  persist_state: false\n")
    app = App(screen, ["-m", "edge", "--config", str(cfg), "--source", str(SAMPLE), "--sink", "window",
                       "--sink", "stdout"], tmp_path)
    try:
        wid = screen.find_window("digits", proc=app.proc)
        screen.wait_painted(wid, ARTIFACTS / "window_opened.png", timeout=10)
        # The first event is the stable reading; the overlay has drawn it by then.
        wait_for(lambda: app.stdout.strip(), 20, "the first reading event")
        first = json.loads(app.stdout.splitlines()[0])
        assert [n["value"] for n in first["numbers"]] == TRUTH["segments"][0]["values"]
        x0, y0, w, h = screen.geometry(wid)
        assert (w, h) == (W, H)  # the window fits the frame, pixel for pixel

        # Boxes where the digits are: stable numbers outlined in blue, confident digits in green.
        def boxed(shot: np.ndarray) -> bool:
            frame = shot[y0:y0 + H, x0:x0 + W]
            return all(colour_count(frame[ay:by, ax:bx], STABLE) > 150
                       and colour_count(frame[ay:by, ax:bx], GREEN) > 40 * len(value)
                       for value, (ax, ay, bx, by) in number_regions())

        shot = screen.shoot_until(ARTIFACTS / "window_preview.png", boxed, "stable and digit boxes on each number")
        frame = shot[y0:y0 + H, x0:x0 + W]
        # ... and not where there is only paper (below the last line and its confidence labels).
        lowest = max(r[3] for _, r in number_regions()) + 20
        assert colour_count(frame[lowest:], STABLE) + colour_count(frame[lowest:], GREEN) < 20
        assert colour_count(frame[:int(H * 0.25), :160], STABLE) > 200  # the "stable: ..." list top left
        assert not shot[y0:y0 + H, x0 + W:x0 + W + W // 2].any()  # nothing right of the window yet

        # d: the debug panel (mask, crops with top-3) widens the window by half.
        screen.key(wid, "d")
        wait_for(lambda: screen.geometry(wid)[2] == W + W // 2, 10, "the window to widen for the debug panel")

        def panel_has_crops() -> bool:
            s = screen.screenshot(ARTIFACTS / "window_debug.png")
            panel = s[y0 + H * 2 // 5:y0 + H, x0 + W:x0 + W + W // 2]
            return (panel.min(axis=2) > 200).sum() > 2000  # white ink of many 28x28 crops

        wait_for(panel_has_crops, 10, "the 28x28 crops in the debug panel")
        shot = screen.screenshot(ARTIFACTS / "window_debug.png")
        mask = shot[y0:y0 + H * 2 // 5, x0 + W:x0 + W + W // 2]
        assert (mask.min(axis=2) > 200).sum() > 500  # the thresholded mask: white strokes on black
        assert (shot[y0:y0 + H, x0:x0 + W].astype(int) - frame.astype(int)).any()  # the live view still runs

        # p: the view freezes (the hand-held video moves otherwise) and says so.
        screen.key(wid, "p")
        time.sleep(0.4)
        a = screen.screenshot(ARTIFACTS / "window_paused.png")[y0:y0 + H, x0:x0 + W + W // 2]
        time.sleep(0.6)
        b = screen.screenshot(ARTIFACTS / "window_paused.png")[y0:y0 + H, x0:x0 + W + W // 2]
        assert np.array_equal(a, b)
        assert colour_count(a[H - 40:, :200], PAUSED_LABEL, 30) > 100

        # s: the snapshot is the annotated view with the debug panel, as shown (without the PAUSED label).
        screen.key(wid, "s")
        def snapshot() -> np.ndarray | None:
            found = sorted((tmp_path / "snaps").glob("snapshot-*.png"))
            return cv2.imread(str(found[0])) if found else None  # None while still being written

        snap = wait_for(lambda: [img for img in [snapshot()] if img is not None], 10, "the snapshot file")[0]
        assert snap.shape == (H, W + W // 2, 3)
        assert np.abs(snap[:H - 40].astype(int) - a[:H - 40].astype(int)).mean() < 1.0

        screen.key(wid, "p")  # resume: frames move again
        time.sleep(0.8)
        c = screen.screenshot(ARTIFACTS / "window_resumed.png")[y0:y0 + H, x0:x0 + W]
        assert not np.array_equal(c, a[:, :W])

        screen.key(wid, "q")
        assert app.wait(15) == 0
    finally:
        app.stop()
    err = app.stderr
    assert "Traceback" not in err, err
    assert "quit requested from the window" in err and "snapshot saved to" in err


@pytest.mark.slow
def test_images_stay_on_screen_until_a_key(screen: Xvfb, tmp_path: Path) -> None:
    """Images in a window: each stays until a key (the prior art's waitKey(0)); before, a folder flashed past
    and the window closed with the run. Any key shows the next, the last key ends the run, q ends it early."""
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("page_clean.jpg", "page_ruled.jpg", "page_blue.jpg"):
        (pages / name).write_bytes((ROOT / "samples" / name).read_bytes())
    app = App(screen, ["-m", "edge", "--source", str(pages), "--sink", "window", "--sink", "stdout"], tmp_path)
    try:
        wid = screen.find_window("digits", proc=app.proc)
        screen.wait_painted(wid, ARTIFACTS / "window_image_held.png", timeout=10)
        wait_for(lambda: app.stdout.strip(), 20, "the first image's event")
        time.sleep(1.5)
        assert app.proc.poll() is None and len(app.stdout.splitlines()) == 1  # held on the first image
        screen.key(wid, "space")
        wait_for(lambda: len(app.stdout.splitlines()) == 2, 20, "the second image's event after a key")
        time.sleep(1.0)
        assert app.proc.poll() is None and len(app.stdout.splitlines()) == 2
        screen.key(wid, "q")
        assert app.wait(15) == 0, app.stderr
    finally:
        app.stop()
    sources = [json.loads(line)["source"] for line in app.stdout.splitlines()]
    assert sources == [str(pages / "page_blue.jpg"), str(pages / "page_clean.jpg")]  # q before the third

    # SIGTERM (systemctl stop, Ctrl-C) ends the wait for a key: the daemon stops cleanly
    app = App(screen, ["-m", "edge", "--source", str(pages), "--sink", "window", "--sink", "stdout"],
              tmp_path / "term")
    try:
        wid = screen.find_window("digits", proc=app.proc)
        wait_for(lambda: app.stdout.strip(), 20, "the first image's event")
        app.proc.send_signal(signal.SIGTERM)
        assert app.wait(15) == 0, app.stderr
    finally:
        app.stop()
    assert len(app.stdout.splitlines()) == 1


def test_predict_show_holds_each_image_until_a_key(screen: Xvfb, tmp_path: Path) -> None:
    """``python -m edge.predict --mnist 8 --show PAGE``: the prior art's "display the image" - the digit shown
    ten times larger with its reading until a key, then the page; q shows no more but still prints."""
    from edge.predict import SHOW_TITLE

    page = ROOT / "samples" / "page_clean.jpg"
    app = App(screen, ["-m", "edge.predict", "--mnist", "8", "--show", str(page)], tmp_path / "keys")
    try:
        wid = screen.find_window(SHOW_TITLE, proc=app.proc)
        screen.wait_painted(wid, ARTIFACTS / "predict_show_digit.png", timeout=10)
        x, y, w, h = screen.geometry(wid)
        assert w == 280 and 280 < h < 340  # 28x28 shown at 10x, the caption below
        time.sleep(1.0)
        assert app.proc.poll() is None and app.stdout.startswith("MNIST test #8: 5 ")  # held on the digit
        assert str(page) not in app.stdout
        screen.key(wid, "space")
        wait_for(lambda: str(page) in app.stdout, 20, "the page's reading after a key")
        wid = screen.find_window(SHOW_TITLE, proc=app.proc)
        wait_for(lambda: screen.geometry(wid)[2] > 280, 10, "the page in the window")
        assert app.proc.poll() is None
        screen.key(wid, "space")
        assert app.wait(15) == 0, app.stderr
    finally:
        app.stop()

    # q on the first image: no more windows, the rest still read and printed
    app = App(screen, ["-m", "edge.predict", "--mnist", "8", "--show", str(page)], tmp_path / "quit")
    try:
        wid = screen.find_window(SHOW_TITLE, proc=app.proc)
        screen.wait_painted(wid, ARTIFACTS / "predict_show_quit.png", timeout=10)
        screen.key(wid, "q")
        assert app.wait(20) == 0, app.stderr
    finally:
        app.stop()
    assert "MNIST test #8: 5 " in app.stdout and f"{page}: " in app.stdout


@pytest.mark.slow
def test_a_held_image_keeps_the_watchdog_fed(screen: Xvfb, tmp_path: Path) -> None:
    """With a watchdog (NOTIFY_SOCKET and WATCHDOG_USEC, as systemd sets them) the loop pings between frames;
    an image held for a key kept the loop inside the window sink, unpinged, and systemd would have killed
    the process as hung while it waited for a person."""
    notify = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(0.1)
        app = App(screen, ["-m", "edge", "--source", str(ROOT / "samples" / "page_clean.jpg"), "--sink", "window",
                           "--sink", "stdout"], tmp_path,
                  env={"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "600000"})  # a ping due every 0.3 s
        try:
            wid = screen.find_window("digits", proc=app.proc)
            wait_for(lambda: "any key for the next image" in app.stderr, 20, "the image to be held")
            before = _datagrams(sock, 0.0)  # what the loop sent up to the hold (READY=1)
            assert "READY=1" in before, before
            held = _datagrams(sock, 3.0)
            assert app.proc.poll() is None and len(app.stdout.splitlines()) == 1  # still held on the image
            assert held.count("WATCHDOG=1") >= 5, held  # about ten in 3 s; none before
            screen.key(wid, "q")
            assert app.wait(15) == 0, app.stderr
        finally:
            app.stop()


def _datagrams(sock: socket.socket, seconds: float) -> list[str]:
    """What arrives on ``sock`` for ``seconds`` (and what was already waiting)."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            if time.monotonic() >= deadline:
                return got
