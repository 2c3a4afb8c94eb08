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

    python tools/soak.py --minutes 25 --faults

``--faults`` adds, after the warm-up and one at a time (each once the daemon has recovered from the previous
one, plus ``--fault-gap-s``, 30 s), in rotation: the camera's stream dropped (the server closes the
connection), the broker restarted, SIGHUP with the config unchanged, a web viewer vanishing mid-stream
(alternately with a reset and silently, its socket left open and unread), the camera away for 20 s (its port
refuses connections); once, from 40% of the run on, the broker away for 60 s instead of a restart and a reload
that changes a setting (``mqtt.keepalive_s``, which rebuilds every sink) instead of a plain SIGHUP. The report
gives per fault kind how many were injected, how many recovered and the worst recovery time; whether every
reading and error event reached the broker in order (copies only after a reconnect, as QoS 1 allows); RSS,
threads and open files sampled before each fault with their fitted growth per fault; the log's lines per
minute. The exit code is 1 when a check fails. The web page gets two stream slots (``web.max_streams: 2``),
so a vanished viewer's slot that is never given back shows at the next fault.

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
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
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
    """Serves ``/video.mjpg``: the frames in a loop at ``fps``, like an IP camera (a slow client misses frames).

    For the fault mode it can also drop its viewers' connections (``drop()``: a Wi-Fi hiccup) and go away for a
    while (``go_down()`` then ``come_back()``: a camera rebooting; its port refuses connections meanwhile)."""

    def __init__(self, frames: list[bytes], fps: float) -> None:
        self.frames, self.fps = frames, fps
        self.sent = 0
        # bumped by drop(): a streaming handler of an older generation ends its connection
        self.generation = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=cam")
                self.end_headers()
                period, due, i = 1.0 / outer.fps, time.monotonic(), 0
                generation = outer.generation
                try:
                    while not outer.stopping.is_set() and outer.generation == generation:
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
        self._handler = Handler
        self.server: ThreadingHTTPServer | None = None
        self._listen(0)
        assert self.server is not None
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/video.mjpg"

    def _listen(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="camera", daemon=True).start()

    def drop(self) -> None:
        """End every open stream (the client sees the connection closed); new connections are served."""
        self.generation += 1

    def go_down(self) -> None:
        """Drop every stream and stop listening: connections are refused until ``come_back()``."""
        self.drop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def come_back(self) -> None:
        if self.server is None:
            self._listen(self.port)  # the same port: the daemon's URL does not change

    def close(self) -> None:
        self.stopping.set()
        if self.server is not None:
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


def config_text(out: Path, camera_url: str, broker_port: int, threads: int, web_port: int) -> str:
    """The daemon's config for a soak run: every sink, the web page, heartbeats."""
    return f"""source:
  spec: {camera_url}
model:
  path: {ROOT / 'models' / 'digits_int8.tflite'}
  num_threads: {threads}
sinks:
  outputs: [stdout, "file:{out / 'readings.jsonl'}", "csv:{out / 'readings.csv'}",
            "mqtt://127.0.0.1:{broker_port}", "overlay:{out / 'overlay.mp4'}"]
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
"""


def written_by_sinks(out: Path) -> tuple[int, set[tuple[str | None, str | None]]]:
    """Lines in the ``file:`` sink's files (rotated ones too) and the distinct events in the ``csv:`` ones."""
    file_lines = 0
    for p in sorted(out.glob("readings.jsonl*")):
        file_lines += sum(1 for line in p.read_text().splitlines() if line.strip())
    csv_events: set[tuple[str | None, str | None]] = set()
    for p in sorted(out.glob("readings.csv*")):
        with p.open(newline="") as f:
            for row in csv.DictReader(f):
                csv_events.add((row.get("ts"), row.get("frame")))
    return file_lines, csv_events


def start_daemon(cfg: Path, out: Path) -> tuple[subprocess.Popen, Path, Path]:
    """``python -m edge --config CFG``, as the unit runs it (no notify socket), its stdout and stderr in files
    in ``out``: ``(process, stdout path, stderr path)``."""
    stdout_path, stderr_path = out / "stdout.jsonl", out / "stderr.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NOTIFY_SOCKET", None)
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:  # the child keeps its own copies
        proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT, env=env,
                                stdout=stdout, stderr=stderr)
    return proc, stdout_path, stderr_path


def wait_for_web(proc: subprocess.Popen, stderr_path: Path, deadline: float) -> None:
    """Until the daemon says its web page is up; SoakError with its log if it dies or ``deadline`` passes."""
    while "web page on" not in stderr_path.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SoakError(f"daemon did not start:\n{stderr_path.read_text()[-1500:]}")
        time.sleep(0.2)


