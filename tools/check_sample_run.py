"""Check what the README's first command printed: the bundled sample's readings, in order.

CI runs ``bash tools/run.sh`` on its fresh clone (a new .venv with the device side only, as a user's first
command) and pipes its stdout here. The expected readings are the sample's ground truth,
``samples/sample.json`` (written by tools/make_sample.py): one event per segment of the video, each with that
segment's numbers in reading order.

    bash tools/run.sh | python3 tools/check_sample_run.py

Exit 0 when they match, 1 (with one line saying what differs) when not. Standard library only: it runs
before any .venv exists.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pi_compare import InputError, parse_events  # tools/ is this script's folder, first on sys.path

TRUTH = Path(__file__).resolve().parent.parent / "samples" / "sample.json"


def expected(truth: Path = TRUTH) -> list[list[str]]:
    return [list(seg["values"]) for seg in json.loads(truth.read_text())["segments"]]


def readings(lines: list[str]) -> list[list[str]]:
    """The number values of every reading event (heartbeats are not readings; an error event is a failure)."""
    out = []
    for n, ev in enumerate(parse_events(lines, "output"), 1):
        if "error" in ev:
            raise InputError(f"event {n} is an error event: {ev['error']}")
        if not ev.get("heartbeat"):
            out.append([num["value"] for num in ev["numbers"]])
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    truth = Path(args[0]) if args else TRUTH
    try:
        got = readings(sys.stdin.read().splitlines())
    except InputError as exc:
        print(f"check_sample_run: {exc}", file=sys.stderr)
        return 1
    want = expected(truth)
    if got != want:
        print(f"check_sample_run: the sample read as {got}, expected {want}", file=sys.stderr)
        return 1
    print(f"check_sample_run: {len(got)} readings as expected: {' | '.join(' '.join(v) for v in got)}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
