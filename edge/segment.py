"""Find candidate digits in a camera frame: ink map, binary mask, ruling removal, components.

Everything here is pure (arrays in, arrays out) and works at a *working resolution*: large frames are
shrunk so the longest side is at most ``max_side`` and tiny crops are enlarged to ``min_side``; all sizes
are therefore relative to the frame rather than fixed pixel counts. Boxes in :class:`Segmentation` are in
working pixels; :meth:`Segmentation.to_source` maps them back.

Pipeline (why each step is there):

1. polarity: dark pen on paper or light ink on a dark background, detected from the sign of the strong
   local residuals (shadows give both signs, ink only one);
2. background: a morphological close at low resolution removes the strokes and keeps the shading (close
   keeps the edges of large shadows), then it is divided out - this handles shadows, vignetting and colour
   casts, per colour channel;
3. threshold: hysteresis between a noise-derived low level and a stroke-derived high level, so blank paper
   stays blank and faint pencil survives;
4. rulings: long thin horizontal/vertical structures are removed and the gaps they leave in strokes closed;
5. components: specks dropped, pieces of one digit merged (a 5's flag, a two-stroke 4, a dotted 0),
   size filtered relative to the typical digit height of the frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.types import Box

log = logging.getLogger(__name__)


@dataclass
class SegmentParams:
    """Parameters of the segmentation (config section ``segment:``). Sizes are relative unless named *_px."""

    #: Frames larger than this (longest side, px) are shrunk first; bounds the cost on a Raspberry Pi.
    max_side: int = 1280
    #: Frames smaller than this (longest side, px) are enlarged first, so morphology has room on tiny crops.
    min_side: int = 400
    #: "auto" detects the polarity; "dark" = dark ink on light paper; "light" = light ink on dark background.
    polarity: str = "auto"
    #: Background is estimated at this resolution (longest side, px); strokes up to ~close_size/this of the
    #: frame wide are removed by the close.
    background_side: int = 160
    #: Size (px at background resolution) of the closing element that erases strokes from the background.
    close_size: int = 15
    #: Minimum darkness (fraction of the paper brightness) that can count as ink at all.
    min_contrast: float = 0.08
    #: Low hysteresis level as a multiple of the noise level (robust sigma of the darkness map).
    noise_k: float = 4.0
    #: High hysteresis level as a fraction of the typical stroke darkness; a component must reach it.
    stroke_frac: float = 0.5
    #: Remove ruled/squared paper lines.
    remove_lines: bool = True
    #: A ruling is at least this fraction of the frame's width (height for vertical lines) long ...
    line_min_frac: float = 0.3
    #: ... and at least this many times longer than it is thick (keeps a digit's long bar).
    line_min_aspect: float = 25.0
    #: Smallest digit height in working pixels.
    min_digit_px: int = 10
    #: Largest digit height as a fraction of the frame height.
    max_digit_frac: float = 0.97
    #: Components below this fraction of the typical digit height are dropped (after merging pieces).
    min_rel_height: float = 0.28
    #: Components with fewer pixels than this fraction of (typical height)^2 are specks.
    speck_area_frac: float = 0.01
    #: Widest candidate (width / height); wider ones are rulings or scribbles, not touching digits.
    max_aspect: float = 6.0
    #: Pieces merge when they overlap in x by this fraction of the narrower one ...
    merge_overlap: float = 0.5
    #: ... and are at most this fraction of the typical digit height apart vertically ...
    merge_gap: float = 0.3
    #: ... and the merged box is at most this many typical heights tall.
    merge_max_height: float = 1.3
    #: Candidates whose ink is fainter than this fraction of the frame's typical ink are dropped: the
    #: soft edge of a hand's shadow leaves a faint band that is not writing.
    min_rel_contrast: float = 0.5
    #: Components that lie along the frame border for more than this fraction of their extent there are
    #: page edges or shadows, not digits.
    border_max_frac: float = 0.5

    def __post_init__(self) -> None:
        if self.polarity not in ("auto", "dark", "light"):
            raise ValueError(f"polarity must be auto, dark or light, not {self.polarity!r}")
        for name in ("max_side", "min_side", "background_side", "close_size", "min_digit_px"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")
        for name in ("min_contrast", "stroke_frac", "line_min_frac", "max_digit_frac", "min_rel_height",
                     "speck_area_frac", "merge_overlap", "border_max_frac", "min_rel_contrast"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("noise_k", "line_min_aspect", "max_aspect", "merge_gap", "merge_max_height"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


@dataclass
class Candidate:
    """One candidate digit (or group of touching digits): box in working pixels and its component labels."""

    box: Box
    labels: tuple[int, ...]


@dataclass
class Segmentation:
    """Result of :func:`segment`. ``ink`` is float32 0..1 (ink high), ``mask`` uint8 0/255, both at working size."""

    ink: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    candidates: list[Candidate]
    #: working size / source size
    scale: float
    dark_ink: bool
    typical_height: float
    source_shape: tuple[int, int] = (0, 0)
    timings: dict[str, float] = field(default_factory=dict)

    def to_source(self, box: Box) -> Box:
        """Map a working-pixel box back to source pixels (clipped to the frame)."""
        x, y, w, h = box
        s = self.scale
        H, W = self.source_shape
        x0, y0 = int(np.floor(x / s)), int(np.floor(y / s))
        x1, y1 = int(np.ceil((x + w) / s)), int(np.ceil((y + h) / s))
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(W, x1), min(H, y1)
        return x0, y0, max(1, x1 - x0), max(1, y1 - y0)

    def mask_at_source(self) -> np.ndarray:
        H, W = self.source_shape
        if self.mask.shape == (H, W):
            return self.mask
        return cv2.resize(self.mask, (W, H), interpolation=cv2.INTER_NEAREST)

    def candidate_ink(self, cand: Candidate, pad: int = 2) -> np.ndarray:
        """The ink map inside the candidate's box, restricted to its own components (neighbours blanked)."""
        x, y, w, h = cand.box
        H, W = self.ink.shape
        x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
        lab = self.labels[y0:y1, x0:x1]
        own = np.isin(lab, cand.labels).astype(np.uint8)
        # Keep the anti-aliased rim that the binary mask cut off, but not a neighbour's stroke.
        own = cv2.dilate(own, np.ones((3, 3), np.uint8))
        return self.ink[y0:y1, x0:x1] * own


