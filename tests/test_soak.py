"""A short run of the soak tool: a live MJPEG stream, every sink, a real broker and a web viewer at once.

The 10-minute figures are in the README (``python tools/soak.py --minutes 10``); here the same harness runs
for half a minute and every sink must agree with stdout.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mosquitto import mosquitto_binary

from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parent.parent


def _soak_module():  # noqa: ANN202
    return load_tool("soak")


@pytest.mark.slow
def test_short_soak_every_sink_agrees(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not found (apt-get install mosquitto)")
    soak = _soak_module()
    report = soak.soak(ROOT / "samples" / "sample.mp4", 30.0, tmp_path / "soak", sample_s=2.0, warmup_s=8.0,
                       threads=1)
    assert report["checks"] and all(report["checks"].values()), report["checks"]
    assert report["exit_code"] == 0
    # The sample plays at 12 fps; the reader keeps up with it on any machine this runs on.
    assert report["frames"] >= 0.5 * report["camera_frames_sent"]
    # heartbeats fill the still stretches between readings: their count follows the run, not the clock
    assert report["readings"] >= 2 and report["heartbeats"] >= report["readings"] - 2
    assert report["errors"] == 0 and report["sink_failures"] == 0
    assert report["file_sink_files"] >= 1 and report["overlay_bytes"] > 0
    saved = json.loads((tmp_path / "soak" / "soak.json").read_text())
    assert saved["report"]["frames"] == report["frames"] and len(saved["samples"]) >= 10


def test_rss_slope_is_a_least_squares_trend() -> None:
    soak = _soak_module()
    samples = [{"t": t, "rss_mib": 100.0 + 0.01 * t} for t in range(0, 600, 10)]
    assert soak.slope_mib_per_hour(samples) == pytest.approx(36.0)
    assert soak.slope_mib_per_hour(samples[:2]) == 0.0


def _processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains ``text`` (from /proc)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_sigterm_ends_a_soak_early_with_a_report_and_no_process_left(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto binary not found (apt-get install mosquitto)")
    out = tmp_path / "soak"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "soak.py"), "--seconds", "600", "--out", str(out),
                             "--sample-s", "1", "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        # The first progress line comes once the daemon is up and has been sampled.
        assert proc.stderr.readline().startswith("[soak]")
        time.sleep(6)  # long enough for the sample's first stable readings
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-2000:]
    report = json.loads(stdout)
    assert report["seconds"] < 60 and report["exit_code"] == 0 and report["frames"] > 0
    assert all(report["checks"].values()), report["checks"]
    # Neither the daemon (started with the run's config) nor the broker (its conf in the run's folder) outlived it.
    assert _processes_mentioning(str(out)) == []
