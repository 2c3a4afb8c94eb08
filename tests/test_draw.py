"""Draw and predict (edge/draw.py) without a screen: the canvas, the reading through the real Reader and
model, the top-3 bars, and the app's reactions to mouse events and keys. The window itself is driven on a
real X server in test_draw_xvfb.py.
"""

from __future__ import annotations

import io
import json
import re
import time

import cv2
import numpy as np
import pytest

from edge import draw
from edge.annotate import GREEN, conf_colour
from edge.draw import Canvas, DrawApp, format_prediction, read_canvas, render, top3_bars
from edge.predict import load_settings, make_reader
from tests.draw_strokes import layout


@pytest.fixture(scope="module")
def reader():
    return make_reader(load_settings(None, None))


def centred(value: str, size: tuple[int, int] = draw.DEFAULT_SIZE, height: int = 200) -> tuple[int, int]:
    """Top-left corner that centres ``value`` (as ``layout`` writes it) on a canvas of ``size``."""
    w = len(value) * 0.62 * height + (len(value) - 1) * 0.35 * height
    return int((size[0] - w) / 2), int((size[1] - height) / 2)


def drawn(value: str, size: tuple[int, int] = draw.DEFAULT_SIZE, height: int = 200) -> Canvas:
    c = Canvas(*size)
    for stroke in layout(value, centred(value, size, height), height):
        c.stroke(stroke)
    return c


def mouse_draw(app: DrawApp, strokes) -> None:
    """What OpenCV reports for a drag: button down, moves with the button flag, button up."""
    for stroke in strokes:
        app.on_mouse(cv2.EVENT_LBUTTONDOWN, *stroke[0], cv2.EVENT_FLAG_LBUTTON)
        for x, y in stroke[1:]:
            app.on_mouse(cv2.EVENT_MOUSEMOVE, x, y, cv2.EVENT_FLAG_LBUTTON)
        app.on_mouse(cv2.EVENT_LBUTTONUP, *stroke[-1], 0)


# ------------------------------------------------------------------------------------------ canvas


def test_canvas_strokes_are_white_on_black_and_clear_empties_it() -> None:
    c = Canvas(300, 200)
    assert c.empty and c.thickness == 10  # a twentieth of the height
    v0 = c.version
    c.stroke([(50, 50), (250, 50)])
    assert not c.empty and c.version > v0
    assert c.ink[50, 150] == 255 and c.ink[150, 150] == 0  # on the line, away from it
    assert c.ink[50 + c.thickness, 150] == 0  # as thick as asked, no more
    c.press(20, 180)  # a click alone leaves a dot
    c.release()
    assert c.ink[180, 20] == 255
    c.clear()
    assert c.empty and c.ink.shape == (200, 300)


# ------------------------------------------------------------------------------------------ reading


@pytest.mark.parametrize("digit", list("0123456789"))
def test_one_digit_drawn_reads_as_that_digit(reader, digit: str) -> None:
    r = read_canvas(reader, drawn(digit).ink)
    assert r.value == digit, format_prediction(r)
    assert len(r.crops) == 1 and r.crops[0][1].shape == (28, 28) and r.crops[0][1].max() > 200
    assert r.crops[0][2][0][0] == int(digit)  # the crop's own top-1


@pytest.mark.parametrize("value", ["17", "305", "2024", "98765"])
def test_digits_side_by_side_read_as_one_number(reader, value: str) -> None:
    r = read_canvas(reader, drawn(value, height=110 if len(value) > 3 else 160).ink)
    assert [n.value for n in r.numbers] == [value], format_prediction(r)
    assert [c[2][0][0] for c in r.crops] == [int(ch) for ch in value]  # crops in reading order


def test_two_rows_read_as_two_numbers_top_first(reader) -> None:
    c = Canvas(720, 360)
    for stroke in layout("42", (260, 20), 130) + layout("9", (320, 200), 130):
        c.stroke(stroke)
    assert [n.value for n in read_canvas(reader, c.ink).numbers] == ["42", "9"]


@pytest.fixture(scope="module")
def canvas_reader():
    return draw.make_canvas_reader()


@pytest.mark.parametrize("size, thickness", [((720, 360), 2), ((720, 360), 5), ((720, 360), 100),
                                             ((200, 100), None), ((480, 360), None), ((1280, 720), 3),
                                             ((4000, 3000), 40), ((300, 1000), None), ((400, 1600), 4)])
@pytest.mark.parametrize("value", ["0", "47", "2905"])
def test_reading_depends_on_the_drawing_not_on_the_pen_or_the_canvas_size(canvas_reader, size, thickness,
                                                                          value: str) -> None:
    """--thickness and --size change how the strokes look, not what is read (the window's own reader). A
    portrait canvas was given to the reader cut to a square of its top: its digits in the middle read nothing."""
    app = DrawApp(canvas_reader, size, thickness, out=io.StringIO())
    height = min(int(size[1] * 0.6), int(size[0] * 0.8 / len(value)))
    for stroke in layout(value, centred(value, size, height), height):
        app.canvas.stroke(stroke)
    got = app.predict()
    assert got.value == value, format_prediction(got)
    # The boxes are where the digits are on the canvas, whatever size the reader saw them at.
    for n in got.numbers:
        for d in n.digits:
            x, y, w, h = d.box
            assert app.canvas.ink[y:y + h, x:x + w].any() and 0.5 * height < h < 1.3 * height, d.box


