"""Synthetic camera scenes of handwritten multi-digit numbers, with exact ground truth.

Digits are MNIST *test* images (never seen in training) drawn as ink on a paper-like page, which is then
seen by a "camera": perspective and tilt, uneven light, shadows, vignetting, blur, sensor noise and JPEG.
Every effect is chosen by a named condition so accuracy can be reported per condition, and everything is
drawn from one ``numpy.random.Generator`` so a (condition, seed) pair always gives the same scene.

Conditions: ``clean`` (black pen, plain paper, even light; sometimes one large number), ``gradient`` (light
falling off across the page, vignetting), ``shadow`` (a soft-edged shadow across part of the frame), ``ruled``
(light blue rules the digits sit on, red margin), ``squared`` (blue or grey grid), ``pencil`` (grey, thin,
grainy), ``blue_pen``, ``blur`` (defocus or motion), ``noise`` (sensor noise sigma 8-14), ``jpeg`` (quality
15-35), ``tilt`` (rotation up to +/-15 degrees plus perspective), ``touching`` (neighbouring digits overlap
by 8-22 % of the narrower one), ``small`` (16-22 px tall), ``mixed`` (each effect at random, plus sometimes
the page edge with the desk beyond it). Every scene has 1-4 lines of 1-3 numbers of 1-6 digits, some with
leading zeros; digits of a number are at most DIGIT_GAP digit heights apart, numbers at least NUMBER_GAP.

Ground truth per scene: the numbers in reading order (lines top to bottom, left to right), each with its
value (a string: leading zeros matter) and box, and each digit's box, all ``(x, y, w, h)`` in frame pixels.
Boxes are those of the digit's ink (alpha > INK_LEVEL) after the camera's perspective, so they are tight.

    python tools/scenegen.py --condition mixed --seed 3 --out /tmp/scene.png   # writes .png and .json
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import os
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]

CONDITIONS = ("clean", "gradient", "shadow", "ruled", "squared", "pencil", "blue_pen", "blur", "noise",
              "jpeg", "tilt", "touching", "small", "mixed")

#: Spacing, in digit heights: digits of one number are at most DIGIT_GAP apart, numbers on one line at
#: least NUMBER_GAP, so where one number ends is never a matter of opinion.
DIGIT_GAP = 0.45
NUMBER_GAP = 1.5
#: Alpha above which a pixel of a digit counts as ink for its ground-truth box.
INK_LEVEL = 0.25
#: $MNIST_DIR, else ../shared/mnist beside the checkout
DEFAULT_MNIST_DIR = str(Path(__file__).resolve().parents[2] / "shared" / "mnist")

# BGR colours.
PEN_BLACK = (40.0, 35.0, 30.0)
PEN_BLUE = (150.0, 60.0, 25.0)
PENCIL = (95.0, 95.0, 100.0)
RULE_BLUE = (225.0, 195.0, 150.0)
MARGIN_RED = (150.0, 150.0, 235.0)


# ---------------------------------------------------------------------------------------------- MNIST


def _read_idx(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file")
    return data.reshape(dims)


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"MNIST file {stem}(.gz) not found in {data_dir} (set $MNIST_DIR)")


def load_mnist_test(data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test split as (images uint8 [N,28,28], labels uint8 [N]) from ``data_dir`` or $MNIST_DIR."""
    d = Path(data_dir or os.environ.get("MNIST_DIR") or DEFAULT_MNIST_DIR)
    images = _read_idx(_find(d, "t10k-images-idx3-ubyte"))
    labels = _read_idx(_find(d, "t10k-labels-idx1-ubyte"))
    return images, labels


# ---------------------------------------------------------------------------------------------- truth


@dataclass
class DigitTruth:
    digit: int
    box: Box
    #: index of the MNIST test image used, so a misread can be traced back to its source.
    mnist_index: int = -1


@dataclass
class NumberTruth:
    value: str
    box: Box
    digits: list[DigitTruth]


