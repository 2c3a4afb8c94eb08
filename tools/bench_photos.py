"""Benchmark the reader on the labelled real photos (shared/realdata/photos/labels.csv).

Per image: the stored pixels are rotated upright by ``upright_rotation`` (EXIF is ignored), read, and
scored three ways:

- "all right": the concatenation of all digits in reading order equals ``rows`` without spaces;
- digit accuracy: digits matched by an edit-distance alignment of the two digit strings (extra digits
  read count as errors in the "extra" column, not as matches);
- grouping (only where ``grouping`` is ``clear``): the list of numbers equals ``numbers``.

Usage: python tools/bench_photos.py [--photos DIR] [--model FILE] [--only SUBSTR] [--debug-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.classify import Classifier  # noqa: E402
from edge.reader import Reader  # noqa: E402

#: ../shared beside the checkout, as DESIGN.md lays it out (not one machine's absolute path)
DEFAULT_PHOTOS = ROOT.parent / "shared" / "realdata" / "photos"
ROTATIONS = {"90ccw": cv2.ROTATE_90_COUNTERCLOCKWISE, "90cw": cv2.ROTATE_90_CLOCKWISE}


def load_upright(path: Path, rotation: str) -> np.ndarray | None:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        return None
    if rotation in ROTATIONS:
        img = cv2.rotate(img, ROTATIONS[rotation])
    return img


def align(want: str, got: str) -> tuple[int, int, int, int]:
    """Edit-distance alignment -> (matches, substitutions, deletions i.e. missed, insertions i.e. extra)."""
    n, m = len(want), len(got)
    dp = np.zeros((n + 1, m + 1), np.int32)
    dp[:, 0] = np.arange(n + 1)
    dp[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            dp[i, j] = min(dp[i - 1, j] + 1, dp[i, j - 1] + 1, dp[i - 1, j - 1] + (want[i - 1] != got[j - 1]))
    i, j = n, m
    match = sub = dele = ins = 0
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dp[i, j] == dp[i - 1, j - 1] + (want[i - 1] != got[j - 1]):
            if want[i - 1] == got[j - 1]:
                match += 1
            else:
                sub += 1
            i, j = i - 1, j - 1
        elif i > 0 and dp[i, j] == dp[i - 1, j] + 1:
            dele += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return match, sub, dele, ins


def draw(img: np.ndarray, result) -> np.ndarray:
    out = img.copy()
    lw = max(1, max(img.shape[:2]) // 400)
    for num in result.numbers:
        x, y, w, h = num.box
        cv2.rectangle(out, (x, y), (x + w, y + h), (255, 0, 0), lw)
        for d in num.digits:
            x, y, w, h = d.box
            cv2.rectangle(out, (x, y), (x + w, y + h), (0, 0, 255), lw)
            cv2.putText(out, str(d.digit), (x, max(0, y - 2)), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.4, h / 60), (0, 160, 0), lw)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    ap.add_argument("--labels", default="labels.csv")
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "digits_int8.tflite")
    ap.add_argument("--only", action="append", default=[], help="only files containing this (repeatable)")
    ap.add_argument("--debug-dir", type=Path, help="write annotated images and crop sheets here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    labels = args.photos / args.labels
    if not labels.is_file():
        print(f"error: labels file not found: {labels}", file=sys.stderr)
        return 2
    reader = Reader(Classifier(args.model, num_threads=args.threads))
    rows = list(csv.DictReader(labels.open(newline="")))
    if args.only:
        rows = [r for r in rows if any(s in r["file"] for s in args.only)]
    if args.debug_dir:
        args.debug_dir.mkdir(parents=True, exist_ok=True)

    n_img = n_right = n_digits = n_match = n_extra = n_group = n_group_ok = 0
    ms = []
    print(f"{'file':34s} {'ok':>2s} {'match':>7s} {'extra':>5s} {'grp':>3s} {'ms':>6s}  read / want")
    for r in rows:
        want = r["rows"].replace(" ", "")
        img = load_upright(args.photos / r["file"], r["upright_rotation"].strip())
        n_img += 1
        n_digits += len(want)
        if img is None:
            print(f"{r['file']:34s} cannot read image")
            continue
        t = time.perf_counter()
        res = reader.read(img, debug=bool(args.debug_dir))
        ms.append((time.perf_counter() - t) * 1e3)
        got = "".join(num.value for num in res.numbers)
        match, sub, dele, ins = align(want, got)
        ok = got == want
        n_right += ok
        n_match += match
        n_extra += ins
        grp = ""
        if r["grouping"].strip() == "clear":
            n_group += 1
            g_ok = [num.value for num in res.numbers] == r["numbers"].split()
            n_group_ok += g_ok
            grp = "y" if g_ok else "n"
        got_groups = " ".join(num.value for num in res.numbers)
        print(f"{r['file'][:34]:34s} {'Y' if ok else '.':>2s} {match:3d}/{len(want):<3d} {ins:5d} {grp:>3s} "
              f"{ms[-1]:6.0f}  {got_groups} / {r['numbers']}")
        if args.debug_dir:
            cv2.imwrite(str(args.debug_dir / f"{r['file']}.png"), draw(img, res))
            crops = res.debug.get("crops", [])
            if crops:
                tiles = []
                for _box, im28, t3 in crops:
                    tile = cv2.cvtColor(cv2.resize(im28, (56, 56), interpolation=cv2.INTER_NEAREST),
                                        cv2.COLOR_GRAY2BGR)
                    cv2.putText(tile, f"{t3[0][0]}:{t3[0][1]:.2f}", (1, 10), cv2.FONT_HERSHEY_SIMPLEX,
                                0.3, (0, 255, 255), 1)
                    tiles.append(tile)
                while len(tiles) % 12:
                    tiles.append(np.zeros_like(tiles[0]))
                sheet = np.vstack([np.hstack(tiles[i:i + 12]) for i in range(0, len(tiles), 12)])
                cv2.imwrite(str(args.debug_dir / f"{r['file']}.crops.png"), sheet)
    print()
    print(f"images all digits right: {n_right}/{n_img} = {100.0 * n_right / max(n_img, 1):.1f}%")
    print(f"digits right (aligned):  {n_match}/{n_digits} = {100.0 * n_match / max(n_digits, 1):.1f}%"
          f"   extra digits read: {n_extra}")
    print(f"grouping right (clear):  {n_group_ok}/{n_group}")
    if ms:
        print(f"read time ms: median {np.median(ms):.0f}, max {np.max(ms):.0f} (this machine, incl. segmentation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
