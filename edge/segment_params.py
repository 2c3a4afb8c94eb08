"""The parameters of the segmentation (config section ``segment:``) and their checks: one dataclass that
:mod:`edge.segment` and its steps (:mod:`edge.rulings`, :mod:`edge.components`) take, and that
:mod:`edge.config` builds the ``segment:`` section from - its own module so every step can import it without
importing the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

#: the largest pixel size or count a segment: setting may have
MAX_PX = 100_000


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
            # Sizes and counts far beyond any frame: a kernel or array that size is no setting but a typo (a
            # close_size of 10**30 passed, then failed inside OpenCV on every frame).
            if getattr(self, name) > MAX_PX:
                raise ValueError(f"{name} must be <= {MAX_PX:,}")
        if self.close_size > self.background_side:
            raise ValueError(f"close_size must not exceed background_side ({self.background_side}), the image it "
                             "works on")
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
