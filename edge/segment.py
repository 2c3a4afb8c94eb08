"""Find candidate digits in a camera frame: ink map, binary mask, ruling removal, components.

Everything here is pure (arrays in, arrays out) and works at a *working resolution* chosen by the
content: a first pass runs with the longest side at most ``max_side`` (tiny crops enlarged to
``min_side``); when the digits it finds are shorter than ``refine_below_px`` there, a second pass runs at
the scale that makes them about ``refine_target_px`` tall. Segmentation cost grows with the pixel count,
while what it needs is a digit a few strokes wide, so large writing is segmented on few pixels and small
writing on as many as it needs. All other sizes are relative to the frame or to the typical digit rather
than fixed pixel counts. Boxes in :class:`Segmentation` are in working pixels; :meth:`Segmentation.to_source`
maps them back.

Pipeline (why each step is there):

1. polarity: dark pen on paper or light ink on a dark background, detected from the sign of the strong
   local residuals (shadows give both signs, ink only one; :mod:`edge.polarity`);
2. background: a morphological close at low resolution removes the strokes and keeps the shading (close
   keeps the edges of large shadows), then it is divided out of the luma - this handles shadows,
   vignetting and colour casts;
3. threshold: hysteresis between a noise-derived low level and a stroke-derived high level, so blank paper
   stays blank and faint pencil survives;
4. rulings: long thin horizontal/vertical structures are removed and the gaps they leave in strokes closed
   (:mod:`edge.rulings`);
5. components: specks dropped, pieces of one digit merged (a 5's flag, a two-stroke 4, a dotted 0),
   size filtered relative to the typical digit height of the frame.

The parameters are :class:`edge.segment_params.SegmentParams`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np

from edge.components import component_hugs_border, components, hugs_border, label_mask
from edge.polarity import THIN_POLARITY_MIN_PX, detect_dark_ink
from edge.quantile import quantile
from edge.rulings import long_components, remove_rulings, remove_tilted_rulings, ruling_angle
from edge.segment_params import SegmentParams
from edge.types import Box, overlap_area

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """One candidate digit (or group of touching digits): box in working pixels and its component labels."""

    box: Box
    labels: tuple[int, ...]


@dataclass
class CropInk:
    """One candidate's ink (float32 0..1, neighbours blanked) and binary mask at some crop resolution."""

    ink: np.ndarray
    own: np.ndarray
    #: source position of the crop's pixel (0, 0), and crop pixels per source pixel
    x0: float
    y0: float
    scale: float

    def to_source(self, box: Box, shape: tuple[int, int]) -> Box:
        """A box in crop pixels -> source pixels (clipped to a frame of ``shape`` = (H, W))."""
        x, y, w, h = box
        s = self.scale
        x0, y0 = int(np.floor(self.x0 + x / s)), int(np.floor(self.y0 + y / s))
        x1, y1 = int(np.ceil(self.x0 + (x + w) / s)), int(np.ceil(self.y0 + (y + h) / s))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(shape[1], x1), min(shape[0], y1)
        return x0, y0, max(1, x1 - x0), max(1, y1 - y0)


