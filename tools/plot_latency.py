"""Latency histogram of the edge pipeline: how long each frame takes from decode to numbers, as a PNG.

    python tools/plot_latency.py                               # generated 1280x720 video, 200 frames
    python tools/plot_latency.py --video samples/sample.mp4    # any video
    python tools/plot_latency.py --samples-out lat.json        # keep the per-frame times (e.g. on a Pi)
    python tools/plot_latency.py --from lat.json               # plot them later where matplotlib is

Every frame of the video is decoded and read by the daemon's ``Reader`` one after the other (the same
loop as ``python -m edge.bench``, whose video generator, model loading and stage names it reuses), and the
wall time of each frame is kept - not only the mean, since a reader that is fast on average but stalls
now and then still misses frames. The PNG (default ``plots/latency_histogram.png``) has the histogram of
per-frame latency with its median, 90th and 99th percentiles, and the spread of each stage (decode,
segment, normalise, infer, assemble). The figures are also printed (``--json`` for JSON).

matplotlib (desktop extra) is imported only to draw; the device package never imports it. Without it the
figures are still measured and printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge import bench  # noqa: E402
from edge.cli import OneLineParser, file_in_the_way  # noqa: E402
from edge.host import cpu_description  # noqa: E402

log = logging.getLogger("plot_latency")

DEFAULT_OUT = ROOT / "plots" / "latency_histogram.png"
PERCENTILES = (50, 90, 99)


# ------------------------------------------------------------------------------------------ measuring


def measure(video: Path, frames: int, reader: Any) -> dict[str, list[float]]:
    """Per-frame wall times in ms: ``total`` (decode + read) and one list per stage, frame by frame."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise bench.BenchError(f"cannot open video {video}")
    out: dict[str, list[float]] = {"total": []}
    try:
        ok, first = cap.read()
        if not ok:
            raise bench.BenchError(f"no frames could be decoded from {video}")
        reader.read(first)  # warm-up: first-call allocations are not the steady state
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        rewound = False
        while len(out["total"]) < frames:
            t0 = time.perf_counter()
            ok, f = cap.read()
            t1 = time.perf_counter()
            if not ok:
                # Loop a short video until enough frames were timed (once per pass, so a video that
                # cannot seek ends the run instead of spinning).
                if rewound or not cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
                    break
                rewound = True
                continue
            rewound = False
            res = reader.read(f)
            t2 = time.perf_counter()
            out["total"].append((t2 - t0) * 1e3)
            out.setdefault("decode", []).append((t1 - t0) * 1e3)
            for k, v in res.timings.items():
                out.setdefault(k, []).append(float(v))
    finally:
        cap.release()
    if not out["total"]:
        raise bench.BenchError(f"no frames could be decoded from {video}")
    return out


