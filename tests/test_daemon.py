"""The main loop with real parts: a real process, real signals, a real sd_notify socket, real video files."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import load_config
from edge.daemon import Daemon, iso_ts, run
from tests.encoded_video import sample_then_erased
from tests.synth_pages import printed_page

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "digits_int8.tflite"


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A page held in front of the camera for a long time (small frames: cheap to write and to read)."""
    page = cv2.resize(cv2.imread(str(ROOT / "samples" / "page_clean.jpg")), (320, 240))
    path = tmp_path_factory.mktemp("video") / "long.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (320, 240))
    for i in range(3000):
        w.write(np.roll(page, i % 3, axis=1))  # a slight wobble, as a hand-held page has
    w.release()
    return path


def _config(tmp_path: Path, source: Path, outputs: list[str], extra: str = "", paced: bool = False) -> Path:
    """``paced``: frames delivered at the video's own rate, as a camera would - a test that signals a running
    daemon must not depend on how fast this machine reads the whole clip."""
    cfg = tmp_path / "config.yaml"
    pace = "  realtime: true\n" if paced else ""
    cfg.write_text(
        f"source:\n  spec: {source}\n{pace}model:\n  path: {MODEL}\n  num_threads: 1\n"
        f"stabilise:\n  heartbeat_s: 0.1\nsinks:\n  outputs: {json.dumps(outputs)}\n"
        f"service:\n  persist_state: false\n  status_interval_s: 0.3\n{extra}"
    )
    return cfg


