"""What the reader makes of words: false numbers from text in view (a known weakness, measured).

The reader reads numbers, not text. A word in joined handwriting is one component of touching strokes, and
the touching-digit search cuts it into pieces that read as digits (an "l" is a 1, an "o" a 0); the "not a
digit" class rejects some letters, not a whole word. This measures how often, on pages drawn by the scene
generator (tools/scenegen.py: its paper, pens, camera and light), with words written by OpenCV's putText
(one sans-serif face in OpenCV 5, plain, bold and slanted) - print, not handwriting, for want of a set of
handwritten letters here; a printed word's letters stand apart, so they are read one by one:

- **words**: pages of words and no digit at all; every number read is false. Reported: pages with any
  number read, and numbers read per page (the goal: none).
- **units**: the generator's numbers (MNIST test digits) with a word written after the last number of each
  line, as people label a reading ("4721 kWh"). Reported: the numbers read right (value and place, as
  tools/bench_scenes.py counts them), beside the same figure for the same pages without the words, and
  the numbers read where there is none (from the words).

``source.region`` keeps words out of what is read (README, "Configuration"); this tool measures the whole
frame. The words are printed, so the figures show the weakness, not a rate to expect from handwriting.

    python tools/bench_words.py --n 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from bench_scenes import iou, make_reader, score  # noqa: E402
from scenegen import Page, SceneGenerator, style_for  # noqa: E402

#: how the words are written: (stroke width factor, slant as a shear of x by y). OpenCV 5's putText draws
#: one sans-serif face whatever Hershey font is asked for, so the variants are of weight and slant.
STYLES = {
    "print": (1.0, 0.0),
    "print_bold": (1.8, 0.0),
    "print_slanted": (1.0, 0.3),
}
FONT = cv2.FONT_HERSHEY_SIMPLEX
#: the paper, pen and light of the pages (scenegen conditions without effects that need digits to place)
CONDITIONS = ("clean", "gradient", "ruled", "pencil", "blue_pen", "shadow")
WORDS = ("the", "water", "meter", "was", "read", "on", "monday", "and", "again", "after", "lunch", "please",
         "note", "gas", "reading", "below", "remember", "milk", "bread", "eggs", "call", "home", "total",
         "paid", "when", "where", "which", "house", "garden", "kitchen")
UNITS = ("kWh", "litres", "kg", "metres", "euro", "total", "cm", "gas", "water", "mm", "hours", "km")


def _scale(h: float) -> float:
    """putText's scale that makes a capital ``h`` px tall."""
    return h / max(cv2.getTextSize("H", FONT, 1.0, 1)[0][1], 1)


def _text_alpha(shape: tuple[int, int], items: list[tuple[str, float, float, float]], weight: float,
                slant: float, stroke_frac: float) -> np.ndarray:
    """Coverage (0-1) of words ``(text, x, baseline_y, cap_height)`` drawn on a page of ``shape``, each
    word leaning right by ``slant`` (x moved by slant x height above its baseline)."""
    alpha = np.zeros(shape, np.float32)
    for text, x, y, h in items:
        thick = max(1, round(weight * stroke_frac * h))
        (tw, th), base = cv2.getTextSize(text, FONT, _scale(h), thick)
        pad = thick + 2
        lean = int(math.ceil(slant * (th + pad)))
        word = np.zeros((th + base + 2 * pad, tw + 2 * pad + lean), np.uint8)
        base_y = th + pad
        cv2.putText(word, text, (pad, base_y), FONT, _scale(h), 255, thick, cv2.LINE_AA)
        if slant:
            shear = np.float32([[1, -slant, slant * base_y], [0, 1, 0]])
            word = cv2.warpAffine(word, shear, (word.shape[1], word.shape[0]), flags=cv2.INTER_LINEAR)
        x0, y0 = round(x) - pad, round(y) - base_y
        sub = alpha[max(0, y0):y0 + word.shape[0], max(0, x0):x0 + word.shape[1]]
        part = word[max(0, -y0):max(0, -y0) + sub.shape[0], max(0, -x0):max(0, -x0) + sub.shape[1]]
        np.maximum(sub, part.astype(np.float32) / 255.0, out=sub)
    return alpha


def _ink(page: np.ndarray, alpha: np.ndarray, style: Any, rng: np.random.Generator) -> np.ndarray:
    """Lay ink of the style's pen on the page where ``alpha`` says (as scenegen lays its digits)."""
    a = alpha * float(rng.uniform(*style.opacity))
    if style.pencil:
        a = a * np.clip(rng.normal(1.0, 0.18, a.shape), 0.5, 1.2).astype(np.float32)
    ink = np.array(style.ink, np.float32) + rng.normal(0, 6, 3).astype(np.float32)
    return page * (1.0 - a[..., None]) + ink * a[..., None]


