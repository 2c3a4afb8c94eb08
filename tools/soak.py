"""Soak: the whole daemon for minutes on a live stream, with every sink, a real broker and web viewers.

What runs (all real, all on 127.0.0.1):
- a camera stand-in: an HTTP MJPEG server playing a video in a loop at its own frame rate (the daemon reads
  it as a live source: grabber thread, newest frame only, drops counted);
- ``python -m edge`` with stdout, file: (rotating), csv:, mqtt:// (a real Mosquitto) and overlay: sinks and
  the web page, while a viewer pulls /stream.mjpg and polls /api/readings, as a browser would;
- every ``--sample-s`` seconds: the daemon's RSS, threads, open files and its /metrics counters.

At the end the daemon gets SIGTERM and every sink is checked against stdout: the file and CSV sinks hold
every event, the broker received every reading, the process exited 0. The report (JSON) has frames,
readings, dropped frames, errors, RSS at start (after warm-up) and end, and the RSS slope.

    python tools/soak.py --minutes 10 [--video samples/sample.mp4] [--out /tmp/soak]

SIGTERM or Ctrl-C ends a run early with the same checks and report; the daemon and the broker are stopped
either way. The files already in ``--out`` are deleted at the start.

Needs the mosquitto binary (Debian package mosquitto).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# The broker harness is the tests' own (tests/mosquitto.py), which imports its helpers as ``tests.*``.
sys.path.insert(0, str(ROOT))
from tests.mosquitto import Mosquitto, Recorder  # noqa: E402

log = logging.getLogger("soak")


class SoakError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------ the camera


def load_jpegs(video: Path, quality: int = 85) -> tuple[list[bytes], float]:
    """Every frame of ``video`` as JPEG (what an IP camera sends) and the video's frame rate."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise SoakError(f"cannot open video {video}")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 15.0
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    cap.release()
    if not frames:
        raise SoakError(f"no frames in {video}")
    return frames, fps


class MjpegCamera:
    """Serves ``/video.mjpg``: the frames in a loop at ``fps``, like an IP camera (a slow client misses frames)."""

    def __init__(self, frames: list[bytes], fps: float) -> None:
        self.frames, self.fps = frames, fps
        self.sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=cam")
                self.end_headers()
                period, due, i = 1.0 / outer.fps, time.monotonic(), 0
                try:
                    while not outer.stopping.is_set():
                        data = outer.frames[i % len(outer.frames)]
                        self.wfile.write(b"--cam\r\nContent-Type: image/jpeg\r\n"
                                         + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")
                        outer.sent += 1
                        i += 1
                        due += period
                        time.sleep(max(0.0, due - time.monotonic()))
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, name="camera", daemon=True).start()

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


# ------------------------------------------------------------------------------------------ a viewer