def test_empty_canvas_reads_nothing(reader) -> None:
    r = read_canvas(reader, Canvas(720, 360).ink)
    assert r.numbers == [] and r.value == "" and format_prediction(r) == "prediction: none (no digit found)"


# ------------------------------------------------------------------------------------------ drawing


def _run_length(row: np.ndarray, colour: tuple[int, int, int]) -> int:
    """Longest run of ``colour`` in a pixel row: a bar's filled length (glyphs make only short runs)."""
    hit = (np.abs(row.astype(int) - np.array(colour)).sum(axis=-1) < 40).astype(np.int8)
    best = run = 0
    for v in hit:
        run = run + 1 if v else 0
        best = max(best, run)
    return best


def test_top3_bars_are_as_long_as_the_probabilities() -> None:
    img = top3_bars([(3, 0.8), (5, 0.15), (8, 0.05)], (60, 300))
    assert img.shape == (60, 300, 3)
    # Three rows of 20 px; the middle line of each crosses its bar.
    first = _run_length(img[10], conf_colour(0.8))  # the best guess in the overlay's colour (orange)
    second, third = _run_length(img[30], draw.GREY), _run_length(img[50], draw.GREY)
    assert first > 0 and second > 0 and third > 0
    assert first / second == pytest.approx(0.8 / 0.15, rel=0.15)
    assert second / third == pytest.approx(0.15 / 0.05, rel=0.25)
    sure = top3_bars([(7, 1.0), (1, 0.0), (9, 0.0)], (60, 300))
    full = _run_length(sure[10], GREEN)  # a sure digit is green and fills its bar
    assert first / full == pytest.approx(0.8, rel=0.03)
    assert _run_length(sure[30], draw.GREY) < 3  # a zero probability draws no bar


def test_render_puts_the_panel_right_and_never_touches_the_ink(reader) -> None:
    c = drawn("42")
    before = c.ink.copy()
    r = read_canvas(reader, c.ink)
    img = render(c.ink, r, "predicted")
    assert img.shape == (360, 720 + draw.PANEL_WIDTH, 3)
    assert np.array_equal(c.ink, before)  # the help line and boxes are on the copy only
    # Two digit rows in the panel: each thumbnail shows its crop (bright ink) at the row's place.
    for k in range(2):
        y = draw.PANEL_ROWS_TOP + k * draw.PANEL_ROW_H
        thumb = img[y:y + draw.PANEL_ROW_H - draw.PANEL_ROW_GAP, 720 + 8:720 + 8 + 40]
        assert (thumb.min(axis=2) > 200).sum() > 50, f"row {k} has no crop"
    y = draw.PANEL_ROWS_TOP + 2 * draw.PANEL_ROW_H
    assert (img[y:y + 40, 720 + 8:720 + 48].min(axis=2) > 200).sum() == 0  # no third row


def test_format_prediction_names_the_number_and_each_top3(reader) -> None:
    line = format_prediction(read_canvas(reader, drawn("42").ink))
    m = re.match(r"prediction: (\S+) \((0\.\d+|1\.000)\) \| 4: 4 \d+\.\d%, \d \d+\.\d%, \d \d+\.\d% \| 2: 2 ", line)
    assert m and m.group(1) == "42", line


# ------------------------------------------------------------------------------------------ the app


def test_app_reads_live_while_drawing_and_p_prints_the_reading(reader) -> None:
    out = io.StringIO()
    app = DrawApp(reader, out=out, live_interval=0.0)
    strokes = layout("42", centred("42"), 200)
    first_digit = [s for s in strokes if max(x for x, _ in s) < 360]
    mouse_draw(app, first_digit)
    app.tick(time.monotonic())
    assert app.reading.value == "4" and app.state == "live"  # no key pressed: the live reading
    mouse_draw(app, strokes[len(first_digit):])
    app.tick(time.monotonic())
    assert app.reading.value == "42"
    assert out.getvalue() == ""  # live readings are shown, not printed
    app.handle_key(ord("p"))
    assert app.state == "predicted"
    assert out.getvalue().startswith("prediction: 42 (")
    assert app.handle_key(ord("c")) is None
    assert app.canvas.empty and app.reading.value == ""
    app.tick(time.monotonic())
    assert app.reading.value == ""
    assert app.handle_key(ord("q")) == DrawApp.QUIT
    assert app.handle_key(27) == DrawApp.QUIT  # Esc