def _wait_for(predicate, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended early with {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _start(args: list[str], env: dict[str, str], stderr_path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edge", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=stderr_path.open("w"), text=True)


def _read_rest(proc: subprocess.Popen) -> Callable[[float], str]:
    """Read ``proc``'s stdout to its end in a thread (so a full pipe never blocks it); the returned function
    waits for that up to a timeout. Not ``communicate(timeout=...)`` after a ``readline()``: it reads the
    pipe's descriptor directly, and lines the readline had already buffered were lost (a flaky missing event)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(proc.stdout.read()), daemon=True)
    reader.start()

    def finish(timeout: float) -> str:
        reader.join(timeout)
        assert not reader.is_alive(), "the daemon did not finish in time"
        proc.wait(timeout=10)
        return got[0]

    return finish


def test_sigterm_stops_cleanly_and_flushes(subprocess_env: dict[str, str], tmp_path: Path, long_video: Path) -> None:
    out = tmp_path / "events.jsonl"
    cfg = _config(tmp_path, long_video, ["stdout", f"file:{out}"], paced=True)
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        _wait_for(lambda: len(_lines(out)) >= 3, proc=proc)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    assert "SIGTERM received" in err.read_text()
    assert "Traceback" not in err.read_text()
    file_events = [json.loads(line) for line in _lines(out)]
    stdout_events = [json.loads(line) for line in stdout.splitlines()]
    # every event reached both sinks complete (flushed at exit), and the run really was cut short
    assert file_events == stdout_events
    # a heartbeat may come before the first stable reading when the cold first read is slow; the first
    # *reading* must carry numbers
    readings = [e for e in file_events if not e.get("heartbeat")]
    assert readings and readings[0]["numbers"]
    assert any(e.get("heartbeat") for e in file_events)
    assert max(e["frame"] for e in file_events) < 2999


def test_kill_9_loses_nothing_already_written(subprocess_env: dict[str, str], tmp_path: Path,
                                            long_video: Path) -> None:
    """SIGKILL mid-stream: every event the daemon had published (stdout is written first, line by line) is in
    the file and CSV sinks as a complete line; nothing half-written, nothing missing but the one in flight."""
    out, table = tmp_path / "events.jsonl", tmp_path / "events.csv"
    cfg = _config(tmp_path, long_video, ["stdout", f"file:{out}", f"csv:{table}"], paced=True)
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        _wait_for(lambda: len(_lines(out)) >= 20, proc=proc)
        proc.send_signal(signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == -signal.SIGKILL
    raw = out.read_bytes()
    assert raw.endswith(b"\n")  # no torn last line
    file_events = [json.loads(line) for line in raw.decode().splitlines()]
    stdout_events = [json.loads(line) for line in stdout.splitlines()]
    assert len(file_events) >= 20
    # The sinks are written in order, so the file may lack only the event being written at the kill.
    assert file_events == stdout_events[:len(file_events)]
    assert len(stdout_events) - len(file_events) <= 1
    rows = list(csv.DictReader(table.open(newline="")))
    csv_frames = [int(r["frame"]) for r in rows]
    assert sorted(set(csv_frames)) == sorted({e["frame"] for e in file_events})[:len(set(csv_frames))]
    assert len(set(csv_frames)) >= len(file_events) - 1


def test_sighup_with_bad_config_keeps_running_and_good_config_applies(
        subprocess_env: dict[str, str], tmp_path: Path, long_video: Path) -> None:
    out1, out2 = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    cfg = _config(tmp_path, long_video, [f"file:{out1}"], paced=True)
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        _wait_for(lambda: len(_lines(out1)) >= 2, proc=proc)
        good_text = cfg.read_text()
        cfg.write_text(good_text.replace("num_threads: 1", "num_threads: many"))
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reload failed" in err.read_text(), proc=proc)
        assert "model.num_threads: must be an integer" in err.read_text()
        n = len(_lines(out1))
        _wait_for(lambda: len(_lines(out1)) > n + 2, proc=proc)  # still running on the old config
        # A secret the service cannot read (/proc/self/mem: 0600, read() fails with EIO) once took the
        # running daemon down with a traceback on SIGHUP.
        cfg.write_text(good_text + "web:\n  enabled: true\n  port: 0\n  token_file: /proc/self/mem\n")
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "cannot read /proc/self/mem" in err.read_text(), proc=proc)
        n = len(_lines(out1))
        _wait_for(lambda: len(_lines(out1)) > n + 2, proc=proc)
        cfg.write_text(good_text.replace(json.dumps([f"file:{out1}"]), json.dumps([f"file:{out1}", f"file:{out2}"])))
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: len(_lines(out2)) >= 2, proc=proc)  # the new sink gets events
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    assert "config reloaded" in err.read_text()


def test_sighup_during_an_image_run_skips_no_image(subprocess_env: dict[str, str], tmp_path: Path) -> None:
    # The frame fetched when a reload was due was thrown away: each SIGHUP cost an image its event
    # (4 of 27 photos had none) and the run still exited 0.
    pages = tmp_path / "pages"
    pages.mkdir()
    page = (ROOT / "samples" / "page_clean.jpg").read_bytes()
    n = 40
    for i in range(n):
        (pages / f"{i:03d}.jpg").write_bytes(page)
    cfg = _config(tmp_path, pages, ["stdout"])
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]  # the handlers are in place once an event is out
        rest = _read_rest(proc)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            proc.send_signal(signal.SIGHUP)
            time.sleep(0.02)
        stdout = rest(10)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    assert err.read_text().count("config unchanged") >= 2  # reloads really happened mid-run
    events = [json.loads(line) for line in lines + stdout.splitlines()]
    assert sorted(e["frame"] for e in events) == list(range(n))
    assert all(e.get("numbers") for e in events)


def test_a_reload_that_changes_stabilise_does_not_publish_the_same_reading_again(
        subprocess_env: dict[str, str], tmp_path: Path, long_video: Path) -> None:
    # The stabiliser was built anew knowing nothing: the unchanged reading was published again (a second
    # CSV row, an MQTT publish, "changed" for Home Assistant) after a SIGHUP that only changed heartbeat_s.
    out = tmp_path / "events.jsonl"
    cfg = _config(tmp_path, long_video, [f"file:{out}"], paced=True)
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        _wait_for(lambda: any(not json.loads(line).get("heartbeat") for line in _lines(out)), proc=proc)
        cfg.write_text(cfg.read_text().replace("heartbeat_s: 0.1", "heartbeat_s: 0.2"))
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reloaded" in err.read_text(), proc=proc)
        n = len(_lines(out))
        _wait_for(lambda: len(_lines(out)) >= n + 4, proc=proc)  # heartbeats go on: frames were read after it
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    readings = [e for e in map(json.loads, _lines(out)) if not e.get("heartbeat")]
    assert len(readings) == 1, readings


def test_a_reload_from_a_stream_to_images_gives_one_event_per_image(
        subprocess_env: dict[str, str], tmp_path: Path, long_video: Path) -> None:
    # The stream's stabiliser stayed in front of the images: three pages gave no event at all, exit 0.
    pages = tmp_path / "pages"
    pages.mkdir()
    names = ("page_clean.jpg", "page_ruled.jpg", "page_blue.jpg")
    for name in names:
        (pages / name).write_bytes((ROOT / "samples" / name).read_bytes())
    cfg = _config(tmp_path, long_video, ["stdout"], paced=True)
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        rest = _read_rest(proc)
        cfg.write_text(cfg.read_text().replace(str(long_video), str(pages)))
        proc.send_signal(signal.SIGHUP)
        stdout = rest(60)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    assert json.loads(first)["source"] == str(long_video)
    events = [json.loads(line) for line in stdout.splitlines()]
    events = [e for e in events if e["source"] != str(long_video)]
    assert [e["source"] for e in events] == [str(pages / n) for n in sorted(names)]
    assert all(e["numbers"] and not e.get("heartbeat") for e in events)


def test_a_reload_applies_the_log_format_and_the_staleness_limit(
        subprocess_env: dict[str, str], tmp_path: Path, long_video: Path) -> None:
    # Only logging.level was applied: logging.format and service.stale_after_s stayed as they were started,
    # while the log said "config reloaded".
    cfg = _config(tmp_path, long_video, ["stdout"], paced=True, extra="logging:\n  format: plain\n")
    cfg.write_text(cfg.read_text().replace("service:\n", "service:\n  stale_after_s: 10\n"))
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        cfg.write_text(cfg.read_text().replace("format: plain", "format: journal"))
        proc.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reloaded" in err.read_text(), proc=proc)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    assert "<6>edge.daemon: config reloaded from" in err.read_text()

    daemon = Daemon(load_config(cfg), reload=lambda: load_config(cfg))
    runner = threading.Thread(target=daemon.run, daemon=True)
    runner.start()
    try:
        _wait_for(lambda: daemon.status.snapshot().frames > 0)
        cfg.write_text(cfg.read_text().replace("stale_after_s: 10", "stale_after_s: 60\n  recent_events: 3"))
        daemon.request_reload()
        _wait_for(lambda: daemon.cfg.service.stale_after_s == 60)
        assert daemon.status.stale_after_s == 60
        assert daemon.status._events.maxlen == 3  # the page's event list too (it waited for a restart)
    finally:
        daemon.stop()
        runner.join(timeout=30)


def _catches(pid: int, sig: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(caught & (1 << (sig - 1)))


def test_a_sighup_during_start_up_is_a_reload_not_the_end(subprocess_env: dict[str, str], tmp_path: Path,
                                                          long_video: Path) -> None:
    # SIGHUP's default action is to kill: sent before the loop's handler was installed (imports, the config,
    # the model: seconds on a Pi) it ended the daemon with no word. The config comes through a FIFO here, so
    # the start-up waits in its config read for as long as the test needs.
    text = _config(tmp_path, long_video, ["stdout"], paced=True).read_text()
    fifo = tmp_path / "config.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as fh:
            fh.write(text)

    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(fifo), "--max-frames", "40"], subprocess_env, err)
    try:
        with contextlib.suppress(AssertionError):  # without a handler of its own yet, the signal goes anyway
            _wait_for(lambda: _catches(proc.pid, signal.SIGHUP), timeout=10, proc=proc)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        threading.Thread(target=feed, daemon=True).start()  # the start-up's read
        _wait_for(lambda: "starting" in err.read_text(), proc=proc)
        threading.Thread(target=feed, daemon=True).start()  # the reload's
        proc.communicate(timeout=60)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    assert "config unchanged" in err.read_text()
    assert "config reloaded" not in err.read_text()  # not both: nothing was reloaded


def test_systemd_notify_ready_watchdog_status_stopping(
        subprocess_env: dict[str, str], tmp_path: Path, long_video: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = dict(subprocess_env, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    # Paced like a camera (25 fps): 60 frames span several watchdog half-intervals however fast the reader is.
    cfg = _config(tmp_path, long_video, ["stdout"], paced=True)
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg), "--max-frames", "60"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        while proc.poll() is None:
            with contextlib.suppress(TimeoutError):
                messages.append(sock.recv(4096).decode())
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                break
    finally:
        sock.close()
        proc.kill() if proc.poll() is None else None
    _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert messages.count("READY=1") == 1
    assert "STOPPING=1" in messages
    status = [m for m in messages if m.startswith("STATUS=")]
    assert any("fps" in m and "reading:" in m for m in status), status
    assert messages.index("READY=1") < messages.index("STOPPING=1")
    # 60 frames at 25 fps last 2.4 s: about ten watchdog half-intervals (0.2 s)
    assert messages.count("WATCHDOG=1") >= 5


def test_in_process_image_run_counts_metrics_and_status(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("page_clean.jpg", "page_ruled.jpg"):
        (pages / name).write_bytes((ROOT / "samples" / name).read_bytes())
    (pages / "zz_broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "e.jsonl"
    cfg = load_config(_config(tmp_path, pages, [f"file:{out}"]))
    daemon = Daemon(cfg)
    assert daemon.run() == 0
    events = [json.loads(line) for line in _lines(out)]
    assert len(events) == 3 and events[2]["error"] == "cannot decode image"
    m = daemon.metrics.snapshot()
    assert m["frames"] == 2 and m["errors"] == 1 and m["readings"] == 2
    assert m["digits"] == sum(len(n["digits"]) for e in events[:2] for n in e["numbers"])
    assert "digits_frames_total 2" in daemon.metrics.render()
    snap = daemon.status.snapshot()
    assert snap.frames == 2 and snap.state == "stopped" and len(snap.events) == 3
    assert snap.runtime in ("ai_edge_litert", "tflite_runtime", "tensorflow")


def test_an_event_a_sink_raised_on_is_a_lost_event_in_the_exit_code(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A sink's own bug (an exception out of emit) was logged but not counted: the run exited 0 with the
    # event missing from that sink's output.
    import edge.daemon as daemon_module
    from edge.sinks.base import Sink

    class RaisesOnTheSecond(Sink):  # a real sink of the daemon's; its emit is what fails
        name = "raises"

        def __init__(self) -> None:
            self.seen = 0

        def emit(self, event: Any, frame: Any = None, result: Any = None) -> None:
            self.seen += 1
            if self.seen == 2:
                raise UnicodeEncodeError("utf-8", "\udce9", 0, 1, "surrogates not allowed")

    real_make_sinks = daemon_module.make_sinks
    monkeypatch.setattr(daemon_module, "make_sinks",
                        lambda cfg, start=True: [*real_make_sinks(cfg, start), RaisesOnTheSecond()])
    pages = tmp_path / "pages"
    pages.mkdir()
    for name in ("page_clean.jpg", "page_ruled.jpg"):
        (pages / name).write_bytes((ROOT / "samples" / name).read_bytes())
    out = tmp_path / "e.jsonl"
    daemon = Daemon(load_config(_config(tmp_path, pages, [f"file:{out}"])))
    assert daemon.run() == 1
    assert len(_lines(out)) == 2  # the other sinks got every event
    assert daemon.metrics.snapshot()["sink_failures"] == 1


def test_max_frames_on_a_video_and_event_timestamps(tmp_path: Path, long_video: Path) -> None:
    out = tmp_path / "e.jsonl"
    cfg = load_config(_config(tmp_path, long_video, [f"file:{out}"]))
    t0 = time.time()
    assert run(cfg, max_frames=12, install_signals=False) == 0
    events = [json.loads(line) for line in _lines(out)]
    assert events, "a stable reading appears within 12 frames of a still page"
    assert all(e["frame"] < 12 for e in events)
    for e in events:
        assert e["ts"] >= iso_ts(t0)[:19]
        assert e["latency_ms"] >= 0


def test_change_gate_skips_a_still_page_and_can_be_switched_off(tmp_path: Path, long_video: Path) -> None:
    """A hand-held page (it wobbles by a pixel or two): the reader runs on a fraction of the frames, every
    frame still reaches the stabiliser, and the readings are the same as with every frame read."""
    runs = {}
    for enabled in (True, False):
        out = tmp_path / f"e{enabled}.jsonl"
        extra = "" if enabled else "  gate:\n    enabled: false\n"
        text = _config(tmp_path, long_video, [f"file:{out}"]).read_text()
        cfg_path = tmp_path / f"c{enabled}.yaml"
        cfg_path.write_text(text + ("segment:\n" + extra if extra else ""))
        cfg = load_config(cfg_path)
        assert cfg.segment.gate.enabled is enabled
        daemon = Daemon(cfg, max_frames=120)
        assert daemon.run() == 0
        m = daemon.metrics.snapshot()
        readings = [e["numbers"] for e in map(json.loads, _lines(out)) if not e.get("heartbeat")]
        runs[enabled] = (m["frames"], m["reads"], [[n["value"] for n in r] for r in readings])
        digits_on_page = sum(len(n) for r in runs[enabled][2][:1] for n in r)  # 14 on this page
        # digits are counted per read, not per frame passed with the last result (616 for 5 reads before)
        assert m["digits"] <= m["reads"] * digits_on_page + 4, (m["digits"], m["reads"])
    (frames_on, reads_on, values_on), (frames_off, reads_off, values_off) = runs[True], runs[False]
    assert frames_on == frames_off == 120
    assert reads_off == 120
    # The wobble counts as motion: every 3rd frame is read (moving_read_every), plus the settling reads.
    assert 3 <= reads_on <= 120 // 3 + 5, reads_on
    assert values_on == values_off and values_on


def test_iso_timestamp_has_milliseconds_and_offset() -> None:
    ts = iso_ts(1_800_000_000.123456)
    assert ts[19:23] == ".123" and ts[23] in "+-" and ts[26] == ":"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_sigint_stops_cleanly_too(subprocess_env: dict[str, str], tmp_path: Path,
                                                   long_video: Path) -> None:
    out = tmp_path / "events.jsonl"
    cfg = _config(tmp_path, long_video, [f"file:{out}"], paced=True)
    err = tmp_path / "stderr.txt"
    proc = _start(["--config", str(cfg)], subprocess_env, err)
    try:
        _wait_for(lambda: len(_lines(out)) >= 1, proc=proc)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0 and "SIGINT received" in err.read_text()


def test_missing_live_camera_reports_once_keeps_retrying_and_pings_watchdog(
        subprocess_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    cfg = _config(tmp_path, Path("/dev/video99"), [f"file:{out}"],
                  extra="  stale_after_s: 1.0\n")
    cfg.write_text(cfg.read_text().replace("  spec: /dev/video99\n",
                                           "  spec: /dev/video99\n  reconnect_min_s: 0.1\n  reconnect_max_s: 0.8\n"))
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.2)
    env = dict(subprocess_env, NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="400000")
    err = tmp_path / "stderr.txt"
    proc = subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=err.open("w"))
    messages: list[str] = []
    try:
        _wait_for(lambda: len(_lines(out)) >= 1, proc=proc)
        deadline = time.monotonic() + 1.5  # several retries happen meanwhile
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                messages.append(sock.recv(4096).decode())
        assert proc.poll() is None, "the daemon must keep running while the camera is away"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        sock.close()
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 0, err.read_text()
    events = [json.loads(line) for line in _lines(out)]
    assert [e["error"] for e in events] == ["cannot open camera"]  # one event per outage, not per retry
    assert events[0]["source"] == "/dev/video99"
    # ready while the camera is away: holding READY=1 back until a frame came ran into TimeoutStartSec,
    # and systemd restarted the service every two minutes, for ever, when a camera was missing at boot
    assert messages.count("READY=1") == 1
    assert "WATCHDOG=1" in messages  # but the loop is alive
    assert any(m.startswith("STATUS=waiting") for m in messages), messages
    # 0.1, 0.2 and 0.4 s said at INFO while the back-off grows (at 0.8 s, the longest, once in 10 minutes)
    assert err.read_text().count("retrying in") >= 3


def test_live_stream_slower_reader_drops_frames_instead_of_queueing(tmp_path: Path, long_video: Path) -> None:
    """An HTTP stream decoded far faster than the reader runs: the daemon reads the newest frames, the
    skipped ones are counted, and latency stays bounded (no backlog)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # the daemon hangs up mid-file once it has its frames: expected, not worth a traceback

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(long_video.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "e.jsonl"
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{long_video.name}"
        # a heartbeat on every frame, so the last frame read is in the file however fast this machine is
        cfg = load_config(_config(tmp_path, Path("x"), [f"file:{out}"]),
                          {("source", "spec"): url, ("stabilise", "heartbeat_s"): 1e-6})
        daemon = Daemon(cfg, max_frames=15)
        assert daemon.run() == 0
    finally:
        server.shutdown()
        server.server_close()
    m = daemon.metrics.snapshot()
    assert m["frames"] == 15
    assert m["frames_dropped"] > 0
    frames = sorted({e["frame"] for e in map(json.loads, _lines(out))})
    # indices count grabbed frames (from 0): after 15 frames read with drops, the last index is past 14
    assert len(frames) >= 14 and frames[-1] >= 15  # the first frame only starts the heartbeat timer


def _mjpeg_camera(frames_per_connection: int, gone: threading.Event | None = None) -> Any:
    """A real HTTP MJPEG camera on 127.0.0.1 showing the clean sample page at 25 fps; after
    ``frames_per_connection`` frames it hangs up (a cable hiccup), the next connection gets the page again.
    Once ``gone`` is set it hangs up at once (shut the server down too, and the camera has gone away)."""
    import http.server

    page = cv2.resize(cv2.imread(str(ROOT / "samples" / "page_clean.jpg")), (320, 240))
    jpeg = cv2.imencode(".jpg", page)[1].tobytes()

    class Camera(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=f")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(frames_per_connection):
                    if gone is not None and gone.is_set():
                        break
                    self.wfile.write(b"--f\r\nContent-Type: image/jpeg\r\n"
                                     + f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                    time.sleep(0.04)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_stable_readings_persist_across_restarts(tmp_path: Path, long_video: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Persisted readings are a camera's (a live source): a video file is a replay, read the same every time.
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    out = tmp_path / "e.jsonl"
    cfg_path = _config(tmp_path, long_video, [f"file:{out}"])
    assert Daemon(load_config(cfg_path, {("service", "persist_state"): True}), max_frames=10).run() == 0
    assert _lines(out) and not (tmp_path / "state" / "state.json").exists()
    out.unlink()
    camera = _mjpeg_camera(frames_per_connection=10_000)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    cfg = load_config(cfg_path, {("service", "persist_state"): True, ("source", "spec"): url})
    first = Daemon(cfg, max_frames=10)
    assert first.run() == 0
    published = [e for e in map(json.loads, _lines(out)) if not e.get("heartbeat")]
    saved = json.loads((tmp_path / "state" / "state.json").read_text())
    assert [n["value"] for n in saved["numbers"]] == [n["value"] for n in published[-1]["numbers"]]
    # a restarted daemon shows the saved readings before it has read a frame
    second = Daemon(cfg, max_frames=1)
    second._setup()
    try:
        assert [n.value for n in second.status.snapshot().stable] == [n["value"] for n in saved["numbers"]]
    finally:
        second._teardown()
    # ... and, run on the same page, does not publish the same reading again: a restart is not a change
    n = len(_lines(out))
    assert Daemon(cfg, max_frames=10).run() == 0
    again = [e for e in map(json.loads, _lines(out)[n:]) if not e.get("heartbeat")]
    camera.shutdown()
    camera.server_close()
    assert again == [], again


def test_fps_metric_falls_to_zero_when_the_camera_goes(tmp_path: Path, long_video: Path) -> None:
    # /metrics kept "digits_fps 10.0" beside "digits_up 0" for as long as the camera was away: the gauge
    # was set only when a frame was read.
    gone = threading.Event()
    camera = _mjpeg_camera(frames_per_connection=10_000, gone=gone)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    cfg = load_config(_config(tmp_path, long_video, []), {
        ("source", "spec"): url, ("source", "reconnect_min_s"): 0.1, ("source", "reconnect_max_s"): 0.2,
        ("source", "read_timeout_s"): 1.0, ("service", "stale_after_s"): 0.5})
    d = Daemon(cfg)
    runner = threading.Thread(target=d.run, daemon=True)
    runner.start()
    try:
        _wait_for(lambda: d.metrics.get("fps") > 1)
        gone.set()
        camera.shutdown()
        camera.server_close()  # the camera is gone: no frame, no connection
        _wait_for(lambda: d.metrics.get("up") == 0, timeout=20)
        _wait_for(lambda: d.metrics.get("fps") == 0, timeout=5)
    finally:
        d.stop()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_the_state_store_follows_a_reload_between_a_video_and_a_camera(tmp_path: Path, long_video: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The store is a camera's: a reload to a camera must restore its last readings (it never did: the store
    # followed the start-up source), and a reload back to a video must stop saving the replay as the camera's.
    from edge.state import StateStore
    from edge.types import Number

    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    camera = _mjpeg_camera(frames_per_connection=10_000)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    StateStore(state).save_readings([Number(value="77", confidence=0.9, box=(1, 2, 3, 4), digits=())], ts="t0",
                                    source=url)
    cfg_path = _config(tmp_path, long_video, [f"file:{tmp_path / 'e.jsonl'}"])
    on_video = load_config(cfg_path, {("service", "persist_state"): True})
    on_camera = load_config(cfg_path, {("service", "persist_state"): True, ("source", "spec"): url})
    d = Daemon(on_video, max_frames=1)
    d._setup()
    try:
        assert d.state is None and not d.status.snapshot().stable
        d._apply(on_camera)
        assert d.state is not None and d.state.path == state / "state.json"
        assert [n.value for n in d.status.snapshot().stable] == ["77"]
        assert d.stabiliser._published == ("77",)  # primed: "77" seen again is not published again
        d._apply(load_config(cfg_path, {("service", "persist_state"): False, ("source", "spec"): url}))
        assert d.state is None  # persist_state turned off takes effect
        d._apply(on_camera)
        assert d.state is not None
        d._apply(on_video)
        assert d.state is None
    finally:
        d._teardown()
        camera.shutdown()
        camera.server_close()


def test_readings_saved_from_another_camera_are_not_restored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # They were: after source.spec changed to another camera, the page and MQTT showed the old camera's
    # number, and the new camera's first reading of the same value was taken for "nothing new".
    from edge.state import StateStore
    from edge.types import Number

    state = tmp_path / "state"
    monkeypatch.setenv("STATE_DIRECTORY", str(state))
    camera = _mjpeg_camera(frames_per_connection=10_000)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    cfg_path = _config(tmp_path, Path("x"), [f"file:{tmp_path / 'e.jsonl'}"])
    cfg = load_config(cfg_path, {("service", "persist_state"): True, ("source", "spec"): url})
    for saved_from, restored in (("http://127.0.0.1:1/other.mjpg", []), (url, ["77"]), ("", ["77"])):
        StateStore(state).save_readings([Number(value="77", confidence=0.9, box=(1, 2, 3, 4), digits=())],
                                        ts="t0", source=saved_from)
        d = Daemon(cfg, max_frames=1)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="edge.daemon"):
            d._setup()
        try:
            assert [n.value for n in d.status.snapshot().stable] == restored, saved_from
            assert (d.stabiliser._published == ("77",)) == bool(restored)
            assert ("not restored" in caplog.text) == (not restored)
        finally:
            d._teardown()
    camera.shutdown()
    camera.server_close()


def test_idle_turns_give_the_sinks_their_tick(tmp_path: Path) -> None:
    # While a camera is away no frame comes, and the file sinks' fsync interval is kept by their tick(): the
    # daemon's idle turns call it (a failing tick is logged, not raised).
    cfg = load_config(_config(tmp_path, Path("x"), [f"file:{tmp_path / 'e.jsonl'}"]),
                      {("source", "spec"): "http://127.0.0.1:1/none.mjpg"})
    d = Daemon(cfg)
    calls: list[str] = []

    class Ticking:
        name = "ticking"

        def tick(self) -> None:
            calls.append("tick")

    class Broken:
        name = "broken"

        def tick(self) -> None:
            raise OSError("disk gone")

    d.sinks = [Broken(), Ticking()]
    d._idle()
    d._idle()
    assert calls == ["tick", "tick"]


def test_a_camera_back_after_an_outage_on_the_same_page_says_so_once(tmp_path: Path) -> None:
    """A real HTTP MJPEG camera that plays 2 s of a page, hangs up (a cable hiccup) and plays it again on
    the next connection. The page does not change, so the stabiliser has nothing new; the daemon must still
    publish the reading once after the error, or the error stays the last word (MQTT's retained error flag,
    Home Assistant's "Read error" problem sensor) until the number next changes - weeks on a meter."""
    server = _mjpeg_camera(frames_per_connection=50)  # 2 s at 25 fps, then the connection drops
    out = tmp_path / "e.jsonl"
    url = f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"
    cfg = load_config(_config(tmp_path, Path("x"), [f"file:{out}"]),
                      {("source", "spec"): url, ("source", "reconnect_min_s"): 0.1,
                       ("stabilise", "heartbeat_s"): 0})  # no heartbeats: they would hide the bug
    daemon = Daemon(cfg)

    def events() -> list[dict]:
        return [json.loads(line) for line in _lines(out)]

    def back_after_error() -> bool:
        kinds = ["error" if e.get("error") else "reading" for e in events()]
        return "error" in kinds and "reading" in kinds[kinds.index("error"):]

    worker = threading.Thread(target=daemon.run, daemon=True)
    worker.start()
    try:
        _wait_for(back_after_error, timeout=30)
    finally:
        daemon.stop()
        worker.join(30)
        server.shutdown()
        server.server_close()
    ev = events()
    first_error = next(i for i, e in enumerate(ev) if e.get("error"))
    before = [e for e in ev[:first_error] if not e.get("error")]
    after = [e for e in ev[first_error:] if not e.get("error")]
    assert ev[first_error]["error"] == "camera disconnected"
    assert before and after, ev
    values = [[n["value"] for n in e["numbers"]] for e in (before[-1], after[0])]
    assert values[0] and values[0] == values[1]  # the same page: the same reading, said again once


def test_an_error_left_unanswered_by_a_restart_is_answered_on_the_same_page(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera went away and the service restarted (a stuck camera's exit 1, a reboot) before it came
    back; it comes back on the same page. The restored reading is not a change, but it must be said once,
    or the error stays the last word (Home Assistant's "Read error" stays on) until the number changes."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    out = tmp_path / "e.jsonl"
    overrides: dict[tuple[str, ...], Any] = {("service", "persist_state"): True, ("stabilise", "heartbeat_s"): 0,
                                             ("source", "reconnect_min_s"): 0.1}

    def events() -> list[dict]:
        return [json.loads(line) for line in _lines(out)]

    camera = _mjpeg_camera(frames_per_connection=50)  # 2 s of the page, then it hangs up
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    first = Daemon(load_config(_config(tmp_path, Path("x"), [f"file:{out}"]), {**overrides, ("source", "spec"): url}))
    worker = threading.Thread(target=first.run, daemon=True)
    worker.start()
    try:
        _wait_for(lambda: any(e.get("numbers") for e in events()), timeout=30)
        camera.shutdown()  # ... and is not there any more when it hangs up
        camera.server_close()
        _wait_for(lambda: events()[-1].get("error") is not None, timeout=30)
    finally:
        first.stop()
        worker.join(30)
    before = [e for e in events() if not e.get("error")]
    n = len(_lines(out))
    camera = _mjpeg_camera(frames_per_connection=10_000)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    try:
        cfg = load_config(_config(tmp_path, Path("x"), [f"file:{out}"]), {**overrides, ("source", "spec"): url})
        assert Daemon(cfg, max_frames=30).run() == 0
    finally:
        camera.shutdown()
        camera.server_close()
    again = [e for e in map(json.loads, _lines(out)[n:])]
    assert [e.get("error") for e in again] == [None], again  # said once, not on every frame
    assert [x["value"] for x in again[0]["numbers"]] == [x["value"] for x in before[-1]["numbers"]]
    assert json.loads((tmp_path / "state" / "state.json").read_text())["error_outstanding"] is False


def test_heartbeats_go_on_when_the_wall_clock_steps_back(tmp_path: Path, long_video: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A Pi has no real-time clock: its wall clock steps when NTP first answers, back as well as forward.
    Stepping the machine's clock in a test is not safe, so the wall clock the process sees is stepped back
    an hour a second into the run (``time.time`` only; the monotonic clock is untouched, as in life).
    Intervals ran on the wall clock once: after the step no heartbeat came for an hour."""
    real_time = time.time
    start = real_time()

    def stepped() -> float:
        now = real_time()
        return now - 3600.0 if now - start > 1.0 else now

    monkeypatch.setattr(time, "time", stepped)
    out = tmp_path / "e.jsonl"
    cfg = load_config(_config(tmp_path, long_video, [f"file:{out}"], paced=True),
                      {("stabilise", "heartbeat_s"): 0.2})
    daemon = Daemon(cfg, max_frames=75)  # 3 s of the paced 25 fps video
    assert daemon.run() == 0
    events = [json.loads(line) for line in _lines(out)]
    beats_after_step = [e for e in events if e.get("heartbeat") and e["ts"] < iso_ts(start)]
    assert len(beats_after_step) >= 4, [e["ts"] for e in events]  # ~2 s at one per 0.2 s: ~9
    assert all(0 <= e["latency_ms"] < 5000 for e in events)  # latency is an interval too


def test_a_cluttered_image_gets_an_error_event_and_the_rest_are_read(tmp_path: Path) -> None:
    # A page of small print: thousands of ink components, once 20 s and 3.8 GB to read; now skipped at once.
    folder = tmp_path / "pages"
    folder.mkdir()
    printed = printed_page()
    cv2.imwrite(str(folder / "a_print.png"), printed)
    cv2.imwrite(str(folder / "b_page.jpg"), cv2.imread(str(ROOT / "samples" / "page_clean.jpg")))
    out = tmp_path / "e.jsonl"
    daemon = Daemon(load_config(_config(tmp_path, folder, [f"file:{out}"])))
    t0 = time.monotonic()
    assert daemon.run() == 0
    assert time.monotonic() - t0 < 60
    events = [json.loads(line) for line in _lines(out)]
    assert [Path(e["source"]).name for e in events] == ["a_print.png", "b_page.jpg"]
    assert events[0]["error"] == "too cluttered to read"
    assert "error" not in events[1] and events[1]["numbers"]
    assert daemon.metrics.snapshot()["cluttered_frames"] == 1


def test_heartbeats_go_on_through_cluttered_frames(tmp_path: Path, long_video: Path) -> None:
    # A camera looking at noise all night keeps its readings; it went silent (no heartbeats) instead.
    out = tmp_path / "e.jsonl"
    cfg = load_config(_config(tmp_path, long_video, [f"file:{out}"], paced=True),
                      {("stabilise", "heartbeat_s"): 0.2, ("segment", "max_components"): 1})  # every frame
    daemon = Daemon(cfg, max_frames=50)  # 2 s at 25 fps
    assert daemon.run() == 0
    m = daemon.metrics.snapshot()
    assert m["cluttered_frames"] == 50
    assert m["heartbeats"] >= 4 and sum(1 for e in map(json.loads, _lines(out)) if e.get("heartbeat")) >= 4


def test_a_camera_driver_that_never_returns_ends_the_run_so_the_service_restarts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Pi camera's capture can wait for ever. The loop kept turning (watchdog pings included), so nothing
    # restarted the service: the page said "no frame for 40 s" for as long as anyone cared to look.
    import edge.daemon as daemon_module
    from edge.capture import LiveSource

    page = cv2.imread(str(ROOT / "samples" / "page_clean.jpg"))
    release = threading.Event()

    class HangsAfterFiveFrames(LiveSource):  # the real grabber thread and back-off; only the driver is fake
        reads = 0

        def _open(self) -> object:
            return object()

        def _read(self, handle: object) -> np.ndarray | None:
            HangsAfterFiveFrames.reads += 1
            if HangsAfterFiveFrames.reads > 5:
                release.wait(60)  # the driver never answers (until the test ends)
            time.sleep(0.05)
            return page

    out = tmp_path / "e.jsonl"
    cfg = load_config(_config(tmp_path, Path("x"), [f"file:{out}"]),
                      {("source", "spec"): "0", ("source", "read_timeout_s"): 0.5, ("source", "stall_s"): 1.5})
    monkeypatch.setattr(daemon_module, "make_source", lambda c, once: HangsAfterFiveFrames("0", c.source))
    daemon, codes = Daemon(cfg), []
    runner = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    runner.start()
    runner.join(20)
    if runner.is_alive():  # still waiting on the stuck driver: stop it, so the failure is a failure, not a hang
        daemon.stop()
    release.set()
    runner.join(10)
    assert codes == [1]
    events = [json.loads(line) for line in _lines(out)]
    assert events[0]["numbers"]  # it read the page while the driver answered
    assert events[-1]["error"].startswith("camera stuck: no answer from its driver for ")
    # an existing config with a long read timeout stays valid (it was refused for a key it never wrote)
    assert load_config(_config(tmp_path, Path("x"), []), {("source", "read_timeout_s"): 90.0}).source.stall_s == 60.0


def test_the_stabiliser_orders_lines_with_the_configured_numbers_settings(tmp_path: Path) -> None:
    # The published order follows the reader's line rules; a numbers: setting the stabiliser did not get
    # would order a stream differently from the same page read as an image.
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("numbers:\n  line_gap: 1.0\n  max_tilt_deg: 30\n")
    cfg = load_config(str(cfg_path))
    stab = Daemon._make_stabiliser(cfg)
    assert stab.numbers.line_gap == 1.0 and stab.numbers.max_tilt_deg == 30


def _erase_video(path: Path, after: int) -> Path:
    """The sample's first 40 frames, then ``after`` frames in which "1530" is painted out with paper."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 12.0, (640, 480))
    for f in sample_then_erased(after):
        out.write(f)
    out.release()
    return path


def test_a_video_file_counts_the_stabilisers_seconds_in_its_own_time(tmp_path: Path) -> None:
    # drop_after_s (2 s) was counted on the machine's clock: a file read at hundreds of frames a second
    # dropped an erased number hundreds of frames late, or never, and differently on a busy machine. In the
    # file's own time (frame / fps) the removal comes 2 s of video after the erase, the same on every run.
    video = _erase_video(tmp_path / "erase.avi", 240)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source:\n  spec: {video}\nmodel:\n  path: {MODEL}\n  num_threads: 1\n"
                   f"sinks:\n  outputs: [\"file:{tmp_path / 'e.jsonl'}\"]\nservice:\n  persist_state: false\n")
    removals = []
    for _ in range(2):
        (tmp_path / "e.jsonl").unlink(missing_ok=True)
        assert Daemon(load_config(cfg)).run() == 0
        events = [json.loads(line) for line in _lines(tmp_path / "e.jsonl")]
        gone = [e["frame"] for e in events if "1530" not in [n["value"] for n in e["numbers"]]]
        assert gone, [(e["frame"], [n["value"] for n in e["numbers"]]) for e in events]
        removals.append(gone[0])
    # erased from frame 40; 2 s at 12 fps is 24 frames (the first missing read may come a frame or two late)
    assert 40 + 24 <= removals[0] <= 40 + 24 + 6, removals
    assert removals[0] == removals[1]


def test_no_stable_reading_warning_is_not_given_when_restored_readings_were_confirmed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # A restart on the same page confirms the restored reading without publishing it (no duplicate): that
    # is a stable reading, not "no stable reading in 40 frames".
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    camera = _mjpeg_camera(frames_per_connection=10_000)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    try:
        cfg = load_config(_config(tmp_path, Path("x"), [f"file:{tmp_path / 'e.jsonl'}"]),
                          {("source", "spec"): url, ("service", "persist_state"): True})
        for run_no in (1, 2):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="edge.daemon"):
                assert Daemon(cfg, max_frames=40).run() == 0
            events = [json.loads(line) for line in _lines(tmp_path / "e.jsonl") if '"heartbeat"' not in line]
            assert len(events) == 1, events  # the second run published nothing new
            assert "no stable reading" not in caplog.text, (run_no, caplog.text)
    finally:
        camera.shutdown()
        camera.server_close()


def test_a_reload_that_only_turns_the_picture_keeps_the_camera_open(tmp_path: Path) -> None:
    # source.rotate/flip are in the source section, so a SIGHUP that changed only them opened a second
    # source on the same device before closing the first: a busy camera, an error event, a reconnect wait.
    camera = _mjpeg_camera(frames_per_connection=10_000)
    url = f"http://127.0.0.1:{camera.server_address[1]}/video.mjpg"
    cfg_path = _config(tmp_path, Path("x"), [f"file:{tmp_path / 'e.jsonl'}"])
    d = Daemon(load_config(cfg_path, {("source", "spec"): url}), max_frames=1)
    d._setup()
    try:
        before = d.source
        frames = before.frames(idle_timeout=0.2)
        first = next(f for f in frames if f is not None and f.image is not None)
        assert d._apply(load_config(cfg_path, {("source", "spec"): url, ("source", "rotate"): 90})) is True
        assert d.source is before and d.cfg.source.rotate == 90
        turned = next(f for f in frames if f is not None and f.image is not None and f.index > first.index + 1)
        assert turned.image.shape[:2] == first.image.shape[1::-1][:2]  # 320x240 is now 240x320
        assert d._apply(load_config(cfg_path, {("source", "spec"): url, ("source", "rotate"): 90})) is False
    finally:
        d._teardown()
        camera.shutdown()
        camera.server_close()
