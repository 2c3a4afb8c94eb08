"""Read one frame: segment, classify every candidate, split touching digits, assemble numbers.

Two classifier calls per frame at most, each one batched ``invoke()``:

1. every candidate component, normalised to MNIST's convention;
2. for the candidates that look like several touching digits (too wide, or rejected as "not a digit"),
   every piece between candidate cut points and every merge of neighbouring pieces. The best reading of
   such a component is the path through the pieces whose digits are most probable (dynamic programming
   over log-probabilities, with the "not a digit" class taking the probability away from bad cuts) - the
   over-segmentation approach of deployed cheque readers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.normalise import stroke_width, to_mnist
from edge.numbers import NumbersParams, assemble
from edge.quantile import quantile
from edge.segment import Candidate, CropInk, Segmentation, segment
from edge.segment_params import SegmentParams
from edge.types import NOT_A_DIGIT, Box, Digit, FrameResult

log = logging.getLogger(__name__)


@dataclass
class ReaderParams:
    """How crops become digits (part of the config section ``segment:`` / reader options)."""

    #: A digit is kept only when its best class probability is at least this.
    min_confidence: float = 0.5
    #: A crop whose "not a digit" probability is above this is dropped.
    max_not_digit: float = 0.5
    #: Components wider than this many heights (wider than one digit can be) are always searched for
    #: touching digits; narrower ones only when they read badly as one digit. (Searching every component
    #: wider than 0.95 heights changed no reading on the photos or the scenes, at twice the crops.)
    split_aspect: float = 1.3
    #: Narrower components are never split, even when rejected (a single stroke cannot hold two digits).
    min_split_aspect: float = 0.5
    #: Most cut points tried in one component (a run of six touching digits needs a dozen or two).
    max_cuts: int = 24
    #: Most crops classified for the pieces of one frame: beyond it the frame is too cluttered to read
    #: (each crop costs ~25-80 us and the interpreter's memory grows with the batch). The real photos
    #: here need at most ~2,600.
    max_crops: int = 4096
    #: Besides the thin points, cuts are tried every this many heights across the component (0: none):
    #: two digits that overlap have no thin point between them.
    cut_step: float = 0.12
    #: A piece (or merge of pieces) wider than this many heights cannot be one digit.
    max_digit_aspect: float = 1.3
    #: Cuts closer than this many heights to each other or to the component's ends are not tried.
    min_piece: float = 0.12
    #: Log-probability cost of each extra digit on a path: a whole digit beats two halves of equal score.
    digit_cost: float = 0.15
    #: A sliver at either end of a split component (a tail, a serif, at most ``MAX_JUNK_SPAN`` heights wide)
    #: may be passed over as "not a digit" at this log-probability cost per height of its width. Without it
    #: one unreadable tail made every path worse than the whole component, and all its digits were lost.
    #: (Slivers inside a component are not passed over: on ruled pages that let the pieces of a ruling be
    #: read as digits around them.)
    junk_cost: float = 3.0
    #: Neighbouring candidates at most this many heights apart may be one digit in two strokes (a 1's
    #: flag, a 4 or 5 written in two strokes): their merge is read too and kept when it reads better.
    merge_gap: float = 0.12
    #: ... unless both read on their own as digits other than 1 at least this sure: a small 5 written
    #: against a tall 7 is two digits, though together they read as a 7 (1: no such rule). A 1 does not
    #: count: a plain stroke is what a digit written in two strokes breaks into.
    keep_apart_confidence: float = 0.9
    #: Digits shorter than this (working px) are cropped again from the source frame for reading ...
    crop_min_px: int = 28
    #: ... at the resolution that makes them this tall (px) ...
    crop_px: int = 40
    #: ... but never sampled finer than the source (1.0) or this many times finer (interpolated).
    crop_max_zoom: float = 1.0
    #: Put the crops, the mask and the top-3 into FrameResult.debug.
    debug: bool = False

    def __post_init__(self) -> None:
        for name in ("min_confidence", "max_not_digit", "keep_apart_confidence"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("split_aspect", "min_split_aspect", "max_digit_aspect", "min_piece", "merge_gap"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.crop_min_px < 0 or self.crop_px < 8 or self.crop_max_zoom <= 0:
            raise ValueError("crop_min_px must be >= 0, crop_px >= 8 and crop_max_zoom > 0")
        if self.max_cuts < 0 or self.digit_cost < 0 or self.junk_cost < 0 or self.cut_step < 0:
            raise ValueError("max_cuts, digit_cost, junk_cost and cut_step must be >= 0")
        if self.max_crops < 1:
            raise ValueError("max_crops must be >= 1")


@dataclass
class _Piece:
    """A crop to classify: which candidate it belongs to and its column span inside the candidate."""

    cand: int
    span: tuple[int, int]
    box: Box  # source pixels
    ink: np.ndarray


#: what a piece's ink is replaced by once the piece is normalised
_NO_INK = np.zeros((0, 0), np.float32)


@dataclass
class _Read:
    box: Box
    probs: np.ndarray
    image: np.ndarray = field(repr=False)


def stretch(ink: np.ndarray) -> np.ndarray:
    """Stretch a crop's contrast so its stroke core is 1: faint pencil reads like marker."""
    strong = ink[ink > 0.2]
    if strong.size == 0:
        return ink
    top = quantile(strong, 0.8)
    return np.clip(ink / max(top, 0.2), 0.0, 1.0)