# ----------------------------------------------------------------------------------------------- helpers


def working_scale(shape: tuple[int, ...], p: SegmentParams) -> float:
    side = max(shape[0], shape[1])
    if side > p.max_side:
        return p.max_side / side
    if side < p.min_side:
        return p.min_side / side
    return 1.0


def resize_to_working(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return img
    h, w = img.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, size, interpolation=interp)


def to_gray(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return img
    if img.shape[2] == 4:
        img = img[:, :, :3]
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def detect_dark_ink(gray: np.ndarray) -> bool:
    """True for dark ink on light paper. Ink gives strong local residuals of one sign; shading gives both."""
    h, w = gray.shape
    s = 128 / max(h, w)
    small = cv2.resize(gray, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    k = max(3, (max(small.shape) // 6) | 1)
    bg = cv2.medianBlur(small, k).astype(np.float32)
    r = small.astype(np.float32) - bg
    mad = float(np.median(np.abs(r))) + 1.0
    t = max(12.0, 4.0 * mad)
    dark = float(np.clip(-r - t, 0, None).sum())
    light = float(np.clip(r - t, 0, None).sum())
    return dark >= light


def estimate_background(chan: np.ndarray, p: SegmentParams) -> np.ndarray:
    """Paper brightness per pixel (float32) for dark ink: close away the strokes at low resolution."""
    h, w = chan.shape
    s = min(1.0, p.background_side / max(h, w))
    small = cv2.resize(chan, (max(4, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.close_size, p.close_size))
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.medianBlur(bg, 5)
    # INTER_LINEAR_EXACT: plain INTER_LINEAR on uint8 differs by a level between x86 and ARM builds.
    bg = cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR_EXACT).astype(np.float32)
    return np.maximum(bg, 1.0)


#: Luma weights (B, G, R): the blue channel is the noisiest in cameras and JPEG, so it counts least.
_LUMA = (0.114, 0.587, 0.299)


def darkness_map(img: np.ndarray, dark_ink: bool, p: SegmentParams) -> np.ndarray:
    """Relative darkness 1 - pixel/background (float32, may be slightly negative on noise).

    Colour frames are flattened per channel, so a colour cast or coloured paper becomes white; a channel
    in which the ink is brighter than the paper (blue pen on yellow paper, in blue) counts as no ink
    rather than cancelling the others.
    """
    if img.ndim == 2:
        chans, weights = [img], (1.0,)
    else:
        chans, weights = [img[:, :, i] for i in range(3)], _LUMA
    acc = np.zeros(img.shape[:2], np.float32)
    for c, wgt in zip(chans, weights, strict=False):
        if not dark_ink:
            c = 255 - c
        bg = estimate_background(c, p)
        dk = 1.0 - c.astype(np.float32) / bg
        if len(chans) > 1:
            dk = np.maximum(dk, 0.0)
        acc += wgt * dk
    # JPEG blocks and sensor noise: a small blur costs nothing in stroke shape at working resolution.
    return cv2.GaussianBlur(acc, (3, 3), 0)


def hysteresis_mask(d: np.ndarray, p: SegmentParams) -> tuple[np.ndarray, float]:
    """Binary ink mask: regions above a noise-derived level that reach a stroke-derived level somewhere.

    Returns the mask (uint8 0/255) and the typical stroke darkness (for contrast stretching).
    """
    # Statistics of the paper from every 3rd pixel: the same answer at a ninth of the cost.
    sample = d[::3, ::3]
    med = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - med))) + 1e-4
    low = max(p.min_contrast, med + p.noise_k * sigma)
    peak = float(np.percentile(sample, 99.5))
    if low > 0.5 * peak:
        # Textured background (cheque guilloche, paper grain) as dark as half the ink: the noise model
        # fails, but ink and texture then form two populations that Otsu separates.
        d8 = np.clip(d * 255.0, 0, 255).astype(np.uint8)
        otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        low = max(p.min_contrast, min(low, otsu / 255.0))
    cand = d > low
    if not cand.any():
        return np.zeros(d.shape, np.uint8), 0.0
    stroke = float(np.percentile(d[cand], 90)) if cand.sum() < 200_000 else float(np.percentile(sample[sample > low], 90))
    high = max(low * 1.3, p.stroke_frac * stroke)
    n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(lab[d > high])] = True
    keep[0] = False
    mask = (keep[lab]).astype(np.uint8) * 255
    strong = d[mask > 0]
    return mask, float(np.percentile(strong, 75)) if strong.size else stroke


