"""Make the bundled sample: samples/sample.mp4 (+ sample.json ground truth) and a few still pages.

The video is what ``python -m edge`` reads by default: a page with handwritten numbers (MNIST *test*
digits) seen by a slightly shaky camera with sensor noise; halfway through, one number is rewritten
(``CHANGE``), so a stream reader must emit a new event when the stable reading changes.

    python tools/make_sample.py                 # writes samples/ (needs $MNIST_DIR, default ../shared/mnist)
    python tools/make_sample.py --out /tmp/s    # somewhere else
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenegen import CONDITIONS, Scene, SceneGenerator, Style  # noqa: E402

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SIZE = (640, 480)
FPS = 12
FRAMES = 96
#: Frame at which the page shows the rewritten number.
CHANGE_AT = 48
BEFORE = [["4721", "0385"], ["96", "1530"]]
AFTER = [["4728", "0385"], ["96", "1530"]]
SEED = 8
#: (file name, condition, seed): the still pages, chosen to show different papers and pens.
STILLS = (
    ("page_clean.jpg", "clean", 11),
    ("page_ruled.jpg", "ruled", 12),
    ("page_squared.jpg", "squared", 13),
    ("page_tilt.jpg", "tilt", 14),
    ("page_blue.jpg", "blue_pen", 16),
    ("page_pencil.jpg", "pencil", 15),
)


def video_style() -> Style:
    # An ordinary desk: black pen, plain paper, a lamp to one side, a cheap lens.
    # Tidy writing (small gaps inside a number) so the demo's numbers are unambiguous to a person too.
    return Style(height=(44.0, 52.0), stroke=(0.08, 0.1), digit_gap=(0.12, 0.28), gradient=True, vignette=True,
                 noise=3.0)


def shake(i: int, size: tuple[int, int]) -> np.ndarray:
    """A hand-held camera's slow drift: a few pixels and under a degree, smooth in time."""
    w, h = size
    t = i / FPS
    dx = 6.0 * math.sin(2 * math.pi * 0.23 * t) + 2.0 * math.sin(2 * math.pi * 0.9 * t)
    dy = 4.0 * math.sin(2 * math.pi * 0.17 * t + 1.0)
    ang = 0.8 * math.sin(2 * math.pi * 0.11 * t)
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
    m = np.eye(3)
    m[:2] = rot
    m[0, 2] += dx
    m[1, 2] += dy
    return m


def number_dict(n: Any) -> dict[str, Any]:
    return {"value": n.value, "box": list(n.box),
            "digits": [{"digit": d.digit, "box": list(d.box)} for d in n.digits]}


def make_video(gen: SceneGenerator, path: Path) -> dict[str, Any]:
    style = video_style()
    pages = [gen.compose("clean", SEED, BEFORE, style), gen.compose("clean", SEED, AFTER, style)]
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    writer = cv2.VideoWriter(str(path), fourcc, FPS, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write mp4v video to {path}")
    frames = []
    try:
        for i in range(FRAMES):
            page = pages[0] if i < CHANGE_AT else pages[1]
            sc: Scene = gen.render(page, shake(i, SIZE), np.random.default_rng([SEED, i]))
            writer.write(sc.image)
            frames.append({"frame": i, "numbers": [number_dict(n) for n in sc.numbers]})
    finally:
        writer.release()
    return {
        "file": path.name,
        "size": list(SIZE),
        "fps": FPS,
        "frames": FRAMES,
        "codec": "mp4v",
        "segments": [
            {"first": 0, "last": CHANGE_AT - 1, "values": [v for ln in BEFORE for v in ln]},
            {"first": CHANGE_AT, "last": FRAMES - 1, "values": [v for ln in AFTER for v in ln]},
        ],
        "per_frame": frames,
        "made_by": f"tools/make_sample.py (MNIST test digits, seed {SEED})",
    }


def make_stills(gen: SceneGenerator, out: Path) -> dict[str, Any]:
    truth = {}
    for name, condition, seed in STILLS:
        assert condition in CONDITIONS
        sc = gen.scene(condition, seed)
        cv2.imwrite(str(out / name), sc.image, [cv2.IMWRITE_JPEG_QUALITY, 88])
        t = sc.truth()
        t["file"] = name
        t.pop("params", None)
        truth[name] = t
    return truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "samples"), help="output folder (default samples/)")
    ap.add_argument("--mnist-dir", default=None, help="folder of the MNIST IDX files (default $MNIST_DIR)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        gen = SceneGenerator(size=SIZE, mnist_dir=args.mnist_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    video = make_video(gen, out / "sample.mp4")
    (out / "sample.json").write_text(json.dumps(video, separators=(",", ":")) + "\n")
    stills = make_stills(gen, out)
    (out / "stills.json").write_text(json.dumps(stills, indent=1) + "\n")
    cap = cv2.VideoCapture(str(out / "sample.mp4"))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    size_kb = (out / "sample.mp4").stat().st_size / 1024
    print(f"{out / 'sample.mp4'}: {n} frames, {size_kb:.0f} KiB; values "
          f"{' '.join(video['segments'][0]['values'])} -> {' '.join(video['segments'][1]['values'])} "
          f"at frame {CHANGE_AT}")
    for name, t in stills.items():
        print(f"{out / name}: {' '.join(x['value'] for x in t['numbers'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
