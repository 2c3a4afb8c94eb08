"""``python -m edge.predict IMAGE...``: the numbers in image files, with each digit's top-3.

    python -m edge.predict samples/page_clean.jpg digit.png      # a readable table per image
    python -m edge.predict --json photos/*.jpg                    # one JSON object per image and line
    python -m edge.predict photos/ 'photos/*.jpg'                 # a folder, a quoted glob
    python -m edge.predict --image digit.png                      # the prior art's spelling
    python -m edge.predict --mnist --show                         # a random MNIST test digit, shown
    python -m edge.predict --mnist 1234                           # that one (its label beside the reading)

An IMAGE is a file, a folder (its files sorted by name) or a glob, expanded as ``python -m edge --source``
expands them (``edge.capture.open_source``); ``--image PATH`` (repeatable) is the same as a positional
IMAGE, listed after them.

Two kinds of input, told apart by size (``--mode`` forces one):

- **one digit** (``digit``): an image at most ``SINGLE_DIGIT_MAX_SIDE`` px on each side, such as the prior
  art's 28x28 white-on-black MNIST-style files (or black on white; the polarity is read from the border).
  A 28x28 image already in MNIST's convention (ink fitted to 20 px, centre of mass at the centre) is
  classified as it is; any other is first normalised with ``edge.normalise.to_mnist``. When the model's
  "not a digit" class wins (an "X", a photo forced through ``--mode digit``), there is no number: the table
  says "not a digit" with its probability, the JSON has ``"numbers": []`` and ``not_a_digit``. It does not go
  through the segmenter, which is built for camera frames: it enlarges a tiny image 14x, measures sizes
  relative to a page, and drops or breaks strokes that touch the image border. Measured on the 10,000
  MNIST test digits: 97.08% read right through the ``Reader``, 99.67% classified directly (the model
  card's figure; re-normalising them with ``to_mnist`` first would give 99.58%); 19 of them rate "not a
  digit" highest, so this command reads 99.50% right and says "not a digit" for 0.19%.
- **a page** (``page``): anything larger - a camera photo, a scan, a canvas with several digits side by side
  - goes through the same ``Reader`` as the daemon (segmentation, touching-digit search, numbers in reading
  order), with the daemon's ``config.yaml`` settings. A page the reader finds too cluttered to read (a page
  of print, noise: ``segment.max_components``, ``segment.reader.max_crops``) is not read, with the error
  "too cluttered to read", as the daemon's error event says.

``--mnist [INDEX]`` reads a digit of MNIST's test set (a random one without INDEX), as the prior art's
``predict.py`` does, and prints its label beside the reading. The test set comes from ``--data-dir``,
``$MNIST_DIR`` or the download cache ``python -m train`` fills; this command never downloads. In a checkout
without them it falls back to the test fixture (``tests/fixtures/mnist_sample.npz``: 500 of the test digits, with a warning).
``--show`` puts each image read in a window with its reading, until a key (q or Esc: no more windows).

Bad input (missing file, not an image, too cluttered, an empty folder, a glob matching no file) gives one
line on stderr for that input (in JSON also an object with ``error``) and the others are still read.
Exit codes: 0 when at least one image was read, 1 when none could be (or the model is missing), 2 for
usage or config errors. Never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge import paths as fs
from edge.cli import OneLineParser
from edge.types import NOT_A_DIGIT, Box, Digit, Number, number_to_dict

log = logging.getLogger("edge.predict")  # not __name__, which is "__main__" under python -m

#: Images no larger than this on both sides are one digit (MNIST 28, USPS/Semeion 16, optdigits 32): too
#: small to hold a readable number, and too small for the segmenter's camera-frame assumptions.
SINGLE_DIGIT_MAX_SIDE = 32
MODES = ("auto", "digit", "page")
#: ``--mnist``'s fallback in a checkout without MNIST: 500 of its test digits, the tests' fixture
MNIST_FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "mnist_sample.npz"


@dataclass
class Prediction:
    """What one input file gave: its numbers (reading order) or the reason it could not be read."""

    image: str
    size: tuple[int, int] | None = None  # (width, height)
    mode: str = "page"
    numbers: list[Number] = field(default_factory=list)
    #: probability of the "not a digit" class, for single-digit inputs (None for pages)
    not_a_digit: float | None = None
    ms: float = 0.0
    error: str | None = None
    #: the true digit, when known (``--mnist``)
    label: int | None = None


# ------------------------------------------------------------------------------------------ reading


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 gray from gray or BGR(A)."""
    if image.ndim == 2:
        return image
    import cv2

    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def border_is_light(gray: np.ndarray) -> bool:
    """True when the image's edge is light, i.e. dark ink on light paper (the opposite of MNIST)."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.median(border)) > 127.0


def is_mnist_normalised(white_on_black: np.ndarray) -> bool:
    """True for a 28x28 digit already in MNIST's convention: ink fitted to ~20 px, centred by mass.

    Such an image goes to the model untouched: normalising it again moves its pixels a little and costs
    0.07 points on the MNIST test set.
    """
    import cv2

    if white_on_black.shape != (28, 28):
        return False
    ys, xs = np.nonzero(white_on_black > 25)
    if xs.size == 0:
        return False
    side = max(int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1)
    m = cv2.moments(white_on_black.astype(np.float32))
    cx, cy = m["m10"] / m["m00"], m["m01"] / m["m00"]
    return 18 <= side <= 21 and abs(cx - 14.0) <= 1.0 and abs(cy - 14.0) <= 1.0


def single_digit_crop(gray: np.ndarray) -> tuple[np.ndarray, Box] | None:
    """The model's 28x28 input for a one-digit image of either polarity, and the ink's box in the image.

    None when the image holds no ink.
    """
    from edge.normalise import ink_from_gray, to_mnist

    g = 255 - gray if border_is_light(gray) else gray
    ink = ink_from_gray(g, dark_ink=False)
    ys, xs = np.nonzero(ink > 0.1)
    if xs.size == 0:
        return None
    box: Box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1)
    return (g if is_mnist_normalised(g) else to_mnist(ink)), box


def choose_mode(shape: tuple[int, ...], mode: str = "auto") -> str:
    if mode != "auto":
        return mode
    return "digit" if max(shape[:2]) <= SINGLE_DIGIT_MAX_SIDE else "page"


def read_single_digit(gray: np.ndarray, classifier: Any) -> tuple[list[Number], float | None]:
    """Classify an image that is one digit; returns ``([number], p_not_a_digit)``, or ``([], None)`` if blank.

    Reports the best digit even when the model doubts it (the caller shows that doubt): the user said this
    file *is* a digit. But when the "not a digit" class wins, as the reader decides for a page's crops,
    there is no number: ``([], p_not_a_digit)`` - a "0" at confidence 0.000 would be read by scripts as 0.
    """
    from edge.reader import top3

    found = single_digit_crop(gray)
    if found is None:
        return [], None
    crop, box = found
    probs = classifier.predict(crop[None])[0]
    not_digit = float(probs[NOT_A_DIGIT]) if probs.shape[0] > NOT_A_DIGIT else None
    if not_digit is not None and int(np.argmax(probs)) == NOT_A_DIGIT:
        return [], not_digit
    best = int(np.argmax(probs[:NOT_A_DIGIT]))
    conf = float(probs[best])
    digit = Digit(digit=best, confidence=conf, box=box, top3=top3(probs))
    return [Number(value=str(best), confidence=conf, box=box, digits=(digit,))], not_digit


#: the error of a page the reader found too cluttered to read: the daemon's error event says the same
CLUTTERED = "too cluttered to read"


def predict_image(image: np.ndarray, reader: Any,
                  mode: str = "auto") -> tuple[str, list[Number], float | None, str | None]:
    """Read one decoded image: ``(mode used, numbers, p_not_a_digit, error)``.

    ``error`` is ``CLUTTERED`` when the reader gave up on the page (``FrameResult.cluttered``, the signal the
    daemon turns into its "too cluttered to read" event), else None.
    """
    used = choose_mode(image.shape, mode)
    if used == "digit":
        numbers, not_digit = read_single_digit(to_gray(image), reader.classifier)
        return used, numbers, not_digit, None
    result = reader.read(image)
    if result.cluttered:
        return used, [], None, CLUTTERED
    return used, list(result.numbers), None, None


def predict_file(path: str, reader: Any, mode: str = "auto", max_pixels: int = 40_000_000) -> Prediction:
    return read_and_predict(path, reader, mode, max_pixels)[0]


def read_and_predict(path: str, reader: Any, mode: str = "auto",
                     max_pixels: int = 40_000_000) -> tuple[Prediction, np.ndarray | None]:
    """``predict_file`` and the decoded image (None when it could not be read), for ``--show``."""
    from edge.image_file import read_image

    t0 = time.perf_counter()
    image, error = read_image(path, max_pixels)
    if image is None:
        return Prediction(image=path, error=error or "cannot decode image"), None
    h, w = image.shape[:2]
    used, numbers, not_digit, error = predict_image(image, reader, mode)
    return Prediction(image=path, size=(w, h), mode=used, numbers=numbers, not_a_digit=not_digit,
                      ms=(time.perf_counter() - t0) * 1e3, error=error), image


def expand_inputs(spec: str, source_cfg: Any) -> tuple[list[str], str | None]:
    """The image files one IMAGE argument names, as ``python -m edge --source`` takes them: ``([paths], None)``
    or ``([], reason)`` for an empty folder or a glob matching no file.

    A folder or a glob is expanded by ``edge.capture.open_source`` itself (a folder's images sorted by name,
    files plainly not images passed over as the daemon passes them; a glob's files sorted); anything else
    is one path, which ``read_image`` then reads or names the reason it cannot (so a video or a missing file
    says so per file, and no camera is opened).
    """
    from edge.capture import SourceError, classify_spec, open_source

    try:
        if (fs.exists(spec) and not fs.is_dir(spec)) or classify_spec(spec) != "images":
            return [spec], None
    except OSError:
        # A file in a folder the user may not enter (EACCES): a traceback ended the run before the other
        # IMAGEs. Read as one file, it gets read_image's reason ("Permission denied").
        return [spec], None
    try:
        source = open_source(spec, source_cfg, retry=False)
    except SourceError as exc:
        # "no files in folder SPEC", "no files match SPEC": the caller puts SPEC in front already.
        return [], str(exc).replace(f" {spec}", "", 1)
    try:
        return list(getattr(source, "paths", [spec])), None
    finally:
        source.close()


def mnist_test_digits(data_dir: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(images [N,28,28], labels [N], test-set index of each [N])`` of MNIST's test set, read as ``python -m
    train`` reads it but never downloaded (this is a device-side command); the checkout's test fixture (500
    of the test digits, with their indices) when no set is at hand.

    Raises ``train.data.DataError`` with one line: a corrupt file, or nothing to read at all.
    """
    from train.data import FILES, DataError, load_file, resolve_data_dir

    stems = (FILES["test-images"], FILES["test-labels"])
    try:
        folder = resolve_data_dir(data_dir, download=False, stems=stems)
    except DataError:
        if data_dir or os.environ.get("MNIST_DIR") or not MNIST_FIXTURE.is_file():
            raise
        with np.load(MNIST_FIXTURE) as d:
            x, y, index = d["x"], d["y"], d["test_index"]
        log.warning("no MNIST test set here (set MNIST_DIR or pass --data-dir); reading the %d test digits "
                    "of %s", len(y), MNIST_FIXTURE)
        return x, y, index.astype(np.int64)
    x, y = load_file(folder, stems[0]), load_file(folder, stems[1])
    return x, y, np.arange(len(y))


def pick(spec: str, index: np.ndarray, rng: np.random.Generator) -> int:
    """The position of ``--mnist``'s INDEX (a test-set index) in ``index``, or a random position; ValueError
    with the reason for an INDEX that is not there."""
    if spec == "random":
        return int(rng.integers(len(index)))
    at = np.flatnonzero(index == int(spec)) if spec.isdigit() else np.empty(0)
    if at.size == 0:
        held = (f"0 to {len(index) - 1}" if len(index) and index[-1] == len(index) - 1
                else f"one of the {len(index)} in the fixture (set MNIST_DIR for all 10,000)")
        raise ValueError(f"--mnist INDEX must be a test digit's index, {held}; not {spec!r}")
    return int(at[0])


def predict_mnist(spec: str, reader: Any, data_dir: str | None,
                  rng: np.random.Generator) -> tuple[Prediction, np.ndarray]:
    """Read one MNIST test digit as a 28x28 file of it would be read; the Prediction carries its label."""
    x, y, index = mnist_test_digits(data_dir)
    i = pick(spec, index, rng)
    t0 = time.perf_counter()
    used, numbers, not_digit, error = predict_image(x[i], reader, "digit")
    return Prediction(image=f"MNIST test #{index[i]}", size=(28, 28), mode=used, numbers=numbers,
                      not_a_digit=not_digit, ms=(time.perf_counter() - t0) * 1e3, error=error,
                      label=int(y[i])), x[i]


# ------------------------------------------------------------------------------------------ output


def to_json(p: Prediction) -> dict[str, Any]:
    if p.error is not None:
        return {"image": p.image, "error": p.error}
    out: dict[str, Any] = {"image": p.image, "size": list(p.size or ()), "mode": p.mode,
                           "numbers": [number_to_dict(n, top3=True) for n in p.numbers]}
    if p.not_a_digit is not None:
        out["not_a_digit"] = round(p.not_a_digit, 4)
    if p.label is not None:
        out["label"] = p.label
        out["right"] = is_right(p)
    out["ms"] = round(p.ms, 1)
    return out


def _pct(p: float) -> str:
    return f"{p * 100:5.1f}%"


def is_right(p: Prediction) -> bool:
    """The reading is the label: one number, that digit (a "not a digit" answer is wrong)."""
    return p.label is not None and [n.value for n in p.numbers] == [str(p.label)]


def format_table(p: Prediction) -> str:
    """A readable block for one image: a header line, then one row per digit with its top-3."""
    if p.error is not None:
        return f"{p.image}: error: {p.error}"
    w, h = p.size or (0, 0)
    kind = "one digit" if p.mode == "digit" else "page"
    values = " ".join(n.value for n in p.numbers)
    if not values:
        values = (f"(not a digit: {_pct(p.not_a_digit).strip()})" if p.mode == "digit" and p.not_a_digit is not None
                  else "(no digits found)")
    truth = "" if p.label is None else f"   label {p.label}: {'right' if is_right(p) else 'WRONG'}"
    lines = [f"{p.image}: {values}   [{w}x{h}, {kind}, {p.ms:.0f} ms]{truth}"]
    if p.numbers:
        lines.append(f"  {'number':<10}{'conf':>6}  {'digit':<6}{'top-1':<10}{'top-2':<10}{'top-3':<10}box")
        for n in p.numbers:
            for i, d in enumerate(n.digits):
                first = i == 0
                tops = [f"{k} {_pct(q)}" for k, q in d.top3] + [""] * (3 - len(d.top3))
                lines.append(f"  {n.value if first else '':<10}{f'{n.confidence:.3f}' if first else '':>6}  "
                             f"{d.digit:<6}{tops[0]:<10}{tops[1]:<10}{tops[2]:<10}"
                             f"{','.join(str(v) for v in d.box)}")
    if p.numbers and p.not_a_digit is not None and p.not_a_digit > 0.5:
        lines.append(f"  note: the model rates this {p.not_a_digit * 100:.0f}% 'not a digit'")
    return "\n".join(lines)


def picture(image: np.ndarray, p: Prediction, min_side: int = 280, max_size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """The image as ``--show`` shows it: enlarged (a 28x28 digit to 280x280, pixels kept sharp) or shrunk to
    fit, each digit's box and value drawn on it, and a caption with the reading (and the label) below."""
    import cv2

    from edge.annotate import FONT, conf_colour, fit_scale, put_label, text_scale, to_bgr

    h, w = image.shape[:2]
    k = min(max(min_side / min(h, w), 1.0), max_size[0] / w, max_size[1] / h)
    size = (max(1, round(w * k)), max(1, round(h * k)))
    img = to_bgr(cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if k > 1 else cv2.INTER_AREA))
    scale = max(text_scale(img.shape[0]), 0.5)
    for n in p.numbers:
        for d in n.digits:
            x, y, bw, bh = (round(v * k) for v in d.box)
            colour = conf_colour(d.confidence)
            cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), colour, max(1, round(img.shape[0] / 360)))
            put_label(img, f"{d.digit} {d.confidence:.2f}", (x, y - 2), colour, scale)
    values = " ".join(n.value for n in p.numbers) or (
        "not a digit" if p.not_a_digit is not None else "no digits found")
    caption = f"read: {values}" + ("" if p.label is None else f"   label: {p.label}")
    strip = np.full((int(34 * scale) + 10, img.shape[1], 3), 255, np.uint8)
    colour = (0, 0, 0) if p.label is None or is_right(p) else (0, 0, 200)
    cv2.putText(strip, caption, (6, strip.shape[0] - 10), FONT, fit_scale(caption, img.shape[1] - 12, scale),
                colour, 1, cv2.LINE_AA)
    return np.vstack([img, strip])