def stop_daemon(proc: subprocess.Popen) -> None:
    """SIGTERM, as systemd stops the unit; SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def soak(video: Path, seconds: float, out: Path, sample_s: float, warmup_s: float, threads: int,
         stop: threading.Event | None = None, faults: FaultPlan | None = None) -> dict[str, Any]:
    """Run the daemon for ``seconds`` (or until ``stop`` is set: the report then covers the time so far);
    with ``faults``, inject them on that plan after the warm-up (see "fault injection" below)."""
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
    # With faults the broker keeps its subscribers' sessions across its restarts (the recorder's, see there);
    # a previous run's sessions and retained messages are not this run's.
    if faults is not None:
        for old_db in broker_dir.glob("*.db"):
            old_db.unlink()
    broker = Mosquitto(broker_dir, persistence=faults is not None)
    broker.start()
    try:
        if faults is not None:
            return _soak_faults(video, fps, camera, broker, seconds, out, sample_s, warmup_s, threads, stop, faults)
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
    cfg.write_text(config_text(out, camera.url, broker.port, threads, web_port))
    proc, stdout_path, stderr_path = start_daemon(cfg, out)
    base = f"http://127.0.0.1:{web_port}"
    viewer: Viewer | None = None
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()
    try:
        wait_for_web(proc, stderr_path, t0 + 60)
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
        stop_daemon(proc)
    # Let the last MQTT messages arrive, then compare every sink with stdout.
    events = read_events(stdout_path)
    readings = [e for e in events if "error" not in e and not e.get("heartbeat")]
    heartbeats = sum(1 for e in events if e.get("heartbeat"))
    recorder.wait_for(lambda ms: len(ms) >= len(events), timeout=15)
    mqtt_events = len(recorder.messages)
    recorder.close()
    file_lines, csv_events = written_by_sinks(out)
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


# ------------------------------------------------------------------------------------------ fault injection
#
# ``--faults``: the same run, while what months of operation bring happens on a schedule, one fault at a time
# (each waits until the daemon has recovered from the one before, plus ``gap_s``): the camera's stream dropped
# and the camera away for a while, the broker restarted and once away for a minute, SIGHUP (and once a reload
# that changes a setting), a web viewer that vanishes mid-stream. Every fault records when it ended and when the
# daemon was observed to have recovered; the daemon's RSS, threads and open files are sampled just before each
# fault, so a leak per reconnect shows as a staircase against the fault count.

CAMERA_DROP, CAMERA_OUTAGE = "camera_drop", "camera_outage"
BROKER_RESTART, BROKER_OUTAGE = "broker_restart", "broker_outage"
SIGHUP_SAME, SIGHUP_CHANGED = "sighup", "sighup_changed"
VIEWER_VANISH = "viewer_vanish"
#: the rotation; broker_outage and sighup_changed take the place of one broker_restart and one sighup
ROTATION = (CAMERA_DROP, BROKER_RESTART, SIGHUP_SAME, VIEWER_VANISH, CAMERA_OUTAGE)
ALL_KINDS = (*ROTATION, BROKER_OUTAGE, SIGHUP_CHANGED)
#: the "harmless" change of the one changing reload: the MQTT keep-alive, which rebuilds every sink (the MQTT
#: client included) without changing what is read or published
CHANGED_KEEPALIVE_S = 45


@dataclass
class FaultPlan:
    """How often and how long; the defaults are the real-time ones, a test compresses them."""

    gap_s: float = 30.0  # quiet time after a fault recovered, before the next one
    camera_down_s: float = 20.0
    broker_down_s: float = 1.0  # an ordinary restart (an upgrade, a reboot of the broker's host)
    broker_long_down_s: float = 60.0
    rotation: tuple[str, ...] = ROTATION
    # the once-only faults come at the first chance after this fraction of the run
    once_after: float = 0.4
    # Recovery limits. A camera: the capture's back-off tops at source.reconnect_max_s (30 s) after the return,
    # plus an open (FFmpeg's timeout, read_timeout_s 10 s). The broker: paho's back-off tops at 30 s, and the
    # readings queued meanwhile need a moment to drain. A reload: applied at the next frame.
    camera_limit_s: float = 45.0
    broker_limit_s: float = 45.0
    reload_limit_s: float = 15.0
    viewer_limit_s: float = 60.0  # a silent viewer is dropped after 10 s without progress, once buffers filled
    viewer_reset_limit_s: float = 10.0  # a closed connection's slot is freed at once
    # "flat": the fitted growth per fault must stay under these
    rss_mib_per_fault: float = 0.3
    fds_per_fault: float = 0.2
    threads_per_fault: float = 0.2
    max_log_lines_per_min: int = 60


def _event_key(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def _event_time(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["ts"]).timestamp()


def read_events(path: Path) -> list[dict[str, Any]]:
    """The event lines written so far (a line being written is left for the next look)."""
    text = path.read_text()
    lines = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
    return [json.loads(line) for line in lines if line.strip()]


def check_delivery(expected: list[str], received: list[tuple[str, float]], renewals: list[float]) -> dict[str, Any]:
    """Compare the events the broker delivered (``received``: key, arrival time) with stdout's (``expected``,
    in order): every one there, in order, and copies only where QoS 1 allows them - a message whose PUBACK was
    lost with the connection is sent again after the next connect, so a copy is fine only if a connection was
    renewed (``renewals``: broker restarts, sink rebuilds) between the first arrival and the copy."""
    first: dict[str, float] = {}
    order: list[str] = []
    copies = unexplained = 0
    for key, at in received:
        if key in first:
            copies += 1
            if not any(first[key] < r <= at for r in renewals):
                unexplained += 1
        else:
            first[key] = at
            order.append(key)
    wanted = set(expected)
    arrived = [k for k in order if k in wanted]
    rank = {k: i for i, k in enumerate(expected)}
    out_of_order = sum(1 for a, b in zip(arrived, arrived[1:], strict=False) if rank[b] < rank[a])
    return {"expected": len(expected), "delivered": len(arrived), "missing": len(wanted - set(first)),
            "unexpected": len(order) - len(arrived), "copies": copies, "copies_unexplained": unexplained,
            "out_of_order": out_of_order}


def per_fault_slope(points: list[tuple[int, float]]) -> float:
    """Least-squares growth per fault of (faults so far, value) samples: a leak per reconnect is a staircase."""
    if len(points) < 3 or len({x for x, _ in points}) < 2:
        return 0.0
    x = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def growth_by_kind(results: list[dict[str, Any]], settled: list[dict[str, float]], name: str) -> dict[str, Any]:
    """What each kind of fault added to ``name`` in all: the change from the sample before each fault to the
    sample before the next one (or the last one), summed per kind."""
    out: dict[str, Any] = {}
    for i, r in enumerate(results):
        if i + 1 < len(settled):
            g = out.setdefault(r["kind"], {"faults": 0, "added": 0.0})
            g["faults"] += 1
            g["added"] = round(g["added"] + settled[i + 1][name] - settled[i][name], 2)
    return out


LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ (\w+) ")


def log_rate(text: str) -> dict[str, Any]:
    """Lines per minute of the daemon's log (a continuation line - a traceback's - counts in its record's
    minute), and how many records per level."""
    per_min: dict[int, int] = {}
    levels: dict[str, int] = {}
    t0: float | None = None
    minute = 0
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            t0 = t if t0 is None else t0
            minute = int((t - t0) // 60)
            levels[m.group(2)] = levels.get(m.group(2), 0) + 1
        per_min[minute] = per_min.get(minute, 0) + 1
    return {"lines": sum(per_min.values()), "max_lines_per_min": max(per_min.values(), default=0),
            "lines_per_min": [per_min.get(i, 0) for i in range(max(per_min, default=-1) + 1)],
            "levels": levels, "tracebacks": text.count("Traceback (most recent call last)")}


class FaultInjector:
    """Runs the schedule in its own thread while the main loop samples; ``results`` holds one dict per fault."""

    def __init__(self, plan: FaultPlan, *, camera: MjpegCamera, broker: Mosquitto, proc: subprocess.Popen[bytes],
                 cfg: Path, base: str, web_port: int, recorder: Recorder, stdout_path: Path, stderr_path: Path,
                 t0: float, start_at: float, end_at: float, stop: threading.Event) -> None:
        self.plan, self.camera, self.broker, self.proc = plan, camera, broker, proc
        self.cfg, self.base, self.web_port, self.recorder = cfg, base, web_port, recorder
        self.stdout_path, self.stderr_path = stdout_path, stderr_path
        self.t0, self.start_at, self.end_at, self.stop = t0, start_at, end_at, stop
        self.results: list[dict[str, Any]] = []
        # (faults so far, RSS/threads/fds) taken just before each fault and after the last one
        self.settled: list[dict[str, float]] = []
        # monotonic times the daemon's MQTT connection was renewed (for check_delivery's QoS 1 allowance)
        self.renewals: list[float] = []
        self.error: str | None = None
        self._camera_down = self._broker_down = False
        self.thread = threading.Thread(target=self._run, name="faults", daemon=True)

    # -------------------------------------------------------------------------------------------- schedule

    def _budget(self, kind: str, stall: bool) -> float:
        """How long a fault may take to inject and recover: one is only started if it fits in the run."""
        p = self.plan
        if kind == VIEWER_VANISH:
            return p.viewer_limit_s if stall else p.viewer_reset_limit_s
        return {CAMERA_DROP: p.camera_limit_s, CAMERA_OUTAGE: p.camera_down_s + p.camera_limit_s,
                BROKER_RESTART: p.broker_down_s + p.broker_limit_s,
                BROKER_OUTAGE: p.broker_long_down_s + p.broker_limit_s,
                SIGHUP_SAME: p.reload_limit_s, SIGHUP_CHANGED: p.reload_limit_s + p.broker_limit_s}[kind]

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the run is stopped; False if it was."""
        return not self.stop.wait(max(0.0, seconds))

    def _run(self) -> None:
        try:
            if not self._wait(self.start_at - time.monotonic()):
                return
            i = vanishes = 0
            done_once: set[str] = set()
            while not self.stop.is_set():
                kind = self.plan.rotation[i % len(self.plan.rotation)]
                i += 1
                middle = time.monotonic() - self.t0 >= self.plan.once_after * (self.end_at - self.t0)
                for ordinary, once in ((BROKER_RESTART, BROKER_OUTAGE), (SIGHUP_SAME, SIGHUP_CHANGED)):
                    if kind == ordinary and middle and once not in done_once:
                        kind = once
                stall = vanishes % 2 == 1  # vanishing viewers alternate: reset, then silent
                if time.monotonic() + self._budget(kind, stall) > self.end_at - 5:
                    # no time for this one; a shorter one later in the rotation may still fit
                    if all(time.monotonic() + self._budget(k, False) > self.end_at - 5 for k in self.plan.rotation):
                        break
                    continue
                done_once.add(kind)
                if self.proc.poll() is not None:
                    return
                self.settled.append(self._settled_sample())
                t = time.monotonic()
                result: dict[str, Any] = {"kind": kind, "t": round(t - self.t0, 1)}
                if kind in (CAMERA_DROP, CAMERA_OUTAGE):
                    seen = self._camera_fault(kind == CAMERA_OUTAGE)
                elif kind in (BROKER_RESTART, BROKER_OUTAGE):
                    seen = self._broker_fault(kind == BROKER_OUTAGE)
                elif kind in (SIGHUP_SAME, SIGHUP_CHANGED):
                    seen = self._reload(kind == SIGHUP_CHANGED)
                else:
                    seen = self._viewer_vanish(stall)
                    vanishes += 1
                if not seen:
                    break  # the run was stopped in the middle of this fault: nothing to judge
                result.update(seen)
                result["daemon_alive"] = self.proc.poll() is None
                result["recovered"] = bool(result.get("recovered")) and result["daemon_alive"]
                self.results.append(result)
                print(f"[soak] fault {len(self.results)} at {result['t']:.0f} s: {kind} -> "
                      + ("recovered" if result["recovered"] else "NOT RECOVERED")
                      + (f" in {result['recovery_s']:.1f} s" if result.get("recovery_s") is not None else ""),
                      file=sys.stderr, flush=True)
                if not self._wait(self.plan.gap_s):
                    break
            if self.proc.poll() is None:
                self.settled.append(self._settled_sample())
        except Exception as exc:  # noqa: BLE001 - reported as a failed check, not a silent thread death
            log.exception("fault injector failed")
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            # whatever happened, the final checks need the camera and the broker back
            if self._camera_down:
                self.camera.come_back()
            if self._broker_down:
                self.broker.start()

    def _settled_sample(self) -> dict[str, float]:
        """RSS, threads and open files between faults: three looks 0.3 s apart, the median RSS and the fewest
        threads and files (an API poll's connection or a file being rotated at that instant is not a leak)."""
        looks = []
        for _ in range(3):
            looks.append(proc_sample(self.proc.pid))
            time.sleep(0.3)
        return {"faults": len(self.results), "t": time.monotonic() - self.t0,
                "rss_mib": float(np.median([x["rss_mib"] for x in looks])),
                "threads": min(x["threads"] for x in looks), "fds": min(x["fds"] for x in looks)}

    def _until(self, predicate: Any, timeout: float, poll_s: float = 0.2) -> float | None:
        """Seconds until ``predicate()`` held, or None if it did not within ``timeout`` (or the run stopped)."""
        started = time.monotonic()
        while True:
            if predicate():
                return time.monotonic() - started
            if time.monotonic() - started > timeout or self.stop.wait(poll_s):
                return None

    # -------------------------------------------------------------------------------------------- faults

    def _camera_fault(self, outage: bool) -> dict[str, Any]:
        """Recovered: the outage's one error event, then events again, within the limit of the return."""
        wall0 = time.time()
        errors0 = metrics(self.base)["errors_total"]
        if outage:
            self.camera.go_down()
            self._camera_down = True
            if not self._wait(self.plan.camera_down_s):
                return {}
            self.camera.come_back()
            self._camera_down = False
        else:
            self.camera.drop()
        back = time.time()
        seen: dict[str, float] = {}

        def resumed() -> bool:
            after = [e for e in read_events(self.stdout_path) if _event_time(e) >= wall0]
            first_error = next((i for i, e in enumerate(after) if "error" in e), None)
            if first_error is None:
                return False
            later = [e for e in after[first_error + 1:] if "error" not in e and _event_time(e) >= back]
            if later:
                seen["at"] = _event_time(later[0])
                seen["error_events"] = sum(1 for e in after if "error" in e)
            return bool(later)

        waited = self._until(resumed, self.plan.camera_limit_s)
        out: dict[str, Any] = {"down_s": round(back - wall0, 1)}
        if waited is None:
            return {**out, "recovered": False, "recovery_s": None,
                    "error_events": int(metrics(self.base)["errors_total"] - errors0)}
        # one error event per outage (the daemon's promise), and events from the camera within the limit
        return {**out, "recovery_s": round(seen["at"] - back, 2), "error_events": int(seen["error_events"]),
                "recovered": seen["error_events"] == 1}

    def _online_after(self, since: float) -> bool:
        """The daemon said ``online`` (it does on every connect) after ``since`` (monotonic); a retained copy
        the recorder gets on re-subscribing does not count."""
        return any(m.topic.endswith("/status") and m.text == "online" and not m.retain and m.ts > since
                   for m in list(self.recorder.messages))

    def _delivered(self, keys: list[str]) -> bool:
        got = {_event_key(json.loads(m.payload)) for m in list(self.recorder.messages) if m.topic.endswith("/event")}
        return all(k in got for k in keys)

    def _broker_fault(self, long: bool) -> dict[str, Any]:
        """Recovered: the daemon reconnects, every reading made while the broker was away reaches it, and the
        disk queue drains, within the limit of the broker's return."""
        wall0, stopped = time.time(), time.monotonic()
        self.broker.stop()
        self._broker_down = True
        peak_queue = 0.0
        down_until = time.monotonic() + (self.plan.broker_long_down_s if long else self.plan.broker_down_s)
        while time.monotonic() < down_until:
            peak_queue = max(peak_queue, metrics(self.base)["mqtt_queue_depth"])
            if not self._wait(min(1.0, down_until - time.monotonic())):
                return {}
        self.broker.start()
        self._broker_down = False
        back, back_wall = time.monotonic(), time.time()
        self.renewals.append(back)
        while_down = [_event_key(e) for e in read_events(self.stdout_path)
                      if not e.get("heartbeat") and wall0 <= _event_time(e) <= back_wall]
        # Any "online" said after the stop is the reconnect: the daemon can be back before broker.start() has
        # seen the port open (it retries at once), and an "online" before ``back`` counted as none at all.
        reconnect_s = self._until(lambda: self._online_after(stopped), self.plan.broker_limit_s)
        left = self.plan.broker_limit_s - (reconnect_s or 0)
        delivered_s = self._until(lambda: self._delivered(while_down), left)
        # The disk queue empties too; /metrics refreshes its depth every service.status_interval_s (5 s), so
        # this is checked, but not counted in the recovery time.
        drained = self._until(lambda: metrics(self.base)["mqtt_queue_depth"] == 0, left) is not None
        recovered = reconnect_s is not None and delivered_s is not None and drained
        return {"down_s": round(back_wall - wall0, 1), "peak_queue_depth": int(peak_queue),
                "reconnect_s": None if reconnect_s is None else round(reconnect_s, 2),
                "readings_while_down": len(while_down), "queue_drained": drained,
                "recovery_s": round((reconnect_s or 0) + delivered_s, 2) if recovered else None,
                "recovered": recovered}

    def _reload(self, changed: bool) -> dict[str, Any]:
        """Recovered: the daemon says it applied the reload (or found nothing changed) and events go on."""
        if changed:
            text = self.cfg.read_text()
            self.cfg.write_text(text.replace("mqtt:\n", f"mqtt:\n  keepalive_s: {CHANGED_KEEPALIVE_S}\n", 1))
        mark = len(self.stderr_path.read_text())
        sent, sent_wall = time.monotonic(), time.time()
        if changed:
            self.renewals.append(sent)  # every sink is rebuilt: a new MQTT connection
        self.proc.send_signal(signal.SIGHUP)
        said = "config reloaded from" if changed else "config unchanged"
        applied_s = self._until(lambda: said in self.stderr_path.read_text()[mark:], self.plan.reload_limit_s)
        events_s = self._until(lambda: any("error" not in e and _event_time(e) >= sent_wall
                                           for e in read_events(self.stdout_path)[-20:]), self.plan.reload_limit_s)
        out: dict[str, Any] = {"applied_s": None if applied_s is None else round(applied_s, 2),
                               "events_resumed_s": None if events_s is None else round(events_s, 2)}
        recovered = applied_s is not None and events_s is not None
        if changed:
            # the rebuilt MQTT sink connects once the old one has closed
            reconnect_s = self._until(lambda: self._online_after(sent), self.plan.broker_limit_s)
            out["mqtt_reconnect_s"] = None if reconnect_s is None else round(reconnect_s, 2)
            recovered = recovered and reconnect_s is not None
        out["recovery_s"] = max(v for k, v in out.items() if v is not None) if recovered else None
        return {**out, "recovered": recovered}

    def _stream_request(self, sock: socket.socket) -> None:
        sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{self.web_port}\r\n\r\n".encode())

    def _viewer_vanish(self, stall: bool) -> dict[str, Any]:
        """A viewer takes the last stream slot, reads a few frames and vanishes: at once (a closed laptop lid
        with a reset) or silently (Wi-Fi gone: the socket stays open and nothing is read). Recovered: the slot
        is free again - a new viewer gets the stream - within the limit."""
        deadline = time.monotonic() + 15
        while True:
            sock = socket.socket()
            if stall:
                # a small receive window, so the daemon's writes block soon, as across a dead Wi-Fi link
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", self.web_port))
            self._stream_request(sock)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            if head.startswith(b"HTTP/1.1 200"):
                break
            sock.close()  # a slot still held by the previous fault's probe: try again
            if time.monotonic() > deadline:
                return {"recovered": False, "recovery_s": None, "detail": "no stream slot to begin with"}
            time.sleep(0.5)
        data = head
        while data.count(b"Content-Length:") < 2:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        gone = time.monotonic()
        if not stall:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, no goodbye
            sock.close()

        def slot_free() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.web_port), timeout=5) as probe:
                    self._stream_request(probe)
                    return probe.recv(12).startswith(b"HTTP/1.1 200")
            except OSError:
                return False

        try:
            waited = self._until(slot_free, self.plan.viewer_limit_s if stall else self.plan.viewer_reset_limit_s,
                                 poll_s=0.5)
        finally:
            if stall:
                sock.close()
        return {"how": "stalled" if stall else "reset", "recovery_s": None if waited is None else round(waited, 2),
                "recovered": waited is not None, "since_gone_s": round(time.monotonic() - gone, 1)}