def top3(probs: np.ndarray) -> tuple[tuple[int, float], ...]:
    """Best three DIGIT classes (0-9) with their probabilities; on a tie the lower digit comes first, as
    ``np.argmax`` picks it, so the first entry is always the digit shown (int8 probabilities tie often)."""
    digits = probs[:NOT_A_DIGIT] if probs.shape[0] > NOT_A_DIGIT else probs
    order = np.argsort(-digits, kind="stable")[:3]
    return tuple((int(i), float(digits[i])) for i in order)


def digit_score(probs: np.ndarray) -> float:
    """Log-probability of the best digit class: what a path through the pieces maximises."""
    return math.log(max(float(np.max(probs[:NOT_A_DIGIT])), 1e-6))


#: Components whose strokes are wider than this many heights are blobs, not pen strokes: no evenly spaced
#: cuts across them (``ReaderParams.cut_step``).
MAX_STROKE_FOR_GRID = 0.3

#: ... nor across components shorter than this share of the frame's typical digit height.
MIN_HEIGHT_FOR_GRID = 0.6

#: Widest span (in heights) that a split path may pass over as "not a digit" at a component's end.
MAX_JUNK_SPAN = 0.5


def span_score(probs: np.ndarray, width_heights: float, junk_cost: float) -> float:
    """Score of a span on a split path: read as its best digit, or - when it is at most ``MAX_JUNK_SPAN``
    heights wide - passed over as "not a digit" at a cost growing with its width (``ReaderParams.junk_cost``),
    whichever is better."""
    score = digit_score(probs)
    if probs.shape[0] > NOT_A_DIGIT and width_heights <= MAX_JUNK_SPAN:
        score = max(score, math.log(max(float(probs[NOT_A_DIGIT]), 1e-6)) - junk_cost * width_heights)
    return score


def cut_points(own: np.ndarray, height: int, p: ReaderParams, grid: bool = True) -> list[int]:
    """Candidate cut columns in a component mask (bool, cropped to its box), best first then sorted.
    ``grid`` allows the evenly spaced cuts (``ReaderParams.cut_step``).

    Cuts go where little ink crosses a column (projection minima) and where the upper and lower contours
    come close (the neck between two touching loops), the classic over-segmentation points.
    """
    h, w = own.shape
    if w < 3:
        return []
    proj = own.sum(axis=0).astype(np.float32)
    rows = np.arange(h)[:, None]
    has = own.any(axis=0)
    top = np.where(has, np.where(own, rows, h).min(axis=0), h)
    bot = np.where(has, np.where(own, rows, -1).max(axis=0), -1)
    span = np.where(has, bot - top + 1, 0).astype(np.float32)
    # Both profiles low means a thin neck; weight the ink count more, it does not see the loops' holes.
    cost = proj / max(float(proj.max()), 1.0) + 0.5 * span / max(float(h), 1.0)
    cost = cv2.GaussianBlur(cost.reshape(1, -1), (0, 0), sigmaX=max(1.0, 0.03 * height)).ravel()
    margin = max(2, int(p.min_piece * height))
    idx = [
        i for i in range(margin, w - margin)
        if cost[i] <= cost[i - 1] and cost[i] <= cost[i + 1]
    ]
    idx.sort(key=lambda i: cost[i])
    if grid and p.cut_step > 0 and stroke_width(own.astype(np.float32)) <= MAX_STROKE_FOR_GRID * height:
        # Where two digits overlap, both digits' strokes cross the columns: the right cut is at a maximum
        # of the projection, not a minimum. Evenly spaced cuts across the component, after the minima,
        # cover that; the path search decides which are real. (Not across a solid blob - a desk's grain,
        # a smudge: sliced finely, it reads as a row of 1s.)
        step = max(2, int(p.cut_step * height))
        idx += [g for g in range(margin, w - margin + 1, step) if g not in idx]
    chosen: list[int] = []
    for i in idx:
        if all(abs(i - j) >= margin for j in chosen):
            chosen.append(i)
        if len(chosen) >= p.max_cuts:
            break
    return sorted(chosen)