@dataclass
class Segmentation:
    """Result of :func:`segment`. ``darkness`` is float32 (1 - pixel/paper), ``mask`` uint8 0/255, both at
    working size; ``ink`` (0..1, ink high) is the darkness scaled by the typical stroke."""

    darkness: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    candidates: list[Candidate]
    #: working size / source size
    scale: float
    dark_ink: bool
    typical_height: float
    source_shape: tuple[int, int] = (0, 0)
    timings: dict[str, float] = field(default_factory=dict)
    #: the source frame as gray (not a copy), for crops finer than the working resolution
    source: np.ndarray | None = field(default=None, repr=False)
    #: paper brightness at working size (float32; of the inverted image for light ink)
    background: np.ndarray | None = field(default=None, repr=False)
    #: darkness that maps to ink 1.0, and the ink level of the mask's low threshold
    stroke: float = 1.0
    ink_level: float = 0.2
    #: more components than ``SegmentParams.max_components``: no candidates were looked for
    cluttered: bool = False

    @property
    def ink(self) -> np.ndarray:
        """The whole ink map (float32 0..1); the reader only ever needs crops of it, see :meth:`ink_at`."""
        return self.ink_at(0, 0, self.darkness.shape[1], self.darkness.shape[0])

    def ink_at(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        d = self.darkness[y0:y1, x0:x1]
        return np.clip(d * (1.0 / self.stroke), 0.0, 1.0).astype(np.float32)

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

    def crop(self, cand: Candidate, min_px: int = 0, target_px: int = 40, max_zoom: float = 1.0) -> CropInk:
        """The candidate's own ink and mask, at working resolution or - when its digits are shorter than
        ``min_px`` there - re-made from the source frame so they are about ``target_px`` tall.

        Segmenting needs few pixels, reading a digit (and cutting touching ones apart) needs more: a
        digit 24 px tall in a shrunk phone photo is 100 px tall in the photo itself. ``max_zoom`` caps the
        crop's scale relative to the source (above 1 it is interpolated, not sharper).
        """
        x, y, w, h = cand.box
        H, W = self.darkness.shape
        zoom = target_px / max(h / self.scale, 1e-6)
        zoom = min(zoom, max_zoom, 8.0)
        if h >= min_px or self.source is None or self.background is None or zoom <= self.scale * 1.15:
            pad = 2
            x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
            lab = self.labels[y0:y1, x0:x1]
            own = label_mask(lab, cand.labels)
            keep = _keep_own(own, lab, KEEP_PX)
            return CropInk(self.ink_at(x0, y0, x1, y1) * keep, own, x0 / self.scale, y0 / self.scale, self.scale)
        # Source rectangle of the box plus a rim, then sampled at ``zoom`` crop pixels per source pixel.
        sx0, sy0, sw, sh = self.to_source((x - 2, y - 2, w + 4, h + 4))
        gray = self.source[sy0:sy0 + sh, sx0:sx0 + sw]
        cw, ch = max(1, round(sw * zoom)), max(1, round(sh * zoom))
        interp = cv2.INTER_AREA if zoom < 1 else cv2.INTER_CUBIC
        g = cv2.resize(gray, (cw, ch), interpolation=interp).astype(np.float32)
        if not self.dark_ink:
            g = 255.0 - g
        # The same working pixels the box came from, stretched over the crop (only that window is warped).
        wx0, wy0 = sx0 * self.scale, sy0 * self.scale
        ix0, iy0 = max(0, int(wx0) - 1), max(0, int(wy0) - 1)
        ix1 = min(W, int(np.ceil((sx0 + sw) * self.scale)) + 1)
        iy1 = min(H, int(np.ceil((sy0 + sh) * self.scale)) + 1)
        f = self.scale / zoom  # working pixels per crop pixel
        # Crop pixel centre (u + 0.5) is source (sx0 + (u + 0.5) / zoom), working that * scale - 0.5.
        m = np.array([[f, 0, wx0 - ix0 + 0.5 * f - 0.5], [0, f, wy0 - iy0 + 0.5 * f - 0.5]], np.float32)
        inv = cv2.WARP_INVERSE_MAP
        bg = cv2.warpAffine(self.background[iy0:iy1, ix0:ix1], m, (cw, ch), flags=cv2.INTER_LINEAR | inv,
                            borderMode=cv2.BORDER_REPLICATE)
        lab = cv2.warpAffine(self.labels[iy0:iy1, ix0:ix1].astype(np.float32), m, (cw, ch),
                             flags=cv2.INTER_NEAREST | inv, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        own_up: np.ndarray = label_mask(lab.astype(np.int32), cand.labels).astype(np.uint8)
        # One working pixel is 1/scale source pixels wide: grow by that much so the rim is inside.
        k = max(3, int(np.ceil(zoom / self.scale)) | 1)
        own_up = cv2.dilate(own_up, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        d = 1.0 - g / np.maximum(bg, 1.0)
        ink = np.clip(d / self.stroke, 0.0, 1.0) * own_up
        own = ink > self.ink_level
        return CropInk(ink.astype(np.float32), own, float(sx0), float(sy0), zoom)


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


#: Ink this many working pixels from a candidate's mask still belongs to it (see ``_keep_own``).
KEEP_PX = 2


def _keep_own(own: np.ndarray, lab: np.ndarray, grow: int) -> np.ndarray:
    """Where a candidate's ink may be taken from: its mask grown by ``grow`` px, minus other components.

    The mask is cut at the hysteresis' low level, so the anti-aliased rim and a faint stretch of stroke
    between two pieces (a pencil 1 that fades in the middle) lie just outside it; a neighbour's stroke
    inside the grown region is not the candidate's.
    """
    k = 2 * grow + 1
    keep = cv2.dilate(own.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    others = (lab > 0) & ~own
    if others.any() and grow > 1:
        keep[cv2.dilate(others.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0
    return keep


def estimate_background(chan: np.ndarray, p: SegmentParams) -> np.ndarray:
    """Paper brightness per pixel (float32) for dark ink: close away the strokes at low resolution."""
    h, w = chan.shape
    s = min(1.0, p.background_side / max(h, w))
    small = cv2.resize(chan, (max(4, round(w * s)), max(4, round(h * s))), interpolation=cv2.INTER_AREA)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.close_size, p.close_size))
    bg = cv2.morphologyEx(small, cv2.MORPH_CLOSE, k, borderType=cv2.BORDER_REPLICATE)
    bg = cv2.max(cv2.medianBlur(bg, 5), 1)  # never divide by zero
    # INTER_LINEAR_EXACT: plain INTER_LINEAR on uint8 differs by a level between x86 and ARM builds.
    return cv2.resize(bg, (w, h), interpolation=cv2.INTER_LINEAR_EXACT).astype(np.float32)


def darkness_map(img: np.ndarray, dark_ink: bool, p: SegmentParams) -> tuple[np.ndarray, np.ndarray]:
    """Relative darkness 1 - pixel/background (float32, may be slightly negative on noise), and the
    background (paper brightness, float32, same size; for light ink, of the inverted image).

    Works on luma: dividing it by its own background already flattens shading, vignetting and colour
    casts, and doing it per colour channel (tried: the three channels each divided by their background)
    read no better on the photos or the generated scenes at three times the cost.
    """
    gray = to_gray(img)
    if not dark_ink:
        gray = 255 - gray
    bg = estimate_background(gray, p)
    d = cv2.divide(gray.astype(np.float32), bg)
    # OpenCV takes a scalar here; its stubs want an array
    cv2.subtract(1.0, d, dst=d)  # type: ignore[call-overload]
    # JPEG blocks and sensor noise: a small blur costs nothing in stroke shape at working resolution.
    return cv2.GaussianBlur(d, (3, 3), 0), bg


def low_level(d: np.ndarray, p: SegmentParams) -> float:
    """The darkness above which a pixel may be ink: a few noise sigmas above the paper."""
    # Statistics of the paper from every 3rd pixel, counted in steps of 1/1000 of the paper brightness:
    # the same answer as sorting every pixel, at a small fraction of the cost.
    sample = d[::3, ::3]
    q = np.clip(sample * 1000.0 + 1000.5, 0, 2000).astype(np.int32).ravel()
    cum = np.cumsum(np.bincount(q, minlength=2001))

    def at(frac: float) -> float:
        return (int(np.searchsorted(cum, frac * (q.size - 1) + 1)) - 1000) / 1000.0

    med = at(0.5)
    dev = np.abs(q - int(round(med * 1000.0 + 1000)))
    mad = int(np.searchsorted(np.cumsum(np.bincount(dev, minlength=2001)), 0.5 * (dev.size - 1) + 1)) / 1000.0
    sigma = 1.4826 * mad + 1e-4
    low = max(p.min_contrast, med + p.noise_k * sigma)
    peak = at(0.995)
    if low > 0.5 * peak:
        # Textured background (cheque guilloche, paper grain) as dark as half the ink: the noise model
        # fails, but ink and texture then form two populations that Otsu separates.
        d8 = np.clip(d * 255.0, 0, 255).astype(np.uint8)
        otsu, _ = cv2.threshold(d8, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
        low = max(p.min_contrast, min(low, otsu / 255.0))
    return low


def hysteresis_mask(d: np.ndarray, cand: np.ndarray, low: float, p: SegmentParams) -> tuple[np.ndarray, float]:
    """Binary ink mask: the regions of ``cand`` (pixels above ``low``, rulings already taken out) that
    reach a stroke-derived level somewhere.

    Returns the mask (uint8 0/255) and the typical stroke darkness (for contrast stretching). The stroke
    level comes from ``cand`` *after* ruling removal: a squared page has more grid pixels than ink, and
    with the grid in, the "typical stroke" would be the grid's and the grid would pass as ink.
    """
    on = cand > 0
    count = int(cv2.countNonZero(cand))
    if count == 0:
        return np.zeros(d.shape, np.uint8), 0.0
    if count < 200_000:
        stroke = quantile(d[on], 0.9)
    else:
        sub = d[::3, ::3][on[::3, ::3]]
        stroke = quantile(sub, 0.9) if sub.size else quantile(d[on], 0.9)
    high = max(low * 1.3, p.stroke_frac * stroke)
    n, lab = cv2.connectedComponents(cand, connectivity=8, ltype=cv2.CV_32S)
    keep = np.bincount(lab[d > high], minlength=n) > 0
    keep[0] = False
    if n <= 256:
        # A lookup table on 8-bit labels is ten times faster than indexing with the int32 label image.
        lut = np.zeros(256, np.uint8)
        lut[:n] = keep * 255
        mask = cv2.LUT(lab.astype(np.uint8), lut)
    else:
        mask = keep[lab].astype(np.uint8) * 255
    strong = d[mask > 0]
    return mask, quantile(strong, 0.75) if strong.size else stroke


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


class TooCluttered(Exception):
    """More components big enough to be ink than ``SegmentParams.max_components``."""


def find_candidates(mask: np.ndarray, p: SegmentParams,
                    comps: tuple[int, np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, list[Candidate], float]:
    """Connected components (``comps``: :func:`components` of ``mask`` when already known) -> merged,
    filtered candidate boxes (left to right, top to bottom)."""
    H, W = mask.shape
    n, lab, stats = comps if comps is not None else components(mask)
    if n <= 1:
        return lab, [], 0.0
    st = stats[1:]
    hs, areas = st[:, 3], st[:, 4]
    big = hs >= p.min_digit_px
    # What can never be a digit must not set the digit size: a desk strip or shadow as tall as the frame
    # (area-weighted, it would outweigh all the writing) or a long ruling fragment.
    plausible = big & (hs <= p.max_digit_frac * H) & (st[:, 2] <= p.max_aspect * hs)
    # ... nor a desk strip beyond a page edge that lies along the frame's border (a third of the frame
    # long or more: only those are worth the look).
    for i in np.flatnonzero(plausible & ((hs >= H / 3) | (st[:, 2] >= W / 3))):
        if component_hugs_border(lab, stats, int(i) + 1, p):
            plausible[i] = False
    if plausible.any():
        big = plausible
    th = typical_height(hs[big], areas[big]) if big.any() else float(hs.max())
    min_area = max(4.0, p.speck_area_frac * th * th)
    ids = [i for i in range(len(st)) if areas[i] >= min_area]
    if len(ids) > p.max_components:
        raise TooCluttered(len(ids))  # the merging below compares every pair of them
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
            # A piece inside another digit's box (the dot in a 0, a loose stroke) is part of it; inside the
            # box of a page edge or shadow border that frames the writing it is not.
            contained = ox >= min(wa, wb) - 1 and gap < 0 and max(ha, hb) <= p.merge_max_height * th
            # A short piece (a 5's flag, a 7's bar) is dropped as too small on its own, so it joins the
            # digit it sits on even when it sticks out sideways.
            small = min(ha, hb) < 0.5 * th
            need = p.merge_overlap * min(wa, wb) * (0.5 if small else 1.0)
            if (ox >= need and gap <= p.merge_gap * th and union_h <= p.merge_max_height * th) or contained:
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
        if hugs_border(lab, group_labels := [ids[i] + 1 for i in group], (x0, y0, x1, y1), p):
            continue
        cands.append(Candidate((x0, y0, w, h), tuple(group_labels)))
    cands.sort(key=lambda c: (c.box[1], c.box[0]))
    return lab, cands, th


def drop_faint(cands: list[Candidate], lab: np.ndarray, d: np.ndarray, p: SegmentParams,
               bg: np.ndarray | None = None) -> list[Candidate]:
    """Drop candidates much fainter than the frame's typical candidate (shadow edges, show-through) and,
    given the background ``bg``, those whose contrast in grey levels is a small share of the strongest
    candidate's (the grain of a dark desk beside the page: faint streaks that dividing by the desk's own
    dark background makes look like ink)."""
    grey_levels = bg is not None and p.min_abs_contrast > 0
    if len(cands) < 2 or (p.min_rel_contrast <= 0 and not grey_levels):
        return cands
    levels, absolute = [], []
    for c in cands:
        x, y, w, h = c.box
        own = label_mask(lab[y:y + h, x:x + w], c.labels)
        dd = d[y:y + h, x:x + w][own]
        levels.append(quantile(dd, 0.9) if dd.size else 0.0)
        if grey_levels and bg is not None:
            absolute.append(quantile(dd * bg[y:y + h, x:x + w][own], 0.9) if dd.size else 0.0)
    ref = max(float(np.median(levels)), p.strongest_share * float(np.max(levels)))
    keep = [v >= p.min_rel_contrast * ref for v in levels]
    if grey_levels:
        top = float(np.max(absolute))
        keep = [k and a >= p.min_abs_contrast * top for k, a in zip(keep, absolute, strict=True)]
    return [c for c, k in zip(cands, keep, strict=True) if k]


#: ``regrow_fragments`` looks at no more short candidates than this in one frame (see there).
REGROW_MAX = 64


def regrow_fragments(cands: list[Candidate], lab: np.ndarray, mask: np.ndarray, d: np.ndarray, low: float,
                     th: float, p: SegmentParams) -> list[Candidate]:
    """Grow candidates shorter than ``regrow_below`` typical heights through the fainter ink around them.

    Around such a piece, pixels above ``regrow_level`` times the frame's ink level that connect to it are
    taken in - never through another candidate's own pixels - when what results is digit-sized (0.75-1.5
    typical heights tall, at most 1.3 wide), inside the window looked at, and over no more than half of
    another candidate's box. ``lab`` and ``mask`` gain the grown pixels under the piece's label, so the crop
    takes them as its own. Clean paper has nothing fainter to grow into: those pieces stay as they are.
    """
    if p.regrow_below <= 0 or th <= 0 or not cands:
        return cands
    H, W = d.shape
    level = max(0.02, p.regrow_level * low)
    short = sum(1 for c in cands if c.box[3] < p.regrow_below * th)
    if short > REGROW_MAX:
        # a frame of many short pieces (grain, hatching, print) is not a few faded digits, and each look is a
        # labelling of a window up to 3.6 typical heights a side: hundreds cost seconds on a Pi
        return cands
    out = []
    for ci, c in enumerate(cands):
        x, y, w, h = c.box
        if h >= p.regrow_below * th:
            out.append(c)
            continue
        mx, my = int(round(1.3 * th)), int(round(1.5 * th))  # room for the whole digit the piece is of
        x0, y0, x1, y1 = max(0, x - mx), max(0, y - my), min(W, x + w + mx), min(H, y + h + my)
        sub_lab = lab[y0:y1, x0:x1]
        own = label_mask(sub_lab, c.labels)
        region = (d[y0:y1, x0:x1] > level).astype(np.uint8)
        # not through a neighbour's own pixels: joining digits is the merge's and the split's business (its
        # faint rim is unlabelled, hence the check on the grown box below)
        others = ((sub_lab > 0) & ~own).astype(np.uint8)
        region[others > 0] = 0
        region[own] = 1
        n, rl = cv2.connectedComponents(region, connectivity=8, ltype=cv2.CV_32S)
        seeds = np.unique(rl[own])
        grown = np.isin(rl, seeds[seeds > 0])
        ys, xs = np.nonzero(grown)
        gx0, gy0, gx1, gy1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        gw, gh = gx1 - gx0, gy1 - gy0
        if not (0.75 * th <= gh <= 1.5 * th and gw <= 1.3 * th) or gy0 == 0 or gx0 == 0 \
                or gy1 == y1 - y0 or gx1 == x1 - x0:
            out.append(c)
            continue
        # Over most of another candidate, the grown ink is that one's faint rim (growth is blocked only where
        # the neighbour is labelled), not this digit's missing strokes: taken, this box swallowed the neighbour
        # and its crop cut the neighbour's rim away.
        grown_box = (x0 + gx0, y0 + gy0, gw, gh)
        if any(j != ci and overlap_area(o.box, grown_box) > 0.5 * o.box[2] * o.box[3]
               for j, o in enumerate(cands)):
            out.append(c)
            continue
        add = grown & (sub_lab == 0)
        sub_lab[add] = c.labels[0]
        mask[y0:y1, x0:x1][add] = 255
        out.append(Candidate((x0 + gx0, y0 + gy0, gw, gh), c.labels))
    return out


def refine_scale(seg: Segmentation, p: SegmentParams) -> float | None:
    """The finer working scale a second pass should use, or None when the first pass was fine enough.

    Small writing leaves digits only a few pixels tall in the first pass: strokes merge, holes close and
    touching digits have no room for a cut. A frame with only specks (typical height below a few pixels)
    is blank, not tiny writing, and is not worth a second pass.
    """
    if not seg.candidates or seg.typical_height < 4:
        return None
    # The smaller digits decide: a page with a big and a small line must still read the small one.
    th = quantile(np.array([c.box[3] for c in seg.candidates]), 0.2)
    if th >= p.refine_below_px:
        return None
    side = max(seg.source_shape)
    fine = min(seg.scale * p.refine_target_px / th, p.refine_max_side / side)
    return fine if fine > seg.scale * 1.1 else None


def _segment_at(gray: np.ndarray, scale: float, dark_ink: bool | None, p: SegmentParams) -> Segmentation:
    import time

    t0 = time.perf_counter()
    work = resize_to_working(gray, scale)
    if dark_ink is None:
        # A small image is judged as it is, not enlarged to the working size (its strokes would outgrow
        # the thin-structure test).
        probe = gray if min(gray.shape[:2]) < THIN_POLARITY_MIN_PX else work
        dark_ink = detect_dark_ink(probe) if p.polarity == "auto" else p.polarity != "light"
    d, bg = darkness_map(work, dark_ink, p)
    low = low_level(d, p)
    cand = (d > low).astype(np.uint8) * 255
    t1 = time.perf_counter()
    # Rulings go before the hysteresis: at the low level a ruling is long and unbroken, so it is found
    # whole; and what is left of the grid can neither pass as ink nor set the stroke level.
    if p.remove_lines and cand.any():
        cand, _ = remove_rulings(cand, p, d)
    t2 = time.perf_counter()
    mask, stroke = hysteresis_mask(d, cand, low, p)
    comps = components(mask)
    t3 = time.perf_counter()
    if p.remove_lines:
        # Rulings of a page turned more than a degree or two are not found as straight runs above: they
        # show as components as long as a ruling. Only then is their angle measured and the search repeated
        # along it, tolerant of the degree or two perspective adds - a page without such lines pays nothing.
        long = long_components(comps[1], comps[2], p)
        angle = ruling_angle(label_mask(comps[1], long), p) if long else None
        if angle is not None:
            cand = remove_tilted_rulings(cand, d, low, angle, p)
            mask, stroke = hysteresis_mask(d, cand, low, p)
            comps = components(mask)
    stroke = max(stroke, p.min_contrast)
    t_tilt = time.perf_counter() - t3
    t3 = time.perf_counter()
    cluttered = False
    try:
        lab, cands, th = find_candidates(mask, p, comps)
        cands = drop_faint(cands, lab, d, p, bg)
        cands = regrow_fragments(cands, lab, mask, d, low, th, p)
    except TooCluttered:
        lab, cands, th, cluttered = comps[1], [], 0.0, True
    t4 = time.perf_counter()
    return Segmentation(
        darkness=d, mask=mask, labels=lab, candidates=cands, scale=scale, dark_ink=dark_ink,
        typical_height=th, source_shape=(gray.shape[0], gray.shape[1]),
        timings={"threshold": (t1 - t0 + t3 - t2 - t_tilt) * 1e3, "rulings": (t2 - t1 + t_tilt) * 1e3,
                 "components": (t4 - t3) * 1e3},
        source=gray, background=bg, stroke=stroke, ink_level=min(1.0, low / stroke), cluttered=cluttered,
    )


def segment(image: np.ndarray, p: SegmentParams | None = None) -> Segmentation:
    """Gray or BGR uint8 frame -> :class:`Segmentation` (ink map, mask, candidates) at working size."""
    p = p or SegmentParams()
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    gray = to_gray(image)
    seg = _segment_at(gray, working_scale(gray.shape, p), None, p)
    fine = refine_scale(seg, p)
    if fine is not None:
        first = seg.timings
        seg = _segment_at(gray, fine, seg.dark_ink, p)
        seg.timings = {k: v + first.get(k, 0.0) for k, v in seg.timings.items()}
    return seg