def fault_report(injector: FaultInjector, plan: FaultPlan, stdout_path: Path, stderr_path: Path) -> dict[str, Any]:
    """Per fault kind: injected, recovered, worst recovery; leaks per fault; the log's rate; MQTT delivery."""
    kinds: dict[str, Any] = {}
    for kind in ALL_KINDS:
        rs = [r for r in injector.results if r["kind"] == kind]
        times = [r["recovery_s"] for r in rs if r.get("recovery_s") is not None]
        kinds[kind] = {"injected": len(rs), "recovered": sum(1 for r in rs if r["recovered"]),
                       "worst_recovery_s": max(times) if times else None,
                       "median_recovery_s": round(float(np.median(times)), 2) if times else None}
    leaks: dict[str, Any] = {}
    points = injector.settled
    for name, limit in (("rss_mib", plan.rss_mib_per_fault), ("threads", plan.threads_per_fault),
                        ("fds", plan.fds_per_fault)):
        slope = per_fault_slope([(int(p["faults"]), p[name]) for p in points])
        by_kind = growth_by_kind(injector.results, points, name)
        # A fault injected once (the changing reload) hides in the fitted slope: its own step counts too.
        # RSS moves by a few MiB on its own (the allocator), so only the slope judges it.
        steps_ok = name == "rss_mib" or all(
            g["added"] <= max(1.0, limit * g["faults"]) for g in by_kind.values())
        leaks[name] = {"before_first_fault": round(points[0][name], 1) if points else None,
                       "after_last_fault": round(points[-1][name], 1) if points else None,
                       "min": round(min(p[name] for p in points), 1) if points else None,
                       "max": round(max(p[name] for p in points), 1) if points else None,
                       "slope_per_fault": round(slope, 3), "limit_per_fault": limit, "added_by_kind": by_kind,
                       "flat": slope <= limit and steps_ok}
    events = read_events(stdout_path)
    expected = [_event_key(e) for e in events if not e.get("heartbeat")]
    received = [(_event_key(json.loads(m.payload)), m.ts) for m in list(injector.recorder.messages)
                if m.topic.endswith("/event") and not json.loads(m.payload).get("heartbeat")]
    delivery = check_delivery(expected, received, injector.renewals)
    return {"kinds": kinds, "faults": injector.results, "leaks": leaks, "settled_samples": points,
            "mqtt_delivery": delivery, "log": log_rate(stderr_path.read_text()),
            "injector_error": injector.error}