#: the window ``--show`` uses (tests find it by this title)
SHOW_TITLE = "digits: predict"


def show(img: np.ndarray, poll_ms: int = 100) -> bool:
    """Show ``img`` until a key or the window's close button; False when the user asked for no more (q,
    Esc or closing the window)."""
    import cv2

    from edge.sinks.window import window_visible

    # the image at its size, without Qt's toolbar and status bar (as edge.draw's window)
    cv2.namedWindow(SHOW_TITLE, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    cv2.imshow(SHOW_TITLE, img)
    while True:
        key = cv2.waitKey(poll_ms)
        if not window_visible(SHOW_TITLE):
            return False
        if key != -1:
            return (key & 0xFF) not in (ord("q"), 27)


# ------------------------------------------------------------------------------------------ command line


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m edge.predict",
                description="Print the numbers in image files, with each digit's top-3 and confidences.",
                epilog="An image at most 32 px on each side (e.g. a 28x28 MNIST-style file) is one digit; "
                       "anything larger is read like a camera frame. A folder or glob is expanded as "
                       "python -m edge --source expands it. Exit codes: 0 at least one image read, "
                       "1 none could be read, 2 bad usage or config.")
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files (png, jpg, bmp, ...), folders (their files sorted by name) or quoted globs")
    p.add_argument("--image", action="append", default=[], metavar="PATH", dest="image_options",
                   help="an image, folder or glob as IMAGE (the prior art's predict.py --image); repeatable")
    p.add_argument("--mnist", nargs="?", const="random", metavar="INDEX",
                   help="read MNIST test digit INDEX (0-9999), a random one without INDEX, and print its label "
                        "(the prior art's predict.py); from --data-dir, $MNIST_DIR or the download cache, never "
                        "downloaded; in a checkout without them, from the tests' 500-digit fixture")
    p.add_argument("--data-dir", metavar="DIR", help="the MNIST folder for --mnist (default: $MNIST_DIR)")
    p.add_argument("--show", action="store_true",
                   help="show each image with its reading in a window until a key (q or Esc: no more)")
    p.add_argument("--json", action="store_true", help="one JSON object per image and line instead of the table")
    p.add_argument("--mode", choices=MODES, default="auto",
                   help="digit: each image is one digit; page: read numbers like a camera frame; "
                        "auto (default): by size")
    p.add_argument("--config", metavar="FILE",
                   help="settings for the reader and model (default: the project's config.yaml)")
    p.add_argument("--model", metavar="FILE", help="int8 TFLite model (overrides model.path)")
    p.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="log level on stderr (default WARNING)")
    return p