def best_path(n_pieces: int, scores: dict[tuple[int, int], float], cost: float) -> list[tuple[int, int]]:
    """Dynamic programming over pieces 0..n: the spans covering all pieces with the highest total score."""
    best = [-math.inf] * (n_pieces + 1)
    back: list[int] = [-1] * (n_pieces + 1)
    best[0] = 0.0
    for j in range(1, n_pieces + 1):
        for i in range(j):
            s = scores.get((i, j))
            if s is None or best[i] == -math.inf:
                continue
            v = best[i] + s - cost
            if v > best[j]:
                best[j], back[j] = v, i
    if best[n_pieces] == -math.inf:
        return []
    path, j = [], n_pieces
    while j > 0:
        path.append((back[j], j))
        j = back[j]
    return path[::-1]


def both_sure(pa: np.ndarray, pb: np.ndarray, level: float) -> bool:
    """Whether two neighbours each read as a digit other than 1 at least ``level`` sure
    (``ReaderParams.keep_apart_confidence``): then they are two digits and never merged."""
    return level < 1.0 and all(
        float(np.max(q[:NOT_A_DIGIT])) >= level and int(np.argmax(q[:NOT_A_DIGIT])) != 1 for q in (pa, pb))


def merge_pairs(boxes: list[Box], skip: set[int], p: ReaderParams) -> list[tuple[int, int]]:
    """Pairs of neighbouring candidates that could be the two strokes of one digit.

    Side by side (overlapping rows), at most ``merge_gap`` heights apart and together no wider than one
    digit may be.
    """
    pairs = []
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][0])
    for k, a in enumerate(order):
        if a in skip:
            continue
        xa, ya, wa, ha = boxes[a]
        for b in order[k + 1:]:
            xb, yb, wb, hb = boxes[b]
            h = max(ha, hb)
            if xb - (xa + wa) > p.merge_gap * h:
                break
            if b in skip:
                continue
            overlap = min(ya + ha, yb + hb) - max(ya, yb)
            if overlap < 0.5 * min(ha, hb):
                continue
            x0, y0 = min(xa, xb), min(ya, yb)
            x1, y1 = max(xa + wa, xb + wb), max(ya + ha, yb + hb)
            if x1 - x0 <= p.max_digit_aspect * (y1 - y0) * 0.8:
                pairs.append((a, b))
    return pairs