@dataclass
class Scene:
    image: np.ndarray  # BGR uint8
    numbers: list[NumberTruth]
    condition: str
    seed: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def values(self) -> list[str]:
        return [n.value for n in self.numbers]

    def truth(self) -> dict[str, Any]:
        """JSON-ready ground truth (the event's shape, without confidences)."""
        return {
            "condition": self.condition,
            "seed": self.seed,
            "size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "numbers": [
                {"value": n.value, "box": list(n.box),
                 "digits": [{"digit": d.digit, "box": list(d.box), "mnist_index": d.mnist_index}
                            for d in n.digits]}
                for n in self.numbers
            ],
            "params": self.params,
        }


def union_box(boxes: list[Box]) -> Box:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return (x0, y0, x1 - x0, y1 - y0)


# ---------------------------------------------------------------------------------------------- drawing


@dataclass
class Style:
    """Everything a condition decides; drawn once per scene from the seed."""

    height: tuple[float, float] = (30.0, 64.0)  # digit ink height range, in pixels of a 480-high frame
    stroke: tuple[float, float] = (0.06, 0.13)  # pen width as a fraction of digit height
    ink: tuple[float, float, float] = PEN_BLACK
    opacity: tuple[float, float] = (0.88, 1.0)
    pencil: bool = False
    paper: str = "plain"  # plain | ruled | squared
    tilt: float = 0.0  # max rotation, degrees
    perspective: float = 0.0  # max corner displacement as a fraction of the frame
    touching: bool = False
    #: gap between the digits of a number, in digit heights (never above DIGIT_GAP)
    digit_gap: tuple[float, float] = (0.15, DIGIT_GAP)
    gradient: bool = False
    vignette: bool = False
    shadow: bool = False
    blur: bool = False
    noise: float = 2.0  # sensor noise sigma (every camera has some)
    jpeg: int | None = None
    large: bool = False  # one big number filling much of the frame
    page_edge: bool = False  # the page ends inside the frame and the desk shows beyond it


def style_for(condition: str, rng: np.random.Generator) -> Style:
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; choose one of {', '.join(CONDITIONS)}")
    s = Style()
    if condition == "clean":
        s.large = rng.random() < 0.15
    elif condition == "gradient":
        s.gradient, s.vignette = True, True
    elif condition == "shadow":
        s.shadow = True
    elif condition == "ruled":
        s.paper = "ruled"
    elif condition == "squared":
        s.paper = "squared"
    elif condition == "pencil":
        s.pencil, s.ink, s.opacity, s.stroke = True, PENCIL, (0.45, 0.7), (0.05, 0.09)
    elif condition == "blue_pen":
        s.ink = PEN_BLUE
    elif condition == "blur":
        s.blur = True
    elif condition == "noise":
        s.noise = float(rng.uniform(8.0, 14.0))
    elif condition == "jpeg":
        s.jpeg = int(rng.integers(15, 36))
    elif condition == "tilt":
        s.tilt, s.perspective = 15.0, 0.06
    elif condition == "touching":
        s.touching = True
    elif condition == "small":
        s.height = (16.0, 22.0)
        s.stroke = (0.08, 0.13)
    elif condition == "mixed":
        # Each effect independently, so the mix covers combinations no single condition shows.
        p = 0.3
        s.large = rng.random() < 0.08
        if rng.random() < 0.15:
            s.height = (16.0, 24.0)
        ink = rng.choice(3)
        if ink == 1:
            s.ink = PEN_BLUE
        elif ink == 2:
            s.pencil, s.ink, s.opacity, s.stroke = True, PENCIL, (0.5, 0.75), (0.05, 0.09)
        s.paper = str(rng.choice(["plain", "plain", "ruled", "squared"]))
        if rng.random() < 0.5:
            s.tilt, s.perspective = 15.0, 0.05
        s.touching = rng.random() < p
        s.gradient = rng.random() < p
        s.vignette = rng.random() < p
        s.shadow = rng.random() < p
        s.blur = rng.random() < p * 0.7
        if rng.random() < p:
            s.noise = float(rng.uniform(5.0, 10.0))
        if rng.random() < p:
            s.jpeg = int(rng.integers(25, 50))
        s.page_edge = rng.random() < 0.25
    return s


