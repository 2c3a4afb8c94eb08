"""Accuracy of the whole reader on generated scenes, per condition (targets: every digit right on 90% of images, 98% of digits).

For each condition, ``--n`` scenes (MNIST *test* digits; see tools/scenegen.py) are read by
``edge.reader.Reader`` with the shipped int8 model, and compared with the exact ground truth:

- images all right: the list of number strings equals the truth, in reading order;
- digits right: a truth digit counts when a read digit overlaps its box (IoU >= 0.3, one-to-one) with the
  same value; digits read where there are none are reported as ``extra``;
- numbers right: a truth number counts when a read number with the same value overlaps its box.

Targets: >= 90 % images all right and >= 98 % digits right. Run for the given ``--seed`` and, with
``--fresh``, for a fresh random seed too (printed, so any run can be repeated):

    python tools/bench_scenes.py --n 40 --fresh
    python tools/bench_scenes.py --conditions clean,tilt --n 20 --json /tmp/acc.json --failures /tmp/fail
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))
from scenegen import CONDITIONS, Scene, SceneGenerator  # noqa: E402

from edge.types import overlap_area  # noqa: E402

log = logging.getLogger(__name__)

TARGET_IMAGES = 90.0
TARGET_DIGITS = 98.0
#: Scene seeds of one run are seed * SPAN + i, so runs with different seeds never share scenes.
SPAN = 100_000


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter = overlap_area(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match(truth: list[tuple[Any, tuple[int, int, int, int]]], read: list[tuple[Any, tuple[int, int, int, int]]],
          min_iou: float = 0.3) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of (label, box) pairs by decreasing IoU; returns (truth_i, read_j) pairs."""
    pairs = sorted(((iou(tb, rb), i, j) for i, (_, tb) in enumerate(truth) for j, (_, rb) in enumerate(read)),
                   reverse=True)
    used_t: set[int] = set()
    used_r: set[int] = set()
    out = []
    for v, i, j in pairs:
        if v < min_iou:
            break
        if i in used_t or j in used_r:
            continue
        used_t.add(i)
        used_r.add(j)
        out.append((i, j))
    return out


@dataclass
class Score:
    """What one scene scored (counts, so conditions and runs can be summed)."""

    all_right: bool
    digits: int
    digits_right: int
    extra: int
    numbers: int
    numbers_right: int
    read_values: list[str]
    #: truth digits no read digit overlapped (a segmentation miss, not a misread)
    missed: int = 0
    #: (truth, read) of the overlapping digits that were misread
    confusions: list[tuple[int, int]] = field(default_factory=list)


def score(scene: Scene, numbers: list[Any]) -> Score:
    """Compare a reader's numbers (edge.types.Number) with a scene's truth."""
    t_digits = [(d.digit, d.box) for n in scene.numbers for d in n.digits]
    r_digits = [(d.digit, tuple(d.box)) for n in numbers for d in n.digits]
    pairs = match(t_digits, r_digits)
    right = sum(1 for i, j in pairs if t_digits[i][0] == r_digits[j][0])
    t_nums = [(n.value, n.box) for n in scene.numbers]
    r_nums = [(n.value, tuple(n.box)) for n in numbers]
    n_right = 0
    for tv, tb in t_nums:
        n_right += any(rv == tv and iou(tb, rb) >= 0.3 for rv, rb in r_nums)
    values = [n.value for n in numbers]
    confusions = [(int(t_digits[i][0]), int(r_digits[j][0])) for i, j in pairs if t_digits[i][0] != r_digits[j][0]]
    return Score(values == scene.values, len(t_digits), right, len(r_digits) - len(pairs), len(t_nums), n_right,
                 values, len(t_digits) - len(pairs), confusions)


#: Why an image was not all right, in the order they are named: a digit read as another, a digit not
#: read at all, a digit read where there is none, or every digit right but the numbers grouped or ordered
#: wrongly.
CAUSES = ("misread", "missed", "extra", "grouping")