class Reader:
    """One frame in, digits and numbers out. Holds no per-frame state; safe to reuse frame after frame."""

    def __init__(self, classifier: Any, segment_params: SegmentParams | None = None,
                 numbers_params: NumbersParams | None = None, params: ReaderParams | None = None) -> None:
        self.classifier = classifier
        self.segment_params = segment_params or SegmentParams()
        self.numbers_params = numbers_params or NumbersParams()
        self.params = params or ReaderParams()

    # ------------------------------------------------------------------------------------------ crops

    def _crop(self, seg: Segmentation, cand: Candidate) -> CropInk:
        p = self.params
        return seg.crop(cand, p.crop_min_px, p.crop_px, p.crop_max_zoom)

    @staticmethod
    def _piece(ci: int, crop: CropInk, a: int, b: int, shape: tuple[int, int]) -> _Piece | None:
        """The ink of crop columns a..b of a candidate, restricted to its own strokes (box in source px)."""
        sub = crop.own[:, a:b]
        rows = np.nonzero(sub.any(axis=1))[0]
        if rows.size == 0:
            return None
        r0, r1 = int(rows[0]), int(rows[-1]) + 1
        keep = cv2.dilate(sub[r0:r1].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
        ink = crop.ink[r0:r1, a:b] * keep
        return _Piece(ci, (a, b), crop.to_source((a, r0, b - a, r1 - r0), shape), ink)

    def merge_piece(self, seg: Segmentation, a: int, b: int) -> _Piece:
        """Neighbouring candidates ``a`` and ``b`` read as one (a digit written in two strokes)."""
        ca, cb = seg.candidates[a], seg.candidates[b]
        x0, y0 = min(ca.box[0], cb.box[0]), min(ca.box[1], cb.box[1])
        x1 = max(ca.box[0] + ca.box[2], cb.box[0] + cb.box[2])
        y1 = max(ca.box[1] + ca.box[3], cb.box[1] + cb.box[3])
        both = Candidate((x0, y0, x1 - x0, y1 - y0), ca.labels + cb.labels)
        return _Piece(-1, (a, b), seg.to_source(both.box), self._crop(seg, both).ink)

    def split_pieces(self, seg: Segmentation, ci: int, crop: CropInk) -> tuple[list[int], int, list[_Piece]]:
        """Candidate ``ci`` cut for touching digits: its cut columns (ends included), its ink height, and a
        piece for every span between two cuts narrow enough to be one digit (not the whole, which the
        first stage reads)."""
        p = self.params
        rows = np.nonzero(crop.own.any(axis=1))[0]
        h = int(rows[-1] - rows[0] + 1) if rows.size else crop.own.shape[0]
        # Evenly spaced cuts only across components as tall as the frame's digits: the fragments of a desk's
        # grain or of a shadow's edge, sliced finely, read as rows of 1s.
        grid = seg.candidates[ci].box[3] >= MIN_HEIGHT_FOR_GRID * seg.typical_height
        cuts = [0, *cut_points(crop.own, h, p, grid), crop.own.shape[1]]
        pieces: list[_Piece] = []
        for i in range(len(cuts) - 1):
            for j in range(i + 1, len(cuts)):
                if (i, j) == (0, len(cuts) - 1):
                    continue
                if cuts[j] - cuts[i] > p.max_digit_aspect * h:
                    break
                piece = self._piece(ci, crop, cuts[i], cuts[j], seg.source_shape)
                if piece is not None:
                    piece.span = (i, j)
                    pieces.append(piece)
        return cuts, h, pieces

    def _normalise(self, inks: Iterable[np.ndarray]) -> np.ndarray:
        """The inks as one (N, 28, 28) batch. Each ink may be dropped as soon as it is normalised: pass a
        generator that makes them one at a time (the crops of a frame's long thin strokes, held together,
        ran to hundreds of MB)."""
        images = [to_mnist(stretch(i)) for i in inks]
        return np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)

    @staticmethod
    def _take(pieces: list[_Piece], images: list[np.ndarray], found: Iterable[_Piece]) -> None:
        """Append ``found`` to ``pieces`` and each one's normalised ink to ``images``, dropping the ink."""
        for pc in found:
            images.append(to_mnist(stretch(pc.ink)))
            pc.ink = _NO_INK
            pieces.append(pc)

    # ------------------------------------------------------------------------------------------ read

    def read(self, image: np.ndarray, debug: bool | None = None) -> FrameResult:
        """Read all digits and numbers in a gray or BGR frame (boxes in source pixels)."""
        p = self.params
        want_debug = p.debug if debug is None else debug
        timings: dict[str, float] = {"segment": 0.0, "normalise": 0.0, "infer": 0.0, "assemble": 0.0}
        if image is None or image.size == 0 or min(image.shape[:2]) < 2:
            return FrameResult(numbers=[], timings=timings)
        t = time.perf_counter()
        seg = segment(image, self.segment_params)
        timings["segment"] = (time.perf_counter() - t) * 1e3
        if seg.cluttered:
            return FrameResult(numbers=[], timings=timings, cluttered=True)

        # Stage 1: every candidate whole.
        t = time.perf_counter()
        # One crop at a time: a candidate's crop is made again if it is searched below.
        batch = self._normalise(self._crop(seg, c).ink for c in seg.candidates)
        timings["normalise"] += (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        probs = self.classifier.predict(batch)
        timings["infer"] += (time.perf_counter() - t) * 1e3

        reads: list[list[_Read]] = []
        search: list[int] = []
        for i, c in enumerate(seg.candidates):
            _, _, w, h = c.box
            pr = probs[i]
            whole = _Read(seg.to_source(c.box), pr, batch[i])
            reads.append([whole])
            aspect = w / max(h, 1)
            bad = int(np.argmax(pr)) == NOT_A_DIGIT or float(np.max(pr[:NOT_A_DIGIT])) < p.min_confidence
            if aspect > p.split_aspect or (bad and aspect > p.min_split_aspect):
                search.append(i)

        # Stage 2: pieces and merges of pieces of the candidates that may hold touching digits, and
        # merges of neighbouring candidates that may be one digit in two strokes.
        pairs = merge_pairs([c.box for c in seg.candidates], set(search), p)
        if search or pairs:
            t = time.perf_counter()
            pieces: list[_Piece] = []
            images: list[np.ndarray] = []  # pieces[k] normalised; a piece's ink is dropped once it is
            layouts: dict[int, list[int]] = {}
            heights: dict[int, int] = {}
            self._take(pieces, images, (self.merge_piece(seg, a, b) for a, b in pairs))
            for ci in search:
                cuts, h, parts = self.split_pieces(seg, ci, self._crop(seg, seg.candidates[ci]))
                layouts[ci], heights[ci] = cuts, max(h, 1)
                if len(pieces) + len(parts) > p.max_crops:
                    timings["normalise"] += (time.perf_counter() - t) * 1e3
                    return FrameResult(numbers=[], timings=timings, cluttered=True)
                self._take(pieces, images, parts)
            batch2 = np.stack(images) if images else np.zeros((0, 28, 28), np.uint8)
            timings["normalise"] += (time.perf_counter() - t) * 1e3
            t = time.perf_counter()
            probs2 = self.classifier.predict(batch2)
            timings["infer"] += (time.perf_counter() - t) * 1e3
            for ci in search:
                cuts, hh = layouts[ci], heights[ci]
                n = len(cuts) - 1
                scores: dict[tuple[int, int], float] = {}
                found: dict[tuple[int, int], _Read] = {}
                whole = reads[ci][0]
                scores[(0, n)] = digit_score(whole.probs)
                found[(0, n)] = whole
                for k, pc in enumerate(pieces):
                    if pc.cand == ci:
                        a, b = pc.span
                        # only a sliver at either end (a tail, a serif) may be passed over
                        width_heights = (cuts[b] - cuts[a]) / hh if a == 0 or b == n else math.inf
                        scores[pc.span] = span_score(probs2[k], width_heights, p.junk_cost)
                        found[pc.span] = _Read(pc.box, probs2[k], batch2[k])
                path = best_path(n, scores, p.digit_cost)
                if path:
                    reads[ci] = [found[s] for s in path]
            # Merges: best gain first; each candidate joins at most one merge.
            gains = []
            for k, pc in enumerate(pieces):
                if pc.cand != -1:
                    continue
                a, b = pc.span
                split = digit_score(reads[a][0].probs) + digit_score(reads[b][0].probs) - p.digit_cost
                gain = digit_score(probs2[k]) - split
                if both_sure(reads[a][0].probs, reads[b][0].probs, p.keep_apart_confidence):
                    continue
                if gain > 0 and int(np.argmax(probs2[k])) != NOT_A_DIGIT and float(np.max(probs2[k])) >= p.min_confidence:
                    gains.append((gain, k, a, b))
            used: set[int] = set()
            for _, k, a, b in sorted(gains, reverse=True):
                if a in used or b in used:
                    continue
                used |= {a, b}
                reads[a] = [_Read(pieces[k].box, probs2[k], batch2[k])]
                reads[b] = []

        t = time.perf_counter()
        digits: list[Digit] = []
        shown = []
        for group in reads:
            for r in group:
                pr = r.probs
                best = int(np.argmax(pr[:NOT_A_DIGIT]))
                conf = float(pr[best])
                t3 = top3(pr)
                src_box = r.box
                if want_debug:
                    shown.append((src_box, r.image, t3))
                if pr.shape[0] > NOT_A_DIGIT and float(pr[NOT_A_DIGIT]) > p.max_not_digit:
                    continue
                if conf < p.min_confidence:
                    continue
                digits.append(Digit(digit=best, confidence=conf, box=src_box, top3=t3))
        numbers = assemble(digits, self.numbers_params)
        timings["assemble"] = (time.perf_counter() - t) * 1e3
        result = FrameResult(numbers=numbers, timings=timings)
        if want_debug:
            result.debug = {"mask": seg.mask_at_source(), "crops": shown}
        return result
