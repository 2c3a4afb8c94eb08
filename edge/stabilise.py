"""Temporal stabilisation: per-position vote across frames, so only settled readings are published.

A pure state machine (no I/O, no clock): the daemon feeds it each frame's numbers with the frame time and
publishes whatever ``update`` returns.

- Each number on the page is a *track*, found again frame to frame by its position: the nearest track whose
  centre lies within ``match_tolerance`` digit heights. Digit height, not pixels, so the same setting works
  near and far; a hand shaking the paper or a camera wobble moves centres by far less than a digit.
- A track's value becomes stable once it is the same in ``votes`` of the last ``window`` frames. With the
  defaults (3 of 5) one flickering frame can never win, and a real change is published after 3 frames.
- A stable value is kept (hysteresis) until another value wins the vote *and* was read in each of the last
  ``change_streak`` frames, so a reading flickering between two values (3/9, 4/8) does not make the
  published value blink; a real change is published after ``change_streak`` frames.
- A track unseen for ``drop_after`` frames and ``drop_after_s`` seconds is dropped; if it was stable, the
  stable set changes.
- A page moving as a whole (slid by hand, read only every few frames by the change gate) moves every number
  by the same step, which may be more than half the line spacing: the step most numbers share is taken out
  before matching, so a number is not paired with its neighbour's track.
- If a number moves further than the tolerance (paper slid), its new track becomes stable while the old one
  is still missing: the new one takes the old one's place instead of publishing the number twice.
- A new track whose reading lies on the digits of another track's stable value ("4721" read as "47" and
  "21", "12" and "34" read as "1234") is the same ink read another way: it becomes stable only with the
  change streak, like any change of a stable value, and then replaces the stable readings it covers in the
  same event. A reader flickering between the two groupings never publishes a piece next to the whole.
- The stable set is published in reading order of the stable numbers' latest positions, found as the
  reader finds it (``edge.numbers``: the page's tilt from their digits, lines with the configured
  ``numbers:`` settings), over the stable numbers only - a missed number (at its last place, moved with the
  page) and a speck that never becomes stable cannot reorder the others. The published order of the same
  stable numbers is kept while it is still the reader's order with the line gap a quarter smaller or
  larger or the tilt 3 degrees off, so numbers staggered by about the line gap do not swap places with the
  reading jitter.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from itertools import count

import numpy as np

from edge.numbers import NumbersParams, estimate_tilt, group_lines
from edge.types import Box, Digit, Number

log = logging.getLogger(__name__)


#: the most frames a stabilise: count may span (a window of 10**30 overflowed a C size at the first frame)
MAX_FRAMES = 1_000_000


@dataclass
class StabiliseParams:
    """The ``stabilise:`` config section."""

    #: a value must be read this many times ...
    votes: int = 3
    #: ... within this many most recent frames to become stable.
    window: int = 5
    #: to replace a stable value, the new one must also have been read in each of the last this many frames.
    #: One more than ``votes`` by default: a digit on the edge between two readings (a weak 5 read as "15"
    #: or "1") comes in runs of a few frames, and the published value should not follow them. Capped at
    #: ``window``.
    change_streak: int = 4
    #: a track not seen for this many consecutive frames is dropped ...
    drop_after: int = 5
    #: ... and, if its reading is stable, once it has also been unseen for this many seconds. In frames
    #: alone, a hand passing over the page (0.2 s at 30 frames/s) published every number as gone and then
    #: back: two events, and Home Assistant's sensors blank in between. 0 = frames alone.
    drop_after_s: float = 2.0
    #: how far (in digit heights, centre to centre) a number may move between frames and still be the same.
    match_tolerance: float = 1.0
    #: readings less confident than this keep a track alive but do not vote (0 = every reading votes).
    min_confidence: float = 0.0
    #: seconds between heartbeat events while nothing changes (0 = no heartbeat).
    heartbeat_s: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_FRAMES:
            raise ValueError(f"stabilise.window must be between 1 and {MAX_FRAMES:,}, got {self.window}")
        if not 1 <= self.votes <= self.window:
            raise ValueError(f"stabilise.votes must be between 1 and window ({self.window}), got {self.votes}")
        if not 1 <= self.change_streak <= MAX_FRAMES:
            raise ValueError(f"stabilise.change_streak must be between 1 and {MAX_FRAMES:,}, got {self.change_streak}")
        if not 1 <= self.drop_after <= MAX_FRAMES:
            raise ValueError(f"stabilise.drop_after must be between 1 and {MAX_FRAMES:,}, got {self.drop_after}")
        if not 0.0 <= self.drop_after_s <= 86400.0:
            raise ValueError(f"stabilise.drop_after_s must be between 0 and 86400, got {self.drop_after_s}")
        if self.match_tolerance <= 0:
            raise ValueError(f"stabilise.match_tolerance must be > 0, got {self.match_tolerance}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"stabilise.min_confidence must be in [0, 1], got {self.min_confidence}")
        if self.heartbeat_s < 0:
            raise ValueError(f"stabilise.heartbeat_s must be >= 0, got {self.heartbeat_s}")


#: Most numbers followed at once; the rest (never stable, longest unseen) are forgotten first.
MAX_TRACKS = 512
#: Two numbers moved "the same way" when their steps differ by at most this many digit heights.
SHIFT_AGREE = 0.25
#: Slack (digit heights) when deciding whether two readings lie on the same digits (:func:`_same_ink`).
INK_SLACK = 0.25
#: A published reading order is kept while it is the reader's order with ``numbers.line_gap`` this
#: fraction smaller or larger (hysteresis: a number staggered by about the line gap stays on its side).
ORDER_MARGIN = 0.25
#: ... or with the page's tilt this many degrees off its estimate (which wobbles by a degree or two with the
#: reading jitter of a few short numbers).
ORDER_TILT_MARGIN_DEG = 3.0
#: Candidate page steps tried at most (a crowded page has a few per number, a third of them the page's own
#: step, so an even sample of them still finds it; this bounds the work).
MAX_SHIFT_CANDIDATES = 256


def digit_height(n: Number) -> float:
    """Typical digit height of a number: the median of its digits' heights (the box grows with tilt)."""
    heights = sorted(d.box[3] for d in n.digits)
    if heights:
        return float(heights[len(heights) // 2])
    return float(max(n.box[3], 1))


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    x, y, w, h = box
    return x + w / 2.0, y + h / 2.0


def _centres_heights(numbers: list[Number]) -> tuple[np.ndarray, np.ndarray]:
    """Box centres (N, 2) and digit heights (N,) of ``numbers``, as :func:`match_distance` uses them."""
    boxes = np.array([n.box for n in numbers], np.float64).reshape(-1, 4)
    centres = boxes[:, :2] + boxes[:, 2:] / 2.0
    return centres, np.array([digit_height(n) for n in numbers], np.float64)


def match_distance(a: Number, b: Number) -> float:
    """Centre distance of two numbers in units of (the larger) digit height."""
    (ax, ay), (bx, by) = centre(a.box), centre(b.box)
    h = max(digit_height(a), digit_height(b), 1.0)
    return float(((ax - bx) ** 2 + (ay - by) ** 2) ** 0.5 / h)


@dataclass
class _Track:
    id: int
    last: Number
    votes: deque[str | None]
    missing: int = 0
    #: ``ts`` of the first frame of the current run of missing frames
    missing_since: float = 0.0
    stable: Number | None = None
    born: int = 0
    #: how far the page has moved (pixels) since this track was last seen: it moves with the page, so a
    #: number missed for a read while the page slides still finds its own track when it is seen again
    drift: tuple[float, float] = (0.0, 0.0)
    #: the latest observation of each value still in the vote window, so a winner is published with its
    #: own box, confidence and digits even when the current frame read something else.
    recent: dict[str, Number] = field(default_factory=dict)

    @property
    def stable_value(self) -> str | None:
        return None if self.stable is None else self.stable.value


class Stabiliser:
    """Feed ``update(numbers, ts)`` once per frame; it returns the stable set when it appears or changes."""

    def __init__(self, params: StabiliseParams | None = None, numbers: NumbersParams | None = None) -> None:
        self.params = params or StabiliseParams()
        #: how the reader groups digits into lines: the published order follows the same rules
        self.numbers = numbers or NumbersParams()
        self._tracks: list[_Track] = []
        self._ids = count()
        self._frames = 0
        self._published: tuple[str, ...] = ()
        self._primed_until = 0  # see prime()
        self._last_emit_ts: float | None = None
        self._stable_cache: list[Number] | None = None
        #: the last reading order worked out, and what it was worked out from (ids, boxes, drifts): the change
        #: gate repeats a read for many frames, and ordering costs several times the rest of an update
        self._order_key: tuple = ()
        self._order_ids: list[int] = []

    def reset(self) -> None:
        """Forget everything (new source, reloaded config)."""
        self._tracks.clear()
        self._frames = 0
        self._stable_cache = None
        self._order_key, self._order_ids = (), []
        self._published = ()
        self._primed_until = 0
        self._last_emit_ts = None

    @property
    def stable(self) -> list[Number]:
        """The current stable readings in reading order (may be empty)."""
        if self._stable_cache is None:
            tracks = [t for t in self._tracks if t.stable is not None]
            key = tuple((t.id, t.last.box, t.drift) for t in tracks)
            by_id = {t.id: t for t in tracks}
            if key != self._order_key:
                # the marks and the tilt once, for the reader's order and for the hysteresis' check of it
                digits, owner = _marks(tracks)
                theta = estimate_tilt(digits, self.numbers) if len(tracks) > 1 else 0.0
                order = [t.id for t in _reading_order(tracks, self.numbers, (digits, owner, theta))]
                shown = [i for i in self._order_ids if i in by_id]
                if (order != shown and len(shown) == len(order)
                        and self._order_still_fits(tracks, (digits, owner, theta), shown)):
                    order = shown  # the same numbers, a hair's breadth from the other order: no reordering
                self._order_key, self._order_ids = key, order
            tracks = [by_id[i] for i in self._order_ids]
            self._stable_cache = [t.stable for t in tracks if t.stable is not None]
        return list(self._stable_cache)

    def _order_still_fits(self, tracks: list[_Track], marks: _Marks, ids: list[int]) -> bool:
        """True when ``ids`` is the reading order of ``tracks`` with the tilt a few degrees off the estimate
        or ``numbers.line_gap`` a little smaller or larger (:data:`ORDER_TILT_MARGIN_DEG`,
        :data:`ORDER_MARGIN`). Hysteresis: two numbers staggered by about the line gap, or a line whose end
        is near the next line's start, would otherwise swap places in the published set with every pixel
        of reading jitter and every degree the tilt estimate wobbles (and MQTT's number_1 and number_2 swap
        values with them). ``marks``: ``_marks(tracks)`` and their estimated tilt."""
        digits, owner, theta = marks
        gap = self.numbers.line_gap
        for dt in (0.0, -ORDER_TILT_MARGIN_DEG, ORDER_TILT_MARGIN_DEG):
            for f in (1.0, 1.0 - ORDER_MARGIN, 1.0 + ORDER_MARGIN):
                if dt == 0.0 and f == 1.0:
                    continue  # the reader's own order, which is not ids
                p = replace(self.numbers, line_gap=gap * f)
                if [t.id for t in _order_at(tracks, digits, owner, p, theta + math.radians(dt))] == ids:
                    return True
        return False

    @property
    def tracked(self) -> int:
        """How many numbers are being followed (stable or not yet)."""
        return len(self._tracks)

    def update(self, numbers: list[Number], ts: float) -> list[Number] | None:
        """Take one frame's numbers (in reading order); return the new stable set if it changed, else None.

        An empty list is a real answer (everything that was stable has gone), so test ``is not None``.
        """
        p = self.params
        self._frames += 1
        self._stable_cache = None
        matched = self._match(numbers)
        seen: set[int] = set()
        for idx, number in enumerate(numbers):
            track = matched.get(idx)
            vote = number.value if number.confidence >= p.min_confidence else None
            if track is None:
                track = _Track(id=next(self._ids), last=number, votes=deque(maxlen=p.window), born=self._frames)
                self._tracks.append(track)
            track.last = number
            track.drift = (0.0, 0.0)
            track.missing = 0
            track.votes.append(vote)
            if vote is not None:
                track.recent[vote] = number
            if track.stable is not None and vote == track.stable.value:
                track.stable = number  # same reading, fresher box and confidence
            seen.add(track.id)

        for track in self._tracks:
            if track.id not in seen:
                if track.missing == 0:
                    track.missing_since = ts
                track.missing += 1
                track.votes.append(None)
        # The time hold is for published readings only: a speck's track still goes after drop_after frames.
        gone = {t.id for t in self._tracks if t.missing >= p.drop_after
                and (t.stable is None or ts - t.missing_since >= p.drop_after_s)}
        for track in self._tracks:
            if track.id in gone and track.stable is not None:
                log.debug("dropped stable %r after %d missing frames", track.stable.value, track.missing)
        self._tracks = [t for t in self._tracks if t.id not in gone]
        if len(self._tracks) > MAX_TRACKS:
            # Numbers flickering in and out by the hundred (noise read as digits) must not pile up tracks:
            # keep the stable ones, then the most recently seen.
            keep = sorted(self._tracks, key=lambda t: (t.stable is None, t.missing, -t.born))[:MAX_TRACKS]
            kept = {t.id for t in keep}
            self._tracks = [t for t in self._tracks if t.id in kept]

        for track in list(self._tracks):
            in_window = set(track.votes)
            track.recent = {v: n for v, n in track.recent.items() if v in in_window}
            winner = self._vote(track)
            if winner is None or winner == track.stable_value:
                continue
            new = track.recent[winner]
            if track.stable is None and not self._streak(track, winner) and self._rereads_stable_ink(track, new):
                # Another reading of a stable number's ink ("4721" read as "47" "21", "12" "34" as "1234"):
                # a change of what is written there, held to the change streak like any other change.
                continue
            self._take_over(track, new)
            log.debug("track %d stable %r -> %r", track.id, track.stable_value, winner)
            track.stable = new

        stable = self.stable
        values = tuple(n.value for n in stable)
        if values == self._published:
            return None
        if self._partly_confirmed(values):
            return None  # restored readings not all confirmed yet: not a change
        self._published = values
        self._last_emit_ts = ts
        return stable

    def prime(self, values: list[str]) -> None:
        """Count ``values`` as already published (the readings restored after a restart): the same stable
        set is then not published again, a different one is."""
        self._published = tuple(values)
        # Until a window of frames has voted, an empty stable set only means "not confirmed yet".
        self._primed_until = self._frames + self.params.window + self.params.drop_after

    def forget_outside(self, box: Box) -> None:
        """Forget the numbers whose centre lies outside ``box`` (pixels): ``source.region`` moved, and they are
        no longer read. Kept, they were published beside the new region's numbers until they timed out.
        What was published counts as published for a window of frames, as after :meth:`prime`, so the
        numbers still being confirmed in the new region are not first announced as gone."""
        x, y, w, h = box

        def inside(n: Number) -> bool:
            cx, cy = n.box[0] + n.box[2] / 2, n.box[1] + n.box[3] / 2
            return x <= cx < x + w and y <= cy < y + h

        kept = [t for t in self._tracks if inside(t.last)]
        if len(kept) == len(self._tracks):
            return
        self._tracks = kept
        self._stable_cache = None
        self._primed_until = self._frames + self.params.window + self.params.drop_after

    def say_again(self) -> list[Number] | None:
        """The stable set, to publish once more (after a camera outage: the error must not stay the last
        word), counted as published; None while nothing is confirmed yet (the first window of frames, or
        restored readings not yet seen again)."""
        stable = self.stable
        if not stable and self._frames < max(self.params.window, self._primed_until):
            return None
        values = tuple(n.value for n in stable)
        if self._partly_confirmed(values):
            return None  # not a partial set either
        self._published = values
        return stable

    def _partly_confirmed(self, values: tuple[str, ...]) -> bool:
        """Within the primed window, ``values`` are some of the restored readings, not yet all confirmed."""
        return self._frames < self._primed_until and len(values) < len(self._published) and \
            all(v in self._published for v in values)

    def heartbeat(self, ts: float) -> bool:
        """True when ``heartbeat_s`` has passed since the last reading or heartbeat (and resets the timer)."""
        if self.params.heartbeat_s <= 0:
            return False
        if self._last_emit_ts is None:
            self._last_emit_ts = ts
            return False
        if ts - self._last_emit_ts >= self.params.heartbeat_s:
            self._last_emit_ts = ts
            return True
        return False

    def _vote(self, track: _Track) -> str | None:
        tally = Counter(v for v in track.votes if v is not None)
        if not tally:
            return None
        value, n = tally.most_common(1)[0]
        if n < self.params.votes:
            return None
        if track.stable is not None and value != track.stable.value and not self._streak(track, value):
            return None
        return value

    def _streak(self, track: _Track, value: str) -> bool:
        """True when ``value`` was read in each of the track's last ``change_streak`` frames."""
        need = min(self.params.change_streak, self.params.window)
        streak = list(track.votes)[-need:]
        return len(streak) == need and all(v == value for v in streak)

    def _rereads_stable_ink(self, track: _Track, number: Number) -> bool:
        """True when ``number`` (a new track's reading) lies on the digits of another track's stable reading
        of another value (the same value there is that number, found again a little further off)."""
        return any(other is not track and other.stable is not None and other.stable.value != number.value
                   and _same_ink(number, other.stable, other.drift) for other in self._tracks)

    def _match(self, numbers: list[Number]) -> dict[int, _Track]:
        """Greedy nearest-first assignment of this frame's numbers to tracks, each used at most once.

        When the page moved (:func:`_page_shift`), a pair's distance is the smaller of the one after the
        page's common step and the plain one plus ``SHIFT_AGREE``: a column sliding by more than half its
        line spacing between reads would otherwise pair each number with the neighbour's track (nearer than
        its own), and a number that did not move with the page still finds its own track.

        The distances (:func:`match_distance`) of every number to every track in one array operation: a
        frame with a few hundred numbers against their tracks took a Python loop 0.15-0.7 s.
        """
        if not numbers or not self._tracks:
            return {}
        tracks = self._tracks
        cn, hn = _centres_heights(numbers)
        ct, ht = _centres_heights([t.last for t in tracks])
        ct = ct + np.array([t.drift for t in tracks], np.float64)
        scale = np.maximum(np.maximum(hn[:, None], ht[None, :]), 1.0)
        step = cn[:, None, :] - ct[None, :, :]
        dist = np.hypot(step[..., 0], step[..., 1]) / scale
        shift = _page_shift(step, dist, scale, self.params.match_tolerance)
        if shift is not None:
            moved = np.hypot(step[..., 0] - shift[0], step[..., 1] - shift[1]) / scale
            # With the page moving, moving with it is the likelier story: a number that lands on its
            # neighbour's old place is as near that track as its own shifted one, up to reading jitter.
            dist = np.minimum(dist + SHIFT_AGREE, moved)
        idx, tj = np.nonzero(dist <= self.params.match_tolerance)
        ids = np.array([t.id for t in tracks])
        order = np.lexsort((ids[tj], idx, dist[idx, tj]))
        out: dict[int, _Track] = {}
        used: set[int] = set()
        for k in order:
            i, j = int(idx[k]), int(tj[k])
            if i in out or j in used:
                continue
            out[i] = tracks[j]
            used.add(j)
        if shift is not None:
            for j, t in enumerate(tracks):
                if j not in used:
                    t.drift = (t.drift[0] + float(shift[0]), t.drift[1] + float(shift[1]))
        return out

    def _take_over(self, track: _Track, new: Number) -> None:
        """``track`` settles on ``new``: a now-missing stable track that it replaces is dropped with it.

        - A new track settling on the value a missing stable track holds is that number, moved.
        - A stable track whose digits the new reading covers (or that covers the new reading's) is the same
          ink read another way ("4721" now read as "47" "21", "12" "34" as "1234"): the pieces or the whole
          replace it in the same event, not one event later when it would be dropped.
        """
        for old in list(self._tracks):
            if old is track or old.missing == 0 or old.stable is None:
                continue
            moved = track.stable is None and old.stable.value == new.value
            if moved or _same_ink(new, old.stable, old.drift):
                log.debug("track %d (%r) taken over by track %d (%r)", old.id, old.stable.value, track.id, new.value)
                self._tracks.remove(old)
                if moved:
                    return


def _digit_boxes(n: Number, shift: tuple[float, float] = (0.0, 0.0)) -> list[tuple[float, float, float, float]]:
    """Centre x, centre y, width, height of each digit of ``n`` (the box when it has none), moved by ``shift``."""
    return [(x + w / 2.0 + shift[0], y + h / 2.0 + shift[1], float(w), float(h))
            for x, y, w, h in (d.box for d in n.digits or (Digit(0, 1.0, n.box),))]


def _on(a: list[tuple[float, float, float, float]], b: list[tuple[float, float, float, float]]) -> int:
    """How many of the digits ``a`` lie on one of ``b``: centres less than half a digit apart each way, give
    or take :data:`INK_SLACK` heights (a stable reading's place is a few frames old, and hand shake moves
    it; a number beside it starts at least a digit and a gap, about 1.3 widths, further on)."""
    return sum(any(abs(ax - bx) <= max(aw, bw) / 2.0 + INK_SLACK * max(ah, bh)
                   and abs(ay - by) <= (0.5 + INK_SLACK) * max(ah, bh)
                   for bx, by, bw, bh in b) for ax, ay, aw, ah in a)


def _same_ink(a: Number, b: Number, b_shift: tuple[float, float] = (0.0, 0.0)) -> bool:
    """True when at least half the digits of one of ``a`` and ``b`` (moved by ``b_shift``) lie on the
    other's: two readings of the same writing, not two numbers side by side."""
    da, db = _digit_boxes(a), _digit_boxes(b, b_shift)
    return 2 * _on(da, db) >= len(da) or 2 * _on(db, da) >= len(db)


def _page_shift(step: np.ndarray, dist: np.ndarray, scale: np.ndarray, tolerance: float) -> np.ndarray | None:
    """The step (pixels) that most numbers share since their tracks were last seen, or None.

    ``step[i, j]`` is number i's centre minus track j's, ``dist`` the same in digit heights, ``scale`` the
    digit height of each pair. Each pairing within twice ``tolerance`` proposes its step (a number may then
    move up to ``tolerance`` against the page, and the page as much again); the one that
    the most numbers agree with (within :data:`SHIFT_AGREE` heights) wins if it is shared by at least half
    of them and by more than stand still, so jitter and noise never invent a page movement.
    """
    n_numbers, n_tracks = dist.shape
    if n_numbers < 2 or n_tracks < 2:
        return None
    ci, cj = np.nonzero(dist <= 2.0 * tolerance)  # row-major: ci ascending
    if ci.size < 2:
        return None
    still = np.unique(ci[dist[ci, cj] <= SHIFT_AGREE]).size
    if still >= np.unique(ci).size:
        return None  # every number is where a track was: the usual, still page
    steps, scales = step[ci, cj], scale[ci, cj]
    rows = np.arange(ci.size)
    if ci.size > MAX_SHIFT_CANDIDATES:
        rows = np.linspace(0, ci.size - 1, MAX_SHIFT_CANDIDATES).astype(np.intp)
    diff = steps[rows, None, :] - steps[None, :, :]
    agree = np.hypot(diff[..., 0], diff[..., 1]) <= SHIFT_AGREE * np.maximum(scales[rows, None], scales[None, :])
    # Count numbers, not pairs: a number near two tracks agrees once.
    starts = np.flatnonzero(np.r_[True, ci[1:] != ci[:-1]])
    support = np.logical_or.reduceat(agree, starts, axis=1).sum(axis=1)
    size = np.hypot(steps[rows, 0], steps[rows, 1]) / scales[rows]
    best = int(np.lexsort((size, -support))[0])
    if support[best] < 2 or support[best] <= still or 2 * support[best] < min(n_numbers, n_tracks):
        return None
    return np.median(steps[agree[best]], axis=0)


#: the digits of tracks' latest readings, which track owns each, and the tilt estimated from them
_Marks = tuple[list[Digit], dict[int, int], float]


def _reading_order(tracks: list[_Track], p: NumbersParams, marks: _Marks | None = None) -> list[_Track]:
    """``tracks`` in reading order of their latest positions (moved with the page while missed), as the
    reader orders a frame: the tilt estimated from all their digits, lines grouped with ``p``, each track
    placed where its first digit comes. ``marks``: those digits and tilt when the caller has them."""
    if len(tracks) < 2:
        return list(tracks)
    if marks is None:
        digits, owner = _marks(tracks)
        marks = (digits, owner, estimate_tilt(digits, p))
    digits, owner, theta = marks
    return _order_at(tracks, digits, owner, p, theta)


def _marks(tracks: list[_Track]) -> tuple[list[Digit], dict[int, int]]:
    """The digits of each track's latest reading, moved with the page, and which track each belongs to."""
    owner: dict[int, int] = {}
    digits: list[Digit] = []
    for k, t in enumerate(tracks):
        dx, dy = t.drift
        for d in t.last.digits or (Digit(0, 1.0, t.last.box),):
            x, y, w, h = d.box
            mark = Digit(d.digit, d.confidence, (round(x + dx), round(y + dy), w, h))
            owner[id(mark)] = k
            digits.append(mark)
    return digits, owner


def _order_at(tracks: list[_Track], digits: list[Digit], owner: dict[int, int], p: NumbersParams,
              theta: float) -> list[_Track]:
    """``tracks`` ordered by where their first digit comes in the lines of ``digits`` at tilt ``theta``."""
    first: dict[int, int] = {}
    for pos, mark in enumerate(m for line in group_lines(digits, p, theta) for m in line):
        first.setdefault(owner[id(mark)], pos)
    return [tracks[k] for k in sorted(range(len(tracks)), key=lambda k: first[k])]
