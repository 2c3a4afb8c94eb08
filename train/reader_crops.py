"""Crops as the reader itself cuts them, from generated scenes of MNIST *training* digits.

The reader classifies whole components, every span between its cut points inside components that may
hold touching digits, and merges of neighbouring components. Most spans are not one digit: a digit and a
half, the tail of one digit with the head of the next. The synthetic "not a digit" class (``train/junk.py``)
imitates them; these are the real thing (Bromley & Denker's "rubbish" crops from one's own segmenter).
Each crop is labelled by the scene's truth: the digit whose ink box it matches (IoU >= ``DIGIT_IOU``),
"not a digit" when it matches none (best IoU < ``JUNK_IOU``), left out in between.

No model is involved: every candidate is cut wherever the reader could cut it (as if every whole read
were bad), so the crops do not depend on the model being trained and the set is reproducible from the
seed. The scenes are drawn from the training digits only; the validation digits and the MNIST test set
(which the scene benchmark uses) never appear.

Usage: ``python -m train.reader_crops --out artifacts/reader_crops.npz [--scenes N] [--seed S]``, then
``python -m train --reader-crops artifacts/reader_crops.npz``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from edge.cli import OneLineParser
from edge.reader import Reader, ReaderParams, merge_pairs
from edge.segment import segment
from edge.types import overlap_area

from .data import DataError, load_mnist
from .junk import NOT_A_DIGIT

ROOT = Path(__file__).resolve().parent.parent
#: A crop is a digit when its ink box holds at least this share of that digit's box ...
DIGIT_RECALL = 0.9
#: ... and that digit fills at least this share of the crop's box (a digit with a sliver of its neighbour).
DIGIT_PRECISION = 0.8
#: It is "not a digit" when no digit both reaches this share of its box in the crop (a half digit) ...
JUNK_RECALL = 0.7
#: ... and fills this share of the crop (a digit and a half); crops in between are left out.
JUNK_PRECISION = 0.6
#: Digits held out of training for validation (``python -m train`` keeps the last 5,000).
N_VAL = 5000


def label_for(box: tuple[int, int, int, int], truth: list[tuple[int, tuple[int, int, int, int]]]) -> int | None:
    """The class a crop with this source box is trained as: a digit, NOT_A_DIGIT, or None (ambiguous)."""
    area = max(1, box[2] * box[3])
    junk = True
    for digit, tbox in truth:
        inter = overlap_area(box, tbox)
        recall, precision = inter / max(1, tbox[2] * tbox[3]), inter / area
        if recall >= DIGIT_RECALL and precision >= DIGIT_PRECISION:
            return digit
        if recall >= JUNK_RECALL and precision >= JUNK_PRECISION:
            junk = False
    return NOT_A_DIGIT if junk else None


def scene_crops(image: np.ndarray, truth: list[tuple[int, tuple[int, int, int, int]]],
                params: ReaderParams | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Every crop the reader could classify in one frame (normalised 28x28 uint8) with its label."""
    p = params or ReaderParams()
    reader = Reader(None, params=p)
    seg = segment(image, reader.segment_params)
    if seg.cluttered:
        return [], []
    crops = [reader._crop(seg, c) for c in seg.candidates]
    inks = [crop.ink for crop in crops]
    boxes = [seg.to_source(c.box) for c in seg.candidates]
    pieces = [reader.merge_piece(seg, a, b) for a, b in merge_pairs([c.box for c in seg.candidates], set(), p)]
    for ci, (c, crop) in enumerate(zip(seg.candidates, crops, strict=True)):
        _, _, w, h = c.box
        if w / max(h, 1) > p.min_split_aspect:
            pieces.extend(reader.split_pieces(seg, ci, crop)[2])
    inks += [pc.ink for pc in pieces]
    boxes += [pc.box for pc in pieces]
    out, labels = [], []
    keep = [(ink, label_for(box, truth)) for ink, box in zip(inks, boxes, strict=True)]
    keep = [(ink, lab) for ink, lab in keep if lab is not None]
    if keep:
        batch = reader._normalise([ink for ink, _ in keep])
        out = list(batch)
        labels = [lab for _, lab in keep]
    return out, labels


#: "Not a digit" crops kept per scene, drawn at random (a scene yields a few hundred, digits a dozen or two).
JUNK_PER_SCENE = 40


def build(images: np.ndarray, labels: np.ndarray, n_scenes: int, seed: int,
          progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Crops and labels from ``n_scenes`` scenes, every scene condition in turn."""
    sys.path.insert(0, str(ROOT / "tools"))
    from scenegen import CONDITIONS, SceneGenerator

    gen = SceneGenerator(images, labels)
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    t0 = time.monotonic()
    for i in range(n_scenes):
        cond = CONDITIONS[i % len(CONDITIONS)]
        sc = gen.scene(cond, seed * 1_000_003 + i)
        truth = [(d.digit, tuple(d.box)) for n in sc.numbers for d in n.digits]
        x, y = scene_crops(sc.image, truth)
        junk = [k for k, lab in enumerate(y) if lab == NOT_A_DIGIT]
        drop = set(rng.permutation(junk)[JUNK_PER_SCENE:].tolist()) if len(junk) > JUNK_PER_SCENE else set()
        xs.extend(c for k, c in enumerate(x) if k not in drop)
        ys.extend(lab for k, lab in enumerate(y) if k not in drop)
        if progress and ((i + 1) % 50 == 0 or i + 1 == n_scenes):
            rate = (i + 1) / max(time.monotonic() - t0, 1e-6)
            print(f"\rreader crops: {i + 1}/{n_scenes} scenes, {len(ys)} crops, {rate:.0f} scenes/s",
                  end="" if i + 1 < n_scenes else "\n", file=sys.stderr, flush=True)
    if not ys:
        return np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)
    return np.stack(xs).astype(np.uint8), np.array(ys, np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python -m train.reader_crops", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="artifacts/reader_crops.npz", help="where to write the crops (.npz)")
    ap.add_argument("--scenes", type=int, default=3000, help="generated scenes (default 3000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: $MNIST_DIR, else the download cache)")
    args = ap.parse_args(argv)
    if args.scenes < 1:
        ap.error(f"--scenes must be at least 1, not {args.scenes}")
    try:
        x_all, y_all = load_mnist(args.data_dir, "train")
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    x, y = build(x_all[:-N_VAL], y_all[:-N_VAL], args.scenes, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, x=x, y=y)
    tmp.replace(out)
    counts = np.bincount(y, minlength=NOT_A_DIGIT + 1)
    print(f"wrote {out}: {len(y)} crops, {counts[NOT_A_DIGIT]} not a digit, digits {counts[:NOT_A_DIGIT].tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