def load_settings(config: str | None, model: str | None, overrides: dict[tuple[str, ...], Any] | None = None) -> Any:
    """The validated config (the daemon's, so reads match it); raises ConfigError with one line."""
    from edge.config import default_config_path, load_config

    path = config if config is not None else default_config_path()
    overrides = dict(overrides or {})
    if model:
        overrides[("model", "path")] = str(Path(model).resolve())
    return load_config(path, overrides or None)


def make_reader(cfg: Any) -> Any:
    """Classifier + Reader from a config, exactly as the daemon builds them; raises ModelError."""
    from edge.classify import Classifier
    from edge.daemon import make_reader as reader_from_config

    return reader_from_config(cfg, Classifier(cfg.model.path, cfg.model.num_threads, cfg.model.runtime,
                                                 amx=cfg.model.amx))


def _say(stream: Any, text: str) -> None:
    # A file name that is not valid UTF-8 (a Latin-1 name from an old camera's card) holds lone surrogates,
    # which the strict stdout of a UTF-8 locale refuses: a traceback, and the next IMAGEs were never read.
    # They are written as \udcXX, as the daemon's sinks write them.
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")
    stream.flush()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # intermixed: `predict a.png --json b.png` and `--image a.png b.png` are both the two images
    args = parser.parse_intermixed_args(argv)
    specs = list(args.images) + list(args.image_options)
    if not specs and args.mnist is None:
        parser.error("no images given: IMAGE..., --image PATH or --mnist [INDEX]")
    if args.show:
        from edge.sinks.window import display_problem

        why = display_problem()
        if why is not None:
            parser.error(f"--show needs a display: {why}")
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from edge.classify import ModelError
    from edge.config import ConfigError

    try:
        cfg = load_settings(args.config, args.model)
    except ConfigError as exc:
        _say(sys.stderr, f"error: {exc}")
        return 2
    try:
        reader = make_reader(cfg)
    except ModelError as exc:
        _say(sys.stderr, f"error: {exc}")
        return 1

    read = total = 0
    showing = args.show

    def report(pred: Prediction, image: np.ndarray | None) -> None:
        nonlocal read, showing
        if pred.error is not None:
            _say(sys.stderr, f"error: {pred.image}: {pred.error}")
        else:
            read += 1
        if args.json:
            _say(sys.stdout, json.dumps(to_json(pred)))
        elif pred.error is None:
            _say(sys.stdout, ("\n" if read > 1 else "") + format_table(pred))
        if showing and image is not None and pred.error is None:
            showing = show(picture(image, pred))

    try:
        if args.mnist is not None:
            try:
                from train.data import DataError
            except ImportError:
                # install.sh installs edge/ only: the MNIST reader is the checkout's train/ package
                _say(sys.stderr, "error: --mnist needs the checkout's train/ package, which this install does "
                                 "not have (run it from a checkout of the project)")
                return 1

            total += 1
            try:
                pred, digit = predict_mnist(args.mnist, reader, args.data_dir, np.random.default_rng())
            except ValueError as exc:  # a bad INDEX: usage
                _say(sys.stderr, f"error: {exc}")
                return 2
            except DataError as exc:
                _say(sys.stderr, f"error: {exc}")
                return 1
            report(pred, digit)
        for spec in specs:
            paths, why = expand_inputs(spec, cfg.source)
            if why is not None:
                total += 1
                _say(sys.stderr, f"error: {spec}: {why}")
                if args.json:
                    _say(sys.stdout, json.dumps(to_json(Prediction(image=spec, error=why))))
                continue
            for path in paths:
                total += 1
                image = None
                try:
                    pred, image = read_and_predict(path, reader, args.mode, cfg.source.max_pixels)
                except Exception as exc:  # noqa: BLE001 - one odd file must not cost the others their reading
                    log.debug("reading %s failed", path, exc_info=True)
                    pred = Prediction(image=path, error=f"cannot read digits ({exc.__class__.__name__}: {exc})")
                report(pred, image)
    except BrokenPipeError:
        # `python -m edge.predict *.png | head`: the reader went away; that is not an error of ours.
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 0 if read else 1
    except KeyboardInterrupt:
        return 130
    if read == 0:
        _say(sys.stderr, f"error: none of the {total} image(s) could be read")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