class Viewer:
    """A browser stand-in: reads the live view and polls the readings once a second."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stream_parts = 0
        self.polls = 0
        self.failures = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._stream, daemon=True),
                        threading.Thread(target=self._poll, daemon=True)]
        for t in self.threads:
            t.start()

    def _stream(self) -> None:
        while not self.stopping.is_set():
            try:
                with urllib.request.urlopen(self.base + "/stream.mjpg", timeout=10) as r:
                    while not self.stopping.is_set():
                        line = r.readline()
                        if not line:
                            break
                        if line.startswith(b"Content-Length:"):
                            r.readline()
                            r.read(int(line.split(b":")[1]))
                            self.stream_parts += 1
            except OSError:
                self.failures += 1
                time.sleep(1)

    def _poll(self) -> None:
        while not self.stopping.wait(1.0):
            try:
                with urllib.request.urlopen(self.base + "/api/readings?n=5", timeout=10) as r:
                    json.loads(r.read())
                self.polls += 1
            except (OSError, ValueError):
                self.failures += 1

    def close(self) -> None:
        self.stopping.set()


# ------------------------------------------------------------------------------------------ measuring


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MiB), threads and open file descriptors of a running process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_mib": rss_kb / 1024.0, "threads": threads, "fds": fds}


def metrics(base: str) -> dict[str, float]:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^digits_(\w+) (\S+)$", text, re.M)}


def slope_mib_per_hour(samples: list[dict[str, float]]) -> float:
    """Least-squares RSS trend over the samples after warm-up, in MiB per hour."""
    if len(samples) < 3:
        return 0.0
    t = np.array([s["t"] for s in samples])
    rss = np.array([s["rss_mib"] for s in samples])
    return float(np.polyfit(t, rss, 1)[0] * 3600.0)


def quarter_median(samples: list[dict[str, float]], first: bool) -> float:
    """Median RSS of the first (or last) quarter of the samples."""
    n = max(1, len(samples) // 4)
    part = samples[:n] if first else samples[-n:]
    return float(np.median([s["rss_mib"] for s in part]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------ the run


def soak(video: Path, seconds: float, out: Path, sample_s: float, warmup_s: float, threads: int,
         stop: threading.Event | None = None) -> dict[str, Any]:
    """Run the daemon for ``seconds`` (or until ``stop`` is set: the report then covers the time so far)."""
    stop = stop or threading.Event()
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        raise SoakError("mosquitto not installed (apt-get install mosquitto)")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    frames, fps = load_jpegs(video)
    camera = MjpegCamera(frames, fps)
    broker_dir = out / "mosquitto"
    broker_dir.mkdir(exist_ok=True)
    broker = Mosquitto(broker_dir)
    broker.start()
    try:
        return _soak_with_broker(video, fps, camera, broker, seconds, out, sample_s, warmup_s, threads, stop)
    finally:
        # Also on SIGTERM, Ctrl-C or a failure: no broker (nor daemon, below) is left running behind us.
        broker.stop()
        camera.close()


def _soak_with_broker(video: Path, fps: float, camera: MjpegCamera, broker: Mosquitto, seconds: float, out: Path,
                      sample_s: float, warmup_s: float, threads: int, stop: threading.Event) -> dict[str, Any]:
    recorder = Recorder(broker.port, ["digits/+/event"])
    web_port = _free_port()
    cfg = out / "config.yaml"
    cfg.write_text(f"""source:
  spec: {camera.url}
model:
  path: {ROOT / 'models' / 'digits_int8.tflite'}
  num_threads: {threads}
sinks:
  outputs: [stdout, "file:{out / 'readings.jsonl'}", "csv:{out / 'readings.csv'}",
            "mqtt://127.0.0.1:{broker.port}", "overlay:{out / 'overlay.mp4'}"]
  file_max_bytes: 200000
  file_backups: 1000
stabilise:
  # Heartbeats add steady traffic to every sink (and the file sink's rotation).
  heartbeat_s: 2.0
mqtt:
  queue_dir: {out / 'queue'}
service:
  state_dir: {out / 'state'}
web:
  enabled: true
  port: {web_port}