def remove_rulings(mask: np.ndarray, p: SegmentParams) -> tuple[np.ndarray, np.ndarray]:
    """Remove long thin horizontal and vertical lines, keeping the strokes that cross or touch them.

    Lines are found as short straight runs (so a slightly tilted or broken ruling still shows) chained
    into long, thin groups. A line pixel stays ink when the ink run across the line there is clearly longer
    than the line is thick: a stroke crosses it or lies along it. Returns (cleaned mask, removed pixels).
    """
    h, w = mask.shape
    removed = np.zeros_like(mask)
    for horizontal in (True, False):
        side = w if horizontal else h
        length = int(p.line_min_frac * side)
        run = max(15, side // 25)
        if length < 2 * run:
            continue
        ksize = (run, 1) if horizontal else (1, run)
        runs = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, ksize))
        if not runs.any():
            continue
        # Chain runs across small breaks and a pixel or two of tilt.
        chain_k = (run, 3) if horizontal else (3, run)
        chained = cv2.morphologyEx(runs, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, chain_k))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(chained, connectivity=8)
        lines = np.zeros_like(mask)
        thick = []
        for i in range(1, n):
            x, y, bw, bh, _ = stats[i]
            long_side = bw if horizontal else bh
            if long_side < length:
                continue
            sel = (lab[y:y + bh, x:x + bw] == i) & (runs[y:y + bh, x:x + bw] > 0)
            thickness = float(sel.sum()) / max(long_side, 1)
            if long_side >= p.line_min_aspect * max(thickness, 1.0):
                lines[y:y + bh, x:x + bw][sel] = 255
                thick.append(thickness)
        if not thick:
            continue
        t = max(thick)
        # Anti-aliased edges of the line would stay as a dotted ghost line: take a pixel more each side.
        grow = (1, 3) if horizontal else (3, 1)
        lines = cv2.dilate(lines, cv2.getStructuringElement(cv2.MORPH_RECT, grow)) & mask
        across = int(np.ceil(t)) + 5
        kcross = (1, across) if horizontal else (across, 1)
        crossing = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kcross))
        removed |= lines & ~crossing
    if not removed.any():
        return mask, removed
    return mask & ~removed, removed


# ----------------------------------------------------------------------------------------------- components