def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, percentiles and extremes of one list of times (ms)."""
    a = np.asarray(values, np.float64)
    out = {"n": int(a.size), "mean": float(a.mean()), "min": float(a.min()), "max": float(a.max()),
           "stdev": float(a.std(ddof=1)) if a.size > 1 else 0.0}
    for p in PERCENTILES:
        out[f"p{p}"] = float(np.percentile(a, p))
    return out


def summarise(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    order = ["total", *[s for s in bench.STAGES if s in samples], *[s for s in samples if s not in
                                                                   ("total", *bench.STAGES)]]
    return {k: stats(samples[k]) for k in order if samples.get(k)}


def _mpl_version(text: str) -> tuple[int, int]:
    parts = (text.split(".") + ["0"])[:2]
    return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)


def machine() -> str:
    return f"{cpu_description()}; {platform.system()}, Python {platform.python_version()}"


# ------------------------------------------------------------------------------------------ output


def format_table(summary: dict[str, dict[str, float]], meta: dict[str, Any]) -> str:
    lines = [f"{meta['video']}: {meta['size'][0]}x{meta['size'][1]}, {summary['total']['n']} frames, "
             f"{meta['digits_per_frame']:.1f} digits read per frame; {meta['runtime']}, {meta['threads']} thread(s)",
             f"{'ms per frame':<14}{'mean':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"]
    for k, s in summary.items():
        lines.append(f"{k:<14}{s['mean']:>8.2f}{s['p50']:>8.2f}{s['p90']:>8.2f}{s['p99']:>8.2f}{s['max']:>8.2f}")
    t = summary["total"]
    lines.append(f"= {1000.0 / t['mean']:.0f} frames/s on average, {1000.0 / t['p99']:.0f} at the 99th percentile")
    return "\n".join(lines)


def plot(samples: dict[str, list[float]], meta: dict[str, Any], out: Path) -> Path:
    """Write the histogram PNG; matplotlib is imported here only (desktop extra)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    summary = summarise(samples)
    total = np.asarray(samples["total"])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    hi = float(np.percentile(total, 99.5)) * 1.15
    ax.hist(np.clip(total, None, hi), bins=min(60, max(10, total.size // 4)), range=(0, hi), color="#4c72b0",
            edgecolor="white", linewidth=0.5)
    for p, colour in zip(PERCENTILES, ("#2ca02c", "#ff7f0e", "#d62728"), strict=True):
        v = summary["total"][f"p{p}"]
        ax.axvline(v, color=colour, linestyle="--", linewidth=1.5, label=f"p{p} {v:.1f} ms")
    ax.set_xlabel("ms per frame (decode + Reader.read)")
    ax.set_ylabel("frames")
    ax.set_title(f"per-frame latency, {summary['total']['n']} frames "
                 f"(mean {summary['total']['mean']:.1f} ms = {1000 / summary['total']['mean']:.0f} fps)")
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)

    stages = [k for k in summary if k != "total"]
    data = [samples[k] for k in stages]
    # Matplotlib 3.10 renamed vert=False to orientation="horizontal" (and deprecated the old name).
    horizontal = {"orientation": "horizontal"} if _mpl_version(matplotlib.__version__) >= (3, 10) else {"vert": False}
    floor = 0.01  # a stage can take 0 ms (nothing to assemble); a log axis needs a positive value
    bx.boxplot([np.maximum(d, floor) for d in data], whis=(1, 99), showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.4}, **horizontal)
    bx.set_yticks(range(1, len(stages) + 1), [f"{k}\n{summary[k]['p50']:.2f} ms" for k in stages])
    bx.invert_yaxis()  # pipeline order, top to bottom
    bx.set_xscale("log")
    bx.set_xlabel("ms per frame, log scale (box: quartiles; whiskers: p1-p99)")
    bx.set_title("per stage (median under the name)")
    bx.grid(axis="x", which="both", alpha=0.3)

    fig.suptitle(f"Edge pipeline latency - {meta['video']} {meta['size'][0]}x{meta['size'][1]}, "
                 f"{meta['digits_per_frame']:.1f} digits/frame, {meta['runtime']}, {meta['threads']} thread(s)")
    load = f", load average {meta['load']:.2f} at start" if meta.get("load") is not None else ""
    fig.text(0.01, 0.01, f"{meta['machine']}{load} - {meta['date']}", fontsize=7, color="#666666")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    # Through a temp file: an interrupted save must not leave half a PNG where the last good one was.
    tmp = _temp_beside(out)
    try:
        fig.savefig(tmp, dpi=100, format=out.suffix.lstrip(".").lower() or "png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out


def _temp_beside(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # the modes a plain write gives, not mkstemp's 0600
    os.close(fd)
    return Path(name)


def write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


META_KEYS = ("video", "size", "runtime", "threads", "digits_per_frame", "machine", "date")


def load_samples(path: Path) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Per-frame times saved by ``--samples-out``; anything else is a ValueError saying what is missing."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("samples"), dict) or \
            not isinstance(data.get("meta"), dict):
        raise ValueError("not a --samples-out file (expected an object with 'meta' and 'samples')")
    samples, meta = data["samples"], data["meta"]
    for name, values in samples.items():
        if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
            raise ValueError(f"samples.{name} is not a list of times")
    if not samples.get("total"):
        raise ValueError("no per-frame times in it (samples.total is missing or empty)")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"meta lacks {', '.join(missing)}")
    return samples, meta


def _output_problem(path: Path) -> str | None:
    """Why ``path`` cannot be written (None when it looks writable): checked before the measuring."""
    if path.is_dir():
        return "is a folder"
    if why := file_in_the_way(path.parent):
        return why
    existing = next((part for part in path.parents if part.exists()), None)
    if existing is not None and not os.access(existing, os.W_OK):
        return f"cannot be created: {existing} is not writable"
    return None


# ------------------------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> tuple[dict[str, list[float]], dict[str, Any]]:
    if args.from_file:
        return load_samples(Path(args.from_file))
    if args.video and not Path(args.video).is_file():
        raise bench.BenchError(f"video not found: {args.video}")
    # A busy machine stretches the tail; say how busy it was, so figures from two runs can be compared.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    reader, runtime = bench.make_reader(args.model, args.threads)
    with tempfile.TemporaryDirectory(prefix="plot-latency-") as tmp:
        if args.video:
            video, name = Path(args.video), str(args.video)
        else:
            video = Path(tmp) / ("bench" + bench.CODECS[args.codec][1])
            info = bench.make_video(video, min(args.frames, 120), mnist_dir=args.mnist_dir, codec=args.codec)
            name = f"generated ({info['generated']}, {args.codec})"
        first = bench.read_frames(video, 1)[0]
        digits = [sum(len(n.digits) for n in reader.read(f).numbers) for f in bench.read_frames(video, 5)]
        samples = measure(video, args.frames, reader)
    meta = {"video": name, "size": [int(first.shape[1]), int(first.shape[0])], "runtime": runtime,
            "threads": args.threads, "digits_per_frame": statistics.fmean(digits), "machine": machine(),
            "date": time.strftime("%Y-%m-%d %H:%M"), "load": load}
    return samples, meta


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(prog="python tools/plot_latency.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", help="video to time (default: generate the 1280x720 bench video)")
    ap.add_argument("--frames", type=int, default=200, help="frames to time (default 200; short videos loop)")
    ap.add_argument("--model", default=str(bench.DEFAULT_MODEL), help="int8 TFLite model")
    ap.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads (default 1)")
    ap.add_argument("--codec", choices=sorted(bench.CODECS), default="mjpg", help="codec of the generated video")
    ap.add_argument("--mnist-dir", default=None, help="MNIST folder for the generated video ($MNIST_DIR)")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help=f"PNG to write (default {DEFAULT_OUT.relative_to(ROOT)})")
    ap.add_argument("--no-plot", action="store_true", help="measure and print only")
    ap.add_argument("--samples-out", metavar="FILE", help="also save the per-frame times as JSON")
    ap.add_argument("--from", dest="from_file", metavar="FILE", help="plot saved per-frame times, measure nothing")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.frames < 1 or args.threads < 1:
        ap.error("--frames and --threads must be at least 1")
    # Before measuring: a path that cannot be written must not cost the run first.
    outputs = [("--samples-out", args.samples_out)] + ([] if args.no_plot else [("--out", args.out)])
    for flag, path in outputs:
        if path and (why := _output_problem(Path(path))):
            ap.error(f"{flag} {path}: {why}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        samples, meta = run(args)
    except bench.BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {args.from_file or 'measurement'}: {exc}", file=sys.stderr)
        return 2
    summary = summarise(samples)
    written = None
    try:
        if args.samples_out:
            write_text_atomically(Path(args.samples_out), json.dumps({"meta": meta, "samples": samples}))
        if not args.no_plot:
            written = plot(samples, meta, Path(args.out))
    except OSError as exc:
        print(f"error: cannot write {exc.filename or 'the output'}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ImportError:
        print("note: matplotlib is not installed (desktop extra); figures only. Save them with "
              "--samples-out and plot elsewhere with --from", file=sys.stderr)
    if args.json:
        print(json.dumps({"meta": meta, "ms": summary, "png": str(written) if written else None}, indent=1))
    else:
        print(format_table(summary, meta))
        if written:
            print(f"histogram: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