""")
    stdout_path, stderr_path = out / "stdout.jsonl", out / "stderr.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT, env=env,
                            stdout=stdout_path.open("w"), stderr=stderr_path.open("w"))
    base = f"http://127.0.0.1:{web_port}"
    viewer: Viewer | None = None
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()
    try:
        deadline = t0 + 60
        while "web page on" not in stderr_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SoakError(f"daemon did not start:\n{stderr_path.read_text()[-1500:]}")
            time.sleep(0.2)
        viewer = Viewer(base)
        next_sample = time.monotonic()
        last_print = 0.0
        while (now := time.monotonic()) - t0 < seconds and not stop.is_set():
            if proc.poll() is not None:
                raise SoakError(f"daemon exited early ({proc.returncode}):\n{stderr_path.read_text()[-1500:]}")
            if now >= next_sample:
                s = {"t": now - t0, **proc_sample(proc.pid), **metrics(base)}
                samples.append(s)
                next_sample += sample_s
                if now - last_print >= 30 or not last_print:
                    last_print = now
                    print(f"[soak] {s['t']:6.0f}/{seconds:.0f} s  frames {s['frames_total']:.0f}  readings "
                          f"{s['readings_total']:.0f}  dropped {s['frames_dropped_total']:.0f}  "
                          f"RSS {s['rss_mib']:.1f} MiB  threads {s['threads']:.0f}  fds {s['fds']:.0f}",
                          file=sys.stderr, flush=True)
            time.sleep(0.2)
        final = {"t": time.monotonic() - t0, **proc_sample(proc.pid), **metrics(base)}
        samples.append(final)
    finally:
        if viewer is not None:
            viewer.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # Let the last MQTT messages arrive, then compare every sink with stdout.
    events = [json.loads(line) for line in stdout_path.read_text().splitlines() if line.strip()]
    readings = [e for e in events if "error" not in e and not e.get("heartbeat")]
    heartbeats = sum(1 for e in events if e.get("heartbeat"))
    recorder.wait_for(lambda ms: len(ms) >= len(events), timeout=15)
    mqtt_events = len(recorder.messages)
    recorder.close()
    file_lines = 0
    for p in sorted(out.glob("readings.jsonl*")):
        file_lines += sum(1 for line in p.read_text().splitlines() if line.strip())
    csv_events = set()
    for p in sorted(out.glob("readings.csv*")):
        with p.open(newline="") as f:
            for row in csv.DictReader(f):
                csv_events.add((row.get("ts"), row.get("frame")))
    after = [s for s in samples if s["t"] >= warmup_s] or samples
    start, end = after[0], samples[-1]
    report = {
        "video": str(video), "video_fps": fps, "seconds": round(final["t"], 1), "exit_code": proc.returncode,
        "frames": int(end["frames_total"]), "camera_frames_sent": camera.sent,
        "frames_dropped": int(end["frames_dropped_total"]), "readings": len(readings), "heartbeats": heartbeats,
        "events": len(events),
        "errors": int(end["errors_total"]), "sink_failures": int(end["sink_failures_total"]),
        "fps": round(end["frames_total"] / max(1e-9, final["t"]), 2),
        "rss_start_mib": round(start["rss_mib"], 1), "rss_end_mib": round(end["rss_mib"], 1),
        "rss_max_mib": round(max(s["rss_mib"] for s in after), 1),
        "rss_slope_mib_per_h": round(slope_mib_per_hour(after), 2),
        # Medians of the first and last quarter: robust to the allocator's few-MiB swings, unlike one sample.
        "rss_first_quarter_median_mib": round(quarter_median(after, first=True), 1),
        "rss_last_quarter_median_mib": round(quarter_median(after, first=False), 1),
        "threads_start": int(start["threads"]), "threads_end": int(end["threads"]),
        "fds_start": int(start["fds"]), "fds_end": int(end["fds"]),
        "file_sink_lines": file_lines, "file_sink_files": len(list(out.glob("readings.jsonl*"))),
        "csv_events": len(csv_events), "mqtt_events": mqtt_events,
        "web_stream_parts": viewer.stream_parts if viewer else 0, "web_polls": viewer.polls if viewer else 0,
        "web_failures": viewer.failures if viewer else 0,
        "overlay_bytes": (out / "overlay.mp4").stat().st_size if (out / "overlay.mp4").exists() else 0,
    }
    report["checks"] = {
        "exit 0 after SIGTERM": proc.returncode == 0,
        "file sink has every event": file_lines == len(events),
        "csv sink has every event": len(csv_events) == len(events),
        "broker got every event": mqtt_events >= len(events),
        "readings published": len(readings) > 0,
        "web viewer served": report["web_stream_parts"] > 0 and report["web_failures"] == 0,
    }
    (out / "soak.json").write_text(json.dumps({"report": report, "samples": samples}, indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, help="duration in seconds (overrides --minutes)")
    ap.add_argument("--video", type=Path, default=ROOT / "samples" / "sample.mp4")
    ap.add_argument("--out", type=Path, default=Path("/tmp/digits-soak"))
    ap.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS/metrics samples")
    ap.add_argument("--warmup-s", type=float, default=30.0, help="RSS 'start' is taken after this")
    ap.add_argument("--threads", type=int, default=2, help="model.num_threads")
    args = ap.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60.0
    # SIGTERM or Ctrl-C ends the run early: the daemon is stopped and checked, the report covers the time so far.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        report = soak(args.video, seconds, args.out, args.sample_s, min(args.warmup_s, seconds / 3), args.threads,
                      stop)
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    failed = [k for k, ok in report["checks"].items() if not ok]
    if failed:
        print("soak: FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