def fault_checks(fr: dict[str, Any], plan: FaultPlan) -> dict[str, bool]:
    checks = {"fault injector ran without error": fr["injector_error"] is None,
              "faults injected": sum(k["injected"] for k in fr["kinds"].values()) > 0}
    for kind, k in fr["kinds"].items():
        if k["injected"]:
            checks[f"{kind}: every one recovered"] = k["recovered"] == k["injected"]
    checks["daemon never exited during faults"] = all(r["daemon_alive"] for r in fr["faults"])
    d = fr["mqtt_delivery"]
    checks["broker got every reading, in order (QoS 1 copies only after a reconnect)"] = (
        d["missing"] == 0 and d["out_of_order"] == 0 and d["copies_unexplained"] == 0 and d["unexpected"] == 0)
    for name, leak in fr["leaks"].items():
        checks[f"{name} flat across faults"] = leak["flat"]
    checks["no error storm in the log"] = (fr["log"]["max_lines_per_min"] <= plan.max_log_lines_per_min
                                           and fr["log"]["tracebacks"] == 0)
    return checks


def _soak_faults(video: Path, fps: float, camera: MjpegCamera, broker: Mosquitto, seconds: float, out: Path,
                 sample_s: float, warmup_s: float, threads: int, stop: threading.Event,
                 plan: FaultPlan) -> dict[str, Any]:
    """The run with faults: as ``_soak_with_broker``, plus the injector and its report."""
    # A persistent session on a broker that keeps it across restarts: what the daemon delivers while the
    # recorder itself is reconnecting after a broker restart is held for it, not lost to the check.
    recorder = Recorder(broker.port, ["digits/+/event", "digits/+/status"], persistent=True)
    web_port = _free_port()
    cfg = out / "config.yaml"
    # Two stream slots: the viewer's and the one a vanished viewer must give back (with the default four a
    # slot that is never freed would go unnoticed for three faults).
    cfg.write_text(config_text(out, camera.url, broker.port, threads, web_port) + "  max_streams: 2\n")
    proc, stdout_path, stderr_path = start_daemon(cfg, out)
    base = f"http://127.0.0.1:{web_port}"
    viewer: Viewer | None = None
    injector: FaultInjector | None = None
    samples: list[dict[str, float]] = []
    exited_early: int | None = None
    # the injector's own stop: the run's (SIGTERM, Ctrl-C), a daemon that died, or the run's end
    halt = threading.Event()
    t0 = time.monotonic()
    try:
        wait_for_web(proc, stderr_path, t0 + 60)
        viewer = Viewer(base)
        injector = FaultInjector(plan, camera=camera, broker=broker, proc=proc, cfg=cfg, base=base,
                                 web_port=web_port, recorder=recorder, stdout_path=stdout_path,
                                 stderr_path=stderr_path, t0=t0, start_at=t0 + warmup_s, end_at=t0 + seconds,
                                 stop=halt)
        injector.thread.start()
        next_sample = time.monotonic()
        last_print = 0.0
        while (now := time.monotonic()) - t0 < seconds and not stop.is_set():
            if proc.poll() is not None:
                # not raised: the report says which fault it died in, and the check fails
                exited_early = proc.returncode
                break
            if now >= next_sample:
                s = {"t": now - t0, **proc_sample(proc.pid), **metrics(base)}
                samples.append(s)
                next_sample += sample_s
                if now - last_print >= 30 or not last_print:
                    last_print = now
                    print(f"[soak] {s['t']:6.0f}/{seconds:.0f} s  frames {s['frames_total']:.0f}  readings "
                          f"{s['readings_total']:.0f}  errors {s['errors_total']:.0f}  queue "
                          f"{s['mqtt_queue_depth']:.0f}  RSS {s['rss_mib']:.1f} MiB  threads {s['threads']:.0f}  "
                          f"fds {s['fds']:.0f}  faults {len(injector.results)}", file=sys.stderr, flush=True)
            time.sleep(0.2)
        if stop.is_set() or exited_early is not None:
            halt.set()
        # the last fault finishes (only one that fits in the run is started)
        injector.thread.join(timeout=max(0.0, t0 + seconds - time.monotonic()) + 5)
        halt.set()
        injector.thread.join(30)
        final = {"t": time.monotonic() - t0}
        if proc.poll() is None:
            final.update(proc_sample(proc.pid), **metrics(base))
            samples.append(final)
    finally:
        if injector is not None and injector.thread.is_alive():
            halt.set()
            injector.thread.join(30)
        if viewer is not None:
            viewer.close()
        stop_daemon(proc)
    events = read_events(stdout_path)
    readings = [e for e in events if "error" not in e and not e.get("heartbeat")]
    queued = [e for e in events if not e.get("heartbeat")]
    # Heartbeats never wait for a broker that is away (they repeat the state), so only readings and error
    # events are owed; wait for the last of them.
    recorder.wait_for(lambda ms: sum(1 for m in ms if m.topic.endswith("/event")
                                     and b'"heartbeat"' not in m.payload) >= len(queued), timeout=30)
    fr = fault_report(injector, plan, stdout_path, stderr_path)
    recorder.close()
    file_lines, csv_events = written_by_sinks(out)
    with_metrics = [s for s in samples if "frames_total" in s]
    after = [s for s in with_metrics if s["t"] >= warmup_s] or with_metrics
    start, end = after[0], with_metrics[-1]
    report = {
        "mode": "faults", "video": str(video), "video_fps": fps, "seconds": round(final["t"], 1),
        "exit_code": proc.returncode, "exited_early": exited_early,
        "frames": int(end["frames_total"]), "camera_frames_sent": camera.sent,
        "frames_dropped": int(end["frames_dropped_total"]), "readings": len(readings),
        "heartbeats": sum(1 for e in events if e.get("heartbeat")), "events": len(events),
        "error_events": sum(1 for e in events if "error" in e),
        "errors": int(end["errors_total"]), "sink_failures": int(end["sink_failures_total"]),
        "camera_reconnects": int(end["reconnects_total"]),
        "rss_start_mib": round(start["rss_mib"], 1), "rss_end_mib": round(end["rss_mib"], 1),
        "rss_max_mib": round(max(s["rss_mib"] for s in after), 1),
        "rss_slope_mib_per_h": round(slope_mib_per_hour(after), 2),
        "threads_start": int(start["threads"]), "threads_end": int(end["threads"]),
        "fds_start": int(start["fds"]), "fds_end": int(end["fds"]),
        "file_sink_lines": file_lines, "csv_events": len(csv_events),
        "mqtt_events": sum(1 for m in recorder.messages if m.topic.endswith("/event")),
        "web_stream_parts": viewer.stream_parts if viewer else 0, "web_polls": viewer.polls if viewer else 0,
        "web_failures": viewer.failures if viewer else 0,
        **{f"faults_{k}": v for k, v in fr.items() if k in ("kinds", "leaks", "mqtt_delivery")},
        "log": {k: v for k, v in fr["log"].items()},
    }
    report["checks"] = {
        "exit 0 after SIGTERM": proc.returncode == 0 and exited_early is None,
        "file sink has every event": file_lines == len(events),
        "csv sink has every event": len(csv_events) == len(events),
        "readings published": len(readings) > 0,
        "web viewer served": report["web_stream_parts"] > 0 and report["web_failures"] == 0,
        **fault_checks(fr, plan),
    }
    (out / "soak.json").write_text(json.dumps({"report": report, "faults": fr, "samples": samples}, indent=1))
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
    ap.add_argument("--faults", action="store_true",
                    help="inject faults after the warm-up: camera drops and outages, broker restarts, SIGHUP, "
                         "vanishing web viewers; exit 1 if the daemon does not recover from one")
    ap.add_argument("--fault-gap-s", type=float, default=FaultPlan.gap_s,
                    help="quiet seconds after a fault recovered, before the next (with --faults)")
    args = ap.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else args.minutes * 60.0
    # SIGTERM or Ctrl-C ends the run early: the daemon is stopped and checked, the report covers the time so far.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        report = soak(args.video, seconds, args.out, args.sample_s, min(args.warmup_s, seconds / 3), args.threads,
                      stop, FaultPlan(gap_s=args.fault_gap_s) if args.faults else None)
    except SoakError as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    for kind, k in report.get("faults_kinds", {}).items():
        print(f"soak: {kind:15} injected {k['injected']:3}  recovered {k['recovered']:3}  worst "
              + (f"{k['worst_recovery_s']:.1f} s" if k["worst_recovery_s"] is not None else "-"), file=sys.stderr)
    failed = [k for k, ok in report["checks"].items() if not ok]
    if failed:
        print("soak: FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