def causes(s: Score) -> tuple[str, ...]:
    """What went wrong in one scored image (empty when it was all right)."""
    if s.all_right:
        return ()
    found = tuple(c for c, hit in zip(CAUSES[:3], (s.confusions, s.missed, s.extra), strict=True) if hit)
    return found or ("grouping",)


@dataclass
class Tally:
    images: int = 0
    all_right: int = 0
    digits: int = 0
    digits_right: int = 0
    extra: int = 0
    numbers: int = 0
    numbers_right: int = 0
    missed: int = 0
    ms: list[float] = field(default_factory=list)
    confusions: Counter = field(default_factory=Counter)
    #: failed images by their combination of causes, e.g. ("misread",) or ("missed", "extra")
    causes: Counter = field(default_factory=Counter)

    def add(self, s: Score, ms: float) -> None:
        self.images += 1
        self.all_right += s.all_right
        self.digits += s.digits
        self.digits_right += s.digits_right
        self.extra += s.extra
        self.numbers += s.numbers
        self.numbers_right += s.numbers_right
        self.missed += s.missed
        self.confusions.update(s.confusions)
        if not s.all_right:
            self.causes[causes(s)] += 1
        self.ms.append(ms)

    def merge(self, o: Tally) -> None:
        for k in ("images", "all_right", "digits", "digits_right", "extra", "numbers", "numbers_right", "missed"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.ms.extend(o.ms)
        self.confusions.update(o.confusions)
        self.causes.update(o.causes)

    def summary(self) -> dict[str, Any]:
        def pct(a: int, b: int) -> float:
            return round(100.0 * a / b, 2) if b else 0.0
        return {
            "images": self.images,
            "images_all_right_pct": pct(self.all_right, self.images),
            "digits": self.digits,
            "digits_per_image": round(self.digits / self.images, 1) if self.images else 0.0,
            "digits_right_pct": pct(self.digits_right, self.digits),
            "numbers_right_pct": pct(self.numbers_right, self.numbers),
            "extra_digits": self.extra,
            "missed_digits": self.missed,
            "confusions": {f"{t}->{r}": c for (t, r), c in self.confusions.most_common()},
            "failed_images_by_cause": {"+".join(k): c for k, c in self.causes.most_common()},
            # images that the one cause alone spoiled: what fixing it would win back
            "failed_images_only": {c: self.causes[(c,)] for c in CAUSES},
            "read_ms_median": round(float(np.median(self.ms)), 2) if self.ms else 0.0,
        }


def make_reader(model: str, threads: int, config: str | None) -> Any:
    from edge.classify import Classifier
    from edge.reader import Reader

    clf = Classifier(model, num_threads=threads)
    if config is None:
        return Reader(clf)
    from edge.config import load_config
    from edge.daemon import make_reader as reader_from_config

    return reader_from_config(load_config(config), clf)


def draw_failure(scene: Scene, numbers: list[Any]) -> np.ndarray:
    """The scene with truth boxes (green) and read digits (red, with their value) for eyeballing misreads."""
    img = scene.image.copy()
    for n in scene.numbers:
        for d in n.digits:
            x, y, w, h = d.box
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 170, 0), 1)
    for n in numbers:
        for d in n.digits:
            x, y, w, h = (int(v) for v in d.box)
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), (0, 0, 255), 1)
            cv2.putText(img, str(d.digit), (x, max(10, y - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255), 1)
    return img


def run(reader: Any, gen: SceneGenerator, conditions: list[str], n: int, seed: int,
        failures: Path | None = None) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for cond in conditions:
        tally = Tally()
        for i in range(n):
            sc = gen.scene(cond, seed * SPAN + i)
            t = time.perf_counter()
            res = reader.read(sc.image)
            ms = (time.perf_counter() - t) * 1e3
            s = score(sc, res.numbers)
            tally.add(s, ms)
            if failures is not None and not s.all_right:
                failures.mkdir(parents=True, exist_ok=True)
                stem = failures / f"{cond}_{sc.seed}"
                cv2.imwrite(str(stem.with_suffix(".png")), draw_failure(sc, res.numbers))
                t_json = sc.truth()
                t_json["read"] = s.read_values
                stem.with_suffix(".json").write_text(json.dumps(t_json))
        out[cond] = tally
    return out


def table(results: dict[int, dict[str, Tally]]) -> str:
    seeds = list(results)
    head = f"{'condition':<10}" + "".join(f" | seed {s:<6} dig/img  img%   dig%   num%  extra" for s in seeds)
    lines = [head, "-" * len(head)]
    conds = list(next(iter(results.values())))
    totals = {s: Tally() for s in seeds}
    for s in seeds:
        for t in results[s].values():
            totals[s].merge(t)
    for c in conds + ["ALL"]:
        row = f"{c:<10}"
        for s in seeds:
            t = totals[s] if c == "ALL" else results[s][c]
            m = t.summary()
            row += (f" | {'':<11}{m['digits_per_image']:7.1f}  {m['images_all_right_pct']:5.1f}  "
                    f"{m['digits_right_pct']:5.1f}  "
                    f"{m['numbers_right_pct']:5.1f}  {m['extra_digits']:5d}")
        if c == "ALL":
            lines.append("-" * len(head))
        lines.append(row)
    for s in seeds:
        t = totals[s]
        top = ", ".join(f"{a}->{b} x{n}" for (a, b), n in t.confusions.most_common(8)) or "none"
        lines.append(f"seed {s}: {t.missed} truth digits missed (no read digit on them); misreads: {top}")
        why = ", ".join(f"{'+'.join(k)} {n}" for k, n in t.causes.most_common()) or "none"
        lines.append(f"seed {s}: images not all right, by cause: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "digits_int8.tflite"))
    ap.add_argument("--config", default=None, help="read segment, reader and numbers settings from this config.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=30, help="scenes per condition (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    ap.add_argument("--fresh", action="store_true", help="also run a fresh random seed")
    ap.add_argument("--conditions", default=",".join(CONDITIONS),
                    help="comma-separated subset of: " + ", ".join(CONDITIONS))
    ap.add_argument("--size", default="640x480", help="frame WxH (default 640x480)")
    ap.add_argument("--mnist-dir", default=None, help="folder of the MNIST IDX files (default $MNIST_DIR)")
    ap.add_argument("--json", default=None, help="also write the results as JSON to this file")
    ap.add_argument("--failures", default=None, help="write misread scenes (annotated) to this folder")
    args = ap.parse_args(argv)
    conds = [c.strip() for c in args.conditions.split(",") if c.strip()]
    bad = [c for c in conds if c not in CONDITIONS]
    if bad:
        print(f"error: unknown condition {bad[0]!r}; choose from {', '.join(CONDITIONS)}", file=sys.stderr)
        return 2
    if args.n < 1:
        print("error: --n must be at least 1", file=sys.stderr)
        return 2
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"error: --size must be WxH, not {args.size!r}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    try:
        gen = SceneGenerator(size=(w, h), mnist_dir=args.mnist_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        reader = make_reader(args.model, args.threads, args.config)
    except Exception as exc:  # noqa: BLE001 - model/config errors are user errors: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seeds = [args.seed]
    if args.fresh:
        seeds.append(secrets.randbelow(1_000_000) + 1)
    results: dict[int, dict[str, Tally]] = {}
    t0 = time.perf_counter()
    for s in seeds:
        results[s] = run(reader, gen, conds, args.n, s, Path(args.failures) if args.failures else None)
    print(table(results))
    print(f"targets: images all right >= {TARGET_IMAGES:.0f}%, digits right >= {TARGET_DIGITS:.0f}%; "
          f"{args.n} scenes per condition, {time.perf_counter() - t0:.0f} s; "
          f"repeat with --seed {' / --seed '.join(str(s) for s in seeds)}")
    if args.json:
        out: dict[str, Any] = {"model": args.model, "n_per_condition": args.n, "size": [w, h], "runs": {}}
        for s, per in results.items():
            total = Tally()
            for t in per.values():
                total.merge(t)
            out["runs"][str(s)] = {"conditions": {c: t.summary() for c, t in per.items()},
                                   "all": total.summary()}
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