def _digit_alpha(img28: np.ndarray, height: float, stroke_frac: float, rng: np.random.Generator) -> np.ndarray:
    """One MNIST digit as an ink alpha map (float32 0..1) whose ink is ``height`` px tall.

    The stroke is set to ``stroke_frac * height`` by morphology at 4x resolution then area-downsampled, so
    thin pens stay anti-aliased instead of breaking into pixels.
    """
    ys, xs = np.nonzero(img28 > 30)
    crop = img28[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255.0
    ch, cw = crop.shape
    f = float(np.clip(160.0 / height, 1.0, 4.0))
    hi_h = max(4, round(height * f))
    hi_w = max(2, round(cw * hi_h / ch))
    pad = 4
    crop = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    scale = hi_h / ch
    big = cv2.resize(crop, (hi_w + round(2 * pad * scale), hi_h + round(2 * pad * scale)),
                     interpolation=cv2.INTER_CUBIC)
    big = np.clip(big, 0.0, 1.0)
    # MNIST strokes are ~2.3 px at 20 px tall: the scaled natural width.
    natural = 2.3 / 20.0 * hi_h
    want = stroke_frac * height * f
    delta = want - natural
    k = int(round(abs(delta)))
    if k >= 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 1, k + 1))
        big = cv2.dilate(big, kernel) if delta > 0 else cv2.erode(big, kernel)
    # Sharpen the soft MNIST edge into pen ink: a steep ramp around half level.
    big = np.clip((big - 0.3) / 0.4, 0.0, 1.0)
    out_w = max(1, round(big.shape[1] / f))
    out_h = max(1, round(big.shape[0] / f))
    small = cv2.resize(big, (out_w, out_h), interpolation=cv2.INTER_AREA)
    ys, xs = np.nonzero(small > 0.02)
    if len(xs) == 0:
        return small
    return small[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


@dataclass
class _Placed:
    label: int
    mnist_index: int
    alpha: np.ndarray
    x: int
    y: int


def _pick(labels_index: list[np.ndarray], digit: int, rng: np.random.Generator) -> int:
    idx = labels_index[digit]
    return int(idx[rng.integers(len(idx))])


def _random_value(rng: np.random.Generator, max_len: int) -> str:
    n = int(rng.choice([1, 2, 3, 4, 4, 5, 5, 6]))
    n = max(1, min(n, max_len))
    digits = [str(int(rng.integers(10))) for _ in range(n)]
    if n > 1 and rng.random() < 0.1:
        digits[0] = "0"  # leading zeros matter (meter readings, codes)
    return "".join(digits)


@dataclass
class Page:
    """A written page before the camera: float32 BGR pixels, the placed digits, the page->frame homography."""

    image: np.ndarray
    lines: list[list[list[_Placed]]]
    m: np.ndarray
    style: Style
    #: seeds the camera's lighting and noise, so re-rendering the page repeats its light.
    light_seed: int
    condition: str
    seed: int


class SceneGenerator:
    """Deterministic scene maker over the MNIST test set.

    ``scene(condition, seed)`` returns a :class:`Scene`; the same arguments always give the same pixels.
    """

    def __init__(self, images: np.ndarray | None = None, labels: np.ndarray | None = None,
                 size: tuple[int, int] = (640, 480), mnist_dir: str | Path | None = None) -> None:
        if images is None or labels is None:
            images, labels = load_mnist_test(mnist_dir)
        self.images, self.labels = images, labels
        self.size = size
        self._by_label = [np.flatnonzero(labels == d) for d in range(10)]

    # ---- layout, in page coordinates (the page is drawn flat, then seen by the camera)

    def _layout(self, rng: np.random.Generator, s: Style, region: tuple[int, int, int, int],
                unit: float, values: list[list[str]] | None = None,
                pitch: float | None = None) -> list[list[list[_Placed]]]:
        """Lines of numbers of placed digits inside ``region`` (x, y, w, h); ``unit`` scales sizes."""
        rx, ry, rw, rh = region
        # "large": a number filling much of the frame (the camera held close).
        h = float(rng.uniform(0.25, 0.45)) * rh if s.large else float(rng.uniform(*s.height)) * unit
        stroke = float(rng.uniform(*s.stroke))
        line_pitch = pitch if pitch is not None else h * float(rng.uniform(1.7, 2.4))
        if values is None:
            max_lines = max(1, int(rh // line_pitch))
            n_lines = 1 if s.large else int(rng.integers(1, min(4, max_lines) + 1))
            values = []
            for _ in range(n_lines):
                values.append([_random_value(rng, 3 if s.large else 6)
                               for _ in range(1 if s.large else int(rng.integers(1, 4)))])
        lines: list[list[list[_Placed]]] = []
        # Spread the block of lines over the region rather than always starting at its top.
        block = (len(values) - 1) * line_pitch + h * 1.1
        y_base = ry + h * 1.1 + float(rng.uniform(0.0, max(0.0, rh - block)))
        if pitch is not None:
            # Ruled paper: write on the rules (the pitch and offset are the paper's).
            y_base = ry + line_pitch * math.ceil((y_base - ry) / line_pitch)
        for line_values in values:
            if y_base > ry + rh:
                break
            x = rx + float(rng.uniform(0.0, 0.25)) * rw
            line: list[list[_Placed]] = []
            for value in line_values:
                number: list[_Placed] = []
                prev_w = 0.0
                x_num = x
                for ch in value:
                    d = int(ch)
                    mi = _pick(self._by_label, d, rng)
                    dh = h * float(rng.uniform(0.9, 1.1))
                    alpha = _digit_alpha(self.images[mi], dh, stroke, rng)
                    ah, aw = alpha.shape
                    if number:
                        if s.touching:
                            gap = -float(rng.uniform(0.08, 0.22)) * min(prev_w, aw)
                        else:
                            gap = float(rng.uniform(*s.digit_gap)) * h
                        x += gap
                    top = y_base - ah + float(rng.uniform(-0.05, 0.05)) * h
                    number.append(_Placed(d, mi, alpha, round(x), round(top)))
                    x += aw
                    prev_w = aw
                if x > rx + rw:
                    x = x_num
                    break  # this number does not fit: the line ends before it
                line.append(number)
                x += float(rng.uniform(NUMBER_GAP, 2.5)) * h
            if line:
                lines.append(line)
            y_base += line_pitch
        return lines

    # ---- page

    def _paper(self, rng: np.random.Generator, shape: tuple[int, int], s: Style, pitch: float,
               offset: float) -> np.ndarray:
        ph, pw = shape
        white = float(rng.uniform(228, 246))
        tint = np.float32(white) + rng.uniform(-4, 4, 3).astype(np.float32)
        page = np.empty((ph, pw, 3), np.float32)
        page[:] = tint
        # Paper fibre: faint low-frequency blotches plus fine grain.
        low = cv2.resize(rng.normal(0, 1, (max(2, ph // 40), max(2, pw // 40))).astype(np.float32), (pw, ph),
                         interpolation=cv2.INTER_CUBIC)
        page += (low * 2.5 + rng.normal(0, 1.2, (ph, pw)).astype(np.float32))[..., None]
        if s.paper == "ruled":
            thick = int(rng.integers(1, 3))
            y = offset
            while y < ph:
                cv2.line(page, (0, round(y)), (pw, round(y)), RULE_BLUE, thick, cv2.LINE_AA)
                y += pitch
            mx = round(pw * float(rng.uniform(0.12, 0.2)))
            cv2.line(page, (mx, 0), (mx, ph), MARGIN_RED, thick, cv2.LINE_AA)
        elif s.paper == "squared":
            colour = RULE_BLUE if rng.random() < 0.6 else (185.0, 185.0, 185.0)
            c = pitch
            v = offset
            while v < max(ph, pw):
                cv2.line(page, (0, round(v)), (pw, round(v)), colour, 1, cv2.LINE_AA)
                cv2.line(page, (round(v), 0), (round(v), ph), colour, 1, cv2.LINE_AA)
                v += c
        return page

    @staticmethod
    def _desk(rng: np.random.Generator, page: np.ndarray, lines: list[list[list[_Placed]]]) -> np.ndarray:
        """End the page a little beyond the writing on one side; a darker desk fills the rest."""
        ph, pw = page.shape[:2]
        placed = [p for ln in lines for n in ln for p in n]
        x0 = min(p.x for p in placed)
        y0 = min(p.y for p in placed)
        x1 = max(p.x + p.alpha.shape[1] for p in placed)
        y1 = max(p.y + p.alpha.shape[0] for p in placed)
        h = float(np.median([p.alpha.shape[0] for p in placed]))
        side = int(rng.integers(4))
        gap = float(rng.uniform(0.8, 2.5)) * h
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        slant = float(rng.uniform(-0.08, 0.08))  # the edge is rarely square to the page's lines
        if side == 0:
            beyond = xx < x0 - gap + slant * (yy - ph / 2)
        elif side == 1:
            beyond = xx > x1 + gap + slant * (yy - ph / 2)
        elif side == 2:
            beyond = yy < y0 - gap + slant * (xx - pw / 2)
        else:
            beyond = yy > y1 + gap + slant * (xx - pw / 2)
        # Wood or grey laminate: darker than paper, from grey to brown (B <= G <= R).
        v = float(rng.uniform(55, 140))
        warm = float(rng.uniform(0.0, 0.35))
        desk = np.array([v * (1 - warm), v * (1 - warm / 2), v], np.float32)
        grain = cv2.resize(rng.normal(0, 1, (max(2, ph // 8), max(2, pw // 64))).astype(np.float32), (pw, ph),
                           interpolation=cv2.INTER_LINEAR)
        wood = desk + (grain * 8.0)[..., None]
        out = page.copy()
        out[beyond] = wood[beyond]
        return out

    # ---- camera

    def _homography(self, rng: np.random.Generator, s: Style, page_size: tuple[int, int]) -> np.ndarray:
        """Page -> frame: rotate by up to ``tilt`` degrees and push corners around for perspective."""
        W, H = self.size
        pw, ph = page_size
        ang = math.radians(float(rng.uniform(-s.tilt, s.tilt))) if s.tilt else 0.0
        c, si = math.cos(ang), math.sin(ang)
        # Centre the page on the frame, rotate about the frame centre.
        t0 = np.array([[1, 0, -pw / 2], [0, 1, -ph / 2], [0, 0, 1]], np.float64)
        r = np.array([[c, -si, 0], [si, c, 0], [0, 0, 1]], np.float64)
        t1 = np.array([[1, 0, W / 2], [0, 1, H / 2], [0, 0, 1]], np.float64)
        m = t1 @ r @ t0
        if s.perspective:
            src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
            jitter = rng.uniform(-s.perspective, s.perspective, (4, 2)) * np.array([W, H])
            dst = (src + jitter).astype(np.float32)
            m = cv2.getPerspectiveTransform(src, dst).astype(np.float64) @ m
        return m

    def scene(self, condition: str = "clean", seed: int = 0, values: list[list[str]] | None = None,
              style: Style | None = None) -> Scene:
        """Draw one scene. ``values`` (lines of number strings) fixes the content; else it is random."""
        return self.render(self.compose(condition, seed, values, style))

    def compose(self, condition: str = "clean", seed: int = 0, values: list[list[str]] | None = None,
                style: Style | None = None) -> Page:
        """Write the numbers on a flat page and choose where the camera sees it from (no camera effects)."""
        ss = np.random.SeedSequence([seed, CONDITIONS.index(condition) if condition in CONDITIONS else 99])
        rng = np.random.default_rng(ss)
        s = style if style is not None else style_for(condition, rng)
        W, H = self.size
        unit = H / 480.0
        # The page is bigger than the frame so tilt and perspective never show its edge.
        pw, ph = int(W * 1.6), int(H * 1.6)
        want = None if values is None else [v for ln in values for v in ln]
        for attempt in range(12):
            m = self._homography(rng, s, (pw, ph))
            inv = np.linalg.inv(m)
            # Content goes where the page is seen inside the frame, with a margin.
            margin = 0.06 + 0.02 * attempt
            frame_poly = np.float32([[W * margin, H * margin], [W * (1 - margin), H * margin],
                                     [W * (1 - margin), H * (1 - margin)], [W * margin, H * (1 - margin)]])
            pts = cv2.perspectiveTransform(frame_poly[None], inv)[0]
            x0, y0 = np.sort(pts[:, 0])[1], np.sort(pts[:, 1])[1]
            x1, y1 = np.sort(pts[:, 0])[2], np.sort(pts[:, 1])[2]
            region = (int(x0), int(y0), max(10, int(x1 - x0)), max(10, int(y1 - y0)))
            base_h = float(np.mean(s.height)) * unit
            ruled = s.paper == "ruled" and not s.large
            pitch = base_h * float(rng.uniform(1.5, 2.0)) if s.paper == "ruled" else \
                base_h * float(rng.uniform(0.6, 1.0))
            offset = float(rng.uniform(0, pitch))
            lines = self._layout(rng, s, region, unit, values, pitch=pitch if ruled else None)
            if ruled:
                # The writer wrote on the rules: put the rules under the baselines the layout used.
                offset = region[1] % pitch
            truth = self._truth(lines, m)
            if truth is not None and (want is None or [n.value for n in truth] == want):
                break
        else:
            raise RuntimeError(f"could not lay out a {condition} scene for seed {seed} in the frame")
        page = self._paper(rng, (ph, pw), s, pitch, offset)
        alpha = np.zeros((ph, pw), np.float32)
        for line in lines:
            for number in line:
                for p in number:
                    ah, aw = p.alpha.shape
                    sub = alpha[p.y:p.y + ah, p.x:p.x + aw]
                    np.maximum(sub, p.alpha[:sub.shape[0], :sub.shape[1]], out=sub)
        opacity = float(rng.uniform(*s.opacity))
        a = alpha * opacity
        if s.pencil:
            # Graphite is grainy: the ink coverage varies from pixel to pixel.
            a = a * np.clip(rng.normal(1.0, 0.18, a.shape), 0.5, 1.2).astype(np.float32)
        ink = np.array(s.ink, np.float32) + rng.normal(0, 6, 3).astype(np.float32)
        page = page * (1.0 - a[..., None]) + ink * a[..., None]
        if s.page_edge:
            page = self._desk(rng, page, lines)
        return Page(page, lines, m, s, int(rng.integers(2 ** 63)), condition, seed)

    def render(self, page: Page, motion: np.ndarray | None = None,
               noise_rng: np.random.Generator | None = None) -> Scene:
        """Photograph ``page``: warp it into the frame (after an extra frame-space ``motion`` homography, for
        camera shake in videos), then light, blur, noise and compress it.

        Lighting comes from the page's ``light_seed`` so every frame of a video is lit alike; the sensor noise
        comes from ``noise_rng`` when given (a new one per frame), else from that seed too.
        """
        W, H = self.size
        m = page.m if motion is None else motion @ page.m
        truth = self._truth(page.lines, m)
        if truth is None:
            raise ValueError("the camera motion moves a digit out of the frame")
        rng = np.random.default_rng(page.light_seed)
        frame = cv2.warpPerspective(page.image, m, (W, H), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
        frame = self._camera(rng, page.style, frame, noise_rng)
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(page.style).items()}
        return Scene(frame, truth, page.condition, page.seed, params)

    def _truth(self, lines: list[list[list[_Placed]]], m: np.ndarray) -> list[NumberTruth] | None:
        W, H = self.size
        numbers: list[NumberTruth] = []
        for line in lines:
            for number in line:
                digits = []
                for p in number:
                    ys, xs = np.nonzero(p.alpha > INK_LEVEL)
                    pts = np.stack([xs + p.x + 0.5, ys + p.y + 0.5], axis=1).astype(np.float32)
                    q = cv2.perspectiveTransform(pts[None], m)[0]
                    bx0, by0 = math.floor(q[:, 0].min()), math.floor(q[:, 1].min())
                    bx1, by1 = math.ceil(q[:, 0].max()), math.ceil(q[:, 1].max())
                    if bx0 < 2 or by0 < 2 or bx1 > W - 2 or by1 > H - 2:
                        return None
                    digits.append(DigitTruth(p.label, (bx0, by0, bx1 - bx0, by1 - by0), p.mnist_index))
                value = "".join(str(d.digit) for d in digits)
                numbers.append(NumberTruth(value, union_box([d.box for d in digits]), digits))
        return numbers or None

    def _camera(self, rng: np.random.Generator, s: Style, frame: np.ndarray,
                noise_rng: np.random.Generator | None = None) -> np.ndarray:
        H, W = frame.shape[:2]
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        light = np.ones((H, W), np.float32)
        if s.gradient:
            th = float(rng.uniform(0, 2 * math.pi))
            t = (xx * math.cos(th) + yy * math.sin(th))
            t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
            lo = float(rng.uniform(0.45, 0.7))
            light *= lo + (1.0 - lo) * t
        if s.vignette:
            r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
            light *= 1.0 - float(rng.uniform(0.15, 0.35)) * r2 / 2.0
        if s.shadow:
            # A hand or phone: a soft-edged dark region cutting across part of the frame.
            th = float(rng.uniform(0, 2 * math.pi))
            d = (xx - W / 2) * math.cos(th) + (yy - H / 2) * math.sin(th)
            cut = float(rng.uniform(-0.25, 0.25)) * min(W, H)
            soft = float(rng.uniform(3, 25)) * H / 480.0
            inside = 1.0 / (1.0 + np.exp(np.clip(-(d - cut) / soft, -50.0, 50.0)))
            depth = float(rng.uniform(0.4, 0.6))
            light *= 1.0 - depth * inside
        frame = frame * light[..., None]
        if s.blur:
            if rng.random() < 0.5:
                sigma = float(rng.uniform(1.0, 1.8)) * H / 480.0
                frame = cv2.GaussianBlur(frame, (0, 0), sigma)
            else:
                n = int(rng.integers(3, 7))
                k = np.zeros((n, n), np.float32)
                k[n // 2, :] = 1.0 / n
                rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
                k = cv2.warpAffine(k, rot, (n, n))
                frame = cv2.filter2D(frame, -1, k / max(1e-6, float(k.sum())))
        else:
            frame = cv2.GaussianBlur(frame, (0, 0), 0.5)  # no lens is perfectly sharp
        nrng = noise_rng if noise_rng is not None else rng
        frame = frame + nrng.normal(0, s.noise, frame.shape).astype(np.float32)
        out = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
        if s.jpeg is not None:
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(s.jpeg)])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--condition", default="mixed", choices=CONDITIONS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=1, help="scenes to write (seeds seed..seed+count-1)")
    ap.add_argument("--size", default="640x480", help="frame WxH")
    ap.add_argument("--mnist-dir", default=None, help="folder of the MNIST IDX files (default $MNIST_DIR)")
    ap.add_argument("--out", required=True, help="output image path (.png/.jpg); a .json with the truth is "
                                                 "written next to it; with --count, _SEED is appended")
    args = ap.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size must be WxH, not {args.size!r}", file=sys.stderr)
        return 2
    try:
        gen = SceneGenerator(size=(w, h), mnist_dir=args.mnist_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    for seed in range(args.seed, args.seed + args.count):
        sc = gen.scene(args.condition, seed)
        path = out if args.count == 1 else out.with_name(f"{out.stem}_{seed}{out.suffix}")
        if not cv2.imwrite(str(path), sc.image):
            print(f"error: cannot write {path}", file=sys.stderr)
            return 1
        path.with_suffix(".json").write_text(json.dumps(sc.truth(), indent=1))
        print(f"{path}: {' '.join(sc.values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