def _union_find_merge(boxes: list[list[int]], pairs: list[tuple[int, int]]) -> list[list[int]]:
    parent = list(range(len(boxes)))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[int, list[int]] = {}
    for i in range(len(boxes)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def typical_height(heights: np.ndarray, areas: np.ndarray) -> float:
    """Area-weighted median height: specks are many but small, so they barely count."""
    if heights.size == 0:
        return 0.0
    order = np.argsort(heights)
    cum = np.cumsum(areas[order].astype(np.float64))
    return float(heights[order][np.searchsorted(cum, cum[-1] / 2.0)])


def _hugs_border(lab: np.ndarray, labels: list[int], box: tuple[int, int, int, int], p: SegmentParams) -> bool:
    """True for page edges, table and shadow borders: ink that runs along the frame's edge.

    A digit in a tight crop may touch the edge with a stroke end; a page edge lies along it.
    """
    H, W = lab.shape
    x0, y0, x1, y1 = box
    edges = []
    if y0 <= 0:
        edges.append((lab[0, x0:x1], x1 - x0))
    if y1 >= H:
        edges.append((lab[H - 1, x0:x1], x1 - x0))
    if x0 <= 0:
        edges.append((lab[y0:y1, 0], y1 - y0))
    if x1 >= W:
        edges.append((lab[y0:y1, W - 1], y1 - y0))
    for line, extent in edges:
        contact = int(np.isin(line, labels).sum())
        if contact >= p.border_max_frac * max(extent, 1):
            return True
    return False


def find_candidates(mask: np.ndarray, p: SegmentParams) -> tuple[np.ndarray, list[Candidate], float]:
    """Connected components -> merged, filtered candidate boxes (left to right, top to bottom)."""
    H, W = mask.shape
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return lab, [], 0.0
    st = stats[1:]
    hs, areas = st[:, 3], st[:, 4]
    big = hs >= p.min_digit_px
    th = typical_height(hs[big], areas[big]) if big.any() else float(hs.max())
    min_area = max(4.0, p.speck_area_frac * th * th)
    ids = [i for i in range(len(st)) if areas[i] >= min_area]
    boxes = [[int(st[i, 0]), int(st[i, 1]), int(st[i, 2]), int(st[i, 3])] for i in ids]
    pairs = []
    for a in range(len(boxes)):
        xa, ya, wa, ha = boxes[a]
        for b in range(a + 1, len(boxes)):
            xb, yb, wb, hb = boxes[b]
            ox = min(xa + wa, xb + wb) - max(xa, xb)
            if ox <= 0:
                continue
            gap = max(ya, yb) - min(ya + ha, yb + hb)
            union_h = max(ya + ha, yb + hb) - min(ya, yb)
            contained = ox >= min(wa, wb) - 1 and gap < 0
            if (ox >= p.merge_overlap * min(wa, wb) and gap <= p.merge_gap * th
                    and union_h <= p.merge_max_height * th) or contained:
                pairs.append((a, b))
    cands = []
    for group in _union_find_merge(boxes, pairs):
        x0 = min(boxes[i][0] for i in group)
        y0 = min(boxes[i][1] for i in group)
        x1 = max(boxes[i][0] + boxes[i][2] for i in group)
        y1 = max(boxes[i][1] + boxes[i][3] for i in group)
        w, h = x1 - x0, y1 - y0
        if h < max(p.min_digit_px, p.min_rel_height * th) or h > p.max_digit_frac * H:
            continue
        if w > p.max_aspect * h:
            continue
        if _hugs_border(lab, group_labels := [ids[i] + 1 for i in group], (x0, y0, x1, y1), p):
            continue
        cands.append(Candidate((x0, y0, w, h), tuple(group_labels)))
    cands.sort(key=lambda c: (c.box[1], c.box[0]))
    return lab, cands, th


def drop_faint(cands: list[Candidate], lab: np.ndarray, d: np.ndarray, p: SegmentParams) -> list[Candidate]:
    """Drop candidates much fainter than the frame's typical candidate (shadow edges, show-through)."""
    if len(cands) < 2 or p.min_rel_contrast <= 0:
        return cands
    levels = []
    for c in cands:
        x, y, w, h = c.box
        own = np.isin(lab[y:y + h, x:x + w], c.labels)
        levels.append(float(np.percentile(d[y:y + h, x:x + w][own], 90)) if own.any() else 0.0)
    ref = float(np.median(levels))
    return [c for c, v in zip(cands, levels, strict=True) if v >= p.min_rel_contrast * ref]


def segment(image: np.ndarray, p: SegmentParams | None = None) -> Segmentation:
    """Gray or BGR uint8 frame -> :class:`Segmentation` (ink map, mask, candidates) at working size."""
    import time

    p = p or SegmentParams()
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    t0 = time.perf_counter()
    scale = working_scale(image.shape, p)
    work = resize_to_working(image, scale)
    gray = to_gray(work)
    dark_ink = detect_dark_ink(gray) if p.polarity == "auto" else p.polarity != "light"
    d = darkness_map(work, dark_ink, p)
    mask, stroke = hysteresis_mask(d, p)
    t1 = time.perf_counter()
    if p.remove_lines and mask.any():
        mask, _ = remove_rulings(mask, p)
    t2 = time.perf_counter()
    ink = np.clip(d / max(stroke, p.min_contrast), 0.0, 1.0).astype(np.float32)
    lab, cands, th = find_candidates(mask, p)
    cands = drop_faint(cands, lab, d, p)
    t3 = time.perf_counter()
    return Segmentation(
        ink=ink, mask=mask, labels=lab, candidates=cands, scale=scale, dark_ink=dark_ink,
        typical_height=th, source_shape=(image.shape[0], image.shape[1]),
        timings={"threshold": (t1 - t0) * 1e3, "rulings": (t2 - t1) * 1e3, "components": (t3 - t2) * 1e3},
    )