def words_page(gen: SceneGenerator, style: str, seed: int) -> np.ndarray:
    """A frame of a page with lines of words and no digit."""
    rng = np.random.default_rng([seed, list(STYLES).index(style), 1])
    cond = str(rng.choice(CONDITIONS))
    s = style_for(cond, rng)
    s.large = False
    W, H = gen.size
    pw, ph = int(W * 1.6), int(H * 1.6)
    m = gen._homography(rng, s, (pw, ph))
    inv = np.linalg.inv(m)
    corners = cv2.perspectiveTransform(np.float32([[[W * 0.06, H * 0.06], [W * 0.94, H * 0.94]]]), inv)[0]
    (x0, y0), (x1, y1) = corners
    h = float(rng.uniform(*s.height)) * H / 480.0
    pitch = h * float(rng.uniform(1.8, 2.4))
    items = []
    y = y0 + h * 1.2
    while y < y1:
        x = x0 + float(rng.uniform(0, 2)) * h
        while True:
            word = str(rng.choice(WORDS))
            w = cv2.getTextSize(word, FONT, _scale(h), 1)[0][0]
            if x + w > x1:
                break
            items.append((word, x, y, h))
            x += w + float(rng.uniform(0.6, 1.2)) * h
        y += pitch
    page = gen._paper(rng, (ph, pw), s, pitch, float(rng.uniform(0, pitch)))
    page = _ink(page, _text_alpha((ph, pw), items, *STYLES[style], float(rng.uniform(*s.stroke))), s, rng)
    frame = cv2.warpPerspective(page, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return gen._camera(rng, s, frame)


def with_units(gen: SceneGenerator, style: str, seed: int) -> tuple[Any, Any]:
    """A generated scene whose every line ends in a unit word after its last number, and the same scene
    without the words (scenegen.Scene each)."""
    rng = np.random.default_rng([seed, list(STYLES).index(style), 2])
    cond = str(rng.choice(CONDITIONS))
    page: Page = gen.compose(cond, seed)
    plain = gen.render(page)  # the same scene as gen.scene(cond, seed), composed once for both
    items = []
    for line in page.lines:
        last = line[-1][-1]
        hs = [p.alpha.shape[0] for n in line for p in n]
        h = float(np.median(hs)) * 0.95
        x = last.x + last.alpha.shape[1] + float(rng.uniform(0.5, 1.0)) * h
        baseline = last.y + last.alpha.shape[0]
        items.append((str(rng.choice(UNITS)), x, baseline, h))
    alpha = _text_alpha(page.image.shape[:2], items, *STYLES[style], float(rng.uniform(*page.style.stroke)))
    page.image = _ink(page.image, alpha, page.style, rng)
    return gen.render(page), plain


@dataclass
class Tally:
    pages: int = 0
    pages_with_numbers: int = 0
    numbers: int = 0
    truth_numbers: int = 0
    numbers_right: int = 0
    #: the same numbers read right on the same page without the words
    numbers_right_plain: int = 0
    false_numbers: int = 0
    cluttered: int = 0


def run(reader: Any, gen: SceneGenerator, n: int, seed: int) -> dict[str, dict[str, Tally]]:
    out: dict[str, dict[str, Tally]] = {}
    for name in STYLES:
        words, units = Tally(), Tally()
        for i in range(n):
            res = reader.read(words_page(gen, name, seed * 100_000 + i))
            words.pages += 1
            words.cluttered += res.cluttered
            words.numbers += len(res.numbers)
            words.pages_with_numbers += bool(res.numbers)
            sc, plain = with_units(gen, name, seed * 100_000 + i)
            units.numbers_right_plain += score(plain, reader.read(plain.image).numbers).numbers_right
            res = reader.read(sc.image)
            units.pages += 1
            units.cluttered += res.cluttered
            sco = score(sc, res.numbers)
            units.truth_numbers += sco.numbers
            units.numbers_right += sco.numbers_right
            units.numbers += len(res.numbers)
            units.false_numbers += sum(1 for r in res.numbers
                                       if not any(iou(tuple(r.box), t.box) > 0 for t in sc.numbers))
            units.pages_with_numbers += bool(res.numbers)
        out[name] = {"words": words, "units": units}
        print(f"  {name}: done", file=sys.stderr, flush=True)
    return out


def pct(a: int, b: int) -> str:
    return f"{100.0 * a / b:.1f}%" if b else "-"


def table(results: dict[str, dict[str, Tally]]) -> str:
    rows = [f"{'words':<14}{'words: pages with a number':>28}{'numbers/page':>14}{'cluttered':>11}"
            f"{'units: numbers right':>22}{'(without the words)':>21}{'false numbers/page':>20}"]
    for name, r in results.items():
        w, u = r["words"], r["units"]
        rows.append(f"{name:<14}{pct(w.pages_with_numbers, w.pages):>28}{w.numbers / max(w.pages, 1):>14.1f}"
                    f"{w.cluttered:>11}{pct(u.numbers_right, u.truth_numbers):>22}"
                    f"{pct(u.numbers_right_plain, u.truth_numbers):>21}"
                    f"{u.false_numbers / max(u.pages, 1):>20.2f}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20, help="pages per style and part (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default=str(ROOT / "models" / "digits_int8.tflite"))
    ap.add_argument("--config", default=None, help="read with this config's reader settings")
    ap.add_argument("--mnist-dir", default=None)
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error("--n must be at least 1")
    reader = make_reader(args.model, 1, args.config)
    gen = SceneGenerator(mnist_dir=args.mnist_dir)
    results = run(reader, gen, args.n, args.seed)
    print(f"words and units, {args.n} pages per style and part, seed {args.seed} (tools/bench_words.py)")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({k: {p: vars(t) for p, t in v.items()} for k, v in results.items()},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
