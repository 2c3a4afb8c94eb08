"""Compare what the device side printed on x86 with what it printed under arm64 emulation.

Two kinds of output, stdlib only so any Python can run it:

    python tools/pi_compare.py events REF.jsonl EMU.jsonl --label bookworm:sample.mp4
    python tools/pi_compare.py probe REF.json EMU.json --label bookworm

``events``: JSON lines from ``python -m edge --sink stdout``; they must be equal event for event, in the
same order, except the fields that measure the run rather than the reading (``ts``, ``latency_ms``).
``--box-tolerance``/``--confidence-tolerance`` let boxes and confidences move a little (for inputs that
decode differently on the two machines); values, digits, frames, sources and errors stay exact.
``probe``: the JSON of ``tools/pi_probe.py``; the fields that describe the machine are shown, the
results must be equal; ``--prob-tolerance`` lets a probability differ by one int8 output quantum (XNNPACK
requantises with different rounding on x86 and arm64, so one crop's output may move by one step) while
every argmax stays exact. Exit 0 when equal, 1 with one line per difference (at most --max-report) when not,
2 when a file is missing or is not what it should be.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Event fields that depend on the wall clock or the machine's speed, not on the reading.
RUN_FIELDS = ("ts", "latency_ms")
#: Probe fields that describe the machine (expected to differ) rather than results.
PROBE_INFO = ("machine", "python", "numpy", "cv2", "runtime")
#: How the two sides are called in messages.
NAMES = ("x86", "arm64")


class InputError(Exception):
    """A file to compare is missing or malformed."""


def load_events(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_events(lines, str(path))


def parse_events(lines: list[str], label: str) -> list[dict[str, Any]]:
    """The JSON objects of event lines (blank lines skipped); InputError names ``label`` and the line."""
    events = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{label}:{n}: not a JSON line ({exc.msg})") from exc
        if not isinstance(ev, dict):
            raise InputError(f"{label}:{n}: not a JSON object")
        events.append(ev)
    return events


def strip_run_fields(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if k not in RUN_FIELDS}


@dataclass
class Tolerance:
    """How far a box coordinate (px) or a confidence may move; differences let through are counted."""

    box: int = 0
    confidence: float = 0.0
    prob: float = 0.0
    tolerated: list[str] = field(default_factory=list)

    def allows(self, where: str, a: Any, b: Any) -> bool:
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or isinstance(a, bool):
            return False
        if ".box[" in where and isinstance(a, int) and isinstance(b, int):
            limit: float = self.box
        elif where.endswith(".confidence"):
            limit = self.confidence
        elif "_probs[" in where:
            limit = self.prob
        else:
            return False
        if abs(a - b) <= limit:
            self.tolerated.append(where)
            return True
        return False


def diff_values(a: Any, b: Any, where: str, out: list[str], names: tuple[str, str] = NAMES,
                tol: Tolerance | None = None) -> None:
    """Append one line per leaf where ``a`` and ``b`` differ (exact, floats included, unless ``tol`` allows)."""
    na, nb = names
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{where}.{k}: only {nb} has it ({json.dumps(b[k])[:80]})")
            elif k not in b:
                out.append(f"{where}.{k}: only {na} has it ({json.dumps(a[k])[:80]})")
            else:
                diff_values(a[k], b[k], f"{where}.{k}", out, names, tol)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: {len(a)} items on {na}, {len(b)} on {nb}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            diff_values(x, y, f"{where}[{i}]", out, names, tol)
    elif (a != b or type(a) is not type(b)) and not (tol is not None and tol.allows(where, a, b)):
        out.append(f"{where}: {na} {json.dumps(a)[:80]} != {nb} {json.dumps(b)[:80]}")


def compare_events(ref: list[dict[str, Any]], emu: list[dict[str, Any]],
                   names: tuple[str, str] = NAMES, tol: Tolerance | None = None) -> list[str]:
    """Differences between two event streams; values, digits, frames and errors are always exact."""
    out: list[str] = []
    if len(ref) != len(emu):
        out.append(f"{len(ref)} events on {names[0]}, {len(emu)} on {names[1]}")
    for i, (a, b) in enumerate(zip(ref, emu, strict=False)):
        diff_values(strip_run_fields(a), strip_run_fields(b), f"event {i}", out, names, tol)
    return out


def compare_probe(ref: dict[str, Any], emu: dict[str, Any], names: tuple[str, str] = NAMES,
                  tol: Tolerance | None = None) -> list[str]:
    out: list[str] = []
    for side, d in zip(names, (ref, emu), strict=True):
        if d.get("single_equals_batch") is not True:
            out.append(f"{side}: one crop alone classified differently from inside a batch")
    diff_values({k: v for k, v in ref.items() if k not in PROBE_INFO},
                {k: v for k, v in emu.items() if k not in PROBE_INFO}, "probe", out, names, tol)
    return out


def describe_probe(ref: dict[str, Any], emu: dict[str, Any], names: tuple[str, str] = NAMES) -> str:
    def one(d: dict[str, Any]) -> str:
        return " ".join(f"{k}={d.get(k)}" for k in PROBE_INFO)

    return f"{names[0]}: {one(ref)} | {names[1]}: {one(emu)}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("events", "probe"))
    ap.add_argument("reference", type=Path, help="output on x86 (the reference)")
    ap.add_argument("emulated", type=Path, help="output under arm64 emulation")
    ap.add_argument("--label", default="", help="what was compared, for the messages")
    ap.add_argument("--max-report", type=int, default=12, help="differences printed at most")
    ap.add_argument("--box-tolerance", type=int, default=0, metavar="PX",
                    help="events: a box coordinate may differ by this many pixels (default 0)")
    ap.add_argument("--confidence-tolerance", type=float, default=0.0, metavar="D",
                    help="events: a confidence may differ by this much (default 0)")
    ap.add_argument("--prob-tolerance", type=float, default=0.0, metavar="P",
                    help="probe: a class probability may differ by this much (default 0; 0.0039 = 1/256, one "
                         "int8 output step); argmax fields stay exact")
    ap.add_argument("--names", default=",".join(NAMES), help="what to call the two sides (default x86,arm64)")
    args = ap.parse_args(argv)
    label = f"{args.label}: " if args.label else ""
    names = tuple(args.names.split(",", 1)) if "," in args.names else NAMES
    tol = Tolerance(box=args.box_tolerance, confidence=args.confidence_tolerance, prob=args.prob_tolerance)
    try:
        if args.kind == "events":
            ref, emu = load_events(args.reference), load_events(args.emulated)
            if not ref:
                raise InputError(f"{args.reference} has no events: nothing to compare")
            diffs = compare_events(ref, emu, names, tol)
            what = f"{len(ref)} events"
        else:
            loaded = []
            for p in (args.reference, args.emulated):
                events = load_events(p)
                if len(events) != 1:
                    raise InputError(f"{p}: expected one probe JSON object, found {len(events)}")
                loaded.append(events[0])
            ref, emu = loaded
            print(f"{label}{describe_probe(ref, emu, names)}")
            diffs = compare_probe(ref, emu, names, tol)
            what = f"probe of {ref.get('count')} digits"
    except InputError as exc:
        print(f"{label}error: {exc}", file=sys.stderr)
        return 2
    if diffs:
        print(f"{label}MISMATCH: {len(diffs)} difference(s) between {names[0]} and {names[1]}", file=sys.stderr)
        for line in diffs[: args.max_report]:
            print(f"{label}  {line}", file=sys.stderr)
        if len(diffs) > args.max_report:
            print(f"{label}  ... and {len(diffs) - args.max_report} more", file=sys.stderr)
        return 1
    if tol.tolerated:
        print(f"{label}equal: {what} give the same readings on {names[0]} and {names[1]}; "
              f"{len(tol.tolerated)} box/confidence/probability value(s) within tolerance (boxes ±{tol.box} px, "
              f"confidences ±{tol.confidence}, probabilities ±{tol.prob}), first: {tol.tolerated[0]}")
    else:
        print(f"{label}equal: {what} identical on {names[0]} and {names[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