def test_u_takes_back_the_last_stroke_and_the_reading_follows(reader) -> None:
    # No undo: one slip of the mouse meant clearing the whole drawing and starting again.
    app = DrawApp(reader, out=io.StringIO(), live_interval=0.0)
    strokes = layout("42", centred("42"), 200)
    first_digit = [s for s in strokes if max(x for x, _ in s) < 360]
    mouse_draw(app, first_digit)
    only_four = app.canvas.ink.copy()
    mouse_draw(app, strokes[len(first_digit):])
    app.tick(time.monotonic())
    assert app.reading.value == "42"
    for _ in strokes[len(first_digit):]:
        assert app.handle_key(ord("u")) is None
    np.testing.assert_array_equal(app.canvas.ink, only_four)  # drawn again from the strokes left
    app.tick(time.monotonic())
    assert app.reading.value == "4"
    for _ in first_digit:
        app.handle_key(ord("u"))
    assert app.canvas.empty and not app.canvas.undo()  # nothing left to take back
    app.tick(time.monotonic())
    assert app.reading.value == ""
    assert app.handle_key(ord("Q")) == DrawApp.QUIT  # caps lock on


def test_json_prediction(reader) -> None:
    out = io.StringIO()
    app = DrawApp(reader, out=out, json_out=True)
    mouse_draw(app, layout("7", centred("7"), 200))
    app.handle_key(ord("p"))
    got = json.loads(out.getvalue())
    assert got["value"] == "7"
    d = got["numbers"][0]["digits"][0]
    assert d["digit"] == 7 and len(d["top3"]) == 3 and d["top3"][0][0] == 7


def test_leaving_the_canvas_lifts_the_pen(reader) -> None:
    app = DrawApp(reader)
    w, _ = app.canvas.size
    app.on_mouse(cv2.EVENT_LBUTTONDOWN, 100, 100, cv2.EVENT_FLAG_LBUTTON)
    app.on_mouse(cv2.EVENT_MOUSEMOVE, w + 50, 100, cv2.EVENT_FLAG_LBUTTON)  # over the panel
    app.on_mouse(cv2.EVENT_MOUSEMOVE, 600, 300, cv2.EVENT_FLAG_LBUTTON)  # back: a new stroke starts here
    app.on_mouse(cv2.EVENT_LBUTTONUP, 600, 300, 0)
    ink = app.canvas.ink
    assert ink[100, 100] == 255 and ink[100, w - 5] == 0  # nothing drawn towards the edge
    assert ink[200, 350] == 0  # no chord from the exit point to the re-entry point
    app.on_mouse(cv2.EVENT_MOUSEMOVE, 50, 50, 0)  # moving without the button draws nothing
    assert ink[50, 50] == 0


def test_move_events_without_the_button_flag_still_draw(reader) -> None:
    """OpenCV's Qt back end leaves EVENT_FLAG_LBUTTON out of move events: a drag must still draw."""
    app = DrawApp(reader)
    app.on_mouse(cv2.EVENT_LBUTTONDOWN, 100, 100, 0)
    app.on_mouse(cv2.EVENT_MOUSEMOVE, 100, 300, 0)
    app.on_mouse(cv2.EVENT_MOUSEMOVE, 300, 300, 0)
    app.on_mouse(cv2.EVENT_LBUTTONUP, 300, 300, 0)
    assert app.canvas.ink[200, 100] == 255 and app.canvas.ink[300, 200] == 255
    assert app.canvas.ink[200, 200] == 0  # the corner was kept, not cut by a straight line


def test_threaded_live_reader_delivers_and_drops_stale_readings(reader) -> None:
    app = DrawApp(reader, live_interval=0.0, threaded=True)
    try:
        mouse_draw(app, layout("3", centred("3"), 200))
        deadline = time.monotonic() + 10
        while app.reading.value != "3" and time.monotonic() < deadline:
            app.tick(time.monotonic())
            time.sleep(0.01)
        assert app.reading.value == "3"
        # Draw, let the worker start, clear at once: the reading of the old drawing must not come back.
        mouse_draw(app, layout("8", centred("8"), 200))
        app.tick(time.monotonic())
        app.handle_key(ord("c"))
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            app.tick(time.monotonic())
            time.sleep(0.01)
        assert app.reading.value == "" and app.canvas.empty
    finally:
        app.close()


def test_save_writes_the_window_image(reader, tmp_path) -> None:
    app = DrawApp(reader, snapshot_dir=tmp_path / "snaps")
    mouse_draw(app, layout("5", centred("5"), 200))
    app.handle_key(ord("p"))
    assert app.save() is not None
    saved = sorted((tmp_path / "snaps").glob("draw-*.png"))
    assert len(saved) == 1
    img = cv2.imread(str(saved[0]))
    assert img.shape == (360, 720 + draw.PANEL_WIDTH, 3)
    assert np.array_equal(img, render(app.canvas.ink, app.reading, app.state))


def test_no_display_is_one_line_and_exit_1(monkeypatch, capsys) -> None:
    monkeypatch.setenv("DISPLAY", "")
    assert draw.main([]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "needs a display" in err and "DISPLAY is not set" in err


@pytest.mark.parametrize("argv", [["--size", "10x10"], ["--size", "big"], ["--thickness", "0"], ["--nope"]])
def test_bad_usage_exits_2(argv, capsys) -> None:
    try:
        code = draw.main(argv)
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert "error" in err and err.strip().count("\n") == 0
