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
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from edge.types import Box, overlap_area

log = logging.getLogger(__name__)


@dataclass
class SegmentParams:
    """Parameters of the segmentation (config section ``segment:``). Sizes are relative unless named *_px."""

    #: The first pass runs on the frame shrunk so its longest side is at most this (px): segmentation cost
    #: grows with the pixel count, and digits of a normal size are still a few strokes wide at this size.
    max_side: int = 640
    #: A frame with more ink components (larger than a speck) than this is too cluttered to read (a page of
    #: print, sensor noise in the dark): it is skipped, as its candidates, their merges and their pieces
    #: would cost seconds and gigabytes. Handwritten pages here have at most ~40.
    max_components: int = 500
    #: Frames smaller than this (longest side, px) are enlarged first, so morphology has room on tiny crops.
    min_side: int = 400
    #: When the first pass finds digits shorter than this (working px) ...
    refine_below_px: int = 24
    #: ... a second pass runs at the scale that makes them about this tall ...
    refine_target_px: int = 32
    #: ... on a frame whose longest side is at most this (px; bounds the cost of tiny writing in big photos).
    refine_max_side: int = 1600
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
    #: A pixel on a ruling at least this many times darker than the ruling's typical darkness is a pen
    #: stroke lying along it and is kept.
    line_stroke_ratio: float = 1.5
    #: ... and darker than it by at least this much (fraction of the paper brightness).
    line_stroke_margin: float = 0.15
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
    min_rel_contrast: float = 0.3
    #: The typical ink is the median candidate's, but at least this share of the strongest one's: the grain
    #: of a desk beside the page (many faint candidates around a few digits) cannot set it.
    strongest_share: float = 0.35
    #: Candidates whose contrast in grey levels (darkness times the paper's brightness there) is below this
    #: share of the strongest candidate's are dropped: a dark desk's grain is faint in grey levels even
    #: where, divided by the desk's own dark background, it looks like ink. (A shadow that halves the
    #: light halves the ink's contrast too: it stays well above this.)
    min_abs_contrast: float = 0.2
    #: Components that lie along the frame border for more than this fraction of their extent there are
    #: page edges or shadows, not digits.
    border_max_frac: float = 0.5
    #: Candidates shorter than this share of the typical digit height are looked at again at a lower ink
    #: level (``regrow_level`` times the frame's) around them: a pencil digit whose faint strokes fell
    #: below the frame's level is a short piece of itself (the loop of a 6, the stem of a 2) that reads as
    #: another digit. 0 turns it off.
    regrow_below: float = 0.8
    regrow_level: float = 0.5

    def __post_init__(self) -> None:
        if self.polarity not in ("auto", "dark", "light"):
            raise ValueError(f"polarity must be auto, dark or light, not {self.polarity!r}")
        for name in ("max_side", "min_side", "background_side", "close_size", "min_digit_px", "refine_below_px",
                     "refine_target_px", "refine_max_side", "max_components"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.min_side > self.max_side:
            raise ValueError("min_side must not exceed max_side")
        if self.refine_max_side < self.max_side:
            raise ValueError("refine_max_side must not be below max_side")
        for name in ("min_contrast", "stroke_frac", "line_min_frac", "max_digit_frac", "min_rel_height",
                     "line_stroke_margin",
                     "speck_area_frac", "merge_overlap", "border_max_frac", "min_rel_contrast", "strongest_share",
                     "regrow_below", "regrow_level"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("noise_k", "line_min_aspect", "max_aspect", "merge_gap", "merge_max_height",
                     "line_stroke_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")


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


def quantile(a: np.ndarray, q: float) -> float:
    """The ``q`` quantile (0..1) of ``a`` - np.percentile's default (linear) answer, at a fraction of its
    fixed cost: it is taken for every candidate and crop of every frame."""
    flat = np.asarray(a, dtype=np.float64).ravel()
    n = flat.size
    if n == 0:
        raise ValueError("quantile of an empty array")
    pos = min(max(q, 0.0), 1.0) * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    part = np.partition(flat, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a uint8 mask: (count incl. background, labels int32, stats).

    ``stats`` has OpenCV's layout (x, y, width, height, area per label, row 0 the background). Computed
    from the ink pixels only: OpenCV's own ``connectedComponentsWithStats`` spends over a millisecond on a
    640x360 frame's statistics, ten times its labelling, and is called three times a frame.
    """
    n, lab = cv2.connectedComponents(mask, connectivity=8, ltype=cv2.CV_32S)
    stats = np.zeros((n, 5), np.int32)
    if n <= 1:
        stats[0] = (0, 0, mask.shape[1], mask.shape[0], mask.size)
        return n, lab, stats
    pts = cv2.findNonZero(mask)  # far faster than np.nonzero on the int32 label image
    pts = pts.reshape(-1, 2)
    xs, ys = pts[:, 0], pts[:, 1]
    ids = lab[ys, xs]
    order = np.argsort(ids, kind="stable")
    ids, ys, xs = ids[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    which = ids[starts]
    x0 = np.minimum.reduceat(xs, starts)
    x1 = np.maximum.reduceat(xs, starts)
    y0 = np.minimum.reduceat(ys, starts)
    y1 = np.maximum.reduceat(ys, starts)
    area = np.diff(np.r_[starts, ids.size])
    stats[which, 0], stats[which, 1] = x0, y0
    stats[which, 2], stats[which, 3] = x1 - x0 + 1, y1 - y0 + 1
    stats[which, 4] = area
    stats[0] = (0, 0, mask.shape[1], mask.shape[0], mask.size - int(area.sum()))
    return n, lab, stats


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


def label_mask(lab: np.ndarray, labels: tuple[int, ...]) -> np.ndarray:
    """Bool mask of the pixels of ``lab`` that carry one of ``labels`` (most candidates have one)."""
    if len(labels) == 1:
        return lab == labels[0]
    return np.isin(lab, labels)


#: Images shorter than this (px, shorter side: one digit's crop, MNIST's 28x28) have their polarity judged
#: by residuals from a median alone (``detect_dark_ink``).
THIN_POLARITY_MIN_PX = 100


def _dark_by_median_residuals(gray: np.ndarray) -> bool:
    """Dark ink gives strong local residuals (from a median background) of one sign; shading gives both."""
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


def _dark_by_thin_structures(gray: np.ndarray) -> bool:
    """Dark strokes answer a black-hat (closing minus the image), light ones a top-hat (the image minus
    its opening); a shadow's or a page's edge - a step, however dark on one side - answers neither."""
    h, w = gray.shape
    s = min(1.0, 256 / max(h, w))
    small = cv2.resize(gray, (max(8, round(w * s)), max(8, round(h * s))), interpolation=cv2.INTER_AREA)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    dark_r = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, k).astype(np.float32)
    light_r = cv2.morphologyEx(small, cv2.MORPH_TOPHAT, k).astype(np.float32)
    # Paper grain and sensor noise answer both alike: only what stands clearly above it counts.
    t = max(8.0, 2.0 * (float(np.median(dark_r)) + float(np.median(light_r))) + 4.0)
    return float(np.clip(dark_r - t, 0, None).sum()) >= float(np.clip(light_r - t, 0, None).sum())


def detect_dark_ink(gray: np.ndarray) -> bool:
    """True for dark ink on light paper (the usual case), False for light ink on a dark background.

    Two tests, and light ink only when both say so: residuals from a median background (robust on small
    or finely written pages, but a step answers on both of its sides: a shadow over most of a page of faint
    pencil once turned the polarity and lost every digit), and thin structures (a step answers neither
    way, but at 256 px the finest writing fades). In an image of one digit (shorter side under
    ``THIN_POLARITY_MIN_PX``) strokes and loops are as wide as any element: the first test alone decides.
    """
    if _dark_by_median_residuals(gray):
        return True
    return min(gray.shape[:2]) >= THIN_POLARITY_MIN_PX and _dark_by_thin_structures(gray)


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


#: Gaps along a turned ruling (or a ruling of a ruled page) up to this long (px) are closed before its runs
#: are measured.
BRIDGE_PX = 5
#: A page with at least this many lines of one orientation at a regular pitch is ruled (or squared) paper.
RULED_MIN_LINES = 4


#: Share of the gaps between found lines that must be a whole number of pitches for a ruled page.
RULED_FIT_SHARE = 0.85


def is_ruled(where: list[float]) -> bool:
    """True when lines at these positions (rows or columns) are the rulings of a page: at least
    ``RULED_MIN_LINES`` of them, nearly every gap between neighbours (``RULED_FIT_SHARE``) a whole number
    of one pitch (lines may be missed) to within 15% of it, and several gaps one pitch. The streaks of a
    desk's grain are not that regular.

    The pitch is the median of the gaps near the smallest one, not the smallest: under perspective the
    pitch changes across the frame, and a line found only in pieces sits a few pixels off, so the
    smallest gap is the extreme, not the rule; one such gap must not unmake a squared page."""
    if len(where) < RULED_MIN_LINES:
        return False
    gaps = np.diff(np.sort(np.asarray(where, np.float64)))
    gaps = gaps[gaps > 1.0]
    if gaps.size < RULED_MIN_LINES - 1:
        return False
    near = np.sort(gaps)
    pitch = float(np.median(near[near <= 1.4 * near[0]]))
    k = np.maximum(1.0, np.round(gaps / pitch))
    fits = np.abs(gaps / k - pitch) <= 0.15 * pitch
    return bool(np.count_nonzero(fits & (k == 1)) >= RULED_MIN_LINES - 2 and fits.mean() >= RULED_FIT_SHARE)


def find_lines(mask: np.ndarray, horizontal: bool, p: SegmentParams, wobble: bool = False,
               bridge: bool | None = None) -> tuple[np.ndarray, float, int, int, list[float]]:
    """Long thin lines of one orientation in ``mask``: (their pixels grown by a pixel each side, the
    thickest line's thickness, the shortest run a line is made of, the shortest line, where the lines lie
    across the page: the rows of level lines, the columns of upright ones) -
    thickness 0: none. ``wobble`` also finds lines a degree or two off the axis, ``bridge`` (default: as
    ``wobble``) lines broken into dashes (see below)."""
    h, w = mask.shape
    side = w if horizontal else h
    length = int(p.line_min_frac * side)
    run = max(15, side // 25)
    none: tuple[np.ndarray, float, int, int, list[float]] = (np.zeros_like(mask), 0.0, run, length, [])
    if length < 2 * run:
        return none
    ksize = (run, 1) if horizontal else (1, run)
    # A thin ruling a degree or two off level is a staircase of runs shorter than ``run``: thickened by a
    # pixel each side across it first, it holds one unbroken run; only its own pixels are kept. A faint one
    # turned and resampled breaks into dashes: gaps of a few pixels along it are closed too. (Only on a
    # turned page, where perspective leaves every ruling a little off the measured angle: on a level page
    # it also takes the near-level strokes of digits sitting on a ruling and the grain of a desk.)
    # a pixel each side across the line's direction
    across = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3) if horizontal else (3, 1))
    thick_mask = cv2.dilate(mask, across) if wobble else mask
    if wobble if bridge is None else bridge:
        along = (BRIDGE_PX, 1) if horizontal else (1, BRIDGE_PX)
        thick_mask = cv2.morphologyEx(thick_mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, along))
    runs: np.ndarray = cv2.morphologyEx(thick_mask, cv2.MORPH_OPEN,
                                        cv2.getStructuringElement(cv2.MORPH_RECT, ksize))
    runs &= mask
    if not runs.any():
        return none
    # A ruling is thin across; a desk beyond the page edge, a shadow or a filled area is not. Left in,
    # such a blob joins every ruling that touches it into one thick group that is no line at all.
    thick_px = max(8, min(h, w) // 30)
    thick_k = (1, thick_px) if horizontal else (thick_px, 1)
    blobs: np.ndarray = cv2.morphologyEx(runs, cv2.MORPH_OPEN,
                                         cv2.getStructuringElement(cv2.MORPH_RECT, thick_k))
    if blobs.any():
        runs &= ~blobs
    # Chain runs across small breaks and a pixel or two of tilt.
    chain_k = (run, 3) if horizontal else (3, run)
    # (A line a little off the axis is chained as the thickened band it makes, so that one row holds it.)
    base = cv2.dilate(runs, across) if wobble else runs
    chained = cv2.morphologyEx(base, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, chain_k))
    # A ruling at least ``length`` long puts a third of that into one row (column) of the chained mask:
    # a frame of digits only never gets that far, and is done here at the cost of one projection.
    proj = cv2.reduce(chained, 1 if horizontal else 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    if int(proj.max()) < 255 * length // 3:
        return none
    # Outer contours give every group's extent for a fraction of a labelling's cost; only the long ones
    # are then filled in to measure them.
    contours, _ = cv2.findContours(chained, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines = np.zeros_like(mask)
    thick: list[float] = []
    where: list[float] = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        long_side = bw if horizontal else bh
        if long_side < length:
            continue
        group = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(group, [c], -1, 255, cv2.FILLED, offset=(-x, -y))
        sel = (group > 0) & (runs[y:y + bh, x:x + bw] > 0)
        thickness = float(sel.sum()) / max(long_side, 1)
        if long_side >= p.line_min_aspect * max(thickness, 1.0):
            lines[y:y + bh, x:x + bw][sel] = 255
            thick.append(thickness)
            where.append(y + bh / 2.0 if horizontal else x + bw / 2.0)
    if not thick:
        return none
    # Anti-aliased edges of the line would stay as a dotted ghost line: take a pixel more each side.
    lines = cv2.dilate(lines, across) & mask
    return lines, max(thick), run, length, where


def _dark_on_line(lines: np.ndarray, d: np.ndarray, horizontal: bool, run: int, length: int,
                  p: SegmentParams) -> np.ndarray:
    """The pixels of ``lines`` that are a pen stroke lying along the line (uint8 0/255).

    Such a stroke (a 1 on a grid line) is no wider than the line plus a margin, but it is much darker than
    the line's own core, over a stroke's length (a few dark pixels are where the line meets a shadow's
    corner) - and shorter than a ruling (a dark part that long is the dark side of a shadow's edge). The
    core (75th percentile), not the faint anti-aliased rim, is the reference: a soft line such as a
    shadow's edge is darkest in the middle, and that middle is no pen stroke. "Much darker" is also a
    margin in absolute terms (``line_stroke_margin``): a faint grid line's darkness varies by more than
    half of itself with blotchy paper and JPEG, a pen stroke is far darker than any of it.
    """
    on = lines > 0
    if not on.any():
        return np.zeros_like(lines)
    level = quantile(d[on], 0.75)
    dark = ((d > max(p.line_stroke_ratio * level, level + p.line_stroke_margin)) & on).astype(np.uint8)
    nd, dlab, dst = components(dark)
    if nd <= 1:
        return np.zeros_like(lines)
    extent = dst[:, cv2.CC_STAT_WIDTH if horizontal else cv2.CC_STAT_HEIGHT]
    keep = (extent < length) & (extent >= run)
    keep[0] = False
    return keep[dlab].astype(np.uint8) * 255


#: A pen stroke lying along a ruling is kept from a length of the line search's run divided by this: the
#: back of a 6 or the stem of a 4 touches a grid line for less than a whole run, and taken out with the
#: line it broke the digit (a 6 read as 4).
ALONG_RUN_DIV = 2


def remove_rulings(mask: np.ndarray, p: SegmentParams, d: np.ndarray | None = None,
                   wobble: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Remove long thin horizontal and vertical lines, keeping the strokes that cross or touch them.

    Lines are found as short straight runs (so a slightly tilted or broken ruling still shows) chained
    into long, thin groups. A line pixel stays ink when the ink run across the line there is clearly longer
    than the line is thick (a stroke crosses it), or - given the darkness map ``d`` - when it is much
    darker than the line over a stroke's length (a stroke lies along it). Returns (cleaned mask, removed
    pixels).
    """
    found = {hz: find_lines(mask, hz, p, wobble) for hz in (True, False)}
    if not wobble:
        # A ruled or squared page (several lines found): its faint lines may be broken into dashes where
        # the threshold cuts through them, and the dashed stretches are missed; look again with the gaps
        # closed. (Not on every page: closing gaps turns a desk's grain into "lines".)
        for hz in (True, False):
            if is_ruled(found[hz][4]):
                found[hz] = find_lines(mask, hz, p, bridge=True)
    # Found with ``wobble``, a line also takes in the near-level bits of the strokes it meets: any piece
    # of it much darker than the line is kept, not only one as long as a stroke.
    along = {hz: (_dark_on_line(found[hz][0], d, hz, 3 if wobble else max(3, found[hz][2] // ALONG_RUN_DIV),
                                found[hz][3], p)
                  if d is not None and found[hz][1] > 0 else None) for hz in (True, False)}
    removed = np.zeros_like(mask)
    for horizontal in (True, False):
        lines, t = found[horizontal][:2]
        if t <= 0:
            continue
        # Where a horizontal and a vertical ruling meet (a grid, the corner of a shadow) each would
        # count as a stroke crossing the other and the crossing would stay: the other rulings are no
        # strokes - except where a stroke lies along them.
        other, other_along = found[not horizontal][0], along[not horizontal]
        if other.any():
            if other_along is not None:
                other = other & ~other_along
            strokes = mask & ~other
        else:
            strokes = mask
        across = int(np.ceil(t)) + 5
        kcross = (1, across) if horizontal else (across, 1)
        keep: np.ndarray = cv2.morphologyEx(strokes, cv2.MORPH_OPEN,
                                            cv2.getStructuringElement(cv2.MORPH_RECT, kcross))
        if along[horizontal] is not None:
            keep |= along[horizontal]
        removed |= lines & ~keep
    if not removed.any():
        return mask, removed
    return mask & ~removed, removed


#: Turned rulings, alone or with what they cross, fill at most this share of their component's box.
LINE_FILL = 0.25
#: Largest page turn (degrees) searched for rulings.
TILT_MAX_DEG = 25.0


def long_components(lab: np.ndarray, stats: np.ndarray, p: SegmentParams) -> tuple[int, ...]:
    """Labels of the components (``lab``, ``stats`` as :func:`components` gives them) that may hold rulings
    turned off the axis, alone, as a grid or with the digits they run through: at least ``line_min_frac``
    of the frame long and filling at most ``LINE_FILL`` of their box (a desk or a shadow beyond the page
    fills it), and not lying along the frame's border (the edge of a desk beyond a turned page is no
    ruling: taken out, the desk would break into pieces that pass as digits). A run of touching digits in
    a tight crop may pass too: :func:`ruling_angle` tells them apart."""
    H, W = lab.shape
    st = stats[1:]
    w, h = st[:, 2].astype(np.int64), st[:, 3].astype(np.int64)
    long = (w >= p.line_min_frac * W) | (h >= p.line_min_frac * H)
    return tuple(int(i) + 1 for i in np.flatnonzero(long & (st[:, 4] <= LINE_FILL * w * h))
                 if not _component_hugs_border(lab, stats, int(i) + 1, p))


def ruling_angle(mask: np.ndarray, p: SegmentParams) -> float | None:
    """Angle (degrees, counter-clockwise positive as ``cv2.getRotationMatrix2D`` takes it) that turns the
    dominant straight lines of ``mask`` (bool or uint8) level or upright; None when there is none: no
    straight line holds half a ruling's shortest length of ink.

    A Hough transform at half resolution over +/- ``TILT_MAX_DEG`` around each axis: the pieces of a
    ruling between the digits it crosses still vote for one line, which a fit over the component would not
    (the digits pull it). The mask holds only the long components, so the votes are few.
    """
    m = mask.astype(np.uint8)
    h, w = m.shape
    small = cv2.resize(m, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    small = (small > 0).astype(np.uint8)
    best, angle = 0, None
    span = np.deg2rad(TILT_MAX_DEG)
    for horizontal in (True, False):
        side = small.shape[1] if horizontal else small.shape[0]
        votes = max(10, int(0.5 * p.line_min_frac * side))
        # theta is the normal's angle; for upright lines it wraps at 0: a line leaning either way
        ranges = [(np.pi / 2 - span, np.pi / 2 + span)] if horizontal else [(0.0, span), (np.pi - span, np.pi)]
        for lo, hi in ranges:
            found = cv2.HoughLinesWithAccumulator(small, 1, np.pi / 360, votes, min_theta=lo, max_theta=hi)
            if found is None or found.size == 0:
                continue
            _, theta, count = (float(v) for v in found.reshape(-1, 3)[0])
            if count > best:
                deg = np.rad2deg(theta)
                # theta is the normal's angle from the x axis: a level line has theta 90 degrees.
                tilt = deg - 90.0 if horizontal else (deg if deg < 90.0 else deg - 180.0)
                best, angle = int(count), float(tilt)
    return angle


def remove_tilted_rulings(cand: np.ndarray, d: np.ndarray, low: float, angle: float,
                          p: SegmentParams) -> np.ndarray:
    """:func:`remove_rulings` for a page turned by ``angle`` degrees (see :func:`ruling_angle`).

    The darkness map is turned so the rulings are level (in a canvas large enough to hold the whole frame)
    and thresholded at ``low`` there - a thresholded mask turned instead would break a thin ruling into
    dots - the straight search runs on it (digits written along the rulings are upright there too), and the
    pixels it removed are turned back and taken out of ``cand``.
    """
    h, w = cand.shape
    rad = np.deg2rad(abs(angle))
    cw = int(np.ceil(w * np.cos(rad) + h * np.sin(rad))) + 2
    ch = int(np.ceil(h * np.cos(rad) + w * np.sin(rad))) + 2
    rot = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    rot[0, 2] += (cw - w) / 2.0
    rot[1, 2] += (ch - h) / 2.0
    dt = cv2.warpAffine(d, rot, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=0)
    # OpenCV compares with a scalar; its stubs want an array on both sides
    turned = cv2.compare(dt, low, cv2.CMP_GT)  # type: ignore[call-overload]
    # Lengths are fractions of the frame, not of the larger canvas.
    scale = min(1.0, w / cw, h / ch)
    q = replace(p, line_min_frac=p.line_min_frac * scale)
    _, removed = remove_rulings(turned, q, dt, wobble=True)
    if not removed.any():
        return cand
    back = cv2.warpAffine(removed, rot, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
    # a scalar again (see above)
    return cv2.bitwise_and(cand, cv2.bitwise_not(cv2.compare(back, 128, cv2.CMP_GE)))  # type: ignore[call-overload]


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


def _component_hugs_border(lab: np.ndarray, stats: np.ndarray, label: int, p: SegmentParams) -> bool:
    """:func:`_hugs_border` for one component, its box taken from ``stats`` (:func:`components`' layout)."""
    x, y, w, h = (int(v) for v in stats[label, :4])
    return _hugs_border(lab, [label], (x, y, x + w, y + h), p)


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
        if _component_hugs_border(lab, stats, int(i) + 1, p):
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
        if _hugs_border(lab, group_labels := [ids[i] + 1 for i in group], (x0, y0, x1, y1), p):
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
